//! SQL highlighting in the editor from sqlparser's own tokenizer in the target's dialect (so
//! colours match what lode parses: on PostgreSQL `$$a b$$` and `E'x'` are strings), with
//! colours from the theme. Tokens carry 1-based character columns; the editor wants byte
//! offsets per line.

use lode_core::sql::SqlDialect;
use ratatui::style::Style;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Whitespace};
use tui_textarea::TextArea;

use super::theme::Theme;

const FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "round",
    "abs",
    "coalesce",
    "ifnull",
    "nullif",
    "strftime",
    "date",
    "datetime",
    "julianday",
    "substr",
    "instr",
    "length",
    "upper",
    "lower",
    "trim",
    "replace",
    "cast",
    "iif",
    "rank",
    "row_number",
    "dense_rank",
    "lag",
    "lead",
    "total",
    "group_concat",
];

/// Functions PostgreSQL has and SQLite does not, coloured on a PostgreSQL target.
const POSTGRES_FUNCTIONS: &[&str] = &[
    "array_agg",
    "date_part",
    "date_trunc",
    "greatest",
    "least",
    "now",
    "split_part",
    "string_agg",
    "to_char",
    "to_date",
];

/// PostgreSQL's keywords that SQLite lacks and queries use, coloured on a PostgreSQL target.
/// Sorted, for binary search.
const POSTGRES_KEYWORDS: &[&str] = &[
    "ANY",
    "ARRAY",
    "BOTH",
    "FALSE",
    "FETCH",
    "ILIKE",
    "INTERVAL",
    "LATERAL",
    "LEADING",
    "ONLY",
    "SIMILAR",
    "SOME",
    "SYMMETRIC",
    "TRAILING",
    "TRUE",
];

/// SQLite's keywords (sqlparser knows many more, from other dialects: `region`, `year`,
/// `name` are column names here, not keywords). Sorted, for binary search.
const SQLITE_KEYWORDS: &[&str] = &[
    "ABORT",
    "ACTION",
    "ADD",
    "AFTER",
    "ALL",
    "ALTER",
    "ALWAYS",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEFORE",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATABASE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "EACH",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUDE",
    "EXCLUSIVE",
    "EXISTS",
    "EXPLAIN",
    "FAIL",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GENERATED",
    "GLOB",
    "GROUP",
    "GROUPS",
    "HAVING",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "IN",
    "INDEX",
    "INDEXED",
    "INITIALLY",
    "INNER",
    "INSERT",
    "INSTEAD",
    "INTERSECT",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MATCH",
    "MATERIALIZED",
    "NATURAL",
    "NO",
    "NOT",
    "NOTHING",
    "NOTNULL",
    "NULL",
    "NULLS",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OTHERS",
    "OUTER",
    "OVER",
    "PARTITION",
    "PLAN",
    "PRAGMA",
    "PRECEDING",
    "PRIMARY",
    "QUERY",
    "RAISE",
    "RANGE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESTRICT",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "ROW",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "TABLE",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TIES",
    "TO",
    "TRANSACTION",
    "TRIGGER",
    "UNBOUNDED",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VIEW",
    "VIRTUAL",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHOUT",
];

/// The theme role of a token, if it is coloured; words are keywords and functions of
/// `dialect`.
pub fn role(token: &Token, dialect: SqlDialect) -> Option<&'static str> {
    let pg = dialect == SqlDialect::Postgres;
    match token {
        Token::Word(w) if w.quote_style.is_none() => {
            let lower = w.value.to_lowercase();
            let upper = w.value.to_uppercase();
            if FUNCTIONS.contains(&lower.as_str())
                || (pg && POSTGRES_FUNCTIONS.contains(&lower.as_str()))
            {
                Some("function")
            } else if SQLITE_KEYWORDS.binary_search(&upper.as_str()).is_ok()
                || (pg && POSTGRES_KEYWORDS.binary_search(&upper.as_str()).is_ok())
            {
                Some("keyword")
            } else {
                None
            }
        }
        Token::Word(_) => None,
        Token::Number(..) => Some("number"),
        Token::SingleQuotedString(_)
        | Token::NationalStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedString(_) => Some("string"),
        Token::Whitespace(
            Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
        ) => Some("comment"),
        // Punctuation, names and parameters are not operators; nor is `*`, which is as often
        // "every column" as a product.
        Token::Whitespace(_)
        | Token::EOF
        | Token::Comma
        | Token::Period
        | Token::SemiColon
        | Token::LParen
        | Token::RParen
        | Token::LBracket
        | Token::RBracket
        | Token::LBrace
        | Token::RBrace
        | Token::Colon
        | Token::Backslash
        | Token::Char(_)
        | Token::Placeholder(_)
        | Token::Mul => None,
        _ => Some("operator"),
    }
}

fn byte_offset(line: &str, col: u64) -> usize {
    line.char_indices()
        .nth(col.saturating_sub(1) as usize)
        .map_or(line.len(), |(i, _)| i)
}

/// The coloured stretches of `lines` (as one SQL text): (row, byte start, byte end, style),
/// in token order; a multi-line token (a block comment) gives one stretch per line.
fn marks(lines: &[&str], theme: &Theme, dialect: SqlDialect) -> Vec<(usize, usize, usize, Style)> {
    let text = lines.join("\n");
    let Ok(tokens) = dialect.tokenize_with_location(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tokens {
        let Some(role) = role(&t.token, dialect) else {
            continue;
        };
        let style: Style = theme.sql(role);
        let (s, e) = (t.span.start, t.span.end);
        if s.line == 0 || e.line == 0 {
            continue;
        }
        for line_no in s.line..=e.line {
            let row = (line_no - 1) as usize;
            let Some(line) = lines.get(row) else { break };
            let start = if line_no == s.line {
                byte_offset(line, s.column)
            } else {
                0
            };
            let end = if line_no == e.line {
                byte_offset(line, e.column)
            } else {
                line.len()
            };
            if start < end {
                out.push((row, start, end, style));
            }
        }
    }
    out
}

/// Re-highlights the whole editor (cheap for editor-sized SQL), its text read in `dialect`.
pub fn apply(editor: &mut TextArea<'static>, theme: &Theme, dialect: SqlDialect) {
    editor.clear_custom_highlight();
    let lines: Vec<String> = editor.lines().to_vec();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    for (row, start, end, style) in marks(&refs, theme, dialect) {
        editor.custom_highlight(((row, start), (row, end)), style, 1);
    }
}

/// Lays a one-line query out over lines for the editor: each clause of a query (at the top
/// level or in a subquery, not inside a window or function call) starts a line, indented by
/// its nesting. Only whitespace between tokens changes; SQL already on several lines, or
/// that does not tokenize (in `dialect`), is returned as it is.
pub fn layout(sql: &str, dialect: SqlDialect) -> String {
    let sql = sql.trim();
    if sql.contains('\n') {
        return sql.to_string();
    }
    let Ok(tokens) = dialect.tokenize_with_location(sql) else {
        return sql.to_string();
    };
    let chars: Vec<char> = sql.chars().collect();
    let text_of = |t: &sqlparser::tokenizer::TokenWithSpan| -> String {
        let (s, e) = (t.span.start.column as usize, t.span.end.column as usize);
        if s == 0 || e < s || e - 1 > chars.len() {
            return t.token.to_string();
        }
        chars[s - 1..e - 1].iter().collect()
    };
    let kw = |t: &Token| match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    // One entry per open parenthesis: does it hold a query?
    let mut parens: Vec<bool> = Vec::new();
    let mut out = String::with_capacity(sql.len() + 32);
    let mut prev_kw: Option<Keyword> = None;
    let mut after_open = false;
    for (i, t) in tokens.iter().enumerate() {
        if matches!(t.token, Token::Whitespace(_)) {
            // Kept unless a line break replaces it.
            let next_breaks = tokens
                .get(i + 1)
                .is_some_and(|n| breaks_before(kw(&n.token), prev_kw));
            let in_query = parens.last().copied().unwrap_or(true);
            if !(next_breaks && in_query) {
                out.push_str(&text_of(t));
            }
            continue;
        }
        let k = kw(&t.token);
        if after_open {
            if let Some(last) = parens.last_mut() {
                *last = matches!(k, Some(Keyword::SELECT | Keyword::WITH));
            }
            after_open = false;
        }
        let in_query = parens.last().copied().unwrap_or(true);
        if in_query && breaks_before(k, prev_kw) && !out.is_empty() {
            out.push('\n');
            out.push_str(&"  ".repeat(parens.len()));
        }
        match t.token {
            Token::LParen => {
                parens.push(false);
                after_open = true;
            }
            Token::RParen => {
                parens.pop();
            }
            _ => {}
        }
        out.push_str(&text_of(t));
        prev_kw = k;
    }
    out
}

/// Clause keywords that start a line (a JOIN's qualifiers stay with it).
fn breaks_before(k: Option<Keyword>, prev: Option<Keyword>) -> bool {
    use Keyword::*;
    let Some(k) = k else { return false };
    match k {
        FROM | WHERE | GROUP | HAVING | ORDER | LIMIT | UNION | INTERSECT | EXCEPT | WINDOW => true,
        SELECT => matches!(prev, Some(UNION | INTERSECT | EXCEPT | ALL)),
        JOIN | LEFT | RIGHT | INNER | CROSS | FULL | NATURAL => !matches!(
            prev,
            Some(LEFT | RIGHT | INNER | CROSS | FULL | NATURAL | OUTER)
        ),
        OUTER => false,
        _ => false,
    }
}

/// The text as styled lines (the same colours as the editor), for a read-only view.
pub fn styled_lines(
    text: &str,
    theme: &Theme,
    dialect: SqlDialect,
) -> Vec<ratatui::text::Line<'static>> {
    use ratatui::text::{Line, Span};
    let lines: Vec<&str> = text.split('\n').collect();
    let mut by_row: Vec<Vec<(usize, usize, Style)>> = vec![Vec::new(); lines.len()];
    for (row, start, end, style) in marks(&lines, theme, dialect) {
        by_row[row].push((start, end, style));
    }
    lines
        .iter()
        .zip(by_row)
        .map(|(line, m)| {
            let mut spans = Vec::new();
            let mut at = 0;
            for (s, e, style) in m {
                if s < at || e > line.len() {
                    continue;
                }
                if s > at {
                    spans.push(Span::raw(line[at..s].to_string()));
                }
                spans.push(Span::styled(line[s..e].to_string(), style));
                at = e;
            }
            if at < line.len() {
                spans.push(Span::raw(line[at..].to_string()));
            }
            Line::from(spans)
        })
        .collect()
}

/// Lines cut to `width` columns, the rest of each going on continuation lines indented by
/// two spaces, so a reader sees every character (the read-only SQL view wraps this way, and
/// knows how many lines it needs).
pub fn hard_wrap(
    lines: Vec<ratatui::text::Line<'static>>,
    width: usize,
) -> Vec<ratatui::text::Line<'static>> {
    use ratatui::text::{Line, Span};
    use unicode_width::UnicodeWidthChar;
    let width = width.max(8);
    let mut out = Vec::new();
    for line in lines {
        if line.width() <= width {
            out.push(line);
            continue;
        }
        let mut cur: Vec<Span<'static>> = Vec::new();
        let mut used = 0;
        for span in line.spans {
            let mut piece = String::new();
            for ch in span.content.chars() {
                let w = ch.width().unwrap_or(0);
                if used + w > width {
                    if !piece.is_empty() {
                        cur.push(Span::styled(std::mem::take(&mut piece), span.style));
                    }
                    out.push(Line::from(std::mem::take(&mut cur)));
                    cur.push(Span::raw("  "));
                    used = 2;
                }
                piece.push(ch);
                used += w;
            }
            if !piece.is_empty() {
                cur.push(Span::styled(piece, span.style));
            }
        }
        if !cur.is_empty() {
            out.push(Line::from(cur));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_sqlite_keywords() {
        assert!(SQLITE_KEYWORDS.windows(2).all(|w| w[0] < w[1]), "sorted");
        let roles: Vec<Option<&str>> = SqlDialect::Sqlite
            .tokenize("SELECT region, year FROM t")
            .unwrap()
            .iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .map(|t| role(t, SqlDialect::Sqlite))
            .collect();
        assert_eq!(
            roles,
            [Some("keyword"), None, None, None, Some("keyword"), None]
        );
    }

    /// (text, role) of each coloured token of `sql` read in `dialect`.
    fn coloured(sql: &str, dialect: SqlDialect) -> Vec<(String, &'static str)> {
        let theme = Theme::load("ansi16", false).unwrap();
        marks(&[sql], &theme, dialect)
            .into_iter()
            .map(|(_, s, e, style)| {
                let role = ["keyword", "function", "string", "number", "operator"]
                    .into_iter()
                    .find(|r| theme.sql(r) == style)
                    .unwrap_or("?");
                (sql[s..e].to_string(), role)
            })
            .collect()
    }

    #[test]
    fn postgresql_strings_casts_and_keywords_colour_on_a_postgresql_target() {
        let sql = "SELECT $$a b$$::text, E'it''s', x FROM t WHERE y ILIKE 'a%'";
        let pg = coloured(sql, SqlDialect::Postgres);
        let has = |text: &str, role: &str| pg.iter().any(|(t, r)| t == text && *r == role);
        assert!(has("$$a b$$", "string"), "one string token: {pg:?}");
        assert!(has("::", "operator"), "{pg:?}");
        assert!(has("E'it''s'", "string"), "{pg:?}");
        assert!(has("ILIKE", "keyword"), "{pg:?}");
        assert!(!pg.iter().any(|(t, _)| t == "x" || t == "text"), "{pg:?}");
        // SQLite's tokens: `$$a` and `$$` are parameters, `E` a name; ILIKE is not SQLite's.
        let lite = coloured(sql, SqlDialect::Sqlite);
        assert!(!lite.iter().any(|(t, _)| t.contains("$$")), "{lite:?}");
        assert!(lite.iter().any(|(t, r)| t == "'it''s'" && *r == "string"));
        assert!(!lite.iter().any(|(t, _)| t == "ILIKE"), "{lite:?}");
        // A dollar-quoted string over lines colours every line of it.
        let theme = Theme::load("ansi16", false).unwrap();
        let m = marks(&["SELECT $$a", "b$$ FROM t"], &theme, SqlDialect::Postgres);
        let string = theme.sql("string");
        assert!(
            m.contains(&(0, 7, 10, string)) && m.contains(&(1, 0, 3, string)),
            "{m:?}"
        );
    }

    #[test]
    fn layout_reads_the_targets_dialect() {
        // On PostgreSQL a dollar-quoted string holding `FROM` is one token, not a clause.
        let sql = "SELECT $$ FROM x $$ AS s FROM t";
        assert_eq!(
            layout(sql, SqlDialect::Postgres),
            "SELECT $$ FROM x $$ AS s\nFROM t"
        );
    }

    #[test]
    fn layout_breaks_clauses_and_keeps_tokens() {
        let sql = "SELECT s.name, COUNT(*) FROM stores AS s LEFT JOIN orders o ON o.store_id = s.id \
                   WHERE s.city <> 'O''Hare  FROM' AND o.total > (SELECT AVG(total) FROM orders) \
                   GROUP BY s.name ORDER BY 2 DESC LIMIT 3";
        let out = layout(sql, SqlDialect::Sqlite);
        assert_eq!(
            out,
            "SELECT s.name, COUNT(*)\nFROM stores AS s\nLEFT JOIN orders o ON o.store_id = s.id\n\
             WHERE s.city <> 'O''Hare  FROM' AND o.total > (SELECT AVG(total)\n  FROM orders)\n\
             GROUP BY s.name\nORDER BY 2 DESC\nLIMIT 3"
        );
        // A window's ORDER BY and a UNION's second SELECT.
        let w = "SELECT RANK() OVER (ORDER BY x DESC) FROM t UNION SELECT 1";
        assert_eq!(
            layout(w, SqlDialect::Sqlite),
            "SELECT RANK() OVER (ORDER BY x DESC)\nFROM t\nUNION\nSELECT 1"
        );
        // Several lines already: left alone.
        assert_eq!(
            layout("SELECT 1\nFROM t", SqlDialect::Sqlite),
            "SELECT 1\nFROM t"
        );
    }
}
