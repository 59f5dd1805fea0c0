//! The selected pair in full: status, question, gold parent, provenance, generation notes and
//! the validation attempts. The app loads it in the background when the selection changes.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Hint, Intent, Pane, Prompt, Shared, clip};
use crate::tui::diff::{DiffPiece, sql_diff};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::store::{Pair, PairStatus, Review, ReviewAction, ValidationAttempt};

/// The selected pair, with what the detail pane shows.
#[derive(Debug, Clone)]
pub struct Detail {
    pub pair: Pair,
    pub attempts: Vec<ValidationAttempt>,
    pub gold: Option<(String, String)>,
    /// The review history, oldest first.
    pub reviews: Vec<Review>,
}

impl Detail {
    /// Why the pair was rejected: the note of the reject in force.
    pub fn reject_reason(&self) -> Option<&str> {
        if self.pair.status != PairStatus::Rejected {
            return None;
        }
        self.reviews
            .iter()
            .rev()
            .find(|r| r.action == ReviewAction::Reject && !r.undone)
            .and_then(|r| r.note.as_deref())
    }
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
        super::hints(
            cx.keymap,
            &[
                Action::EditQuestion,
                Action::JumpToRepeat,
                Action::SqlDown,
                Action::SqlUp,
                Action::DiscardDraft,
            ],
        )
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
            if p.status == PairStatus::Rejected {
                text.push(Line::from(Span::styled(
                    format!(
                        "rejected: {}",
                        d.reject_reason().unwrap_or("(no reason given)")
                    ),
                    theme.ui(Ui::Error).add_modifier(Modifier::BOLD),
                )));
            }
            if let Some(repeats) = p.notes.duplicate_text() {
                let jump = p
                    .notes
                    .duplicate_pair()
                    .map(|_| format!(" ({} goes there)", cx.keymap.keys_of(Action::JumpToRepeat)))
                    .unwrap_or_default();
                text.push(Line::from(Span::styled(
                    format!("{repeats}{jump}"),
                    theme.ui(Ui::Warning),
                )));
            }
            if let Some((gq, gs)) = &d.gold {
                text.push(Line::from(Span::styled(
                    format!("from gold: {gq}"),
                    theme.ui(Ui::Muted),
                )));
                // What the generator changed: removed [-…-], added {+…+}; whole, wrapped.
                let mut spans = vec![Span::styled("  ", theme.ui(Ui::Muted))];
                // A diff helps when the generator changed a few things; a query rewritten
                // through and through reads better as it is.
                let dialect = lode_core::sql::SqlDialect::of(&cx.project.schema);
                let diff = sql_diff(gs, &p.sql, dialect).filter(|d| {
                    let same = d.iter().filter(|x| matches!(x, DiffPiece::Same(_))).count();
                    same > 0 && crate::tui::diff::changes(d) <= same
                });
                match diff {
                    Some(diff) => {
                        let mut prev: Option<String> = None;
                        for piece in diff {
                            let tok = match &piece {
                                DiffPiece::Same(t)
                                | DiffPiece::Removed(t)
                                | DiffPiece::Added(t) => t.clone(),
                            };
                            // Spaces as SQL is written: none around `.`, inside parentheses,
                            // or before a comma.
                            let tight = prev.as_deref().is_some_and(|p| p == "." || p == "(")
                                || matches!(tok.as_str(), "." | "," | ")")
                                || (tok == "("
                                    && prev.as_deref().is_some_and(|p| {
                                        p.chars().all(|c| c.is_alphanumeric() || c == '_')
                                    }));
                            if prev.is_some() && !tight {
                                spans.push(Span::raw(" "));
                            }
                            prev = Some(tok);
                            spans.push(match piece {
                                DiffPiece::Same(t) => Span::styled(t, theme.ui(Ui::Muted)),
                                DiffPiece::Removed(t) => Span::styled(
                                    format!("[-{t}-]"),
                                    theme.ui(Ui::Error).add_modifier(Modifier::CROSSED_OUT),
                                ),
                                DiffPiece::Added(t) => Span::styled(
                                    format!("{{+{t}+}}"),
                                    theme.ui(Ui::Success).add_modifier(Modifier::BOLD),
                                ),
                            });
                        }
                    }
                    // Rewritten (or too long to diff): the gold SQL as it is.
                    None => spans.push(Span::styled(gs.clone(), theme.ui(Ui::Muted))),
                }
                text.push(Line::from(spans));
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
            for r in &d.reviews {
                text.push(Line::from(Span::styled(
                    format!(
                        "{} {} ({} → {}){}{}",
                        r.created_at
                            .get(..16)
                            .unwrap_or(&r.created_at)
                            .replace('T', " "),
                        r.action,
                        r.prev_status,
                        r.new_status,
                        r.note
                            .as_deref()
                            .map(|n| format!(": {}", clip(n, 80)))
                            .unwrap_or_default(),
                        if r.undone { " · undone" } else { "" }
                    ),
                    theme.ui(Ui::Muted),
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
