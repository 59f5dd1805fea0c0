//! The review queue: the pairs of one run (or every run) under a status filter, a search and
//! an order, with the selected pair. Reading the queue is the app's business (an effect); this
//! pane asks for it when its query changes and takes the rows when they come.

use std::collections::BTreeMap;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Confirm, Hint, Intent, Pane, Prompt, Shared, clip, hints, movement, step};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::store::{PairStatus, PairSummary, QueueQuery, QueueSort, ReviewAction};

/// Status filters of the queue.
pub const FILTERS: [(&str, &[PairStatus]); 7] = [
    ("all", &[]),
    // Failed pairs need a hand fix: they are to review too.
    (
        "to review",
        &[
            PairStatus::Valid,
            PairStatus::Fixed,
            PairStatus::Suspect,
            PairStatus::Pending,
            PairStatus::Invalid,
        ],
    ),
    ("accepted", &[PairStatus::Accepted]),
    ("rejected", &[PairStatus::Rejected]),
    ("failed", &[PairStatus::Invalid]),
    // Question and SQL disagree: each wants a look before it is accepted.
    ("suspect", &[PairStatus::Suspect]),
    ("duplicate", &[PairStatus::Duplicate, PairStatus::Leakage]),
];

pub struct ReviewPane {
    /// The run shown; `None` is every run.
    pub run_id: Option<i64>,
    pub filter: usize,
    pub search: String,
    pub sort: QueueSort,
    pub rows: Vec<PairSummary>,
    /// A queue read is under way (for the latest filter, search or order).
    pub loading: bool,
    /// The number of the latest queue read asked for; older answers are dropped.
    generation: u64,
    pub cursor: usize,
}

impl Default for ReviewPane {
    fn default() -> Self {
        ReviewPane {
            run_id: None,
            filter: 1,
            search: String::new(),
            sort: QueueSort::Id,
            rows: Vec::new(),
            loading: false,
            generation: 0,
            cursor: 0,
        }
    }
}

impl ReviewPane {
    /// The name of the status filter shown (`to review`, `accepted`, …).
    pub fn filter_name(&self) -> &'static str {
        FILTERS[self.filter % FILTERS.len()].0
    }

    pub fn selected_id(&self) -> Option<i64> {
        self.rows.get(self.cursor).map(|r| r.id)
    }

    /// A new queue read starts: its number (answers to older ones are dropped).
    pub fn begin_load(&mut self) -> u64 {
        self.generation += 1;
        self.loading = true;
        self.generation
    }

    /// Whether `generation` is the latest read asked for.
    pub fn is_latest(&self, generation: u64) -> bool {
        generation == self.generation
    }

    /// The rows read, keeping the selected pair if it is still there.
    pub fn set_rows(&mut self, rows: Vec<PairSummary>) {
        self.loading = false;
        let keep = self.selected_id();
        self.rows = rows;
        self.cursor = keep
            .and_then(|id| self.rows.iter().position(|r| r.id == id))
            .unwrap_or(0)
            .min(self.rows.len().saturating_sub(1));
    }

    pub fn set_status(&mut self, id: i64, status: PairStatus) {
        if let Some(row) = self.rows.iter_mut().find(|r| r.id == id) {
            row.status = status;
        }
    }

    pub fn set_question(&mut self, id: i64, question: &str) {
        if let Some(row) = self.rows.iter_mut().find(|r| r.id == id) {
            row.question = question.to_string();
        }
    }

    /// After a decision on `id`: the next pair is selected (the last one stays).
    pub fn advance_from(&mut self, id: i64) {
        if self.selected_id() == Some(id) && self.cursor + 1 < self.rows.len() {
            self.cursor += 1;
        }
    }

    /// A new search; whether it differs from the one shown.
    pub fn set_search(&mut self, s: String) -> bool {
        if s == self.search {
            return false;
        }
        self.search = s;
        self.cursor = 0;
        true
    }

    /// The store query for the status filter, the order and the search. Search words of the
    /// form `gen:NAME`, `concept:NAME`, `table:NAME`, `status:NAME` and `valid:yes|no`
    /// filter on those; the other words must occur in the question or the SQL.
    pub fn query(&self) -> QueueQuery {
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
                    // Names that are not statuses are left out of the list...
                    let known: Vec<PairStatus> =
                        v.split(',').filter_map(|s| s.parse().ok()).collect();
                    if known.is_empty() {
                        // ...and when none is one, the word is searched as text, so it
                        // matches nothing rather than silently showing everything.
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

    /// Keys that act on the queue from every view: search, status filter, order.
    pub fn queue_key(&mut self, action: Action) -> Intent {
        match action {
            Action::Search => Intent::Prompt(Prompt::Search),
            Action::FilterStatus => {
                self.filter = (self.filter + 1) % FILTERS.len();
                self.cursor = 0;
                Intent::Reload {
                    message: format!("showing {}", FILTERS[self.filter].0),
                }
            }
            Action::Sort => {
                let i = QueueSort::ALL
                    .iter()
                    .position(|s| *s == self.sort)
                    .unwrap_or(0);
                self.sort = QueueSort::ALL[(i + 1) % QueueSort::ALL.len()];
                Intent::Reload {
                    message: format!("sorted by {}", self.sort.as_str()),
                }
            }
            _ => Intent::Unhandled,
        }
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
}

impl Pane for ReviewPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        let Some(action) = cx.keymap.action(Context::Normal, key) else {
            return Intent::Unhandled;
        };
        if let Some(delta) = movement(action) {
            self.scroll(delta, cx);
            return Intent::Handled;
        }
        let selected = self.selected_id();
        match action {
            Action::Skip => {
                self.cursor = step(self.cursor, 1, self.rows.len());
                Intent::Handled
            }
            Action::Accept => match selected {
                Some(id) => Intent::Decide {
                    id,
                    action: ReviewAction::Accept,
                },
                None => Intent::Message("no pair selected".into()),
            },
            Action::Reject => Intent::Prompt(Prompt::Reason),
            Action::Edit if selected.is_some() => Intent::EnterEditor,
            Action::Undo => selected.map_or(Intent::Handled, Intent::Undo),
            Action::BulkAccept => {
                let ids: Vec<i64> = self
                    .rows
                    .iter()
                    .filter(|r| matches!(r.status, PairStatus::Valid | PairStatus::Fixed))
                    .map(|r| r.id)
                    .collect();
                if ids.is_empty() {
                    Intent::Message("no valid pair to accept here".into())
                } else {
                    Intent::Confirm(Confirm::BulkAccept(ids))
                }
            }
            Action::NextRun => Intent::NextRun,
            other => self.queue_key(other),
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        hints(
            cx.keymap,
            &[
                Action::Accept,
                Action::Reject,
                Action::Edit,
                Action::Undo,
                Action::Skip,
                Action::FilterStatus,
                Action::Search,
                Action::BulkAccept,
            ],
        )
    }

    fn scroll(&mut self, delta: isize, _cx: &Shared) {
        if !self.rows.is_empty() {
            self.cursor = step(self.cursor, delta, self.rows.len());
        }
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        // Only the visible window is built, whatever the number of pairs.
        // The count comes early so a narrow window elides the order and the search, not it.
        let title = format!(
            " Queue{}: {} · {} · by {}{} ",
            self.run_id
                .map_or(" (all runs)".to_string(), |r| format!(" run {r}")),
            FILTERS[self.filter].0,
            if self.loading {
                "loading…".to_string()
            } else {
                format!("{} shown", self.rows.len())
            },
            self.sort.as_str(),
            if self.search.is_empty() {
                String::new()
            } else {
                format!(" matching \"{}\"", self.search)
            },
        );
        let title = format!(
            " {} ",
            crate::tui::fit::elide(title.trim(), area.width.saturating_sub(4) as usize)
        );
        // Counts by status along the bottom edge, where a long search cannot push them out.
        // The search in effect stays in sight on the bottom edge (the title may be elided).
        let bottom = if self.search.is_empty() {
            format!(" {} ", self.status_counts())
        } else {
            format!(
                " {} ",
                crate::tui::fit::elide(
                    &format!("/{} · {}", self.search, self.status_counts()),
                    area.width.saturating_sub(4) as usize
                )
            )
        };
        let block = cx
            .block(title, focused)
            .title_bottom(Span::styled(bottom, theme.ui(Ui::Muted)));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let h = inner.height as usize;
        let start = super::window_start(self.cursor, h, self.rows.len());
        let width = inner.width as usize;
        let mut lines = Vec::with_capacity(h);
        for (i, r) in self.rows.iter().enumerate().skip(start).take(h) {
            let status = Span::styled(format!("{:<10}", r.status.as_str()), theme.status(r.status));
            let text = format!(
                "{:>5} {}",
                r.id,
                clip(&r.question, width.saturating_sub(16))
            );
            let mut line = Line::from(vec![status, Span::raw(text)]);
            if i == self.cursor {
                line = theme.selected(line);
            }
            lines.push(line);
        }
        if self.rows.is_empty() {
            lines.push(Line::from(Span::styled(
                if self.run_id.is_none() {
                    format!(
                        "No pairs yet: press {} to start a generation run.",
                        cx.keymap.keys_of(Action::Generate)
                    )
                } else {
                    "No pair matches this filter.".to_string()
                },
                theme.ui(Ui::Muted),
            )));
        }
        f.render_widget(Paragraph::new(lines), inner);
    }
}
