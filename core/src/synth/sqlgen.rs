//! SQL-first synthesis for any database: queries written from the schema, its joins and its
//! data over the concept catalogue (filters, aggregates, grouping, HAVING, ordering and
//! limits, joins and bridge tables, nested and correlated subqueries, set operations, window
//! functions, CASE, date functions, LIKE, NULL handling), with literals sampled from the
//! data, each with the question that says what it does in plain English: names in words,
//! plurals and articles right, direction words that follow the ORDER BY, no key columns
//! unless the gold set asks about them. Candidates are cheap to write; they are executed (and
//! kept only when they return rows that say something) as they are asked for.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::Rng;
use super::names::{Names, article, plural};
use super::profile::{Edge, SchemaProfile, TableProfile};
use crate::project::{GlossaryEntry, GoldPair};
use crate::sql::SqlDialect;
use crate::sql::analyze::{Hardness, hardness_in, template_in};
use crate::sql::schema::Schema;
use crate::sql::{Database, Value};

/// A written question and its SQL, before execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub question: String,
    pub sql: String,
    /// The shape that wrote it (`filter`, `join_having`, ...).
    pub shape: &'static str,
    pub hardness: Hardness,
    /// A template already written with other values.
    pub repeat: bool,
}

/// Quotes an identifier when it is not a plain word.
pub fn qi(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name.to_ascii_uppercase().as_str());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

const RESERVED: &[&str] = &[
    "ORDER",
    "GROUP",
    "SELECT",
    "FROM",
    "WHERE",
    "TABLE",
    "INDEX",
    "KEY",
    "DEFAULT",
    "CHECK",
    "LIMIT",
    "VALUES",
    "TO",
    "IN",
    "IS",
    "AS",
    "BY",
    "ON",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "JOIN",
    "UNION",
    "ALL",
    "PRIMARY",
    "REFERENCES",
    "UNIQUE",
    "HAVING",
    "DISTINCT",
    "INTO",
    "SET",
    "TRANSACTION",
    "COLUMN",
    "ADD",
    "CROSS",
    "LEFT",
];

/// What a value reads as in a question.
fn say(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => {
            let s = s.trim();
            (!s.is_empty() && s.chars().count() <= 60 && !s.contains('\n')).then(|| s.to_string())
        }
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(crate::sql::value::format_real(*f)),
        _ => None,
    }
}

/// Direction words for a measure, by what it measures.
fn extremes(words: &str) -> (&'static str, &'static str) {
    let w = words.to_lowercase();
    let last = w.rsplit(' ').next().unwrap_or("");
    if last == "age" {
        ("oldest", "youngest")
    } else if last == "year" || w.contains("date") {
        ("latest", "earliest")
    } else if ["price", "cost", "fee", "rent"].contains(&last) {
        ("most expensive", "cheapest")
    } else if ["weight", "tonnage"].contains(&last) {
        ("heaviest", "lightest")
    } else {
        ("highest", "lowest")
    }
}

/// Columns whose value is a place: "singers from France".
fn is_place(words: &str) -> bool {
    let last = words.rsplit(' ').next().unwrap_or("");
    [
        "country",
        "nationality",
        "citizenship",
        "city",
        "state",
        "hometown",
        "region",
        "continent",
        "province",
        "county",
    ]
    .contains(&last)
}

/// A table and column pair inside the synthesis, with its words.
#[derive(Clone, Copy)]
struct Col {
    t: usize,
    c: usize,
}

/// Writes candidates for one schema.
pub struct Synth<'a> {
    db: &'a Database,
    schema: &'a Schema,
    names: Names,
    profile: SchemaProfile,
    allow_ids: bool,
    values: Mutex<HashMap<(usize, usize), Vec<Value>>>,
}

impl<'a> Synth<'a> {
    pub fn new(
        db: &'a Database,
        schema: &'a Schema,
        glossary: &[GlossaryEntry],
        gold: &[GoldPair],
    ) -> Synth<'a> {
        // The gold set asks about IDs when one of its questions says "id".
        let allow_ids = gold.iter().any(|g| {
            g.question
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.eq_ignore_ascii_case("id") || w.eq_ignore_ascii_case("ids"))
        });
        Synth {
            db,
            schema,
            names: Names::new(schema, glossary),
            profile: SchemaProfile::with_measures(
                schema,
                &super::profile::aggregated_columns(
                    &gold.iter().map(|g| g.sql.as_str()).collect::<Vec<_>>(),
                    SqlDialect::of(schema),
                ),
            ),
            allow_ids,
            values: Mutex::new(HashMap::new()),
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    fn tname(&self, t: usize) -> String {
        self.schema.tables[t].sql_name(qi)
    }
    fn cname(&self, col: Col) -> String {
        qi(&self.schema.tables[col.t].columns[col.c].name)
    }
    /// The year of a date column, in the database's dialect: SQLite's `strftime`; on
    /// PostgreSQL `to_char` for a date or timestamp column, the first four characters of an
    /// ISO date kept as text.
    fn year_of(&self, col: Col) -> String {
        let dc = self.cname(col);
        if self.schema.dialect != "postgresql" {
            return format!("strftime('%Y', {dc})");
        }
        let decl = self.schema.tables[col.t].columns[col.c]
            .decl_type
            .to_ascii_lowercase();
        if decl.starts_with("date") || decl.starts_with("timestamp") {
            format!("to_char({dc}, 'YYYY')")
        } else {
            format!("substr({dc}, 1, 4)")
        }
    }
    /// `column LIKE`, case-insensitive, in the database's dialect: SQLite's `LIKE` ignores
    /// ASCII case already; on PostgreSQL `ILIKE` does, and a column that is not text (an
    /// enum, say) is cast to text first (neither operator takes it as it is).
    fn like(&self, col: Col) -> String {
        let c = self.cname(col);
        if self.schema.dialect != "postgresql" {
            return format!("{c} LIKE");
        }
        let decl = self.schema.tables[col.t].columns[col.c]
            .decl_type
            .to_ascii_lowercase();
        let text = ["text", "character", "varchar", "char", "citext", "name"]
            .iter()
            .any(|t| decl.starts_with(t));
        if text {
            format!("{c} ILIKE")
        } else {
            format!("{c}::text ILIKE")
        }
    }
    fn one(&self, t: usize) -> String {
        self.names.one(&self.schema.tables[t].name)
    }
    fn many(&self, t: usize) -> String {
        self.names.many(&self.schema.tables[t].name)
    }
    fn words(&self, col: Col) -> String {
        let t = &self.schema.tables[col.t];
        self.names.column(&t.name, &t.columns[col.c].name)
    }

    /// Distinct values of a column, most frequent first (cached).
    fn values(&self, col: Col) -> Vec<Value> {
        let key = (col.t, col.c);
        if let Some(v) = self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return v.clone();
        }
        let c = self.cname(col);
        let sql = format!(
            "SELECT {c} FROM {t} WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY COUNT(*) DESC, {c} LIMIT 60",
            t = self.tname(col.t)
        );
        let vals: Vec<Value> = self
            .db
            .query(&sql)
            .map(|r| r.rows.into_iter().filter_map(|mut row| row.pop()).collect())
            .unwrap_or_default();
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, vals.clone());
        vals
    }

    /// A value of a category to filter on, one the question can say.
    fn pick_value(&self, col: Col, rng: &mut Rng) -> Option<Value> {
        let vals: Vec<Value> = self
            .values(col)
            .into_iter()
            .filter(|v| say(v).is_some())
            .collect();
        if vals.is_empty() {
            return None;
        }
        // Favour the common values: they make results worth reading.
        let top = vals.len().min(8);
        Some(vals[(rng.next() % top as u64) as usize].clone())
    }

    /// A threshold inside a measure's range, so both sides of it have rows.
    fn pick_threshold(&self, col: Col, rng: &mut Rng) -> Option<Value> {
        let mut vals: Vec<f64> = self
            .values(col)
            .iter()
            .filter_map(|v| match v {
                Value::Integer(i) => Some(*i as f64),
                Value::Real(f) => Some(*f),
                _ => None,
            })
            .collect();
        if vals.len() < 3 {
            return None;
        }
        vals.sort_by(f64::total_cmp);
        let lo = vals.len() / 4;
        let hi = (vals.len() * 3 / 4).max(lo + 1);
        let x = vals[lo + (rng.next() % (hi - lo) as u64) as usize];
        let integral = self
            .values(col)
            .iter()
            .all(|v| matches!(v, Value::Integer(_)));
        Some(if integral || x.fract() == 0.0 {
            Value::Integer(x as i64)
        } else {
            Value::Real((x * 100.0).round() / 100.0)
        })
    }

    /// Columns a question may ask to see for a table: labels, else categories, else (when the
    /// gold set asks about IDs) keys.
    fn shows(&self, p: &TableProfile) -> Vec<Col> {
        let mut out: Vec<usize> = p.labels.clone();
        if out.is_empty() {
            out = p.cats.clone();
        }
        if out.is_empty() {
            out = p.codes.clone();
        }
        if out.is_empty() && self.allow_ids {
            out = p.keys.clone();
        }
        out.into_iter().map(|c| Col { t: p.table, c }).collect()
    }

    fn cats(&self, p: &TableProfile) -> Vec<Col> {
        p.cats
            .iter()
            .map(|&c| Col { t: p.table, c })
            .filter(|&col| !self.words(col).starts_with("is "))
            .collect()
    }

    fn nums(&self, p: &TableProfile) -> Vec<Col> {
        p.nums.iter().map(|&c| Col { t: p.table, c }).collect()
    }

    /// "whose country is France", "from France", "whose age is greater than 30".
    fn condition(&self, col: Col, op: &str, v: &str, rng: &mut Rng) -> String {
        let w = self.words(col);
        match op {
            "=" if is_place(&w) && rng.next().is_multiple_of(2) => format!("from {v}"),
            "=" => format!("whose {w} is {v}"),
            "!=" => format!("whose {w} is not {v}"),
            ">" => match rng.next() % 3 {
                0 => format!("whose {w} is greater than {v}"),
                1 => format!("with {} {w} above {v}", article(&w)),
                _ => format!("whose {w} is more than {v}"),
            },
            "<" => match rng.next() % 3 {
                0 => format!("whose {w} is less than {v}"),
                1 => format!("with {} {w} below {v}", article(&w)),
                _ => format!("whose {w} is under {v}"),
            },
            ">=" => format!("whose {w} is at least {v}"),
            "<=" => format!("whose {w} is at most {v}"),
            _ => format!("whose {w} {op} {v}"),
        }
    }

    /// "from highest to lowest age", "in ascending order of capacity".
    fn order_words(&self, col: Col, desc: bool, rng: &mut Rng) -> String {
        let w = self.words(col);
        let (hi, lo) = extremes(&w);
        let (a, b) = if desc { (hi, lo) } else { (lo, hi) };
        match rng.next() % 3 {
            0 if hi != "highest" => format!("from {a} to {b}"),
            0 | 1 => format!(
                "in {} order of {w}",
                if desc { "descending" } else { "ascending" }
            ),
            _ => format!("by {w} from {a} to {b}"),
        }
    }

    fn opener(&self, rng: &mut Rng) -> &'static str {
        ["What are", "List", "Show", "Find", "Give"][(rng.next() % 5) as usize]
    }

    /// "What are the names of singers" / "List the names of singers".
    fn ask_for(&self, what: &str, rng: &mut Rng) -> String {
        let open = self.opener(rng);
        format!("{open} the {what}")
    }

    fn finish(open_is_question: bool, s: String) -> String {
        let mut s = s;
        if let Some(first) = s.get(..1) {
            s = first.to_uppercase() + &s[1..];
        }
        s.push(if open_is_question { '?' } else { '.' });
        s
    }

    /// A sentence that starts with `ask_for`: a question when it opens with "What".
    fn sentence(s: String) -> String {
        let q = s.starts_with("What")
            || s.starts_with("Which")
            || s.starts_with("How")
            || s.starts_with("Who");
        Self::finish(q, s)
    }

    /// Every candidate the schema allows, in a deterministic order (by seed), shapes
    /// interleaved so the first ones of each hardness cover many shapes.
    pub fn candidates(&self, seed: u64) -> Vec<Candidate> {
        let dialect = SqlDialect::of(self.schema);
        let mut rng = Rng::new(seed ^ 0x5EED_CAFE);
        let mut by_shape: Vec<Vec<(String, String, &'static str)>> = Vec::new();
        let mut push = |shape: &'static str, q: String, sql: String| {
            if let Some(v) = by_shape.iter_mut().find(|v| v[0].2 == shape) {
                v.push((q, sql, shape));
            } else {
                by_shape.push(vec![(q, sql, shape)]);
            }
        };
        // Twice over: the second pass samples other values, for the same shapes again.
        let bridges: Vec<usize> = self.profile.bridges().iter().map(|b| b.0).collect();
        for pass in 0..2 {
            for p in &self.profile.tables {
                // A bridge table's rows are links ("has pets"), said through the tables it
                // links.
                if self.schema.tables[p.table].row_count == 0 || bridges.contains(&p.table) {
                    continue;
                }
                self.single_table(p, pass, &mut rng, &mut push);
            }
            for e in &self.profile.edges {
                // A bridge table's rows are links, said through the tables it links.
                if !bridges.contains(&e.child) {
                    self.joined(e, &mut rng, &mut push);
                }
            }
            for (bridge, es) in self.profile.bridges() {
                for (i, a) in es.iter().enumerate() {
                    for b in es.iter().skip(i + 1) {
                        self.bridged(bridge, a, b, &mut rng, &mut push);
                        self.bridged(bridge, b, a, &mut rng, &mut push);
                    }
                }
            }
        }
        for v in &mut by_shape {
            rng.shuffle(v);
        }
        // Round-robin over shapes; each template once, then (at the end, marked `repeat`)
        // the same templates with other values.
        let mut out = Vec::new();
        let mut repeats = Vec::new();
        let mut seen_template = HashSet::new();
        let mut seen_sql = HashSet::new();
        let mut i = 0;
        loop {
            let mut any = false;
            for v in &by_shape {
                if let Some((q, sql, shape)) = v.get(i) {
                    any = true;
                    if !seen_sql.insert(sql.clone()) {
                        continue;
                    }
                    let Ok(h) = hardness_in(sql, dialect) else {
                        continue;
                    };
                    let repeat = !seen_template.insert(template_in(sql, dialect));
                    let c = Candidate {
                        question: q.clone(),
                        sql: sql.clone(),
                        shape,
                        hardness: h,
                        repeat,
                    };
                    if repeat {
                        repeats.push(c);
                    } else {
                        out.push(c);
                    }
                }
            }
            if !any {
                break;
            }
            i += 1;
        }
        out.extend(repeats);
        out
    }

    fn single_table(
        &self,
        p: &TableProfile,
        pass: usize,
        rng: &mut Rng,
        push: &mut impl FnMut(&'static str, String, String),
    ) {
        let t = p.table;
        let tn = self.tname(t);
        let (one, many) = (self.one(t), self.many(t));
        let shows = self.shows(p);
        let cats = self.cats(p);
        let nums = self.nums(p);
        push(
            "count",
            match rng.next() % 3 {
                0 => format!("How many {many} are there?"),
                1 => format!("Count the number of {many}."),
                _ => format!("What is the total number of {many}?"),
            },
            format!("SELECT COUNT(*) FROM {tn}"),
        );
        for (i, &s) in shows.iter().enumerate().take(3) {
            let sw = self.words(s);
            let sc = self.cname(s);
            // The second pass shows a second column beside the first.
            let second = (pass > 0)
                .then(|| {
                    shows
                        .iter()
                        .chain(cats.iter())
                        .chain(nums.iter())
                        .find(|o| o.c != s.c)
                        .copied()
                })
                .flatten();
            let (pw, ssel) = match second {
                Some(o) => (
                    format!("{} and {}", plural(&sw), plural(&self.words(o))),
                    format!("{sc}, {}", self.cname(o)),
                ),
                None => (plural(&sw), sc.clone()),
            };
            push(
                "list",
                Self::sentence(format!("{} of all {many}", self.ask_for(&pw, rng))),
                format!("SELECT {ssel} FROM {tn}"),
            );
            if let Some(&other) = cats.iter().chain(nums.iter()).filter(|o| o.c != s.c).nth(i) {
                let ow = self.words(other);
                push(
                    "list_two",
                    Self::sentence(format!(
                        "{} the {sw} and {ow} of every {one}",
                        ["Show", "List", "Give"][(rng.next() % 3) as usize]
                    )),
                    format!("SELECT {sc}, {} FROM {tn}", self.cname(other)),
                );
            }
            for &c in cats.iter().take(3) {
                if c.c == s.c || second.is_some_and(|o| o.c == c.c) {
                    continue;
                }
                let Some(v) = self.pick_value(c, rng) else {
                    continue;
                };
                let vs = say(&v).unwrap_or_default();
                let cond = self.condition(c, "=", &vs, rng);
                push(
                    "filter",
                    Self::sentence(format!("{} of {many} {cond}", self.ask_for(&pw, rng))),
                    format!(
                        "SELECT {ssel} FROM {tn} WHERE {} = {}",
                        self.cname(c),
                        v.sql_literal()
                    ),
                );
                let cond = self.condition(c, "!=", &vs, rng);
                push(
                    "filter_not",
                    Self::sentence(format!("{} of {many} {cond}", self.ask_for(&pw, rng))),
                    format!(
                        "SELECT {ssel} FROM {tn} WHERE {} != {}",
                        self.cname(c),
                        v.sql_literal()
                    ),
                );
                // Two values of one category.
                if let Some(v2) = self.pick_value(c, rng).filter(|v2| *v2 != v) {
                    let cw = self.words(c);
                    push(
                        "filter_or",
                        Self::sentence(format!(
                            "{} of {many} whose {cw} is {vs} or {}",
                            self.ask_for(&pw, rng),
                            say(&v2).unwrap_or_default()
                        )),
                        format!(
                            "SELECT {ssel} FROM {tn} WHERE {c} = {} OR {c} = {}",
                            v.sql_literal(),
                            v2.sql_literal(),
                            c = self.cname(c)
                        ),
                    );
                }
                for &n in nums.iter().take(2) {
                    let Some(th) = self.pick_threshold(n, rng) else {
                        continue;
                    };
                    let ts = say(&th).unwrap_or_default();
                    let c2 = self.condition(n, ">", &ts, rng);
                    push(
                        "filter_and",
                        Self::sentence(format!(
                            "{} of {many} {} and {c2}",
                            self.ask_for(&pw, rng),
                            self.condition(c, "=", &vs, rng)
                        )),
                        format!(
                            "SELECT {ssel} FROM {tn} WHERE {} = {} AND {} > {}",
                            self.cname(c),
                            v.sql_literal(),
                            self.cname(n),
                            th.sql_literal()
                        ),
                    );
                    let desc = rng.next().is_multiple_of(2);
                    push(
                        "filter_order",
                        Self::sentence(format!(
                            "{} of {many} {}, {}",
                            self.ask_for(&pw, rng),
                            self.condition(c, "=", &vs, rng),
                            self.order_words(n, desc, rng)
                        )),
                        format!(
                            "SELECT {ssel} FROM {tn} WHERE {} = {} ORDER BY {} {}",
                            self.cname(c),
                            v.sql_literal(),
                            self.cname(n),
                            if desc { "DESC" } else { "ASC" }
                        ),
                    );
                }
            }
            for &n in nums.iter().take(3) {
                let nw = self.words(n);
                let nc = self.cname(n);
                let (hi, lo) = extremes(&nw);
                if let Some(th) = self.pick_threshold(n, rng) {
                    let ts = say(&th).unwrap_or_default();
                    for op in [">", "<"] {
                        let cond = self.condition(n, op, &ts, rng);
                        push(
                            if op == ">" {
                                "compare_gt"
                            } else {
                                "compare_lt"
                            },
                            Self::sentence(format!("{} of {many} {cond}", self.ask_for(&pw, rng))),
                            format!(
                                "SELECT {ssel} FROM {tn} WHERE {nc} {op} {}",
                                th.sql_literal()
                            ),
                        );
                    }
                    if let Some(th2) = self.pick_threshold(n, rng) {
                        let (a, b) = match (&th, &th2) {
                            (Value::Integer(x), Value::Integer(y)) if x < y => (th.clone(), th2),
                            (Value::Integer(x), Value::Integer(y)) if x > y => (th2, th.clone()),
                            _ => (th.clone(), th.clone()),
                        };
                        if a != b {
                            push(
                                "between",
                                Self::sentence(format!(
                                    "{} of {many} whose {nw} is between {} and {}",
                                    self.ask_for(&pw, rng),
                                    say(&a).unwrap_or_default(),
                                    say(&b).unwrap_or_default()
                                )),
                                format!(
                                    "SELECT {ssel} FROM {tn} WHERE {nc} BETWEEN {} AND {}",
                                    a.sql_literal(),
                                    b.sql_literal()
                                ),
                            );
                        }
                    }
                }
                let desc = rng.next().is_multiple_of(2);
                push(
                    "order",
                    Self::sentence(format!(
                        "{} of all {many}, {}",
                        self.ask_for(&pw, rng),
                        self.order_words(n, desc, rng)
                    )),
                    format!(
                        "SELECT {ssel} FROM {tn} ORDER BY {nc} {}",
                        if desc { "DESC" } else { "ASC" }
                    ),
                );
                for desc in [true, false] {
                    let word = if desc { hi } else { lo };
                    // One column or two: "What is the name" / "What are the name and age".
                    let (verb, what) = match second {
                        Some(o) => ("are", format!("{sw} and {}", self.words(o))),
                        None => ("is", sw.clone()),
                    };
                    let q = if matches!(word, "oldest" | "youngest") {
                        format!("What {verb} the {what} of the {word} {one}?")
                    } else {
                        format!("What {verb} the {what} of the {one} with the {word} {nw}?")
                    };
                    push(
                        "top1",
                        q,
                        format!(
                            "SELECT {ssel} FROM {tn} ORDER BY {nc} {} LIMIT 1",
                            if desc { "DESC" } else { "ASC" }
                        ),
                    );
                }
                let k = 2 + rng.next() % 4;
                let desc = !rng.next().is_multiple_of(3);
                push(
                    "top_k",
                    format!(
                        "Which {k} {many} have the {} {nw}? Show their {sw} and {nw}.",
                        if desc { hi } else { lo }
                    ),
                    format!(
                        "SELECT {sc}, {nc} FROM {tn} ORDER BY {nc} {} LIMIT {k}",
                        if desc { "DESC" } else { "ASC" }
                    ),
                );
                push(
                    "above_average",
                    format!(
                        "Which {many} have {} {nw} above the average {nw} of all {many}? Give their {pw}.",
                        article(&nw),
                    ),
                    format!("SELECT {ssel} FROM {tn} WHERE {nc} > (SELECT AVG({nc}) FROM {tn})"),
                );
                push(
                    "window_rank",
                    format!(
                        "Rank the {many} {}, showing each {one}'s {sw}, {nw} and rank.",
                        self.order_words(n, true, rng)
                    ),
                    format!(
                        "SELECT {sc}, {nc}, RANK() OVER (ORDER BY {nc} DESC) AS rank FROM {tn}"
                    ),
                );
                for &c in cats.iter().filter(|c| c.c != s.c).take(1) {
                    let cw = self.words(c);
                    let cc = self.cname(c);
                    push(
                        "correlated",
                        format!(
                            "Which {many} have {} {nw} above the average {nw} of {many} with the same {cw}? Give their {}.",
                            article(&nw),
                            plural(&sw)
                        ),
                        format!(
                            "SELECT T1.{sc} FROM {tn} AS T1 WHERE T1.{nc} > (SELECT AVG(T2.{nc}) FROM {tn} AS T2 WHERE T2.{cc} = T1.{cc})"
                        ),
                    );
                    push(
                        "window_partition",
                        format!(
                            "Rank the {many} within each {cw} {}, showing the {cw}, {sw} and rank.",
                            self.order_words(n, true, rng)
                        ),
                        format!(
                            "SELECT {cc}, {sc}, RANK() OVER (PARTITION BY {cc} ORDER BY {nc} DESC) AS rank FROM {tn}"
                        ),
                    );
                }
            }
            // LIKE on a word of a label's values.
            if let Some(word) = self.pick_value(s, rng).and_then(|v| match v {
                Value::Text(t) => t
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.chars().count() >= 4)
                    .map(str::to_string)
                    .next(),
                _ => None,
            }) {
                push(
                    "like",
                    Self::sentence(format!(
                        "{} of {many} whose {sw} contains \"{word}\"",
                        self.ask_for(&pw, rng)
                    )),
                    format!(
                        "SELECT {ssel} FROM {tn} WHERE {} '%{}%'",
                        self.like(s),
                        word.replace('\'', "''")
                    ),
                );
            }
        }
        for &ci in &p.codes {
            let c = Col { t, c: ci };
            push(
                "count_distinct",
                format!(
                    "How many different {} do {many} have?",
                    plural(&self.words(c))
                ),
                format!("SELECT COUNT(DISTINCT {}) FROM {tn}", self.cname(c)),
            );
        }
        for &c in &cats {
            let cw = self.words(c);
            let cc = self.cname(c);
            push(
                "distinct",
                Self::sentence(format!(
                    "{} of {many}",
                    self.ask_for(&format!("different {}", plural(&cw)), rng)
                )),
                format!("SELECT DISTINCT {cc} FROM {tn}"),
            );
            push(
                "count_distinct",
                format!("How many different {} do {many} have?", plural(&cw)),
                format!("SELECT COUNT(DISTINCT {cc}) FROM {tn}"),
            );
            if let Some(v) = self.pick_value(c, rng) {
                let vs = say(&v).unwrap_or_default();
                let cond = self.condition(c, "=", &vs, rng);
                push(
                    "count_filter",
                    format!("How many {many} are there {cond}?"),
                    format!("SELECT COUNT(*) FROM {tn} WHERE {cc} = {}", v.sql_literal()),
                );
                for &n in nums.iter().take(2) {
                    let nw = self.words(n);
                    let (agg, word) = [
                        ("AVG", "average"),
                        ("MAX", "maximum"),
                        ("MIN", "minimum"),
                        ("SUM", "total"),
                    ][(rng.next() % 4) as usize];
                    push(
                        "agg_filter",
                        format!("What is the {word} {nw} of {many} {cond}?"),
                        format!(
                            "SELECT {agg}({}) FROM {tn} WHERE {cc} = {}",
                            self.cname(n),
                            v.sql_literal()
                        ),
                    );
                }
            }
            push(
                "group_count",
                match rng.next() % 2 {
                    0 => format!("How many {many} are there for each {cw}?"),
                    _ => format!("Show each {cw} and the number of {many} with it."),
                },
                format!("SELECT {cc}, COUNT(*) FROM {tn} GROUP BY {cc}"),
            );
            push(
                "group_count_order",
                format!("List each {cw} with its number of {many}, from the most to the fewest."),
                format!("SELECT {cc}, COUNT(*) FROM {tn} GROUP BY {cc} ORDER BY COUNT(*) DESC"),
            );
            for desc in [true, false] {
                push(
                    "group_top",
                    format!(
                        "Which {cw} has the {} {many}?",
                        if desc { "most" } else { "fewest" }
                    ),
                    format!(
                        "SELECT {cc} FROM {tn} GROUP BY {cc} ORDER BY COUNT(*) {} LIMIT 1",
                        if desc { "DESC" } else { "ASC" }
                    ),
                );
            }
            if let Some(k) = self.median_group_size(c) {
                let rows = if k == 1 {
                    format!("one {one}")
                } else {
                    format!("{k} {many}")
                };
                push(
                    "having",
                    format!("Which {} have more than {rows}?", plural(&cw)),
                    format!("SELECT {cc} FROM {tn} GROUP BY {cc} HAVING COUNT(*) > {k}"),
                );
            }
            for &n in nums.iter().take(2) {
                let nw = self.words(n);
                let nc = self.cname(n);
                let (agg, word) = [
                    ("AVG", "average"),
                    ("MAX", "maximum"),
                    ("MIN", "minimum"),
                    ("SUM", "total"),
                ][(rng.next() % 4) as usize];
                push(
                    "group_agg",
                    format!("What is the {word} {nw} of {many} for each {cw}?"),
                    format!("SELECT {cc}, {agg}({nc}) FROM {tn} GROUP BY {cc}"),
                );
                if let Some(th) = self.pick_threshold(n, rng) {
                    let ts = say(&th).unwrap_or_default();
                    push(
                        "group_having_avg",
                        format!(
                            "Which {} have an average {nw} of {many} above {ts}?",
                            plural(&cw)
                        ),
                        format!(
                            "SELECT {cc} FROM {tn} GROUP BY {cc} HAVING AVG({nc}) > {}",
                            th.sql_literal()
                        ),
                    );
                    push(
                        "case",
                        format!(
                            "How many {many} have {} {nw} of at least {ts}, and how many have less?",
                            article(&nw)
                        ),
                        format!(
                            "SELECT CASE WHEN {nc} >= {lit} THEN 'at least {ts}' ELSE 'less than {ts}' END AS band, COUNT(*) FROM {tn} GROUP BY band",
                            lit = th.sql_literal()
                        ),
                    );
                }
                // Set operations over one category and a measure.
                if let (Some(a), Some(b)) =
                    (self.pick_threshold(n, rng), self.pick_threshold(n, rng))
                {
                    let (sa, sb) = (say(&a).unwrap_or_default(), say(&b).unwrap_or_default());
                    push(
                        "intersect",
                        format!(
                            "Which {} have both {many} with {} {nw} above {sa} and {many} with {} {nw} below {sb}?",
                            plural(&cw),
                            article(&nw),
                            article(&nw)
                        ),
                        format!(
                            "SELECT {cc} FROM {tn} WHERE {nc} > {} INTERSECT SELECT {cc} FROM {tn} WHERE {nc} < {}",
                            a.sql_literal(),
                            b.sql_literal()
                        ),
                    );
                    push(
                        "except",
                        format!(
                            "Which {} have no {many} with {} {nw} above {sa}?",
                            plural(&cw),
                            article(&nw)
                        ),
                        format!(
                            "SELECT {cc} FROM {tn} EXCEPT SELECT {cc} FROM {tn} WHERE {nc} > {}",
                            a.sql_literal()
                        ),
                    );
                }
            }
        }
        for &n in &nums {
            let nw = self.words(n);
            let nc = self.cname(n);
            let (hi, lo) = extremes(&nw);
            if let Some(th) = self.pick_threshold(n, rng) {
                let ts = say(&th).unwrap_or_default();
                let op = if rng.next().is_multiple_of(2) {
                    ">"
                } else {
                    "<"
                };
                push(
                    "count_compare",
                    format!(
                        "How many {many} are there {}?",
                        self.condition(n, op, &ts, rng)
                    ),
                    format!(
                        "SELECT COUNT(*) FROM {tn} WHERE {nc} {op} {}",
                        th.sql_literal()
                    ),
                );
                for &c in cats.iter().take(1) {
                    push(
                        "distinct_filter",
                        format!(
                            "Which different {} do {many} {} have?",
                            plural(&self.words(c)),
                            self.condition(n, ">", &ts, rng)
                        ),
                        format!(
                            "SELECT DISTINCT {} FROM {tn} WHERE {nc} > {}",
                            self.cname(c),
                            th.sql_literal()
                        ),
                    );
                }
            }
            if let Some(&s) = shows.first() {
                let sw = self.words(s);
                let desc = rng.next().is_multiple_of(2);
                let word = if desc { hi } else { lo };
                push(
                    "extreme_subquery",
                    if matches!(word, "oldest" | "youngest") {
                        format!("Which {one} is the {word}? Give the {sw}.")
                    } else {
                        format!("Which {one} has the {word} {nw}? Give the {sw}.")
                    },
                    format!(
                        "SELECT {} FROM {tn} WHERE {nc} = (SELECT {}({nc}) FROM {tn})",
                        self.cname(s),
                        if desc { "MAX" } else { "MIN" }
                    ),
                );
                if let (Some(&c), Some(th)) = (cats.first(), self.pick_threshold(n, rng))
                    && let Some(v) = self.pick_value(c, rng)
                {
                    let vs = say(&v).unwrap_or_default();
                    let ts = say(&th).unwrap_or_default();
                    push(
                        "union",
                        Self::sentence(format!(
                            "{} of {many} that are either {} or {}",
                            self.ask_for(&plural(&sw), rng),
                            self.condition(c, "=", &vs, rng)
                                .replacen("whose", "ones whose", 1),
                            self.condition(n, ">", &ts, rng)
                                .replacen("whose", "ones whose", 1)
                        )),
                        format!(
                            "SELECT {sc} FROM {tn} WHERE {} = {} UNION SELECT {sc} FROM {tn} WHERE {nc} > {}",
                            self.cname(c),
                            v.sql_literal(),
                            th.sql_literal(),
                            sc = self.cname(s)
                        ),
                    );
                }
            }
            let picks: &[(&str, &str)] = match rng.next() % 3 {
                0 => &[("MAX", "maximum"), ("MIN", "minimum"), ("AVG", "average")],
                1 => &[("AVG", "average")],
                _ => &[("SUM", "total")],
            };
            let words: Vec<&str> = picks.iter().map(|p| p.1).collect();
            let list = match words.as_slice() {
                [one] => one.to_string(),
                [a, b, c] => format!("{a}, {b} and {c}"),
                _ => words.join(", "),
            };
            push(
                "aggregate",
                format!(
                    "What {} the {list} {nw} of all {many}?",
                    if picks.len() > 1 { "are" } else { "is" }
                ),
                format!(
                    "SELECT {} FROM {tn}",
                    picks
                        .iter()
                        .map(|(f, _)| format!("{f}({nc})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        for &d in &p.dates {
            let col = Col { t, c: d };
            let dw = self.words(col);
            let dc = self.cname(col);
            push(
                "by_year",
                format!("How many {many} are there for each year of {dw}?"),
                format!(
                    "SELECT {} AS year, COUNT(*) FROM {tn} GROUP BY year",
                    self.year_of(col)
                ),
            );
            if let Some(Value::Text(v)) = self.pick_value(col, rng)
                && let Some(year) = v.get(..4)
                && let Some(&s) = shows.first()
            {
                push(
                    "in_year",
                    Self::sentence(format!(
                        "{} of {many} whose {dw} is in {year}",
                        self.ask_for(&plural(&self.words(s)), rng)
                    )),
                    format!(
                        "SELECT {} FROM {tn} WHERE {} = '{year}'",
                        self.cname(s),
                        self.year_of(col)
                    ),
                );
            }
            push(
                "latest",
                format!("What is the most recent {dw} of any {one}?"),
                format!("SELECT MAX({dc}) FROM {tn}"),
            );
        }
        // Missing values: counted, and filled in.
        let tbl = &self.schema.tables[t];
        for &ci in p
            .cats
            .iter()
            .chain(p.nums.iter())
            .chain(p.labels.iter())
            .take(4)
        {
            let col = Col { t, c: ci };
            if tbl.columns[ci].not_null {
                continue;
            }
            let w = self.words(col);
            let cc = self.cname(col);
            push(
                "is_null",
                format!("How many {many} have no {w} recorded?"),
                format!("SELECT COUNT(*) FROM {tn} WHERE {cc} IS NULL"),
            );
            if let Some(&s) = shows.iter().find(|s| s.c != ci) {
                push(
                    "coalesce",
                    format!(
                        "Show the {} and {w} of every {one}, with 'unknown' where the {w} is missing.",
                        self.words(s)
                    ),
                    format!(
                        "SELECT {}, COALESCE({cc}, 'unknown') FROM {tn}",
                        self.cname(s)
                    ),
                );
            }
        }
    }

    /// The median number of rows per value of a category (at least 1).
    fn median_group_size(&self, col: Col) -> Option<i64> {
        let sql = format!(
            "SELECT n FROM (SELECT COUNT(*) AS n FROM {t} GROUP BY {c}) AS counts ORDER BY n LIMIT 1 OFFSET (SELECT COUNT(DISTINCT {c}) FROM {t}) / 2",
            t = self.tname(col.t),
            c = self.cname(col)
        );
        match self.db.query(&sql).ok()?.rows.first()?.first()? {
            Value::Integer(i) => Some((*i).max(1)),
            _ => None,
        }
    }

    /// Pairs over one parent–child join.
    fn joined(&self, e: &Edge, rng: &mut Rng, push: &mut impl FnMut(&'static str, String, String)) {
        let (pt, ct) = (e.parent, e.child);
        let pp = &self.profile.tables[pt];
        let cp = &self.profile.tables[ct];
        let (pn, cn) = (self.tname(pt), self.tname(ct));
        let pk = self.cname(Col { t: pt, c: e.pk });
        let fk = self.cname(Col { t: ct, c: e.fk });
        let (pone, pmany, cone, cmany) = (self.one(pt), self.many(pt), self.one(ct), self.many(ct));
        let on = format!("T1.{pk} = T2.{fk}");
        let Some(&ps) = self.shows(pp).first() else {
            return;
        };
        let psw = self.words(ps);
        let psc = self.cname(ps);
        push(
            "join_count",
            format!(
                "How many {cmany} does each {pone} have? Show the {pone}'s {psw} and the count."
            ),
            format!(
                "SELECT T1.{psc}, COUNT(*) FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} GROUP BY T1.{pk}"
            ),
        );
        for desc in [true, false] {
            push(
                "join_top",
                format!(
                    "What is the {psw} of the {pone} with the {} {cmany}?",
                    if desc { "most" } else { "fewest" }
                ),
                format!(
                    "SELECT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} GROUP BY T1.{pk} ORDER BY COUNT(*) {} LIMIT 1",
                    if desc { "DESC" } else { "ASC" }
                ),
            );
        }
        if let Some(k) = self.children_median(e).map(|k| k.max(2)) {
            push(
                "join_having",
                format!(
                    "Which {pmany} have at least {k} {cmany}? Give their {}.",
                    plural(&psw)
                ),
                format!(
                    "SELECT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} GROUP BY T1.{pk} HAVING COUNT(*) >= {k}"
                ),
            );
        }
        push(
            "count_with_children",
            format!("How many {pmany} have at least one {cone}?"),
            format!("SELECT COUNT(DISTINCT T2.{fk}) FROM {pn} AS T1 JOIN {cn} AS T2 ON {on}"),
        );
        for &c in self.cats(pp).iter().take(1) {
            if let Some(v) = self.pick_value(c, rng) {
                let vs = say(&v).unwrap_or_default();
                push(
                    "join_count_filter",
                    format!(
                        "How many {cmany} belong to {pmany} {}?",
                        self.condition(c, "=", &vs, rng)
                    ),
                    format!(
                        "SELECT COUNT(*) FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} WHERE T1.{} = {}",
                        self.cname(c),
                        v.sql_literal()
                    ),
                );
            }
        }
        push(
            "not_in",
            format!(
                "Which {pmany} have no {cmany}? List their {}.",
                plural(&psw)
            ),
            format!("SELECT {psc} FROM {pn} WHERE {pk} NOT IN (SELECT {fk} FROM {cn})"),
        );
        push(
            "avg_children",
            format!("On average, how many {cmany} does each {pone} with any {cmany} have?"),
            format!("SELECT AVG(n) FROM (SELECT COUNT(*) AS n FROM {cn} GROUP BY {fk}) AS counts"),
        );
        push(
            "left_join",
            format!(
                "List every {pone}'s {psw} with its number of {cmany}, including those with none."
            ),
            format!(
                "SELECT T1.{psc}, COUNT(T2.{fk}) FROM {pn} AS T1 LEFT JOIN {cn} AS T2 ON {on} GROUP BY T1.{pk}"
            ),
        );
        // Child rows with their parent's label.
        if let Some(&cs) = self.shows(cp).first() {
            let csw = self.words(cs);
            let csc = self.cname(cs);
            push(
                "join_list",
                format!("Show the {csw} of each {cone} and the {psw} of its {pone}."),
                format!("SELECT T2.{csc}, T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on}"),
            );
            for &c in self.cats(pp).iter().take(2) {
                if let Some(v) = self.pick_value(c, rng) {
                    let vs = say(&v).unwrap_or_default();
                    let cw = self.words(c);
                    push(
                        "join_filter_parent",
                        Self::sentence(format!(
                            "{} of {cmany} whose {pone}'s {cw} is {vs}",
                            self.ask_for(&plural(&csw), rng)
                        )),
                        format!(
                            "SELECT T2.{csc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} WHERE T1.{} = {}",
                            self.cname(c),
                            v.sql_literal()
                        ),
                    );
                }
            }
        }
        for &c in self.cats(cp).iter().take(2) {
            let Some(v) = self.pick_value(c, rng) else {
                continue;
            };
            let vs = say(&v).unwrap_or_default();
            let cond = self.condition(c, "=", &vs, rng);
            push(
                "join_filter_child",
                Self::sentence(format!(
                    "{} of {pmany} that have {} {cone} {cond}",
                    self.ask_for(&plural(&psw), rng),
                    article(&cone)
                )),
                format!(
                    "SELECT DISTINCT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} WHERE T2.{} = {}",
                    self.cname(c),
                    v.sql_literal()
                ),
            );
            push(
                "in_subquery",
                Self::sentence(format!(
                    "{} of {pmany} with no {cone} {cond}",
                    self.ask_for(&plural(&psw), rng)
                )),
                format!(
                    "SELECT {psc} FROM {pn} WHERE {pk} NOT IN (SELECT {fk} FROM {cn} WHERE {} = {})",
                    self.cname(c),
                    v.sql_literal()
                ),
            );
            push(
                "except_join",
                Self::sentence(format!(
                    "{} of {pmany} that have {cmany} but none {cond}",
                    self.ask_for(&plural(&psw), rng)
                )),
                format!(
                    "SELECT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} EXCEPT SELECT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} WHERE T2.{} = {}",
                    self.cname(c),
                    v.sql_literal()
                ),
            );
        }
        for &n in self.nums(cp).iter().take(2) {
            let nw = self.words(n);
            let nc = self.cname(n);
            let (agg, word) = [("SUM", "total"), ("AVG", "average"), ("MAX", "maximum")]
                [(rng.next() % 3) as usize];
            push(
                "join_agg",
                format!(
                    "What is the {word} {nw} of {cmany} for each {pone}? Show the {pone}'s {psw}."
                ),
                format!(
                    "SELECT T1.{psc}, {agg}(T2.{nc}) FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} GROUP BY T1.{pk}"
                ),
            );
            let desc = rng.next().is_multiple_of(2);
            let (hi, lo) = extremes(&nw);
            push(
                "join_top_avg",
                format!(
                    "Which {pone} has the {} average {nw} of its {cmany}? Give its {psw}.",
                    if desc { "highest" } else { "lowest" }
                ),
                format!(
                    "SELECT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} GROUP BY T1.{pk} ORDER BY AVG(T2.{nc}) {} LIMIT 1",
                    if desc { "DESC" } else { "ASC" }
                ),
            );
            let word = if desc { hi } else { lo };
            let q = if matches!(word, "oldest" | "youngest") {
                format!("What is the {psw} of the {pone} of the {word} {cone}?")
            } else {
                format!("What is the {psw} of the {pone} of the {cone} with the {word} {nw}?")
            };
            push(
                "join_top1",
                q,
                format!(
                    "SELECT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} ORDER BY T2.{nc} {} LIMIT 1",
                    if desc { "DESC" } else { "ASC" }
                ),
            );
            if let Some(th) = self.pick_threshold(n, rng) {
                let ts = say(&th).unwrap_or_default();
                push(
                    "join_compare",
                    Self::sentence(format!(
                        "{} of {pmany} that have {} {cone} {}",
                        self.ask_for(&plural(&psw), rng),
                        article(&cone),
                        self.condition(n, ">", &ts, rng)
                    )),
                    format!(
                        "SELECT DISTINCT T1.{psc} FROM {pn} AS T1 JOIN {cn} AS T2 ON {on} WHERE T2.{nc} > {}",
                        th.sql_literal()
                    ),
                );
                push(
                    "nested_in",
                    Self::sentence(format!(
                        "{} of {pmany} whose {cmany} all have {} {nw} of at most {ts}",
                        self.ask_for(&plural(&psw), rng),
                        article(&nw)
                    )),
                    format!(
                        "SELECT {psc} FROM {pn} WHERE {pk} IN (SELECT {fk} FROM {cn}) AND {pk} NOT IN (SELECT {fk} FROM {cn} WHERE {nc} > {})",
                        th.sql_literal()
                    ),
                );
            }
        }
        for &n in self.nums(pp).iter().take(1) {
            let nw = self.words(n);
            push(
                "join_parent_measure",
                format!("What is the average {nw} of {pmany} that have at least one {cone}?"),
                format!(
                    "SELECT AVG({nc}) FROM {pn} WHERE {pk} IN (SELECT {fk} FROM {cn})",
                    nc = self.cname(n)
                ),
            );
        }
    }

    fn children_median(&self, e: &Edge) -> Option<i64> {
        let fk = self.cname(Col {
            t: e.child,
            c: e.fk,
        });
        let cn = self.tname(e.child);
        let sql = format!(
            "SELECT n FROM (SELECT COUNT(*) AS n FROM {cn} GROUP BY {fk}) AS counts ORDER BY n LIMIT 1 OFFSET (SELECT COUNT(DISTINCT {fk}) FROM {cn}) / 2"
        );
        match self.db.query(&sql).ok()?.rows.first()?.first()? {
            Value::Integer(i) => Some((*i).max(1)),
            _ => None,
        }
    }

    /// Pairs across a bridge table: rows of `a.parent` linked to rows of `b.parent`.
    fn bridged(
        &self,
        bridge: usize,
        a: &Edge,
        b: &Edge,
        rng: &mut Rng,
        push: &mut impl FnMut(&'static str, String, String),
    ) {
        let (at, bt) = (a.parent, b.parent);
        if at == bt {
            return;
        }
        let ap = &self.profile.tables[at];
        let bp = &self.profile.tables[bt];
        let Some(&asw) = self.shows(ap).first() else {
            return;
        };
        let (an, bn, xn) = (self.tname(at), self.tname(bt), self.tname(bridge));
        let apk = self.cname(Col { t: at, c: a.pk });
        let bpk = self.cname(Col { t: bt, c: b.pk });
        let afk = self.cname(Col { t: bridge, c: a.fk });
        let bfk = self.cname(Col { t: bridge, c: b.fk });
        let (aone, amany, bone, bmany) = (self.one(at), self.many(at), self.one(bt), self.many(bt));
        let aw = self.words(asw);
        let ac = self.cname(asw);
        let joins = format!(
            "FROM {an} AS T1 JOIN {xn} AS T2 ON T1.{apk} = T2.{afk} JOIN {bn} AS T3 ON T2.{bfk} = T3.{bpk}"
        );
        push(
            "bridge_count",
            format!(
                "How many {bmany} does each {aone} have? Show the {aone}'s {aw} and the count."
            ),
            format!("SELECT T1.{ac}, COUNT(*) {joins} GROUP BY T1.{apk}"),
        );
        push(
            "bridge_top",
            format!("What is the {aw} of the {aone} with the most {bmany}?"),
            format!("SELECT T1.{ac} {joins} GROUP BY T1.{apk} ORDER BY COUNT(*) DESC LIMIT 1"),
        );
        for &c in self.cats(bp).iter().take(2) {
            let Some(v) = self.pick_value(c, rng) else {
                continue;
            };
            let vs = say(&v).unwrap_or_default();
            let cond = self.condition(c, "=", &vs, rng);
            push(
                "bridge_filter",
                Self::sentence(format!(
                    "{} of {amany} that have {} {bone} {cond}",
                    self.ask_for(&plural(&aw), rng),
                    article(&bone)
                )),
                format!(
                    "SELECT DISTINCT T1.{ac} {joins} WHERE T3.{} = {}",
                    self.cname(c),
                    v.sql_literal()
                ),
            );
        }
        for &n in self.nums(bp).iter().take(1) {
            if let Some(th) = self.pick_threshold(n, rng) {
                let ts = say(&th).unwrap_or_default();
                push(
                    "bridge_compare",
                    Self::sentence(format!(
                        "{} of {amany} that have {} {bone} {}",
                        self.ask_for(&plural(&aw), rng),
                        article(&bone),
                        self.condition(n, ">", &ts, rng)
                    )),
                    format!(
                        "SELECT DISTINCT T1.{ac} {joins} WHERE T3.{} > {}",
                        self.cname(n),
                        th.sql_literal()
                    ),
                );
            }
        }
        let bcats = self.cats(bp);
        if let Some(&c) = bcats.first()
            && let (Some(v1), Some(v2)) = (self.pick_value(c, rng), self.pick_value(c, rng))
            && v1 != v2
        {
            let cw = self.words(c);
            push(
                "bridge_intersect",
                Self::sentence(format!(
                    "{} of {amany} that have both {} {bone} whose {cw} is {} and one whose {cw} is {}",
                    self.ask_for(&plural(&aw), rng),
                    article(&bone),
                    say(&v1).unwrap_or_default(),
                    say(&v2).unwrap_or_default()
                )),
                format!(
                    "SELECT T1.{ac} {joins} WHERE T3.{cc} = {} INTERSECT SELECT T1.{ac} {joins} WHERE T3.{cc} = {}",
                    v1.sql_literal(),
                    v2.sql_literal(),
                    cc = self.cname(c)
                ),
            );
        }
        for &n in self.nums(bp).iter().take(1) {
            let nw = self.words(n);
            push(
                "bridge_agg",
                format!(
                    "What is the average {nw} of the {bmany} of each {aone}? Show the {aone}'s {aw}."
                ),
                format!(
                    "SELECT T1.{ac}, AVG(T3.{}) {joins} GROUP BY T1.{apk}",
                    self.cname(n)
                ),
            );
        }
        push(
            "bridge_distinct_count",
            format!("How many different {bmany} do the {amany} have in all?"),
            format!("SELECT COUNT(DISTINCT T2.{bfk}) {joins}"),
        );
        push(
            "bridge_none",
            format!("Which {amany} have no {bmany}? Give their {}.", plural(&aw)),
            format!("SELECT {ac} FROM {an} WHERE {apk} NOT IN (SELECT {afk} FROM {xn})"),
        );
    }
}

/// Whether a result says something: rows, not all NULL, and not a lone zero count.
pub fn worth_keeping(rows: &[Vec<Value>]) -> bool {
    if rows.is_empty() || !rows.iter().any(|r| r.iter().any(|v| !v.is_null())) {
        return false;
    }
    !(rows.len() == 1 && rows[0].len() == 1 && matches!(rows[0][0], Value::Integer(0)))
}
