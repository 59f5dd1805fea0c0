//! The TUI's one state: what is shown, what is selected, what runs in the background. Keys
//! become [`Action`]s; actions change the state and may ask for side effects ([`Command`]s)
//! that the loop performs; results come back as [`BgEvent`]s. Every review decision is
//! written to the store before the screen says it is saved.

use std::collections::BTreeMap;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Gauge, Paragraph, Row, Sparkline, Table, Tabs, Wrap,
};
use tui_textarea::TextArea;

use super::keymap::{Action, Context, Keymap};
use super::theme::Theme;
use lode_core::pipeline::coverage::Coverage;
use lode_core::project::Project;
use lode_core::sql::{CancelFlag, ExecError, QueryResult};
use lode_core::store::{
    PairStatus, PairSummary, QueueQuery, QueueSort, ReviewAction, RunKind, Store, Validation,
};
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

/// Status filters of the queue.
pub const FILTERS: [(&str, &[PairStatus]); 6] = [
    ("all", &[]),
    (
        "to review",
        &[PairStatus::Valid, PairStatus::Fixed, PairStatus::Pending],
    ),
    ("accepted", &[PairStatus::Accepted]),
    ("rejected", &[PairStatus::Rejected]),
    ("failed", &[PairStatus::Invalid]),
    ("duplicate", &[PairStatus::Duplicate, PairStatus::Leakage]),
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

#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    /// Quit although SQL edits are unsaved.
    Quit(usize),
    BulkAccept(Vec<i64>),
    CancelJob(i64),
}

/// Side effects the loop performs.
#[derive(Debug, Clone)]
pub enum Command {
    RunQuery {
        ticket: u64,
        sql: String,
        cancel: CancelFlag,
    },
    /// Reads the queue for a filter, search or order off the UI thread.
    LoadRows {
        generation: u64,
        query: QueueQuery,
    },
    Copy(String),
    ExternalEdit(String),
    Generate,
    Analyze,
    Evaluate,
    CancelJob(i64),
    Quit,
}

/// Results of background work.
#[derive(Debug, Clone)]
pub enum BgEvent {
    QueryDone {
        ticket: u64,
        result: Result<QueryResult, ExecError>,
    },
    /// The queue read for [`Command::LoadRows`] (older generations are dropped).
    Rows {
        generation: u64,
        rows: Result<Vec<PairSummary>, String>,
    },
    /// An event of a task started here (generation, evaluation).
    Stage(StageEvent),
    /// A one-line outcome of a small action (a job cancelled).
    Message(String),
    /// A tuning job's status or events changed in the store.
    JobsChanged,
    /// The coverage of the run shown, or why it could not be computed.
    Coverage(Result<Box<Coverage>, String>),
    EditedSql(String),
}

/// The results pane.
#[derive(Debug, Clone, Default)]
pub enum Results {
    #[default]
    Idle,
    Running {
        ticket: u64,
        cancel: CancelFlag,
    },
    Done(QueryResult),
    Error(String),
}

/// The selected pair, with what the detail pane shows.
#[derive(Debug, Clone)]
pub struct Detail {
    pub pair: lode_core::store::Pair,
    pub attempts: Vec<Validation>,
    pub gold: Option<(String, String)>,
}

/// Evaluation view data.
#[derive(Debug, Clone, Default)]
pub struct EvalView {
    pub run: Option<lode_core::store::EvalRun>,
    pub cases: Vec<lode_core::store::EvalCase>,
    pub flips: Vec<lode_core::pipeline::model_eval::Flip>,
}

pub struct App {
    pub project: Arc<Project>,
    pub store: Arc<Store>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub tab: Tab,
    pub mode: Mode,
    pub run_id: Option<i64>,
    pub filter: usize,
    pub search: String,
    pub sort: QueueSort,
    pub rows: Vec<PairSummary>,
    /// A queue read is under way (for the latest filter, search or order).
    pub rows_loading: bool,
    rows_generation: u64,
    pub cursor: usize,
    pub detail: Option<Detail>,
    pub editor: TextArea<'static>,
    /// The editor holds text the user changed (not the pair's SQL).
    pub editor_dirty: bool,
    /// The pair whose SQL (or draft) the editor holds.
    editor_pair: Option<i64>,
    /// Unsaved edits of pairs the user moved away from, restored on return.
    pub drafts: std::collections::HashMap<i64, String>,
    pub results: Results,
    pub results_col: usize,
    pub results_row: usize,
    /// Result rows the results pane showed when last drawn (its page size).
    results_page: usize,
    ticket: u64,
    pub schema_cursor: usize,
    pub schema_search: String,
    pub coverage: Option<Coverage>,
    /// A decision was made since the coverage was computed.
    pub coverage_stale: bool,
    /// First concept row shown in the coverage view.
    pub coverage_scroll: usize,
    pub eval: EvalView,
    pub eval_cursor: usize,
    pub jobs: Vec<lode_core::store::Job>,
    pub job_cursor: usize,
    pub message: String,
    pub background: Option<String>,
    /// The model generation and evaluation started here use (the global flags).
    pub model: ModelRequest,
    pub dirty: bool,
    pub quit: bool,
}

fn clip(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > n {
        format!(
            "{}…",
            one.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    } else {
        one
    }
}

impl App {
    pub fn new(project: Arc<Project>, store: Arc<Store>, keymap: Keymap, theme: Theme) -> App {
        let run_id = store.runs().ok().and_then(|r| {
            r.into_iter()
                .find(|r| matches!(r.kind, RunKind::Generate | RunKind::Import))
                .map(|r| r.id)
        });
        let mut app = App {
            project,
            store,
            keymap,
            theme,
            tab: Tab::Review,
            mode: Mode::Normal,
            run_id,
            filter: 1,
            search: String::new(),
            sort: QueueSort::Id,
            rows: Vec::new(),
            rows_loading: false,
            rows_generation: 0,
            cursor: 0,
            detail: None,
            editor: TextArea::default(),
            editor_dirty: false,
            editor_pair: None,
            drafts: std::collections::HashMap::new(),
            results: Results::Idle,
            results_col: 0,
            results_row: 0,
            results_page: 10,
            ticket: 0,
            schema_cursor: 0,
            schema_search: String::new(),
            coverage: None,
            coverage_stale: true,
            coverage_scroll: 0,
            eval: EvalView::default(),
            eval_cursor: 0,
            jobs: Vec::new(),
            job_cursor: 0,
            message: String::new(),
            background: None,
            model: ModelRequest::default_model(),
            dirty: true,
            quit: false,
        };
        app.reload_rows();
        app.reload_eval();
        app.jobs = app.store.jobs().unwrap_or_default();
        app
    }

    /// Reloads the queue for the filter and search, keeping the selected pair if present.
    pub fn reload_rows(&mut self) {
        self.rows_generation += 1;
        self.rows_loading = false;
        let query = self.queue_query();
        let rows = self.store.pair_summaries(&query).unwrap_or_else(|e| {
            self.message = format!("cannot read the store: {e}");
            Vec::new()
        });
        self.set_rows(rows);
    }

    /// Asks for the queue to be read in the background: the key's frame comes at once, the
    /// rows when read (a newer request supersedes an older one).
    pub fn request_rows(&mut self) -> Vec<Command> {
        self.rows_generation += 1;
        self.rows_loading = true;
        vec![Command::LoadRows {
            generation: self.rows_generation,
            query: self.queue_query(),
        }]
    }

    fn set_rows(&mut self, rows: Vec<PairSummary>) {
        let keep = self.rows.get(self.cursor).map(|r| r.id);
        self.rows = rows;
        self.cursor = keep
            .and_then(|id| self.rows.iter().position(|r| r.id == id))
            .unwrap_or(0)
            .min(self.rows.len().saturating_sub(1));
        self.load_detail();
        self.dirty = true;
    }

    /// The store query for the status filter, the order and the search. Search words of the
    /// form `gen:NAME`, `concept:NAME`, `table:NAME`, `status:NAME` and `valid:yes|no`
    /// filter on those; the other words must occur in the question or the SQL.
    pub fn queue_query(&self) -> QueueQuery {
        let mut q = QueueQuery {
            run_id: self.run_id,
            statuses: FILTERS[self.filter].1.to_vec(),
            sort: self.sort,
            ..Default::default()
        };
        for word in self.search.split_whitespace() {
            match word.split_once(':') {
                Some(("gen" | "generator", v)) if !v.is_empty() => q.generator = Some(v.into()),
                Some(("concept", v)) if !v.is_empty() => q.concept = Some(v.to_string()),
                Some(("table", v)) if !v.is_empty() => q.table = Some(v.into()),
                Some(("status", v)) if !v.is_empty() => {
                    let known: Vec<PairStatus> =
                        v.split(',').filter_map(|s| s.parse().ok()).collect();
                    if known.is_empty() {
                        // Not a status: searched as words, so it matches nothing rather
                        // than silently showing everything.
                        q.text.push(word.to_string());
                    } else {
                        q.statuses = known;
                    }
                }
                Some(("valid", v)) => {
                    q.statuses = if matches!(v, "no" | "false" | "0") {
                        vec![PairStatus::Invalid]
                    } else {
                        vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Accepted]
                    };
                }
                _ => q.text.push(word.to_string()),
            }
        }
        q
    }

    fn load_detail(&mut self) {
        self.detail = self.rows.get(self.cursor).and_then(|r| {
            let pair = self.store.pair(r.id).ok()?;
            let attempts = self.store.validations(r.id).unwrap_or_default();
            let gold = pair
                .parent_gold_id
                .and_then(|g| self.store.gold_pair(g).ok().flatten());
            Some(Detail {
                pair,
                attempts,
                gold,
            })
        });
        let selected = self.detail.as_ref().map(|d| d.pair.id);
        if self.editor_dirty && self.editor_pair == selected {
            return; // still editing this pair
        }
        // An unsaved edit stays with its pair, never with the next one.
        if self.editor_dirty
            && let Some(p) = self.editor_pair
        {
            self.drafts.insert(p, self.editor.lines().join("\n"));
            self.message = format!("the unsaved edit of pair {p} is kept as a draft");
        }
        let draft = selected.and_then(|id| self.drafts.remove(&id));
        match draft {
            Some(d) => {
                self.set_editor(&d);
                self.editor_dirty = true;
            }
            None => {
                let sql = self
                    .detail
                    .as_ref()
                    .map(|d| d.pair.sql.clone())
                    .unwrap_or_default();
                self.set_editor(&sql);
            }
        }
        self.editor_pair = selected;
    }

    /// Unsaved SQL edits: the editor's and the stashed drafts.
    pub fn unsaved_edits(&self) -> usize {
        self.drafts.len() + usize::from(self.editor_dirty)
    }

    fn set_editor(&mut self, sql: &str) {
        let sql = super::highlight::layout(sql);
        self.editor = TextArea::new(sql.lines().map(String::from).collect());
        self.editor_dirty = false;
        super::highlight::apply(&mut self.editor, &self.theme);
    }

    pub fn reload_eval(&mut self) {
        let runs = self.store.eval_runs().unwrap_or_default();
        self.eval.run = runs.first().cloned();
        self.eval.cases = self
            .eval
            .run
            .as_ref()
            .map(|r| self.store.eval_cases(r.id).unwrap_or_default())
            .unwrap_or_default();
        self.eval.flips = match (runs.first(), runs.get(1)) {
            (Some(a), Some(b)) => {
                lode_core::pipeline::model_eval::diff_runs(&self.store, b.id, a.id)
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        };
    }

    fn selected_id(&self) -> Option<i64> {
        self.rows.get(self.cursor).map(|r| r.id)
    }

    fn move_cursor(&mut self, delta: isize) {
        match self.tab {
            Tab::Review => {
                if self.rows.is_empty() {
                    return;
                }
                let n = self.rows.len() as isize;
                self.cursor = (self.cursor as isize + delta).clamp(0, n - 1) as usize;
                self.load_detail();
            }
            Tab::Schema => {
                let n = self.schema_lines().len() as isize;
                self.schema_cursor =
                    (self.schema_cursor as isize + delta).clamp(0, (n - 1).max(0)) as usize;
            }
            Tab::Jobs => {
                let n = self.jobs.len() as isize;
                self.job_cursor =
                    (self.job_cursor as isize + delta).clamp(0, (n - 1).max(0)) as usize;
            }
            Tab::Eval => {
                let n = self.eval.cases.iter().filter(|c| !c.correct).count() as isize;
                self.eval_cursor =
                    (self.eval_cursor as isize + delta).clamp(0, (n - 1).max(0)) as usize;
            }
            Tab::Coverage => {
                let n = self
                    .coverage
                    .as_ref()
                    .map_or(0, |c| coverage_concepts(c).len()) as isize;
                self.coverage_scroll =
                    (self.coverage_scroll as isize + delta).clamp(0, (n - 1).max(0)) as usize;
            }
        }
    }

    /// The mouse wheel (with `ui.mouse: true`): moves the list of the view.
    pub fn scroll(&mut self, delta: isize) {
        self.dirty = true;
        if self.mode == Mode::Normal {
            self.move_cursor(delta);
        }
    }

    /// Records a decision on the selected pair, then moves on.
    fn decide(&mut self, action: ReviewAction, note: Option<&str>) {
        let Some(id) = self.selected_id() else {
            self.message = "no pair selected".into();
            return;
        };
        match self.store.review(id, action, None, None, None, note) {
            Ok(r) => {
                self.coverage_stale = true;
                self.message = format!("pair {id} {} (saved)", r.new_status);
                if let Some(row) = self.rows.get_mut(self.cursor) {
                    row.status = r.new_status;
                }
                if self.cursor + 1 < self.rows.len() {
                    self.cursor += 1;
                }
                self.load_detail();
            }
            Err(e) => self.message = format!("not saved: {e}"),
        }
    }

    fn save_edit(&mut self) {
        let Some(id) = self.selected_id() else { return };
        let sql = self.editor.lines().join("\n");
        let v = lode_core::pipeline::validate::validate(
            &self.project.db,
            &self.project.schema,
            &sql,
            &self.project.config.generate.validators,
        );
        if !v.ok {
            self.message = format!(
                "not saved: {} ({})",
                v.error.unwrap_or_default(),
                v.error_kind.unwrap_or_default()
            );
            return;
        }
        let saved = self
            .store
            .edit_and_accept(id, None, Some(&sql), Some("edited"));
        match saved {
            Ok(_) => {
                self.coverage_stale = true;
                self.editor_dirty = false;
                self.mode = Mode::Normal;
                self.message = format!("pair {id} edited and accepted (saved)");
                if let Some(row) = self.rows.get_mut(self.cursor) {
                    row.status = PairStatus::Accepted;
                }
                self.load_detail();
            }
            Err(e) => self.message = format!("not saved: {e}"),
        }
    }

    fn save_question(&mut self, question: &str) {
        let Some(d) = &self.detail else { return };
        let (id, status) = (d.pair.id, d.pair.status);
        if question.is_empty() || question == d.pair.question {
            self.message = "question unchanged".into();
            return;
        }
        match self.store.review(
            id,
            ReviewAction::Edit,
            Some(question),
            None,
            Some(status),
            Some("question edited"),
        ) {
            Ok(_) => {
                self.message = format!("pair {id}: question saved");
                if let Some(row) = self.rows.get_mut(self.cursor) {
                    row.question = question.to_string();
                }
                self.load_detail();
            }
            Err(e) => self.message = format!("not saved: {e}"),
        }
    }

    fn undo(&mut self) {
        let Some(id) = self.selected_id() else { return };
        match self.store.undo_last_review(id) {
            Ok(Some(r)) => {
                self.coverage_stale = true;
                self.message = format!("pair {id} back to {}", r.new_status);
                if let Some(row) = self.rows.get_mut(self.cursor) {
                    row.status = r.new_status;
                }
                self.load_detail();
            }
            Ok(None) => self.message = format!("pair {id} has no decision to undo"),
            Err(e) => self.message = format!("undo failed: {e}"),
        }
    }

    /// Schema lines: a table, then its columns (table index, column index).
    pub fn schema_lines(&self) -> Vec<(usize, Option<usize>)> {
        let q = self.schema_search.to_lowercase();
        let mut out = Vec::new();
        for (ti, t) in self.project.schema.tables.iter().enumerate() {
            let table_hit = q.is_empty() || t.name.to_lowercase().contains(&q);
            let cols: Vec<usize> = t
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| table_hit || c.name.to_lowercase().contains(&q))
                .map(|(i, _)| i)
                .collect();
            if table_hit || !cols.is_empty() {
                out.push((ti, None));
                out.extend(cols.into_iter().map(|c| (ti, Some(c))));
            }
        }
        out
    }

    fn run_query(&mut self) -> Vec<Command> {
        let sql = self.editor.lines().join("\n");
        if sql.trim().is_empty() {
            self.message = "nothing to run".into();
            return Vec::new();
        }
        self.ticket += 1;
        let cancel = CancelFlag::new();
        self.results = Results::Running {
            ticket: self.ticket,
            cancel: cancel.clone(),
        };
        self.results_col = 0;
        self.results_row = 0;
        vec![Command::RunQuery {
            ticket: self.ticket,
            sql,
            cancel,
        }]
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        self.dirty = true;
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Mode::Search(mut s) => match key.code {
                KeyCode::Enter | KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    if key.code == KeyCode::Esc {
                        s.clear();
                    }
                    self.apply_search(s)
                }
                KeyCode::Backspace => {
                    s.pop();
                    self.mode = Mode::Search(s.clone());
                    self.apply_search(s)
                }
                KeyCode::Char(c) => {
                    s.push(c);
                    self.mode = Mode::Search(s.clone());
                    self.apply_search(s)
                }
                _ => Vec::new(),
            },
            Mode::Reason(mut s) => {
                match key.code {
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        let note = (!s.trim().is_empty()).then_some(s.trim().to_string());
                        self.decide(ReviewAction::Reject, note.as_deref());
                    }
                    KeyCode::Esc => {
                        self.mode = Mode::Normal;
                        self.message = "reject cancelled".into();
                    }
                    KeyCode::Backspace => {
                        s.pop();
                        self.mode = Mode::Reason(s);
                    }
                    KeyCode::Char(c) => {
                        s.push(c);
                        self.mode = Mode::Reason(s);
                    }
                    _ => {}
                }
                Vec::new()
            }
            Mode::Question(mut s) => {
                match key.code {
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        self.save_question(s.trim());
                    }
                    KeyCode::Esc => {
                        self.mode = Mode::Normal;
                        self.message = "question unchanged".into();
                    }
                    KeyCode::Backspace => {
                        s.pop();
                        self.mode = Mode::Question(s);
                    }
                    KeyCode::Char(c) => {
                        s.push(c);
                        self.mode = Mode::Question(s);
                    }
                    _ => {}
                }
                Vec::new()
            }
            Mode::Confirm(what) => {
                self.mode = Mode::Normal;
                if key.code != KeyCode::Char('y') {
                    self.message = "cancelled".into();
                    return Vec::new();
                }
                match what {
                    Confirm::Quit(_) => {
                        self.quit = true;
                        vec![Command::Quit]
                    }
                    Confirm::BulkAccept(ids) => {
                        let mut n = 0;
                        for id in &ids {
                            if self
                                .store
                                .review(*id, ReviewAction::Accept, None, None, None, Some("bulk"))
                                .is_ok()
                            {
                                n += 1;
                            }
                        }
                        self.coverage_stale = true;
                        self.message = format!("accepted {n} pairs (saved)");
                        self.reload_rows();
                        Vec::new()
                    }
                    Confirm::CancelJob(id) => vec![Command::CancelJob(id)],
                }
            }
            Mode::Editing => self.handle_editor_key(key),
            Mode::Normal => self.handle_normal_key(key),
        }
    }

    /// A bracketed paste: one edit in the editor, or text for the prompt being typed; never
    /// keys that could accept or reject.
    pub fn handle_paste(&mut self, text: &str) -> Vec<Command> {
        self.dirty = true;
        let one_line = || text.split_whitespace().collect::<Vec<_>>().join(" ");
        match self.mode.clone() {
            Mode::Editing => {
                self.editor.insert_str(text.replace("\r\n", "\n"));
                self.editor_dirty = true;
                super::highlight::apply(&mut self.editor, &self.theme);
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

    fn apply_search(&mut self, s: String) -> Vec<Command> {
        match self.tab {
            Tab::Schema => {
                self.schema_search = s;
                self.schema_cursor = 0;
                Vec::new()
            }
            _ => {
                if s == self.search {
                    return Vec::new();
                }
                self.search = s;
                self.cursor = 0;
                self.request_rows()
            }
        }
    }

    fn handle_editor_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match self.keymap.action(Context::Editor, &key) {
            Some(Action::RunQuery) => self.run_query(),
            Some(Action::CancelQuery) => {
                if let Results::Running { cancel, .. } = &self.results {
                    cancel.cancel();
                    self.message = "cancelling the query…".into();
                }
                Vec::new()
            }
            Some(Action::SaveEdit) => {
                self.save_edit();
                Vec::new()
            }
            Some(Action::LeaveEditor) => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            _ => {
                if self.editor.input(key) {
                    self.editor_dirty = true;
                    super::highlight::apply(&mut self.editor, &self.theme);
                }
                Vec::new()
            }
        }
    }

    fn handle_normal_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if let KeyCode::Char(c @ '1'..='5') = key.code
            && key.modifiers == KeyModifiers::NONE
        {
            self.tab = TABS[(c as u8 - b'1') as usize];
            return self.on_tab_enter();
        }
        // Running a query works from the queue too.
        let action = self.keymap.action(Context::Normal, &key).or_else(|| {
            self.keymap
                .action(Context::Editor, &key)
                .filter(|a| matches!(a, Action::RunQuery | Action::CancelQuery))
        });
        let Some(action) = action else {
            return Vec::new();
        };
        match action {
            Action::Quit => {
                let n = self.unsaved_edits();
                if n > 0 {
                    self.mode = Mode::Confirm(Confirm::Quit(n));
                    return Vec::new();
                }
                self.quit = true;
                return vec![Command::Quit];
            }
            Action::Help => self.mode = Mode::Help,
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
            Action::Down => self.move_cursor(1),
            Action::Up => self.move_cursor(-1),
            Action::PageDown => self.move_cursor(20),
            Action::PageUp => self.move_cursor(-20),
            Action::Top => self.move_cursor(isize::MIN / 2),
            Action::Bottom => self.move_cursor(isize::MAX / 2),
            Action::Accept if self.tab == Tab::Review => self.decide(ReviewAction::Accept, None),
            Action::Reject if self.tab == Tab::Review => self.mode = Mode::Reason(String::new()),
            Action::Edit if self.tab == Tab::Review && self.selected_id().is_some() => {
                self.mode = Mode::Editing;
                self.message = format!(
                    "editing: {} runs, {} saves and accepts, {} leaves",
                    self.keymap.keys_of(Action::RunQuery),
                    self.keymap.keys_of(Action::SaveEdit),
                    self.keymap.keys_of(Action::LeaveEditor)
                );
            }
            Action::Undo if self.tab == Tab::Review => self.undo(),
            Action::Skip if self.tab == Tab::Review => self.move_cursor(1),
            Action::Search => self.mode = Mode::Search(String::new()),
            Action::FilterStatus => {
                self.filter = (self.filter + 1) % FILTERS.len();
                self.cursor = 0;
                self.message = format!("showing {}", FILTERS[self.filter].0);
                return self.request_rows();
            }
            Action::BulkAccept if self.tab == Tab::Review => {
                let ids: Vec<i64> = self
                    .rows
                    .iter()
                    .filter(|r| matches!(r.status, PairStatus::Valid | PairStatus::Fixed))
                    .map(|r| r.id)
                    .collect();
                if ids.is_empty() {
                    self.message = "no valid pair to accept here".into();
                } else {
                    self.mode = Mode::Confirm(Confirm::BulkAccept(ids));
                }
            }
            Action::RunQuery => return self.run_query(),
            Action::CancelQuery => {
                if let Results::Running { cancel, .. } = &self.results {
                    cancel.cancel();
                }
            }
            Action::CopySql => {
                let sql = self.editor.lines().join("\n");
                self.message = "SQL copied to the clipboard (OSC 52)".into();
                return vec![Command::Copy(sql)];
            }
            Action::OpenExternalEditor => {
                return vec![Command::ExternalEdit(self.editor.lines().join("\n"))];
            }
            Action::InsertName if self.tab == Tab::Schema => {
                let lines = self.schema_lines();
                if let Some((t, c)) = lines.get(self.schema_cursor) {
                    let table = &self.project.schema.tables[*t];
                    let name = match c {
                        Some(c) => table.columns[*c].name.clone(),
                        None => table.name.clone(),
                    };
                    self.editor.insert_str(&name);
                    self.editor_dirty = true;
                    super::highlight::apply(&mut self.editor, &self.theme);
                    self.tab = Tab::Review;
                    self.mode = Mode::Editing;
                    self.message = format!("inserted {name}");
                }
            }
            Action::ScrollLeft => self.results_col = self.results_col.saturating_sub(1),
            Action::ScrollRight => self.results_col += 1,
            Action::Generate => {
                self.background = Some("generation starting…".into());
                return vec![Command::Generate];
            }
            Action::Analyze => {
                self.coverage_stale = false;
                self.background = Some("computing coverage…".into());
                return vec![Command::Analyze];
            }
            Action::Evaluate => {
                self.background = Some("evaluation starting…".into());
                return vec![Command::Evaluate];
            }
            Action::CancelJob if self.tab == Tab::Jobs => {
                if let Some(j) = self.jobs.get(self.job_cursor) {
                    self.mode = Mode::Confirm(Confirm::CancelJob(j.id));
                }
            }
            Action::Sort => {
                let i = QueueSort::ALL
                    .iter()
                    .position(|s| *s == self.sort)
                    .unwrap_or(0);
                self.sort = QueueSort::ALL[(i + 1) % QueueSort::ALL.len()];
                self.message = format!("sorted by {}", self.sort.as_str());
                return self.request_rows();
            }
            Action::NextRun if self.tab == Tab::Review => {
                // Newest first, then "all runs" (None), then round again.
                let mut runs: Vec<Option<i64>> = self
                    .store
                    .runs()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| matches!(r.kind, RunKind::Generate | RunKind::Import))
                    .map(|r| Some(r.id))
                    .collect();
                runs.push(None);
                let i = runs.iter().position(|r| *r == self.run_id).unwrap_or(0);
                self.run_id = runs[(i + 1) % runs.len()];
                self.cursor = 0;
                self.message = match self.run_id {
                    Some(r) => format!("showing run {r}"),
                    None => "showing every run".into(),
                };
                return self.request_rows();
            }
            Action::EditQuestion if self.tab == Tab::Review => {
                if let Some(d) = &self.detail {
                    self.mode = Mode::Question(d.pair.question.clone());
                }
            }
            Action::ResultsDown => self.results_row += self.page_rows(),
            Action::ResultsUp => {
                self.results_row = self.results_row.saturating_sub(self.page_rows());
            }
            Action::Refresh => {
                self.reload_rows();
                self.reload_eval();
                self.jobs = self.store.jobs().unwrap_or_default();
                self.message = "reloaded".into();
            }
            _ => {}
        }
        Vec::new()
    }

    /// Entering the coverage view recomputes a stale coverage in the background.
    fn on_tab_enter(&mut self) -> Vec<Command> {
        if self.tab == Tab::Coverage && self.coverage_stale && self.background.is_none() {
            self.coverage_stale = false;
            self.background = Some("computing coverage…".into());
            return vec![Command::Analyze];
        }
        Vec::new()
    }

    /// Result rows one page shows (as last drawn).
    fn page_rows(&self) -> usize {
        self.results_page.max(1)
    }

    /// Applies a background result.
    /// A stage started here ended: say how, and read what it changed.
    fn stage_ended(&mut self, message: String) {
        self.background = None;
        self.coverage_stale = true;
        self.message = message;
        if self.run_id.is_none() || self.tab == Tab::Review {
            self.run_id = self.store.runs().ok().and_then(|r| {
                r.into_iter()
                    .find(|r| matches!(r.kind, RunKind::Generate | RunKind::Import))
                    .map(|r| r.id)
            });
        }
        self.reload_rows();
        self.reload_eval();
        self.jobs = self.store.jobs().unwrap_or_default();
    }

    pub fn handle_bg(&mut self, ev: BgEvent) {
        self.dirty = true;
        match ev {
            BgEvent::QueryDone { ticket, result } => {
                if matches!(&self.results, Results::Running { ticket: t, .. } if *t == ticket) {
                    self.results = match result {
                        Ok(r) => Results::Done(r),
                        Err(e) => Results::Error(e.to_string()),
                    };
                }
            }
            BgEvent::Message(msg) => {
                self.message = msg;
                self.jobs = self.store.jobs().unwrap_or_default();
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
            BgEvent::Stage(StageEvent::Finished { summary, .. }) => self.stage_ended(summary),
            BgEvent::Stage(StageEvent::Failed { stage, error }) => {
                self.stage_ended(format!("{} failed: {error}", stage.name()))
            }
            BgEvent::Rows { generation, rows } => {
                if generation == self.rows_generation {
                    self.rows_loading = false;
                    match rows {
                        Ok(rows) => self.set_rows(rows),
                        Err(e) => self.message = format!("cannot read the store: {e}"),
                    }
                }
            }
            BgEvent::JobsChanged => {
                self.jobs = self.store.jobs().unwrap_or_default();
                self.job_cursor = self.job_cursor.min(self.jobs.len().saturating_sub(1));
            }
            BgEvent::Coverage(Ok(c)) => {
                self.background = None;
                self.coverage = Some(*c);
                self.message = "coverage computed".into();
            }
            BgEvent::Coverage(Err(e)) => {
                self.background = None;
                self.message = format!("cannot compute the coverage: {e}");
            }
            BgEvent::EditedSql(sql) => {
                self.set_editor(&sql);
                self.editor_dirty = true;
                self.mode = Mode::Editing;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rendering

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
            .style(self.theme.ui("muted"))
            .highlight_style(
                self.theme
                    .ui("title")
                    .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )
            .divider("│");
        f.render_widget(tabs, top);
        match self.tab {
            Tab::Review => self.render_review(f, body),
            Tab::Schema => self.render_schema(f, body),
            Tab::Coverage => self.render_coverage(f, body),
            Tab::Eval => self.render_eval(f, body),
            Tab::Jobs => self.render_jobs(f, body),
        }
        self.render_footer(f, footer);
        match &self.mode {
            Mode::Help => self.render_help(f, area),
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
                        .block(Block::bordered().border_style(self.theme.ui("warning"))),
                    r,
                );
            }
            _ => {}
        }
    }

    fn block<'a>(&self, title: String, focused: bool) -> Block<'a> {
        Block::bordered()
            .title(Span::styled(title, self.theme.ui("title")))
            .border_style(self.theme.border(focused))
    }

    fn render_review(&mut self, f: &mut Frame, area: Rect) {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(area);
        // Queue: only the visible window is built, whatever the number of pairs.
        let counts = self.status_counts();
        let title = format!(
            " Queue{}: {} · by {} · {}{} ",
            self.run_id
                .map_or(" (all runs)".to_string(), |r| format!(" run {r}")),
            FILTERS[self.filter].0,
            self.sort.as_str(),
            if self.rows_loading {
                "loading…".to_string()
            } else {
                format!("{} shown", self.rows.len())
            },
            if self.search.is_empty() {
                String::new()
            } else {
                format!(" matching \"{}\"", self.search)
            },
        );
        // Counts by status along the bottom edge, where a long search cannot push them out.
        let block = self
            .block(title, !matches!(self.mode, Mode::Editing))
            .title_bottom(Span::styled(format!(" {counts} "), self.theme.ui("muted")));
        let inner = block.inner(left);
        f.render_widget(block, left);
        let h = inner.height as usize;
        let start = self
            .cursor
            .saturating_sub(h.saturating_sub(1) / 2)
            .min(self.rows.len().saturating_sub(h));
        let width = inner.width as usize;
        let mut lines = Vec::with_capacity(h);
        for (i, r) in self.rows.iter().enumerate().skip(start).take(h) {
            let status = Span::styled(
                format!("{:<10}", r.status.as_str()),
                self.theme.status(r.status.as_str()),
            );
            let text = format!(
                "{:>5} {}",
                r.id,
                clip(&r.question, width.saturating_sub(16))
            );
            let mut line = Line::from(vec![status, Span::raw(text)]);
            if i == self.cursor {
                line = line.style(self.theme.selection());
            }
            lines.push(line);
        }
        if self.rows.is_empty() {
            lines.push(Line::from(Span::styled(
                if self.run_id.is_none() {
                    format!(
                        "No pairs yet: press {} to start a generation run.",
                        self.keymap.keys_of(Action::Generate)
                    )
                } else {
                    "No pair matches this filter.".to_string()
                },
                self.theme.ui("muted"),
            )));
        }
        f.render_widget(Paragraph::new(lines), inner);

        let [detail, editor, results] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Percentage(25),
            Constraint::Percentage(35),
        ])
        .areas(right);
        let mut text: Vec<Line> = Vec::new();
        if let Some(d) = &self.detail {
            let p = &d.pair;
            text.push(Line::from(vec![
                Span::styled(format!("#{} ", p.id), self.theme.ui("muted")),
                Span::styled(
                    p.status.as_str().to_string(),
                    self.theme
                        .status(p.status.as_str())
                        .add_modifier(Modifier::BOLD),
                ),
                Span::styled(
                    format!("  {} · run {}", p.generator, p.run_id),
                    self.theme.ui("muted"),
                ),
            ]));
            text.push(Line::from(p.question.clone()));
            if let Some((gq, gs)) = &d.gold {
                text.push(Line::from(Span::styled(
                    format!("from gold: {gq}"),
                    self.theme.ui("muted"),
                )));
                text.push(Line::from(Span::styled(
                    format!("  {}", clip(gs, 200)),
                    self.theme.ui("muted"),
                )));
            }
            let mut prov = vec![format!("origin {}", p.origin_key)];
            if let Some(parent) = p.parent_pair_id {
                prov.push(format!("from pair #{parent}"));
            }
            if let Some(a) = &p.analysis {
                prov.push(format!("hardness {}", a.hardness));
                let names: Vec<&str> = a.concepts.iter().map(|(c, _)| c.as_str()).collect();
                prov.push(clip(&names.join(" "), 80));
            }
            text.push(Line::from(Span::styled(
                prov.join(" · "),
                self.theme.ui("muted"),
            )));
            // Generation notes: an LLM error, LLM validators' verdicts, an empty result.
            for (k, v) in p.notes.lines() {
                text.push(Line::from(Span::styled(
                    format!("{k}: {}", clip(&v, 120)),
                    self.theme.ui("warning"),
                )));
            }
            for a in &d.attempts {
                let (label, style) = if a.ok {
                    ("ok".to_string(), self.theme.ui("success"))
                } else {
                    (
                        format!(
                            "{}: {}",
                            a.error_kind.clone().unwrap_or_default(),
                            a.error.clone().unwrap_or_default()
                        ),
                        self.theme.ui("error"),
                    )
                };
                text.push(Line::from(vec![
                    Span::styled(format!("attempt {} ", a.attempt), self.theme.ui("muted")),
                    Span::styled(label, style),
                    Span::styled(
                        a.row_count
                            .map(|r| format!("  {r} rows"))
                            .unwrap_or_default(),
                        self.theme.ui("muted"),
                    ),
                ]));
            }
        }
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .block(self.block(" Pair ".into(), false)),
            detail,
        );
        let editing = matches!(self.mode, Mode::Editing);
        self.editor.set_block(self.block(
            format!(" SQL{} ", if self.editor_dirty { " (edited)" } else { "" }),
            editing,
        ));
        self.editor.set_cursor_line_style(Style::default());
        f.render_widget(&self.editor, editor);
        // The table's borders and header take three lines.
        self.results_page = results.height.saturating_sub(3) as usize;
        self.render_results(f, results);
    }

    fn status_counts(&self) -> String {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.rows {
            *m.entry(r.status.as_str()).or_default() += 1;
        }
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn render_results(&self, f: &mut Frame, area: Rect) {
        match &self.results {
            Results::Idle => f.render_widget(
                Paragraph::new(Span::styled(
                    format!(
                        "Run the SQL with {}.",
                        self.keymap.keys_of(Action::RunQuery)
                    ),
                    self.theme.ui("muted"),
                ))
                .block(self.block(" Results ".into(), false)),
                area,
            ),
            Results::Running { .. } => f.render_widget(
                Paragraph::new(Span::styled(
                    format!(
                        "running… ({} cancels)",
                        self.keymap.keys_of(Action::CancelQuery)
                    ),
                    self.theme.ui("warning"),
                ))
                .block(self.block(" Results ".into(), false)),
                area,
            ),
            Results::Error(e) => f.render_widget(
                Paragraph::new(Span::styled(e.clone(), self.theme.ui("error")))
                    .wrap(Wrap { trim: true })
                    .block(self.block(" Results ".into(), false)),
                area,
            ),
            Results::Done(r) => {
                let cols: Vec<usize> = (self.results_col.min(r.columns.len().saturating_sub(1))
                    ..r.columns.len())
                    .collect();
                let header = Row::new(cols.iter().map(|&c| Cell::from(r.columns[c].clone())))
                    .style(self.theme.ui("title").add_modifier(Modifier::BOLD));
                let page = self.page_rows();
                let first = self.results_row.min(r.rows.len().saturating_sub(1));
                let rows: Vec<Row> = r
                    .rows
                    .iter()
                    .skip(first)
                    .take(page)
                    .map(|row| {
                        Row::new(
                            cols.iter()
                                .map(|&c| Cell::from(clip(&row[c].display(), 30))),
                        )
                    })
                    .collect();
                let widths: Vec<Constraint> = cols.iter().map(|_| Constraint::Min(8)).collect();
                let shown = if r.rows.is_empty() {
                    "no rows".to_string()
                } else {
                    format!(
                        "rows {}-{} of {}",
                        first + 1,
                        (first + page).min(r.rows.len()),
                        r.rows.len()
                    )
                };
                let title = format!(
                    " Results: {shown}{}{} · {:.1} ms ",
                    if r.truncated {
                        format!(" (capped at {})", r.rows.len())
                    } else {
                        String::new()
                    },
                    if cols.len() < r.columns.len() {
                        format!(" · from column {}", cols.first().map_or(0, |c| c + 1))
                    } else {
                        String::new()
                    },
                    r.elapsed.as_secs_f64() * 1000.0
                );
                f.render_widget(
                    Table::new(rows, widths)
                        .header(header)
                        .block(self.block(title, false)),
                    area,
                );
            }
        }
    }

    fn render_schema(&self, f: &mut Frame, area: Rect) {
        let lines = self.schema_lines();
        let block = self.block(
            format!(
                " Schema: {} tables{} ",
                self.project.schema.tables.len(),
                if self.schema_search.is_empty() {
                    String::new()
                } else {
                    format!(" matching \"{}\"", self.schema_search)
                }
            ),
            true,
        );
        let inner = block.inner(area);
        f.render_widget(block, area);
        let h = inner.height as usize;
        let start = self
            .schema_cursor
            .saturating_sub(h.saturating_sub(1) / 2)
            .min(lines.len().saturating_sub(h));
        let mut out = Vec::new();
        for (i, (t, c)) in lines.iter().enumerate().skip(start).take(h) {
            let table = &self.project.schema.tables[*t];
            let mut line = match c {
                None => Line::from(vec![
                    Span::styled(
                        table.name.clone(),
                        self.theme.ui("title").add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(
                        format!("  {} rows", table.row_count),
                        self.theme.ui("muted"),
                    ),
                ]),
                Some(ci) => {
                    let col = &table.columns[*ci];
                    let key = if col.primary_key {
                        " PK".to_string()
                    } else {
                        table
                            .foreign_keys
                            .iter()
                            .find(|fk| fk.columns.iter().any(|x| x == &col.name))
                            .map(|fk| format!(" → {}", fk.ref_table))
                            .unwrap_or_default()
                    };
                    let samples: Vec<String> = col
                        .samples
                        .iter()
                        .take(3)
                        .map(|v| clip(&v.display(), 16))
                        .collect();
                    Line::from(vec![
                        Span::raw(format!("  {:<22}", col.name)),
                        Span::styled(format!("{:<10}", col.decl_type), self.theme.sql("keyword")),
                        Span::styled(format!("{key:<14}"), self.theme.ui("warning")),
                        Span::styled(samples.join(", "), self.theme.ui("muted")),
                    ])
                }
            };
            if i == self.schema_cursor {
                line = line.style(self.theme.selection());
            }
            out.push(line);
        }
        f.render_widget(Paragraph::new(out), inner);
    }

    fn render_coverage(&self, f: &mut Frame, area: Rect) {
        let Some(c) = &self.coverage else {
            f.render_widget(
                Paragraph::new(format!(
                    "No coverage computed yet: press {} to compute it.",
                    self.keymap.keys_of(Action::Analyze)
                ))
                .block(self.block(" Coverage ".into(), true)),
                area,
            );
            return;
        };
        let [bars, side] =
            Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)])
                .areas(area);
        let keys = coverage_concepts(c);
        let share = |n: usize, total: usize| {
            if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            }
        };
        let bar = |x: f64, w: usize| "█".repeat((x * w as f64).round() as usize);
        let w = 12usize;
        let mut lines = vec![Line::from(Span::styled(
            format!(
                "{:<24} {:<13} {:<13} {:<13}",
                "concept (share of pairs)", "gold", "generated", "accepted"
            ),
            self.theme.ui("muted"),
        ))];
        let total_concepts = keys.len();
        for k in keys.into_iter().skip(self.coverage_scroll) {
            let g = share(c.gold.concepts.get(k).copied().unwrap_or(0), c.gold.pairs);
            let n = share(
                c.generated.concepts.get(k).copied().unwrap_or(0),
                c.generated.pairs,
            );
            let a = share(
                c.accepted.concepts.get(k).copied().unwrap_or(0),
                c.accepted.pairs,
            );
            let missing = c.missing_concepts.contains(k);
            let under = c.underrepresented_concepts.iter().any(|u| &u.name == k);
            let name_style = if missing {
                self.theme.ui("error")
            } else if under {
                self.theme.ui("warning")
            } else {
                Style::default()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<24} ", clip(k, 24)), name_style),
                Span::styled(format!("{:<13} ", bar(g, w)), self.theme.ui("muted")),
                Span::styled(format!("{:<13} ", bar(n, w)), self.theme.ui("title")),
                Span::styled(format!("{:<13}", bar(a, w)), self.theme.ui("success")),
            ]));
        }
        f.render_widget(
            Paragraph::new(lines).block(self.block(
                format!(
                    " Concepts: {} gold, {} generated, {} accepted pairs · {} concepts{} ",
                    c.gold.pairs,
                    c.generated.pairs,
                    c.accepted.pairs,
                    total_concepts,
                    if self.coverage_scroll > 0 {
                        format!(", from #{}", self.coverage_scroll + 1)
                    } else {
                        String::new()
                    }
                ),
                true,
            )),
            bars,
        );
        let mut s = vec![Line::from(Span::styled(
            "Spider hardness (generated)",
            self.theme.ui("title"),
        ))];
        for (h, n) in &c.generated.hardness {
            s.push(Line::from(format!("  {h:<8} {n}")));
        }
        s.push(Line::from(""));
        s.push(Line::from(Span::styled(
            "Tables (generated pairs)",
            self.theme.ui("title"),
        )));
        for (t, n) in &c.generated.tables {
            s.push(Line::from(format!("  {:<16} {n}", clip(t, 16))));
        }
        s.push(Line::from(""));
        s.push(Line::from(format!(
            "unused tables: {}",
            if c.unused_tables.is_empty() {
                "none".into()
            } else {
                c.unused_tables.join(", ")
            }
        )));
        s.push(Line::from(format!(
            "unused joins: {}",
            if c.unused_joins.is_empty() {
                "none".into()
            } else {
                c.unused_joins.join(", ")
            }
        )));
        s.push(Line::from(format!(
            "unused columns: {}",
            c.unused_columns.len()
        )));
        f.render_widget(
            Paragraph::new(s)
                .wrap(Wrap { trim: true })
                .block(self.block(" Schema coverage ".into(), false)),
            side,
        );
    }

    fn render_eval(&self, f: &mut Frame, area: Rect) {
        let Some(run) = &self.eval.run else {
            f.render_widget(
                Paragraph::new(format!(
                    "No evaluation yet: press {} to evaluate, or run `lode eval`.",
                    self.keymap.keys_of(Action::Evaluate)
                ))
                .block(self.block(" Evaluation ".into(), true)),
                area,
            );
            return;
        };
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(area);
        let summary: serde_json::Value = run
            .summary_json
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{} ", run.model), self.theme.ui("title")),
            Span::styled(
                format!("({}, run {})", run.profile, run.id),
                self.theme.ui("muted"),
            ),
        ])];
        lines.push(Line::from(format!(
            "accuracy {:.1}%",
            summary["accuracy"].as_f64().unwrap_or(0.0) * 100.0
        )));
        lines.push(Line::from(""));
        for section in ["by_hardness", "by_concept"] {
            let src = if section == "by_hardness" {
                &summary["summary"]["by_hardness"]
            } else {
                &summary[section]
            };
            if let Some(obj) = src.as_object() {
                lines.push(Line::from(Span::styled(
                    section.replace('_', " "),
                    self.theme.ui("title"),
                )));
                for (k, v) in obj {
                    let (n, c) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
                    let pct = if n == 0 { 0.0 } else { c as f64 / n as f64 };
                    lines.push(Line::from(format!(
                        "  {:<22} {:>3}/{:<3} {}",
                        clip(k, 22),
                        c,
                        n,
                        "█".repeat((pct * 10.0).round() as usize)
                    )));
                }
            }
        }
        if !self.eval.flips.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("{} flipped since the previous run", self.eval.flips.len()),
                self.theme.ui("warning"),
            )));
        }
        f.render_widget(
            Paragraph::new(lines).block(self.block(" Accuracy ".into(), true)),
            left,
        );
        let failed: Vec<&lode_core::store::EvalCase> =
            self.eval.cases.iter().filter(|c| !c.correct).collect();
        let [list, sel] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
        let block = self.block(format!(" Failed cases ({}) ", failed.len()), true);
        let inner = block.inner(list);
        f.render_widget(block, list);
        let h = inner.height as usize;
        let cursor = self.eval_cursor.min(failed.len().saturating_sub(1));
        let start = cursor
            .saturating_sub(h.saturating_sub(1) / 2)
            .min(failed.len().saturating_sub(h));
        let mut fl = Vec::new();
        for (i, c) in failed.iter().enumerate().skip(start).take(h) {
            let mut line = Line::from(vec![
                Span::styled(format!("#{:<4}", c.position + 1), self.theme.ui("muted")),
                Span::styled(
                    format!("{:<16}", c.reason.clone().unwrap_or_default()),
                    self.theme.ui("error"),
                ),
                Span::raw(clip(&c.question, inner.width.saturating_sub(22) as usize)),
            ]);
            if i == cursor {
                line = line.style(self.theme.selection());
            }
            fl.push(line);
        }
        if failed.is_empty() {
            fl.push(Line::from(Span::styled(
                "No failed case.",
                self.theme.ui("success"),
            )));
        }
        f.render_widget(Paragraph::new(fl), inner);
        if let Some(c) = failed.get(cursor) {
            self.render_case(f, sel, c);
        }
    }

    /// One failed case: why, then the gold and predicted SQL and rows side by side.
    fn render_case(&self, f: &mut Frame, area: Rect, c: &lode_core::store::EvalCase) {
        let detail: serde_json::Value = c
            .detail_json
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let block = self.block(
            format!(
                " #{} {} ",
                c.position + 1,
                detail["reason"]
                    .as_str()
                    .or(c.reason.as_deref())
                    .unwrap_or("")
            ),
            false,
        );
        let inner = block.inner(area);
        f.render_widget(block, area);
        let [gold, pred] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(inner);
        let side = |label: &str, sql: &str, preview: &serde_json::Value, error: Option<&str>| {
            let mut lines = vec![
                Line::from(Span::styled(label.to_string(), self.theme.ui("title"))),
                Line::from(Span::styled(clip(sql, 300), self.theme.ui("muted"))),
            ];
            if let Some(e) = error {
                lines.push(Line::from(Span::styled(
                    e.to_string(),
                    self.theme.ui("error"),
                )));
            }
            if let Some(cols) = preview["columns"].as_array() {
                let names: Vec<String> = cols
                    .iter()
                    .map(|c| c.as_str().unwrap_or("").to_string())
                    .collect();
                lines.push(Line::from(Span::styled(
                    format!(
                        "{} rows: {}",
                        preview["total_rows"].as_u64().unwrap_or(0),
                        names.join(" | ")
                    ),
                    self.theme.ui("title"),
                )));
                for row in preview["rows"].as_array().into_iter().flatten() {
                    let cells: Vec<String> = row
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| match v {
                            serde_json::Value::String(s) => clip(s, 20),
                            serde_json::Value::Null => "NULL".into(),
                            other => clip(&other.to_string(), 20),
                        })
                        .collect();
                    lines.push(Line::from(cells.join(" | ")));
                }
            }
            lines
        };
        let pred_error = detail["prediction_error"].as_str().map(String::from);
        f.render_widget(
            Paragraph::new(side("gold", &c.gold_sql, &detail["gold_preview"], None))
                .wrap(Wrap { trim: false }),
            gold,
        );
        f.render_widget(
            Paragraph::new(side(
                "predicted",
                c.pred_sql.as_deref().unwrap_or("(none)"),
                &detail["pred_preview"],
                pred_error.as_deref(),
            ))
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::LEFT)
                    .border_style(self.theme.border(false)),
            ),
            pred,
        );
    }

    fn render_jobs(&self, f: &mut Frame, area: Rect) {
        let [list, detail] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
        let mut lines = Vec::new();
        for (i, j) in self.jobs.iter().enumerate() {
            let mut line = Line::from(vec![
                Span::raw(format!("{:>4}  {:<8} ", j.id, j.provider)),
                Span::styled(
                    format!("{:<10}", j.status),
                    self.theme.status(match j.status.as_str() {
                        "succeeded" => "accepted",
                        "failed" | "cancelled" => "rejected",
                        _ => "pending",
                    }),
                ),
                Span::styled(
                    format!(
                        " {}  {}",
                        j.external_id.clone().unwrap_or_default(),
                        j.updated_at
                    ),
                    self.theme.ui("muted"),
                ),
            ]);
            if i == self.job_cursor {
                line = line.style(self.theme.selection());
            }
            lines.push(line);
        }
        if lines.is_empty() {
            lines.push(Line::from(Span::styled(
                "No tuning jobs: run `lode tune`.",
                self.theme.ui("muted"),
            )));
        }
        f.render_widget(
            Paragraph::new(lines).block(self.block(format!(" Jobs ({}) ", self.jobs.len()), true)),
            list,
        );
        let Some(job) = self.jobs.get(self.job_cursor) else {
            return;
        };
        let events = self.store.job_events(job.id).unwrap_or_default();
        let losses: Vec<u64> = events
            .iter()
            .filter_map(|e| e.data_json.as_deref())
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter_map(|v| v["loss"].as_f64())
            .map(|l| (l * 1000.0) as u64)
            .collect();
        let progress = events
            .iter()
            .rev()
            .filter_map(|e| e.data_json.as_deref())
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .find_map(|v| Some((v["step"].as_u64()?, v["total_steps"].as_u64()?)));
        let [gauge, chart, log] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(5),
            Constraint::Min(3),
        ])
        .areas(detail);
        let (ratio, label) = match (job.status.as_str(), progress) {
            ("succeeded", _) => (1.0, "done".to_string()),
            (_, Some((step, total))) if total > 0 => (
                (step as f64 / total as f64).clamp(0.0, 1.0),
                format!("step {step} of {total}"),
            ),
            (status, _) => (0.0, status.to_string()),
        };
        f.render_widget(
            Gauge::default()
                .ratio(ratio)
                .label(format!(
                    "job {} · {} · {}",
                    job.id,
                    job.model
                        .clone()
                        .unwrap_or_else(|| job.provider.to_string()),
                    label
                ))
                .gauge_style(self.theme.ui("success")),
            gauge,
        );
        f.render_widget(
            Sparkline::default()
                .data(&losses)
                .style(self.theme.ui("title"))
                .block(self.block(format!(" Loss ({} points) ", losses.len()), false)),
            chart,
        );
        let tail: Vec<Line> = events
            .iter()
            .rev()
            .take(log.height as usize)
            .rev()
            .map(|e| {
                Line::from(vec![
                    Span::styled(format!("{} ", e.at), self.theme.ui("muted")),
                    Span::raw(format!("{:<10} {}", e.status, e.message)),
                ])
            })
            .collect();
        f.render_widget(
            Paragraph::new(tail).block(self.block(format!(" Events of job {} ", job.id), false)),
            log,
        );
    }

    fn render_footer(&self, f: &mut Frame, area: Rect) {
        let ctx_actions: &[Action] = match (&self.mode, self.tab) {
            (Mode::Editing, _) => &[
                Action::RunQuery,
                Action::SaveEdit,
                Action::CancelQuery,
                Action::LeaveEditor,
            ],
            (_, Tab::Review) => &[
                Action::Accept,
                Action::Reject,
                Action::Edit,
                Action::Undo,
                Action::Skip,
                Action::FilterStatus,
                Action::Search,
                Action::BulkAccept,
                Action::Help,
                Action::Quit,
            ],
            (_, Tab::Schema) => &[
                Action::Search,
                Action::InsertName,
                Action::Help,
                Action::Quit,
            ],
            (_, Tab::Coverage) => &[
                Action::Down,
                Action::Up,
                Action::Analyze,
                Action::Help,
                Action::Quit,
            ],
            (_, Tab::Eval) => &[
                Action::Down,
                Action::Up,
                Action::Evaluate,
                Action::Refresh,
                Action::Help,
                Action::Quit,
            ],
            (_, Tab::Jobs) => &[
                Action::CancelJob,
                Action::Refresh,
                Action::Help,
                Action::Quit,
            ],
        };
        let mut hints = Vec::new();
        for a in ctx_actions {
            hints.push(Span::styled(
                self.keymap.keys_of(*a),
                self.theme.ui("key_hint").add_modifier(Modifier::BOLD),
            ));
            hints.push(Span::styled(
                format!(" {}  ", a.name().replace('_', " ")),
                self.theme.ui("muted"),
            ));
        }
        let status = match &self.mode {
            Mode::Search(s) => Line::from(vec![
                Span::styled("search: ", self.theme.ui("key_hint")),
                Span::raw(s.clone()),
                Span::raw("▏"),
            ]),
            Mode::Question(s) => Line::from(vec![
                Span::styled(
                    "question (Enter to save, Esc to cancel): ",
                    self.theme.ui("key_hint"),
                ),
                Span::raw(s.clone()),
                Span::raw("▏"),
            ]),
            Mode::Reason(s) => Line::from(vec![
                Span::styled(
                    "reason (Enter to reject, Esc to cancel): ",
                    self.theme.ui("key_hint"),
                ),
                Span::raw(s.clone()),
                Span::raw("▏"),
            ]),
            _ => {
                let mut spans = vec![Span::raw(self.message.clone())];
                if let Some(b) = &self.background {
                    spans.push(Span::styled(format!("   ⟳ {b}"), self.theme.ui("warning")));
                }
                Line::from(spans)
            }
        };
        f.render_widget(
            Paragraph::new(Text::from(vec![Line::from(hints), status]))
                .block(Block::default().borders(Borders::NONE)),
            area,
        );
    }

    fn render_help(&self, f: &mut Frame, area: Rect) {
        let entries = self.keymap.help_lines();
        let footer = [
            "1-5 switch views · any key closes this help",
            "search words, gen:NAME concept:NAME table:NAME status:NAME valid:yes|no",
        ];
        // As many columns as the height needs, each as wide as the width allows.
        let rows_avail = area.height.saturating_sub(2 + footer.len() as u16).max(1) as usize;
        let columns = entries.len().div_ceil(rows_avail).max(1);
        let per = entries.len().div_ceil(columns);
        let col_w = ((area.width.saturating_sub(2)) as usize / columns).min(56);
        let key_w = (col_w / 3).min(18);
        let desc_w = col_w.saturating_sub(key_w + 1);
        let r = centered(
            area,
            (col_w * columns) as u16 + 2,
            (per + footer.len()) as u16 + 2,
        );
        f.render_widget(Clear, r);
        let block = self.block(" Keys ".into(), true);
        let inner = block.inner(r);
        f.render_widget(block, r);
        let [body, foot] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(footer.len() as u16)])
                .areas(inner);
        let areas = Layout::horizontal(vec![Constraint::Length(col_w as u16); columns]).split(body);
        for (chunk, a) in entries.chunks(per).zip(areas.iter()) {
            let lines: Vec<Line> = chunk
                .iter()
                .map(|(keys, desc, ctx)| {
                    let desc = if ctx.is_empty() {
                        desc.to_string()
                    } else {
                        format!("{desc} ({ctx})")
                    };
                    Line::from(vec![
                        Span::styled(
                            format!("{:<w$} ", clip(keys, key_w), w = key_w),
                            self.theme.ui("key_hint").add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(clip(&desc, desc_w)),
                    ])
                })
                .collect();
            f.render_widget(Paragraph::new(lines), *a);
        }
        let foot_lines: Vec<Line> = footer
            .iter()
            .map(|t| {
                Line::from(Span::styled(
                    clip(t, inner.width as usize),
                    self.theme.ui("muted"),
                ))
            })
            .collect();
        f.render_widget(Paragraph::new(foot_lines), foot);
    }
}

/// The concepts the coverage view lists: those of the gold or the generated pairs.
fn coverage_concepts(c: &Coverage) -> std::collections::BTreeSet<&String> {
    c.gold
        .concepts
        .keys()
        .chain(c.generated.concepts.keys())
        .collect()
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
