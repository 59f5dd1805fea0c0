//! The panes of the TUI. Each pane owns its state, turns a key into an [`Intent`] (never a
//! side effect), reports the keys it offers now as [`Hint`]s (which feed the footer and the
//! help overlay, so they cannot drift from the bindings), and draws itself. Panes never talk
//! to each other: the app routes keys to the focused pane and turns intents into effects.

pub mod coverage;
pub mod editor;
pub mod eval;
pub mod jobs;
pub mod pair;
pub mod results;
pub mod review;
pub mod schema;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::Block;

use super::keymap::{Action, Keymap};
use super::theme::{Theme, Ui};
use lode_core::project::Project;
use lode_core::store::ReviewAction;

/// What panes read but do not own: the bindings, the colours, the project.
pub struct Shared<'a> {
    pub keymap: &'a Keymap,
    pub theme: &'a Theme,
    pub project: &'a Project,
}

impl Shared<'_> {
    /// A bordered block with a title; a focused pane's border stands out.
    pub fn block<'b>(&self, title: String, focused: bool) -> Block<'b> {
        Block::bordered()
            .title(Span::styled(title, self.theme.ui(Ui::Title)))
            .border_style(self.theme.border(focused))
    }
}

/// A key a pane offers now: its keys as bound, a short label for the footer, and the
/// description the help overlay shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub action: Action,
    pub keys: String,
    pub label: String,
    pub description: &'static str,
}

impl Hint {
    pub fn of(keymap: &Keymap, action: Action) -> Hint {
        Hint {
            action,
            keys: keymap.keys_of(action),
            label: action.name().replace('_', " "),
            description: action.description(),
        }
    }
}

/// Hints for `actions`, in that order.
pub fn hints(keymap: &Keymap, actions: &[Action]) -> Vec<Hint> {
    actions.iter().map(|a| Hint::of(keymap, *a)).collect()
}

/// A one-line prompt a pane asks the app to open (typed in the footer).
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Search,
    /// A reject reason for the selected pair.
    Reason,
    /// The question of the selected pair, to edit.
    Question(String),
}

/// A question the app asks before doing something that cannot be taken back.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    BulkAccept(Vec<i64>),
    CancelJob(i64),
    /// Accept a pair that has an unsaved SQL draft: save the draft and accept (`s`), accept
    /// the stored SQL (`a`), or cancel.
    AcceptDraft(i64),
}

/// What a key asks for. Panes change their own view state themselves (a cursor, a scroll);
/// anything that reaches beyond the pane is an intent for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// Not a key of this pane.
    Unhandled,
    /// Handled inside the pane.
    Handled,
    Message(String),
    Prompt(Prompt),
    Confirm(Confirm),
    /// The queue's filter, search or order changed: read it again.
    Reload {
        message: String,
    },
    /// Show the queue of the next run (or every run).
    NextRun,
    Decide {
        id: i64,
        action: ReviewAction,
    },
    Undo(i64),
    EnterEditor,
    LeaveEditor,
    RunQuery(String),
    CancelQuery,
    /// Validate, save and accept the editor's SQL for its pair.
    SaveEdit(String),
    /// Put a table or column name into the editor.
    InsertName(String),
    /// Show the review queue with this search (`concept:NAME`, `table:NAME`).
    FilterQueue(String),
    /// Open the SQL of an audited gold pair in the editor.
    OpenGold(Box<lode_core::pipeline::audit::Finding>),
}

/// A pane of the TUI.
pub trait Pane {
    /// What `key` asks for; [`Intent::Unhandled`] when it is not this pane's key.
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent;
    /// The keys this pane offers now.
    fn hints(&self, cx: &Shared) -> Vec<Hint>;
    /// Moves the pane's list by `delta` lines (movement keys, the mouse wheel).
    fn scroll(&mut self, _delta: isize, _cx: &Shared) {}
    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool);
}

/// How far a movement key moves a list's cursor.
pub fn movement(action: Action) -> Option<isize> {
    Some(match action {
        Action::Down => 1,
        Action::Up => -1,
        Action::PageDown => 20,
        Action::PageUp => -20,
        Action::Top => isize::MIN / 2,
        Action::Bottom => isize::MAX / 2,
        _ => return None,
    })
}

/// `cursor` moved by `delta` within a list of `len`.
pub fn step(cursor: usize, delta: isize, len: usize) -> usize {
    (cursor as isize)
        .saturating_add(delta)
        .clamp(0, (len as isize - 1).max(0)) as usize
}

/// The first line to show so that `cursor` stays in the middle of `height` lines.
pub fn window_start(cursor: usize, height: usize, len: usize) -> usize {
    cursor
        .saturating_sub(height.saturating_sub(1) / 2)
        .min(len.saturating_sub(height))
}

/// `s` on one line, cut to `n` characters with an ellipsis.
pub fn clip(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > n {
        format!(
            "{}…",
            one.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    } else {
        one
    }
}

/// `s` cut to `n` characters with an ellipsis, its spacing kept (for text laid out in
/// columns already).
pub fn elide(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    } else {
        s.to_string()
    }
}

/// A block title of at most `w` characters: ` text `, elided when longer.
pub fn title(s: &str, w: usize) -> String {
    format!(" {} ", elide(s.trim(), w.saturating_sub(2)))
}

/// A `w`×`h` rectangle in the middle of `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
