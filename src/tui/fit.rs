//! Fitting text into a width of terminal cells: what does not fit is elided with `…`, and a
//! number is never cut (a cut that would fall inside one moves before it), so `1/11` can
//! never show as `1/1` and `12.5` never as `12`. Views lay numbers out at their full width
//! and elide the labels beside them.

use ratatui::text::Span;

/// How many terminal cells `s` takes.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    width(c.encode_utf8(&mut buf))
}

/// Which characters of `chars` belong to a number: digits, and a `.` or `,` between two
/// digits (`12.5`, `1,024`).
fn in_number(chars: &[char]) -> Vec<bool> {
    (0..chars.len())
        .map(|i| {
            let digit = |j: usize| chars.get(j).is_some_and(char::is_ascii_digit);
            digit(i) || (matches!(chars[i], '.' | ',') && i > 0 && digit(i - 1) && digit(i + 1))
        })
        .collect()
}

/// `s` on one line (runs of whitespace become one space), in at most `w` cells: when it does
/// not fit, as much as fits followed by `…`, cut before a number rather than inside it.
pub fn elide(s: &str, w: usize) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if width(&one) <= w {
        return one;
    }
    if w == 0 {
        return String::new();
    }
    let chars: Vec<char> = one.chars().collect();
    let mut keep = 0;
    let mut used = 0;
    for c in &chars {
        let cw = char_width(*c);
        if used + cw > w - 1 {
            break;
        }
        used += cw;
        keep += 1;
    }
    let number = in_number(&chars);
    if keep > 0 && keep < chars.len() && number[keep - 1] && number[keep] {
        while keep > 0 && number[keep - 1] {
            keep -= 1;
        }
    }
    let mut out: String = chars[..keep].iter().collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// The end of `s` in at most `w` cells: `…` and as much of the end as fits when it does not
/// (a line being typed, whose end is where the cursor is).
pub fn tail(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    let mut out: Vec<char> = Vec::new();
    let mut used = 1;
    for c in s.chars().rev() {
        let cw = char_width(c);
        if used + cw > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    out.push('…');
    out.iter().rev().collect()
}

/// `s` elided to `w` cells, then padded with spaces to exactly `w` (left-aligned).
pub fn pad(s: &str, w: usize) -> String {
    let e = elide(s, w);
    let n = w.saturating_sub(width(&e));
    format!("{e}{}", " ".repeat(n))
}

/// `s` elided to `w` cells, then padded with spaces to exactly `w` (right-aligned).
pub fn pad_left(s: &str, w: usize) -> String {
    let e = elide(s, w);
    let n = w.saturating_sub(width(&e));
    format!("{}{e}", " ".repeat(n))
}

/// As many of `items` as fit in `w` cells, joined by `sep`, and `…` when some are left out;
/// an item is never cut (when not even the first fits, it is elided).
pub fn join_fitting(items: &[String], sep: &str, w: usize) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let joined = if i == 0 {
            item.clone()
        } else {
            format!("{out}{sep}{item}")
        };
        let last = i + 1 == items.len();
        // Room for the `…` that says more are left out, unless this is the last item.
        let room = if last { w } else { w.saturating_sub(1) };
        if width(&joined) <= room {
            out = joined;
            continue;
        }
        if i == 0 {
            return elide(item, w);
        }
        let more = format!("{out}{}…", sep.trim_end());
        return if width(&more) <= w {
            more
        } else {
            elide(&out, w)
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_or_elides_never_inside_a_number() {
        assert_eq!(elide("aggregate", 20), "aggregate");
        assert_eq!(elide("aggregate", 6), "aggre…");
        assert_eq!(elide("a  b\nc", 10), "a b c");
        assert_eq!(elide("abc", 0), "");
        // The cut would fall inside 11: it moves before the number.
        assert_eq!(elide("aggregate 1/11", 13), "aggregate 1/…");
        assert_eq!(elide("accepted 12 pairs", 11), "accepted…");
        assert_eq!(elide("took 12.5 s", 8), "took…");
        assert_eq!(elide("1,024 rows", 4), "…");
        // A cut after a whole number keeps it.
        assert_eq!(elide("run 12 of the day", 8), "run 12…");
        assert_eq!(width("→ é"), 3);
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad_left("ab", 4), "  ab");
        assert_eq!(pad("abcdef", 4), "abc…");
        assert_eq!(tail("select 1", 20), "select 1");
        assert_eq!(tail("select 1", 4), "…t 1");
    }

    #[test]
    fn joins_whole_items() {
        let items: Vec<String> = ["1, 2", "13", "Canal Street"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(join_fitting(&items, ", ", 40), "1, 2, 13, Canal Street");
        assert_eq!(join_fitting(&items, ", ", 12), "1, 2, 13,…");
        assert_eq!(join_fitting(&items, ", ", 3), "1,…");
    }
}
