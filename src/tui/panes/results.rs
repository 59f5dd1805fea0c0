//! The results of the SQL run from the editor or the queue: running (cancellable), an error
//! in place, or a table paged by what the pane shows and scrolled sideways.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::{Hint, Intent, Pane, Shared, clip};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::sql::{CancelFlag, ExecError, QueryResult};

/// What the results pane shows.
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

pub struct ResultsPane {
    pub state: Results,
    /// What the results are of, for the title: `pair #12 · stored SQL`, `pair #12 · draft`,
    /// `editor` (set by the app when the query starts).
    pub label: String,
    /// The results no longer match what is selected or in the editor (set by the app).
    pub stale: bool,
    /// First column shown.
    pub col: usize,
    /// First row shown.
    pub row: usize,
    /// Result rows the pane showed when last drawn (its page size).
    page: usize,
    /// The number of the latest query; answers to older ones are dropped.
    ticket: u64,
}

impl Default for ResultsPane {
    fn default() -> Self {
        ResultsPane {
            state: Results::Idle,
            label: String::new(),
            stale: false,
            col: 0,
            row: 0,
            page: 10,
            ticket: 0,
        }
    }
}

impl ResultsPane {
    /// A query starts: its ticket and the flag that cancels it.
    pub fn start(&mut self) -> (u64, CancelFlag) {
        self.ticket += 1;
        let cancel = CancelFlag::new();
        self.state = Results::Running {
            ticket: self.ticket,
            cancel: cancel.clone(),
        };
        self.col = 0;
        self.row = 0;
        (self.ticket, cancel)
    }

    /// A query's answer; dropped unless it is the one running.
    pub fn finish(&mut self, ticket: u64, result: Result<QueryResult, ExecError>) {
        if matches!(&self.state, Results::Running { ticket: t, .. } if *t == ticket) {
            self.state = match result {
                Ok(r) => Results::Done(r),
                Err(e) => Results::Error(e.to_string()),
            };
        }
    }

    /// Stops the running query; whether one was running.
    pub fn cancel(&self) -> bool {
        if let Results::Running { cancel, .. } = &self.state {
            cancel.cancel();
            true
        } else {
            false
        }
    }

    fn page_rows(&self) -> usize {
        self.page.max(1)
    }
}

impl Pane for ResultsPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        match cx.keymap.action(Context::Normal, key) {
            Some(Action::ScrollLeft) => self.col = self.col.saturating_sub(1),
            Some(Action::ScrollRight) => self.col += 1,
            Some(Action::ResultsDown) => self.row += self.page_rows(),
            Some(Action::ResultsUp) => self.row = self.row.saturating_sub(self.page_rows()),
            _ => return Intent::Unhandled,
        }
        Intent::Handled
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(
            cx.keymap,
            &[
                Action::ResultsDown,
                Action::ResultsUp,
                Action::ScrollLeft,
                Action::ScrollRight,
            ],
        )
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        // The table's borders and header take three lines.
        self.page = area.height.saturating_sub(3) as usize;
        let block = |title: String| cx.block(title, focused);
        match &self.state {
            Results::Idle => f.render_widget(
                Paragraph::new(Span::styled(
                    format!("Run the SQL with {}.", cx.keymap.keys_of(Action::RunQuery)),
                    theme.ui(Ui::Muted),
                ))
                .block(block(" Results ".into())),
                area,
            ),
            Results::Running { .. } => f.render_widget(
                Paragraph::new(Span::styled(
                    format!(
                        "running… ({} cancels)",
                        cx.keymap.keys_of(Action::CancelQuery)
                    ),
                    theme.ui(Ui::Warning),
                ))
                .block(block(" Results ".into())),
                area,
            ),
            Results::Error(e) => f.render_widget(
                Paragraph::new(Span::styled(e.clone(), theme.ui(Ui::Error)))
                    .wrap(Wrap { trim: true })
                    .block(block(" Results ".into())),
                area,
            ),
            Results::Done(r) => {
                let cols: Vec<usize> =
                    (self.col.min(r.columns.len().saturating_sub(1))..r.columns.len()).collect();
                let header = Row::new(cols.iter().map(|&c| Cell::from(r.columns[c].clone())))
                    .style(theme.ui(Ui::Title).add_modifier(Modifier::BOLD));
                let page = self.page_rows();
                let first = self.row.min(r.rows.len().saturating_sub(1));
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
                    Table::new(rows, widths).header(header).block(block(title)),
                    area,
                );
            }
        }
    }
}
