//! The schema browser: tables with their row counts, columns with types, keys and sample
//! values, filtered by a search; a name goes into the editor with one key.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Hint, Intent, Pane, Prompt, Shared, clip, movement, step, window_start};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::Ui;
use lode_core::sql::schema::Schema;

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
        let block = cx.block(
            format!(
                " Schema: {} tables{} ",
                schema.tables.len(),
                if self.search.is_empty() {
                    String::new()
                } else {
                    format!(" matching \"{}\"", self.search)
                }
            ),
            focused,
        );
        let inner = block.inner(area);
        f.render_widget(block, area);
        let h = inner.height as usize;
        let start = window_start(self.cursor, h, lines.len());
        let mut out = Vec::new();
        for (i, (t, c)) in lines.iter().enumerate().skip(start).take(h) {
            let table = &schema.tables[*t];
            let mut line = match c {
                None => Line::from(vec![
                    Span::styled(
                        table.name.clone(),
                        theme.ui(Ui::Title).add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(format!("  {} rows", table.row_count), theme.ui(Ui::Muted)),
                ]),
                Some(ci) => {
                    let col = &table.columns[*ci];
                    let key = if col.primary_key {
                        " PK".to_string()
                    } else {
                        table
                            .foreign_keys
                            .iter()
                            .find(|fk| fk.columns.iter().any(|x| x == &col.name))
                            .map(|fk| format!(" → {}", fk.ref_table))
                            .unwrap_or_default()
                    };
                    let samples: Vec<String> = col
                        .samples
                        .iter()
                        .take(3)
                        .map(|v| clip(&v.display(), 16))
                        .collect();
                    Line::from(vec![
                        Span::raw(format!("  {:<22}", col.name)),
                        Span::styled(format!("{:<10}", col.decl_type), theme.sql("keyword")),
                        Span::styled(format!("{key:<14}"), theme.ui(Ui::Warning)),
                        Span::styled(samples.join(", "), theme.ui(Ui::Muted)),
                    ])
                }
            };
            if i == self.cursor {
                line = line.style(theme.selection());
            }
            out.push(line);
        }
        f.render_widget(Paragraph::new(out), inner);
    }
}
