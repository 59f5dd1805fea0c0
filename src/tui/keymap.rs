//! Key bindings: every action has a name and a description (which feed the footer hints and
//! the help overlay, so they cannot drift from the bindings), defaults, and overrides from
//! config (`ui.keymap: {accept: "y"}`), with conflicts reported at load.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    NextTab,
    PrevTab,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Accept,
    Reject,
    Edit,
    Undo,
    Skip,
    Search,
    FilterStatus,
    BulkAccept,
    RunQuery,
    CancelQuery,
    SaveEdit,
    LeaveEditor,
    CopySql,
    OpenExternalEditor,
    InsertName,
    ScrollLeft,
    ScrollRight,
    Generate,
    Analyze,
    Evaluate,
    CancelJob,
    Refresh,
    Sort,
    EditQuestion,
    ResultsDown,
    ResultsUp,
    NextRun,
    SqlDown,
    SqlUp,
    DiscardDraft,
    JumpToRepeat,
    RecordView,
    Complete,
    ShowPairs,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// Anywhere outside the editor.
    Normal,
    /// While typing in the SQL editor.
    Editor,
}

impl Action {
    /// (name in config, description, context, default keys)
    pub const TABLE: &'static [(
        Action,
        &'static str,
        &'static str,
        Context,
        &'static [&'static str],
    )] = &[
        (Action::Quit, "quit", "quit", Context::Normal, &["q"]),
        (
            Action::Help,
            "help",
            "show the keys",
            Context::Normal,
            &["?"],
        ),
        (
            Action::NextTab,
            "next_tab",
            "next view",
            Context::Normal,
            &["tab"],
        ),
        (
            Action::PrevTab,
            "prev_tab",
            "previous view",
            Context::Normal,
            &["backtab"],
        ),
        (
            Action::Down,
            "down",
            "move down",
            Context::Normal,
            &["j", "down"],
        ),
        (Action::Up, "up", "move up", Context::Normal, &["k", "up"]),
        (
            Action::PageDown,
            "page_down",
            "page down",
            Context::Normal,
            &["ctrl-d", "pagedown"],
        ),
        (
            Action::PageUp,
            "page_up",
            "page up",
            Context::Normal,
            &["ctrl-u", "pageup"],
        ),
        (Action::Top, "top", "first", Context::Normal, &["g", "home"]),
        (
            Action::Bottom,
            "bottom",
            "last",
            Context::Normal,
            &["G", "end"],
        ),
        (
            Action::Accept,
            "accept",
            "accept the pair",
            Context::Normal,
            &["a"],
        ),
        (
            Action::Reject,
            "reject",
            "reject, with a reason",
            Context::Normal,
            &["r"],
        ),
        (
            Action::Edit,
            "edit",
            "edit the SQL",
            Context::Normal,
            &["e"],
        ),
        (
            Action::Undo,
            "undo",
            "undo the last decision",
            Context::Normal,
            &["u"],
        ),
        (
            Action::Skip,
            "skip",
            "next pair, no decision",
            Context::Normal,
            &["s"],
        ),
        (
            Action::Search,
            "search",
            "search queue or schema",
            Context::Normal,
            &["/"],
        ),
        (
            Action::FilterStatus,
            "filter",
            "cycle the status filter",
            Context::Normal,
            &["f"],
        ),
        (
            Action::BulkAccept,
            "bulk_accept",
            "accept all valid shown",
            Context::Normal,
            &["A"],
        ),
        (
            Action::RunQuery,
            "run",
            "run the SQL",
            Context::Editor,
            &["f5", "ctrl-r", "alt-enter"],
        ),
        (
            Action::CancelQuery,
            "cancel_query",
            "stop the running query",
            Context::Editor,
            &["ctrl-c"],
        ),
        (
            Action::SaveEdit,
            "save",
            "validate, save, accept",
            Context::Editor,
            &["ctrl-s"],
        ),
        (
            Action::LeaveEditor,
            "leave_editor",
            "leave the editor",
            Context::Editor,
            &["esc"],
        ),
        (
            Action::CopySql,
            "copy",
            "copy the SQL (OSC 52)",
            Context::Normal,
            &["y"],
        ),
        (
            Action::OpenExternalEditor,
            "external_editor",
            "open the SQL in $EDITOR",
            Context::Normal,
            &["ctrl-o"],
        ),
        (
            Action::InsertName,
            "insert_name",
            "put the name in the SQL",
            Context::Normal,
            &["i"],
        ),
        (
            Action::ScrollLeft,
            "scroll_left",
            "results left",
            Context::Normal,
            &["h", "left"],
        ),
        (
            Action::ScrollRight,
            "scroll_right",
            "results right",
            Context::Normal,
            &["l", "right"],
        ),
        (
            Action::Generate,
            "generate",
            "start a generation run",
            Context::Normal,
            &["ctrl-g"],
        ),
        (
            Action::Analyze,
            "analyze",
            "compute coverage",
            Context::Normal,
            &["ctrl-n"],
        ),
        (
            Action::Evaluate,
            "evaluate",
            "run an evaluation",
            Context::Normal,
            &["ctrl-e"],
        ),
        (
            Action::CancelJob,
            "cancel_job",
            "cancel the tuning job",
            Context::Normal,
            &["c"],
        ),
        (
            Action::Refresh,
            "refresh",
            "reload from the store",
            Context::Normal,
            &["ctrl-l"],
        ),
        (
            Action::Sort,
            "sort",
            "cycle the queue order",
            Context::Normal,
            &["o"],
        ),
        (
            Action::EditQuestion,
            "edit_question",
            "edit the question",
            Context::Normal,
            &["E"],
        ),
        (
            Action::ResultsDown,
            "results_down",
            "next page of results",
            Context::Normal,
            &["]"],
        ),
        (
            Action::ResultsUp,
            "results_up",
            "previous page of results",
            Context::Normal,
            &["["],
        ),
        (
            Action::NextRun,
            "next_run",
            "next run (or all runs)",
            Context::Normal,
            &["R"],
        ),
        (
            Action::SqlDown,
            "sql_down",
            "scroll the SQL down",
            Context::Normal,
            &["J"],
        ),
        (
            Action::SqlUp,
            "sql_up",
            "scroll the SQL up",
            Context::Normal,
            &["K"],
        ),
        (
            Action::DiscardDraft,
            "discard_draft",
            "discard the pair's SQL draft",
            Context::Normal,
            &["D"],
        ),
        (
            Action::JumpToRepeat,
            "jump_to_repeat",
            "go to the pair a duplicate repeats",
            Context::Normal,
            &["p"],
        ),
        (
            Action::RecordView,
            "record_view",
            "results: one row as column: value lines",
            Context::Normal,
            &["v"],
        ),
        (
            Action::Complete,
            "complete",
            "complete a table, column or keyword",
            Context::Editor,
            &["tab"],
        ),
        (
            Action::ShowPairs,
            "show_pairs",
            "open the selection: its pairs, or a gold pair's SQL",
            Context::Normal,
            &["enter"],
        ),
    ];

    pub fn name(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|e| e.0 == self)
            .map_or("?", |e| e.1)
    }

    pub fn description(self) -> &'static str {
        Self::TABLE.iter().find(|e| e.0 == self).map_or("", |e| e.2)
    }
}

/// A key with its modifiers, as written in config: `a`, `A`, `ctrl-r`, `alt-enter`, `f5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn parse(s: &str) -> Option<Key> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest.to_lowercase().as_str() {
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "space" => KeyCode::Char(' '),
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().ok()?)
            }
            _ => {
                let mut chars = rest.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(c)
            }
        };
        Some(Key { code, ctrl, alt })
    }

    pub fn from_event(e: &KeyEvent) -> Key {
        Key {
            code: e.code,
            ctrl: e.modifiers.contains(KeyModifiers::CONTROL),
            alt: e.modifiers.contains(KeyModifiers::ALT),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The bindings in force.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: std::collections::HashMap<(Context, Key), Action>,
    /// The same, in table order, for hints and help.
    ordered: Vec<(Context, Key, Action)>,
}

impl Keymap {
    /// The defaults with `overrides` (action name → key, or several keys separated by `,`)
    /// applied. Unknown actions, unreadable keys and two actions on one key are errors.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Keymap, String> {
        let mut per_action: BTreeMap<Action, (Context, Vec<Key>)> = BTreeMap::new();
        for (action, _, _, ctx, keys) in Action::TABLE {
            per_action.insert(
                *action,
                (*ctx, keys.iter().filter_map(|k| Key::parse(k)).collect()),
            );
        }
        for (name, keys) in overrides {
            let action = Action::TABLE
                .iter()
                .find(|e| e.1 == name)
                .map(|e| e.0)
                .ok_or_else(|| {
                    let names: Vec<&str> = Action::TABLE.iter().map(|e| e.1).collect();
                    match lode_core::diag::did_you_mean(name, &names) {
                        Some(s) => format!("ui.keymap: no action `{name}`; did you mean `{s}`?"),
                        None => format!(
                            "ui.keymap: no action `{name}`; actions are {}",
                            names.join(", ")
                        ),
                    }
                })?;
            let parsed: Result<Vec<Key>, String> = keys
                .split(',')
                .map(|k| Key::parse(k.trim()).ok_or_else(|| format!("ui.keymap.{name}: cannot read the key `{}` (write a, A, ctrl-r, alt-enter, f5, esc, tab)", k.trim())))
                .collect();
            if let Some(e) = per_action.get_mut(&action) {
                e.1 = parsed?;
            }
        }
        let mut bindings = std::collections::HashMap::new();
        let mut ordered = Vec::new();
        for (action, _, _, _, _) in Action::TABLE {
            let Some((ctx, keys)) = per_action.get(action) else {
                continue;
            };
            for key in keys {
                ordered.push((*ctx, *key, *action));
                // Editor bindings also answer outside the editor for keys that cannot be text.
                if let Some(other) = bindings.insert((*ctx, *key), *action)
                    && other != *action
                {
                    return Err(format!(
                        "ui.keymap: `{key}` is bound to both `{}` and `{}`; give one of them another key",
                        other.name(),
                        action.name()
                    ));
                }
            }
        }
        Ok(Keymap { bindings, ordered })
    }

    pub fn action(&self, ctx: Context, key: &KeyEvent) -> Option<Action> {
        self.bindings.get(&(ctx, Key::from_event(key))).copied()
    }

    /// The keys of an action, for hints: `a`, `F5/ctrl-r`.
    pub fn keys_of(&self, action: Action) -> String {
        let keys: Vec<String> = self
            .ordered
            .iter()
            .filter(|(_, _, a)| *a == action)
            .map(|(_, k, _)| k.to_string())
            .collect();
        keys.join("/")
    }

    /// Every binding with its description, for the help overlay.
    pub fn help_lines(&self) -> Vec<(Action, String, &'static str, &'static str)> {
        Action::TABLE
            .iter()
            .map(|(a, _, desc, ctx, _)| {
                (
                    *a,
                    self.keys_of(*a),
                    *desc,
                    match ctx {
                        Context::Normal => "",
                        Context::Editor => "editor",
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_conflicts() {
        let k = Keymap::new(&BTreeMap::new()).unwrap();
        let ev = KeyEvent::new(KeyCode::Char('a'), KeyModifiers::NONE);
        assert_eq!(k.action(Context::Normal, &ev), Some(Action::Accept));
        let f5 = KeyEvent::new(KeyCode::F(5), KeyModifiers::NONE);
        assert_eq!(k.action(Context::Editor, &f5), Some(Action::RunQuery));
        assert_eq!(k.keys_of(Action::RunQuery), "F5/ctrl-r/alt-Enter");

        let mut o = BTreeMap::new();
        o.insert("accept".to_string(), "y".to_string());
        let e = Keymap::new(&o).unwrap_err();
        assert!(e.contains("`y` is bound to both"), "{e}");
        o.insert("copy".to_string(), "ctrl-y".to_string());
        let k = Keymap::new(&o).unwrap();
        let y = KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE);
        assert_eq!(k.action(Context::Normal, &y), Some(Action::Accept));
        let mut bad = BTreeMap::new();
        bad.insert("acept".to_string(), "x".to_string());
        assert!(
            Keymap::new(&bad)
                .unwrap_err()
                .contains("did you mean `accept`")
        );
    }
}
