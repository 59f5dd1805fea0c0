//! Tuning jobs: a table of every job (id, provider, status, the provider's own phase,
//! progress, age and the tuned model), and the selected job's progress, loss curve and event
//! log (read in the background when the selection or the job changes). The list is read again
//! on every tick of the loop, so a job submitted elsewhere shows by itself; every job that has
//! not ended is followed, once (see [`JobsPane::to_follow`]).

use std::collections::{BTreeMap, BTreeSet};

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, Gauge, GraphType, Paragraph};

use super::{
    Confirm, Hint, Intent, Pane, Shared, clip, elide, movement, step, title, window_start,
};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::{Theme, Ui};
use lode_core::store::{Job, JobEvent, JobProgress, JobStatus, PairStatus};

/// What one read of the jobs brings: the jobs, newest first, each one's progress and the id
/// of its newest event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobsRead {
    pub jobs: Vec<Job>,
    pub progress: BTreeMap<i64, JobProgress>,
    pub heads: BTreeMap<i64, i64>,
}

impl JobsRead {
    /// Reads the jobs with their progress (on a blocking thread, as every store read).
    pub fn load(store: &lode_core::store::Store) -> lode_core::store::Result<JobsRead> {
        Ok(JobsRead {
            jobs: store.jobs()?,
            progress: store.jobs_progress()?,
            heads: store.job_event_heads()?,
        })
    }
}

#[derive(Default)]
pub struct JobsPane {
    pub list: Vec<Job>,
    /// Each job's progress, by job id.
    pub progress: BTreeMap<i64, JobProgress>,
    /// Each job's newest event id: when it moves, the selected job's events are read again.
    pub heads: BTreeMap<i64, i64>,
    /// The list has been read at least once.
    pub loaded: bool,
    /// A read asked for by a tick is under way (a tick asks for no other meanwhile).
    pub reading: bool,
    pub cursor: usize,
    /// The job whose events were asked for last.
    pub requested: Option<i64>,
    /// The events of the job they were read for, or why they could not be.
    pub events: Option<(i64, Result<Vec<JobEvent>, String>)>,
    /// The jobs this UI follows (or tried to): each is followed once.
    pub followed: BTreeSet<i64>,
    /// The time ages are counted to, in seconds since the epoch; the clock when `None`.
    pub now: Option<i64>,
    /// The progress of the events shown, worked out once: (job, events, progress).
    shown: Option<(i64, usize, JobProgress)>,
}

impl JobsPane {
    pub fn selected_id(&self) -> Option<i64> {
        self.list.get(self.cursor).map(|j| j.id)
    }

    /// Shows a new read; whether anything in it changed (a job, its progress or its events).
    /// The selection stays on the job it was on.
    pub fn set_list(&mut self, read: JobsRead) -> bool {
        self.reading = false;
        let changed = !self.loaded
            || self.list != read.jobs
            || self.progress != read.progress
            || self.heads != read.heads;
        let selected = self.selected_id();
        self.list = read.jobs;
        self.progress = read.progress;
        self.heads = read.heads;
        self.loaded = true;
        self.cursor = selected
            .and_then(|id| self.list.iter().position(|j| j.id == id))
            .unwrap_or(self.cursor)
            .min(self.list.len().saturating_sub(1));
        changed
    }

    /// The jobs to start following now: submitted (they have a provider id), not ended, and
    /// not followed yet. They count as followed from now on, so none is followed twice (a
    /// watch that stops says how to watch the job again).
    pub fn to_follow(&mut self) -> Vec<Job> {
        let new: Vec<Job> = self
            .list
            .iter()
            .filter(|j| {
                !j.status.is_terminal() && j.external_id.is_some() && !self.followed.contains(&j.id)
            })
            .cloned()
            .collect();
        self.followed.extend(new.iter().map(|j| j.id));
        new
    }

    fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
    }

    /// The progress of the selected job's events, when they are read.
    fn shown_progress(&mut self, id: i64) -> Option<JobProgress> {
        let Some((eid, Ok(events))) = &self.events else {
            return None;
        };
        if *eid != id {
            return None;
        }
        match &self.shown {
            Some((sid, n, p)) if *sid == id && *n == events.len() => Some(p.clone()),
            _ => {
                let p = JobProgress::of_events(events);
                self.shown = Some((id, events.len(), p.clone()));
                Some(p)
            }
        }
    }
}

/// The colour of a job's status.
fn status_style(theme: &Theme, status: JobStatus) -> Style {
    theme.status(match status {
        JobStatus::Succeeded => PairStatus::Accepted,
        JobStatus::Failed | JobStatus::Cancelled => PairStatus::Rejected,
        _ => PairStatus::Pending,
    })
}

/// Progress as `120/500 24%` (the percentage rounded down: 100% only when done), `120` with
/// no total, `—` with nothing reported.
pub fn progress_text(p: Option<&JobProgress>) -> String {
    match p.map(|p| (p.step, p.total_steps, p.ratio())) {
        Some((Some(s), Some(t), Some(r))) => format!("{s}/{t} {}%", (r * 100.0).floor() as u64),
        Some((Some(s), Some(t), None)) => format!("{s}/{t}"),
        Some((Some(s), None, _)) => s.to_string(),
        _ => "—".into(),
    }
}

/// How old something stamped `at` is: `<1m`, `3m`, `2h`, `5d`; `?` when `at` does not read.
pub fn age(at: &str, now: i64) -> String {
    let Some(t) = epoch_secs(at) else {
        return "?".into();
    };
    let s = (now - t).max(0);
    match s {
        0..60 => "<1m".into(),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time as the store writes it
/// (`2026-11-25T02:30:00.123Z`).
pub fn epoch_secs(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let n = |a: usize, z: usize| t.get(a..z)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (hh, mm, ss) = (n(11, 13)?, n(14, 16)?, n(17, 19)?);
    // Days from the civil date (the inverse of the store's formatting).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// `s` left-aligned in exactly `w` cells, elided with `…` when longer.
fn cell(s: &str, w: usize) -> String {
    format!("{:<w$}", clip(s, w))
}

/// `s` right-aligned in exactly `w` cells, elided with `…` when longer.
fn rcell(s: &str, w: usize) -> String {
    format!("{:>w$}", clip(s, w))
}

/// The widths of the table's columns for `rows` in `width` cells: id, provider, status,
/// phase, progress, age, model; the phase and the model share what the others leave.
fn widths(rows: &[[String; 7]], width: usize, gap: usize) -> [usize; 7] {
    let heads = [
        "id", "provider", "status", "phase", "progress", "age", "model",
    ];
    let mut w = [0usize; 7];
    for (i, h) in heads.iter().enumerate() {
        w[i] = rows
            .iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .max(h.len());
    }
    w[4] = w[4].min(16);
    let fixed = w[0] + w[1] + w[2] + w[4] + w[5] + gap * 6;
    let room = width.saturating_sub(fixed);
    let (phase, model) = (w[3], w[6]);
    if phase + model > room {
        // The phase takes up to two fifths, the model the rest (and what the phase leaves).
        let p = phase.min((room * 2 / 5).max(room.saturating_sub(model)));
        w[3] = p;
        w[6] = room - p;
    }
    w
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
        // The table as tall as its jobs (at most two fifths), the selected job below.
        let list_h = (self.list.len() as u16 + 3).clamp(5, (area.height * 2 / 5).max(5));
        let [list, detail] =
            Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);
        let now = self.now();
        let rows: Vec<[String; 7]> = self
            .list
            .iter()
            .map(|j| {
                let p = self.progress.get(&j.id);
                [
                    j.id.to_string(),
                    j.provider.to_string(),
                    j.status.to_string(),
                    p.and_then(|p| p.phase.clone())
                        .unwrap_or_else(|| "—".into()),
                    progress_text(p),
                    age(&j.created_at, now),
                    j.tuned_model().unwrap_or_else(|| "—".into()),
                ]
            })
            .collect();
        let inner_w = list.width.saturating_sub(2) as usize;
        let gap = if inner_w >= 120 { 3 } else { 1 };
        let w = widths(&rows, inner_w, gap);
        let sep = " ".repeat(gap);
        // Numbers are right-aligned, words left-aligned; each cell is elided to its width.
        let line_of = |r: &[String; 7]| -> Vec<String> {
            vec![
                rcell(&r[0], w[0]),
                cell(&r[1], w[1]),
                cell(&r[2], w[2]),
                cell(&r[3], w[3]),
                rcell(&r[4], w[4]),
                rcell(&r[5], w[5]),
                cell(&r[6], w[6]),
            ]
        };
        let head = [
            "id", "provider", "status", "phase", "progress", "age", "model",
        ]
        .map(String::from);
        let mut lines = vec![Line::from(Span::styled(
            line_of(&head).join(&sep),
            theme.ui(Ui::Muted).add_modifier(Modifier::BOLD),
        ))];
        let height = list.height.saturating_sub(3) as usize;
        let start = window_start(self.cursor, height, rows.len());
        for (i, (r, j)) in rows.iter().zip(&self.list).enumerate().skip(start) {
            if i >= start + height {
                break;
            }
            let c = line_of(r);
            let mut spans = Vec::new();
            for (k, text) in c.into_iter().enumerate() {
                if k > 0 {
                    spans.push(Span::raw(sep.clone()));
                }
                spans.push(match k {
                    2 => Span::styled(text, status_style(theme, j.status)),
                    5 => Span::styled(text, theme.ui(Ui::Muted)),
                    _ => Span::raw(text),
                });
            }
            let mut line = Line::from(spans);
            if i == self.cursor {
                line = theme.selected(line);
            }
            lines.push(line);
        }
        if self.list.is_empty() {
            lines = vec![Line::from(Span::styled(
                clip("No tuning jobs: run `lode tune`.", inner_w),
                theme.ui(Ui::Muted),
            ))];
        }
        let following = self
            .list
            .iter()
            .filter(|j| self.followed.contains(&j.id) && !j.status.is_terminal())
            .count();
        let heading = if following > 0 {
            format!("Jobs ({}, following {following})", self.list.len())
        } else {
            format!("Jobs ({})", self.list.len())
        };
        f.render_widget(
            Paragraph::new(lines).block(cx.block(title(&heading, inner_w), focused)),
            list,
        );
        let Some(job) = self.list.get(self.cursor).cloned() else {
            return;
        };
        let dw = detail.width as usize;
        let events_title = title(&format!("Events of job {}", job.id), dw.saturating_sub(2));
        if let Some((id, Err(e))) = &self.events
            && *id == job.id
        {
            f.render_widget(
                Paragraph::new(Span::styled(
                    clip(e, dw.saturating_sub(2)),
                    theme.ui(Ui::Error),
                ))
                .block(cx.block(events_title, false)),
                detail,
            );
            return;
        }
        // The selected job's events when read; until then, what the list read of it.
        let progress = self
            .shown_progress(job.id)
            .or_else(|| self.progress.get(&job.id).cloned())
            .unwrap_or_default();
        let (events, read): (&[JobEvent], bool) = match &self.events {
            Some((id, Ok(events))) if *id == job.id => (events, true),
            _ => (&[], false),
        };
        let has_loss = !progress.losses.is_empty();
        let chart_h = if has_loss {
            (detail.height / 3).max(5)
        } else {
            1
        };
        let [gauge, chart, log] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(chart_h),
            Constraint::Min(3),
        ])
        .areas(detail);
        let mut label = format!("job {} · {} · {}", job.id, job.provider, job.status);
        if let Some(phase) = &progress.phase
            && !phase.eq_ignore_ascii_case(job.status.as_str())
        {
            label += &format!(" · {phase}");
        }
        let ratio = match (job.status, progress.ratio()) {
            (_, Some(r)) => {
                label += &format!(" · {}", progress_text(Some(&progress)));
                r
            }
            (JobStatus::Succeeded, None) => 1.0,
            (_, None) => {
                label += " · no progress reported";
                0.0
            }
        };
        if let Some(m) = job.tuned_model() {
            label += &format!(" · model {m}");
        }
        f.render_widget(
            Gauge::default()
                .ratio(ratio)
                .label(clip(&label, dw))
                .gauge_style(theme.ui(Ui::Success)),
            gauge,
        );
        if has_loss {
            let losses = &progress.losses;
            let n = losses.len();
            let lo = losses.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            // One point per step reported, as a line from the first to the last.
            let points: Vec<(f64, f64)> = losses
                .iter()
                .enumerate()
                .map(|(i, l)| (i as f64 + 1.0, *l))
                .collect();
            let mut heading = format!(
                "Loss: {n} point{}, last {}",
                if n == 1 { "" } else { "s" },
                loss_text(losses[n - 1])
            );
            if hi > lo {
                heading += &format!(" · min {} · max {}", loss_text(lo), loss_text(hi));
            }
            let (y0, y1) = if hi > lo {
                (lo, hi)
            } else {
                (lo - 0.5, hi + 0.5)
            };
            let dataset = Dataset::default()
                .marker(symbols::Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme.ui(Ui::Title))
                .data(&points);
            f.render_widget(
                Chart::new(vec![dataset])
                    .block(cx.block(title(&heading, dw.saturating_sub(2)), false))
                    .x_axis(Axis::default().bounds([1.0, (n as f64).max(2.0)]))
                    .y_axis(
                        Axis::default()
                            .bounds([y0, y1])
                            .style(theme.ui(Ui::Muted))
                            .labels([loss_text(y0), loss_text(y1)]),
                    ),
                chart,
            );
        } else {
            let text = if !read {
                "Loss: reading the job's events…"
            } else if job.status.is_terminal() {
                "Loss: no loss reported by this provider"
            } else {
                "Loss: no loss reported by this provider yet"
            };
            f.render_widget(
                Paragraph::new(Span::styled(clip(text, dw), theme.ui(Ui::Muted))),
                chart,
            );
        }
        let lw = log.width.saturating_sub(2) as usize;
        let tail: Vec<Line> = events
            .iter()
            .rev()
            .take(log.height.saturating_sub(2) as usize)
            .rev()
            .map(|e| {
                let at = format!("{} ", e.at);
                let rest = lw.saturating_sub(at.chars().count());
                let status = format!("{:<10} ", e.status.as_str());
                let message = clip(&e.message, rest.saturating_sub(status.chars().count()));
                Line::from(vec![
                    Span::styled(elide(&at, lw), theme.ui(Ui::Muted)),
                    Span::raw(elide(&format!("{status}{message}"), rest)),
                ])
            })
            .collect();
        f.render_widget(
            Paragraph::new(tail).block(cx.block(events_title, false)),
            log,
        );
    }
}

/// A loss value in at most about 6 significant characters.
fn loss_text(l: f64) -> String {
    if l.abs() >= 100.0 {
        format!("{l:.0}")
    } else if l.abs() >= 10.0 {
        format!("{l:.2}")
    } else {
        format!("{l:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_the_stores_times() {
        let t = epoch_secs("2026-11-25T02:34:56.999Z").unwrap();
        assert_eq!(t, 1_795_574_096);
        assert_eq!(epoch_secs("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(epoch_secs("2000-02-29T00:00:00.005Z"), Some(951_782_400));
        let at = "2026-11-25T02:34:56.999Z";
        assert_eq!(age(at, t + 59), "<1m");
        assert_eq!(age(at, t + 3 * 60 + 5), "3m");
        assert_eq!(age(at, t + 2 * 3600 + 1), "2h");
        assert_eq!(age(at, t + 3 * 86_400), "3d");
        assert_eq!(age("yesterday", t), "?");
    }

    #[test]
    fn progress_reads_as_step_of_total() {
        let p = JobProgress {
            step: Some(120),
            total_steps: Some(500),
            ..Default::default()
        };
        assert_eq!(progress_text(Some(&p)), "120/500 24%");
        let p = JobProgress {
            step: Some(499),
            total_steps: Some(500),
            ..Default::default()
        };
        assert_eq!(progress_text(Some(&p)), "499/500 99%");
        assert_eq!(progress_text(None), "—");
        assert_eq!(progress_text(Some(&JobProgress::default())), "—");
    }
}
