//! The agreement check: whether a question and its SQL say the same thing. The SQL is read
//! into a [`Reading`] (tables, filter literals, orders, limits, aggregates) and compared with
//! the question's words on four points: direction ("largest" over an ascending order),
//! values (a filter the question does not name, a quoted value or a number the SQL does not
//! use), aggregate ("average" over a SUM) and table (a question about concerts over the singer
//! table). Each point flags only what is clear, so ordinary well-formed pairs pass; the false
//! positives on real benchmark pairs and the catch rate of planted mismatches are measured by
//! `tests/agreement.rs`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, LimitClause, OrderByKind, OrderBySort,
    Query, Select, SelectItem, SetExpr, UnaryOperator, Value as AstValue, Visit, Visitor,
};

use crate::sql::SqlDialect;
use crate::sql::analyze::{
    analyze_query, function_args, function_name, is_aggregate_call, parse_query_in,
};
use crate::sql::schema::Schema;
use crate::synth::names::{Names, singular, split_words};

/// Why `question` and `sql` disagree, in words (empty when they agree, or when the SQL cannot
/// be parsed: validation says that).
pub fn check(question: &str, sql: &str, schema: &Schema, names: &Names) -> Vec<String> {
    check_with(question, sql, schema, names, &Conventions::default())
}

/// Filter values a project's queries use without their questions naming them: a house rule
/// such as `status = 'completed'` for revenue, learnt from the gold pairs that filter on a
/// value their question does not name, or written in the glossary. A generated pair that
/// follows the rule is not flagged for it.
#[derive(Debug, Clone, Default)]
pub struct Conventions {
    values: BTreeSet<String>,
    glossary: String,
}

impl Conventions {
    pub fn learn<'a>(
        schema: &Schema,
        glossary_text: &str,
        gold: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Conventions {
        let mut values = BTreeSet::new();
        for (question, sql) in gold {
            let Some(reading) = Reading::of(sql, schema) else {
                continue;
            };
            let q = Question::new(question, &reading);
            for f in &reading.filters {
                if let Literal::Text(v) = f
                    && !names_value(&q, v)
                {
                    values.insert(plain(v));
                }
            }
        }
        Conventions {
            values,
            glossary: format!(" {} ", plain(glossary_text)),
        }
    }

    fn covers(&self, value: &str) -> bool {
        let v = plain(value);
        !v.is_empty() && (self.values.contains(&v) || self.glossary.contains(&format!(" {v} ")))
    }
}

/// The words and house rules the check needs for a schema, its glossary and its gold pairs
/// (`(question, sql)`), built once per run.
pub fn setup<'a>(
    schema: &Schema,
    glossary: &[crate::project::GlossaryEntry],
    gold: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (Names, Conventions) {
    let conventions = Conventions::learn(schema, &crate::project::format_glossary(glossary), gold);
    (Names::new(schema, glossary), conventions)
}

/// [`check`] for a project whose house rules are `conventions`.
pub fn check_with(
    question: &str,
    sql: &str,
    schema: &Schema,
    names: &Names,
    conventions: &Conventions,
) -> Vec<String> {
    let Some(reading) = Reading::of(sql, schema) else {
        return Vec::new();
    };
    let q = Question::new(question, &reading);
    let mut reasons = Vec::new();
    direction(&q, &reading, schema, &mut reasons);
    values(&q, &reading, schema, names, conventions, &mut reasons);
    aggregates(&q, &reading, &mut reasons);
    tables(&q, &reading, schema, names, &mut reasons);
    reasons
}

// ---------------------------------------------------------------------------------------------
// What the SQL does

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Agg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Agg {
    fn from_name(name: &str) -> Option<Agg> {
        Some(match name {
            "count" => Agg::Count,
            "sum" | "total" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            Agg::Count => "COUNT",
            Agg::Sum => "SUM",
            Agg::Avg => "AVG",
            Agg::Min => "MIN",
            Agg::Max => "MAX",
        }
    }
}

/// A literal a WHERE, HAVING or ON comparison tests against.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    /// A string (a LIKE pattern without its wildcards).
    Text(String),
    Number(f64),
}

/// One ORDER BY's first key.
#[derive(Debug, Clone)]
struct Order {
    desc: bool,
    /// The ordered expression's text, lower-cased (an aggregate's argument for aggregates).
    key: String,
    limited: bool,
    /// In the outermost query.
    top: bool,
}

/// The canonical description of a query that the question is compared with.
#[derive(Debug, Clone, Default)]
struct Reading {
    /// Real tables read anywhere, lower-cased.
    tables: BTreeSet<String>,
    /// Columns referenced anywhere, as (table, column) lower-cased.
    columns: BTreeSet<(String, String)>,
    filters: Vec<Literal>,
    /// Every number literal anywhere (LIMIT included).
    numbers: Vec<f64>,
    /// The SQL text, lower-cased.
    text: String,
    /// Every ORDER BY, outermost first.
    orders: Vec<Order>,
    /// Every aggregate anywhere, with its argument's text lower-cased.
    aggs: Vec<(Agg, String)>,
    /// Aggregates of the outermost SELECT list.
    top_aggs: BTreeSet<Agg>,
    /// Words of the names of the columns the SQL reads (`Highest`, `max_speed`,
    /// `Total_spent`): in the question they name a column, not a direction or an aggregate.
    column_words: BTreeSet<String>,
}

impl Reading {
    fn of(sql: &str, schema: &Schema) -> Option<Reading> {
        let query = parse_query_in(sql, SqlDialect::of(schema)).ok()?;
        let analysis = analyze_query(&query, sql, Some(schema));
        let mut collector = Collector {
            schema,
            reading: Reading {
                tables: analysis.tables.iter().map(|t| t.to_lowercase()).collect(),
                columns: analysis
                    .columns
                    .iter()
                    .filter_map(|c| c.split_once('.'))
                    .filter(|(t, _)| *t != "?")
                    .map(|(t, c)| (t.to_lowercase(), c.to_lowercase()))
                    .collect(),
                text: sql.to_lowercase(),
                column_words: analysis
                    .columns
                    .iter()
                    .flat_map(|c| split_words(c.rsplit('.').next().unwrap_or(c)))
                    .collect(),
                ..Reading::default()
            },
            depth: 0,
        };
        let _ = query.visit(&mut collector);
        let mut reading = collector.reading;
        reading.top_aggs = top_aggregates(&query);
        Some(reading)
    }

    fn has(&self, agg: Agg) -> bool {
        self.aggs.iter().any(|(a, _)| *a == agg)
    }

    fn top_limited_order(&self) -> Option<&Order> {
        self.orders.iter().find(|o| o.top && o.limited)
    }
}

struct Collector<'s> {
    schema: &'s Schema,
    reading: Reading,
    depth: usize,
}

impl Visitor for Collector<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        if let Some(order_by) = &query.order_by
            && let OrderByKind::Expressions(exprs) = &order_by.kind
            && let Some(first) = exprs.first()
        {
            let key = match &first.expr {
                Expr::Function(f) if is_aggregate_call(f) => args_text(f),
                other => other.to_string().to_lowercase(),
            };
            self.reading.orders.push(Order {
                desc: matches!(first.options.sort, Some(OrderBySort::Desc)),
                key,
                limited: matches!(
                    &query.limit_clause,
                    Some(LimitClause::LimitOffset { limit: Some(_), .. })
                        | Some(LimitClause::OffsetCommaLimit { .. })
                ),
                top: self.depth == 1,
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &sqlparser::ast::ValueWithSpan) -> ControlFlow<()> {
        if let AstValue::Number(n, _) = &value.value
            && let Ok(x) = n.parse::<f64>()
        {
            self.reading.numbers.push(x);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        // Filters are what WHERE and HAVING test; a CASE in the SELECT list is not one.
        for e in select.selection.iter().chain(&select.having) {
            filter_literals(e, self.schema, &mut self.reading.filters);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr
            && is_aggregate_call(f)
            && let Some(a) = Agg::from_name(&function_name(&f.name))
        {
            self.reading.aggs.push((a, args_text(f)));
        }
        ControlFlow::Continue(())
    }
}

/// The literals a condition compares with, through AND, OR, NOT and parentheses (a
/// subquery's own conditions are its SELECT's).
fn filter_literals(e: &Expr, schema: &Schema, out: &mut Vec<Literal>) {
    match e {
        Expr::BinaryOp { left, op, right } if is_comparison(op) => {
            out.extend([left, right].into_iter().filter_map(|e| literal(e, schema)));
        }
        Expr::BinaryOp { left, right, .. } => {
            filter_literals(left, schema, out);
            filter_literals(right, schema, out);
        }
        Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => {
            filter_literals(inner, schema, out)
        }
        Expr::InList { list, .. } => {
            out.extend(list.iter().filter_map(|e| literal(e, schema)));
        }
        Expr::Between { low, high, .. } => {
            out.extend([low, high].into_iter().filter_map(|e| literal(e, schema)));
        }
        Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } => {
            if let Some(Literal::Text(p)) = literal(pattern, schema) {
                let words = p.replace(['%', '_'], " ").trim().to_string();
                if !words.is_empty() {
                    out.push(Literal::Text(words));
                }
            }
        }
        _ => {}
    }
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

/// A literal side of a comparison. SQLite reads a double-quoted word that names no column as
/// a string, and Spider's SQL writes strings that way.
fn literal(e: &Expr, schema: &Schema) -> Option<Literal> {
    match e {
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => n.parse().ok().map(Literal::Number),
            AstValue::SingleQuotedString(s) | AstValue::DoubleQuotedString(s) => {
                Some(Literal::Text(s.clone()))
            }
            _ => None,
        },
        Expr::Identifier(ident) if ident.quote_style == Some('"') => {
            let is_column = schema
                .tables
                .iter()
                .any(|t| t.column(&ident.value).is_some());
            (!is_column).then(|| Literal::Text(ident.value.clone()))
        }
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr, schema)? {
            Literal::Number(x) => Some(Literal::Number(-x)),
            Literal::Text(_) => None,
        },
        Expr::Nested(inner) => literal(inner, schema),
        _ => None,
    }
}

fn args_text(f: &sqlparser::ast::Function) -> String {
    function_args(f)
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => e.to_string(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
        .to_lowercase()
}

/// The aggregates of the outermost SELECT list (not of its subqueries).
fn top_aggregates(query: &Query) -> BTreeSet<Agg> {
    struct Top {
        depth: usize,
        aggs: BTreeSet<Agg>,
    }
    impl Visitor for Top {
        type Break = ();
        fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Function(f) = e
                && is_aggregate_call(f)
                && let Some(a) = Agg::from_name(&function_name(&f.name))
            {
                self.aggs.insert(a);
            }
            ControlFlow::Continue(())
        }
    }
    let mut body = &*query.body;
    loop {
        match body {
            SetExpr::Query(q) => body = &q.body,
            SetExpr::SetOperation { left, .. } => body = left,
            _ => break,
        }
    }
    let mut top = Top {
        depth: 0,
        aggs: BTreeSet::new(),
    };
    if let SetExpr::Select(select) = body {
        for item in &select.projection {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                let _ = e.visit(&mut top);
            }
        }
    }
    top.aggs
}

// ---------------------------------------------------------------------------------------------
// What the question says

struct Question {
    /// Lower-cased words, as written.
    words: Vec<String>,
    /// The same words in the singular.
    stems: Vec<String>,
    /// The text lower-cased with punctuation as spaces, padded with a space each side.
    plain: String,
    /// Numbers written as digits (`1,000` is 1000).
    digits: Vec<f64>,
    /// Numbers written as digits or words.
    numbers: Vec<f64>,
    /// Values in double quotes, or in single quotes that are not apostrophes.
    quoted: Vec<String>,
    /// Words of the names of the columns the SQL reads.
    name_words: BTreeSet<String>,
}

const NUMBER_WORDS: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("hundred", 100.0),
    ("thousand", 1000.0),
    ("million", 1_000_000.0),
    ("once", 1.0),
    ("twice", 2.0),
    ("single", 1.0),
    ("both", 2.0),
    ("dozen", 12.0),
];

impl Question {
    fn new(text: &str, reading: &Reading) -> Question {
        let lower = text.to_lowercase();
        let words: Vec<String> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let stems = words.iter().map(|w| singular(w)).collect();
        let plain = format!(" {} ", words.join(" "));
        let digits = digit_numbers(text);
        let mut numbers = digits.clone();
        for (i, w) in words.iter().enumerate() {
            if let Some((_, x)) = NUMBER_WORDS.iter().find(|(n, _)| n == w) {
                numbers.push(*x);
            }
            // "3 million", "two thousand"
            let scale = match w.as_str() {
                "thousand" => 1000.0,
                "million" | "millions" => 1_000_000.0,
                "billion" => 1_000_000_000.0,
                _ => continue,
            };
            if i > 0 {
                let before = &words[i - 1];
                if let Ok(x) = before.parse::<f64>() {
                    numbers.push(x * scale);
                }
                if let Some((_, x)) = NUMBER_WORDS.iter().find(|(n, _)| n == before) {
                    numbers.push(x * scale);
                }
            }
        }
        let name_words = reading.column_words.clone();
        Question {
            words,
            stems,
            plain,
            digits,
            numbers,
            quoted: quoted_values(text),
            name_words,
        }
    }

    /// Whether the question says `phrase` (its words in a row, singular or plural).
    fn says(&self, phrase: &str) -> bool {
        let want: Vec<String> = phrase
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(singular)
            .collect();
        !want.is_empty()
            && self
                .stems
                .windows(want.len())
                .any(|w| w.iter().zip(&want).all(|(a, b)| a == b))
    }

    fn has_word(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    fn has_phrase(&self, phrase: &str) -> bool {
        self.plain.contains(&format!(" {phrase} "))
    }
}

/// Numbers written with digits, commas between thousands ignored; a number joined to letters
/// (`1st`, `3D`) is not one, except a decade (`1990s`).
fn digit_numbers(text: &str) -> Vec<f64> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_alphanumeric()) {
            i += 1;
            continue;
        }
        let mut s = String::new();
        while i < chars.len() {
            let c = chars[i];
            let next_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if c.is_ascii_digit() {
                s.push(c);
            } else if c == ',' && next_digit {
            } else if c == '.' && next_digit {
                s.push(c);
            } else {
                break;
            }
            i += 1;
        }
        let joined = chars.get(i).is_some_and(|c| c.is_alphabetic());
        let decade =
            chars.get(i) == Some(&'s') && !chars.get(i + 1).is_some_and(|c| c.is_alphanumeric());
        if (!joined || decade)
            && let Ok(x) = s.parse()
        {
            out.push(x);
        }
        i += 1;
    }
    out
}

/// Values in double quotes, or in single quotes that open after a space and close before one
/// (so "singer's" and "students' names" are not quotes).
fn quoted_values(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let q = chars[i];
        let opens = (q == '"' || q == '\'' || q == '“' || q == '‘')
            && (i == 0 || !chars[i - 1].is_alphanumeric());
        if !opens {
            i += 1;
            continue;
        }
        let close = match q {
            '“' => '”',
            '‘' => '’',
            other => other,
        };
        let end = (i + 1..chars.len())
            .find(|&j| chars[j] == close && !chars.get(j + 1).is_some_and(|c| c.is_alphanumeric()));
        match end {
            Some(j) if j > i + 1 && j - i <= 80 => {
                out.push(
                    chars[i + 1..j]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_string(),
                );
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

/// Lower-cased alphanumeric words joined by single spaces.
fn plain(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Direction

/// Which way a question word points for an ordered expression: `Some(true)` for high first
/// (descending, MAX), `Some(false)` for low first, `None` when it is no direction word here.
fn word_direction(words: &[String], i: usize, time_key: bool) -> Option<bool> {
    let w = words[i].as_str();
    let prev = i.checked_sub(1).map(|p| words[p].as_str());
    let next = words.get(i + 1).map(String::as_str);
    match w {
        "highest" | "largest" | "biggest" | "greatest" | "maximum" | "max" | "top"
        | "descending" | "decreasing" | "longest" | "tallest" | "heaviest" | "richest" | "best" => {
            Some(true)
        }
        "most" if prev == Some("at") || next == Some("recent") || next == Some("recently") => None,
        "most" => Some(true),
        "lowest" | "smallest" | "fewest" | "minimum" | "min" | "bottom" | "ascending"
        | "increasing" | "shortest" | "cheapest" | "lightest" | "poorest" | "worst" => Some(false),
        "least" if prev == Some("at") => None,
        "least" => Some(false),
        "alphabetical" | "alphabetically" | "lexicographic" | "lexicographical" => {
            Some(prev == Some("reverse"))
        }
        // An earlier date is an older thing; a higher age is an older one.
        "oldest" | "eldest" => Some(!time_key),
        "youngest" => Some(time_key),
        "earliest" => time_key.then_some(false),
        "latest" | "newest" | "recent" | "recently" => time_key.then_some(true),
        "last" if next != Some("name") && next != Some("names") => time_key.then_some(true),
        _ => None,
    }
}

/// The first direction word of the question for this key: (high first, the word).
fn question_direction(q: &Question, time_key: bool) -> Option<(bool, String)> {
    (0..q.words.len()).find_map(|i| {
        let w = &q.words[i];
        // A word of a column's name the SQL reads ("Highest", "max_speed") is a name here.
        if q.name_words.contains(w) {
            return None;
        }
        word_direction(&q.words, i, time_key).map(|d| (d, w.clone()))
    })
}

/// Whether an ordered expression is a date or a year, where "oldest" means earliest.
fn is_time(key: &str, schema: &Schema) -> bool {
    let words = split_words(key);
    let named = words.iter().any(|w| {
        matches!(
            w.as_str(),
            "year"
                | "date"
                | "time"
                | "day"
                | "born"
                | "birth"
                | "founded"
                | "established"
                | "opened"
                | "opening"
                | "start"
                | "since"
                | "joined"
                | "created"
                | "dob"
        )
    });
    named
        || words.iter().any(|w| {
            schema.tables.iter().any(|t| {
                t.column(w).is_some_and(|c| {
                    let ty = c.decl_type.to_lowercase();
                    ty.contains("date") || ty.contains("time")
                })
            })
        })
}

fn direction(q: &Question, r: &Reading, schema: &Schema, reasons: &mut Vec<String>) {
    // "order" alone is as often a table ("order items") as a sorting.
    let sort_words = [
        "ordered",
        "sort",
        "sorted",
        "descending",
        "ascending",
        "decreasing",
        "increasing",
        "alphabetical",
        "alphabetically",
        "ranked",
    ];
    let has_max = r.has(Agg::Max);
    let has_min = r.has(Agg::Min);
    let say = |high: bool| if high { "descending" } else { "ascending" };
    // The SQL's one clear direction: an outer ORDER BY … LIMIT, else MAX or MIN (not both),
    // else a subquery's ORDER BY … LIMIT, else an outer ORDER BY when the question speaks of
    // an order.
    if let Some(o) = r.top_limited_order() {
        if let Some((high, word)) = question_direction(q, is_time(&o.key, schema))
            && high != o.desc
        {
            reasons.push(format!("question says {word}, SQL orders {}", say(o.desc)));
        }
        return;
    }
    if has_max != has_min {
        let (agg, key) = r
            .aggs
            .iter()
            .find(|(a, _)| matches!(a, Agg::Max | Agg::Min))
            .expect("a MAX or a MIN");
        if let Some((high, word)) = question_direction(q, is_time(key, schema))
            && high != (*agg == Agg::Max)
        {
            reasons.push(format!("question says {word}, SQL computes {}", agg.sql()));
        }
        return;
    }
    if has_max && has_min {
        // "maximum and minimum": the question must say both ways.
        let said: Vec<(bool, String)> = (0..q.words.len())
            .filter(|&i| !q.name_words.contains(&q.words[i]))
            .filter_map(|i| word_direction(&q.words, i, false).map(|d| (d, q.words[i].clone())))
            .collect();
        if let Some((high, word)) = said.first()
            && said.iter().all(|(h, _)| h == high)
        {
            let missing = if *high { Agg::Min } else { Agg::Max };
            reasons.push(format!(
                "question says {word}, SQL computes {}",
                missing.sql()
            ));
        }
        return;
    }
    let order = r.orders.iter().find(|o| o.limited).or_else(|| {
        r.orders
            .iter()
            .find(|o| o.top && sort_words.iter().any(|w| q.has_word(w)))
    });
    if let Some(o) = order
        && let Some((high, word)) = question_direction(q, is_time(&o.key, schema))
        && high != o.desc
    {
        reasons.push(format!("question says {word}, SQL orders {}", say(o.desc)));
    }
}

// ---------------------------------------------------------------------------------------------
// Values

fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * a.abs().max(1.0)
}

/// Countries and the adjectives questions name them by.
const DEMONYMS: &[(&str, &str)] = &[
    ("france", "french"),
    ("germany", "german"),
    ("netherlands", "dutch"),
    ("spain", "spanish"),
    ("italy", "italian"),
    ("england", "english"),
    ("united kingdom", "british"),
    ("united states", "american"),
    ("usa", "american"),
    ("canada", "canadian"),
    ("china", "chinese"),
    ("japan", "japanese"),
    ("korea", "korean"),
    ("russia", "russian"),
    ("australia", "australian"),
    ("brazil", "brazilian"),
    ("mexico", "mexican"),
    ("india", "indian"),
    ("ireland", "irish"),
    ("scotland", "scottish"),
    ("sweden", "swedish"),
    ("norway", "norwegian"),
    ("denmark", "danish"),
    ("finland", "finnish"),
    ("poland", "polish"),
    ("portugal", "portuguese"),
    ("greece", "greek"),
    ("turkey", "turkish"),
    ("argentina", "argentinian"),
    ("switzerland", "swiss"),
    ("belgium", "belgian"),
    ("austria", "austrian"),
];

/// Whether the question names a filter's text value.
fn names_value(q: &Question, value: &str) -> bool {
    let v = plain(value);
    if v.is_empty() {
        return true;
    }
    // A one- or two-letter code (`F`, `M`, `Y`) stands for a word it begins.
    if v.len() <= 2 && !v.contains(' ') {
        return q.words.iter().any(|w| w.starts_with(&v));
    }
    if q.plain.contains(&v) || q.plain.contains(&plain(&singular(&v))) {
        return true;
    }
    // A country named by its people: 'France' in "French singers".
    if let Some((_, demonym)) = DEMONYMS.iter().find(|(c, _)| *c == v)
        && q.words.iter().any(|w| w == demonym)
    {
        return true;
    }
    // A date named by its year: '2008-05-01' in "in 2008".
    let year = value
        .split(|c: char| !c.is_ascii_digit())
        .find(|p| p.len() == 4)
        .and_then(|p| p.parse::<f64>().ok());
    if let Some(y) = year
        && value.chars().filter(|c| c.is_alphabetic()).count() == 0
        && q.digits.iter().any(|d| same_number(*d, y))
    {
        return true;
    }
    // Every word of a multi-word value, in any order ("Paris, France" as "France's Paris"),
    // a web suffix aside ('@gmail.com' as "a gmail address").
    let words: Vec<&str> = v
        .split(' ')
        .filter(|w| !matches!(*w, "com" | "org" | "net" | "edu" | "www"))
        .collect();
    !words.is_empty() && (v.contains(' ')) && words.iter().all(|w| q.says(w))
}

fn values(
    q: &Question,
    r: &Reading,
    schema: &Schema,
    names: &Names,
    conventions: &Conventions,
    reasons: &mut Vec<String>,
) {
    let mut said = BTreeSet::new();
    for f in &r.filters {
        match f {
            Literal::Text(s) => {
                if !names_value(q, s) && !conventions.covers(s) && said.insert(s.to_lowercase()) {
                    reasons.push(format!(
                        "SQL filters on '{s}', which the question does not name"
                    ));
                }
            }
            Literal::Number(x) => {
                // 0 and 1 are flags and "more than one" as often as numbers.
                if *x == 0.0 || *x == 1.0 {
                    continue;
                }
                if !q.numbers.iter().any(|n| same_number(*n, *x)) && said.insert(number_text(*x)) {
                    reasons.push(format!(
                        "SQL filters on {}, which the question does not name",
                        number_text(*x)
                    ));
                }
            }
        }
    }
    let sql_plain = plain(&r.text);
    for v in &q.quoted {
        let p = plain(v);
        let named_in_sql = !p.is_empty()
            && (format!(" {sql_plain} ").contains(&format!(" {p} ")) || sql_plain.contains(&p));
        let is_a_name = schema.tables.iter().any(|t| {
            plain(&t.name) == p
                || plain(&names.one(&t.name)) == p
                || t.columns
                    .iter()
                    .any(|c| plain(&c.name) == p || plain(&names.column(&t.name, &c.name)) == p)
        });
        if !named_in_sql && !is_a_name {
            reasons.push(format!(
                "question names \"{v}\", which the SQL does not use"
            ));
        }
    }
    let sql_digits: Vec<f64> = digit_numbers(&r.text);
    for d in &q.digits {
        let used = r
            .numbers
            .iter()
            .chain(&sql_digits)
            .any(|x| same_number(*x, *d));
        if !used && said.insert(format!("q{}", number_text(*d))) {
            reasons.push(format!(
                "question says {}, which the SQL does not use",
                number_text(*d)
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Aggregates

fn computes(r: &Reading) -> String {
    if r.top_aggs.is_empty() {
        "no aggregate".to_string()
    } else {
        r.top_aggs
            .iter()
            .map(|a| a.sql())
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

fn aggregates(q: &Question, r: &Reading, reasons: &mut Vec<String>) {
    let word = |w: &str| q.has_word(w) && !q.name_words.contains(w);
    let asks_count = q.has_phrase("how many") || word("count");
    let asks_avg = word("average") || word("mean") || word("avg");
    let total_sum = q.words.iter().enumerate().any(|(i, w)| {
        w == "total"
            && !q.name_words.contains("total")
            && !matches!(
                q.words.get(i + 1).map(String::as_str),
                Some("number" | "count" | "of")
            )
    });
    let asks_sum = word("sum") || (total_sum && !asks_count);
    let asks_max = word("maximum") || word("max");
    let asks_min = word("minimum") || word("min");
    let has = |a: Agg| r.has(a);
    let top = |a: Agg| r.top_aggs.contains(&a);
    let mut flag = |what: &str| {
        reasons.push(format!(
            "question asks for {what}, SQL computes {}",
            computes(r)
        ));
    };
    let other = |a: Agg| r.aggs.iter().any(|(b, _)| *b != a && *b != Agg::Count);
    if asks_avg && !has(Agg::Avg) && (!r.top_aggs.is_empty() || other(Agg::Avg)) {
        flag("an average");
    }
    if asks_sum && !has(Agg::Sum) && other(Agg::Sum) {
        flag("a total");
    }
    let ordered = r.top_limited_order().is_some();
    if asks_max && !has(Agg::Max) && !ordered && (top(Agg::Avg) || top(Agg::Sum)) {
        flag("a maximum");
    }
    if asks_min && !has(Agg::Min) && !ordered && (top(Agg::Avg) || top(Agg::Sum)) {
        flag("a minimum");
    }
    if asks_count
        && !asks_avg
        && !has(Agg::Count)
        && !has(Agg::Sum)
        && (top(Agg::Avg) || top(Agg::Max) || top(Agg::Min))
        && !(asks_max || asks_min)
    {
        flag("a count");
    }
}

// ---------------------------------------------------------------------------------------------
// Tables

/// Words too common in names to tell one table from another.
const GENERIC: &[&str] = &[
    "id",
    "name",
    "number",
    "type",
    "code",
    "the",
    "of",
    "and",
    "in",
    "on",
    "for",
    "to",
    "by",
    "is",
    "a",
    "an",
    "date",
    "year",
    "detail",
    "details",
    "info",
    "information",
    "description",
    "value",
    "count",
    "total",
    "has",
    "with",
];

fn significant_words(phrase: &str) -> Vec<String> {
    plain(phrase)
        .split(' ')
        .filter(|w| w.len() >= 3 && !GENERIC.contains(w))
        .map(singular)
        .collect()
}

fn tables(q: &Question, r: &Reading, schema: &Schema, names: &Names, reasons: &mut Vec<String>) {
    if r.tables.is_empty() {
        return;
    }
    // What the SQL's own names say, word by word: a named table made of them is no other
    // table (`concert` inside `singer_in_concert`).
    let own_words: BTreeSet<String> = r
        .tables
        .iter()
        .flat_map(|t| significant_words(&names.one(t)))
        .chain(
            r.columns
                .iter()
                .flat_map(|(t, c)| significant_words(&names.column(t, c))),
        )
        .collect();
    let named: Vec<&str> = schema
        .tables
        .iter()
        .map(|t| t.name.as_str())
        .filter(|t| !r.tables.contains(&t.to_lowercase()))
        .filter(|t| q.says(&names.one(t)))
        .filter(|t| {
            let words = significant_words(&names.one(t));
            words.is_empty() || !words.iter().all(|w| own_words.contains(w))
        })
        .collect();
    if named.is_empty() {
        return;
    }
    // The SQL's tables, named whole or by a word the named tables do not share ("singer"
    // of `singer_in_concert`); its columns' words do not count, as a question about the
    // wrong table still asks for the right columns ("the net worth of songs").
    let theirs: BTreeSet<String> = named
        .iter()
        .flat_map(|t| significant_words(&names.one(t)))
        .collect();
    let mentioned = r
        .tables
        .iter()
        .flat_map(|t| significant_words(&names.one(t)))
        .any(|w| !theirs.contains(&w) && q.says(&w));
    let mentions_table = r.tables.iter().any(|t| q.says(&names.one(t)));
    if !mentioned && !mentions_table {
        reasons.push(format!(
            "question asks about {}, SQL reads only {}",
            named
                .iter()
                .map(|t| names.many(t))
                .collect::<Vec<_>>()
                .join(" and "),
            r.tables.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::schema::{Column, Table};

    fn schema() -> Schema {
        let table = |name: &str, cols: &[&str]| Table {
            name: name.into(),
            columns: cols
                .iter()
                .map(|c| Column {
                    name: (*c).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        Schema {
            tables: vec![
                table(
                    "singer",
                    &[
                        "Singer_ID",
                        "Name",
                        "Country",
                        "Age",
                        "Birth_Year",
                        "Net_Worth",
                    ],
                ),
                table("concert", &["concert_ID", "concert_Name", "Theme", "Year"]),
                table("singer_in_concert", &["concert_ID", "Singer_ID"]),
            ],
            ..Default::default()
        }
    }

    fn run(question: &str, sql: &str) -> Vec<String> {
        let s = schema();
        check(question, sql, &s, &Names::new(&s, &[]))
    }

    #[test]
    fn agreeing_pairs_pass() {
        for (q, sql) in [
            (
                "How many singers do we have?",
                "SELECT count(*) FROM singer",
            ),
            (
                "What is the name of the oldest singer?",
                "SELECT Name FROM singer ORDER BY Age DESC LIMIT 1",
            ),
            (
                "What is the name of the oldest singer?",
                "SELECT Name FROM singer ORDER BY Birth_Year ASC LIMIT 1",
            ),
            (
                "List singers from highest to lowest net worth.",
                "SELECT Name FROM singer ORDER BY Net_Worth DESC",
            ),
            (
                "What is the average age of singers from France?",
                "SELECT avg(Age) FROM singer WHERE Country = \"France\"",
            ),
            (
                "Which singers are older than 40 and named like 'Jo'?",
                "SELECT Name FROM singer WHERE Age > 40 AND Name LIKE '%Jo%'",
            ),
            (
                "Show the names of singers in concerts in 2014.",
                "SELECT T2.Name FROM singer_in_concert AS T1 JOIN singer AS T2 \
                 ON T1.Singer_ID = T2.Singer_ID JOIN concert AS T3 \
                 ON T1.concert_ID = T3.concert_ID WHERE T3.Year = 2014",
            ),
            (
                "How many singers are at least thirty?",
                "SELECT count(*) FROM singer WHERE Age >= 30",
            ),
        ] {
            assert_eq!(run(q, sql), Vec::<String>::new(), "{q} / {sql}");
        }
    }

    #[test]
    fn flags_an_order_against_the_superlative() {
        assert_eq!(
            run(
                "What is the name of the singer with the largest net worth?",
                "SELECT Name FROM singer ORDER BY Net_Worth ASC LIMIT 1",
            ),
            ["question says largest, SQL orders ascending"]
        );
        assert_eq!(
            run(
                "What is the name of the youngest singer?",
                "SELECT Name FROM singer ORDER BY Birth_Year ASC LIMIT 1",
            ),
            ["question says youngest, SQL orders ascending"]
        );
        assert_eq!(
            run(
                "What is the lowest age of singers?",
                "SELECT max(Age) FROM singer"
            ),
            ["question says lowest, SQL computes MAX"]
        );
    }

    #[test]
    fn flags_a_value_the_question_does_not_name() {
        assert_eq!(
            run(
                "How many singers are from France?",
                "SELECT count(*) FROM singer WHERE Country = 'Germany'",
            ),
            ["SQL filters on 'Germany', which the question does not name"]
        );
        assert_eq!(
            run(
                "Which singers are older than 40?",
                "SELECT Name FROM singer WHERE Age > 50",
            ),
            [
                "SQL filters on 50, which the question does not name",
                "question says 40, which the SQL does not use"
            ]
        );
        assert_eq!(
            run(
                "Which concerts have the theme \"Free choice\"?",
                "SELECT concert_Name FROM concert WHERE Theme = 'Party'",
            ),
            [
                "SQL filters on 'Party', which the question does not name",
                "question names \"Free choice\", which the SQL does not use"
            ]
        );
    }

    #[test]
    fn flags_another_aggregate() {
        assert_eq!(
            run(
                "What is the average age of all singers?",
                "SELECT sum(Age) FROM singer"
            ),
            ["question asks for an average, SQL computes SUM"]
        );
        assert_eq!(
            run(
                "What is the total net worth of singers?",
                "SELECT avg(Net_Worth) FROM singer"
            ),
            ["question asks for a total, SQL computes AVG"]
        );
        assert!(
            run(
                "What is the total number of singers?",
                "SELECT count(*) FROM singer"
            )
            .is_empty()
        );
    }

    #[test]
    fn flags_a_question_about_another_table() {
        assert_eq!(
            run(
                "How many concerts do we have?",
                "SELECT count(*) FROM singer"
            ),
            ["question asks about concerts, SQL reads only singer"]
        );
        // The singer table's own column words say the question is about singers after all.
        assert!(
            run(
                "What are the ages of the concerts' singers?",
                "SELECT Age FROM singer"
            )
            .is_empty()
        );
    }

    #[test]
    fn a_house_rule_of_the_gold_pairs_is_no_disagreement() {
        let s = schema();
        let names = Names::new(&s, &[]);
        let sql = "SELECT count(*) FROM concert WHERE Theme = 'Party' AND Year = 2014";
        let question = "How many concerts were there in 2014?";
        assert_eq!(
            check(question, sql, &s, &names),
            ["SQL filters on 'Party', which the question does not name"]
        );
        let gold = [(
            "How many concerts are there?",
            "SELECT count(*) FROM concert WHERE Theme = 'party'",
        )];
        let conventions = Conventions::learn(&s, "", gold);
        assert!(check_with(question, sql, &s, &names, &conventions).is_empty());
        let glossary = Conventions::learn(&s, "concert: a show with theme Party", []);
        assert!(check_with(question, sql, &s, &names, &glossary).is_empty());
    }

    #[test]
    fn unparsable_sql_is_left_to_validation() {
        assert!(run("How many singers?", "SELEC nothing").is_empty());
    }
}
