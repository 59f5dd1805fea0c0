//! The gold-set audit: questions the gold SQL itself. Every pair of the gold and eval sets is
//! run on the project's database (read-only, through the safe executor) and looked at for
//! what makes a gold answer unfit to score against: it fails, it answers nothing, which rows
//! it keeps is up to the engine (LIMIT without ORDER BY, LIMIT through a tie), it changes from
//! run to run, or a filter the question asks for changes nothing on this data.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, LimitClause, Query,
    SelectItem, SetExpr, Value as AstValue, visit_expressions,
};

use crate::project::{GoldPair, Project};
use crate::sql::analyze::{function_args, function_name, parse_query_in};
use crate::sql::compare::{OrderKeys, PyKey, py_eq};
use crate::sql::{Database, QueryResult, SqlDialect, Value};

/// Which of the project's sets a pair is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSet {
    Gold,
    Eval,
}

impl AuditSet {
    pub fn name(self) -> &'static str {
        match self {
            AuditSet::Gold => "gold",
            AuditSet::Eval => "eval",
        }
    }
}

/// What is wrong with a gold answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The SQL errors (or is refused).
    Fails,
    /// The SQL returns no rows.
    Empty,
    /// Every value is NULL, or the only value is a COUNT of 0 (the answer any query that
    /// matches nothing gives).
    AllNull,
    /// A LIMIT without ORDER BY cuts the result: which rows come back is up to the engine.
    OrderDependent,
    /// An ORDER BY ... LIMIT cuts through rows tied on the ORDER BY keys.
    LimitTies,
    /// The answer depends on the clock or a random number.
    Nondeterministic,
    /// A WHERE condition on a value the question names changes nothing on this database.
    FilterNotNeeded,
}

impl FindingKind {
    pub const ALL: [FindingKind; 7] = [
        FindingKind::Fails,
        FindingKind::Empty,
        FindingKind::AllNull,
        FindingKind::OrderDependent,
        FindingKind::LimitTies,
        FindingKind::Nondeterministic,
        FindingKind::FilterNotNeeded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Fails => "fails",
            FindingKind::Empty => "empty",
            FindingKind::AllNull => "all_null",
            FindingKind::OrderDependent => "order_dependent",
            FindingKind::LimitTies => "limit_ties",
            FindingKind::Nondeterministic => "nondeterministic",
            FindingKind::FilterNotNeeded => "filter_not_needed",
        }
    }
}

/// One thing wrong with one gold pair, and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub set: AuditSet,
    /// The pair's 1-based position in its set.
    pub position: usize,
    /// The file the pair was read from, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The 1-based line the pair starts on, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub question: String,
    pub sql: String,
    pub kind: FindingKind,
    pub reason: String,
    pub fix: String,
}

impl Finding {
    /// `file:line` (or `set #position` for pairs made in code), for messages.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{}:{l}", f.display()),
            (Some(f), None) => format!("{} #{}", f.display(), self.position),
            _ => format!("{} #{}", self.set.name(), self.position),
        }
    }
}

/// Audits one of the project's sets on its database.
pub fn audit(project: &Project, set: AuditSet) -> Vec<Finding> {
    let (pairs, file) = match set {
        AuditSet::Gold => (&project.gold, project.config.paths.gold_test_set.as_deref()),
        AuditSet::Eval if project.eval_is_gold => {
            (&project.eval, project.config.paths.gold_test_set.as_deref())
        }
        AuditSet::Eval => (&project.eval, project.config.paths.eval_set.as_deref()),
    };
    audit_pairs(
        &project.db,
        pairs,
        set,
        file,
        project.config.execution.thread_count(),
    )
}

/// Audits `pairs` (read from `file`, when known) on `db` with `threads` workers; findings come
/// in the pairs' order.
pub fn audit_pairs(
    db: &Database,
    pairs: &[GoldPair],
    set: AuditSet,
    file: Option<&Path>,
    threads: usize,
) -> Vec<Finding> {
    let found = crate::project::check::scan_parallel(pairs, threads, |pair| {
        let problems = audit_one(db, pair);
        (!problems.is_empty()).then_some(problems)
    });
    found
        .into_iter()
        .flat_map(|(i, problems)| {
            let pair = &pairs[i];
            problems
                .into_iter()
                .map(move |(kind, reason, fix)| Finding {
                    set,
                    position: i + 1,
                    file: file.map(Path::to_path_buf),
                    line: pair.line,
                    question: pair.question.clone(),
                    sql: pair.sql.clone(),
                    kind,
                    reason,
                    fix,
                })
        })
        .collect()
}

type Problem = (FindingKind, String, String);

/// Everything wrong with one pair: (kind, reason, fix).
fn audit_one(db: &Database, pair: &GoldPair) -> Vec<Problem> {
    let mut out = Vec::new();
    let parsed = parse_query_in(&pair.sql, SqlDialect::from_name(db.dialect_name())).ok();
    if let Some(what) = nondeterminism(parsed.as_ref(), &pair.sql) {
        out.push((
            FindingKind::Nondeterministic,
            format!("the answer depends on {what}, so it changes from run to run"),
            format!("replace {what} with a fixed value (a literal date or number)"),
        ));
    }
    let result = match db.query(&pair.sql) {
        Ok(r) => r,
        Err(e) => {
            out.push((
                FindingKind::Fails,
                format!("the SQL fails: {}", one_line(&e.to_string())),
                "fix the SQL so it runs on this database, or remove the pair".into(),
            ));
            return out;
        }
    };
    if result.rows.is_empty() {
        out.push((
            FindingKind::Empty,
            "the SQL returns no rows, so every query that matches nothing scores as right".into(),
            "check the values the SQL filters on against the data (`lode schema` shows \
             samples), or add data the question is about"
                .into(),
        ));
        return out;
    }
    if result.rows.iter().flatten().all(Value::is_null) {
        out.push((
            FindingKind::AllNull,
            format!(
                "every value of the {} rows is NULL, so any query that matches nothing scores \
                 as right",
                result.rows.len()
            ),
            "check the values the SQL filters on against the data, or add data the question \
             is about"
                .into(),
        ));
        return out;
    }
    let Some(query) = parsed else {
        return out;
    };
    if is_lone_count_of_zero(&query, &result) {
        out.push((
            FindingKind::AllNull,
            "the only value is a COUNT of 0: no row matches, the answer any query that \
             matches nothing gives"
                .into(),
            "check the values the SQL filters on against the data, or add data that the \
             count should find"
                .into(),
        ));
        return out;
    }
    out.extend(limit_problem(db, &query));
    out.extend(filters_not_needed(db, &query, &pair.question, &result));
    out
}

/// What makes the query's answer change between runs, if anything: `random()`, the clock.
fn nondeterminism(parsed: Option<&Query>, sql: &str) -> Option<String> {
    let Some(query) = parsed else {
        // Unparsed: a plain word search is the best guess there is.
        let lower = sql.to_lowercase();
        return [
            "random(",
            "randomblob(",
            "current_timestamp",
            "current_date",
            "'now'",
        ]
        .into_iter()
        .find(|w| lower.contains(w))
        .map(|w| format!("`{}`", w.trim_end_matches('(')));
    };
    let mut found = None;
    let _ = visit_expressions(query, |e| {
        if let Expr::Function(f) = e {
            let name = function_name(&f.name);
            let args = function_args(f);
            let says_now = args.iter().any(|a| {
                matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))
                    if matches!(&v.value, AstValue::SingleQuotedString(s) if s.eq_ignore_ascii_case("now")))
            });
            let clock_fn = matches!(
                name.as_str(),
                "date" | "time" | "datetime" | "julianday" | "unixepoch" | "strftime" | "timediff"
            );
            let what = match name.as_str() {
                "random" | "randomblob" => Some(format!("{name}()")),
                "current_timestamp" | "current_date" | "current_time" | "now" => {
                    Some(name.to_uppercase())
                }
                _ if clock_fn && says_now => Some(format!("{name}('now')")),
                // date(), time(), datetime() and friends without arguments mean 'now'.
                _ if clock_fn
                    && name != "strftime"
                    && name != "timediff"
                    && args.is_empty()
                    && matches!(f.args, FunctionArguments::List(_)) =>
                {
                    Some(format!("{name}() (which means now)"))
                }
                _ => None,
            };
            if let Some(w) = what {
                found = Some(w);
                return std::ops::ControlFlow::Break(());
            }
        }
        if let Expr::Identifier(i) = e
            && i.quote_style.is_none()
            && matches!(
                i.value.to_lowercase().as_str(),
                "current_timestamp" | "current_date" | "current_time"
            )
        {
            found = Some(i.value.to_uppercase());
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// A single-cell result 0 from a query whose only output is `COUNT(...)`.
fn is_lone_count_of_zero(query: &Query, result: &QueryResult) -> bool {
    let [row] = result.rows.as_slice() else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let [item] = select.projection.as_slice() else {
        return false;
    };
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    matches!(expr, Expr::Function(f) if function_name(&f.name) == "count")
        && matches!(row.as_slice(), [Value::Integer(0)])
}

/// The top-level LIMIT and OFFSET, when both are plain numbers.
fn limit_of(query: &Query) -> Option<(u64, u64)> {
    let number = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => n.parse::<u64>().ok(),
            _ => None,
        },
        _ => None,
    };
    match query.limit_clause.as_ref()? {
        LimitClause::LimitOffset {
            limit: Some(limit),
            offset,
            ..
        } => Some((
            number(limit)?,
            match offset {
                Some(o) => number(&o.value)?,
                None => 0,
            },
        )),
        LimitClause::OffsetCommaLimit { offset, limit } => Some((number(limit)?, number(offset)?)),
        _ => None,
    }
}

/// `query` with its top-level LIMIT raised to `rows` and its OFFSET dropped, as text.
fn with_limit(query: &Query, rows: u64) -> String {
    let mut q = query.clone();
    q.limit_clause = Some(LimitClause::LimitOffset {
        limit: Some(Expr::value(AstValue::Number(rows.to_string(), false))),
        offset: None,
        limit_by: Vec::new(),
    });
    q.to_string()
}

/// A top-level LIMIT that keeps rows the engine chooses: without ORDER BY while more rows
/// exist than it keeps, or with an ORDER BY whose keys tie across the cut.
fn limit_problem(db: &Database, query: &Query) -> Option<Problem> {
    let (limit, offset) = limit_of(query)?;
    let cut = offset.checked_add(limit)?;
    if limit == 0 {
        return None;
    }
    // One row past the cut says whether the LIMIT leaves anything out.
    let raised = with_limit(query, cut + 1);
    if query.order_by.is_none() {
        let r = db.query(&raised).ok()?;
        let kept_all = r.rows.len() as u64 <= cut;
        let all_same = r.rows.windows(2).all(|w| same_row(&w[0], &w[1]));
        if kept_all || all_same {
            return None;
        }
        return Some((
            FindingKind::OrderDependent,
            format!(
                "LIMIT {limit} without ORDER BY keeps {limit} of more rows, and which ones is \
                 up to the engine"
            ),
            "add ORDER BY <key> so the rows LIMIT keeps are defined".into(),
        ));
    }
    let mut raised_query = query.clone();
    raised_query.limit_clause = None;
    let dialect = SqlDialect::from_name(db.dialect_name());
    let keys = OrderKeys::of(&raised_query.to_string(), dialect)?;
    let keyed = parse_query_in(&keys.query, dialect).ok()?;
    // The rows tied with the last one kept, on both sides of the cut (a bounded look past
    // it): a tie matters only when the tied rows do not all read the same.
    let r = db.query(&with_limit(&keyed, cut + TIE_LOOKAHEAD)).ok()?;
    let last = r.rows.get(cut as usize - 1)?;
    r.rows.get(cut as usize)?;
    let a = keys.key(last);
    let ties = |row: &&Vec<Value>| {
        let b = keys.key(row);
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| py_eq(x, y))
    };
    let tied_rows: Vec<&Vec<Value>> = r.rows.iter().filter(ties).collect();
    let width = query_width(&r, &keys);
    let past_cut = r.rows[cut as usize..].iter().filter(ties).count();
    if past_cut == 0
        || tied_rows
            .windows(2)
            .all(|w| same_row(&w[0][..width], &w[1][..width]))
    {
        return None;
    }
    let tied: Vec<String> = a.iter().map(|v| v.display()).collect();
    let order: Vec<String> = match &query.order_by.as_ref()?.kind {
        sqlparser::ast::OrderByKind::Expressions(e) => {
            e.iter().map(|o| o.expr.to_string()).collect()
        }
        _ => Vec::new(),
    };
    Some((
        FindingKind::LimitTies,
        format!(
            "LIMIT {limit} cuts through a tie: {} rows have {} = {} and the LIMIT keeps {} \
             of them; which ones is up to the engine",
            tied_rows.len(),
            order.join(", "),
            tied.join(", "),
            tied_rows.len() - past_cut
        ),
        format!(
            "add a tie-breaker to ORDER BY ({}, <a unique column>), or answer with every \
             tied row instead of LIMIT",
            order.join(", ")
        ),
    ))
}

/// Rows looked at past a LIMIT's cut for rows tied with the last one kept.
const TIE_LOOKAHEAD: u64 = 200;

/// The width of the query's own output in a result of [`OrderKeys::query`].
fn query_width(r: &QueryResult, keys: &OrderKeys) -> usize {
    r.columns.len().saturating_sub(keys.extra())
}

fn same_row(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| py_eq(x, y))
}

/// Conditions of the top-level WHERE (AND-ed, comparing with a literal the question names)
/// whose removal leaves the result the same multiset of rows.
fn filters_not_needed(
    db: &Database,
    query: &Query,
    question: &str,
    result: &QueryResult,
) -> Vec<Problem> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Vec::new();
    };
    let Some(selection) = &select.selection else {
        return Vec::new();
    };
    if result.truncated {
        return Vec::new();
    }
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    let question = question.to_lowercase();
    let mut out = Vec::new();
    for (i, c) in conjuncts.iter().enumerate() {
        let Some(literal) = named_literal(c, &question) else {
            continue;
        };
        let rest: Vec<Expr> = conjuncts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| (*e).clone())
            .collect();
        let mut without = query.clone();
        if let SetExpr::Select(s) = without.body.as_mut() {
            s.selection = rest.into_iter().reduce(|a, b| Expr::BinaryOp {
                left: Box::new(a),
                op: BinaryOperator::And,
                right: Box::new(b),
            });
        }
        let Ok(other) = db.query(&without.to_string()) else {
            continue;
        };
        if !other.truncated && same_bag(&result.rows, &other.rows) {
            out.push((
                FindingKind::FilterNotNeeded,
                format!(
                    "without `{c}` the result is the same, so the filter on {literal} the \
                     question asks for changes nothing on this database"
                ),
                format!(
                    "the filter on {literal} changes nothing on this database: check the \
                     value, or add data that exercises it"
                ),
            ));
        }
    }
    out
}

fn split_and<'q>(e: &'q Expr, out: &mut Vec<&'q Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_and(inner, out)
        }
        other => out.push(other),
    }
}

/// The literal a condition compares with, quoted as written, when the question names it.
fn named_literal(condition: &Expr, question: &str) -> Option<String> {
    let literals: Vec<&Expr> = match condition {
        Expr::BinaryOp {
            left,
            op:
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq,
            right,
        } => match (literal_text(left), literal_text(right)) {
            (None, Some(_)) => vec![right],
            (Some(_), None) => vec![left],
            _ => return None,
        },
        Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } => vec![pattern],
        Expr::InList { list, .. } => list.iter().collect(),
        Expr::Between { low, high, .. } => vec![low, high],
        _ => return None,
    };
    for l in literals {
        let text = literal_text(l)?;
        if !mentions(question, &text) {
            return None;
        }
    }
    Some(match condition {
        Expr::BinaryOp { left, right, .. } => {
            if literal_text(left).is_some() {
                left.to_string()
            } else {
                right.to_string()
            }
        }
        Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } => pattern.to_string(),
        other => other.to_string(),
    })
}

/// The text of a string or number literal (a double-quoted word counts: SQLite reads one
/// that names no column as a string, and Spider's gold writes values so).
fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            AstValue::SingleQuotedString(s) | AstValue::DoubleQuotedString(s) => Some(s.clone()),
            AstValue::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        Expr::Identifier(i) if i.quote_style == Some('"') => Some(i.value.clone()),
        Expr::Nested(inner) => literal_text(inner),
        _ => None,
    }
}

/// The question names `value`: its text (without LIKE's `%`) appears there as whole words.
fn mentions(question: &str, value: &str) -> bool {
    let value = value.trim_matches('%').trim().to_lowercase();
    if value.is_empty() {
        return false;
    }
    question.match_indices(&value).any(|(at, _)| {
        let before = question[..at].chars().next_back();
        let after = question[at + value.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Two results hold the same rows, each as often, in any order.
fn same_bag(a: &[Vec<Value>], b: &[Vec<Value>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    sorted_keys(a) == sorted_keys(b)
}

fn sorted_keys(rows: &[Vec<Value>]) -> Vec<Vec<PyKey<'_>>> {
    let mut keys: Vec<Vec<PyKey<'_>>> = rows
        .iter()
        .map(|r| r.iter().map(PyKey::of).collect())
        .collect();
    keys.sort();
    keys
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Audits the gold set, then the eval set when it is a file of its own.
pub fn audit_project(project: &Project) -> Vec<Finding> {
    let mut found = audit(project, AuditSet::Gold);
    if !project.eval_is_gold {
        found.extend(audit(project, AuditSet::Eval));
    }
    found
}
