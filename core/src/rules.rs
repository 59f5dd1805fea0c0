//! The offline `rules` backend: answers the generators' tasks with no model, deterministically
//! from a seed. It lifts templates from the gold SQL (literals aligned with the words of the
//! question become slots), re-instantiates them with real values sampled from the database,
//! mutates directions, extremes and comparisons together with their wording ("highest" and
//! "lowest"), swaps in glossary terms, writes schema-driven queries for concepts the gold set
//! lacks, and words those clause by clause. Every query it returns has executed and returned
//! rows. Its wording is plain, and says what the SQL does.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value as Json, json};
use sqlparser::tokenizer::Token;

use crate::diag::did_you_mean;
use crate::llm::{Backend, BoxFuture, LlmError, LlmRequest, LlmResponse, OutputSchema, Task};
use crate::project::inputs::normalize_question;
use crate::project::{GlossaryEntry, GoldPair, Project};
use crate::sql::analyze::Hardness;
use crate::sql::schema::{Schema, Table};
use crate::sql::{Database, Value};
use crate::synth::names::{Names, human, singular};
use crate::synth::sqlgen::{Candidate, Synth, worth_keeping};
use crate::synth::{Rng, hash_str};

/// The generators that get synthesized pairs near their gold pair, each its own share.
const NEAR_STRIPES: &[&str] = &[
    "pattern",
    "variation",
    "decomposer",
    "comparative",
    "edge_case",
    "granular",
];
/// The share of the synthesized pairs SQL-first gives out (with those near no gold pair).
const SQL_FIRST_SLOT: usize = 6;

/// The synthesized candidates and which of them were found to return rows.
struct SynthPool {
    candidates: Vec<Candidate>,
    checked: Mutex<Vec<Option<bool>>>,
}

/// A question/SQL pair the rules made, with how.
#[derive(Debug, Clone, PartialEq)]
pub struct RulePair {
    pub question: String,
    pub sql: String,
    /// `value`, `number`, `direction`, `extreme`, `comparison`, `glossary`, `schema:<name>`,
    /// `part`, `paraphrase`.
    pub how: String,
}

/// The deterministic generator behind the backend.
pub struct RulesEngine {
    db: Arc<Database>,
    schema: Schema,
    gold: Vec<GoldPair>,
    glossary: Vec<GlossaryEntry>,
    seed: u64,
    /// Questions the engine wrote, with their SQL, so a later "write SQL for this question"
    /// is answered exactly.
    memory: Mutex<HashMap<String, String>>,
    /// Distinct values per (table, column), sampled once.
    values: Mutex<HashMap<(String, String), Vec<Value>>>,
    /// The synthesized candidates, written once.
    synth_pool: std::sync::OnceLock<SynthPool>,
    /// The gold pair each pool candidate is nearest to.
    pool_owners: std::sync::OnceLock<Vec<(Option<usize>, usize)>>,
    /// Serializes the SQL-first walk over the pool, so concurrent calls agree on offsets.
    sql_first_lock: Mutex<()>,
    /// The memory model's base knowledge: the project's gold pairs (its `gold` are the
    /// trained pairs).
    base: Vec<GoldPair>,
    /// The agreement check's words and house rules, built once.
    agreement: std::sync::OnceLock<(Names, crate::synth::agree::Conventions)>,
    /// The index `answer` retrieves from, built on the first question.
    retriever: std::sync::OnceLock<crate::synth::retrieve::Retriever>,
}

const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// Word pairs that flip with a direction or an extreme, as (word, opposite).
const DIRECTION_WORDS: &[(&str, &str)] = &[
    ("best-selling", "worst-selling"),
    ("most expensive", "cheapest"),
    ("highest", "lowest"),
    ("biggest", "smallest"),
    ("largest", "smallest"),
    ("most", "least"),
    ("top", "bottom"),
    ("best", "worst"),
    ("latest", "earliest"),
    // Ages before dates: "from the oldest to the youngest" is about people.
    ("oldest", "youngest"),
    ("newest", "oldest"),
    ("maximum", "minimum"),
];

const COMPARISON_WORDS: &[(&str, &str, &str, &str)] = &[
    // (sql op, words, opposite op, opposite words)
    (">", "more than", "<", "less than"),
    (">", "above", "<", "below"),
    (">", "over", "<", "under"),
    (">", "after", "<", "before"),
    (">", "greater than", "<", "less than"),
    (">=", "at least", "<=", "at most"),
];

fn days_in_month(year: i32, month: usize) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

use crate::sql::dialect::{print_tokens as detokenize, rewrite_tokens};

fn tokenize(sql: &str) -> Option<Vec<Token>> {
    rewrite_tokens(sql)
}

/// Finds `needle` in `hay` as whole words, case-insensitively; returns the byte range.
fn find_words(hay: &str, needle: &str) -> Option<(usize, usize)> {
    let lower = hay.to_lowercase();
    let n = needle.to_lowercase();
    if n.is_empty() || lower.len() != hay.len() {
        return None;
    }
    let mut from = 0;
    while let Some(i) = lower[from..].find(&n) {
        let s = from + i;
        let e = s + n.len();
        let before = lower[..s]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after = lower[e..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if before && after {
            return Some((s, e));
        }
        from = s + 1;
    }
    None
}

/// Replaces the words at `range` keeping the case of their first letter.
fn replace_keep_case(text: &str, range: (usize, usize), with: &str) -> String {
    let old = &text[range.0..range.1];
    let capital = old.chars().next().is_some_and(char::is_uppercase);
    let mut new = with.to_string();
    if capital {
        let mut c = new.chars();
        if let Some(f) = c.next() {
            new = f.to_uppercase().collect::<String>() + c.as_str();
        }
    }
    format!("{}{}{}", &text[..range.0], new, &text[range.1..])
}

fn sql_text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

impl RulesEngine {
    pub fn new(project: &Project, seed: u64) -> RulesEngine {
        RulesEngine {
            db: Arc::clone(&project.db),
            schema: project.schema.clone(),
            gold: project.gold.clone(),
            glossary: project.glossary.clone(),
            seed,
            memory: Mutex::new(HashMap::new()),
            values: Mutex::new(HashMap::new()),
            synth_pool: std::sync::OnceLock::new(),
            pool_owners: std::sync::OnceLock::new(),
            sql_first_lock: Mutex::new(()),
            base: Vec::new(),
            agreement: std::sync::OnceLock::new(),
            retriever: std::sync::OnceLock::new(),
        }
    }

    /// An engine that answers questions from `pairs` only: the offline memory model.
    ///
    /// Like a tuned model that keeps its base model's knowledge, it also knows what the
    /// untuned engine knows (the project's gold pairs and the schema-driven pairs); its
    /// trained pairs come first, so on a tie they win. What it scores above the untuned engine
    /// is what the memory bought.
    pub fn from_pairs(project: &Project, pairs: Vec<GoldPair>, seed: u64) -> RulesEngine {
        let mut e = RulesEngine::new(project, seed);
        e.base = std::mem::replace(&mut e.gold, pairs);
        e
    }

    /// Runs the query; keeps it only if it returns rows that are not all NULL (nor a lone
    /// zero count).
    /// The grammar the project's SQL is read in (its database's).
    fn dialect(&self) -> crate::sql::SqlDialect {
        crate::sql::SqlDialect::of(&self.schema)
    }

    fn executes(&self, sql: &str) -> bool {
        self.db.query(sql).is_ok_and(|r| worth_keeping(&r.rows))
    }

    fn remember(&self, pair: &RulePair) {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(normalize_question(&pair.question), pair.sql.clone());
    }

    /// Distinct values of a column, most frequent first (cached).
    fn distinct_values(&self, table: &str, column: &str) -> Vec<Value> {
        let key = (table.to_lowercase(), column.to_lowercase());
        if let Some(v) = self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return v.clone();
        }
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let sql = format!(
            "SELECT {c} FROM {t} WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY COUNT(*) DESC, {c} LIMIT 40",
            c = q(column),
            t = self.schema.table_sql(table, q)
        );
        let vals: Vec<Value> = self
            .db
            .query(&sql)
            .map(|r| r.rows.into_iter().filter_map(|mut row| row.pop()).collect())
            // A column the database cannot group (or a query over its time limit) offers no
            // values; the engine then uses templates that need none.
            .unwrap_or_default();
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, vals.clone());
        vals
    }

    /// The table (of those the query uses) that has `column`.
    fn table_with_column(&self, sql: &str, column: &str) -> Option<&Table> {
        // A query the analyzer cannot parse has no known tables: no column is looked up.
        let tables = crate::sql::analyze::analyze(sql, Some(&self.schema))
            .map(|a| a.tables)
            .unwrap_or_default();
        tables
            .iter()
            .filter_map(|t| self.schema.table(t))
            .find(|t| {
                t.columns
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(column))
            })
    }

    /// The column a literal token is compared with: `col = 'x'`, `t.col IN ('x', ...)`.
    fn column_before(tokens: &[Token], i: usize) -> Option<String> {
        let mut j = i;
        while j > 0 {
            j -= 1;
            match &tokens[j] {
                Token::Whitespace(_) | Token::Comma | Token::LParen => continue,
                Token::SingleQuotedString(_) | Token::Number(..) => continue,
                Token::Eq | Token::Neq | Token::Lt | Token::Gt | Token::LtEq | Token::GtEq => {
                    continue;
                }
                Token::Word(w)
                    if ["in", "like", "not"].contains(&w.value.to_lowercase().as_str()) =>
                {
                    continue;
                }
                Token::Word(w) => return Some(w.value.clone()),
                _ => return None,
            }
        }
        None
    }

    /// Value slots: a string literal that also appears in the question is replaced, in both,
    /// by other real values of its column (or other years, for a year).
    fn value_variants(&self, gold: &GoldPair, rng: &mut Rng) -> Vec<RulePair> {
        let Some(tokens) = tokenize(&gold.sql) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let Token::SingleQuotedString(lit) = t else {
                continue;
            };
            let Some(range) = find_words(&gold.question, lit) else {
                continue;
            };
            let candidates: Vec<String> =
                if lit.len() == 4 && lit.chars().all(|c| c.is_ascii_digit()) {
                    let y: i32 = lit.parse().unwrap_or(2000);
                    [y - 1, y + 1, y - 2]
                        .iter()
                        .map(|y| y.to_string())
                        .collect()
                } else {
                    let Some(col) = Self::column_before(&tokens, i) else {
                        continue;
                    };
                    let Some(table) = self.table_with_column(&gold.sql, &col) else {
                        continue;
                    };
                    let mut vals: Vec<String> = self
                        .distinct_values(&table.name, &col)
                        .iter()
                        .filter_map(sql_text)
                        .filter(|v| v != lit && v.len() < 40)
                        .collect();
                    rng.shuffle(&mut vals);
                    vals
                };
            let old_in_question = &gold.question[range.0..range.1];
            for v in candidates.into_iter().take(6) {
                let mut toks = tokens.clone();
                toks[i] = Token::SingleQuotedString(v.clone());
                let sql = detokenize(&toks);
                let shown = if old_in_question.chars().all(|c| !c.is_uppercase()) {
                    v.to_lowercase()
                } else {
                    v.clone()
                };
                let question = format!(
                    "{}{}{}",
                    &gold.question[..range.0],
                    shown,
                    &gold.question[range.1..]
                );
                out.push(RulePair {
                    question,
                    sql,
                    how: "value".into(),
                });
            }
        }
        out
    }

    /// Month slots: "December 2024" in the question and a `'2024-12-01' … '2024-12-31'`
    /// range in the SQL move together to other months.
    fn month_variants(&self, gold: &GoldPair) -> Vec<RulePair> {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let mut out = Vec::new();
        for (mi, month) in MONTHS.iter().enumerate() {
            for year in 2000..2100 {
                let phrase = format!("{month} {year}");
                let Some(range) = find_words(&gold.question, &phrase) else {
                    continue;
                };
                let start = format!("'{year}-{:02}-01'", mi + 1);
                if !gold.sql.contains(&start) {
                    continue;
                }
                let end_day = days_in_month(year, mi + 1);
                let end = format!("'{year}-{:02}-{end_day:02}'", mi + 1);
                for (nm, ny) in
                    (1..12).map(|d| ((mi + 12 - d) % 12, if mi >= d { year } else { year - 1 }))
                {
                    let nstart = format!("'{ny}-{:02}-01'", nm + 1);
                    let nend = format!("'{ny}-{:02}-{:02}'", nm + 1, days_in_month(ny, nm + 1));
                    out.push(RulePair {
                        question: replace_keep_case(
                            &gold.question,
                            range,
                            &format!("{} {ny}", MONTHS[nm]),
                        ),
                        sql: gold.sql.replace(&start, &nstart).replace(&end, &nend),
                        how: "value".into(),
                    });
                }
            }
        }
        out
    }

    /// Number slots: a number (or number word) of the question that is also a literal of the
    /// SQL (a LIMIT, a threshold) takes other values in both.
    fn number_variants(&self, gold: &GoldPair) -> Vec<RulePair> {
        let Some(tokens) = tokenize(&gold.sql) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let Token::Number(n, _) = t else { continue };
            let Ok(value) = n.parse::<i64>() else {
                continue;
            };
            if !(1..=1000).contains(&value) {
                continue;
            }
            let as_word = NUMBER_WORDS.get(value as usize).copied();
            let (range, word_form) = match find_words(&gold.question, n) {
                Some(r) => (r, false),
                None => match as_word.and_then(|w| find_words(&gold.question, w)) {
                    Some(r) => (r, true),
                    None => continue,
                },
            };
            let choices: Vec<i64> = [3, 5, 10, value * 2, (value / 2).max(2), value + 1]
                .into_iter()
                .filter(|&c| c != value && c > 0)
                .collect();
            let mut seen = Vec::new();
            for c in choices {
                if seen.contains(&c) {
                    continue;
                }
                seen.push(c);
                let mut toks = tokens.clone();
                toks[i] = Token::Number(c.to_string(), false);
                let shown = match (word_form, NUMBER_WORDS.get(c as usize)) {
                    (true, Some(w)) => w.to_string(),
                    _ => c.to_string(),
                };
                out.push(RulePair {
                    question: replace_keep_case(&gold.question, range, &shown),
                    sql: detokenize(&toks),
                    how: "number".into(),
                });
            }
        }
        out
    }

    /// Flips ORDER BY direction, MAX/MIN or a comparison, with the matching words.
    fn mutations(&self, gold: &GoldPair) -> Vec<RulePair> {
        let Some(tokens) = tokenize(&gold.sql) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let word_swap = |question: &str| -> Option<String> {
            for (a, b) in DIRECTION_WORDS {
                let ra = find_words(question, a);
                let rb = find_words(question, b);
                match (ra, rb) {
                    (None, None) => continue,
                    // Both words: swap them at once ("from the most to the least").
                    (Some(ra), Some(rb)) => {
                        let (first, second, w1, w2) = if ra.0 < rb.0 {
                            (ra, rb, b, a)
                        } else {
                            (rb, ra, a, b)
                        };
                        let tail = replace_keep_case(question, second, w2);
                        return Some(replace_keep_case(&tail, first, w1));
                    }
                    (Some(r), None) => return Some(replace_keep_case(question, r, b)),
                    (None, Some(r)) => return Some(replace_keep_case(question, r, a)),
                }
            }
            None
        };
        // Direction: exactly one ASC/DESC keyword.
        let dirs: Vec<usize> = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("desc") || w.value.eq_ignore_ascii_case("asc")))
            .map(|(i, _)| i)
            .collect();
        if dirs.len() == 1
            && let Some(question) = word_swap(&gold.question)
        {
            let mut toks = tokens.clone();
            let i = dirs[0];
            let flipped = if matches!(&toks[i], Token::Word(w) if w.value.eq_ignore_ascii_case("desc"))
            {
                "ASC"
            } else {
                "DESC"
            };
            toks[i] = Token::make_keyword(flipped);
            out.push(RulePair {
                question,
                sql: detokenize(&toks),
                how: "direction".into(),
            });
        }
        // Extreme: one MAX or MIN call.
        let extremes: Vec<usize> = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("max") || w.value.eq_ignore_ascii_case("min")))
            .map(|(i, _)| i)
            .collect();
        if extremes.len() == 1
            && let Some(question) = word_swap(&gold.question)
        {
            let mut toks = tokens.clone();
            let i = extremes[0];
            let flipped = if matches!(&toks[i], Token::Word(w) if w.value.eq_ignore_ascii_case("max"))
            {
                "MIN"
            } else {
                "MAX"
            };
            toks[i] = Token::make_word(flipped, None);
            out.push(RulePair {
                question,
                sql: detokenize(&toks),
                how: "extreme".into(),
            });
        }
        // Comparison: one > / < / >= / <= with its words in the question.
        let comps: Vec<usize> = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Token::Gt | Token::Lt | Token::GtEq | Token::LtEq))
            .map(|(i, _)| i)
            .collect();
        if comps.len() == 1 {
            let i = comps[0];
            let op = tokens[i].to_string();
            for (a_op, a_words, b_op, b_words) in COMPARISON_WORDS {
                let (from_words, to_words, to_op) = if op == *a_op {
                    (a_words, b_words, b_op)
                } else if op == *b_op {
                    (b_words, a_words, a_op)
                } else {
                    continue;
                };
                if let Some(r) = find_words(&gold.question, from_words) {
                    let mut toks = tokens.clone();
                    toks[i] = match *to_op {
                        ">" => Token::Gt,
                        "<" => Token::Lt,
                        ">=" => Token::GtEq,
                        _ => Token::LtEq,
                    };
                    out.push(RulePair {
                        question: replace_keep_case(&gold.question, r, to_words),
                        sql: detokenize(&toks),
                        how: "comparison".into(),
                    });
                    break;
                }
            }
        }
        out.extend(self.aggregate_swaps(gold, &tokens));
        out.extend(self.column_swaps(gold, &tokens));
        out
    }

    /// One aggregate call changed with its word in the question: "average" → "total".
    fn aggregate_swaps(&self, gold: &GoldPair, tokens: &[Token]) -> Vec<RulePair> {
        const AGGS: &[(&str, &[&str])] = &[
            ("AVG", &["average", "mean"]),
            ("SUM", &["total", "sum"]),
            ("MAX", &["maximum", "highest", "largest"]),
            ("MIN", &["minimum", "lowest", "smallest"]),
        ];
        let calls: Vec<usize> = tokens
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                matches!(t, Token::Word(w) if AGGS.iter().any(|(f, _)| w.value.eq_ignore_ascii_case(f)))
                    && matches!(tokens.get(i + 1), Some(Token::LParen))
            })
            .map(|(i, _)| i)
            .collect();
        let [i] = calls.as_slice() else {
            return Vec::new();
        };
        let Token::Word(w) = &tokens[*i] else {
            return Vec::new();
        };
        let Some((from, from_words)) = AGGS.iter().find(|(f, _)| w.value.eq_ignore_ascii_case(f))
        else {
            return Vec::new();
        };
        // "total number of" is a count, whatever function the SQL uses.
        if gold.question.to_lowercase().contains("total number") {
            return Vec::new();
        }
        if !from_words
            .iter()
            .any(|fw| find_words(&gold.question, fw).is_some())
        {
            return Vec::new();
        }
        // Every mention changes ("the maximum weight ... List the maximum weight").
        let reworded = |to: &str| {
            let mut q = gold.question.clone();
            for _ in 0..8 {
                match from_words.iter().find_map(|fw| find_words(&q, fw)) {
                    Some(range) => q = replace_keep_case(&q, range, to),
                    None => break,
                }
            }
            q
        };
        AGGS.iter()
            .filter(|(f, _)| f != from)
            .map(|(f, words)| {
                let mut toks = tokens.to_vec();
                toks[*i] = Token::make_word(f, None);
                RulePair {
                    question: reworded(words[0]),
                    sql: detokenize(&toks),
                    how: "aggregate".into(),
                }
            })
            .collect()
    }

    /// A measure (or a shown label) the question names, swapped for another of its table's
    /// measures (labels) in the SQL and the question alike.
    fn column_swaps(&self, gold: &GoldPair, tokens: &[Token]) -> Vec<RulePair> {
        let profile = crate::synth::profile::SchemaProfile::new(&self.schema);
        let names = crate::synth::names::Names::new(&self.schema, &self.glossary);
        let mut out = Vec::new();
        let words_at: Vec<(usize, String)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Token::Word(w) => Some((i, w.value.clone())),
                _ => None,
            })
            .collect();
        for (i, name) in &words_at {
            let Some(table) = self.table_with_column(&gold.sql, name) else {
                continue;
            };
            let Some(ti) = self.schema.tables.iter().position(|t| t.name == table.name) else {
                continue;
            };
            let Some(ci) = table
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
            else {
                continue;
            };
            let tp = &profile.tables[ti];
            let group = if tp.nums.contains(&ci) {
                &tp.nums
            } else if tp.labels.contains(&ci) {
                &tp.labels
            } else {
                continue;
            };
            let words = names.column(&table.name, name);
            let Some(range) = find_words(&gold.question, &words) else {
                continue;
            };
            for &other in group.iter().filter(|&&o| o != ci) {
                let oc = &table.columns[other];
                // A column the query already uses would repeat itself.
                if words_at
                    .iter()
                    .any(|(_, w)| w.eq_ignore_ascii_case(&oc.name))
                {
                    continue;
                }
                let ow = names.column(&table.name, &oc.name);
                // Every use of the column changes, not only this one.
                let toks: Vec<Token> = tokens
                    .iter()
                    .map(|t| match t {
                        Token::Word(w) if w.value.eq_ignore_ascii_case(name) => {
                            Token::make_word(&oc.name, w.quote_style)
                        }
                        other => other.clone(),
                    })
                    .collect();
                let question = replace_keep_case(&gold.question, range, &ow);
                if find_words(&question, &words).is_some() {
                    continue;
                }
                out.push(RulePair {
                    question,
                    sql: detokenize(&toks),
                    how: "column".into(),
                });
            }
            let _ = i;
            break;
        }
        out
    }

    /// The agreement check's words and house rules for this engine's schema and gold pairs.
    fn agreement(&self) -> &(Names, crate::synth::agree::Conventions) {
        self.agreement.get_or_init(|| {
            crate::synth::agree::setup(
                &self.schema,
                &self.glossary,
                self.gold
                    .iter()
                    .map(|g| (g.question.as_str(), g.sql.as_str())),
            )
        })
    }

    /// Which gold pair each pool candidate is nearest to (same tables, most shared
    /// concepts; `None` when it shares no table with any), worked out once.
    fn owners(&self) -> &Vec<(Option<usize>, usize)> {
        self.pool_owners.get_or_init(|| {
            let gold: Vec<Option<crate::sql::analyze::Analysis>> = self
                .gold
                .iter()
                .map(|g| crate::sql::analyze::analyze(&g.sql, Some(&self.schema)).ok())
                .collect();
            let owners = self
                .pool()
                .candidates
                .iter()
                .map(|c| {
                    let a = crate::sql::analyze::analyze(&c.sql, Some(&self.schema)).ok()?;
                    let mut best: Option<(usize, usize)> = None;
                    for (gi, ga) in gold.iter().enumerate() {
                        let Some(ga) = ga else { continue };
                        let shared_tables = a
                            .tables
                            .iter()
                            .filter(|t| ga.tables.iter().any(|g| g.eq_ignore_ascii_case(t)))
                            .count();
                        if shared_tables == 0 {
                            continue;
                        }
                        let shared = a
                            .concepts
                            .keys()
                            .filter(|k| ga.concepts.contains_key(k))
                            .count();
                        let score = shared * 4 + shared_tables;
                        if best.is_none_or(|(s, _)| score > s) {
                            best = Some((score, gi));
                        }
                    }
                    best.map(|(_, gi)| gi)
                })
                .collect::<Vec<Option<usize>>>();
            // Each gold pair's candidates (first templates of their own, then repeats) are
            // dealt round the six generators and SQL-first, so no two consumers share one.
            let pool = self.pool();
            let mut dealt = vec![0usize; self.gold.len()];
            let mut order: Vec<usize> = (0..owners.len()).collect();
            order.sort_by_key(|&i| pool.candidates[i].repeat);
            let mut out = vec![(None, SQL_FIRST_SLOT); owners.len()];
            for i in order {
                if let Some(gi) = owners[i] {
                    out[i] = (Some(gi), dealt[gi] % (NEAR_STRIPES.len() + 1));
                    dealt[gi] += 1;
                }
            }
            out
        })
    }

    /// Synthesized pairs near a gold pair: the pool candidates dealt to it and to this
    /// generator (see `owners`), so generators, gold pairs and SQL-first never give the same
    /// pair twice.
    fn near(&self, gold: &GoldPair, generator: &str) -> Vec<RulePair> {
        let Some(gi) = self
            .gold
            .iter()
            .position(|g| g.sql == gold.sql && g.question == gold.question)
        else {
            return Vec::new();
        };
        let stripe = NEAR_STRIPES
            .iter()
            .position(|g| *g == generator)
            .unwrap_or((hash_str(generator) % NEAR_STRIPES.len() as u64) as usize);
        let pool = self.pool();
        let mut mine: Vec<usize> = self
            .owners()
            .iter()
            .enumerate()
            .filter(|(_, o)| **o == (Some(gi), stripe))
            .map(|(i, _)| i)
            .collect();
        mine.sort_by_key(|&i| pool.candidates[i].repeat);
        mine.into_iter()
            .filter(|&i| self.pool_ok(i))
            .map(|i| {
                let mut p = self.pool_pair(i);
                p.how = format!("near:{}", pool.candidates[i].shape);
                p
            })
            .collect()
    }

    /// Glossary terms: a question that spells out a term's definition words gets the term,
    /// and the other way round for short definitions.
    fn glossary_variants(&self, gold: &GoldPair) -> Vec<RulePair> {
        let mut out = Vec::new();
        for g in &self.glossary {
            let short_def: String = g
                .definition
                .split([':', '.', ',', ';', '(', '='])
                .next()
                .unwrap_or("")
                .trim()
                .to_lowercase();
            let words = short_def.split_whitespace().count();
            let plain = !short_def.contains(['_', '\'', '"', '*', '/'])
                && !short_def.chars().any(|c| c.is_ascii_digit());
            let abbreviation = g.term.len() <= 5 && g.term.chars().all(|c| c.is_ascii_uppercase());
            if !plain || !(2..=5).contains(&words) {
                continue;
            }
            // An abbreviation is spelt out, and a spelt-out term abbreviated.
            if abbreviation && let Some(r) = find_words(&gold.question, &g.term) {
                out.push(RulePair {
                    question: replace_keep_case(&gold.question, r, &short_def),
                    sql: gold.sql.clone(),
                    how: "glossary".into(),
                });
            } else if abbreviation && let Some(r) = find_words(&gold.question, &short_def) {
                out.push(RulePair {
                    question: replace_keep_case(&gold.question, r, &g.term),
                    sql: gold.sql.clone(),
                    how: "glossary".into(),
                });
            }
        }
        out
    }

    /// Restyled wording of the same question ("Show me…", "Can you tell me…").
    fn paraphrases(&self, gold: &GoldPair) -> Vec<RulePair> {
        let q = gold.question.trim().trim_end_matches(['?', '.']);
        let lower_first = {
            let mut c = q.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        };
        let first_word = lower_first.split_whitespace().next().unwrap_or("");
        let mut out = Vec::new();
        if let Some(embedded) = indirect(&lower_first) {
            out.push(format!("Can you tell me {embedded}?"));
            out.push(format!("I'd like to know {embedded}."));
            out.push(format!("Please find out {embedded}."));
            if let Some(rest) = lower_first.strip_prefix("which ") {
                out.push(format!("List the {rest}."));
            }
        } else if ["list", "show", "give", "find", "rank", "name"].contains(&first_word) {
            out.push(format!("Please {lower_first}."));
            out.push(format!("Could you {lower_first}?"));
            out.push(format!("I need you to {lower_first}."));
        }
        if out.is_empty() {
            out.push(format!("Tell me: {lower_first}?"));
            out.push(format!("From our data: {lower_first}?"));
        }
        out.into_iter()
            .map(|question| RulePair {
                question,
                sql: gold.sql.clone(),
                how: "paraphrase".into(),
            })
            .collect()
    }

    /// Simpler parts of a query: each CTE body and each subquery that the describer can word.
    fn parts(&self, gold: &GoldPair) -> Vec<RulePair> {
        let Ok(query) = crate::sql::analyze::parse_query_in(&gold.sql, self.dialect()) else {
            return Vec::new();
        };
        let mut bodies: Vec<String> = Vec::new();
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                bodies.push(cte.query.to_string());
            }
        }
        // Subqueries in parentheses: found by text, parsed back to check.
        let text = gold.sql.as_str();
        let mut depth = 0i32;
        let mut starts = Vec::new();
        for (i, c) in text.char_indices() {
            match c {
                '(' => {
                    depth += 1;
                    starts.push((i, depth));
                }
                ')' => {
                    if let Some(pos) = starts.iter().rposition(|&(_, d)| d == depth) {
                        let (s, _) = starts.remove(pos);
                        let inner = text[s + 1..i].trim();
                        if inner.to_lowercase().starts_with("select") {
                            bodies.push(inner.to_string());
                        }
                    }
                    depth -= 1;
                }
                _ => {}
            }
        }
        bodies
            .into_iter()
            .filter_map(|sql| {
                let question = self.describe(&sql)?;
                Some(RulePair {
                    question,
                    sql,
                    how: "part".into(),
                })
            })
            .collect()
    }

    /// Words a simple single-table query clause by clause; `None` when it is not simple.
    pub fn describe(&self, sql: &str) -> Option<String> {
        use sqlparser::ast::{Expr, GroupByExpr, SelectItem, SetExpr, TableFactor};
        let q = crate::sql::analyze::parse_query_in(sql, self.dialect()).ok()?;
        if q.with.is_some() {
            return None;
        }
        let SetExpr::Select(s) = q.body.as_ref() else {
            return None;
        };
        if s.from.len() != 1 || !s.from[0].joins.is_empty() {
            return None;
        }
        let TableFactor::Table { name, .. } = &s.from[0].relation else {
            return None;
        };
        let table = human(&name.to_string());
        let col = |e: &Expr| -> Option<String> {
            match e {
                Expr::Identifier(i) => Some(human(&i.value)),
                Expr::CompoundIdentifier(p) => p.last().map(|i| human(&i.value)),
                _ => None,
            }
        };
        let mut parts = Vec::new();
        for item in &s.projection {
            let e = match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                SelectItem::Wildcard(_) => {
                    parts.push("everything".to_string());
                    continue;
                }
                _ => return None,
            };
            match e {
                Expr::Function(f) => {
                    let fname = f.name.to_string().to_lowercase();
                    let arg = match &f.args {
                        sqlparser::ast::FunctionArguments::List(l) => {
                            l.args.first().map(|a| a.to_string())
                        }
                        _ => None,
                    }
                    .unwrap_or_default();
                    let arg_h = human(arg.rsplit('.').next().unwrap_or(&arg));
                    let phrase = match fname.as_str() {
                        "count" if arg == "*" => format!("the number of {table}"),
                        "count" => format!("the number of {table} with a {arg_h}"),
                        "avg" => format!("the average {arg_h}"),
                        "sum" | "total" => format!("the total {arg_h}"),
                        "max" => format!("the highest {arg_h}"),
                        "min" => format!("the lowest {arg_h}"),
                        _ => return None,
                    };
                    parts.push(phrase);
                }
                other => parts.push(format!("the {}", col(other)?)),
            }
        }
        let mut text = format!("What is {} of {table}", parts.join(" and "));
        if parts.len() == 1 && parts[0].starts_with("the number") {
            text = format!("What is {}", parts[0]);
        }
        if let Some(w) = &s.selection {
            text.push_str(&format!(" where {}", self.describe_condition(w)?));
        }
        if let GroupByExpr::Expressions(g, _) = &s.group_by
            && !g.is_empty()
        {
            let names: Option<Vec<String>> = g.iter().map(col).collect();
            text.push_str(&format!(" for each {}", names?.join(" and ")));
        }
        text.push('?');
        Some(text)
    }

    fn describe_condition(&self, e: &sqlparser::ast::Expr) -> Option<String> {
        use sqlparser::ast::{BinaryOperator as Op, Expr};
        match e {
            Expr::BinaryOp { left, op, right } => {
                let l = match left.as_ref() {
                    Expr::Identifier(i) => human(&i.value),
                    Expr::CompoundIdentifier(p) => human(&p.last()?.value),
                    _ => return None,
                };
                let r = match right.as_ref() {
                    Expr::Value(v) => v.to_string().trim_matches('\'').to_string(),
                    _ => return None,
                };
                let op = match op {
                    Op::Eq => "is",
                    Op::NotEq => "is not",
                    Op::Gt => "is above",
                    Op::Lt => "is below",
                    Op::GtEq => "is at least",
                    Op::LtEq => "is at most",
                    Op::And => return None,
                    _ => return None,
                };
                Some(format!("the {l} {op} {r}"))
            }
            _ => None,
        }
    }

    /// A name-like column to show for a table's rows.
    /// The synthesis pool: every candidate the schema allows, written once, each executed
    /// when first asked for (`checked`).
    fn pool(&self) -> &SynthPool {
        self.synth_pool.get_or_init(|| {
            let synth = Synth::new(&self.db, &self.schema, &self.glossary, &self.gold);
            let candidates = synth.candidates(self.seed);
            let checked = Mutex::new(vec![None; candidates.len()]);
            SynthPool {
                candidates,
                checked,
            }
        })
    }

    /// Whether pool candidate `i` executes and returns rows worth keeping (executed once).
    fn pool_ok(&self, i: usize) -> bool {
        let pool = self.pool();
        if let Some(ok) = pool.checked.lock().unwrap_or_else(|p| p.into_inner())[i] {
            return ok;
        }
        let ok = self
            .db
            .query(&pool.candidates[i].sql)
            .is_ok_and(|r| worth_keeping(&r.rows));
        pool.checked.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(ok);
        ok
    }

    fn pool_pair(&self, i: usize) -> RulePair {
        let c = &self.pool().candidates[i];
        RulePair {
            question: c.question.clone(),
            sql: c.sql.clone(),
            how: format!("schema:{}", c.shape),
        }
    }

    /// Schema-driven pairs over the whole concept catalogue (see [`crate::synth::sqlgen`]).
    /// Each has executed and returned rows.
    pub fn schema_pairs(&self) -> Vec<RulePair> {
        (0..self.pool().candidates.len())
            .filter(|&i| self.pool_ok(i))
            .map(|i| self.pool_pair(i))
            .collect()
    }

    /// Up to `count` new pairs in the manner of the gold pair `gold`, for a generator.
    pub fn similar(&self, generator: &str, gold: &GoldPair, count: usize) -> Vec<RulePair> {
        self.similar_from(generator, gold, 0, count)
    }

    /// Like [`similar`](Self::similar), skipping the first `skip` pairs it would give.
    pub fn similar_from(
        &self,
        generator: &str,
        gold: &GoldPair,
        skip: usize,
        count: usize,
    ) -> Vec<RulePair> {
        let mut rng = Rng::new(self.seed ^ hash_str(&gold.question) ^ hash_str(generator));
        // Each generator leans on its own kind of change, so they overlap little.
        let mut candidates: Vec<RulePair> = match generator {
            "pattern" => [
                self.value_variants(gold, &mut rng),
                self.month_variants(gold),
            ]
            .concat(),
            "variation" => [self.number_variants(gold), self.mutations(gold)].concat(),
            "comparative" => [
                self.mutations(gold),
                self.value_variants(gold, &mut rng)
                    .into_iter()
                    .rev()
                    .collect(),
            ]
            .concat(),
            "edge_case" => [
                self.mutations(gold),
                self.number_variants(gold).into_iter().rev().collect(),
            ]
            .concat(),
            "granular" => [
                self.parts(gold),
                self.month_variants(gold).into_iter().rev().collect(),
                self.value_variants(gold, &mut rng)
                    .into_iter()
                    .rev()
                    .collect(),
            ]
            .concat(),
            "decomposer" => self.parts(gold),
            "paraphrase" => [self.glossary_variants(gold), self.paraphrases(gold)].concat(),
            _ => [
                self.value_variants(gold, &mut rng),
                self.mutations(gold),
                self.number_variants(gold),
            ]
            .concat(),
        };
        // A gold query that returns nothing worth keeping gives no rewording of itself.
        if generator == "paraphrase" && !self.executes(&gold.sql) {
            return Vec::new();
        }
        // Then synthesized pairs over the gold pair's tables, a stripe per generator.
        // (The decomposer splits joins and subqueries: a gold query with neither gets none.)
        let splittable = {
            let upper = gold.sql.to_uppercase();
            upper.contains(" JOIN ") || upper.matches("SELECT").count() > 1
        };
        if generator != "paraphrase" && (generator != "decomposer" || splittable) {
            candidates.extend(self.near(gold, generator));
        }
        let gold_q = normalize_question(&gold.question);
        let mut seen = std::collections::HashSet::new();
        let (names, conventions) = self.agreement();
        candidates.retain(|p| {
            let k = normalize_question(&p.question);
            // A variant whose wording no longer agrees with its SQL (a word the rewording
            // missed) is not given out.
            k != gold_q
                && seen.insert(k)
                && (p.how == "paraphrase"
                    || crate::synth::agree::check_with(
                        &p.question,
                        &p.sql,
                        &self.schema,
                        names,
                        conventions,
                    )
                    .is_empty())
        });
        let mut out = Vec::new();
        let mut skipped = 0;
        for p in candidates {
            if out.len() >= count {
                break;
            }
            if self.executes(&p.sql) {
                if skipped < skip {
                    skipped += 1;
                    continue;
                }
                self.remember(&p);
                out.push(p);
            }
        }
        out
    }

    /// SQL for a question: exactly, when the engine wrote the question; else from the nearest
    /// known pairs (see [`crate::synth::retrieve`]) with the values the question names bound
    /// in. The memory model knows only its indexed pairs; the rules backend knows the gold
    /// pairs and its schema templates.
    pub fn answer(&self, question: &str) -> Option<String> {
        let key = normalize_question(question);
        if let Some(sql) = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Some(sql.clone());
        }
        self.retriever
            .get_or_init(|| {
                let mut pairs: Vec<(String, String)> = self
                    .gold
                    .iter()
                    .chain(self.base.iter())
                    .map(|g| (g.question.clone(), g.sql.clone()))
                    .collect();
                pairs.extend(self.schema_pairs().into_iter().map(|p| (p.question, p.sql)));
                crate::synth::retrieve::Retriever::new(
                    Arc::clone(&self.db),
                    &self.schema,
                    &self.glossary,
                    pairs,
                )
            })
            .answer(question)
    }

    /// A repair for a failing query: names close to a real table or column replace unknown
    /// ones; only the first statement is kept. `None` when nothing can be changed.
    pub fn debug(&self, sql: &str, error: &str) -> Option<String> {
        let mut fixed = sql.trim().trim_end_matches(';').to_string();
        if let Some(i) = fixed.find(';') {
            fixed.truncate(i);
        }
        let lower = error.to_lowercase();
        let unknown = ["no such column: ", "no such table: "]
            .iter()
            .find_map(|p| {
                lower
                    .find(p)
                    .map(|i| error[i + p.len()..].trim().to_string())
            });
        if let Some(name) = unknown {
            let bare = name.rsplit('.').next().unwrap_or(&name).to_string();
            let mut candidates: Vec<&str> =
                self.schema.tables.iter().map(|t| t.name.as_str()).collect();
            for t in &self.schema.tables {
                candidates.extend(t.columns.iter().map(|c| c.name.as_str()));
            }
            if let Some(better) = did_you_mean(&bare, &candidates)
                && let Some(tokens) = tokenize(&fixed)
            {
                let toks: Vec<Token> = tokens
                    .into_iter()
                    .map(|t| match t {
                        Token::Word(w) if w.value.eq_ignore_ascii_case(&bare) => {
                            Token::make_word(better, w.quote_style)
                        }
                        other => other,
                    })
                    .collect();
                fixed = detokenize(&toks);
            }
        }
        (fixed != sql.trim() && self.executes(&fixed)).then_some(fixed)
    }

    /// Topics of a question: glossary terms and tables it mentions.
    pub fn topics(&self, question: &str) -> Vec<String> {
        let mut out = Vec::new();
        for g in &self.glossary {
            if find_words(question, &g.term).is_some() {
                out.push(g.term.clone());
            }
        }
        for t in &self.schema.tables {
            let h = human(&t.name);
            if find_words(question, &h).is_some() || find_words(question, &singular(&h)).is_some() {
                out.push(h);
            }
        }
        if out.is_empty() {
            out.push("general".into());
        }
        out
    }

    /// Pairs that fill a coverage gap: synthesized pairs (and variants of gold pairs) that use
    /// the concept, the table, both tables of a join, or mention the topic; their questions
    /// are written like every synthesized one.
    pub fn fill_gap(&self, kind: &str, target: &str) -> Vec<RulePair> {
        // Synthesized pairs with values generation is least likely to have used first (the
        // repeats of templates), then the rest, then variants of the gold pairs.
        let synth = self.pool();
        let mut order: Vec<usize> = (0..synth.candidates.len()).collect();
        order.sort_by_key(|&i| !synth.candidates[i].repeat);
        let mut pool: Vec<RulePair> = order
            .into_iter()
            .filter(|&i| self.pool_ok(i))
            .map(|i| self.pool_pair(i))
            .collect();
        let mut rng = Rng::new(self.seed ^ hash_str(target));
        for g in &self.gold {
            pool.extend(self.value_variants(g, &mut rng));
            pool.extend(self.mutations(g));
        }
        pool.into_iter()
            .filter(|p| {
                let a = crate::sql::analyze::analyze(&p.sql, Some(&self.schema)).ok();
                match kind {
                    "concept" => a.is_some_and(|a| a.concepts.keys().any(|c| c.name() == target)),
                    "table" => {
                        a.is_some_and(|a| a.tables.iter().any(|t| t.eq_ignore_ascii_case(target)))
                    }
                    "join" => {
                        let (x, y) = target.split_once('|').unwrap_or((target, target));
                        a.is_some_and(|a| {
                            a.tables.iter().any(|t| t.eq_ignore_ascii_case(x))
                                && a.tables.iter().any(|t| t.eq_ignore_ascii_case(y))
                        })
                    }
                    _ => {
                        find_words(&p.question, target).is_some()
                            || find_words(&p.question, &singular(target)).is_some()
                    }
                }
            })
            .filter(|p| self.executes(&p.sql))
            .collect()
    }

    /// The `offset`-th synthesized pair at a complexity level: a SynSQL level (`simple` ..
    /// `highly_complex`, read as Spider's easy .. extra) or a Spider hardness name. Past the
    /// level's own pairs, the rest of the pool is used from its end.
    pub fn sql_first_at(&self, level: &str, offset: usize) -> Option<RulePair> {
        let want = match level {
            "simple" => Hardness::Easy,
            "moderate" => Hardness::Medium,
            "complex" => Hardness::Hard,
            "highly_complex" => Hardness::Extra,
            other => Hardness::from_name(other).unwrap_or(Hardness::Medium),
        };
        let pool = self.pool();
        let owners = self.owners();
        let _guard = self
            .sql_first_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let valid = |h: Option<Hardness>| -> Vec<usize> {
            (0..pool.candidates.len())
                .filter(|&i| {
                    h.is_none_or(|h| {
                        owners[i].1 == SQL_FIRST_SLOT && pool.candidates[i].hardness == h
                    }) && self.pool_ok(i)
                })
                .collect()
        };
        let own = valid(Some(want));
        let i = match own.get(offset) {
            Some(&i) => i,
            None => {
                // Past its own: the whole pool from its end (generators take their shares from
                // the front), each level taking every fourth, so they meet only when it is spent.
                let k = offset - own.len();
                let all = valid(None);
                let at = k * 4 + want as usize;
                *all.iter().rev().nth(at)?
            }
        };
        let p = self.pool_pair(i);
        self.remember(&p);
        Some(p)
    }
}

/// A question embedded in "Can you tell me …": "what is the revenue" → "what the revenue
/// is"; "which …" and "how many …" read as they are; `None` for other shapes ("who does …").
fn indirect(q: &str) -> Option<String> {
    for wh in ["what", "who", "when", "where"] {
        for verb in ["is", "are", "was", "were"] {
            if let Some(rest) = q.strip_prefix(&format!("{wh} {verb} ")) {
                return Some(format!("{wh} {rest} {verb}"));
            }
        }
    }
    (q.starts_with("which ") || q.starts_with("how many ") || q.starts_with("how much "))
        .then(|| q.to_string())
}

/// What the rules produced for a task: questions, SQL, topics.
type TaskAnswer = (Vec<String>, Option<String>, Vec<String>);

/// The backend face of the engine.
pub struct RulesBackend {
    engine: RulesEngine,
}

impl RulesBackend {
    pub fn new(project: &Project, seed: u64) -> RulesBackend {
        RulesBackend {
            engine: RulesEngine::new(project, seed),
        }
    }

    pub fn engine(&self) -> &RulesEngine {
        &self.engine
    }

    fn answer_task(&self, task: &Task) -> Result<TaskAnswer, LlmError> {
        Ok(match task {
            Task::QuestionToSql { question } => {
                (Vec::new(), self.engine.answer(question), Vec::new())
            }
            Task::SimilarQuestions {
                generator,
                question,
                sql,
                count,
                offset,
            } => {
                let gold = GoldPair {
                    question: question.clone(),
                    sql: sql.clone(),
                    db_id: None,
                    line: None,
                };
                let pairs = self
                    .engine
                    .similar_from(generator, &gold, offset * count, *count);
                (
                    pairs.into_iter().map(|p| p.question).collect(),
                    None,
                    Vec::new(),
                )
            }
            Task::DebugSql {
                sql,
                error,
                question,
            } => {
                let fixed = self
                    .engine
                    .debug(sql, error)
                    .or_else(|| self.engine.answer(question).filter(|s| s != sql));
                (Vec::new(), fixed, Vec::new())
            }
            Task::SqlFirst { level, offset } => match self.engine.sql_first_at(level, *offset) {
                Some(p) => (vec![p.question], Some(p.sql), Vec::new()),
                None => (Vec::new(), None, Vec::new()),
            },
            Task::Topics { question } => (Vec::new(), None, self.engine.topics(question)),
            Task::FillGap {
                kind,
                target,
                offset,
            } => match self.engine.fill_gap(kind, target).into_iter().nth(*offset) {
                Some(p) => {
                    self.engine.remember(&p);
                    (vec![p.question], Some(p.sql), Vec::new())
                }
                None => (Vec::new(), None, Vec::new()),
            },
        })
    }
}

/// Fills a requested answer shape from what the rules produced: fields named like `sql` or
/// `query` get the SQL, `question`/`q1`.. the questions in order, lists the questions or
/// topics, booleans `true`.
fn fill(schema: &OutputSchema, questions: &[String], sql: Option<&str>, topics: &[String]) -> Json {
    let mut obj = Map::new();
    let mut next_q = questions.iter();
    for (k, t) in &schema.fields {
        let key = k.to_lowercase();
        let v = match t.as_str() {
            "array" | "list" => {
                if !topics.is_empty() {
                    json!(topics)
                } else {
                    json!(questions)
                }
            }
            "bool" | "boolean" => json!(true),
            "int" | "integer" => json!(questions.len()),
            "float" | "number" => json!(1.0),
            _ if key.contains("sql") || key.contains("query") => json!(sql.unwrap_or("")),
            _ if key.contains("topic") => json!(topics.join(", ")),
            _ if key.contains("explanation") || key.contains("reason") => {
                json!("answered by the offline rules backend")
            }
            _ => json!(next_q.next().cloned().unwrap_or_default()),
        };
        obj.insert(k.clone(), v);
    }
    Json::Object(obj)
}

impl Backend for RulesBackend {
    fn kind(&self) -> &'static str {
        "rules"
    }

    fn model(&self) -> &str {
        "rules"
    }

    fn complete<'a>(
        &'a self,
        request: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<LlmResponse, LlmError>> {
        Box::pin(async move {
            let start = Instant::now();
            let Some(task) = &request.task else {
                return Err(LlmError::Unsupported {
                    message: format!(
                        "the offline rules backend answers lode's own tasks only, not free-form prompts ({}); configure an LLM profile for this",
                        request.purpose
                    ),
                });
            };
            let (questions, sql, topics) = self.answer_task(task)?;
            let text = sql.clone().unwrap_or_else(|| questions.join("\n"));
            let json = request
                .schema
                .as_ref()
                .map(|s| fill(s, &questions, sql.as_deref(), &topics));
            Ok(LlmResponse {
                json,
                text,
                usage: None,
                latency: start.elapsed(),
                ..LlmResponse::default()
            })
        })
    }

    fn structured_mode(&self) -> Option<&'static str> {
        Some("rules")
    }
}

/// Counts of pairs per `how`, for summaries.
pub fn count_by_how(pairs: &[RulePair]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in pairs {
        *m.entry(p.how.split(':').next().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    m
}
