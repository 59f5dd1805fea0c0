//! The TUI's one state: the panes, which view and pane has the keyboard, the footer, and the
//! store writes in flight. Keys go to the focused pane, which answers with an [`Intent`]; the
//! app turns intents into [`Effect`]s that the loop performs off the UI thread, and applies
//! their results ([`BgEvent`]s) when they come back. A review decision shows as saving until
//! its write has come back from the store; only then does the footer say it is saved.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Tabs, Wrap};

pub use super::effect::{BgEvent, Effect, RunChoice, Write, Written};
use super::keymap::{Action, Context, Keymap};
pub use super::panes::Confirm;
use super::panes::coverage::CoveragePane;
use super::panes::editor::EditorPane;
use super::panes::eval::EvalPane;
use super::panes::jobs::JobsPane;
use super::panes::pair::PairPane;
use super::panes::results::{Results, ResultsPane};
use super::panes::review::ReviewPane;
use super::panes::schema::SchemaPane;
use super::panes::{Hint, Intent, Pane, Prompt, Shared, centered, hints};
use super::theme::{Theme, Ui};
use lode_core::project::Project;
use lode_core::sql::{QueryResult, SqlDialect};
use lode_core::store::{PairStatus, ReviewAction, Store};
use lode_core::tasks::model::ModelRequest;
use lode_core::tasks::{Stage, StageEvent};

/// The views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Review,
    Schema,
    Coverage,
    Eval,
    Jobs,
}

const TABS: [Tab; 5] = [
    Tab::Review,
    Tab::Schema,
    Tab::Coverage,
    Tab::Eval,
    Tab::Jobs,
];

impl Tab {
    fn title(self) -> &'static str {
        match self {
            Tab::Review => "Review",
            Tab::Schema => "Schema",
            Tab::Coverage => "Coverage",
            Tab::Eval => "Evaluation",
            Tab::Jobs => "Jobs",
        }
    }
}

/// Keys the app answers itself, in every view (see `normal_key`); the queue's search, filter
/// and order answer in every view too.
pub(crate) const APP_KEYS: &[Action] = &[
    Action::Quit,
    Action::Help,
    Action::NextTab,
    Action::PrevTab,
    Action::RunQuery,
    Action::CancelQuery,
    Action::CopySql,
    Action::OpenExternalEditor,
    Action::Generate,
    Action::Analyze,
    Action::Evaluate,
    Action::Refresh,
    Action::Search,
    Action::FilterStatus,
    Action::Sort,
];

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing SQL in the editor.
    Editing,
    /// Typing a search.
    Search(String),
    /// Typing a reject reason.
    Reason(String),
    /// Editing the question.
    Question(String),
    /// Waiting for y/n.
    Confirm(Confirm),
    Help,
}

/// What the panes read but do not own, borrowed field by field so that a pane can be borrowed
/// mutably beside it.
macro_rules! shared {
    ($app:ident) => {
        Shared {
            keymap: &$app.keymap,
            theme: &$app.theme,
            project: &*$app.project,
        }
    };
}

pub struct App {
    pub project: Arc<Project>,
    pub store: Arc<Store>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub tab: Tab,
    pub mode: Mode,
    pub review: ReviewPane,
    pub pair: PairPane,
    pub editor: EditorPane,
    pub results: ResultsPane,
    pub schema: SchemaPane,
    pub coverage: CoveragePane,
    pub eval: EvalPane,
    pub jobs: JobsPane,
    pub message: String,
    pub background: Option<String>,
    /// The footer's and the help overlay's state (see `chrome`).
    pub chrome: super::chrome::Chrome,
    /// The model generation and evaluation started here use (the global flags).
    pub model: ModelRequest,
    pub dirty: bool,
    pub quit: bool,
    /// Store writes waiting for the one in flight to come back.
    writes: VecDeque<Write>,
    /// A store write is in flight.
    writing: bool,
    /// Results of SQL run for a pair, by pair and SQL, shown again at once on return.
    result_cache: ResultCache,
    /// What the results pane holds the results of: the pair (if any) and the SQL run.
    results_for: Option<(Option<i64>, String)>,
    /// Decisions made here, newest last: what undo takes back.
    decisions: Vec<i64>,
    /// Pairs of a bulk accept under way, to remember as decisions once saved.
    bulk: Vec<i64>,
    /// The pair to select once the queue is read again (after an undo).
    pending_select: Option<i64>,
    /// Where the cursor is in the one-line field being typed (search, reason, question).
    pub cursor: usize,
    /// Duplicates the reviewer was warned about before accepting (each is warned once).
    warned: std::collections::HashSet<i64>,
}

/// Where in `sql` an error message points: the token after `near "…"`, or the name in
/// `no such column: …` / `no such table: …`, as a 1-based line and column.
pub fn error_location(sql: &str, message: &str) -> Option<(usize, usize)> {
    let token = if let Some(rest) = message.split("near \"").nth(1) {
        rest.split('"').next()?.to_string()
    } else {
        let rest = message
            .split("no such column: ")
            .nth(1)
            .or_else(|| message.split("no such table: ").nth(1))?;
        rest.split(|c: char| c.is_whitespace() || c == ')' || c == ',')
            .next()?
            .to_string()
    };
    if token.is_empty() {
        return None;
    }
    let needle = token.to_lowercase();
    sql.lines().enumerate().find_map(|(i, l)| {
        let lower = l.to_lowercase();
        lower
            .find(&needle)
            .map(|b| (i + 1, lower[..b].chars().count() + 1))
    })
}

/// How long the run that follows the selection waits for the keys to settle.
pub const AUTO_RUN_DELAY: Duration = Duration::from_millis(150);

/// Results by (pair, SQL), the most recent [`ResultCache::CAP`] kept.
#[derive(Default)]
struct ResultCache {
    entries: VecDeque<((i64, String), QueryResult)>,
}

impl ResultCache {
    const CAP: usize = 64;

    fn get(&self, pair: i64, sql: &str) -> Option<QueryResult> {
        self.entries
            .iter()
            .find(|((p, s), _)| *p == pair && s == sql)
            .map(|(_, r)| r.clone())
    }

    /// Results bigger than this are not kept (64 of them could otherwise hold a lot).
    const MAX_ROWS: usize = 2000;

    fn put(&mut self, pair: i64, sql: String, result: QueryResult) {
        if result.rows.len() > Self::MAX_ROWS {
            return;
        }
        self.entries
            .retain(|((p, s), _)| !(*p == pair && *s == sql));
        if self.entries.len() >= Self::CAP {
            self.entries.pop_front();
        }
        self.entries.push_back(((pair, sql), result));
    }
}

/// A key typed into a one-line prompt.
enum LineEdit {
    Submit(String),
    Cancel,
    Changed(String),
    Ignored,
}

/// A key typed into a one-line field with a cursor (a char index): typing inserts at the
/// cursor; ←/→, Home/End move it; Backspace/Delete remove around it.
fn edit_line(mut s: String, cursor: &mut usize, key: &KeyEvent) -> LineEdit {
    let n = s.chars().count();
    *cursor = (*cursor).min(n);
    let byte = |s: &str, c: usize| s.char_indices().nth(c).map_or(s.len(), |(b, _)| b);
    match key.code {
        KeyCode::Enter => LineEdit::Submit(s),
        KeyCode::Esc => LineEdit::Cancel,
        KeyCode::Left => {
            *cursor = cursor.saturating_sub(1);
            LineEdit::Changed(s)
        }
        KeyCode::Right => {
            *cursor = (*cursor + 1).min(n);
            LineEdit::Changed(s)
        }
        KeyCode::Home => {
            *cursor = 0;
            LineEdit::Changed(s)
        }
        KeyCode::End => {
            *cursor = n;
            LineEdit::Changed(s)
        }
        KeyCode::Backspace if *cursor > 0 => {
            let at = byte(&s, *cursor - 1);
            s.remove(at);
            *cursor -= 1;
            LineEdit::Changed(s)
        }
        KeyCode::Backspace => LineEdit::Changed(s),
        KeyCode::Delete if *cursor < n => {
            let at = byte(&s, *cursor);
            s.remove(at);
            LineEdit::Changed(s)
        }
        KeyCode::Delete => LineEdit::Changed(s),
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            let at = byte(&s, *cursor);
            s.insert(at, c);
            *cursor += 1;
            LineEdit::Changed(s)
        }
        _ => LineEdit::Ignored,
    }
}

impl App {
    /// The app with nothing read yet: [`App::start`] says what to read.
    pub fn new(project: Arc<Project>, store: Arc<Store>, keymap: Keymap, theme: Theme) -> App {
        // The editor lays out and colours SQL as the project's database reads it.
        let mut editor = EditorPane::default();
        editor.dialect = SqlDialect::of(&project.schema);
        App {
            project,
            store,
            keymap,
            theme,
            tab: Tab::Review,
            mode: Mode::Normal,
            review: ReviewPane::default(),
            pair: PairPane::default(),
            editor,
            results: ResultsPane::default(),
            schema: SchemaPane::default(),
            coverage: CoveragePane::default(),
            eval: EvalPane::default(),
            jobs: JobsPane::default(),
            message: String::new(),
            background: None,
            chrome: Default::default(),
            model: ModelRequest::default_model(),
            dirty: true,
            quit: false,
            writes: VecDeque::new(),
            writing: false,
            result_cache: ResultCache::default(),
            results_for: None,
            decisions: Vec::new(),
            bulk: Vec::new(),
            pending_select: None,
            warned: Default::default(),
            cursor: 0,
        }
    }

    /// The first reads: the newest run's queue, the evaluations, the tuning jobs.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = self.load_rows(RunChoice::Latest);
        effects.extend([Effect::LoadEval, Effect::LoadJobs, Effect::LoadDrafts]);
        effects
    }

    /// A store write is in flight or waiting: quitting waits for it.
    pub fn saving(&self) -> bool {
        self.writing || !self.writes.is_empty()
    }

    /// Reads the queue again for the filter, search and order shown: the key's frame comes
    /// at once, the rows when read (a newer read supersedes an older one).
    pub fn request_rows(&mut self) -> Vec<Effect> {
        self.load_rows(RunChoice::Keep)
    }

    fn load_rows(&mut self, run: RunChoice) -> Vec<Effect> {
        let generation = self.review.begin_load();
        vec![Effect::LoadRows {
            generation,
            query: self.review.query(),
            run,
        }]
    }

    /// Sends a store write, or queues it behind the one in flight.
    fn write(&mut self, w: Write) -> Vec<Effect> {
        if self.writing {
            self.writes.push_back(w);
            return Vec::new();
        }
        self.writing = true;
        vec![Effect::Write(w)]
    }

    /// Keeps the pair, editor and job event panes on what the lists select; `force` reads
    /// the selected pair and job again even when the selection did not move. While a queue
    /// read is under way the pair waits for its rows (the selection is about to change).
    fn follow_selection(&mut self, force: bool) -> Vec<Effect> {
        let mut effects = Vec::new();
        let pair = self.review.selected_id();
        if force || (pair != self.pair.id && !self.review.loading) {
            self.pair.select(pair);
            if let Some((left, sql)) = self.editor.follow(pair, &self.theme) {
                self.message = format!("the unsaved edit of pair {left} is kept as a draft");
                effects.extend(self.write(Write::SaveDraft { id: left, sql }));
            }
            // Results of the pair left are stale now; a run of it still waiting is dropped.
            if matches!(self.results.state, Results::Running { .. })
                && self.results_for.as_ref().map(|(p, _)| *p) != Some(pair)
            {
                self.results.cancel();
            }
            effects.extend(pair.map(Effect::LoadDetail));
            // A draft shows at once: its results follow.
            effects.extend(self.auto_run());
        }
        let job = self.jobs.selected_id();
        if force || self.jobs.requested != job {
            self.jobs.requested = job;
            effects.extend(job.map(Effect::LoadJobEvents));
        }
        effects
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        let saving = self.saving();
        self.chrome.on_key(&mut self.message, saving);
        let mut effects = match self.mode.clone() {
            Mode::Help => {
                if self.chrome.help_key(&self.keymap, &key) {
                    self.mode = Mode::Normal;
                }
                Vec::new()
            }
            Mode::Search(s) => match edit_line(s, &mut self.cursor, &key) {
                LineEdit::Submit(s) => {
                    self.mode = Mode::Normal;
                    let effects = self.apply_search(s);
                    if let Some(w) = super::search::search_warning(&self.review.search) {
                        self.message = w;
                    }
                    effects
                }
                LineEdit::Cancel => {
                    self.mode = Mode::Normal;
                    self.apply_search(String::new())
                }
                LineEdit::Changed(s) => {
                    self.mode = Mode::Search(s.clone());
                    self.apply_search(s)
                }
                LineEdit::Ignored => Vec::new(),
            },
            // A number key on an empty reason picks a canned one (ui.reject_reasons).
            Mode::Reason(s)
                if s.is_empty()
                    && matches!(key.code, KeyCode::Char('1'..='9'))
                    && key.modifiers == KeyModifiers::NONE =>
            {
                let KeyCode::Char(c) = key.code else {
                    unreachable!()
                };
                let reasons = &self.project.config.ui.reject_reasons;
                match reasons.get((c as u8 - b'1') as usize).cloned() {
                    Some(reason) => {
                        self.mode = Mode::Normal;
                        match self.review.selected_id() {
                            Some(id) => self.decide(id, ReviewAction::Reject, Some(reason)),
                            None => Vec::new(),
                        }
                    }
                    None => {
                        self.mode = Mode::Reason(c.to_string());
                        self.cursor = 1;
                        Vec::new()
                    }
                }
            }
            Mode::Reason(s) => match edit_line(s, &mut self.cursor, &key) {
                LineEdit::Submit(s) => {
                    self.mode = Mode::Normal;
                    let note = (!s.trim().is_empty()).then(|| s.trim().to_string());
                    match self.review.selected_id() {
                        Some(id) => self.decide(id, ReviewAction::Reject, note),
                        None => {
                            self.message = "no pair selected".into();
                            Vec::new()
                        }
                    }
                }
                LineEdit::Cancel => {
                    self.mode = Mode::Normal;
                    self.message = "reject cancelled".into();
                    Vec::new()
                }
                LineEdit::Changed(s) => {
                    self.mode = Mode::Reason(s);
                    Vec::new()
                }
                LineEdit::Ignored => Vec::new(),
            },
            Mode::Question(s) => match edit_line(s, &mut self.cursor, &key) {
                LineEdit::Submit(s) => {
                    self.mode = Mode::Normal;
                    self.save_question(s.trim())
                }
                LineEdit::Cancel => {
                    self.mode = Mode::Normal;
                    self.message = "question unchanged".into();
                    Vec::new()
                }
                LineEdit::Changed(s) => {
                    self.mode = Mode::Question(s);
                    Vec::new()
                }
                LineEdit::Ignored => Vec::new(),
            },
            Mode::Confirm(what) => self.confirm(what, &key),
            Mode::Editing => {
                let cx = shared!(self);
                let intent = self.editor.handle(&key, &cx);
                self.apply(intent)
            }
            Mode::Normal => self.normal_key(&key),
        };
        effects.extend(self.follow_selection(false));
        self.sync_results();
        effects
    }

    /// Runs the selected pair's SQL (its draft if it has one) unless its results are shown
    /// or cached: after a short wait, so that moving through the queue runs only the pair
    /// the reviewer stops on.
    fn auto_run(&mut self) -> Vec<Effect> {
        let Some(id) = self.review.selected_id() else {
            return Vec::new();
        };
        if self.tab != Tab::Review
            || self.mode == Mode::Editing
            || self.editor.pair != Some(id)
            || !self.editor.loaded
        {
            return Vec::new();
        }
        let sql = self.editor.text();
        if sql.trim().is_empty() {
            return Vec::new();
        }
        let wanted = (Some(id), sql.clone());
        if self.results_for.as_ref() == Some(&wanted)
            && matches!(
                self.results.state,
                Results::Running { .. } | Results::Done(_)
            )
        {
            return Vec::new();
        }
        if let Some(r) = self.result_cache.get(id, &sql) {
            self.results.cancel();
            self.results.label = self.results_label(Some(id));
            self.results.show(r);
            self.results_for = Some(wanted);
            self.results.stale = false;
            return Vec::new();
        }
        self.start_query(Some(id), sql, AUTO_RUN_DELAY)
    }

    /// Starts a query whose results the pane shows for `pair`.
    fn start_query(&mut self, pair: Option<i64>, sql: String, delay: Duration) -> Vec<Effect> {
        self.results.cancel();
        let (ticket, cancel) = self.results.start();
        self.results.label = self.results_label(pair);
        self.results.stale = false;
        self.results_for = Some((pair, sql.clone()));
        vec![Effect::RunQuery {
            ticket,
            sql,
            cancel,
            delay,
        }]
    }

    /// What the results are of: `pair #12 · stored SQL` or `pair #12 · draft`.
    fn results_label(&self, pair: Option<i64>) -> String {
        match pair {
            Some(id) if self.editor.pair == Some(id) && self.editor.dirty => {
                format!("pair #{id} · draft")
            }
            Some(id) => format!("pair #{id} · stored SQL"),
            None => "the editor's SQL".into(),
        }
    }

    /// Marks the results stale when they are no longer of the selected pair and the SQL on
    /// screen.
    fn sync_results(&mut self) {
        self.results.stale = match &self.results_for {
            None => false,
            Some((pair, sql)) => {
                *pair != self.review.selected_id()
                    || (self.editor.pair == *pair
                        && self.editor.loaded
                        && self.editor.text() != *sql)
            }
        };
    }

    fn confirm(&mut self, what: Confirm, key: &KeyEvent) -> Vec<Effect> {
        self.mode = Mode::Normal;
        if let Confirm::AcceptDraft(id) = what {
            return match key.code {
                KeyCode::Char('s') => match self.editor.draft(id) {
                    Some(sql) if self.editor.pair == Some(id) => self.save_edit(sql),
                    _ => {
                        self.message = format!("pair {id}: its draft is not in the editor");
                        Vec::new()
                    }
                },
                KeyCode::Char('a') => {
                    let effects = self.decide(id, ReviewAction::Accept, None);
                    self.message = format!(
                        "pair {id} saving… (stored SQL accepted; the draft is kept, {} discards it)",
                        self.keymap.keys_of(Action::DiscardDraft)
                    );
                    effects
                }
                _ => {
                    self.message = "cancelled".into();
                    Vec::new()
                }
            };
        }
        if key.code != KeyCode::Char('y') {
            self.message = "cancelled".into();
            return Vec::new();
        }
        match what {
            Confirm::BulkAccept(ids) => {
                self.message = format!("accepting {} pairs…", ids.len());
                self.bulk = ids.clone();
                self.write(Write::BulkAccept(ids))
            }
            Confirm::CancelJob(id) => vec![Effect::CancelJob(id)],
            Confirm::AcceptDraft(_) => Vec::new(),
        }
    }

    fn quit(&mut self) -> Vec<Effect> {
        // An unsaved edit is kept as a draft in the store: it is there next time.
        let mut effects = Vec::new();
        if self.editor.dirty
            && let Some(id) = self.editor.pair
        {
            effects = self.write(Write::SaveDraft {
                id,
                sql: self.editor.text(),
            });
        }
        self.quit = true;
        if self.saving() {
            self.message = "saving… (lode quits once the store has it)".into();
        }
        effects.push(Effect::Quit);
        effects
    }

    /// A bracketed paste: one edit in the editor, or text for the prompt being typed; never
    /// keys that could accept or reject.
    pub fn handle_paste(&mut self, text: &str) -> Vec<Effect> {
        self.dirty = true;
        let one_line = || text.split_whitespace().collect::<Vec<_>>().join(" ");
        match self.mode.clone() {
            Mode::Editing => {
                self.editor.insert(text, &self.theme);
                Vec::new()
            }
            Mode::Search(mut s) => {
                self.insert_at_cursor(&mut s, &one_line());
                self.mode = Mode::Search(s.clone());
                self.apply_search(s)
            }
            Mode::Reason(mut s) => {
                self.insert_at_cursor(&mut s, &one_line());
                self.mode = Mode::Reason(s);
                Vec::new()
            }
            Mode::Question(mut s) => {
                self.insert_at_cursor(&mut s, &one_line());
                self.mode = Mode::Question(s);
                Vec::new()
            }
            _ => {
                self.message = "paste into the editor (e) or a prompt".into();
                Vec::new()
            }
        }
    }

    /// Puts pasted text into a one-line field at its cursor.
    fn insert_at_cursor(&mut self, s: &mut String, text: &str) {
        let at = s
            .char_indices()
            .nth(self.cursor)
            .map_or(s.len(), |(b, _)| b);
        s.insert_str(at, text);
        self.cursor += text.chars().count();
    }

    /// The mouse wheel (with `ui.mouse: true`): moves the list of the view.
    pub fn scroll(&mut self, delta: isize) -> Vec<Effect> {
        self.dirty = true;
        if self.mode != Mode::Normal {
            return Vec::new();
        }
        let cx = shared!(self);
        match self.tab {
            Tab::Review => self.review.scroll(delta, &cx),
            Tab::Schema => self.schema.scroll(delta, &cx),
            Tab::Coverage => self.coverage.scroll(delta, &cx),
            Tab::Eval => self.eval.scroll(delta, &cx),
            Tab::Jobs => self.jobs.scroll(delta, &cx),
        }
        self.follow_selection(false)
    }

    fn apply_search(&mut self, s: String) -> Vec<Effect> {
        if self.tab == Tab::Schema {
            self.schema.set_search(s);
            return Vec::new();
        }
        if self.review.set_search(s) {
            self.request_rows()
        } else {
            Vec::new()
        }
    }

    fn normal_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        if let KeyCode::Char(c @ '1'..='5') = key.code
            && key.modifiers == KeyModifiers::NONE
        {
            self.tab = TABS[(c as u8 - b'1') as usize];
            return self.on_tab_enter();
        }
        // Running a query works from the queue too.
        let action = self.keymap.action(Context::Normal, key).or_else(|| {
            self.keymap
                .action(Context::Editor, key)
                .filter(|a| matches!(a, Action::RunQuery | Action::CancelQuery))
        });
        let Some(action) = action else {
            return Vec::new();
        };
        // Keys of the whole app first, then the focused pane's, then those of the other
        // panes of the view; the queue's search, filter and order answer from every view.
        match action {
            Action::Quit => return self.quit(),
            Action::SqlDown | Action::SqlUp if self.tab == Tab::Review => {
                self.editor
                    .scroll_by(if action == Action::SqlDown { 3 } else { -3 });
                return Vec::new();
            }
            Action::DiscardDraft if self.tab == Tab::Review => return self.discard_draft(),
            Action::JumpToRepeat if self.tab == Tab::Review => {
                let target = self
                    .pair
                    .shown()
                    .and_then(|d| d.pair.notes.duplicate_pair());
                match target {
                    Some(id) => match self.review.rows.iter().position(|r| r.id == id) {
                        Some(i) => {
                            self.review.cursor = i;
                            self.message = format!("pair {id}, which the duplicate repeats");
                        }
                        None => {
                            self.message = format!(
                                "pair {id} is not in this queue; {} (all) or {} (all runs) \
                                 shows it",
                                self.keymap.keys_of(Action::FilterStatus),
                                self.keymap.keys_of(Action::NextRun)
                            )
                        }
                    },
                    None => self.message = "this pair repeats no other pair".into(),
                }
                return Vec::new();
            }
            Action::RecordView => {
                self.results.record = !self.results.record;
                self.message = if self.results.record {
                    "results: one row at a time".into()
                } else {
                    "results: the table".into()
                };
                return Vec::new();
            }
            Action::Help => {
                self.mode = Mode::Help;
                return Vec::new();
            }
            Action::NextTab | Action::PrevTab => {
                let i = TABS.iter().position(|t| *t == self.tab).unwrap_or(0);
                let n = TABS.len();
                self.tab = TABS[if action == Action::NextTab {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                }];
                return self.on_tab_enter();
            }
            Action::RunQuery => {
                if let (Some(id), false) = (self.editor.pair, self.editor.loaded) {
                    self.message = format!("pair {id} is still being read; run again in a moment");
                    return Vec::new();
                }
                let pair = self.editor.pair;
                let sql = self.editor.text();
                if sql.trim().is_empty() {
                    self.message = "nothing to run".into();
                    return Vec::new();
                }
                return self.start_query(pair, sql, Duration::ZERO);
            }
            Action::CancelQuery => {
                self.results.cancel();
                return Vec::new();
            }
            Action::CopySql => {
                let sql = self.editor.text();
                if sql.trim().is_empty() {
                    self.message =
                        "nothing to copy: no pair is selected, or its SQL is empty".into();
                    return Vec::new();
                }
                self.message = "SQL copied to the clipboard (OSC 52)".into();
                return vec![Effect::Copy(sql)];
            }
            Action::OpenExternalEditor => return vec![Effect::ExternalEdit(self.editor.text())],
            Action::Generate => {
                self.background = Some("generation starting…".into());
                return vec![Effect::Generate];
            }
            Action::Analyze => {
                self.coverage.stale = false;
                self.background = Some("computing coverage…".into());
                return vec![Effect::Analyze];
            }
            Action::Evaluate => {
                self.background = Some("evaluation starting…".into());
                return vec![Effect::Evaluate];
            }
            Action::Refresh => {
                self.message = "reloaded".into();
                let mut effects = self.request_rows();
                effects.extend([Effect::LoadEval, Effect::LoadJobs]);
                return effects;
            }
            _ => {}
        }
        let cx = shared!(self);
        let mut intent = match self.tab {
            Tab::Review => self.review.handle(key, &cx),
            Tab::Schema => self.schema.handle(key, &cx),
            Tab::Coverage => self.coverage.handle(key, &cx),
            Tab::Eval => self.eval.handle(key, &cx),
            Tab::Jobs => self.jobs.handle(key, &cx),
        };
        if intent == Intent::Unhandled && self.tab == Tab::Review {
            intent = self.pair.handle(key, &cx);
        }
        if intent == Intent::Unhandled {
            intent = self.results.handle(key, &cx);
        }
        if intent == Intent::Unhandled && self.tab != Tab::Review {
            intent = self.review.queue_key(action);
        }
        self.apply(intent)
    }

    /// Turns a pane's intent into state and effects.
    fn apply(&mut self, intent: Intent) -> Vec<Effect> {
        match intent {
            Intent::Unhandled | Intent::Handled => Vec::new(),
            Intent::Message(m) => {
                self.message = m;
                Vec::new()
            }
            Intent::Prompt(p) => {
                self.mode = match p {
                    Prompt::Search => Mode::Search(String::new()),
                    Prompt::Reason => Mode::Reason(String::new()),
                    Prompt::Question(q) => Mode::Question(q),
                };
                self.cursor = match &self.mode {
                    Mode::Question(q) => q.chars().count(),
                    _ => 0,
                };
                Vec::new()
            }
            Intent::Confirm(c) => {
                self.mode = Mode::Confirm(c);
                Vec::new()
            }
            Intent::Reload { message } => {
                self.message = message;
                self.request_rows()
            }
            Intent::NextRun => {
                self.review.cursor = 0;
                self.load_rows(RunChoice::After(self.review.run_id))
            }
            Intent::Decide {
                id,
                action: ReviewAction::Accept,
            } if !self.warned.contains(&id)
                && self.review.rows.iter().any(|r| {
                    r.id == id && matches!(r.status, PairStatus::Duplicate | PairStatus::Leakage)
                }) =>
            {
                self.warned.insert(id);
                let what = self
                    .pair
                    .shown()
                    .filter(|d| d.pair.id == id)
                    .and_then(|d| d.pair.notes.duplicate_text())
                    .unwrap_or_else(|| "a duplicate".into());
                self.message = format!(
                    "pair {id} is {what}; {} again accepts it anyway",
                    self.keymap.keys_of(Action::Accept)
                );
                Vec::new()
            }
            Intent::Decide {
                id,
                action: ReviewAction::Accept,
            } if self.editor.has_draft(id) => {
                self.mode = Mode::Confirm(Confirm::AcceptDraft(id));
                Vec::new()
            }
            Intent::Decide { id, action } => self.decide(id, action, None),
            Intent::Undo(selected) => {
                // The last decision made here, wherever it was; with none, the selected
                // pair's last decision (from an earlier session).
                let id = self.decisions.pop().unwrap_or(selected);
                self.message = format!("pair {id}: undoing its last decision…");
                self.write(Write::Undo(id))
            }
            Intent::EnterEditor => {
                self.mode = Mode::Editing;
                self.message = format!(
                    "editing: {} runs, {} saves and accepts, {} leaves",
                    self.keymap.keys_of(Action::RunQuery),
                    self.keymap.keys_of(Action::SaveEdit),
                    self.keymap.keys_of(Action::LeaveEditor)
                );
                Vec::new()
            }
            Intent::LeaveEditor => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Intent::RunQuery(sql) => {
                let pair = self.editor.pair;
                if sql.trim().is_empty() {
                    self.message = "nothing to run".into();
                    return Vec::new();
                }
                self.start_query(pair, sql, Duration::ZERO)
            }
            Intent::CancelQuery => {
                if self.results.cancel() {
                    self.message = "cancelling the query…".into();
                }
                Vec::new()
            }
            Intent::SaveEdit(_) if self.editor.gold.is_some() => {
                let at = self.editor.gold.as_ref().map(|g| g.location());
                self.message = format!(
                    "a gold pair is fixed in its file ({}): lode does not rewrite input files; \
                     {} copies the SQL",
                    at.unwrap_or_default(),
                    self.keymap.keys_of(Action::CopySql)
                );
                Vec::new()
            }
            Intent::SaveEdit(sql) => self.save_edit(sql),
            Intent::OpenGold(finding) => self.open_gold(finding),
            Intent::FilterQueue(search) => self.filter_queue(search),
            Intent::InsertName(name) => {
                self.editor.insert(&name, &self.theme);
                self.tab = Tab::Review;
                self.mode = Mode::Editing;
                self.message = format!("inserted {name}");
                Vec::new()
            }
        }
    }

    /// The periodic tick of the loop (every 2 s): reads the tuning jobs again, so a job
    /// submitted elsewhere shows (and is followed) without a refresh, and the ages move on.
    /// No new read while the last one asked for here is under way.
    pub fn on_tick(&mut self) -> Vec<Effect> {
        if self.jobs.reading {
            return Vec::new();
        }
        self.jobs.reading = true;
        vec![Effect::LoadJobs]
    }

    /// Shows the review queue filtered by `search` (a concept or a table picked in the
    /// coverage view).
    fn filter_queue(&mut self, search: String) -> Vec<Effect> {
        self.tab = Tab::Review;
        self.message = format!("review queue: {search}");
        if self.review.set_search(search) {
            self.request_rows()
        } else {
            Vec::new()
        }
    }

    /// Opens an audited gold pair's SQL in the editor (the pair's unsaved edit kept as a
    /// draft) and runs it, with the question and the finding shown above. Saving goes to the
    /// gold file by hand: lode has no writer for input files.
    fn open_gold(&mut self, finding: Box<lode_core::pipeline::audit::Finding>) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some((left, sql)) = self.editor.follow(None, &self.theme) {
            effects.extend(self.write(Write::SaveDraft { id: left, sql }));
        }
        self.editor.set(&finding.sql, &self.theme);
        self.editor.loaded = true;
        let sql = finding.sql.clone();
        self.message = format!(
            "gold pair {} ({}): {} runs it; fix it in the file, lode does not rewrite it",
            finding.position,
            finding.location(),
            self.keymap.keys_of(Action::RunQuery)
        );
        self.editor.gold = Some(finding);
        self.tab = Tab::Review;
        self.mode = Mode::Editing;
        effects.extend(self.start_query(None, sql, Duration::ZERO));
        effects
    }

    /// Records a decision on `id` (saving until the store answers), then moves on.
    fn decide(&mut self, id: i64, action: ReviewAction, note: Option<String>) -> Vec<Effect> {
        self.message = format!("pair {id} saving…");
        self.review.advance_from(id);
        self.write(Write::Decide { id, action, note })
    }

    fn save_edit(&mut self, sql: String) -> Vec<Effect> {
        let Some(id) = self.review.selected_id() else {
            return Vec::new();
        };
        if self.editor.pair != Some(id) || !self.editor.loaded {
            self.message = format!("pair {id} is still being read; save again in a moment");
            return Vec::new();
        }
        self.message = format!("pair {id}: validating and saving…");
        self.write(Write::SaveEdit { id, sql })
    }

    fn save_question(&mut self, question: &str) -> Vec<Effect> {
        let Some(d) = self.pair.shown() else {
            return Vec::new();
        };
        let id = d.pair.id;
        if question.is_empty() || question == d.pair.question {
            self.message = "question unchanged".into();
            return Vec::new();
        }
        self.message = format!("pair {id}: saving the question…");
        self.write(Write::SaveQuestion {
            id,
            question: question.to_string(),
        })
    }

    /// Forgets the selected pair's draft; the editor shows its stored SQL again.
    fn discard_draft(&mut self) -> Vec<Effect> {
        let Some(id) = self.review.selected_id() else {
            self.message = "no pair selected".into();
            return Vec::new();
        };
        if !self.editor.has_draft(id) {
            self.message = format!("pair {id} has no draft");
            return Vec::new();
        }
        let stored = self
            .pair
            .shown()
            .filter(|d| d.pair.id == id)
            .map(|d| d.pair.sql.clone());
        self.editor.discard(id, stored.as_deref(), &self.theme);
        if self.mode == Mode::Editing {
            self.mode = Mode::Normal;
        }
        self.message = format!("pair {id}: draft discarded");
        let mut effects = self.write(Write::DropDraft(id));
        effects.extend(self.auto_run());
        effects
    }

    /// Entering the coverage view recomputes a stale coverage in the background.
    fn on_tab_enter(&mut self) -> Vec<Effect> {
        if self.tab == Tab::Coverage && self.coverage.stale && self.background.is_none() {
            self.coverage.stale = false;
            self.background = Some("computing coverage…".into());
            return vec![Effect::Analyze];
        }
        // Back on the review view: the selected pair's results if they are not shown yet.
        if self.tab == Tab::Review {
            return self.auto_run();
        }
        Vec::new()
    }

    /// A stage started here ended: say how, and read what it changed.
    fn stage_ended(&mut self, message: String) -> Vec<Effect> {
        self.background = None;
        self.coverage.stale = true;
        // The reviewer keeps their place: the queue stays on its run (the new run is one
        // `R` away), unless there was nothing to review yet.
        let run = if self.review.run_id.is_none() && self.review.rows.is_empty() {
            RunChoice::Latest
        } else {
            RunChoice::Keep
        };
        self.message = if run == RunChoice::Keep {
            format!(
                "{message} · {} shows the newest run",
                self.keymap.keys_of(Action::NextRun)
            )
        } else {
            message
        };
        let mut effects = self.load_rows(run);
        effects.extend([Effect::LoadEval, Effect::LoadJobs]);
        effects
    }

    /// Re-reads `id` if the pair pane shows it (its status or text changed).
    fn reread(&self, id: i64) -> Vec<Effect> {
        if self.pair.id == Some(id) {
            vec![Effect::LoadDetail(id)]
        } else {
            Vec::new()
        }
    }

    /// A store write came back: say whether it is saved, and show what it changed.
    fn written(&mut self, w: Written) -> Vec<Effect> {
        match w {
            Written::Decided { id, result } => match result {
                Ok(r) => {
                    self.coverage.stale = true;
                    self.decisions.push(id);
                    self.message = format!("pair {id} {} (saved)", r.new_status);
                    self.review.set_status(id, r.new_status);
                    self.reread(id)
                }
                Err(e) => {
                    self.message = format!("not saved: {e}");
                    Vec::new()
                }
            },
            Written::Undone { id, result } => match result {
                Ok(Some(r)) => {
                    self.coverage.stale = true;
                    self.decisions.retain(|d| *d != id);
                    self.message = format!("pair {id} back to {}", r.new_status);
                    self.review.set_status(id, r.new_status);
                    // The cursor goes to the pair: in the queue shown (decided pairs stay
                    // until it is read again), else once the queue is read again.
                    match self.review.rows.iter().position(|row| row.id == id) {
                        Some(i) => {
                            self.review.cursor = i;
                            self.reread(id)
                        }
                        None => {
                            self.pending_select = Some(id);
                            self.request_rows()
                        }
                    }
                }
                Ok(None) => {
                    self.message = format!("pair {id} has no decision to undo");
                    Vec::new()
                }
                Err(e) => {
                    self.message = format!("undo failed: {e}");
                    Vec::new()
                }
            },
            Written::EditSaved { id, sql, result } => match result {
                Ok(()) => {
                    self.coverage.stale = true;
                    if self.editor.pair == Some(id) && self.editor.text() == sql {
                        self.editor.dirty = false;
                    }
                    if self.mode == Mode::Editing {
                        self.mode = Mode::Normal;
                    }
                    self.message = format!("pair {id} edited and accepted (saved)");
                    self.review.set_status(id, PairStatus::Accepted);
                    self.decisions.push(id);
                    self.editor.drafts.remove(&id);
                    let mut effects = self.write(Write::DropDraft(id));
                    effects.extend(self.reread(id));
                    effects
                }
                Err(e) => {
                    self.message = format!("not saved: {e}");
                    Vec::new()
                }
            },
            Written::QuestionSaved {
                id,
                question,
                result,
            } => match result {
                Ok(()) => {
                    self.message = format!("pair {id}: question saved");
                    self.review.set_question(id, &question);
                    self.reread(id)
                }
                Err(e) => {
                    self.message = format!("not saved: {e}");
                    Vec::new()
                }
            },
            Written::BulkAccepted { accepted, failed } => {
                self.coverage.stale = true;
                for id in std::mem::take(&mut self.bulk) {
                    if !failed.iter().any(|(f, _)| *f == id) {
                        self.decisions.push(id);
                    }
                }
                self.message = format!("accepted {accepted} pairs (saved)");
                if let Some((id, e)) = failed.first() {
                    self.message += &format!("; {} not saved (pair {id}: {e})", failed.len());
                }
                self.request_rows()
            }
            Written::Draft { id, saved, result } => {
                if let Err(e) = result {
                    self.message = format!(
                        "the draft of pair {id} was not {}: {e}",
                        if saved { "kept" } else { "discarded" }
                    );
                }
                Vec::new()
            }
        }
    }

    /// Applies a background result; what it asks to read next.
    pub fn handle_bg(&mut self, ev: BgEvent) -> Vec<Effect> {
        self.dirty = true;
        let mut effects = Vec::new();
        let mut force = false;
        match ev {
            BgEvent::QueryDone { ticket, result } => {
                if self.results.running_ticket() == Some(ticket)
                    && let (Ok(r), Some((Some(pair), sql))) = (&result, &self.results_for)
                {
                    self.result_cache.put(*pair, sql.clone(), r.clone());
                }
                self.results.finish(ticket, result);
                // Where SQLite says the error is, when the message names a token.
                if let (Results::Error(e), Some((_, sql))) =
                    (&self.results.state, &self.results_for)
                    && let Some((line, col)) = error_location(sql, e)
                {
                    self.results.state =
                        Results::Error(format!("{e} (at line {line}, column {col})"));
                }
            }
            BgEvent::Rows {
                generation,
                choice,
                run,
                rows,
            } => {
                if self.review.is_latest(generation) {
                    self.review.loading = false;
                    match rows {
                        Ok(rows) => {
                            self.review.run_id = run;
                            self.review.set_rows(rows);
                            if let Some(id) = self.pending_select.take() {
                                match self.review.rows.iter().position(|r| r.id == id) {
                                    Some(i) => self.review.cursor = i,
                                    None => {
                                        self.message += &format!(
                                            " (not shown under the filter `{}`; {} changes it)",
                                            self.review.filter_name(),
                                            self.keymap.keys_of(Action::FilterStatus)
                                        )
                                    }
                                }
                            }
                            if let RunChoice::After(_) = choice {
                                self.message = match run {
                                    Some(r) => format!("showing run {r}"),
                                    None => "showing every run".into(),
                                };
                            }
                            // Statuses may have changed under the same selection.
                            force = true;
                        }
                        Err(e) => self.message = format!("cannot read the store: {e}"),
                    }
                }
            }
            BgEvent::Detail { id, detail } => {
                if self.pair.loaded(id, detail.map(|d| *d))
                    && let Some(d) = &self.pair.detail
                {
                    self.editor.loaded_sql(id, &d.pair.sql, &self.theme);
                    effects.extend(self.auto_run());
                }
            }
            BgEvent::Drafts(Ok(drafts)) => {
                for (id, sql) in drafts {
                    if self.editor.pair == Some(id) && !self.editor.dirty {
                        self.editor.replace(&sql, &self.theme);
                        self.editor.loaded = true;
                    } else if self.editor.pair != Some(id) {
                        self.editor.drafts.insert(id, sql);
                    }
                }
            }
            BgEvent::Drafts(Err(e)) => self.message = format!("cannot read the SQL drafts: {e}"),
            BgEvent::Eval(Ok(view)) => self.eval.view = *view,
            BgEvent::Eval(Err(e)) => self.message = format!("cannot read the evaluations: {e}"),
            BgEvent::Jobs(Ok(read)) => {
                // The selected job's events are read again when the jobs changed.
                if self.jobs.set_list(*read) {
                    self.jobs.requested = None;
                }
            }
            BgEvent::Jobs(Err(e)) => {
                self.jobs.reading = false;
                self.message = format!("cannot read the tuning jobs: {e}");
            }
            BgEvent::JobEvents { id, events } => {
                if self.jobs.requested == Some(id) {
                    self.jobs.events = Some((id, events));
                }
            }
            BgEvent::Written(w) => {
                self.writing = false;
                effects = self.written(w);
                if let Some(next) = self.writes.pop_front() {
                    self.writing = true;
                    effects.push(Effect::Write(next));
                }
            }
            BgEvent::Message(msg) => {
                self.message = msg;
                effects.push(Effect::LoadJobs);
            }
            BgEvent::Stage(StageEvent::Started { detail, .. }) => {
                self.background = Some(format!("{detail}…"))
            }
            BgEvent::Stage(StageEvent::Progress {
                stage,
                done,
                total,
                unit,
            }) => {
                let verb = match stage {
                    Stage::Generate => "generating",
                    Stage::Analyze => "analyzing",
                    Stage::Tune => "training",
                    Stage::Evaluate => "evaluating",
                };
                self.background = Some(format!("{verb} {done}/{total} {unit}"));
            }
            // Each stored pair shows when the stage ends and the queue is read again.
            BgEvent::Stage(StageEvent::ItemStored { .. }) => {}
            BgEvent::Stage(StageEvent::Warning { message, .. }) => {
                self.message = format!("warning: {message}")
            }
            BgEvent::Stage(StageEvent::Finished { summary, .. }) => {
                effects = self.stage_ended(summary)
            }
            BgEvent::Stage(StageEvent::Failed { stage, error }) => {
                effects = self.stage_ended(format!("{} failed: {error}", stage.name()))
            }
            BgEvent::JobsChanged => effects.push(Effect::LoadJobs),
            BgEvent::Coverage(Ok(c)) => {
                self.background = None;
                self.coverage.coverage = Some(*c);
                self.message = "coverage computed".into();
            }
            BgEvent::Coverage(Err(e)) => {
                self.background = None;
                self.message = format!("cannot compute the coverage: {e}");
            }
            BgEvent::EditedSql(sql) => {
                self.editor.replace(&sql, &self.theme);
                self.mode = Mode::Editing;
            }
        }
        effects.extend(self.follow_selection(force));
        self.sync_results();
        effects
    }

    // -----------------------------------------------------------------------------------------
    // Hints and rendering

    /// The keys the focused pane offers now, then the app's own: what the footer shows.
    pub fn hints(&self) -> Vec<Hint> {
        let cx = shared!(self);
        if self.mode == Mode::Editing {
            return self.editor.hints(&cx);
        }
        let mut h = match self.tab {
            Tab::Review => self.review.hints(&cx),
            Tab::Schema => self.schema.hints(&cx),
            Tab::Coverage => self.coverage.hints(&cx),
            Tab::Eval => self.eval.hints(&cx),
            Tab::Jobs => self.jobs.hints(&cx),
        };
        h.extend(hints(&self.keymap, &[Action::Help, Action::Quit]));
        h
    }

    /// Every key the view answers now: the footer's, those of the view's other panes, and
    /// the app's own (which answer in every view).
    pub fn view_hints(&self) -> Vec<Hint> {
        let cx = shared!(self);
        let mut h = self.hints();
        if self.tab == Tab::Review {
            h.extend(self.pair.hints(&cx));
            h.extend(self.editor.hints(&cx));
        }
        h.extend(self.results.hints(&cx));
        h.extend(hints(&self.keymap, APP_KEYS));
        h
    }

    pub fn render(&mut self, f: &mut Frame) {
        let area = f.area();
        if area.width < 60 || area.height < 16 {
            let p = Paragraph::new(format!(
                "The window is {}×{}; lode needs at least 60×16. Enlarge it, or press q to quit.",
                area.width, area.height
            ))
            .wrap(Wrap { trim: true });
            f.render_widget(p, area);
            return;
        }
        let [top, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(5),
            Constraint::Length(2),
        ])
        .areas(area);
        let titles: Vec<Line> = TABS
            .iter()
            .enumerate()
            .map(|(i, t)| Line::from(format!("{} {}", i + 1, t.title())))
            .collect();
        let selected = TABS.iter().position(|t| *t == self.tab).unwrap_or(0);
        let tabs = Tabs::new(titles)
            .select(selected)
            .style(self.theme.ui(Ui::Muted))
            .highlight_style(
                self.theme
                    .ui(Ui::Title)
                    .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )
            .divider("│");
        f.render_widget(tabs, top);
        let cx = shared!(self);
        match self.tab {
            Tab::Review => {
                let editing = self.mode == Mode::Editing;
                let [left, right] =
                    Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                        .areas(body);
                self.review.render(f, left, &cx, !editing);
                // The SQL pane is as tall as the whole statement needs (wrapped), up to half
                // the column; what does not fit scrolls, with a marker.
                let results_h = (right.height * 30 / 100).max(6);
                let sql_lines = if editing {
                    self.editor.lines().len()
                } else {
                    self.editor
                        .view_lines(right.width.saturating_sub(2) as usize, &self.theme)
                        .len()
                };
                let sql_max = (right.height / 2).max(5);
                let sql_h = (sql_lines as u16 + 2).clamp(5, sql_max);
                let [detail, editor, results] = Layout::vertical([
                    Constraint::Min(4),
                    Constraint::Length(sql_h),
                    Constraint::Length(results_h),
                ])
                .areas(right);
                match &self.editor.gold {
                    Some(g) => render_gold(f, detail, &cx, g),
                    None => self.pair.render(f, detail, &cx, false),
                }
                self.editor.render(f, editor, &cx, editing);
                self.results.render(f, results, &cx, false);
            }
            Tab::Schema => self.schema.render(f, body, &cx, true),
            Tab::Coverage => self.coverage.render(f, body, &cx, true),
            Tab::Eval => self.eval.render(f, body, &cx, true),
            Tab::Jobs => self.jobs.render(f, body, &cx, true),
        }
        super::chrome::render_footer(f, footer, self);
        match &self.mode {
            Mode::Help => super::chrome::render_help(f, area, self),
            Mode::Confirm(c) => {
                let text = match c {
                    Confirm::BulkAccept(ids) => {
                        format!("Accept the {} valid pairs shown? y/n", ids.len())
                    }
                    Confirm::CancelJob(id) => format!("Cancel tuning job {id}? y/n"),
                    Confirm::AcceptDraft(id) => format!(
                        "Pair {id} has an unsaved SQL draft. s: save the draft and accept · a: \
                         accept the stored SQL · Esc: cancel"
                    ),
                };
                let r = centered(area, 60, 4);
                f.render_widget(Clear, r);
                f.render_widget(
                    Paragraph::new(text)
                        .wrap(Wrap { trim: true })
                        .block(Block::bordered().border_style(self.theme.ui(Ui::Warning))),
                    r,
                );
            }
            _ => {}
        }
    }
}

/// The audited gold pair the editor holds: where it is, its question, and the finding.
fn render_gold(
    f: &mut Frame,
    area: ratatui::layout::Rect,
    cx: &Shared,
    g: &lode_core::pipeline::audit::Finding,
) {
    let theme = cx.theme;
    let block = cx.block(
        format!(
            " gold pair · {} {} · {} ",
            g.set.name(),
            g.position,
            g.location()
        ),
        false,
    );
    let lines = vec![
        Line::from(ratatui::text::Span::styled(
            g.question.clone(),
            theme.ui(Ui::Title),
        )),
        Line::from(vec![
            ratatui::text::Span::styled(format!("{}: ", g.kind.name()), theme.ui(Ui::Warning)),
            ratatui::text::Span::raw(g.reason.clone()),
        ]),
        Line::from(format!("fix: {}", g.fix)),
        Line::from(ratatui::text::Span::styled(
            "edit and run it here; the fix goes into the gold file by hand",
            theme.ui(Ui::Muted),
        )),
    ];
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
