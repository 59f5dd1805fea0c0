//! Tuning jobs: the list with statuses, and the selected job's progress, loss curve and
//! event log (read in the background when the selection or the job changes).

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Sparkline};

use super::{Confirm, Hint, Intent, Pane, Shared, movement, step};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::store::{Job, JobEvent, PairStatus};

#[derive(Default)]
pub struct JobsPane {
    pub list: Vec<Job>,
    /// The list has been read at least once.
    pub loaded: bool,
    pub cursor: usize,
    /// The job whose events were asked for last.
    pub requested: Option<i64>,
    /// The events of the job they were read for, or why they could not be.
    pub events: Option<(i64, Result<Vec<JobEvent>, String>)>,
}

impl JobsPane {
    pub fn selected_id(&self) -> Option<i64> {
        self.list.get(self.cursor).map(|j| j.id)
    }

    pub fn set_list(&mut self, list: Vec<Job>) {
        self.list = list;
        self.loaded = true;
        self.cursor = self.cursor.min(self.list.len().saturating_sub(1));
    }
}

impl Pane for JobsPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        let Some(action) = cx.keymap.action(Context::Normal, key) else {
            return Intent::Unhandled;
        };
        if let Some(delta) = movement(action) {
            self.scroll(delta, cx);
            return Intent::Handled;
        }
        match action {
            Action::CancelJob => match self.selected_id() {
                Some(id) => Intent::Confirm(Confirm::CancelJob(id)),
                None => Intent::Handled,
            },
            _ => Intent::Unhandled,
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(cx.keymap, &[Action::CancelJob, Action::Refresh])
    }

    fn scroll(&mut self, delta: isize, _cx: &Shared) {
        self.cursor = step(self.cursor, delta, self.list.len());
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        let [list, detail] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
        let mut lines = Vec::new();
        for (i, j) in self.list.iter().enumerate() {
            let mut line = Line::from(vec![
                Span::raw(format!("{:>4}  {:<8} ", j.id, j.provider)),
                Span::styled(
                    format!("{:<10}", j.status),
                    theme.status(match j.status.as_str() {
                        "succeeded" => PairStatus::Accepted,
                        "failed" | "cancelled" => PairStatus::Rejected,
                        _ => PairStatus::Pending,
                    }),
                ),
                Span::styled(
                    format!(
                        " {}  {}",
                        j.external_id.as_deref().unwrap_or(""),
                        j.updated_at
                    ),
                    theme.ui(Ui::Muted),
                ),
            ]);
            if i == self.cursor {
                line = line.style(theme.selection());
            }
            lines.push(line);
        }
        if lines.is_empty() {
            lines.push(Line::from(Span::styled(
                "No tuning jobs: run `lode tune`.",
                theme.ui(Ui::Muted),
            )));
        }
        f.render_widget(
            Paragraph::new(lines).block(cx.block(format!(" Jobs ({}) ", self.list.len()), focused)),
            list,
        );
        let Some(job) = self.list.get(self.cursor) else {
            return;
        };
        let events: &[JobEvent] = match &self.events {
            Some((id, Ok(events))) if *id == job.id => events,
            Some((id, Err(e))) if *id == job.id => {
                f.render_widget(
                    Paragraph::new(Span::styled(e.clone(), theme.ui(Ui::Error)))
                        .block(cx.block(format!(" Events of job {} ", job.id), false)),
                    detail,
                );
                return;
            }
            _ => &[],
        };
        // Event data is the provider's free-form JSON: what does not parse has no figures.
        let data: Vec<serde_json::Value> = events
            .iter()
            .filter_map(|e| e.data_json.as_deref())
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .collect();
        let losses: Vec<u64> = data
            .iter()
            .filter_map(|v| v["loss"].as_f64())
            .map(|l| (l * 1000.0) as u64)
            .collect();
        let progress = data
            .iter()
            .rev()
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
                    job.model.as_deref().unwrap_or(job.provider.as_str()),
                    label
                ))
                .gauge_style(theme.ui(Ui::Success)),
            gauge,
        );
        f.render_widget(
            Sparkline::default()
                .data(&losses)
                .style(theme.ui(Ui::Title))
                .block(cx.block(format!(" Loss ({} points) ", losses.len()), false)),
            chart,
        );
        let tail: Vec<Line> = events
            .iter()
            .rev()
            .take(log.height as usize)
            .rev()
            .map(|e| {
                Line::from(vec![
                    Span::styled(format!("{} ", e.at), theme.ui(Ui::Muted)),
                    Span::raw(format!("{:<10} {}", e.status, e.message)),
                ])
            })
            .collect();
        f.render_widget(
            Paragraph::new(tail).block(cx.block(format!(" Events of job {} ", job.id), false)),
            log,
        );
    }
}
