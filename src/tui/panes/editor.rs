//! The SQL pane: the selected pair's whole SQL, laid out by clause, highlighted and wrapped,
//! scrollable with a marker when it does not fit; editable (`e`). An unsaved edit stays with
//! its pair as a draft when the selection moves on (the app keeps drafts in the store, so
//! they survive quitting), and comes back with it.

use std::collections::HashMap;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use tui_textarea::TextArea;

use lode_core::sql::SqlDialect;

use super::{Hint, Intent, Pane, Shared};
use crate::tui::highlight;
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::{Theme, Ui};

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
    /// First line shown of the read-only view (wrapped lines).
    pub scroll: usize,
    /// Wrapped lines of the read-only view and how many it showed, when last drawn.
    view: (usize, usize),
    /// The audited gold pair whose SQL the editor holds instead of a pair's (opened from the
    /// evaluation view); it stays until the selection moves to a pair.
    pub gold: Option<Box<lode_core::pipeline::audit::Finding>>,
    /// The dialect of the project's database: what the SQL is laid out and coloured as.
    pub dialect: SqlDialect,
}

impl EditorPane {
    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    pub fn lines(&self) -> &[String] {
        self.textarea.lines()
    }

    /// The selected pair has a draft: an unsaved edit on screen or one kept for it.
    pub fn has_draft(&self, id: i64) -> bool {
        (self.pair == Some(id) && self.dirty) || self.drafts.contains_key(&id)
    }

    /// The draft of `id`, on screen or kept.
    pub fn draft(&self, id: i64) -> Option<String> {
        if self.pair == Some(id) && self.dirty {
            return Some(self.text());
        }
        self.drafts.get(&id).cloned()
    }

    /// Forgets the draft of `id`; the editor shows `stored` again if it holds that pair.
    pub fn discard(&mut self, id: i64, stored: Option<&str>, theme: &Theme) {
        self.drafts.remove(&id);
        if self.pair == Some(id) {
            self.set(stored.unwrap_or(""), theme);
            self.loaded = stored.is_some();
        }
    }

    /// Completes the word before the cursor from the schema's table and column names and
    /// SQL keywords: a single match is written out, several give their common start and are
    /// listed (the message says which).
    pub fn complete(&mut self, cx: &Shared) -> Option<String> {
        let (row, col) = self.textarea.cursor();
        let line = self.textarea.lines().get(row)?.clone();
        let before: String = line.chars().take(col).collect();
        let prefix: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if prefix.is_empty() {
            return Some("type the start of a name, then Tab".into());
        }
        let schema = &cx.project.schema;
        let mut names: Vec<String> = schema
            .tables
            .iter()
            .flat_map(|t| {
                std::iter::once(t.name.clone()).chain(t.columns.iter().map(|c| c.name.clone()))
            })
            .chain(COMPLETION_KEYWORDS.iter().map(|k| k.to_string()))
            .filter(|n| n.to_lowercase().starts_with(&prefix.to_lowercase()) && *n != prefix)
            .collect();
        names.sort();
        names.dedup();
        let Some(first) = names.first() else {
            return Some(format!(
                "no table, column or keyword starts with `{prefix}`"
            ));
        };
        // The longest start every candidate shares (without case).
        let common: String = first
            .chars()
            .enumerate()
            .take_while(|(i, c)| {
                names
                    .iter()
                    .all(|n| n.chars().nth(*i).is_some_and(|d| d.eq_ignore_ascii_case(c)))
            })
            .map(|(_, c)| c)
            .collect();
        let rest: String = common.chars().skip(prefix.chars().count()).collect();
        if !rest.is_empty() {
            self.textarea.insert_str(&rest);
            self.dirty = true;
            highlight::apply(&mut self.textarea, cx.theme, self.dialect);
        }
        (names.len() > 1).then(|| {
            let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
            format!(
                "{} names: {}{}",
                names.len(),
                shown.join(" "),
                if names.len() > 8 { " …" } else { "" }
            )
        })
    }

    /// Scrolls the read-only view by `delta` wrapped lines.
    pub fn scroll_by(&mut self, delta: isize) {
        let (total, shown) = self.view;
        let max = total.saturating_sub(shown.max(1));
        self.scroll = self.scroll.saturating_add_signed(delta).min(max);
    }

    /// The wrapped lines the read-only view needs at this inner width.
    pub fn view_lines(&self, width: usize, theme: &Theme) -> Vec<Line<'static>> {
        highlight::hard_wrap(
            highlight::styled_lines(&self.text(), theme, self.dialect),
            width,
        )
    }

    /// Replaces the text (laid out for reading); not an edit.
    pub fn set(&mut self, sql: &str, theme: &Theme) {
        self.scroll = 0;
        let sql = highlight::layout(sql, self.dialect);
        self.textarea = TextArea::new(sql.lines().map(String::from).collect());
        self.dirty = false;
        highlight::apply(&mut self.textarea, theme, self.dialect);
    }

    /// The user's text replaces the editor's (from `$EDITOR`, or a draft coming back): kept
    /// exactly as written, not laid out.
    pub fn replace(&mut self, sql: &str, theme: &Theme) {
        self.scroll = 0;
        self.textarea = TextArea::new(sql.lines().map(String::from).collect());
        highlight::apply(&mut self.textarea, theme, self.dialect);
        self.dirty = true;
    }

    /// Inserts text at the cursor, as typing would.
    pub fn insert(&mut self, text: &str, theme: &Theme) {
        // Terminals paste line breaks as CR LF or a lone CR: both are new lines here.
        self.textarea
            .insert_str(text.replace("\r\n", "\n").replace('\r', "\n"));
        self.dirty = true;
        highlight::apply(&mut self.textarea, theme, self.dialect);
    }

    /// The selection moved to `id`: an unsaved edit of the pair left is kept as a draft
    /// (returned, for the app to keep in the store), and the new pair's draft comes back.
    /// Without a draft the editor waits for the pair's SQL ([`EditorPane::loaded_sql`]).
    pub fn follow(&mut self, id: Option<i64>, theme: &Theme) -> Option<(i64, String)> {
        if self.pair == id {
            return None;
        }
        self.gold = None;
        let mut left = None;
        if self.dirty
            && let Some(p) = self.pair
        {
            let text = self.text();
            self.drafts.insert(p, text.clone());
            left = Some((p, text));
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
        left
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
            Some(Action::Complete) => match self.complete(cx) {
                Some(m) => Intent::Message(m),
                None => Intent::Handled,
            },
            _ => {
                if self.textarea.input(*key) {
                    self.dirty = true;
                    highlight::apply(&mut self.textarea, cx.theme, self.dialect);
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
                Action::Complete,
                Action::CancelQuery,
                Action::LeaveEditor,
            ],
        )
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let title = format!(
            " SQL{} ",
            if self.dirty {
                " · draft, not saved"
            } else {
                ""
            }
        );
        if focused {
            self.textarea.set_block(cx.block(title, focused));
            self.textarea.set_cursor_line_style(Style::default());
            f.render_widget(&self.textarea, area);
            return;
        }
        // Reading: the whole statement, wrapped, scrolled, with what is out of sight said.
        let inner_w = area.width.saturating_sub(2) as usize;
        let shown = area.height.saturating_sub(2) as usize;
        let lines = self.view_lines(inner_w, cx.theme);
        let total = lines.len();
        self.view = (total, shown);
        self.scroll = self.scroll.min(total.saturating_sub(shown.max(1)));
        let below = total.saturating_sub(self.scroll + shown);
        let mut block = cx.block(title, focused);
        let keys = format!(
            "{}/{}",
            cx.keymap.keys_of(Action::SqlDown),
            cx.keymap.keys_of(Action::SqlUp)
        );
        let marker = match (self.scroll > 0, below > 0) {
            (_, true) => Some(format!(" ↓ {below} more line{} · {keys} ", plural(below))),
            (true, false) => Some(format!(" ↑ {} above · {keys} ", self.scroll)),
            _ => None,
        };
        if let Some(m) = marker {
            block = block.title_bottom(Line::from(Span::styled(m, cx.theme.ui(Ui::Warning))));
        }
        let visible: Vec<Line> = lines.into_iter().skip(self.scroll).take(shown).collect();
        f.render_widget(Paragraph::new(visible).block(block), area);
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Keywords offered by completion (the schema's names come first in use).
const COMPLETION_KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "GROUP", "ORDER", "BY", "HAVING", "LIMIT", "JOIN", "LEFT", "INNER",
    "ON", "AND", "OR", "NOT", "IN", "EXISTS", "BETWEEN", "LIKE", "DISTINCT", "COUNT", "SUM", "AVG",
    "MIN", "MAX", "CASE", "WHEN", "THEN", "ELSE", "END", "UNION", "DESC", "ASC", "WITH", "AS",
    "IS", "NULL",
];
