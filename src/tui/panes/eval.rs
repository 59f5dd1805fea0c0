//! The newest evaluation: accuracy by hardness and concept, what flipped since the run before,
//! and the failed cases with the gold and predicted SQL and rows side by side.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{Hint, Intent, Pane, Shared, clip, movement, step, window_start};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::pipeline::model_eval::Flip;
use lode_core::store::{EvalCase, EvalRun};

/// What the evaluation view shows, read from the store in the background.
#[derive(Debug, Clone, Default)]
pub struct EvalView {
    pub run: Option<EvalRun>,
    pub cases: Vec<EvalCase>,
    pub flips: Vec<Flip>,
}

#[derive(Default)]
pub struct EvalPane {
    pub view: EvalView,
    /// The selected failed case.
    pub cursor: usize,
}

impl EvalPane {
    fn failed(&self) -> Vec<&EvalCase> {
        self.view.cases.iter().filter(|c| !c.correct).collect()
    }
}

impl Pane for EvalPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        match cx.keymap.action(Context::Normal, key).and_then(movement) {
            Some(delta) => {
                self.scroll(delta, cx);
                Intent::Handled
            }
            None => Intent::Unhandled,
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(
            cx.keymap,
            &[Action::Down, Action::Up, Action::Evaluate, Action::Refresh],
        )
    }

    fn scroll(&mut self, delta: isize, _cx: &Shared) {
        self.cursor = step(self.cursor, delta, self.failed().len());
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        let Some(run) = &self.view.run else {
            f.render_widget(
                Paragraph::new(format!(
                    "No evaluation yet: press {} to evaluate, or run `lode eval`.",
                    cx.keymap.keys_of(Action::Evaluate)
                ))
                .block(cx.block(" Evaluation ".into(), focused)),
                area,
            );
            return;
        };
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(area);
        // A summary that does not parse shows as empty figures; the cases are still listed.
        let summary: serde_json::Value = run
            .summary_json
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{} ", run.model), theme.ui(Ui::Title)),
            Span::styled(
                format!("({}, run {})", run.profile, run.id),
                theme.ui(Ui::Muted),
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
                    theme.ui(Ui::Title),
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
        if !self.view.flips.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("{} flipped since the previous run", self.view.flips.len()),
                theme.ui(Ui::Warning),
            )));
        }
        f.render_widget(
            Paragraph::new(lines).block(cx.block(" Accuracy ".into(), focused)),
            left,
        );
        let failed = self.failed();
        let [list, sel] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
        let block = cx.block(format!(" Failed cases ({}) ", failed.len()), focused);
        let inner = block.inner(list);
        f.render_widget(block, list);
        let h = inner.height as usize;
        let cursor = self.cursor.min(failed.len().saturating_sub(1));
        let start = window_start(cursor, h, failed.len());
        let mut fl = Vec::new();
        for (i, c) in failed.iter().enumerate().skip(start).take(h) {
            let mut line = Line::from(vec![
                Span::styled(format!("#{:<4}", c.position + 1), theme.ui(Ui::Muted)),
                Span::styled(
                    format!("{:<16}", c.reason.as_deref().unwrap_or("")),
                    theme.ui(Ui::Error),
                ),
                Span::raw(clip(&c.question, inner.width.saturating_sub(22) as usize)),
            ]);
            if i == cursor {
                line = line.style(theme.selection());
            }
            fl.push(line);
        }
        if failed.is_empty() {
            fl.push(Line::from(Span::styled(
                "No failed case.",
                theme.ui(Ui::Success),
            )));
        }
        f.render_widget(Paragraph::new(fl), inner);
        if let Some(c) = failed.get(cursor) {
            render_case(f, sel, cx, c);
        }
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
    let block = cx.block(
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
