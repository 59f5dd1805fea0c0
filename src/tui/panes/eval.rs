//! The newest evaluation: accuracy by hardness and concept, what flipped since the run before,
//! the gold audit's findings in the eval set (Enter opens a finding's SQL in the editor), and
//! the failed cases with the gold and predicted SQL and rows side by side.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{Hint, Intent, Pane, Shared, clip, movement, step, window_start};
use crate::tui::fit::{elide, pad, pad_left, width};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::{Theme, Ui};
use lode_core::pipeline::audit::Finding;
use lode_core::pipeline::model_eval::Flip;
use lode_core::pipeline::stats::Accuracy;
use lode_core::store::{EvalCase, EvalRun};

/// What the evaluation view shows, read from the store in the background.
#[derive(Debug, Clone, Default)]
pub struct EvalView {
    pub run: Option<EvalRun>,
    pub cases: Vec<EvalCase>,
    pub flips: Vec<Flip>,
    /// What the gold audit finds in the eval set now.
    pub audit: Vec<Finding>,
}

#[derive(Default)]
pub struct EvalPane {
    pub view: EvalView,
    /// The selected line: the audit's findings come first, then the failed cases.
    pub cursor: usize,
}

impl EvalPane {
    fn failed(&self) -> Vec<&EvalCase> {
        self.view.cases.iter().filter(|c| !c.correct).collect()
    }

    /// The finding selected, when the cursor is on the audit's list.
    pub fn selected_finding(&self) -> Option<&Finding> {
        self.view.audit.get(self.cursor)
    }
}

impl Pane for EvalPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        let action = cx.keymap.action(Context::Normal, key);
        if action == Some(Action::ShowPairs)
            && let Some(f) = self.selected_finding()
        {
            return Intent::OpenGold(Box::new(f.clone()));
        }
        match action.and_then(movement) {
            Some(delta) => {
                self.scroll(delta, cx);
                Intent::Handled
            }
            None => Intent::Unhandled,
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        let mut actions = vec![Action::Down, Action::Up];
        if self.selected_finding().is_some() {
            actions.push(Action::ShowPairs);
        }
        actions.extend([Action::Evaluate, Action::Refresh]);
        super::hints(cx.keymap, &actions)
    }

    fn scroll(&mut self, delta: isize, _cx: &Shared) {
        let lines = self.view.audit.len() + self.failed().len();
        self.cursor = step(self.cursor, delta, lines);
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        let Some(run) = &self.view.run else {
            f.render_widget(
                Paragraph::new(format!(
                    "No evaluation yet: press {} to evaluate, or run `lode eval`.",
                    cx.keymap.keys_of(Action::Evaluate)
                ))
                .wrap(Wrap { trim: true })
                .block(cx.block(" Evaluation ".into(), focused)),
                area,
            );
            return;
        };
        // A summary that does not parse shows as empty figures; the cases are still listed.
        let summary: serde_json::Value = run
            .summary_json
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let sections = breakdowns(&summary);
        let table = Breakdown::layout(&sections);
        // The accuracy pane is as wide as its names, counts and bars need, between 40% and
        // half of the width; narrower, the bars shrink, then the names are elided.
        let left_w = (table.full_width() + 2).clamp(area.width * 2 / 5, area.width / 2);
        let [left, right] =
            Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(area);
        let block = cx.block(" Accuracy ".into(), focused);
        let inner = block.inner(left);
        f.render_widget(block, left);
        let w = inner.width as usize;
        let suffix = format!(" ({}, run {})", run.profile, run.id);
        let mut lines = vec![Line::from(vec![
            Span::styled(
                elide(&run.model, w.saturating_sub(width(&suffix)).max(4)),
                theme.ui(Ui::Title),
            ),
            Span::styled(suffix, theme.ui(Ui::Muted)),
        ])];
        lines.extend(accuracy_lines(&summary, w, theme));
        if !self.view.flips.is_empty() {
            lines.push(Line::from(Span::styled(
                elide(
                    &format!("{} flipped since the previous run", self.view.flips.len()),
                    w,
                ),
                theme.ui(Ui::Warning),
            )));
        }
        // A short pane spends no line on spacing: the interval took it.
        if inner.height >= 20 {
            lines.push(Line::from(""));
        }
        for (title, rows) in &sections {
            lines.push(Line::from(Span::styled(*title, theme.ui(Ui::Title))));
            lines.extend(rows.iter().map(|r| table.line(r, w)));
        }
        // What does not fit is said, not cut off silently.
        let h = inner.height as usize;
        if lines.len() > h && h > 0 {
            let more = lines.len() - (h - 1);
            lines.truncate(h - 1);
            lines.push(Line::from(Span::styled(
                elide(&format!("… {more} more lines"), w),
                theme.ui(Ui::Muted),
            )));
        }
        f.render_widget(Paragraph::new(lines), inner);

        let failed = self.failed();
        let audit = &self.view.audit;
        let [list, sel] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
        // The audit's findings (when there are any) above the failed cases, one cursor over both.
        let list = if audit.is_empty() {
            list
        } else {
            let [top, rest] = Layout::vertical([
                Constraint::Length((audit.len() as u16 + 2).min(list.height / 2)),
                Constraint::Min(0),
            ])
            .areas(list);
            render_findings(f, top, cx, audit, self.cursor, focused);
            rest
        };
        let case_cursor = self
            .cursor
            .checked_sub(audit.len())
            .map(|c| c.min(failed.len().saturating_sub(1)));
        let block = cx.block(format!(" Failed cases ({}) ", failed.len()), focused);
        let inner = block.inner(list);
        f.render_widget(block, list);
        let h = inner.height as usize;
        let cursor = case_cursor.unwrap_or(0);
        let start = window_start(cursor, h, failed.len());
        // Positions whole, reasons as wide as the longest (up to 16), the question elided.
        let pos_w = failed
            .iter()
            .map(|c| width(&format!("#{}", c.position + 1)))
            .max()
            .unwrap_or(0)
            + 1;
        let reason_w = failed
            .iter()
            .map(|c| width(c.reason.as_deref().unwrap_or("")))
            .max()
            .unwrap_or(0)
            .min(16)
            + 1;
        let question_w = (inner.width as usize).saturating_sub(pos_w + reason_w);
        let mut fl = Vec::new();
        for (i, c) in failed.iter().enumerate().skip(start).take(h) {
            let line = Line::from(vec![
                Span::styled(
                    pad(&format!("#{}", c.position + 1), pos_w),
                    theme.ui(Ui::Muted),
                ),
                Span::styled(
                    pad(c.reason.as_deref().unwrap_or(""), reason_w - 1) + " ",
                    theme.ui(Ui::Error),
                ),
                Span::raw(elide(&c.question, question_w)),
            ]);
            fl.push(if Some(i) == case_cursor {
                theme.selected(line)
            } else {
                line
            });
        }
        if failed.is_empty() {
            fl.push(Line::from(Span::styled(
                "No failed case.",
                theme.ui(Ui::Success),
            )));
        }
        f.render_widget(Paragraph::new(fl), inner);
        if let Some(finding) = audit.get(self.cursor) {
            render_finding(f, sel, cx, finding);
        } else if let Some(c) = case_cursor.and_then(|c| failed.get(c)) {
            render_case(f, sel, cx, c);
        }
    }
}

/// The overall accuracy with its count, and its 95% interval on a line of its own so the
/// narrowest pane still shows both.
fn accuracy_lines(summary: &serde_json::Value, w: usize, theme: &Theme) -> Vec<Line<'static>> {
    let count = |k: &str| summary["summary"][k].as_u64().map(|n| n as usize);
    let Some((correct, total)) = count("correct").zip(count("total")) else {
        return vec![Line::from(format!(
            "accuracy {:.1}%",
            summary["accuracy"].as_f64().unwrap_or(0.0) * 100.0
        ))];
    };
    let score = Accuracy::new(correct, total);
    let (lo, hi) = score.ci();
    vec![
        Line::from(elide(
            &format!("accuracy {:.1}% ({correct}/{total})", score.rate() * 100.0),
            w,
        )),
        Line::from(Span::styled(
            elide(&format!("95% CI {:.1}-{:.1}%", lo * 100.0, hi * 100.0), w),
            theme.ui(Ui::Muted),
        )),
    ]
}

/// The gold audit's findings: position, kind, question; the selected one highlighted.
fn render_findings(
    f: &mut Frame,
    area: Rect,
    cx: &Shared,
    audit: &[Finding],
    cursor: usize,
    focused: bool,
) {
    let theme = cx.theme;
    let block = cx.block(format!(" Gold audit ({}) ", audit.len()), focused);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = inner.height as usize;
    let start = window_start(cursor.min(audit.len().saturating_sub(1)), h, audit.len());
    let pos_w = audit
        .iter()
        .map(|a| width(&format!("#{}", a.position)))
        .max()
        .unwrap_or(0)
        + 1;
    let kind_w = audit
        .iter()
        .map(|a| width(a.kind.name()))
        .max()
        .unwrap_or(0)
        + 1;
    let question_w = (inner.width as usize).saturating_sub(pos_w + kind_w);
    let lines: Vec<Line> = audit
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, a)| {
            let line = Line::from(vec![
                Span::styled(pad(&format!("#{}", a.position), pos_w), theme.ui(Ui::Muted)),
                Span::styled(pad(a.kind.name(), kind_w), theme.ui(Ui::Warning)),
                Span::raw(elide(&a.question, question_w)),
            ]);
            if i == cursor {
                theme.selected(line)
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// One finding: where the pair is, why its gold SQL is unfit, the fix, and the SQL.
fn render_finding(f: &mut Frame, area: Rect, cx: &Shared, a: &Finding) {
    let theme = cx.theme;
    let title = format!("{} {} · {}", a.set.name(), a.position, a.location());
    let block = cx.block(
        format!(" {} ", elide(&title, area.width.saturating_sub(4) as usize)),
        false,
    );
    let lines = vec![
        Line::from(Span::styled(a.question.clone(), theme.ui(Ui::Title))),
        Line::from(vec![
            Span::styled(format!("{}: ", a.kind.name()), theme.ui(Ui::Warning)),
            Span::raw(a.reason.clone()),
        ]),
        Line::from(format!("fix: {}", a.fix)),
        Line::from(Span::styled(clip(&a.sql, 300), theme.ui(Ui::Muted))),
        Line::from(Span::styled(
            format!(
                "{} opens the SQL in the editor, to run and fix it",
                cx.keymap.keys_of(Action::ShowPairs)
            ),
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

/// A breakdown row: a hardness level or a concept, and how many of its cases were right.
struct Row {
    name: String,
    correct: u64,
    total: u64,
}

/// The accuracy by hardness and by concept, as the summary records them (`[total, correct]`).
fn breakdowns(summary: &serde_json::Value) -> Vec<(&'static str, Vec<Row>)> {
    [
        ("by hardness", &summary["summary"]["by_hardness"]),
        ("by concept", &summary["by_concept"]),
    ]
    .into_iter()
    .filter_map(|(title, src)| {
        let obj = src.as_object()?;
        let rows = obj
            .iter()
            .map(|(k, v)| Row {
                name: k.clone(),
                total: v[0].as_u64().unwrap_or(0),
                correct: v[1].as_u64().unwrap_or(0),
            })
            .collect();
        Some((title, rows))
    })
    .collect()
}

/// The column widths of the breakdown rows: the counts are always whole (`correct/total`,
/// the slashes aligned); the bar shrinks or goes first, then the name is elided.
struct Breakdown {
    name_w: usize,
    correct_w: usize,
    total_w: usize,
}

const INDENT: usize = 2;
const BAR: usize = 10;

impl Breakdown {
    fn layout(sections: &[(&str, Vec<Row>)]) -> Breakdown {
        let rows = || sections.iter().flat_map(|(_, r)| r);
        Breakdown {
            name_w: rows().map(|r| width(&r.name)).max().unwrap_or(0),
            correct_w: rows()
                .map(|r| r.correct.to_string().len())
                .max()
                .unwrap_or(1),
            total_w: rows().map(|r| r.total.to_string().len()).max().unwrap_or(1),
        }
    }

    fn count_w(&self) -> usize {
        self.correct_w + 1 + self.total_w
    }

    /// The width every name, count and a full bar need.
    fn full_width(&self) -> u16 {
        (INDENT + self.name_w + 1 + self.count_w() + 1 + BAR) as u16
    }

    fn line(&self, r: &Row, w: usize) -> Line<'static> {
        let fixed = INDENT + 1 + self.count_w();
        // The bar takes what the names leave, up to its full length; under 3 cells it goes.
        let mut bar_w = w.saturating_sub(fixed + self.name_w + 1).min(BAR);
        if bar_w < 3 {
            bar_w = 0;
        }
        let name_w = w
            .saturating_sub(fixed + if bar_w > 0 { bar_w + 1 } else { 0 })
            .min(self.name_w);
        let pct = if r.total == 0 {
            0.0
        } else {
            r.correct as f64 / r.total as f64
        };
        let mut spans = vec![
            Span::raw(" ".repeat(INDENT)),
            Span::raw(pad(&r.name, name_w)),
            Span::raw(format!(
                " {}/{}",
                pad_left(&r.correct.to_string(), self.correct_w),
                pad(&r.total.to_string(), self.total_w)
            )),
        ];
        if bar_w > 0 {
            let filled = ((pct * bar_w as f64).round() as usize).min(bar_w);
            spans.push(Span::raw(format!(" {}", "█".repeat(filled))));
        }
        Line::from(spans)
    }
}

/// One failed case: why, then the gold and predicted SQL and rows side by side.
fn render_case(f: &mut Frame, area: Rect, cx: &Shared, c: &EvalCase) {
    let theme = cx.theme;
    // The detail is what the evaluation recorded beside the verdict; without it the case
    // still shows its SQL.
    let detail: serde_json::Value = c
        .detail_json
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let title = format!(
        "#{} {}",
        c.position + 1,
        detail["reason"]
            .as_str()
            .or(c.reason.as_deref())
            .unwrap_or("")
    );
    let block = cx.block(
        format!(" {} ", elide(&title, area.width.saturating_sub(4) as usize)),
        false,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [gold, pred] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let side = |label: &str, sql: &str, preview: &serde_json::Value, error: Option<&str>| {
        let mut lines = vec![
            Line::from(Span::styled(label.to_string(), theme.ui(Ui::Title))),
            Line::from(Span::styled(clip(sql, 300), theme.ui(Ui::Muted))),
        ];
        if let Some(e) = error {
            lines.push(Line::from(Span::styled(e.to_string(), theme.ui(Ui::Error))));
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
                theme.ui(Ui::Title),
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
                .border_style(theme.border(false)),
        ),
        pred,
    );
}
