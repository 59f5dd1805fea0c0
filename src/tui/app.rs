//! The TUI's one state: the panes, which view and pane has the keyboard, the footer, and the
//! store writes in flight. Keys go to the focused pane, which answers with an [`Intent`]; the
//! app turns intents into [`Effect`]s that the loop performs off the UI thread, and applies
//! their results ([`BgEvent`]s) when they come back. A review decision shows as saving until
//! its write has come back from the store; only then does the footer say it is saved.

use std::collections::VecDeque;
use std::sync::Arc;

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
use super::panes::results::ResultsPane;
use super::panes::review::ReviewPane;
use super::panes::schema::SchemaPane;
use super::panes::{Hint, Intent, Pane, Prompt, Shared, centered, hints};
use super::theme::{Theme, Ui};
use lode_core::project::Project;
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
}

/// A key typed into a one-line prompt.
enum LineEdit {
    Submit(String),
    Cancel,
    Changed(String),
    Ignored,
}

fn edit_line(mut s: String, key: &KeyEvent) -> LineEdit {
    match key.code {
        KeyCode::Enter => LineEdit::Submit(s),
        KeyCode::Esc => LineEdit::Cancel,
        KeyCode::Backspace => {
            s.pop();
            LineEdit::Changed(s)
        }
        KeyCode::Char(c) => {
            s.push(c);
            LineEdit::Changed(s)
        }
        _ => LineEdit::Ignored,
    }
}

impl App {
    /// The app with nothing read yet: [`App::start`] says what to read.
    pub fn new(project: Arc<Project>, store: Arc<Store>, keymap: Keymap, theme: Theme) -> App {
        App {
            project,
            store,
            keymap,
            theme,
            tab: Tab::Review,
            mode: Mode::Normal,
            review: ReviewPane::default(),
            pair: PairPane::default(),
            editor: EditorPane::default(),
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
        }
    }

    /// The first reads: the newest run's queue, the evaluations, the tuning jobs.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = self.load_rows(RunChoice::Latest);
        effects.extend([Effect::LoadEval, Effect::LoadJobs]);
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
            if let Some(m) = self.editor.follow(pair, &self.theme) {
                self.message = m;
            }
            effects.extend(pair.map(Effect::LoadDetail));
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
            Mode::Search(s) => match edit_line(s, &key) {
                LineEdit::Submit(s) => {
                    self.mode = Mode::Normal;
                    self.apply_search(s)
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
            Mode::Reason(s) => match edit_line(s, &key) {
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
            Mode::Question(s) => match edit_line(s, &key) {
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
        effects
    }

    fn confirm(&mut self, what: Confirm, key: &KeyEvent) -> Vec<Effect> {
        self.mode = Mode::Normal;
        if key.code != KeyCode::Char('y') {
            self.message = "cancelled".into();
            return Vec::new();
        }
        match what {
            Confirm::Quit(_) => self.quit(),
            Confirm::BulkAccept(ids) => {
                self.message = format!("accepting {} pairs…", ids.len());
                self.write(Write::BulkAccept(ids))
            }
            Confirm::CancelJob(id) => vec![Effect::CancelJob(id)],
        }
    }

    fn quit(&mut self) -> Vec<Effect> {
        self.quit = true;
        if self.saving() {
            self.message = "saving… (lode quits once the store has it)".into();
        }
        vec![Effect::Quit]
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
                s.push_str(&one_line());
                self.mode = Mode::Search(s.clone());
                self.apply_search(s)
            }
            Mode::Reason(mut s) => {
                s.push_str(&one_line());
                self.mode = Mode::Reason(s);
                Vec::new()
            }
            Mode::Question(mut s) => {
                s.push_str(&one_line());
                self.mode = Mode::Question(s);
                Vec::new()
            }
            _ => {
                self.message = "paste into the editor (e) or a prompt".into();
                Vec::new()
            }
        }
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
            Action::Quit => {
                let n = self.editor.unsaved();
                if n > 0 {
                    self.mode = Mode::Confirm(Confirm::Quit(n));
                    return Vec::new();
                }
                return self.quit();
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
                return self.run_query(self.editor.text());
            }
            Action::CancelQuery => {
                self.results.cancel();
                return Vec::new();
            }
            Action::CopySql => {
                self.message = "SQL copied to the clipboard (OSC 52)".into();
                return vec![Effect::Copy(self.editor.text())];
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
            Intent::Decide { id, action } => self.decide(id, action, None),
            Intent::Undo(id) => {
                self.message = format!("pair {id}: undoing…");
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
            Intent::RunQuery(sql) => self.run_query(sql),
            Intent::CancelQuery => {
                if self.results.cancel() {
                    self.message = "cancelling the query…".into();
                }
                Vec::new()
            }
            Intent::SaveEdit(sql) => self.save_edit(sql),
            Intent::InsertName(name) => {
                self.editor.insert(&name, &self.theme);
                self.tab = Tab::Review;
                self.mode = Mode::Editing;
                self.message = format!("inserted {name}");
                Vec::new()
            }
        }
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
        let (id, status) = (d.pair.id, d.pair.status);
        if question.is_empty() || question == d.pair.question {
            self.message = "question unchanged".into();
            return Vec::new();
        }
        self.message = format!("pair {id}: saving the question…");
        self.write(Write::SaveQuestion {
            id,
            question: question.to_string(),
            status,
        })
    }

    fn run_query(&mut self, sql: String) -> Vec<Effect> {
        if sql.trim().is_empty() {
            self.message = "nothing to run".into();
            return Vec::new();
        }
        let (ticket, cancel) = self.results.start();
        vec![Effect::RunQuery {
            ticket,
            sql,
            cancel,
        }]
    }

    /// Entering the coverage view recomputes a stale coverage in the background.
    fn on_tab_enter(&mut self) -> Vec<Effect> {
        if self.tab == Tab::Coverage && self.coverage.stale && self.background.is_none() {
            self.coverage.stale = false;
            self.background = Some("computing coverage…".into());
            return vec![Effect::Analyze];
        }
        Vec::new()
    }

    /// A stage started here ended: say how, and read what it changed.
    fn stage_ended(&mut self, message: String) -> Vec<Effect> {
        self.background = None;
        self.coverage.stale = true;
        self.message = message;
        let run = if self.review.run_id.is_none() || self.tab == Tab::Review {
            RunChoice::Latest
        } else {
            RunChoice::Keep
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
                    self.message = format!("pair {id} back to {}", r.new_status);
                    self.review.set_status(id, r.new_status);
                    self.reread(id)
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
                    self.reread(id)
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
                self.message = format!("accepted {accepted} pairs (saved)");
                if let Some((id, e)) = failed.first() {
                    self.message += &format!("; {} not saved (pair {id}: {e})", failed.len());
                }
                self.request_rows()
            }
        }
    }

    /// Applies a background result; what it asks to read next.
    pub fn handle_bg(&mut self, ev: BgEvent) -> Vec<Effect> {
        self.dirty = true;
        let mut effects = Vec::new();
        let mut force = false;
        match ev {
            BgEvent::QueryDone { ticket, result } => self.results.finish(ticket, result),
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
                }
            }
            BgEvent::Eval(Ok(view)) => self.eval.view = *view,
            BgEvent::Eval(Err(e)) => self.message = format!("cannot read the evaluations: {e}"),
            BgEvent::Jobs(Ok(list)) => {
                self.jobs.set_list(list);
                // The selected job's events may have changed with it.
                self.jobs.requested = None;
            }
            BgEvent::Jobs(Err(e)) => self.message = format!("cannot read the tuning jobs: {e}"),
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
                let [detail, editor, results] = Layout::vertical([
                    Constraint::Percentage(40),
                    Constraint::Percentage(25),
                    Constraint::Percentage(35),
                ])
                .areas(right);
                self.pair.render(f, detail, &cx, false);
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
                    Confirm::Quit(n) => format!(
                        "{n} unsaved SQL edit{} will be lost. Quit? y/n",
                        if *n == 1 { "" } else { "s" }
                    ),
                };
                let r = centered(area, 50, 3);
                f.render_widget(Clear, r);
                f.render_widget(
                    Paragraph::new(text)
                        .block(Block::bordered().border_style(self.theme.ui(Ui::Warning))),
                    r,
                );
            }
            _ => {}
        }
    }
}
