//! Themes from `themes/*.yml`: semantic colours for the UI, pair statuses and SQL tokens, read
//! into typed structs (a theme missing a colour, or naming one that does not exist, is refused
//! when it loads, not drawn wrong). The ANSI-16 default follows the terminal's own palette
//! (right over SSH and in tmux); `NO_COLOR` turns every colour off and keeps only bold and
//! reverse.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use serde::Deserialize;

use lode_core::store::PairStatus;

const ANSI16: &str = include_str!("../../themes/ansi16.yml");
const TRUECOLOR: &str = include_str!("../../themes/truecolor.yml");

/// A colour as a theme file writes it: an ANSI name, `reset` or `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Colour(pub Color);

impl TryFrom<String> for Colour {
    type Error = String;
    fn try_from(s: String) -> Result<Colour, String> {
        color(&s)
            .map(Colour)
            .ok_or_else(|| format!("cannot read the colour `{s}`"))
    }
}

/// The UI's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ui {
    Title,
    Muted,
    KeyHint,
    Error,
    Warning,
    Success,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiColours {
    pub fg: Colour,
    pub bg: Colour,
    pub border: Colour,
    pub border_focused: Colour,
    pub title: Colour,
    pub selection_fg: Colour,
    pub selection_bg: Colour,
    pub muted: Colour,
    pub key_hint: Colour,
    pub error: Colour,
    pub warning: Colour,
    pub success: Colour,
}

/// A colour for every [`PairStatus`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusColours {
    pub pending: Colour,
    pub valid: Colour,
    pub invalid: Colour,
    pub fixed: Colour,
    pub suspect: Colour,
    pub duplicate: Colour,
    pub leakage: Colour,
    pub accepted: Colour,
    pub rejected: Colour,
}

/// A colour for every SQL token role the highlighter knows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlColours {
    pub keyword: Colour,
    pub function: Colour,
    pub string: Colour,
    pub number: Colour,
    pub comment: Colour,
    pub operator: Colour,
    pub identifier: Colour,
}

/// A theme, resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    pub name: String,
    pub ui: UiColours,
    pub status: StatusColours,
    pub sql: SqlColours,
    #[serde(skip)]
    pub no_color: bool,
}

/// One of the 16 ANSI colours (which the terminal's palette defines) or the terminal's
/// default: what a 16-colour terminal shows as meant.
pub fn is_ansi16(c: Color) -> bool {
    match c {
        Color::Rgb(..) => false,
        Color::Indexed(i) => i < 16,
        _ => true,
    }
}

fn color(s: &str) -> Option<Color> {
    if let Some(hex) = s.strip_prefix('#') {
        let v = u32::from_str_radix(hex, 16).ok()?;
        return Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    Some(match s.to_lowercase().as_str() {
        "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" => Color::Gray,
        "darkgray" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

impl Theme {
    /// The theme named in config (`ansi16`, `truecolor`); `NO_COLOR` set means no colours.
    pub fn load(name: &str, no_color: bool) -> Result<Theme, String> {
        let text = match name {
            "ansi16" | "" => ANSI16,
            "truecolor" => TRUECOLOR,
            other => {
                return Err(format!(
                    "ui.theme: no theme `{other}`; use ansi16 or truecolor"
                ));
            }
        };
        let mut theme: Theme =
            serde_norway::from_str(text).map_err(|e| format!("theme {name}: {e}"))?;
        // The 16-colour theme follows the terminal's palette: it names no other colour.
        if theme.name == "ansi16"
            && let Some((key, c)) = theme.colours().into_iter().find(|(_, c)| !is_ansi16(*c))
        {
            return Err(format!(
                "theme ansi16: {key} is {c}; this theme takes only the 16 ANSI colour names and reset"
            ));
        }
        theme.no_color = no_color;
        Ok(theme)
    }

    fn fg(&self, c: Colour) -> Style {
        if self.no_color {
            Style::default()
        } else {
            Style::default().fg(c.0)
        }
    }

    pub fn ui(&self, role: Ui) -> Style {
        let u = &self.ui;
        self.fg(match role {
            Ui::Title => u.title,
            Ui::Muted => u.muted,
            Ui::KeyHint => u.key_hint,
            Ui::Error => u.error,
            Ui::Warning => u.warning,
            Ui::Success => u.success,
        })
    }

    pub fn status(&self, status: PairStatus) -> Style {
        let s = &self.status;
        self.fg(match status {
            PairStatus::Pending => s.pending,
            PairStatus::Valid => s.valid,
            PairStatus::Invalid => s.invalid,
            PairStatus::Fixed => s.fixed,
            PairStatus::Suspect => s.suspect,
            PairStatus::Duplicate => s.duplicate,
            PairStatus::Leakage => s.leakage,
            PairStatus::Accepted => s.accepted,
            PairStatus::Rejected => s.rejected,
        })
    }

    /// The style of a token role from [`super::highlight::role`]; an unknown role is plain.
    pub fn sql(&self, role: &str) -> Style {
        let s = &self.sql;
        let colour = match role {
            "keyword" => s.keyword,
            "function" => s.function,
            "string" => s.string,
            "number" => s.number,
            "comment" => s.comment,
            "operator" => s.operator,
            "identifier" => s.identifier,
            _ => return Style::default(),
        };
        let style = self.fg(colour);
        if role == "keyword" {
            style.add_modifier(Modifier::BOLD)
        } else {
            style
        }
    }

    pub fn selection(&self) -> Style {
        if self.no_color {
            return Style::default().add_modifier(Modifier::REVERSED);
        }
        Style::default()
            .fg(self.ui.selection_fg.0)
            .bg(self.ui.selection_bg.0)
            .add_modifier(Modifier::BOLD)
    }

    /// A selected row: the selection colours over the whole line, with its spans' own
    /// colours dropped (a green status on a cyan selection does not read); bold and the
    /// other modifiers stay.
    pub fn selected<'a>(&self, mut line: Line<'a>) -> Line<'a> {
        for span in &mut line.spans {
            span.style.fg = None;
            span.style.bg = None;
        }
        line.style(self.selection())
    }

    /// Every colour of the theme, named by its key in the theme file.
    pub fn colours(&self) -> Vec<(&'static str, Color)> {
        let (u, s, q) = (&self.ui, &self.status, &self.sql);
        vec![
            ("ui.fg", u.fg.0),
            ("ui.bg", u.bg.0),
            ("ui.border", u.border.0),
            ("ui.border_focused", u.border_focused.0),
            ("ui.title", u.title.0),
            ("ui.selection_fg", u.selection_fg.0),
            ("ui.selection_bg", u.selection_bg.0),
            ("ui.muted", u.muted.0),
            ("ui.key_hint", u.key_hint.0),
            ("ui.error", u.error.0),
            ("ui.warning", u.warning.0),
            ("ui.success", u.success.0),
            ("status.pending", s.pending.0),
            ("status.valid", s.valid.0),
            ("status.invalid", s.invalid.0),
            ("status.fixed", s.fixed.0),
            ("status.suspect", s.suspect.0),
            ("status.duplicate", s.duplicate.0),
            ("status.leakage", s.leakage.0),
            ("status.accepted", s.accepted.0),
            ("status.rejected", s.rejected.0),
            ("sql.keyword", q.keyword.0),
            ("sql.function", q.function.0),
            ("sql.string", q.string.0),
            ("sql.number", q.number.0),
            ("sql.comment", q.comment.0),
            ("sql.operator", q.operator.0),
            ("sql.identifier", q.identifier.0),
        ]
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(self.ui.border_focused).add_modifier(Modifier::BOLD)
        } else {
            self.fg(self.ui.border)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_themes_load_with_every_colour() {
        for name in ["ansi16", "truecolor"] {
            let t = Theme::load(name, false).unwrap();
            assert_eq!(t.name, name);
        }
        assert!(Theme::load("solarized", false).is_err());
    }

    #[test]
    fn the_16_colour_theme_names_only_the_16_colours() {
        let t = Theme::load("ansi16", false).unwrap();
        for (key, c) in t.colours() {
            assert!(is_ansi16(c), "{key} is {c}");
        }
        assert!(!is_ansi16(Color::Rgb(1, 2, 3)));
        assert!(!is_ansi16(Color::Indexed(16)));
        assert!(is_ansi16(Color::Indexed(15)) && is_ansi16(Color::Reset));
        // The selection reads: dark on a light colour, not a colour on a colour.
        assert_eq!(
            (t.ui.selection_fg.0, t.ui.selection_bg.0),
            (Color::Black, Color::Cyan)
        );
        // The truecolor theme keeps its RGB colours.
        let tc = Theme::load("truecolor", false).unwrap();
        assert!(tc.colours().iter().any(|(_, c)| !is_ansi16(*c)));
    }
}
