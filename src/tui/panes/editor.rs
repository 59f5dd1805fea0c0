//! The SQL editor: the selected pair's SQL, laid out and highlighted, editable. An unsaved
//! edit stays with its pair as a draft when the selection moves on, and comes back with it.

use std::collections::HashMap;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use tui_textarea::TextArea;

use super::{Hint, Intent, Pane, Shared};
use crate::tui::highlight;
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Theme;

#[derive(Default)]
pub struct EditorPane {
    pub textarea: TextArea<'static>,
    /// The editor holds text the user changed (not the pair's SQL).
    pub dirty: bool,
    /// The pair whose SQL (or draft) the editor holds.
    pub pair: Option<i64>,
    /// The pair's SQL is in the editor (it is read in the background).
    pub loaded: bool,
    /// Unsaved edits of pairs the user moved away from, restored on return.
    pub drafts: HashMap<i64, String>,
}

impl EditorPane {
    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    pub fn lines(&self) -> &[String] {
        self.textarea.lines()
    }

    /// Unsaved SQL edits: the editor's and the stashed drafts.
    pub fn unsaved(&self) -> usize {
        self.drafts.len() + usize::from(self.dirty)
    }

    /// Replaces the text (laid out for reading); not an edit.
    pub fn set(&mut self, sql: &str, theme: &Theme) {
        let sql = highlight::layout(sql);
        self.textarea = TextArea::new(sql.lines().map(String::from).collect());
        self.dirty = false;
        highlight::apply(&mut self.textarea, theme);
    }

    /// The user's text replaces the editor's (from `$EDITOR`).
    pub fn replace(&mut self, sql: &str, theme: &Theme) {
        self.set(sql, theme);
        self.dirty = true;
    }

    /// Inserts text at the cursor, as typing would.
    pub fn insert(&mut self, text: &str, theme: &Theme) {
        self.textarea.insert_str(text.replace("\r\n", "\n"));
        self.dirty = true;
        highlight::apply(&mut self.textarea, theme);
    }

    /// The selection moved to `id`: an unsaved edit of the pair left is kept as a draft (the
    /// message says so), and the new pair's draft comes back. Without a draft the editor waits
    /// for the pair's SQL ([`EditorPane::loaded_sql`]).
    pub fn follow(&mut self, id: Option<i64>, theme: &Theme) -> Option<String> {
        if self.pair == id {
            return None;
        }
        let mut message = None;
        if self.dirty
            && let Some(p) = self.pair
        {
            self.drafts.insert(p, self.text());
            message = Some(format!("the unsaved edit of pair {p} is kept as a draft"));
        }
        match id.and_then(|id| self.drafts.remove(&id)) {
            Some(draft) => {
                self.replace(&draft, theme);
                self.loaded = true;
            }
            None => {
                self.set("", theme);
                self.loaded = false;
            }
        }
        self.pair = id;
        message
    }

    /// The stored SQL of `id` was read: shown unless the user is editing it.
    pub fn loaded_sql(&mut self, id: i64, sql: &str, theme: &Theme) {
        if self.pair == Some(id) && !self.dirty {
            self.set(sql, theme);
            self.loaded = true;
        }
    }
}

impl Pane for EditorPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        match cx.keymap.action(Context::Editor, key) {
            Some(Action::RunQuery) => Intent::RunQuery(self.text()),
            Some(Action::CancelQuery) => Intent::CancelQuery,
            Some(Action::SaveEdit) => Intent::SaveEdit(self.text()),
            Some(Action::LeaveEditor) => Intent::LeaveEditor,
            _ => {
                if self.textarea.input(*key) {
                    self.dirty = true;
                    highlight::apply(&mut self.textarea, cx.theme);
                }
                Intent::Handled
            }
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(
            cx.keymap,
            &[
                Action::RunQuery,
                Action::SaveEdit,
                Action::CancelQuery,
                Action::LeaveEditor,
            ],
        )
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        self.textarea.set_block(cx.block(
            format!(" SQL{} ", if self.dirty { " (edited)" } else { "" }),
            focused,
        ));
        self.textarea.set_cursor_line_style(Style::default());
        f.render_widget(&self.textarea, area);
    }
}
