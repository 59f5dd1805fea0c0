//! The schema browser: tables with their row counts, columns with types, keys and sample
//! values, filtered by a search; a name goes into the editor with one key.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Hint, Intent, Pane, Prompt, Shared, movement, step, window_start};
use crate::tui::fit::{elide, join_fitting, pad, width};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::sql::schema::{Schema, Table};

#[derive(Default)]
pub struct SchemaPane {
    pub cursor: usize,
    pub search: String,
}

impl SchemaPane {
    /// A new search; the cursor goes back to the top.
    pub fn set_search(&mut self, s: String) {
        self.search = s;
        self.cursor = 0;
    }

    /// Schema lines: a table, then its columns (table index, column index).
    pub fn lines(&self, schema: &Schema) -> Vec<(usize, Option<usize>)> {
        let q = self.search.to_lowercase();
        let mut out = Vec::new();
        for (ti, t) in schema.tables.iter().enumerate() {
            let table_hit = q.is_empty() || t.name.to_lowercase().contains(&q);
            let cols: Vec<usize> = t
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| table_hit || c.name.to_lowercase().contains(&q))
                .map(|(i, _)| i)
                .collect();
            if table_hit || !cols.is_empty() {
                out.push((ti, None));
                out.extend(cols.into_iter().map(|c| (ti, Some(c))));
            }
        }
        out
    }
}

impl Pane for SchemaPane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        let Some(action) = cx.keymap.action(Context::Normal, key) else {
            return Intent::Unhandled;
        };
        let schema = &cx.project.schema;
        if let Some(delta) = movement(action) {
            self.scroll(delta, cx);
            return Intent::Handled;
        }
        match action {
            Action::Search => Intent::Prompt(Prompt::Search),
            Action::InsertName => {
                let lines = self.lines(schema);
                match lines.get(self.cursor) {
                    Some((t, c)) => {
                        let table = &schema.tables[*t];
                        Intent::InsertName(match c {
                            Some(c) => table.columns[*c].name.clone(),
                            None => table.name.clone(),
                        })
                    }
                    None => Intent::Handled,
                }
            }
            _ => Intent::Unhandled,
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(cx.keymap, &[Action::Search, Action::InsertName])
    }

    fn scroll(&mut self, delta: isize, cx: &Shared) {
        self.cursor = step(self.cursor, delta, self.lines(&cx.project.schema).len());
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let (theme, schema) = (cx.theme, &cx.project.schema);
        let lines = self.lines(schema);
        let title = format!(
            "Schema: {} tables{}",
            schema.tables.len(),
            if self.search.is_empty() {
                String::new()
            } else {
                format!(" matching \"{}\"", self.search)
            }
        );
        let block = cx.block(
            format!(" {} ", elide(&title, area.width.saturating_sub(4) as usize)),
            focused,
        );
        let inner = block.inner(area);
        f.render_widget(block, area);
        let w = inner.width as usize;
        // The columns are as wide as the whole schema needs (they do not move while
        // scrolling), the names up to 24 cells; the samples take what is left.
        let cols = || {
            schema
                .tables
                .iter()
                .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
        };
        let name_w = cols()
            .map(|(_, c)| width(&c.name))
            .max()
            .unwrap_or(0)
            .min(24);
        let type_w = cols()
            .map(|(_, c)| width(&c.decl_type))
            .max()
            .unwrap_or(0)
            .min(12);
        let key_w = cols()
            .map(|(t, c)| width(&key_marker(t, &c.name, c.primary_key)))
            .max()
            .unwrap_or(0)
            .min(24);
        let h = inner.height as usize;
        let start = window_start(self.cursor, h, lines.len());
        let mut out = Vec::new();
        for (i, (t, c)) in lines.iter().enumerate().skip(start).take(h) {
            let table = &schema.tables[*t];
            let line = match c {
                None => {
                    let rows = format!("  {} rows", table.row_count);
                    Line::from(vec![
                        Span::styled(
                            elide(&table.name, w.saturating_sub(width(&rows))),
                            theme.ui(Ui::Title).add_modifier(Modifier::BOLD),
                        ),
                        Span::styled(rows, theme.ui(Ui::Muted)),
                    ])
                }
                Some(ci) => {
                    let col = &table.columns[*ci];
                    let key = key_marker(table, &col.name, col.primary_key);
                    let samples: Vec<String> = col
                        .samples
                        .iter()
                        .take(3)
                        .map(|v| elide(&v.display(), 16))
                        .collect();
                    // Two spaces between the columns: a key's table never runs into a
                    // sample number (`→ employees  13`).
                    let room = w.saturating_sub(2 + name_w + 2 + type_w + 2 + key_w + 2);
                    Line::from(vec![
                        Span::raw(format!("  {}  ", pad(&col.name, name_w))),
                        Span::styled(pad(&col.decl_type, type_w), theme.sql("keyword")),
                        Span::raw("  "),
                        Span::styled(pad(&key, key_w), theme.ui(Ui::Warning)),
                        Span::raw("  "),
                        Span::styled(join_fitting(&samples, ", ", room), theme.ui(Ui::Muted)),
                    ])
                }
            };
            out.push(if i == self.cursor {
                theme.selected(line)
            } else {
                line
            });
        }
        f.render_widget(Paragraph::new(out), inner);
    }
}

/// What a column is in its table's keys: `PK` when it is (part of) the primary key, `→ T`
/// for each table a foreign key of it references; both when both (a key column of a link
/// table such as `order_items.order_id`: `PK → orders`).
pub fn key_marker(table: &Table, column: &str, primary_key: bool) -> String {
    let mut parts = Vec::new();
    if primary_key {
        parts.push("PK".to_string());
    }
    for fk in &table.foreign_keys {
        if fk.columns.iter().any(|c| c == column) {
            let r = format!("→ {}", fk.ref_table);
            if !parts.contains(&r) {
                parts.push(r);
            }
        }
    }
    parts.join(" ")
}
