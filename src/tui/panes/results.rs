//! The results of the SQL run from the editor or the queue: running (cancellable), an error
//! in place, or a table paged by what the pane shows and scrolled sideways.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
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
    /// One row at a time, as `column: value` lines.
    pub record: bool,
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
            record: false,
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

    /// The ticket of the query running, if one is.
    pub fn running_ticket(&self) -> Option<u64> {
        match &self.state {
            Results::Running { ticket, .. } => Some(*ticket),
            _ => None,
        }
    }

    /// Shows results already at hand (run before for the same pair and SQL).
    pub fn show(&mut self, result: QueryResult) {
        self.state = Results::Done(result);
        self.col = 0;
        self.row = 0;
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

    /// How far `]` and `[` move: a page of the table, or one record.
    fn step(&self) -> usize {
        if self.record { 1 } else { self.page_rows() }
    }

    /// ` · pair #12 · stored SQL` for the title, when the app said what the results are of.
    fn about(&self) -> String {
        if self.label.is_empty() {
            String::new()
        } else {
            format!(" · {}", self.label)
        }
    }

    /// The block with a `STALE` mark (text, so it survives NO_COLOR) when the results are
    /// not of what is selected or on screen.
    fn titled<'a>(
        &self,
        block: ratatui::widgets::Block<'a>,
        cx: &Shared,
    ) -> ratatui::widgets::Block<'a> {
        if self.stale {
            block.title_bottom(Line::from(Span::styled(
                " STALE: not the results of the pair and SQL shown ",
                cx.theme.ui(Ui::Warning).add_modifier(Modifier::BOLD),
            )))
        } else {
            block
        }
    }
}

impl Pane for ResultsPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        match cx.keymap.action(Context::Normal, key) {
            Some(Action::ScrollLeft) => self.col = self.col.saturating_sub(1),
            Some(Action::ScrollRight) => self.col += 1,
            Some(Action::ResultsDown) => self.row += self.step(),
            Some(Action::ResultsUp) => self.row = self.row.saturating_sub(self.step()),
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
                Action::RecordView,
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
                .block(self.titled(block(format!(" Results{} ", self.about())), cx)),
                area,
            ),
            Results::Error(e) => f.render_widget(
                Paragraph::new(Span::styled(e.clone(), theme.ui(Ui::Error)))
                    .wrap(Wrap { trim: true })
                    .block(self.titled(block(format!(" Results{} ", self.about())), cx)),
                area,
            ),
            Results::Done(r) if self.record && !r.rows.is_empty() => {
                let i = self.row.min(r.rows.len() - 1);
                let name_w = r
                    .columns
                    .iter()
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(1)
                    .min(30);
                let value_w = (area.width as usize).saturating_sub(name_w + 4).max(4);
                let lines: Vec<Line> = r
                    .columns
                    .iter()
                    .zip(&r.rows[i])
                    .map(|(c, v)| {
                        Line::from(vec![
                            Span::styled(
                                format!("{:>name_w$}: ", clip(c, name_w)),
                                theme.ui(Ui::Title),
                            ),
                            Span::raw(clip(&v.display(), value_w)),
                        ])
                    })
                    .collect();
                let title = format!(
                    " Results{}: row {} of {} ({} table) ",
                    self.about(),
                    i + 1,
                    r.rows.len(),
                    cx.keymap.keys_of(Action::RecordView)
                );
                f.render_widget(
                    Paragraph::new(lines)
                        .scroll((self.col.min(u16::MAX as usize) as u16, 0))
                        .block(self.titled(block(title), cx)),
                    area,
                );
            }
            Results::Done(r) => {
                let page = self.page_rows();
                let first = self.row.min(r.rows.len().saturating_sub(1));
                let shown_rows: Vec<&Vec<lode_core::sql::Value>> =
                    r.rows.iter().skip(first).take(page).collect();
                // Natural widths from the header and the cells shown, each capped; columns
                // from `col` on, as many as fit.
                let inner = area.width.saturating_sub(2) as usize;
                let mut cols = Vec::new();
                let mut widths = Vec::new();
                let mut used = 0;
                for c in self.col.min(r.columns.len().saturating_sub(1))..r.columns.len() {
                    let natural = shown_rows
                        .iter()
                        .map(|row| row[c].display().chars().count())
                        .chain([r.columns[c].chars().count()])
                        .max()
                        .unwrap_or(1)
                        .clamp(1, 40);
                    if !cols.is_empty() && used + natural + 1 > inner {
                        break;
                    }
                    used += natural + 1;
                    cols.push(c);
                    widths.push(natural.min(inner));
                }
                let numeric = |v: &lode_core::sql::Value| {
                    matches!(
                        v,
                        lode_core::sql::Value::Integer(_) | lode_core::sql::Value::Real(_)
                    )
                };
                let header = Row::new(
                    cols.iter()
                        .zip(&widths)
                        .map(|(&c, &w)| Cell::from(clip(&r.columns[c], w))),
                )
                .style(theme.ui(Ui::Title).add_modifier(Modifier::BOLD));
                let rows: Vec<Row> = shown_rows
                    .iter()
                    .map(|row| {
                        Row::new(cols.iter().zip(&widths).map(|(&c, &w)| {
                            let text = clip(&row[c].display(), w);
                            if numeric(&row[c]) {
                                Cell::from(Line::from(text).alignment(Alignment::Right))
                            } else {
                                Cell::from(text)
                            }
                        }))
                    })
                    .collect();
                let constraints: Vec<Constraint> = widths
                    .iter()
                    .map(|w| Constraint::Length(*w as u16))
                    .collect();
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
                // Rows and columns first: a narrow window elides what the results are of.
                let title = format!(
                    " Results: {shown}{}{} · {:.1} ms{} ",
                    if r.truncated {
                        format!(" (capped at {})", r.rows.len())
                    } else {
                        String::new()
                    },
                    if cols.first().is_some_and(|c| *c > 0) || cols.len() < r.columns.len() {
                        format!(
                            " · columns {}-{} of {}",
                            cols.first().map_or(0, |c| c + 1),
                            cols.last().map_or(0, |c| c + 1),
                            r.columns.len()
                        )
                    } else {
                        String::new()
                    },
                    r.elapsed.as_secs_f64() * 1000.0,
                    self.about(),
                );
                let title = format!(
                    " {} ",
                    crate::tui::fit::elide(title.trim(), area.width.saturating_sub(4) as usize)
                );
                f.render_widget(
                    Table::new(rows, constraints)
                        .header(header)
                        .column_spacing(1)
                        .block(self.titled(block(title), cx)),
                    area,
                );
            }
        }
    }
}
