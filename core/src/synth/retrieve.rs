//! Retrieval of the nearest known pairs for a new question, and the re-binding of the values
//! it names. The offline models answer through it: the memory model over the pairs it was
//! tuned on, the untuned rules backend over the gold pairs and its schema templates.
//!
//! Questions are compared with BM25 over normalized words (lower case, singular, no stop
//! words, with bigrams). Words that name a table or a column weigh more, and a value the
//! database holds (`France` in `singer.country`) or a number becomes a slot word
//! (`@singer.country`, `@number`), so "singers from France" and "singers from Germany" read
//! alike. The best candidates are then re-ranked by how well their SQL accounts for the
//! question: the columns it names, the values it names once substituted for the literals the
//! candidate's own question named, and whether the result executes and returns rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlparser::tokenizer::Token;

use super::names::{Names, singular};
use crate::project::GlossaryEntry;
use crate::project::inputs::normalize_question;
use crate::sql::schema::Schema;
use crate::sql::{Database, Value};

/// Words that say nothing about the query: articles, request phrasing, pronouns.
const STOP: &[&str] = &[
    "a", "an", "the", "of", "is", "are", "was", "were", "be", "been", "do", "does", "did", "what",
    "which", "who", "whose", "show", "list", "find", "give", "return", "display", "me", "please",
    "tell", "can", "could", "would", "you", "i", "i'd", "we", "our", "us", "their", "its", "it",
    "they", "them", "that", "this", "these", "those", "there", "have", "has", "had", "like",
    "know", "need", "want", "out", "to", "in", "on", "at", "by", "for", "with", "from", "as",
    "all", "any", "some", "also", "s", "d", "ll", "let", "see", "about", "get", "just",
];

/// Number words the questions spell out (from two: "one" is rarely a count).
const NUMBER_WORDS: &[(&str, i64)] = &[
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("fifteen", 15),
    ("twenty", 20),
];

/// What a question asks for, as cues an SQL query shows too: (cue, the question's words, the
/// SQL's words). A candidate whose SQL shows the cues the question says (and no others) fits.
const CUES: &[(&str, &[&str], &[&str])] = &[
    (
        "not",
        &[
            "not",
            "no",
            "never",
            "without",
            "except",
            "n't",
            "nor",
            "neither",
            "other than",
        ],
        &["not", "except", "!=", "<>"],
    ),
    (
        "count",
        &["how many", "number of", "count", "how much"],
        &["count"],
    ),
    ("group", &["each", "per", "for each"], &["group"]),
    (
        "order",
        &[
            "order",
            "sort",
            "sorted",
            "ordered",
            "descending",
            "ascending",
            "alphabetical",
            "rank",
        ],
        &["order"],
    ),
    (
        "extreme",
        &[
            "most", "least", "highest", "lowest", "largest", "smallest", "biggest", "youngest",
            "oldest", "maximum", "minimum", "max", "min", "top", "greatest", "fewest", "best",
            "worst", "latest", "earliest", "newest", "longest", "shortest",
        ],
        &["limit", "max", "min"],
    ),
    ("average", &["average", "mean", "avg"], &["avg"]),
    ("sum", &["total", "sum", "combined"], &["sum"]),
    (
        "distinct",
        &["distinct", "different", "unique"],
        &["distinct"],
    ),
    ("both", &["both"], &["intersect"]),
    (
        "compare",
        &[
            "more than",
            "less than",
            "greater",
            "larger than",
            "smaller than",
            "above",
            "below",
            "over",
            "under",
            "at least",
            "at most",
            "older than",
            "younger than",
            "higher than",
            "lower than",
            "after",
            "before",
            "between",
            "exceed",
        ],
        &[">", "<", ">=", "<=", "between"],
    ),
];

/// Words of a direction: the question's, and the SQL's they go with.
const DESCENDING: &[&str] = &[
    "most",
    "highest",
    "largest",
    "biggest",
    "oldest",
    "maximum",
    "max",
    "greatest",
    "descending",
    "best",
    "latest",
    "newest",
    "longest",
    "top",
    "decreasing",
];
const ASCENDING: &[&str] = &[
    "least",
    "lowest",
    "smallest",
    "youngest",
    "minimum",
    "min",
    "fewest",
    "ascending",
    "worst",
    "earliest",
    "shortest",
    "increasing",
];

/// How many candidates of the first ranking are re-ranked.
const TOP_K: usize = 30;
/// The longest value, in words, looked for in a question.
const MAX_VALUE_WORDS: usize = 6;
/// Distinct text values read per column for the value lexicon.
const VALUES_PER_COLUMN: usize = 2000;

/// A value a question names.
#[derive(Debug, Clone, PartialEq)]
enum Named {
    /// A text value held by these columns (`table.column`, lower case).
    Text { value: String, columns: Vec<String> },
    /// A number ("40", "three").
    Number(String),
    /// Text in quotes, held by no known column: `'Hey'`.
    Quoted(String),
}

/// A question read for retrieval.
#[derive(Debug, Default)]
struct Reading {
    /// Terms with their weights per occurrence.
    terms: Vec<(String, f64)>,
    named: Vec<Named>,
    /// Columns (`table.column`) and tables the question's words name.
    columns: HashSet<String>,
}

/// A literal of a known pair's SQL that its question named: a slot to re-bind.
#[derive(Debug, Clone)]
struct Slot {
    /// Index of the token in the pair's SQL tokens.
    token: usize,
    /// The literal without `%` wildcards.
    text: String,
    number: bool,
    /// The column it is compared with, lower case, bare.
    column: Option<String>,
    /// A `LIMIT` count.
    limit: bool,
}

struct Doc {
    sql: String,
    tokens: Option<Vec<Token>>,
    terms: HashMap<String, f64>,
    len: f64,
    slots: Vec<Slot>,
    /// Non-key columns (`table.column`) and tables the SQL uses.
    columns: HashSet<String>,
    cues: HashSet<&'static str>,
    /// 1 descending (or MAX), -1 ascending (or MIN), 0 neither or both.
    direction: i8,
    /// 1 when its comparisons are all `>`/`>=`, -1 all `<`/`<=`, else 0.
    polarity: i8,
}

/// A value in the lexicon: its folded words, its text, the columns (`table.column`) holding it.
type LexiconEntry = (Vec<String>, String, Vec<String>);

/// The index over known pairs, built once per backend.
pub struct Retriever {
    db: Arc<Database>,
    docs: Vec<Doc>,
    exact: HashMap<String, usize>,
    df: HashMap<String, f64>,
    avg_len: f64,
    /// Folded value words → the values and their columns, longest first per first word.
    lexicon: HashMap<String, Vec<LexiconEntry>>,
    /// Folded words that name tables or columns.
    schema_words: HashSet<String>,
    /// Phrases (folded words) naming a column (`table.column`) or a table (`table`).
    phrases: Vec<(Vec<String>, String)>,
    /// Bare column name (lower case) → its `table.column` names.
    column_tables: HashMap<String, Vec<String>>,
    /// `table.column` names that are keys (never counted as asked for).
    keys: HashSet<String>,
    tables: HashSet<String>,
}

/// Lower-case words of a text, apostrophes kept inside words.
fn raw_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '.' || c == '-'))
        .map(|w| {
            w.trim_matches(|c: char| c == '\'' || c == '.' || c == '-')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .flat_map(|w| {
            // `stadium's` → `stadium`; `i'd` stays one (a stop word).
            match w.strip_suffix("'s") {
                Some(stem) => vec![stem.to_string()],
                None if w.contains('-') && !w.chars().all(|c| c.is_ascii_digit() || c == '-') => {
                    w.split('-').map(str::to_string).collect()
                }
                None => vec![w],
            }
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A word's singular, stripped of `-ing`, `-ed` and a final `e`, so "hire", "hired" and
/// "hiring" read alike.
fn fold(word: &str) -> String {
    if word.len() <= 3 || word.chars().any(|c| c.is_ascii_digit()) {
        return word.to_string();
    }
    let one = singular(word);
    let stem = if one.len() > 5 && one.ends_with("ing") {
        &one[..one.len() - 3]
    } else if one.len() > 4 && one.ends_with("ed") && !one.ends_with("eed") {
        &one[..one.len() - 2]
    } else {
        &one
    };
    stem.strip_suffix('e')
        .filter(|s| s.len() > 2)
        .unwrap_or(stem)
        .to_string()
}

fn is_number(word: &str) -> Option<String> {
    if !word.is_empty()
        && word.chars().all(|c| c.is_ascii_digit() || c == '.')
        && word.chars().next().is_some_and(|c| c.is_ascii_digit())
        && word.parse::<f64>().is_ok()
    {
        return Some(word.to_string());
    }
    NUMBER_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, n)| n.to_string())
}

use crate::sql::dialect::{print_tokens as detokenize, rewrite_tokens};

fn tokenize(sql: &str) -> Option<Vec<Token>> {
    rewrite_tokens(sql)
}

/// Quoted text in a question: `'Hey'`, `"Hey"`, `‘Hey’`.
fn quoted(question: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [('\'', '\''), ('"', '"'), ('‘', '’'), ('“', '”')] {
        let mut rest = question;
        while let Some(i) = rest.find(open) {
            // An apostrophe inside a word (`singer's`) opens nothing.
            let before = rest[..i].chars().next_back();
            if open == '\'' && before.is_some_and(char::is_alphanumeric) {
                rest = &rest[i + open.len_utf8()..];
                continue;
            }
            let after = &rest[i + open.len_utf8()..];
            let Some(j) = after.find(close) else { break };
            let inner = after[..j].trim();
            if !inner.is_empty() && inner.len() <= 60 {
                out.push(inner.to_string());
            }
            rest = &after[j + close.len_utf8()..];
        }
    }
    out
}

impl Retriever {
    /// Indexes `pairs` (question, SQL) over the database's schema and values.
    pub fn new(
        db: Arc<Database>,
        schema: &Schema,
        glossary: &[GlossaryEntry],
        pairs: Vec<(String, String)>,
    ) -> Retriever {
        let names = Names::new(schema, glossary);
        let mut r = Retriever {
            db,
            docs: Vec::new(),
            exact: HashMap::new(),
            df: HashMap::new(),
            avg_len: 1.0,
            lexicon: HashMap::new(),
            schema_words: HashSet::new(),
            phrases: Vec::new(),
            column_tables: HashMap::new(),
            keys: HashSet::new(),
            tables: HashSet::new(),
        };
        for t in &schema.tables {
            let tl = t.name.to_lowercase();
            r.tables.insert(tl.clone());
            let mut phrases = vec![(names.one(&t.name), tl.clone())];
            for c in &t.columns {
                let full = format!("{tl}.{}", c.name.to_lowercase());
                r.column_tables
                    .entry(c.name.to_lowercase())
                    .or_default()
                    .push(full.clone());
                let fk = t
                    .foreign_keys
                    .iter()
                    .any(|f| f.columns.iter().any(|x| x.eq_ignore_ascii_case(&c.name)));
                let id_like = c.name.to_lowercase().ends_with("id");
                if c.primary_key || fk || id_like {
                    r.keys.insert(full.clone());
                }
                phrases.push((names.column(&t.name, &c.name), full.clone()));
                phrases.push((super::names::human(&c.name), full));
            }
            for (words, target) in phrases {
                let folded: Vec<String> = raw_words(&words)
                    .iter()
                    .filter(|w| !STOP.contains(&w.as_str()))
                    .map(|w| fold(w))
                    .collect();
                if folded.is_empty() {
                    continue;
                }
                r.schema_words.extend(folded.iter().cloned());
                r.phrases.push((folded, target));
            }
        }
        r.build_lexicon(schema);
        for (question, sql) in pairs {
            let reading = r.read(&question);
            let mut terms: HashMap<String, f64> = HashMap::new();
            for (t, w) in &reading.terms {
                *terms.entry(t.clone()).or_default() += w;
            }
            for t in terms.keys() {
                *r.df.entry(t.clone()).or_default() += 1.0;
            }
            let tokens = tokenize(&sql);
            let slots = tokens
                .as_ref()
                .map(|t| r.slots(&question, &reading, t))
                .unwrap_or_default();
            let columns = tokens
                .as_ref()
                .map(|t| r.sql_columns(t))
                .unwrap_or_default();
            let (cues, direction) = tokens.as_deref().map(sql_cues).unwrap_or_default();
            let polarity = tokens.as_deref().map(sql_polarity).unwrap_or_default();
            r.exact
                .entry(normalize_question(&question))
                .or_insert(r.docs.len());
            r.docs.push(Doc {
                sql,
                tokens,
                len: reading.terms.len().max(1) as f64,
                terms,
                slots,
                columns,
                cues,
                direction,
                polarity,
            });
        }
        r.avg_len =
            (r.docs.iter().map(|d| d.len).sum::<f64>() / r.docs.len().max(1) as f64).max(1.0);
        r
    }

    fn build_lexicon(&mut self, schema: &Schema) {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        for t in &schema.tables {
            for c in &t.columns {
                // Text values only: SQLite's typeof() per value (a column's declared type
                // does not bind its values); PostgreSQL's text types per column.
                let text_only = if schema.dialect == "postgresql" {
                    "pg_typeof({c})::text IN ('text', 'character varying', 'character', 'citext')"
                } else {
                    "typeof({c}) = 'text'"
                };
                let sql = format!(
                    "SELECT DISTINCT {c} FROM {t} WHERE {filter} LIMIT {n}",
                    filter = text_only.replace("{c}", &q(&c.name)),
                    c = q(&c.name),
                    t = t.sql_name(q),
                    n = VALUES_PER_COLUMN
                );
                // A column the database cannot read offers no values.
                let Ok(result) = self.db.query(&sql) else {
                    continue;
                };
                let full = format!("{}.{}", t.name.to_lowercase(), c.name.to_lowercase());
                for row in result.rows {
                    let Some(Value::Text(v)) = row.into_iter().next() else {
                        continue;
                    };
                    let v = v.trim().to_string();
                    if v.len() < 2 || v.len() > 60 || !v.chars().any(char::is_alphabetic) {
                        continue;
                    }
                    let words: Vec<String> = raw_words(&v).iter().map(|w| fold(w)).collect();
                    if words.is_empty() || words.len() > MAX_VALUE_WORDS {
                        continue;
                    }
                    // A one-word value that is a stop word or names the schema ("singer") would
                    // turn ordinary wording into a slot.
                    if words.len() == 1
                        && (STOP.contains(&words[0].as_str())
                            || self.schema_words.contains(&words[0])
                            || words[0].len() < 2)
                    {
                        continue;
                    }
                    let entries = self.lexicon.entry(words[0].clone()).or_default();
                    match entries.iter_mut().find(|(w, _, _)| *w == words) {
                        Some((_, _, cols)) => {
                            if !cols.contains(&full) {
                                cols.push(full.clone());
                            }
                        }
                        None => entries.push((words, v, vec![full.clone()])),
                    }
                }
            }
        }
        for entries in self.lexicon.values_mut() {
            entries.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        }
    }

    /// The terms, named values and named columns of a question.
    fn read(&self, question: &str) -> Reading {
        let mut reading = Reading::default();
        let quotes = quoted(question);
        let raw = raw_words(question);
        let folded: Vec<String> = raw.iter().map(|w| fold(w)).collect();
        let mut kept: Vec<String> = Vec::new();
        let mut i = 0;
        while i < folded.len() {
            if let Some(n) = is_number(&raw[i]) {
                reading.named.push(Named::Number(n));
                kept.push("@number".into());
                i += 1;
                continue;
            }
            let matched = self.lexicon.get(&folded[i]).and_then(|entries| {
                entries.iter().find(|(words, _, _)| {
                    folded.len() >= i + words.len() && folded[i..i + words.len()] == words[..]
                })
            });
            if let Some((words, value, columns)) = matched {
                reading.named.push(Named::Text {
                    value: value.clone(),
                    columns: columns.clone(),
                });
                for c in columns {
                    kept.push(format!("@{c}"));
                }
                i += words.len();
                continue;
            }
            if !STOP.contains(&raw[i].as_str()) {
                kept.push(folded[i].clone());
            }
            i += 1;
        }
        for q in quotes {
            let known = reading.named.iter().any(|n| match n {
                Named::Text { value, .. } => value.eq_ignore_ascii_case(&q),
                Named::Number(n) => *n == q,
                Named::Quoted(_) => false,
            });
            if !known {
                reading.named.push(Named::Quoted(q));
                kept.push("@quoted".into());
            }
        }
        // Columns and tables the words name, as whole phrases.
        for (phrase, target) in &self.phrases {
            if folded.windows(phrase.len()).any(|w| w == &phrase[..]) {
                reading.columns.insert(target.clone());
            }
        }
        for (j, t) in kept.iter().enumerate() {
            let weight = if t.starts_with('@') || self.schema_words.contains(t) {
                1.5
            } else {
                1.0
            };
            reading.terms.push((t.clone(), weight));
            if let Some(next) = kept.get(j + 1) {
                reading.terms.push((format!("{t} {next}"), 0.5));
            }
        }
        reading
    }

    /// The column a literal token is compared with: `col = 'x'`, `t.col IN ('x', …)`,
    /// `col LIKE '%x%'`, `col BETWEEN 1 AND 5`.
    fn column_before(tokens: &[Token], i: usize) -> Option<String> {
        let mut j = i;
        while j > 0 {
            j -= 1;
            match &tokens[j] {
                Token::Whitespace(_) | Token::Comma | Token::LParen => continue,
                Token::SingleQuotedString(_) | Token::Number(..) => continue,
                Token::Eq
                | Token::DoubleEq
                | Token::Neq
                | Token::Lt
                | Token::Gt
                | Token::LtEq
                | Token::GtEq => continue,
                Token::Word(w)
                    if ["in", "like", "not", "between", "and"]
                        .contains(&w.value.to_lowercase().as_str())
                        && w.quote_style.is_none() =>
                {
                    continue;
                }
                Token::Word(w) if w.quote_style != Some('"') || j + 1 < i => {
                    return Some(w.value.to_lowercase());
                }
                _ => continue,
            }
        }
        None
    }

    /// Whether a token is a literal, with its text: strings, numbers, and double-quoted
    /// words that name no table or column (SQLite reads those as strings).
    fn literal(&self, token: &Token) -> Option<String> {
        match token {
            Token::SingleQuotedString(s) => Some(s.clone()),
            Token::Number(n, _) => Some(n.clone()),
            Token::Word(w)
                if w.quote_style == Some('"')
                    && !self.column_tables.contains_key(&w.value.to_lowercase())
                    && !self.tables.contains(&w.value.to_lowercase()) =>
            {
                Some(w.value.clone())
            }
            _ => None,
        }
    }

    /// The literals of a pair's SQL that its question names.
    fn slots(&self, question: &str, reading: &Reading, tokens: &[Token]) -> Vec<Slot> {
        let words: Vec<String> = raw_words(question);
        let numbers: Vec<String> = words.iter().filter_map(|w| is_number(w)).collect();
        let lower = question.to_lowercase();
        let mut out = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let Some(lit) = self.literal(t) else { continue };
            let text = lit.trim_matches('%').to_string();
            if text.is_empty() {
                continue;
            }
            let number = is_number(&text).is_some() && !text.contains(char::is_alphabetic);
            let named = if number {
                let n = text.parse::<f64>().ok();
                numbers
                    .iter()
                    .any(|x| x.parse::<f64>().ok() == n && n.is_some())
            } else {
                let tl = text.to_lowercase();
                reading.named.iter().any(|n| match n {
                    Named::Text { value, .. } | Named::Quoted(value) => {
                        value.eq_ignore_ascii_case(&text)
                    }
                    Named::Number(_) => false,
                }) || contains_words(&lower, &tl)
            };
            if named {
                let limit = tokens[..i]
                    .iter()
                    .rev()
                    .find(|t| !matches!(t, Token::Whitespace(_)))
                    .is_some_and(
                        |t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("limit")),
                    );
                out.push(Slot {
                    token: i,
                    text,
                    number,
                    column: Self::column_before(tokens, i),
                    limit,
                });
            }
        }
        out
    }

    /// The non-key columns and the tables a query's tokens name.
    fn sql_columns(&self, tokens: &[Token]) -> HashSet<String> {
        let used_tables: HashSet<String> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Word(w) if self.tables.contains(&w.value.to_lowercase()) => {
                    Some(w.value.to_lowercase())
                }
                _ => None,
            })
            .collect();
        let mut out: HashSet<String> = used_tables.clone();
        for t in tokens {
            let Token::Word(w) = t else { continue };
            let Some(fulls) = self.column_tables.get(&w.value.to_lowercase()) else {
                continue;
            };
            for f in fulls {
                let table = f.split('.').next().unwrap_or("");
                if used_tables.contains(table) && !self.keys.contains(f) {
                    out.insert(f.clone());
                }
            }
        }
        out
    }

    fn bm25(&self, reading: &Reading) -> Vec<f64> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let n = self.docs.len() as f64;
        let mut query: HashMap<&str, f64> = HashMap::new();
        for (t, w) in &reading.terms {
            let e = query.entry(t.as_str()).or_default();
            *e = e.max(*w);
        }
        self.docs
            .iter()
            .map(|d| {
                query
                    .iter()
                    .filter_map(|(t, w)| {
                        let tf = *d.terms.get(*t)?;
                        let df = self.df.get(*t).copied().unwrap_or(0.0);
                        let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                        Some(
                            w * idf * tf * (K1 + 1.0)
                                / (tf + K1 * (1.0 - B + B * d.len / self.avg_len)),
                        )
                    })
                    .sum()
            })
            .collect()
    }

    /// The candidate's SQL with the question's values substituted for its slots, and how
    /// well that accounts for the values: (SQL, values used, values left over, slots the
    /// question does not fill).
    fn bind(&self, doc: &Doc, named: &[Named]) -> (String, usize, usize, usize) {
        let Some(tokens) = &doc.tokens else {
            return (doc.sql.clone(), 0, named.len(), 0);
        };
        let mut toks = tokens.clone();
        let mut used = vec![false; named.len()];
        let mut unfilled = 0;
        // Slots that keep their value first, so a repeated value is not moved elsewhere.
        let mut pending = Vec::new();
        for slot in &doc.slots {
            let same = named.iter().enumerate().position(|(k, n)| {
                !used[k]
                    && match n {
                        Named::Number(x) => {
                            slot.number && x.parse::<f64>().ok() == slot.text.parse::<f64>().ok()
                        }
                        Named::Text { value, .. } | Named::Quoted(value) => {
                            !slot.number && value.eq_ignore_ascii_case(&slot.text)
                        }
                    }
            });
            match same {
                Some(k) => used[k] = true,
                None => pending.push(slot),
            }
        }
        for slot in pending {
            let fits = |n: &Named| match n {
                Named::Number(x) => {
                    slot.number
                        && year_like(x) == year_like(&slot.text)
                        && (!slot.limit
                            || x.parse::<f64>().is_ok_and(|n| (1.0..=100.0).contains(&n)))
                }
                Named::Text { columns, .. } => {
                    !slot.number
                        && slot.column.as_ref().is_some_and(|c| {
                            columns
                                .iter()
                                .any(|full| full.rsplit('.').next() == Some(c.as_str()))
                        })
                }
                Named::Quoted(_) => !slot.number,
            };
            let Some(k) = (0..named.len()).find(|&k| !used[k] && fits(&named[k])) else {
                unfilled += 1;
                continue;
            };
            used[k] = true;
            let new = match &named[k] {
                Named::Number(x) | Named::Text { value: x, .. } | Named::Quoted(x) => x.clone(),
            };
            toks[slot.token] = rebind(&toks[slot.token], &slot.text, &new);
        }
        let n_used = used.iter().filter(|u| **u).count();
        (detokenize(&toks), n_used, named.len() - n_used, unfilled)
    }

    /// Runs the query; true when it returns rows that are not all NULL.
    fn executes(&self, sql: &str) -> bool {
        self.db.query(sql).is_ok_and(|r| {
            !r.rows.is_empty() && r.rows.iter().any(|row| row.iter().any(|v| !v.is_null()))
        })
    }

    /// SQL for a question: a known question's own SQL, else the best re-ranked candidate
    /// with the question's values bound. `None` when nothing is indexed.
    pub fn answer(&self, question: &str) -> Option<String> {
        if let Some(&i) = self.exact.get(&normalize_question(question)) {
            return Some(self.docs[i].sql.clone());
        }
        let reading = self.read(question);
        let scores = self.bm25(&reading);
        let mut order: Vec<usize> = (0..self.docs.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        order.truncate(TOP_K);
        let top = order.first().map(|&i| scores[i])?.max(1e-9);
        let asked: HashSet<&String> = reading
            .columns
            .iter()
            .filter(|c| !self.keys.contains(*c))
            .collect();
        let (q_cues, q_dir) = question_cues(question);
        let q_polarity = question_polarity(question);
        let mut ranked: Vec<(f64, String)> = order
            .iter()
            .map(|&i| {
                let doc = &self.docs[i];
                let (mut sql, used, left, unfilled) = self.bind(doc, &reading.named);
                // The question says the opposite direction or comparison of the pair: the
                // pair's SQL turned around, as its words would be.
                let mut turned = 0.0;
                let mut doc_direction = doc.direction;
                if q_dir != 0
                    && doc.direction == -q_dir
                    && let Some(t) = flip_direction(&sql)
                {
                    sql = t;
                    doc_direction = q_dir;
                    turned += 1.0;
                }
                if q_polarity != 0
                    && doc.polarity == -q_polarity
                    && let Some(t) = flip_comparison(&sql)
                {
                    sql = t;
                    turned += 1.0;
                }
                let hit = asked.iter().filter(|c| doc.columns.contains(**c)).count() as f64;
                let cover = hit / asked.len().max(1) as f64;
                let extra = doc.columns.iter().filter(|c| !asked.contains(c)).count() as f64
                    / doc.columns.len().max(1) as f64;
                let values = used as f64 - 0.5 * left as f64 - 0.7 * unfilled as f64;
                let cues: f64 = q_cues
                    .union(&doc.cues)
                    .map(|c| {
                        let w = if *c == "not" { 2.0 } else { 1.0 };
                        if q_cues.contains(c) && doc.cues.contains(c) {
                            w
                        } else {
                            -w
                        }
                    })
                    .sum();
                let direction = match (q_dir, doc_direction) {
                    (0, _) | (_, 0) => 0.0,
                    (a, b) if a == b => 1.0,
                    _ => -2.0,
                };
                let score = scores[i] / top + 0.6 * cover - 0.3 * extra
                    + 0.25 * values
                    + 0.15 * cues
                    + 0.2 * direction
                    - 0.1 * turned;
                (score, sql)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let first = ranked.first().map(|(_, s)| s.clone());
        ranked
            .into_iter()
            .map(|(_, s)| s)
            .find(|s| self.executes(s))
            .or(first)
    }
}

/// A four-digit number read as a year.
fn year_like(n: &str) -> bool {
    n.len() == 4
        && n.chars().all(|c| c.is_ascii_digit())
        && (n.starts_with('1') || n.starts_with('2'))
}

/// The cues and the direction a question's words say.
fn question_cues(question: &str) -> (HashSet<&'static str>, i8) {
    let words = raw_words(question);
    let text = format!(" {} ", words.join(" "));
    let mut cues = HashSet::new();
    for (cue, says, _) in CUES {
        if says.iter().any(|w| text.contains(&format!(" {w} "))) {
            cues.insert(*cue);
        }
    }
    if words.iter().any(|w| w.ends_with("n't")) {
        cues.insert("not");
    }
    let desc = words.iter().any(|w| DESCENDING.contains(&w.as_str()));
    let asc = words.iter().any(|w| ASCENDING.contains(&w.as_str()));
    (cues, desc as i8 - asc as i8)
}

/// Words of a comparison, by the side they point to.
const GREATER: &[&str] = &[
    "more",
    "greater",
    "above",
    "over",
    "after",
    "older",
    "larger",
    "higher",
    "exceed",
    "exceeding",
    "bigger",
    "longer",
    "later",
];
const LESS: &[&str] = &[
    "less", "fewer", "below", "under", "before", "younger", "smaller", "lower", "shorter",
    "earlier",
];

/// 1 when a question's comparison words all point up ("more than", "above"), -1 down.
fn question_polarity(question: &str) -> i8 {
    let words = raw_words(question);
    let up = words.iter().any(|w| GREATER.contains(&w.as_str()));
    let down = words.iter().any(|w| LESS.contains(&w.as_str()));
    up as i8 - down as i8
}

/// 1 when an SQL query's comparisons are all `>`/`>=`, -1 all `<`/`<=`, else 0.
fn sql_polarity(tokens: &[Token]) -> i8 {
    let up = tokens.iter().any(|t| matches!(t, Token::Gt | Token::GtEq));
    let down = tokens.iter().any(|t| matches!(t, Token::Lt | Token::LtEq));
    up as i8 - down as i8
}

/// The query with its order turned around: `DESC` ↔ `ASC` (an `ORDER BY` with neither gets
/// `DESC`), `MAX` ↔ `MIN`. `None` when it has no order to turn.
fn flip_direction(sql: &str) -> Option<String> {
    let mut tokens = tokenize(sql)?;
    let mut changed = false;
    let mut explicit = false;
    let is = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    for token in &mut tokens {
        let new = match &*token {
            t if is(t, "desc") => Some("ASC"),
            t if is(t, "asc") => Some("DESC"),
            t if is(t, "max") => Some("MIN"),
            t if is(t, "min") => Some("MAX"),
            _ => None,
        };
        if let Some(w) = new {
            explicit |= w == "ASC" || w == "DESC";
            *token = Token::make_word(w, None);
            changed = true;
        }
    }
    let orders = tokens.iter().filter(|t| is(t, "order")).count();
    if !explicit && orders == 1 {
        // `ORDER BY x` ascending by default: `DESC` goes after its expression, before `LIMIT`.
        let order = tokens.iter().position(|t| is(t, "order"))?;
        let end = tokens[order..]
            .iter()
            .position(|t| is(t, "limit") || matches!(t, Token::RParen | Token::SemiColon))
            .map_or(tokens.len(), |p| order + p);
        let mut at = end;
        while at > order && matches!(tokens[at - 1], Token::Whitespace(_)) {
            at -= 1;
        }
        tokens.splice(
            at..at,
            [
                Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                Token::make_word("DESC", None),
            ],
        );
        changed = true;
    }
    changed.then(|| detokenize(&tokens))
}

/// The query with its comparisons turned around: `>` ↔ `<`, `>=` ↔ `<=`.
fn flip_comparison(sql: &str) -> Option<String> {
    let tokens = tokenize(sql)?;
    let mut changed = false;
    let flipped: Vec<Token> = tokens
        .into_iter()
        .map(|t| match t {
            Token::Gt => {
                changed = true;
                Token::Lt
            }
            Token::Lt => {
                changed = true;
                Token::Gt
            }
            Token::GtEq => {
                changed = true;
                Token::LtEq
            }
            Token::LtEq => {
                changed = true;
                Token::GtEq
            }
            other => other,
        })
        .collect();
    changed.then(|| detokenize(&flipped))
}

/// The cues and the direction an SQL query shows.
fn sql_cues(tokens: &[Token]) -> (HashSet<&'static str>, i8) {
    let words: Vec<String> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_lowercase()),
            Token::Neq => Some("!=".into()),
            Token::Gt => Some(">".into()),
            Token::Lt => Some("<".into()),
            Token::GtEq => Some(">=".into()),
            Token::LtEq => Some("<=".into()),
            _ => None,
        })
        .collect();
    let mut cues = HashSet::new();
    for (cue, _, shows) in CUES {
        if shows.iter().any(|w| words.iter().any(|x| x == w)) {
            cues.insert(*cue);
        }
    }
    let has = |w: &str| words.iter().any(|x| x == w);
    let desc = has("desc") || (has("max") && !has("order"));
    let asc = (has("order") && !has("desc")) || (has("min") && !has("order"));
    (cues, desc as i8 - asc as i8)
}

/// Whether `needle` occurs in `hay` as whole words (both lower case).
fn contains_words(hay: &str, needle: &str) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let s = from + i;
        let e = s + needle.len();
        let before = hay[..s]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after = hay[e..].chars().next().is_none_or(|c| !c.is_alphanumeric());
        if before && after {
            return true;
        }
        from = s + needle.len().max(1);
    }
    false
}

/// The literal token with `old` (its text without wildcards) replaced by `new`.
fn rebind(token: &Token, old: &str, new: &str) -> Token {
    match token {
        Token::SingleQuotedString(s) => Token::SingleQuotedString(s.replacen(old, new, 1)),
        Token::Number(_, long) => Token::Number(new.to_string(), *long),
        Token::Word(w) => Token::make_word(&w.value.replacen(old, new, 1), w.quote_style),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExecLimits;

    fn singers() -> (tempfile::TempDir, Arc<Database>, Schema) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE singer (Singer_ID INTEGER PRIMARY KEY, Name TEXT, Country TEXT,
                                  Age INTEGER, Song_Name TEXT);
             INSERT INTO singer VALUES
               (1, 'Joe Sharp', 'Netherlands', 52, 'You'),
               (2, 'Timbaland', 'United States', 32, 'Dangerous'),
               (3, 'Justin Brown', 'France', 29, 'Hey Oh'),
               (4, 'Rose White', 'France', 41, 'Sun'),
               (5, 'John Nizinik', 'France', 43, 'Gentleman'),
               (6, 'Tribal King', 'Germany', 25, 'Love');",
        )
        .unwrap();
        drop(conn);
        let db = Arc::new(Database::open(&path, ExecLimits::default()).unwrap());
        let schema = crate::sql::schema::introspect(&db).unwrap();
        (dir, db, schema)
    }

    fn retriever(pairs: &[(&str, &str)]) -> (tempfile::TempDir, Retriever) {
        let (dir, db, schema) = singers();
        let pairs = pairs
            .iter()
            .map(|(q, s)| (q.to_string(), s.to_string()))
            .collect();
        (dir, Retriever::new(db, &schema, &[], pairs))
    }

    #[test]
    fn words_fold_and_numbers_read() {
        assert_eq!(
            raw_words("The singer's songs, top-3!"),
            ["the", "singer", "songs", "top", "3"]
        );
        assert_eq!(is_number("three"), Some("3".into()));
        assert_eq!(is_number("2014"), Some("2014".into()));
        assert_eq!(is_number("one"), None);
        assert_eq!(quoted("songs with 'Hey' in the singer's title"), ["Hey"]);
    }

    #[test]
    fn a_value_the_question_names_replaces_the_one_the_pair_named() {
        let (_d, r) = retriever(&[
            (
                "How many singers are from France?",
                "SELECT count(*) FROM singer WHERE country = 'France'",
            ),
            (
                "What is the average age of singers?",
                "SELECT avg(age) FROM singer",
            ),
            (
                "List the names of singers older than 40.",
                "SELECT name FROM singer WHERE age > 40",
            ),
        ]);
        assert_eq!(
            r.answer("how many singers come from Germany").as_deref(),
            Some("SELECT count(*) FROM singer WHERE country = 'Germany'")
        );
        assert_eq!(
            r.answer("names of the singers older than 30?").as_deref(),
            Some("SELECT name FROM singer WHERE age > 30")
        );
        // Plural and singular read alike; the known question gets its own SQL.
        assert_eq!(
            r.answer("average singer age").as_deref(),
            Some("SELECT avg(age) FROM singer")
        );
        assert_eq!(
            r.answer("What is the average age of singers").as_deref(),
            Some("SELECT avg(age) FROM singer")
        );
    }

    #[test]
    fn the_candidate_whose_slots_fit_the_named_values_wins() {
        let (_d, r) = retriever(&[
            ("How many singers are there?", "SELECT count(*) FROM singer"),
            (
                "Names of singers from France",
                "SELECT name FROM singer WHERE country = 'France'",
            ),
            (
                "What songs do singers have whose title contains 'Sun'?",
                "SELECT song_name FROM singer WHERE song_name LIKE '%Sun%'",
            ),
        ]);
        // "from United States": a multi-word value of the same column.
        assert_eq!(
            r.answer("Which singers are from United States? Give names.")
                .as_deref(),
            Some("SELECT name FROM singer WHERE country = 'United States'")
        );
        assert_eq!(
            r.answer("songs of singers with 'Hey' in the title")
                .as_deref(),
            Some("SELECT song_name FROM singer WHERE song_name LIKE '%Hey%'")
        );
    }

    #[test]
    fn an_opposite_direction_or_comparison_turns_the_pair_around() {
        let (_d, r) = retriever(&[
            (
                "What is the name of the oldest singer?",
                "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
            ),
            (
                "Names of singers older than 40",
                "SELECT name FROM singer WHERE age > 40",
            ),
            ("How many singers are there?", "SELECT count(*) FROM singer"),
        ]);
        assert_eq!(
            r.answer("the name of the youngest singer").as_deref(),
            Some("SELECT name FROM singer ORDER BY age ASC LIMIT 1")
        );
        assert_eq!(
            r.answer("names of singers younger than 30").as_deref(),
            Some("SELECT name FROM singer WHERE age < 30")
        );
        assert_eq!(
            flip_direction("SELECT name FROM singer ORDER BY age LIMIT 1").as_deref(),
            Some("SELECT name FROM singer ORDER BY age DESC LIMIT 1")
        );
        assert_eq!(flip_direction("SELECT name FROM singer"), None);
    }
}
