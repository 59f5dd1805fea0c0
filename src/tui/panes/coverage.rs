//! Coverage of the run shown: each concept's share of the gold, generated and accepted pairs
//! as bars, Spider hardness, the tables used and what the pairs never touch.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Hint, Intent, Pane, Shared, clip, movement, step};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::pipeline::coverage::Coverage;

pub struct CoveragePane {
    pub coverage: Option<Coverage>,
    /// A decision was made since the coverage was computed.
    pub stale: bool,
    /// First concept row shown.
    pub scroll: usize,
}

impl Default for CoveragePane {
    fn default() -> Self {
        CoveragePane {
            coverage: None,
            stale: true,
            scroll: 0,
        }
    }
}

/// The concepts the coverage view lists: those of the gold or the generated pairs.
fn concepts(c: &Coverage) -> std::collections::BTreeSet<&String> {
    c.gold
        .concepts
        .keys()
        .chain(c.generated.concepts.keys())
        .collect()
}

impl Pane for CoveragePane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        match cx.keymap.action(Context::Normal, key).and_then(movement) {
            Some(delta) => {
                Pane::scroll(self, delta, cx);
                Intent::Handled
            }
            None => Intent::Unhandled,
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(cx.keymap, &[Action::Down, Action::Up, Action::Analyze])
    }

    fn scroll(&mut self, delta: isize, _cx: &Shared) {
        let n = self.coverage.as_ref().map_or(0, |c| concepts(c).len());
        self.scroll = step(self.scroll, delta, n);
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        let Some(c) = &self.coverage else {
            f.render_widget(
                Paragraph::new(format!(
                    "No coverage computed yet: press {} to compute it.",
                    cx.keymap.keys_of(Action::Analyze)
                ))
                .block(cx.block(" Coverage ".into(), focused)),
                area,
            );
            return;
        };
        let [bars, side] =
            Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)])
                .areas(area);
        let keys = concepts(c);
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
            theme.ui(Ui::Muted),
        ))];
        let total_concepts = keys.len();
        for k in keys.into_iter().skip(self.scroll) {
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
                theme.ui(Ui::Error)
            } else if under {
                theme.ui(Ui::Warning)
            } else {
                Style::default()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<24} ", clip(k, 24)), name_style),
                Span::styled(format!("{:<13} ", bar(g, w)), theme.ui(Ui::Muted)),
                Span::styled(format!("{:<13} ", bar(n, w)), theme.ui(Ui::Title)),
                Span::styled(format!("{:<13}", bar(a, w)), theme.ui(Ui::Success)),
            ]));
        }
        f.render_widget(
            Paragraph::new(lines).block(cx.block(
                format!(
                    " Concepts: {} gold, {} generated, {} accepted pairs · {} concepts{} ",
                    c.gold.pairs,
                    c.generated.pairs,
                    c.accepted.pairs,
                    total_concepts,
                    if self.scroll > 0 {
                        format!(", from #{}", self.scroll + 1)
                    } else {
                        String::new()
                    }
                ),
                focused,
            )),
            bars,
        );
        let mut s = vec![Line::from(Span::styled(
            "Spider hardness (generated)",
            theme.ui(Ui::Title),
        ))];
        for (h, n) in &c.generated.hardness {
            s.push(Line::from(format!("  {h:<8} {n}")));
        }
        s.push(Line::from(""));
        s.push(Line::from(Span::styled(
            "Tables (generated pairs)",
            theme.ui(Ui::Title),
        )));
        for (t, n) in &c.generated.tables {
            s.push(Line::from(format!("  {:<16} {n}", clip(t, 16))));
        }
        s.push(Line::from(""));
        let none_or = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        s.push(Line::from(format!(
            "unused tables: {}",
            none_or(&c.unused_tables)
        )));
        s.push(Line::from(format!(
            "unused joins: {}",
            none_or(&c.unused_joins)
        )));
        s.push(Line::from(format!(
            "unused columns: {}",
            c.unused_columns.len()
        )));
        f.render_widget(
            Paragraph::new(s)
                .wrap(Wrap { trim: true })
                .block(cx.block(" Schema coverage ".into(), false)),
            side,
        );
    }
}
