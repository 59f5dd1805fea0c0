//! Themes from `themes/*.yml`: semantic colours for the UI, pair statuses and SQL tokens.
//! The ANSI-16 default follows the terminal's own palette (right over SSH and in tmux);
//! `NO_COLOR` turns every colour off and keeps only bold and reverse.

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

const ANSI16: &str = include_str!("../../themes/ansi16.yml");
const TRUECOLOR: &str = include_str!("../../themes/truecolor.yml");

#[derive(Debug, Deserialize)]
struct ThemeFile {
    ui: BTreeMap<String, String>,
    status: BTreeMap<String, String>,
    sql: BTreeMap<String, String>,
}

/// Resolved styles.
#[derive(Debug, Clone)]
pub struct Theme {
    ui: BTreeMap<String, Color>,
    status: BTreeMap<String, Color>,
    sql: BTreeMap<String, Color>,
    pub no_color: bool,
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
        let f: ThemeFile =
            serde_norway::from_str(text).map_err(|e| format!("theme {name}: {e}"))?;
        let map = |m: BTreeMap<String, String>| -> BTreeMap<String, Color> {
            m.into_iter()
                .filter_map(|(k, v)| color(&v).map(|c| (k, c)))
                .collect()
        };
        Ok(Theme {
            ui: map(f.ui),
            status: map(f.status),
            sql: map(f.sql),
            no_color,
        })
    }

    fn fg(&self, c: Option<&Color>) -> Style {
        match (self.no_color, c) {
            (false, Some(c)) => Style::default().fg(*c),
            _ => Style::default(),
        }
    }

    pub fn ui(&self, key: &str) -> Style {
        self.fg(self.ui.get(key))
    }

    pub fn status(&self, status: &str) -> Style {
        self.fg(self.status.get(status))
    }

    pub fn sql(&self, token: &str) -> Style {
        let s = self.fg(self.sql.get(token));
        if token == "keyword" {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }

    pub fn selection(&self) -> Style {
        if self.no_color {
            return Style::default().add_modifier(Modifier::REVERSED);
        }
        let mut s = Style::default();
        if let Some(c) = self.ui.get("selection_fg") {
            s = s.fg(*c);
        }
        if let Some(c) = self.ui.get("selection_bg") {
            s = s.bg(*c);
        }
        s.add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.ui("border_focused").add_modifier(Modifier::BOLD)
        } else {
            self.ui("border")
        }
    }
}
