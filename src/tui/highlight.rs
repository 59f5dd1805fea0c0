//! SQL highlighting in the editor from sqlparser's own tokenizer (so colours match what lode
//! parses), with colours from the theme. Tokens carry 1-based character columns; the editor
//! wants byte offsets per line.

use ratatui::style::Style;
use sqlparser::dialect::SQLiteDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
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

/// The theme role of a token, if it is coloured.
pub fn role(token: &Token) -> Option<&'static str> {
    match token {
        Token::Word(w)
            if w.quote_style.is_none() && FUNCTIONS.contains(&w.value.to_lowercase().as_str()) =>
        {
            Some("function")
        }
        Token::Word(w) if w.quote_style.is_none() && w.keyword != Keyword::NoKeyword => {
            Some("keyword")
        }
        Token::Word(_) => None,
        Token::Number(..) => Some("number"),
        Token::SingleQuotedString(_)
        | Token::NationalStringLiteral(_)
        | Token::HexStringLiteral(_) => Some("string"),
        Token::Whitespace(
            Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
        ) => Some("comment"),
        _ => None,
    }
}

fn byte_offset(line: &str, col: u64) -> usize {
    line.char_indices()
        .nth(col.saturating_sub(1) as usize)
        .map_or(line.len(), |(i, _)| i)
}

/// Re-highlights the whole editor (cheap for editor-sized SQL).
pub fn apply(editor: &mut TextArea<'static>, theme: &Theme) {
    editor.clear_custom_highlight();
    let lines: Vec<String> = editor.lines().to_vec();
    let text = lines.join("\n");
    let Ok(tokens) = Tokenizer::new(&SQLiteDialect {}, &text).tokenize_with_location() else {
        return;
    };
    for t in tokens {
        let Some(role) = role(&t.token) else { continue };
        let style: Style = theme.sql(role);
        let (s, e) = (t.span.start, t.span.end);
        if s.line == 0 || e.line == 0 {
            continue;
        }
        // Multi-line tokens (block comments) are coloured line by line.
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
                editor.custom_highlight(((row, start), (row, end)), style, 1);
            }
        }
    }
}

/// Spans of a SQL text for read-only views.
pub fn spans(sql: &str, theme: &Theme) -> Vec<ratatui::text::Span<'static>> {
    let Ok(tokens) = Tokenizer::new(&SQLiteDialect {}, sql).tokenize() else {
        return vec![ratatui::text::Span::raw(sql.to_string())];
    };
    tokens
        .into_iter()
        .map(|t| {
            let style = role(&t).map_or(Style::default(), |r| theme.sql(r));
            ratatui::text::Span::styled(t.to_string(), style)
        })
        .collect()
}
