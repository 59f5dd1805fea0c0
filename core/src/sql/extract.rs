//! Getting the SQL out of a model's reply. Models wrap queries in code fences, put prose
//! before and after them, answer in JSON, or leave chat tokens behind; the original stored the
//! raw reply (often with leading blank lines) and executed that.

/// The SQL in a model reply, or `None` when there is none. Tries, in order: a JSON object
/// with a `sql`/`query`/`output` string; a ```sql fenced block (else the first fenced block
/// that looks like SQL); the text from the first `SELECT` or `WITH` keyword on, cut at a blank
/// line followed by prose or at a `;` followed by prose (a second statement is kept, for the
/// executor to refuse). A reasoning model's
/// thinking (`<think>…</think>`, `<reasoning>…</reasoning>`) is left out, and an
/// `<answer>…</answer>` block is where the answer is; a reply cut off inside its thinking
/// has no SQL.
pub fn extract_sql(reply: &str) -> Option<String> {
    let reply = strip_chat_tokens(reply);
    let reply = final_answer(&reply)?.trim();
    if reply.is_empty() {
        return None;
    }
    // A place that cleans up to nothing (a fence holding only `;` or a backtick) is no SQL:
    // look further.
    let found = |sql: Option<String>| sql.filter(|s| !s.is_empty());
    found(from_json(reply))
        .or_else(|| found(from_fences(reply)))
        .or_else(|| found(from_keyword(reply)))
}

/// The part of a reply after its reasoning, inside its last `<answer>` block if it has one;
/// `None` when the reasoning never ends.
fn final_answer(reply: &str) -> Option<&str> {
    let mut text = reply;
    for (open, close) in [
        ("<think>", "</think>"),
        ("<thinking>", "</thinking>"),
        ("<reasoning>", "</reasoning>"),
    ] {
        match text.rfind(close) {
            Some(i) => text = &text[i + close.len()..],
            None if text.contains(open) => return None,
            None => {}
        }
    }
    if let Some(i) = text.rfind("<answer>") {
        let inner = &text[i + "<answer>".len()..];
        text = inner.split("</answer>").next().unwrap_or(inner);
    }
    Some(text)
}

fn strip_chat_tokens(reply: &str) -> String {
    let mut s = reply.to_string();
    for token in [
        "<|eot_id|>",
        "<|end_of_text|>",
        "<|im_end|>",
        "<|endoftext|>",
        "</s>",
        "<|assistant|>",
        "<|start_header_id|>assistant<|end_header_id|>",
    ] {
        s = s.replace(token, "\n");
    }
    s
}

fn looks_like_sql(text: &str) -> bool {
    let t = text.trim_start().to_ascii_lowercase();
    t.starts_with("select") || t.starts_with("with") || t.starts_with("(")
}

fn from_json(reply: &str) -> Option<String> {
    let start = reply.find('{')?;
    let end = reply.rfind('}')?;
    let value: serde_json::Value = serde_json::from_str(reply.get(start..=end)?).ok()?;
    for key in ["sql", "query", "sql_query", "output", "answer"] {
        if let Some(s) = value.get(key).and_then(|v| v.as_str())
            && looks_like_sql(s)
        {
            return Some(clean(s));
        }
    }
    None
}

fn from_fences(reply: &str) -> Option<String> {
    let mut blocks: Vec<(String, String)> = Vec::new(); // (info string, body)
    let mut rest = reply;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let info_end = after.find('\n').unwrap_or(after.len());
        let info = after[..info_end].trim().to_ascii_lowercase();
        let body_start = (info_end + 1).min(after.len());
        let body = &after[body_start..];
        let (body, next) = match body.find("```") {
            Some(close) => (&body[..close], &body[close + 3..]),
            None => (body, ""),
        };
        blocks.push((info, body.to_string()));
        rest = next;
        if next.is_empty() {
            break;
        }
    }
    let pick = blocks
        .iter()
        .find(|(info, body)| (info == "sql" || info == "sqlite") && !body.trim().is_empty())
        .or_else(|| blocks.iter().find(|(_, body)| looks_like_sql(body)))?;
    Some(clean(&pick.1))
}

fn from_keyword(reply: &str) -> Option<String> {
    let lower = reply.to_ascii_lowercase();
    let start = keyword_start(&lower, "select")
        .into_iter()
        .chain(keyword_start(&lower, "with"))
        .min()?;
    let text = &reply[start..];
    // Stop at a blank line followed by something that is not SQL (an explanation).
    let mut end = text.len();
    let mut offset = 0;
    for para in text.split("\n\n") {
        if offset > 0 && !continues_sql(para) {
            end = offset;
            break;
        }
        offset += para.len() + 2;
    }
    Some(clean(&text[..end.min(text.len())]))
}

/// Position of `word` as a whole word at a line start or after whitespace.
fn keyword_start(lower: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = lower[from..].find(word) {
        let at = from + i;
        let before_ok = at == 0
            || lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_whitespace() || c == '`' || c == ':' || c == '"');
        let after_ok = lower[at + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || c == '(' || c == '*');
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn continues_sql(para: &str) -> bool {
    let first = para
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    [
        "FROM",
        "WHERE",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "JOIN",
        "LEFT",
        "INNER",
        "UNION",
        "INTERSECT",
        "EXCEPT",
        "AND",
        "OR",
        "SELECT",
        "ON",
        ")",
        "--",
    ]
    .iter()
    .any(|k| first.starts_with(k))
}

/// Trims, drops a trailing prose line, and cuts after the first statement's semicolon.
/// The SQL with fences' backticks trimmed and cut at its first `;` when what follows is
/// prose. When another statement follows (`SELECT …; DROP TABLE t`), the whole text is kept:
/// the executor refuses more than one statement, so the reply counts as wrong, as the
/// reference evaluators (which execute what they are given) count it, and an RL policy
/// gains nothing by adding a second statement.
fn clean(sql: &str) -> String {
    let mut s = sql.trim().trim_matches('`').trim().to_string();
    if let Some(i) = first_semicolon(&s)
        && !starts_a_statement(&s[i + 1..])
    {
        s.truncate(i);
    }
    s.trim().trim_end_matches(';').trim().to_string()
}

/// Whether `rest` (after a `;`) begins with more SQL: another statement, or a clause.
fn starts_a_statement(rest: &str) -> bool {
    let word: String = rest
        .trim_start_matches(|c: char| c == ';' || c.is_whitespace())
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        word.as_str(),
        "SELECT"
            | "WITH"
            | "VALUES"
            | "INSERT"
            | "REPLACE"
            | "UPDATE"
            | "DELETE"
            | "DROP"
            | "CREATE"
            | "ALTER"
            | "ATTACH"
            | "DETACH"
            | "PRAGMA"
            | "VACUUM"
            | "REINDEX"
            | "ANALYZE"
            | "BEGIN"
            | "COMMIT"
            | "ROLLBACK"
            | "END"
            | "SAVEPOINT"
            | "RELEASE"
            | "EXPLAIN"
            // A clause cut off by a stray `;` is SQL too, not prose.
            | "FROM"
            | "WHERE"
            | "GROUP"
            | "HAVING"
            | "ORDER"
            | "LIMIT"
            | "UNION"
            | "INTERSECT"
            | "EXCEPT"
            | "JOIN"
    )
}

/// Index of the first `;` outside quotes.
fn first_semicolon(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, ';') => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_is_left_out_and_the_answer_block_is_the_answer() {
        let reply = "<think>Maybe SELECT name FROM t? No, the question wants ids.\n```sql\nSELECT name FROM t\n```</think>\n```sql\nSELECT id FROM t\n```";
        assert_eq!(extract_sql(reply).as_deref(), Some("SELECT id FROM t"));
        let reply = "<reasoning>count them</reasoning><answer>SELECT count(*) FROM t</answer>";
        assert_eq!(
            extract_sql(reply).as_deref(),
            Some("SELECT count(*) FROM t")
        );
        // Cut off while thinking: the draft in the thinking is not the answer.
        assert_eq!(extract_sql("<think>SELECT name FROM t is a start"), None);
        assert_eq!(extract_sql("<think>SELECT 1</think>"), None);
    }

    #[test]
    fn replies_in_every_usual_shape() {
        let want = "SELECT name FROM stores WHERE city = 'Paris'";
        let replies = [
            "SELECT name FROM stores WHERE city = 'Paris'",
            "\n\nSELECT name FROM stores WHERE city = 'Paris';",
            "```sql\nSELECT name FROM stores WHERE city = 'Paris'\n```",
            "Here is the query:\n```sql\nSELECT name FROM stores WHERE city = 'Paris';\n```\nIt lists the stores.",
            "```\nSELECT name FROM stores WHERE city = 'Paris'\n```",
            "{\"sql\": \"SELECT name FROM stores WHERE city = 'Paris'\"}",
            "Sure! SELECT name FROM stores WHERE city = 'Paris'\n\nThis query returns the names.",
            "SELECT name FROM stores WHERE city = 'Paris'<|eot_id|>",
        ];
        for r in replies {
            assert_eq!(extract_sql(r).as_deref(), Some(want), "{r:?}");
        }
    }

    #[test]
    fn multi_paragraph_sql_is_kept_and_semicolons_in_strings_are_not_ends() {
        let r = "WITH t AS (SELECT 1 AS x)\n\nSELECT x FROM t\n\nORDER BY x";
        assert_eq!(
            extract_sql(r).as_deref(),
            Some("WITH t AS (SELECT 1 AS x)\n\nSELECT x FROM t\n\nORDER BY x")
        );
        // A second statement is kept, for the executor to refuse; prose after `;` is not.
        assert_eq!(
            extract_sql("SELECT ';' AS s; DROP TABLE t").as_deref(),
            Some("SELECT ';' AS s; DROP TABLE t")
        );
        assert_eq!(
            extract_sql("SELECT a FROM t; this lists every a").as_deref(),
            Some("SELECT a FROM t")
        );
        assert_eq!(
            extract_sql("SELECT a FROM t;").as_deref(),
            Some("SELECT a FROM t")
        );
    }

    #[test]
    fn no_sql_is_none() {
        assert_eq!(extract_sql(""), None);
        assert_eq!(extract_sql("I cannot answer that."), None);
        assert_eq!(extract_sql("<|eot_id|>"), None);
        // Found by the property tests: a fence that cleans up to nothing.
        assert_eq!(extract_sql("```sql\n`"), None);
        assert_eq!(
            extract_sql("```sql\n;\n```\nSELECT 1").as_deref(),
            Some("SELECT 1")
        );
    }
}
