//! What the app draws around its views: the footer (the keys the view offers, then the
//! message, the background task or the prompt being typed) and the help overlay (every key,
//! grouped by pane, in columns, paged when it does not fit). Both fit any window lode runs
//! in (60×16 and up): what does not fit is elided with `…` or left for another page, never
//! cut; the footer always keeps the keys of help and quit. A footer message expires after a
//! few keys (and, with [`Chrome::tick`], after a few seconds).

use std::cell::Cell;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::app::{APP_KEYS, App, Mode, Tab};
use super::fit::{elide, pad, tail, width};
use super::keymap::{Action, Context, Keymap};
use super::panes::{Hint, Pane, Shared, centered, movement};
use super::search::search_warning;
use super::theme::Ui;

/// A footer message stays for this many keys after it appeared.
pub const MESSAGE_KEYS: usize = 5;
/// A footer message stays this long after it appeared (when the loop ticks).
pub const MESSAGE_TTL: Duration = Duration::from_secs(5);

/// The state of the footer and the help overlay.
#[derive(Debug, Default)]
pub struct Chrome {
    /// The page of the help overlay shown (from 0).
    pub help_page: usize,
    /// How many pages the help overlay had when last drawn.
    help_pages: Cell<usize>,
    /// The message as last seen, how many keys were pressed since it appeared, and when it
    /// was first seen by [`Chrome::tick`].
    seen: String,
    keys: usize,
    since: Option<Instant>,
}

impl Chrome {
    /// A key was pressed (before it is handled): a message shown for [`MESSAGE_KEYS`] keys
    /// already goes. `keep` holds it (a write still saving).
    pub fn on_key(&mut self, message: &mut String, keep: bool) {
        self.observe(message, None);
        if message.is_empty() || keep {
            return;
        }
        self.keys += 1;
        if self.keys > MESSAGE_KEYS {
            message.clear();
            self.observe(message, None);
        }
    }

    /// The clock moved on to `now`: a message shown for [`MESSAGE_TTL`] goes. Whether it
    /// went (the footer needs drawing). `keep` holds it (a write still saving).
    pub fn tick(&mut self, message: &mut String, now: Instant, keep: bool) -> bool {
        self.observe(message, Some(now));
        let since = *self.since.get_or_insert(now);
        if message.is_empty() || keep || now.duration_since(since) < MESSAGE_TTL {
            return false;
        }
        message.clear();
        self.observe(message, Some(now));
        true
    }

    /// When the message shown goes if nothing else happens (for the loop's sleep).
    pub fn expires_at(&self) -> Option<Instant> {
        (!self.seen.is_empty())
            .then_some(self.since)
            .flatten()
            .map(|t| t + MESSAGE_TTL)
    }

    /// A new message starts its keys and its time again.
    fn observe(&mut self, message: &str, now: Option<Instant>) {
        if self.seen != message {
            self.seen = message.to_string();
            self.keys = 0;
            self.since = now;
        }
    }

    /// A key while the help overlay is open: the movement keys turn its pages, any other
    /// key closes it (the answer is true then).
    pub fn help_key(&mut self, keymap: &Keymap, key: &KeyEvent) -> bool {
        let last = self.help_pages.get().max(1) - 1;
        let page = self.help_page;
        let to = match keymap.action(Context::Normal, key) {
            _ if last == 0 => None,
            Some(Action::Top) => Some(0),
            Some(Action::Bottom) => Some(last),
            Some(Action::Down | Action::PageDown | Action::ScrollRight) => {
                Some((page + 1).min(last))
            }
            Some(Action::Up | Action::PageUp | Action::ScrollLeft) => Some(page.saturating_sub(1)),
            _ => None,
        };
        match to {
            Some(p) => {
                self.help_page = p;
                false
            }
            None => {
                self.help_page = 0;
                true
            }
        }
    }

    /// How many pages the help overlay had when last drawn.
    pub fn help_pages(&self) -> usize {
        self.help_pages.get()
    }
}

fn shared(app: &App) -> Shared<'_> {
    Shared {
        keymap: &app.keymap,
        theme: &app.theme,
        project: &app.project,
    }
}

// ---------------------------------------------------------------------------------------------
// The footer

const SEP: &str = "  ";

/// The footer's two lines: the keys the view offers (help and quit always, the others as
/// many as fit, then `…`), and the message, the background task or the prompt.
pub fn render_footer(f: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let w = area.width as usize;
    let key_style = theme.ui(Ui::KeyHint).add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    for (i, (keys, label)) in fit_hints(&app.hints(), w).into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(SEP));
        }
        if !keys.is_empty() {
            spans.push(Span::styled(keys, key_style));
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(label, theme.ui(Ui::Muted)));
    }
    let warn = theme.ui(Ui::Warning);
    let prompt = |label: &str, s: &str, warning: Option<String>| {
        // The text up to the cursor shows its end (a long start gives way), then the cursor,
        // then what follows it as far as it fits.
        let at = s.char_indices().nth(app.cursor).map_or(s.len(), |(b, _)| b);
        let before = tail(&s[..at], w.saturating_sub(width(label) + 1));
        let after_room = w.saturating_sub(width(label) + width(&before) + 1);
        let after = elide(&s[at..], after_room);
        let used = width(label) + width(&before) + width(&after) + 1;
        let mut spans = vec![
            Span::styled(label.to_string(), theme.ui(Ui::KeyHint)),
            Span::raw(before),
            Span::raw("▏"),
            Span::raw(after),
        ];
        // What the search cannot match, as it is typed, in the room the text leaves.
        if let Some(warning) = warning {
            let room = w.saturating_sub(used + 2);
            if room >= 8 {
                spans.push(Span::styled(format!("  {}", elide(&warning, room)), warn));
            }
        }
        Line::from(spans)
    };
    // The queue's search syntax (the schema's search is plain words).
    let queue_warning = |s: &str| {
        if app.tab == Tab::Schema {
            None
        } else {
            search_warning(s)
        }
    };
    let status = match &app.mode {
        Mode::Search(s) => prompt("search: ", s, queue_warning(s)),
        Mode::Question(s) => prompt("question (Enter to save, Esc to cancel): ", s, None),
        // Empty, the reason offers the canned ones on number keys (ui.reject_reasons).
        Mode::Reason(s) if s.is_empty() => {
            let canned: Vec<String> = app
                .project
                .config
                .ui
                .reject_reasons
                .iter()
                .take(9)
                .enumerate()
                .map(|(i, r)| format!("{} {r}", i + 1))
                .collect();
            let label = format!("reason (type, or {}; Esc cancels): ", canned.join(" · "));
            prompt(&elide(&label, w.saturating_sub(2)), s, None)
        }
        Mode::Reason(s) => prompt("reason (Enter to reject, Esc to cancel): ", s, None),
        _ => {
            // The background task keeps its figures; the message gives way first.
            let bg = app
                .background
                .as_ref()
                .map(|b| format!("   {}", elide(&format!("⟳ {b}"), w.saturating_sub(3))))
                .unwrap_or_default();
            let room = w - width(&bg);
            // With no message, the queue's search says what it cannot match while it holds.
            let mut spans = match queue_warning(&app.review.search) {
                Some(warning) if app.message.is_empty() && app.tab == Tab::Review => {
                    vec![Span::styled(elide(&warning, room), warn)]
                }
                _ => vec![Span::raw(elide(&app.message, room))],
            };
            if !bg.is_empty() {
                spans.push(Span::styled(bg, warn));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(vec![Line::from(spans), status]), area);
}

/// The hints that fit in `w` cells, as (keys, label): help and quit always; the others in
/// order while they fit, the first that does not with its label elided, or `…` alone.
pub fn fit_hints(hints: &[Hint], w: usize) -> Vec<(String, String)> {
    let seg = |h: &Hint| (h.keys.clone(), h.label.clone());
    let seg_w = |h: &Hint| width(&h.keys) + 1 + width(&h.label);
    let total = |hs: &[&Hint]| -> usize {
        hs.iter().map(|h| seg_w(h)).sum::<usize>() + SEP.len() * hs.len().saturating_sub(1)
    };
    let all: Vec<&Hint> = hints.iter().collect();
    if total(&all) <= w {
        return hints.iter().map(seg).collect();
    }
    let kept = |h: &&Hint| matches!(h.action, Action::Help | Action::Quit);
    let must: Vec<&Hint> = hints.iter().filter(kept).collect();
    let rest: Vec<&Hint> = hints.iter().filter(|h| !kept(h)).collect();
    let must_w = total(&must);
    // The others' room: what help and quit leave, less the separator before them.
    let budget = w.saturating_sub(must_w + if must.is_empty() { 0 } else { SEP.len() });
    let mut out: Vec<(String, String)> = Vec::new();
    let mut used = 0;
    let n = rest.len();
    for (i, h) in rest.into_iter().enumerate() {
        let sep = if out.is_empty() { 0 } else { SEP.len() };
        // While others follow, the `…` that says some are left out keeps its room.
        let marker = if i + 1 == n { 0 } else { SEP.len() + 1 };
        if used + sep + seg_w(h) + marker <= budget {
            used += sep + seg_w(h);
            out.push(seg(h));
            continue;
        }
        // The first that does not fit: its label elided (the `…` says more are left out),
        // or `…` alone.
        let label_room = budget.saturating_sub(used + sep + width(&h.keys) + 1);
        if label_room >= 4 && width(&h.label) > label_room {
            out.push((h.keys.clone(), elide(&h.label, label_room)));
        } else if used + sep < budget {
            out.push((String::new(), "…".into()));
        }
        break;
    }
    out.extend(must.into_iter().map(seg));
    out
}

// ---------------------------------------------------------------------------------------------
// The help overlay

/// A heading of the help overlay and its keys.
pub struct Group {
    pub title: &'static str,
    pub entries: Vec<Entry>,
}

/// One line of the help: the keys, what they do, and whether the view answers them now.
#[derive(Debug, Clone)]
pub struct Entry {
    pub keys: String,
    pub description: String,
    pub offered: bool,
}

/// Every key the view answers now: the footer's, those of the view's other panes, and the
/// app's own (which answer in every view).
fn offered(app: &App) -> Vec<Action> {
    app.view_hints().iter().map(|h| h.action).collect()
}

/// The keys grouped by pane: App (the keys of every view, the movement keys and any binding
/// no pane offers), then each pane's keys as it offers them (the editor's also every
/// binding of the editor context).
pub fn help_groups(app: &App) -> Vec<Group> {
    let cx = shared(app);
    let offered = offered(app);
    let entry = |h: &Hint| Entry {
        keys: h.keys.clone(),
        description: h.description.to_string(),
        offered: offered.contains(&h.action),
    };
    let mut editor = app.editor.hints(&cx);
    for (a, _, _, ctx, _) in Action::TABLE {
        if *ctx == Context::Editor && !editor.iter().any(|h| h.action == *a) {
            editor.push(Hint::of(&app.keymap, *a));
        }
    }
    let panes: Vec<(&'static str, Vec<Hint>)> = vec![
        ("Queue", app.review.hints(&cx)),
        ("Pair", app.pair.hints(&cx)),
        ("Editor", editor),
        ("Results", app.results.hints(&cx)),
        ("Schema", app.schema.hints(&cx)),
        ("Coverage", app.coverage.hints(&cx)),
        ("Evaluation", app.eval.hints(&cx)),
        ("Jobs", app.jobs.hints(&cx)),
    ];
    // The app's own keys, the movement keys, and whatever no pane lists, in table order.
    let listed = |a: Action| panes.iter().any(|(_, hs)| hs.iter().any(|h| h.action == a));
    let mut app_entries = Vec::new();
    for (a, _, _, _, _) in Action::TABLE {
        if APP_KEYS.contains(a) || movement(*a).is_some() || !listed(*a) {
            app_entries.push(entry(&Hint::of(&app.keymap, *a)));
        }
        if *a == Action::PrevTab {
            app_entries.push(Entry {
                keys: "1-5".into(),
                description: "go to a view".into(),
                offered: true,
            });
        }
    }
    let mut groups = vec![Group {
        title: "App",
        entries: app_entries,
    }];
    groups.extend(panes.into_iter().map(|(title, hs)| Group {
        title,
        entries: hs.iter().map(entry).collect(),
    }));
    groups
}

/// A line of a help column.
#[derive(Debug, Clone)]
enum Item {
    /// A heading; true when it continues the group of the column before.
    Heading(&'static str, bool),
    Entry(Entry),
}

impl Item {
    fn heading(title: &str, cont: bool) -> String {
        if cont {
            format!("{title} (cont.)")
        } else {
            title.to_string()
        }
    }

    /// Its lines: keys wider than `cap` take a line of their own, the description goes
    /// under them.
    fn height(&self, cap: usize) -> usize {
        match self {
            Item::Entry(e) if width(&e.keys) > cap => 2,
            _ => 1,
        }
    }
}

/// A column of the help and its widths.
struct Column {
    items: Vec<Item>,
    /// The width of the keys (those wider take a line of their own).
    key_w: usize,
    desc_w: usize,
    /// Wider keys and headings.
    wide: usize,
}

impl Column {
    fn new(items: Vec<Item>, cap: usize) -> Column {
        let mut c = Column {
            items,
            key_w: 0,
            desc_w: 0,
            wide: 0,
        };
        for item in &c.items {
            match item {
                Item::Entry(e) => {
                    let kw = width(&e.keys);
                    if kw <= cap {
                        c.key_w = c.key_w.max(kw);
                    } else {
                        c.wide = c.wide.max(kw);
                    }
                    c.desc_w = c.desc_w.max(width(&e.description));
                }
                Item::Heading(t, cont) => c.wide = c.wide.max(width(&Item::heading(t, *cont))),
            }
        }
        c
    }

    fn width(&self) -> usize {
        (self.key_w + 1 + self.desc_w).max(self.wide)
    }

    /// Its lines as drawn, in `w` cells (less than its width only when the window is
    /// narrower than one column: the descriptions are elided then).
    fn lines(&self, w: usize, theme: &super::theme::Theme) -> Vec<Line<'static>> {
        let key_style = theme.ui(Ui::KeyHint).add_modifier(Modifier::BOLD);
        let desc_w = w.saturating_sub(self.key_w + 1);
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                Item::Heading(t, cont) => out.push(Line::from(Span::styled(
                    elide(&Item::heading(t, *cont), w),
                    theme.ui(Ui::Title).add_modifier(Modifier::BOLD),
                ))),
                Item::Entry(e) => {
                    let desc = Span::styled(
                        elide(&e.description, desc_w),
                        if e.offered {
                            Style::default()
                        } else {
                            theme.ui(Ui::Muted)
                        },
                    );
                    let keys = if width(&e.keys) > self.key_w {
                        out.push(Line::from(Span::styled(elide(&e.keys, w), key_style)));
                        Span::raw(" ".repeat(self.key_w))
                    } else {
                        Span::styled(pad(&e.keys, self.key_w), key_style)
                    };
                    out.push(Line::from(vec![keys, Span::raw(" "), desc]));
                }
            }
        }
        out
    }
}

/// The columns between two help columns.
const GAP: usize = 3;

/// Keys wider than this take a line of their own when the help must save width.
const KEY_CAP: usize = 11;

/// The groups flowed into columns of at most `h` lines: a group starts a new column rather
/// than be split when it fits in one, a heading never ends a column, and a group that goes
/// on in the next column says so under its heading again.
fn flow(groups: &[Group], h: usize, cap: usize) -> Vec<Column> {
    let h = h.max(3);
    let mut cols: Vec<(Vec<Item>, usize)> = vec![(Vec::new(), 0)];
    for g in groups.iter().filter(|g| !g.entries.is_empty()) {
        let items: Vec<Item> = g.entries.iter().cloned().map(Item::Entry).collect();
        let whole = 1 + items.iter().map(|i| i.height(cap)).sum::<usize>();
        let used = cols.last().map_or(0, |c| c.1);
        let first = items.first().map_or(1, |i| i.height(cap));
        if used > 0 && (used + 1 + first > h || (used + whole > h && whole <= h)) {
            cols.push((Vec::new(), 0));
        }
        if let Some(c) = cols.last_mut() {
            c.0.push(Item::Heading(g.title, false));
            c.1 += 1;
        }
        for item in items {
            let ih = item.height(cap);
            if cols.last().is_some_and(|c| c.1 + ih > h) {
                cols.push((vec![Item::Heading(g.title, true)], 1));
            }
            if let Some(c) = cols.last_mut() {
                c.0.push(item);
                c.1 += ih;
            }
        }
    }
    cols.into_iter()
        .filter(|c| !c.0.is_empty())
        .map(|c| Column::new(c.0, cap))
        .collect()
}

/// Columns packed into pages of at most `w` cells; a column wider than that has a page of
/// its own (its descriptions elided to fit).
fn pages(cols: Vec<Column>, w: usize) -> Vec<Vec<Column>> {
    let mut pages: Vec<Vec<Column>> = Vec::new();
    let mut used = 0;
    for c in cols {
        let cw = c.width();
        match pages.last_mut() {
            Some(p) if !p.is_empty() && used + GAP + cw <= w => {
                used += GAP + cw;
                p.push(c);
            }
            _ => {
                used = cw;
                pages.push(vec![c]);
            }
        }
    }
    pages
}

fn page_width(p: &[Column]) -> usize {
    p.iter().map(Column::width).sum::<usize>() + GAP * p.len().saturating_sub(1)
}

/// How many groups go on from one column to the next.
fn splits(p: &[Vec<Column>]) -> usize {
    p.iter()
        .flatten()
        .flat_map(|c| &c.items)
        .filter(|i| matches!(i, Item::Heading(_, true)))
        .count()
}

fn column_height(c: &Column, cap: usize) -> usize {
    c.items.iter().map(|i| i.height(cap)).sum()
}

/// `text` broken at spaces into lines of at most `w` cells (a longer word is elided).
fn wrap(text: &str, w: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && width(&cur) + 1 + width(word) > w {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        if width(&cur) > w {
            lines.push(elide(&cur, w));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The help overlay as laid out for a window: its pages of columns and the rectangle it
/// takes.
pub struct HelpLayout {
    pages: Vec<Vec<Column>>,
    pub rect: Rect,
    /// Lines of a column.
    pub height: usize,
}

impl HelpLayout {
    /// The smallest overlay that shows every key in one page (keys at their full width if
    /// that fits, else long keys on a line of their own); when none fits in `area`, the
    /// whole of `area` with the keys over as few pages as it takes.
    pub fn new(groups: &[Group], keys: &PageKeys, area: Rect) -> HelpLayout {
        let max_w = area.width.saturating_sub(2) as usize;
        let foot_h = foot_lines(1, 1, keys, max_w)
            .len()
            .max(foot_lines(9, 9, keys, max_w).len());
        let max_h = (area.height as usize).saturating_sub(2 + foot_h).max(3);
        let total: usize = groups.iter().map(|g| 2 * g.entries.len() + 1).sum();
        for cap in [usize::MAX, KEY_CAP] {
            // Of the heights that fit in one page, the one that splits the fewest groups,
            // then the shortest.
            let best = (3..=max_h.min(total.max(3)))
                .map(|h| (h, pages(flow(groups, h, cap), max_w)))
                .filter(|(_, p)| p.len() == 1)
                .min_by_key(|(h, p)| (splits(p), *h));
            if let Some((h, p)) = best {
                return HelpLayout::framed(p, h, cap, foot_h, keys, area);
            }
        }
        let (p, cap) = [usize::MAX, KEY_CAP]
            .into_iter()
            .map(|cap| (pages(flow(groups, max_h, cap), max_w), cap))
            .min_by_key(|(p, _)| p.len())
            .unwrap_or_default();
        HelpLayout::framed(p, max_h, cap, foot_h, keys, area)
    }

    fn framed(
        pages: Vec<Vec<Column>>,
        h: usize,
        cap: usize,
        foot_h: usize,
        keys: &PageKeys,
        area: Rect,
    ) -> HelpLayout {
        let widest = pages.iter().map(|p| page_width(p)).max().unwrap_or(0);
        let foot_w = foot_lines(pages.len(), pages.len(), keys, usize::MAX)
            .iter()
            .map(|l| width(l))
            .max()
            .unwrap_or(0);
        let tallest = pages
            .iter()
            .flatten()
            .map(|c| column_height(c, cap))
            .max()
            .unwrap_or(0);
        let height = if pages.len() > 1 { h } else { tallest.min(h) };
        let rect = centered(
            area,
            (widest.max(foot_w) + 2) as u16,
            (height + foot_h + 2) as u16,
        );
        HelpLayout {
            pages,
            rect,
            height,
        }
    }

    pub fn pages(&self) -> usize {
        self.pages.len()
    }
}

/// The keys that turn the help's pages forward and back, as bound.
pub struct PageKeys(pub String, pub String);

impl PageKeys {
    pub fn of(keymap: &Keymap) -> PageKeys {
        PageKeys(keymap.keys_of(Action::Down), keymap.keys_of(Action::Up))
    }
}

const SEARCH_SYNTAX: &str =
    "search: words, gen:NAME concept:NAME table:NAME status:NAME valid:yes|no";

/// The lines under the keys: how to page and close, and the search syntax.
fn foot_lines(page: usize, pages: usize, keys: &PageKeys, w: usize) -> Vec<String> {
    let first = if pages > 1 {
        format!(
            "page {page}/{pages} · {} next page · {} previous · any other key closes",
            keys.0, keys.1
        )
    } else {
        "any key closes this help".to_string()
    };
    let mut lines = wrap(&first, w);
    lines.extend(wrap(SEARCH_SYNTAX, w));
    lines
}

/// The help overlay: every key, grouped by pane under headings, in columns that never run
/// together; the keys the view answers now stand out, the others are muted. When the window
/// cannot show them all, the overlay takes the window and shows them page by page.
pub fn render_help(f: &mut Frame, area: Rect, app: &App) {
    let keys = PageKeys::of(&app.keymap);
    let layout = HelpLayout::new(&help_groups(app), &keys, area);
    let n = layout.pages();
    app.chrome.help_pages.set(n);
    let page = app.chrome.help_page.min(n.saturating_sub(1));
    let r = layout.rect;
    f.render_widget(Clear, r);
    let title = if n > 1 {
        format!(" Keys (page {}/{n}) ", page + 1)
    } else {
        " Keys ".to_string()
    };
    let block = shared(app).block(title, true);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let right = inner.x + inner.width;
    let mut x = inner.x;
    for col in layout.pages.get(page).into_iter().flatten() {
        let cw = (col.width() as u16).min(right.saturating_sub(x));
        let a = Rect {
            x,
            y: inner.y,
            width: cw,
            height: (layout.height as u16).min(inner.height),
        };
        f.render_widget(Paragraph::new(col.lines(cw as usize, &app.theme)), a);
        x = x.saturating_add(cw + GAP as u16);
        if x >= right {
            break;
        }
    }
    let foot: Vec<Line> = foot_lines(page + 1, n, &keys, inner.width as usize)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, app.theme.ui(Ui::Muted))))
        .collect();
    let foot_h = (foot.len() as u16).min(inner.height);
    let fa = Rect {
        x: inner.x,
        y: inner.y + inner.height - foot_h,
        width: inner.width,
        height: foot_h,
    };
    f.render_widget(Paragraph::new(foot), fa);
}
