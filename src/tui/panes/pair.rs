//! The selected pair in full: status, question, gold parent, provenance, generation notes and
//! the validation attempts. The app loads it in the background when the selection changes.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Hint, Intent, Pane, Prompt, Shared, clip};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::store::{Pair, ValidationAttempt};

/// The selected pair, with what the detail pane shows.
#[derive(Debug, Clone)]
pub struct Detail {
    pub pair: Pair,
    pub attempts: Vec<ValidationAttempt>,
    pub gold: Option<(String, String)>,
}

#[derive(Default)]
pub struct PairPane {
    /// The pair this pane is for (loaded or not).
    pub id: Option<i64>,
    pub detail: Option<Detail>,
    /// Why the pair could not be read.
    pub error: Option<String>,
}

impl PairPane {
    /// Shows `id` from now on; the old pair's detail goes unless it is the same pair.
    pub fn select(&mut self, id: Option<i64>) {
        if self.id != id {
            self.detail = None;
        }
        self.id = id;
        self.error = None;
    }

    /// A detail read for `id`; dropped when another pair is selected meanwhile.
    pub fn loaded(&mut self, id: i64, detail: Result<Detail, String>) -> bool {
        if self.id != Some(id) {
            return false;
        }
        match detail {
            Ok(d) => {
                self.detail = Some(d);
                self.error = None;
            }
            Err(e) => {
                self.detail = None;
                self.error = Some(e);
            }
        }
        true
    }

    /// The detail of the selected pair, once read.
    pub fn shown(&self) -> Option<&Detail> {
        self.detail.as_ref().filter(|d| Some(d.pair.id) == self.id)
    }
}

impl Pane for PairPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        match cx.keymap.action(Context::Normal, key) {
            Some(Action::EditQuestion) => match self.shown() {
                Some(d) => Intent::Prompt(Prompt::Question(d.pair.question.clone())),
                None => Intent::Handled,
            },
            _ => Intent::Unhandled,
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(cx.keymap, &[Action::EditQuestion])
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        let mut text: Vec<Line> = Vec::new();
        if let Some(d) = self.shown() {
            let p = &d.pair;
            text.push(Line::from(vec![
                Span::styled(format!("#{} ", p.id), theme.ui(Ui::Muted)),
                Span::styled(
                    p.status.as_str().to_string(),
                    theme.status(p.status).add_modifier(Modifier::BOLD),
                ),
                Span::styled(
                    format!("  {} · run {}", p.generator, p.run_id),
                    theme.ui(Ui::Muted),
                ),
            ]));
            text.push(Line::from(p.question.clone()));
            if let Some((gq, gs)) = &d.gold {
                text.push(Line::from(Span::styled(
                    format!("from gold: {gq}"),
                    theme.ui(Ui::Muted),
                )));
                text.push(Line::from(Span::styled(
                    format!("  {}", clip(gs, 200)),
                    theme.ui(Ui::Muted),
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
                theme.ui(Ui::Muted),
            )));
            // Generation notes: an LLM error, LLM validators' verdicts, an empty result.
            for (k, v) in p.notes.lines() {
                text.push(Line::from(Span::styled(
                    format!("{k}: {}", clip(&v, 120)),
                    theme.ui(Ui::Warning),
                )));
            }
            for a in &d.attempts {
                let (label, style) = if a.ok {
                    ("ok".to_string(), theme.ui(Ui::Success))
                } else {
                    (
                        format!(
                            "{}: {}",
                            a.error_kind.as_deref().unwrap_or(""),
                            a.error.as_deref().unwrap_or("")
                        ),
                        theme.ui(Ui::Error),
                    )
                };
                text.push(Line::from(vec![
                    Span::styled(format!("attempt {} ", a.attempt), theme.ui(Ui::Muted)),
                    Span::styled(label, style),
                    Span::styled(
                        a.row_count
                            .map(|r| format!("  {r} rows"))
                            .unwrap_or_default(),
                        theme.ui(Ui::Muted),
                    ),
                ]));
            }
        } else if let Some(e) = &self.error {
            text.push(Line::from(Span::styled(e.clone(), theme.ui(Ui::Error))));
        } else if let Some(id) = self.id {
            text.push(Line::from(Span::styled(
                format!("reading pair {id}…"),
                theme.ui(Ui::Muted),
            )));
        }
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .block(cx.block(" Pair ".into(), focused)),
            area,
        );
    }
}
