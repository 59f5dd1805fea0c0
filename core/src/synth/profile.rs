//! What each table offers the synthesis: the columns that name a row (labels), the columns to
//! filter and group by (categories), the measures, the dates, and the joins along declared
//! foreign keys or, where none are declared, along keys inferred from names.

use std::collections::{HashMap, HashSet};

use crate::sql::Value;
use crate::sql::schema::{Column, Schema, Table};

/// One join: `child.fk = parent.pk`.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub child: usize,
    pub fk: usize,
    pub parent: usize,
    pub pk: usize,
    /// Inferred from names, not declared.
    pub inferred: bool,
}

/// A table's columns sorted by the part they can play in a question.
#[derive(Debug, Clone, Default)]
pub struct TableProfile {
    pub table: usize,
    /// Text columns that tell rows apart (names, titles).
    pub labels: Vec<usize>,
    /// Columns with few values to filter and group by (not keys).
    pub cats: Vec<usize>,
    /// Numeric measures (not keys, not flags).
    pub nums: Vec<usize>,
    /// Date or time columns holding ISO-like text.
    pub dates: Vec<usize>,
    /// Key columns (primary, foreign, `…_id`), never asked about unless the gold set does.
    pub keys: Vec<usize>,
    /// Numbers that identify rather than measure, with many values (a phone number): listed
    /// and counted, never averaged.
    pub codes: Vec<usize>,
}

/// The profiles of a schema's tables and its join graph.
#[derive(Debug, Clone, Default)]
pub struct SchemaProfile {
    pub tables: Vec<TableProfile>,
    pub edges: Vec<Edge>,
}

/// Whether a column is a key by its role or its name.
pub fn is_key(t: &Table, c: &Column) -> bool {
    let n = c.name.to_lowercase();
    // A foreign key holding names or short codes (`state` 'NY') is a value a question says.
    let text_fk = text_samples(c)
        && !n.ends_with("id")
        && !c.primary_key
        && !t
            .primary_key
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&c.name));
    if text_fk && groupable(t, c) {
        return false;
    }
    c.primary_key
        || t.primary_key
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&c.name))
        || t.foreign_keys
            .iter()
            .any(|fk| fk.columns.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
        || n == "id"
        || n.ends_with("_id")
        || n.ends_with("id") && c.name.ends_with("ID")
        || n.ends_with("_key")
        || n.ends_with("_code") && !c.categorical
}

/// Words that say a measure, whatever its values look like.
const MEASURE_WORDS: &[&str] = &[
    "year",
    "age",
    "count",
    "amount",
    "price",
    "cost",
    "population",
    "capacity",
    "salary",
    "total",
    "score",
    "rating",
    "size",
    "weight",
    "height",
    "length",
    "area",
    "duration",
    "sales",
    "revenue",
    "budget",
    "quantity",
    "points",
    "rank",
    "percent",
    "share",
    "value",
    "attendance",
    "tonnage",
    "killed",
    "injured",
    "worth",
    "balance",
    "fee",
    "income",
];

/// An integer column that identifies rather than measures: named like a code or a number
/// (`phone_number`, `zip`, `major_code`), or integers far apart that repeat across rows with
/// no measure word in the name (`Advisor` 1121, 2192; `Major` 600, 520, 550).
pub fn is_code(t: &Table, c: &Column) -> bool {
    let n = c.name.to_lowercase();
    let words = super::names::split_words(&c.name);
    if words.iter().any(|w| MEASURE_WORDS.contains(&w.as_str())) {
        return false;
    }
    let named = [
        "number", "no", "num", "phone", "zip", "postcode", "code", "zipcode",
    ]
    .iter()
    .any(|w| words.last().is_some_and(|l| l == w))
        || n.ends_with("num");
    let ints: Vec<i64> = c
        .samples
        .iter()
        .filter_map(|v| match v {
            Value::Integer(i) => Some(*i),
            _ => None,
        })
        .collect();
    // Values far apart for how many there are (600, 520, 550 rather than 17, 18, 20).
    let sparse =
        ints.len() == c.samples.len() && ints.len() >= 2 && ints.iter().all(|i| *i >= 0) && {
            let (lo, hi) = (ints.iter().min(), ints.iter().max());
            lo.zip(hi)
                .is_some_and(|(lo, hi)| (hi - lo) as f64 / (ints.len() - 1) as f64 >= 10.0)
        };
    let rows = t.stats_rows.max(1).min(t.row_count.max(1));
    let repeats = c.distinct_count > 0 && rows as f64 / c.distinct_count as f64 >= 1.5;
    named || (sparse && repeats)
}

/// Short text values that repeat enough to filter and group by: the schema's categorical
/// columns, and any text column of at most 30 values or at most one per two rows.
fn groupable(t: &Table, c: &Column) -> bool {
    let rows = t.stats_rows.max(1).min(t.row_count.max(1));
    let short = c.samples.iter().all(|v| match v {
        Value::Text(s) => s.trim().chars().count() <= 40,
        _ => false,
    });
    text_samples(c)
        && short
        && (c.categorical || c.distinct_count <= 30 || c.distinct_count * 2 <= rows)
}

fn numeric_samples(c: &Column) -> bool {
    !c.samples.is_empty()
        && c.samples
            .iter()
            .all(|v| matches!(v, Value::Integer(_) | Value::Real(_)))
}

fn text_samples(c: &Column) -> bool {
    !c.samples.is_empty() && c.samples.iter().all(|v| matches!(v, Value::Text(_)))
}

/// A date column: a date/time type or name, and text values that start like `YYYY-MM-DD`.
pub fn is_date(c: &Column) -> bool {
    let t = c.decl_type.to_uppercase();
    let n = c.name.to_lowercase();
    let named = t.contains("DATE")
        || t.contains("TIME")
        || n.contains("date")
        || n.ends_with("_at")
        || n == "created"
        || n == "updated";
    named
        && c.samples.iter().any(|v| match v {
            Value::Text(s) => {
                let b = s.as_bytes();
                b.len() >= 10
                    && b[..4].iter().all(u8::is_ascii_digit)
                    && b[4] == b'-'
                    && b[7] == b'-'
            }
            _ => false,
        })
}

/// Columns the gold SQL aggregates (`MAX(area_code)`): measures by the gold set's own use,
/// whatever their names say. The SQL is read in the target's `dialect` (`max(tags[1])`
/// aggregates `tags` on PostgreSQL).
pub fn aggregated_columns(gold_sql: &[&str], dialect: crate::sql::SqlDialect) -> HashSet<String> {
    use sqlparser::tokenizer::Token;
    let mut out = HashSet::new();
    for sql in gold_sql {
        let Ok(tokens) = dialect.tokenize(sql) else {
            continue;
        };
        let words: Vec<&Token> = tokens
            .iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect();
        for (i, t) in words.iter().enumerate() {
            let Token::Word(w) = t else { continue };
            if !["max", "min", "avg", "sum"].contains(&w.value.to_lowercase().as_str())
                || !matches!(words.get(i + 1), Some(Token::LParen))
            {
                continue;
            }
            // The last name before the closing parenthesis: `max(T1.area_code)`.
            let mut last = None;
            for t in &words[i + 2..] {
                match t {
                    Token::RParen => break,
                    Token::Word(w) => last = Some(w.value.to_lowercase()),
                    _ => {}
                }
            }
            out.extend(last);
        }
    }
    out
}

impl SchemaProfile {
    pub fn new(schema: &Schema) -> SchemaProfile {
        SchemaProfile::with_measures(schema, &HashSet::new())
    }

    /// Like [`new`](Self::new), with columns the gold set aggregates taken as measures.
    pub fn with_measures(schema: &Schema, measures: &HashSet<String>) -> SchemaProfile {
        let mut tables = Vec::new();
        for (ti, t) in schema.tables.iter().enumerate() {
            let mut p = TableProfile {
                table: ti,
                ..Default::default()
            };
            if t.name.starts_with("sqlite_") || t.row_count == 0 {
                tables.push(p);
                continue;
            }
            for (ci, c) in t.columns.iter().enumerate() {
                let n = c.name.to_lowercase();
                if c.samples.is_empty() {
                    continue;
                }
                if measures.contains(&n) && numeric_samples(c) && c.distinct_count > 3 {
                    p.nums.push(ci);
                    continue;
                }
                if is_key(t, c) {
                    p.keys.push(ci);
                    continue;
                }
                if is_date(c) {
                    p.dates.push(ci);
                    continue;
                }
                let flag = c.distinct_count <= 2;
                if numeric_samples(c) && is_code(t, c) {
                    // A code in numbers (a major, an advisor, a phone number): not a measure
                    // to average; with few values it still groups.
                    if c.categorical {
                        p.cats.push(ci);
                    } else {
                        p.codes.push(ci);
                    }
                    continue;
                }
                if numeric_samples(c) && !flag && c.distinct_count > 3 {
                    p.nums.push(ci);
                    continue;
                }
                // Numbers kept as text (`Age TEXT`): they sort and compare as text, so they
                // are neither names nor measures; with few values they still group.
                let numeric_text = text_samples(c)
                    && c.samples.iter().all(|v| match v {
                        Value::Text(s) => s.trim().parse::<f64>().is_ok(),
                        _ => false,
                    });
                if numeric_text {
                    if c.categorical {
                        p.cats.push(ci);
                    }
                    continue;
                }
                if text_samples(c) {
                    let name_like = ["name", "title", "label"]
                        .iter()
                        .any(|w| n == *w || n.ends_with(&format!("_{w}")) || n.ends_with(w));
                    let rows = t.stats_rows.max(1).min(t.row_count.max(1));
                    let spread = c.distinct_count as f64 / rows as f64;
                    let short = c.samples.iter().all(|v| match v {
                        Value::Text(s) => s.chars().count() <= 40,
                        _ => false,
                    });
                    if name_like || (!c.categorical && spread >= 0.6) {
                        p.labels.push(ci);
                        // In a small table a place or a kind is unique per row yet still a
                        // value to filter and group by.
                        if !name_like && short && c.distinct_count <= 30 {
                            p.cats.push(ci);
                        }
                    } else if groupable(t, c) {
                        p.cats.push(ci);
                    }
                    continue;
                }
                if numeric_samples(c) && c.categorical {
                    // Small integers with few values (a grade, a rating) group like categories.
                    p.cats.push(ci);
                }
            }
            // Name-like labels first.
            p.labels.sort_by_key(|&ci| {
                let n = t.columns[ci].name.to_lowercase();
                !(n == "name" || n.ends_with("name") || n.ends_with("title"))
            });
            tables.push(p);
        }
        let edges = edges(schema);
        SchemaProfile { tables, edges }
    }

    /// Bridge tables: children of two or more parents with nothing else of their own to say.
    pub fn bridges(&self) -> Vec<(usize, Vec<&Edge>)> {
        let mut by_child: HashMap<usize, Vec<&Edge>> = HashMap::new();
        for e in &self.edges {
            by_child.entry(e.child).or_default().push(e);
        }
        let mut out: Vec<(usize, Vec<&Edge>)> = by_child
            .into_iter()
            .filter(|(c, es)| {
                es.len() >= 2
                    && self.tables[*c].labels.is_empty()
                    && self.tables[*c].dates.is_empty()
                    && self.tables[*c].codes.is_empty()
                    && self.tables[*c].nums.len() + self.tables[*c].cats.len() <= 1
            })
            .collect();
        out.sort_by_key(|(c, _)| *c);
        out
    }
}

fn col_index(t: &Table, name: &str) -> Option<usize> {
    t.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

/// Joins along declared foreign keys; between tables with none declared, along a column named
/// like the other table's single primary key (`StuID` and `StuID`, or `student_id` and
/// `student.id`).
fn edges(schema: &Schema) -> Vec<Edge> {
    let mut out = Vec::new();
    let index: HashMap<String, usize> = schema
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.to_lowercase(), i))
        .collect();
    for (ci, t) in schema.tables.iter().enumerate() {
        for fk in &t.foreign_keys {
            let Some(&pi) = index.get(&fk.ref_table.to_lowercase()) else {
                continue;
            };
            if pi == ci || fk.columns.len() != 1 {
                continue;
            }
            let parent = &schema.tables[pi];
            let pk_name = fk
                .ref_columns
                .first()
                .cloned()
                .or_else(|| parent.primary_key.first().cloned());
            let (Some(fkc), Some(pkc)) = (
                col_index(t, &fk.columns[0]),
                pk_name.and_then(|n| col_index(parent, &n)),
            ) else {
                continue;
            };
            out.push(Edge {
                child: ci,
                fk: fkc,
                parent: pi,
                pk: pkc,
                inferred: false,
            });
        }
    }
    for (ci, t) in schema.tables.iter().enumerate() {
        for (pi, parent) in schema.tables.iter().enumerate() {
            if pi == ci
                || out
                    .iter()
                    .any(|e| (e.child == ci && e.parent == pi) || (e.child == pi && e.parent == ci))
            {
                continue;
            }
            let [pk] = parent.primary_key.as_slice() else {
                continue;
            };
            let Some(pkc) = col_index(parent, pk) else {
                continue;
            };
            let parent_one = super::names::singular(&parent.name.to_lowercase());
            let candidates = if pk.eq_ignore_ascii_case("id") {
                vec![format!("{parent_one}_id"), format!("{parent_one}id")]
            } else {
                vec![pk.to_lowercase()]
            };
            let Some(fkc) = t
                .columns
                .iter()
                .position(|c| candidates.contains(&c.name.to_lowercase()))
            else {
                continue;
            };
            // The child's own single key with the parent's name is a 1:1 table, not a child.
            if t.primary_key.len() == 1
                && t.primary_key[0].eq_ignore_ascii_case(&t.columns[fkc].name)
            {
                continue;
            }
            out.push(Edge {
                child: ci,
                fk: fkc,
                parent: pi,
                pk: pkc,
                inferred: true,
            });
        }
    }
    out
}
