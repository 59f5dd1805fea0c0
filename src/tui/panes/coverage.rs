//! Coverage of the run shown: for each concept, then each table, how many gold, generated and
//! accepted pairs use it (numbers, with bars of the share of each set scaled to the width),
//! with text markers for what is missing or under-represented (they survive `NO_COLOR`) and
//! a legend; Spider hardness and what the pairs never touch beside. Enter on a concept or a
//! table shows its pairs in the review queue.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Hint, Intent, Pane, Shared, clip, elide, movement, step, title, window_start};
use crate::tui::keymap::{Action, Context};
use crate::tui::theme::{Theme, Ui};
use lode_core::pipeline::coverage::Coverage;

pub struct CoveragePane {
    pub coverage: Option<Coverage>,
    /// A decision was made since the coverage was computed.
    pub stale: bool,
    /// The row selected: the concepts first, then the tables.
    pub cursor: usize,
}

impl Default for CoveragePane {
    fn default() -> Self {
        CoveragePane {
            coverage: None,
            stale: true,
            cursor: 0,
        }
    }
}

/// What a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Concept,
    Table,
}

impl Kind {
    /// The queue's search word for it (`concept:NAME`, `table:NAME`).
    fn word(self) -> &'static str {
        match self {
            Kind::Concept => "concept",
            Kind::Table => "table",
        }
    }
}

/// How a row stands against the gold set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Fine,
    /// Used by gold pairs, by no generated one.
    Missing,
    /// A smaller share of the generated pairs than of the gold ones.
    Low,
}

impl Mark {
    /// The marker, in text (colour only adds to it).
    pub fn text(self) -> &'static str {
        match self {
            Mark::Fine => " ",
            Mark::Missing => "!",
            Mark::Low => "~",
        }
    }

    fn style(self, theme: &Theme) -> Style {
        match self {
            Mark::Fine => Style::default(),
            Mark::Missing => theme.ui(Ui::Error).add_modifier(Modifier::BOLD),
            Mark::Low => theme.ui(Ui::Warning).add_modifier(Modifier::BOLD),
        }
    }
}

/// One concept or table with the pairs of each set using it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: Kind,
    pub name: String,
    pub gold: usize,
    pub generated: usize,
    pub accepted: usize,
    pub mark: Mark,
}

/// The rows the view lists: the concepts, then the tables, of any of the three sets.
pub fn rows(c: &Coverage) -> Vec<Row> {
    let mut out = Vec::new();
    let concepts: std::collections::BTreeSet<&String> = c
        .gold
        .concepts
        .keys()
        .chain(c.generated.concepts.keys())
        .chain(c.accepted.concepts.keys())
        .collect();
    for k in concepts {
        let mark = if c.missing_concepts.contains(k) {
            Mark::Missing
        } else if c.underrepresented_concepts.iter().any(|u| &u.name == k) {
            Mark::Low
        } else {
            Mark::Fine
        };
        let n = |m: &std::collections::BTreeMap<String, usize>| m.get(k).copied().unwrap_or(0);
        out.push(Row {
            kind: Kind::Concept,
            name: k.clone(),
            gold: n(&c.gold.concepts),
            generated: n(&c.generated.concepts),
            accepted: n(&c.accepted.concepts),
            mark,
        });
    }
    let tables: std::collections::BTreeSet<&String> = c
        .gold
        .tables
        .keys()
        .chain(c.generated.tables.keys())
        .chain(c.accepted.tables.keys())
        .collect();
    for t in tables {
        let n = |m: &std::collections::BTreeMap<String, usize>| m.get(t).copied().unwrap_or(0);
        let (gold, generated) = (n(&c.gold.tables), n(&c.generated.tables));
        out.push(Row {
            kind: Kind::Table,
            name: t.clone(),
            gold,
            generated,
            accepted: n(&c.accepted.tables),
            // Tables are marked as concepts are: used by the gold set, by no generated pair.
            mark: if gold > 0 && generated == 0 {
                Mark::Missing
            } else {
                Mark::Fine
            },
        });
    }
    out
}

/// A bar of `share` (0..=1) of `width` cells, in eighths of a cell; a share above zero shows
/// at least an eighth, so one pair of many is never drawn as none.
pub fn bar(share: f64, width: usize) -> String {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = (share.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let eighths = if share > 0.0 { eighths.max(1) } else { 0 };
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PARTS[eighths % 8]);
    s
}

/// Packs `parts` into lines of `width` cells, joined by ` · `; a part longer than a line is
/// elided.
fn pack(parts: &[&str], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for p in parts {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 3 + p.chars().count() <= width => {
                l.push_str(" · ");
                l.push_str(p);
            }
            _ => lines.push(clip(p, width)),
        }
    }
    lines
}

const LEGEND: [&str; 4] = [
    "! missing: in gold, never generated",
    "~ low: under-represented",
    "bars: share of each set's pairs",
    "Enter: these pairs in Review",
];

impl CoveragePane {
    /// The row selected, when the coverage is computed.
    pub fn selected(&self) -> Option<Row> {
        self.coverage
            .as_ref()
            .and_then(|c| rows(c).into_iter().nth(self.cursor))
    }

    fn render_rows(&self, f: &mut Frame, area: Rect, c: &Coverage, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        let rows = rows(c);
        let n_concepts = rows.iter().filter(|r| r.kind == Kind::Concept).count();
        let heading = format!(
            "Coverage: {} gold, {} generated, {} accepted pairs · {} concepts, {} tables",
            c.gold.pairs,
            c.generated.pairs,
            c.accepted.pairs,
            n_concepts,
            rows.len() - n_concepts
        );
        let w = area.width.saturating_sub(2) as usize;
        let block = cx.block(title(&heading, w), focused);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let legend = pack(&LEGEND, w);
        let [list, foot] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(legend.len() as u16)])
                .areas(inner);
        // marker, name, then three cells (count and bar) for gold, generated, accepted.
        let longest = rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0);
        let name_w = longest.clamp(8, (w / 3).max(8));
        let count_w = rows
            .iter()
            .flat_map(|r| [r.gold, r.generated, r.accepted])
            .chain([c.gold.pairs, c.generated.pairs, c.accepted.pairs])
            .max()
            .unwrap_or(0)
            .to_string()
            .len();
        let cell_w = w.saturating_sub(2 + name_w + 3) / 3;
        let bar_w = cell_w.saturating_sub(count_w + 1);
        let cell = |n: usize, of: usize| {
            let share = if of == 0 { 0.0 } else { n as f64 / of as f64 };
            format!("{n:>count_w$} {:<bar_w$}", bar(share, bar_w))
        };
        let heading = |name: &str, n: usize| clip(&format!("{name} ({n} pairs)"), cell_w);
        let mut lines = vec![Line::from(Span::styled(
            format!(
                "  {:<name_w$} {:<cell_w$} {:<cell_w$} {}",
                clip("concept / table", name_w),
                heading("gold", c.gold.pairs),
                heading("generated", c.generated.pairs),
                heading("accepted", c.accepted.pairs),
            ),
            theme.ui(Ui::Muted).add_modifier(Modifier::BOLD),
        ))];
        // The list with a heading line before the tables; the selected row stays in view.
        let mut shown: Vec<Option<usize>> = (0..rows.len()).map(Some).collect();
        if n_concepts < rows.len() {
            shown.insert(n_concepts, None);
        }
        let at = shown
            .iter()
            .position(|s| *s == Some(self.cursor))
            .unwrap_or(0);
        let height = (list.height as usize).saturating_sub(1);
        let start = window_start(at, height, shown.len());
        for s in shown.iter().skip(start).take(height) {
            let Some(i) = *s else {
                lines.push(Line::from(Span::styled(
                    elide("  table", w),
                    theme.ui(Ui::Muted).add_modifier(Modifier::BOLD),
                )));
                continue;
            };
            let r = &rows[i];
            let name_style = match r.mark {
                Mark::Fine => Style::default(),
                m => m.style(theme),
            };
            let mut line = Line::from(vec![
                Span::styled(r.mark.text(), r.mark.style(theme)),
                Span::raw(" "),
                Span::styled(format!("{:<name_w$} ", clip(&r.name, name_w)), name_style),
                Span::styled(
                    format!("{} ", cell(r.gold, c.gold.pairs)),
                    theme.ui(Ui::Muted),
                ),
                Span::styled(
                    format!("{} ", cell(r.generated, c.generated.pairs)),
                    theme.ui(Ui::Title),
                ),
                Span::styled(cell(r.accepted, c.accepted.pairs), theme.ui(Ui::Success)),
            ]);
            if i == self.cursor && focused {
                line = line.style(theme.selection());
            }
            lines.push(line);
        }
        f.render_widget(Paragraph::new(lines), list);
        let legend: Vec<Line> = legend
            .into_iter()
            .map(|l| Line::from(Span::styled(l, theme.ui(Ui::Muted))))
            .collect();
        f.render_widget(Paragraph::new(legend), foot);
    }

    /// Hardness and what nothing uses, one figure or name a line, in `w` cells (elided,
    /// never wrapped into another figure): beside the list in a wide window.
    fn schema_lines(c: &Coverage, theme: &Theme, w: usize) -> Vec<Line<'static>> {
        let mut s = vec![Line::from(Span::styled(
            elide("Spider hardness (generated)", w),
            theme.ui(Ui::Title),
        ))];
        for (h, n) in &c.generated.hardness {
            s.push(Line::from(elide(&format!("  {h:<8} {n:>4}"), w)));
        }
        s.push(Line::from(""));
        for (what, names) in [
            ("unused tables", &c.unused_tables),
            ("unused joins", &c.unused_joins),
        ] {
            s.push(Line::from(elide(&format!("{what}: {}", names.len()), w)));
            for n in names {
                s.push(Line::from(elide(&format!("  {n}"), w)));
            }
        }
        s.push(Line::from(elide(
            &format!("unused columns: {}", c.unused_columns.len()),
            w,
        )));
        s
    }

    /// The same in four lines, each elided to `w` cells: under the list in a narrow window.
    fn schema_summary(c: &Coverage, w: usize) -> Vec<Line<'static>> {
        let none_or = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let h: Vec<String> = c
            .generated
            .hardness
            .iter()
            .map(|(h, n)| format!("{h} {n}"))
            .collect();
        [
            format!("hardness (generated): {}", none_or(&h)),
            format!(
                "unused tables ({}): {}",
                c.unused_tables.len(),
                none_or(&c.unused_tables)
            ),
            format!(
                "unused joins ({}): {}",
                c.unused_joins.len(),
                none_or(&c.unused_joins)
            ),
            format!("unused columns: {}", c.unused_columns.len()),
        ]
        .iter()
        .map(|l| Line::from(clip(l, w)))
        .collect()
    }
}

impl Pane for CoveragePane {
    fn handle(&mut self, key: &KeyEvent, cx: &Shared) -> Intent {
        if cx.keymap.action(Context::Normal, key) == Some(Action::ShowPairs) {
            return match self.selected() {
                Some(r) => Intent::FilterQueue(format!("{}:{}", r.kind.word(), r.name)),
                None => Intent::Handled,
            };
        }
        match cx.keymap.action(Context::Normal, key).and_then(movement) {
            Some(delta) => {
                Pane::scroll(self, delta, cx);
                Intent::Handled
            }
            None => Intent::Unhandled,
        }
    }

    fn hints(&self, cx: &Shared) -> Vec<Hint> {
        super::hints(
            cx.keymap,
            &[Action::Down, Action::Up, Action::ShowPairs, Action::Analyze],
        )
    }

    fn scroll(&mut self, delta: isize, _cx: &Shared) {
        let n = self.coverage.as_ref().map_or(0, |c| rows(c).len());
        self.cursor = step(self.cursor, delta, n);
    }

    fn render(&mut self, f: &mut Frame, area: Rect, cx: &Shared, focused: bool) {
        let theme = cx.theme;
        let Some(c) = &self.coverage else {
            f.render_widget(
                Paragraph::new(clip(
                    &format!(
                        "No coverage computed yet: press {} to compute it.",
                        cx.keymap.keys_of(Action::Analyze)
                    ),
                    area.width.saturating_sub(2) as usize,
                ))
                .block(cx.block(" Coverage ".into(), focused)),
                area,
            );
            return;
        };
        // Wide: the schema's coverage beside the list; narrow: a few lines under it.
        if area.width >= 120 {
            let [list, side] =
                Layout::horizontal([Constraint::Min(60), Constraint::Length(40)]).areas(area);
            self.render_rows(f, list, c, cx, focused);
            let lines = Self::schema_lines(c, theme, side.width.saturating_sub(2) as usize);
            f.render_widget(
                Paragraph::new(lines).block(cx.block(" Schema coverage ".into(), false)),
                side,
            );
        } else {
            let [list, side] =
                Layout::vertical([Constraint::Min(8), Constraint::Length(6)]).areas(area);
            self.render_rows(f, list, c, cx, focused);
            let w = side.width.saturating_sub(2) as usize;
            let lines = Self::schema_summary(c, w);
            f.render_widget(
                Paragraph::new(lines).block(cx.block(title("Schema coverage", w), false)),
                side,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_never_hide_a_pair() {
        assert_eq!(bar(0.0, 10), "");
        // 1 of 11 on 4 cells: 0.36 of a cell, 3 eighths.
        assert_eq!(bar(1.0 / 11.0, 4), "▍");
        // 1 of 100 on 4 cells rounds to no eighth: still one.
        assert_eq!(bar(0.01, 4), "▏");
        assert_eq!(bar(1.0, 3), "███");
        assert_eq!(bar(0.5, 3), "█▌");
    }

    #[test]
    fn legend_lines_pack_and_elide() {
        assert_eq!(pack(&["ab", "cd"], 10), vec!["ab · cd"]);
        assert_eq!(pack(&["ab", "cd"], 6), vec!["ab", "cd"]);
        assert_eq!(pack(&["abcdefgh"], 5), vec!["abcd…"]);
    }
}
