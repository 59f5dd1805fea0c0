//! `lode`: the profile with correct semantics. Results are bags of rows; the prediction's
//! columns may come in any order (names are ignored); row order is checked only when the
//! gold's top-level query has ORDER BY, and then only over its keys (rows tied on the keys
//! may come in any order); floats compare with a relative tolerance; every mismatch gets a
//! reason.

use std::cmp::Ordering;

use sqlparser::ast::{Expr, SelectItem, SetExpr, Value as AstValue};

use super::spider::search;
use super::{Case, Reason, Verdict};
use crate::sql::analyze::parse_query_in;
use crate::sql::{QueryResult, SqlDialect, Value};

/// Relative tolerance for comparing floats: wide enough for last-digit noise from a different
/// but equivalent evaluation order, far too narrow for a rounding difference.
pub const DEFAULT_FLOAT_TOLERANCE: f64 = 1e-9;

/// Which column of the gold result holds an ORDER BY key.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyColumn {
    /// One of the query's own output columns.
    Output(usize),
    /// A column appended to the query to expose a key that is not in its output.
    Extra(usize),
}

/// How the gold query's row order is checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OrderPlan {
    /// The text to execute: the gold query, with key columns appended when needed.
    pub query: String,
    /// `None`: no top-level ORDER BY, order is free. `Some(keys)`: rows must follow the keys.
    keys: Option<Vec<KeyColumn>>,
    /// The keys could not be located: every row is its own tie group (strict order).
    strict: bool,
    /// Columns appended to the output.
    extra: usize,
}

/// Plans of the gold queries judged lately, shared by every thread: an evaluation judges
/// each gold query once per prediction, and parsing it is most of the work left beside
/// SQLite. At most [`PLAN_CACHE`] plans are kept, by dialect and text.
type PlanCache =
    std::sync::RwLock<std::collections::HashMap<(SqlDialect, String), std::sync::Arc<OrderPlan>>>;
static PLANS: std::sync::LazyLock<PlanCache> = std::sync::LazyLock::new(Default::default);
const PLAN_CACHE: usize = 4096;

impl OrderPlan {
    /// [`for_gold`](Self::for_gold), remembered (at most [`PLAN_CACHE`] plans).
    pub(super) fn cached(gold_sql: &str, dialect: SqlDialect) -> std::sync::Arc<OrderPlan> {
        OrderPlan::cached_with(gold_sql, dialect, || OrderPlan::for_gold(gold_sql, dialect))
    }

    /// The remembered plan of `gold_sql` in `dialect`, or `make`'s, remembered.
    pub(super) fn cached_with(
        gold_sql: &str,
        dialect: SqlDialect,
        make: impl FnOnce() -> OrderPlan,
    ) -> std::sync::Arc<OrderPlan> {
        let key = (dialect, gold_sql.to_string());
        if let Some(p) = PLANS.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return std::sync::Arc::clone(p);
        }
        // Made outside the lock; two threads may both make it once, harmlessly.
        let plan = std::sync::Arc::new(make());
        let mut plans = PLANS.write().unwrap_or_else(|p| p.into_inner());
        if plans.len() >= PLAN_CACHE {
            plans.clear();
        }
        std::sync::Arc::clone(plans.entry(key).or_insert(plan))
    }

    /// The plan of `gold_sql` read in the target's `dialect`: appended keys are printed from
    /// its syntax tree, which must mean what the target means (`tags[1]` is a subscript on
    /// PostgreSQL, `tags AS [1]` on SQLite).
    pub(super) fn for_gold(gold_sql: &str, dialect: SqlDialect) -> OrderPlan {
        let unordered = OrderPlan {
            query: gold_sql.to_string(),
            keys: None,
            strict: false,
            extra: 0,
        };
        match parse_query_in(gold_sql, dialect) {
            Ok(query) => OrderPlan::from_query(gold_sql, query),
            Err(_) => unordered,
        }
    }

    /// The plan of `gold_sql`, already parsed into `query`.
    pub(super) fn from_query(gold_sql: &str, mut query: sqlparser::ast::Query) -> OrderPlan {
        let unordered = OrderPlan {
            query: gold_sql.to_string(),
            keys: None,
            strict: false,
            extra: 0,
        };
        let Some(order_by) = query.order_by.clone() else {
            return unordered;
        };
        let sqlparser::ast::OrderByKind::Expressions(order_exprs) = order_by.kind else {
            return OrderPlan {
                strict: true,
                keys: Some(Vec::new()),
                ..unordered
            };
        };
        let strict = OrderPlan {
            strict: true,
            keys: Some(Vec::new()),
            ..unordered.clone()
        };
        let projection: Vec<SelectItem> = match query.body.as_ref() {
            SetExpr::Select(s) => s.projection.clone(),
            _ => match first_projection(&query.body) {
                Some(p) => p,
                None => return strict,
            },
        };
        let can_extend = matches!(query.body.as_ref(), SetExpr::Select(s)
            if s.distinct.is_none()
                && !s.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))));
        let mut keys = Vec::new();
        let mut extra_exprs = Vec::new();
        for o in &order_exprs {
            match locate(&o.expr, &projection) {
                Some(i) => keys.push(KeyColumn::Output(i)),
                None if can_extend => {
                    keys.push(KeyColumn::Extra(extra_exprs.len()));
                    extra_exprs.push(o.expr.clone());
                }
                None => return strict,
            }
        }
        let extra = extra_exprs.len();
        if extra > 0
            && let SetExpr::Select(select) = query.body.as_mut()
        {
            for e in extra_exprs {
                select.projection.push(SelectItem::UnnamedExpr(e));
            }
        }
        OrderPlan {
            query: if extra > 0 {
                query.to_string()
            } else {
                gold_sql.to_string()
            },
            keys: Some(keys),
            strict: false,
            extra,
        }
    }
}

/// Where a query's top-level ORDER BY keys are in its result, for callers that look at ties
/// themselves (the gold audit): the text to run and each key's column.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKeys {
    /// The query, with keys that are not in its output appended as columns.
    pub query: String,
    keys: Vec<KeyColumn>,
    extra: usize,
}

impl OrderKeys {
    /// `None` without a top-level ORDER BY, or when its keys cannot be located. `sql` is read
    /// in the target's `dialect`.
    pub fn of(sql: &str, dialect: SqlDialect) -> Option<OrderKeys> {
        let plan = OrderPlan::for_gold(sql, dialect);
        match plan.keys {
            Some(keys) if !plan.strict && !keys.is_empty() => Some(OrderKeys {
                query: plan.query,
                keys,
                extra: plan.extra,
            }),
            _ => None,
        }
    }

    /// How many key columns were appended to the query's own output.
    pub fn extra(&self) -> usize {
        self.extra
    }

    /// The key values of one row of `query`'s result.
    pub fn key<'r>(&self, row: &'r [Value]) -> Vec<&'r Value> {
        let width = row.len().saturating_sub(self.extra);
        self.keys
            .iter()
            .map(|k| match k {
                KeyColumn::Output(i) => &row[*i],
                KeyColumn::Extra(i) => &row[width + i],
            })
            .collect()
    }
}

fn first_projection(body: &SetExpr) -> Option<Vec<SelectItem>> {
    match body {
        SetExpr::Select(s) => Some(s.projection.clone()),
        SetExpr::Query(q) => first_projection(&q.body),
        SetExpr::SetOperation { left, .. } => first_projection(left),
        _ => None,
    }
}

/// The output column an ORDER BY key names: a 1-based position, an output alias, the same
/// expression, or the same column name.
fn locate(key: &Expr, projection: &[SelectItem]) -> Option<usize> {
    if let Expr::Value(v) = key
        && let AstValue::Number(n, _) = &v.value
    {
        let pos: usize = n.parse().ok()?;
        return (1..=projection.len()).contains(&pos).then(|| pos - 1);
    }
    let key_text = key.to_string().to_lowercase();
    let key_name = match key {
        Expr::Identifier(i) => Some(i.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
        _ => None,
    };
    // Aliases first: `ORDER BY n` names the output `n` even if a table has a column `n`.
    for (i, item) in projection.iter().enumerate() {
        if let SelectItem::ExprWithAlias { alias, .. } = item
            && matches!(key, Expr::Identifier(_))
            && key_name.as_deref() == Some(alias.value.to_lowercase().as_str())
        {
            return Some(i);
        }
    }
    for (i, item) in projection.iter().enumerate() {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        if expr.to_string().to_lowercase() == key_text {
            return Some(i);
        }
    }
    let key_name = key_name?;
    let mut found = None;
    for (i, item) in projection.iter().enumerate() {
        let name = match item {
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.value.to_lowercase(),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts
                .last()
                .map(|p| p.value.to_lowercase())
                .unwrap_or_default(),
            _ => continue,
        };
        if name == key_name {
            if found.is_some() {
                return None; // ambiguous
            }
            found = Some(i);
        }
    }
    found
}

/// Equality with a relative float tolerance; integers and reals compare as numbers.
fn close(a: &Value, b: &Value, tol: f64) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Integer(x), Value::Integer(y)) => x == y,
        (Value::Text(x), Value::Text(y)) => x == y,
        (Value::Blob(x), Value::Blob(y)) => x == y,
        (Value::Integer(_) | Value::Real(_), Value::Integer(_) | Value::Real(_)) => {
            let (x, y) = (as_f64(a), as_f64(b));
            x == y || (x - y).abs() <= tol * x.abs().max(y.abs())
        }
        _ => false,
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Integer(i) => *i as f64,
        Value::Real(f) => *f,
        _ => f64::NAN,
    }
}

/// A total order: NULL, numbers, text, blobs.
fn value_order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Integer(_) | Value::Real(_), Value::Integer(_) | Value::Real(_)) => {
            as_f64(a).total_cmp(&as_f64(b))
        }
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Blob(x), Value::Blob(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn row_order(a: &[&Value], b: &[&Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match value_order(x, y) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    a.len().cmp(&b.len())
}

/// Rows as equal bags under a tolerance: both sides sorted, then compared pairwise.
fn bags_close(a: &[Vec<&Value>], b: &[Vec<&Value>], tol: f64) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<&Vec<&Value>> = a.iter().collect();
    let mut b: Vec<&Vec<&Value>> = b.iter().collect();
    a.sort_by(|x, y| row_order(x, y));
    b.sort_by(|x, y| row_order(x, y));
    a.iter().zip(&b).all(|(x, y)| rows_close(x, y, tol))
}

fn rows_close(a: &[&Value], b: &[&Value], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(x, y, tol))
}

/// Distinct rows (under the tolerance), sorted.
fn distinct_rows<'a>(rows: &[Vec<&'a Value>], tol: f64) -> Vec<Vec<&'a Value>> {
    let mut sorted: Vec<Vec<&Value>> = rows.to_vec();
    sorted.sort_by(|x, y| row_order(x, y));
    let mut out: Vec<Vec<&Value>> = Vec::new();
    for r in sorted {
        if out.last().is_none_or(|last| !rows_close(last, &r, tol)) {
            out.push(r);
        }
    }
    out
}

pub(super) fn judge(
    case: &Case<'_>,
    gold: Option<&QueryResult>,
    pred: &QueryResult,
    tol: f64,
) -> Verdict {
    let Some(gold) = gold else {
        return Verdict::wrong(Reason::Mismatch);
    };
    let plan = OrderPlan::cached(case.gold_sql, case.dialect);
    let width = gold.columns.len().saturating_sub(plan.extra);
    let gold_rows: Vec<Vec<&Value>> = gold
        .rows
        .iter()
        .map(|r| r[..width].iter().collect())
        .collect();
    let pred_width = pred.columns.len();
    if pred_width != width {
        return Verdict::wrong(Reason::ColumnCount {
            gold: width,
            pred: pred_width,
        });
    }
    if gold_rows.is_empty() && pred.rows.is_empty() {
        return Verdict::right();
    }
    // Candidate pred columns for each gold column: the same bag of values.
    let gold_cols: Vec<Vec<Vec<&Value>>> = (0..width)
        .map(|c| gold.rows.iter().map(|r| vec![&r[c]]).collect())
        .collect();
    let pred_cols: Vec<Vec<Vec<&Value>>> = (0..width)
        .map(|c| pred.rows.iter().map(|r| vec![&r[c]]).collect())
        .collect();
    let same_rows = gold_rows.len() == pred.rows.len();
    let candidates: Vec<Vec<usize>> = (0..width)
        .map(|g| {
            let mut c: Vec<usize> = (0..width)
                .filter(|&p| same_rows && bags_close(&gold_cols[g], &pred_cols[p], tol))
                .collect();
            // The prediction's own order first.
            c.sort_by_key(|&p| p != g);
            c
        })
        .collect();

    let tie_groups = plan
        .keys
        .as_ref()
        .map(|keys| tie_groups(gold, keys, width, plan.strict, tol));
    let mut bag_equal_seen = false;
    let mut order_failure = None;
    if same_rows {
        let mut perm = Vec::with_capacity(width);
        let mut used = vec![false; width];
        search(&candidates, &mut perm, &mut used, &mut |perm| {
            let permuted: Vec<Vec<&Value>> = pred
                .rows
                .iter()
                .map(|r| perm.iter().map(|&p| &r[p]).collect())
                .collect();
            if !bags_close(&gold_rows, &permuted, tol) {
                return false;
            }
            bag_equal_seen = true;
            match &tie_groups {
                None => true,
                Some(groups) => {
                    for &(start, end) in groups {
                        if !bags_close(&gold_rows[start..end], &permuted[start..end], tol) {
                            order_failure = Some(order_failure.unwrap_or(start).min(start));
                            return false;
                        }
                    }
                    true
                }
            }
        });
        if bag_equal_seen && order_failure.is_none() {
            return Verdict::right();
        }
        if bag_equal_seen && let Some(row) = order_failure {
            return Verdict::wrong(Reason::Order { row });
        }
    }
    // Not the same bag. The same distinct rows, repeated differently?
    let pred_rows: Vec<Vec<&Value>> = pred.rows.iter().map(|r| r.iter().collect()).collect();
    let gd = distinct_rows(&gold_rows, tol);
    if gd.len() <= 2000 {
        let gold_distinct_cols: Vec<Vec<Vec<&Value>>> = (0..width)
            .map(|c| gd.iter().map(|r| vec![r[c]]).collect())
            .collect();
        let pd = distinct_rows(&pred_rows, tol);
        if pd.len() == gd.len() {
            let pd_cols: Vec<Vec<Vec<&Value>>> = (0..width)
                .map(|c| pd.iter().map(|r| vec![r[c]]).collect())
                .collect();
            let cands: Vec<Vec<usize>> = (0..width)
                .map(|g| {
                    (0..width)
                        .filter(|&p| bags_close(&gold_distinct_cols[g], &pd_cols[p], tol))
                        .collect()
                })
                .collect();
            let mut perm = Vec::new();
            let mut used = vec![false; width];
            let dup = search(&cands, &mut perm, &mut used, &mut |perm| {
                let permuted: Vec<Vec<&Value>> = pd
                    .iter()
                    .map(|r| perm.iter().map(|&p| r[p]).collect())
                    .collect();
                bags_close(&gd, &permuted, tol)
            });
            if dup {
                return Verdict::wrong(Reason::Duplicates);
            }
        }
    }
    if gold_rows.len() != pred.rows.len() {
        return Verdict::wrong(Reason::RowCount {
            gold: gold_rows.len(),
            pred: pred.rows.len(),
        });
    }
    Verdict::wrong(first_difference(
        &gold_rows,
        &pred_rows,
        tie_groups.is_some(),
        tol,
    ))
}

/// Consecutive gold rows with equal ORDER BY keys, as (start, end) ranges.
fn tie_groups(
    gold: &QueryResult,
    keys: &[KeyColumn],
    width: usize,
    strict: bool,
    tol: f64,
) -> Vec<(usize, usize)> {
    let n = gold.rows.len();
    if strict || keys.is_empty() {
        return (0..n).map(|i| (i, i + 1)).collect();
    }
    fn key<'r>(row: &'r [Value], keys: &[KeyColumn], width: usize) -> Vec<&'r Value> {
        keys.iter()
            .map(|k| match k {
                KeyColumn::Output(i) => &row[*i],
                KeyColumn::Extra(i) => &row[width + i],
            })
            .collect()
    }
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n
            || !rows_close(
                &key(&gold.rows[i], keys, width),
                &key(&gold.rows[start], keys, width),
                tol,
            )
        {
            groups.push((start, i));
            start = i;
        }
    }
    groups
}

/// The first gold row the prediction lacks, and the first cell where it differs from the most
/// similar predicted row (the row at the same position when order matters).
fn first_difference(gold: &[Vec<&Value>], pred: &[Vec<&Value>], ordered: bool, tol: f64) -> Reason {
    let differing_cell = |g: &[&Value], p: &[&Value]| -> Option<usize> {
        g.iter().zip(p).position(|(x, y)| !close(x, y, tol))
    };
    if ordered || gold.len() > 2000 {
        for (r, (g, p)) in gold.iter().zip(pred).enumerate() {
            if let Some(c) = differing_cell(g, p) {
                return Reason::Values {
                    row: r,
                    column: c,
                    gold: g[c].clone(),
                    pred: p[c].clone(),
                };
            }
        }
        return Reason::Mismatch;
    }
    let mut used = vec![false; pred.len()];
    for (r, g) in gold.iter().enumerate() {
        if let Some(i) = (0..pred.len()).find(|&i| !used[i] && rows_close(g, &pred[i], tol)) {
            used[i] = true;
            continue;
        }
        // The unused pred row sharing the most cells with this gold row.
        let best = (0..pred.len()).filter(|&i| !used[i]).max_by_key(|&i| {
            g.iter()
                .zip(&pred[i])
                .filter(|(x, y)| close(x, y, tol))
                .count()
        });
        if let Some(i) = best
            && let Some(c) = differing_cell(g, &pred[i])
        {
            return Reason::Values {
                row: r,
                column: c,
                gold: g[c].clone(),
                pred: pred[i][c].clone(),
            };
        }
    }
    Reason::Mismatch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::compare::tests::result;

    fn judge_rows(gold_sql: &str, gold: QueryResult, pred: QueryResult) -> Verdict {
        let case = Case {
            gold_sql,
            ..Case::default()
        };
        judge(&case, Some(&gold), &pred, DEFAULT_FLOAT_TOLERANCE)
    }

    fn ints(rows: &[&[i64]]) -> Vec<Vec<Value>> {
        rows.iter()
            .map(|r| r.iter().map(|&i| Value::Integer(i)).collect())
            .collect()
    }

    #[test]
    fn ties_on_the_order_keys_may_come_in_any_order() {
        let sql = "SELECT name, age FROM t ORDER BY age DESC";
        let gold = result(
            &["name", "age"],
            ints(&[&[1, 40], &[2, 30], &[3, 30], &[4, 20]]),
        );
        let tie_swapped = result(
            &["name", "age"],
            ints(&[&[1, 40], &[3, 30], &[2, 30], &[4, 20]]),
        );
        assert!(judge_rows(sql, gold.clone(), tie_swapped).correct);
        let out_of_order = result(
            &["name", "age"],
            ints(&[&[4, 20], &[1, 40], &[2, 30], &[3, 30]]),
        );
        assert_eq!(
            judge_rows(sql, gold.clone(), out_of_order).reason,
            Some(Reason::Order { row: 0 })
        );
        // Column permutation is allowed; the keys follow the gold's columns.
        let swapped = result(
            &["age", "name"],
            ints(&[&[40, 1], &[30, 3], &[30, 2], &[20, 4]]),
        );
        assert!(judge_rows(sql, gold, swapped).correct);
    }

    #[test]
    fn keys_outside_the_output_are_appended_to_the_gold_query() {
        let plan = OrderPlan::for_gold(
            "SELECT name FROM t ORDER BY age DESC, id",
            SqlDialect::Sqlite,
        );
        assert_eq!(plan.extra, 2);
        assert_eq!(
            plan.query,
            "SELECT name, age, id FROM t ORDER BY age DESC, id"
        );
        assert_eq!(
            plan.keys,
            Some(vec![KeyColumn::Extra(0), KeyColumn::Extra(1)])
        );
        let plan = OrderPlan::for_gold(
            "SELECT name, count(*) AS n FROM t GROUP BY name ORDER BY n",
            SqlDialect::Sqlite,
        );
        assert_eq!(plan.extra, 0);
        assert_eq!(plan.keys, Some(vec![KeyColumn::Output(1)]));
        let plan = OrderPlan::for_gold(
            "SELECT a FROM t UNION SELECT b FROM s ORDER BY 1",
            SqlDialect::Sqlite,
        );
        assert_eq!(plan.keys, Some(vec![KeyColumn::Output(0)]));
        // A key inside a subquery does not order the result.
        let plan = OrderPlan::for_gold(
            "SELECT a FROM t WHERE a IN (SELECT a FROM s ORDER BY a LIMIT 3)",
            SqlDialect::Sqlite,
        );
        assert_eq!(plan.keys, None);
        // DISTINCT with a hidden key: cannot append, so order is strict.
        let plan = OrderPlan::for_gold("SELECT DISTINCT a FROM t ORDER BY b", SqlDialect::Sqlite);
        assert!(plan.strict);
    }

    #[test]
    fn appended_keys_are_printed_in_the_targets_dialect() {
        // PostgreSQL reads a subscript and an escape string; SQLite's grammar reads aliases,
        // and the query it would print back fails on PostgreSQL.
        let gold = "SELECT name, tags[1], E'x' FROM items ORDER BY price";
        let plan = OrderPlan::for_gold(gold, SqlDialect::Postgres);
        assert_eq!(
            plan.query,
            "SELECT name, tags[1], E'x', price FROM items ORDER BY price"
        );
        assert_eq!(
            OrderPlan::for_gold(gold, SqlDialect::Sqlite).query,
            "SELECT name, tags AS [1], E AS 'x', price FROM items ORDER BY price"
        );
        let keys = OrderKeys::of(gold, SqlDialect::Postgres).unwrap();
        assert_eq!(keys.extra(), 1);
        assert_eq!(keys.query, plan.query);
    }

    #[test]
    fn every_mismatch_has_a_reason() {
        let sql = "SELECT a, b FROM t";
        let gold = result(&["a", "b"], ints(&[&[1, 2], &[3, 4]]));
        let r = |pred: Vec<Vec<Value>>, cols: &[&str]| {
            judge_rows(sql, gold.clone(), result(cols, pred))
                .reason
                .unwrap()
        };
        assert_eq!(
            r(ints(&[&[1], &[3]]), &["a"]),
            Reason::ColumnCount { gold: 2, pred: 1 }
        );
        assert_eq!(
            r(ints(&[&[1, 2]]), &["a", "b"]),
            Reason::RowCount { gold: 2, pred: 1 }
        );
        assert_eq!(
            r(ints(&[&[1, 2], &[3, 4], &[3, 4]]), &["a", "b"]),
            Reason::Duplicates
        );
        assert_eq!(
            r(ints(&[&[3, 4], &[1, 5]]), &["a", "b"]),
            Reason::Values {
                row: 0,
                column: 1,
                gold: Value::Integer(2),
                pred: Value::Integer(5)
            }
        );
    }

    #[test]
    fn floats_within_tolerance_and_ints_equal_reals() {
        let sql = "SELECT x FROM t";
        let gold = result(
            &["x"],
            vec![vec![Value::Real(0.1 + 0.2)], vec![Value::Integer(40)]],
        );
        let pred = result(
            &["x"],
            vec![vec![Value::Real(40.0)], vec![Value::Real(0.3)]],
        );
        assert!(judge_rows(sql, gold.clone(), pred).correct);
        let rounded = result(
            &["x"],
            vec![vec![Value::Real(0.30)], vec![Value::Real(40.001)]],
        );
        assert!(!judge_rows(sql, gold, rounded).correct);
    }

    #[test]
    fn empty_results_need_the_same_width() {
        let sql = "SELECT a FROM t WHERE 0";
        assert!(judge_rows(sql, result(&["a"], vec![]), result(&["b"], vec![])).correct);
        assert!(!judge_rows(sql, result(&["a"], vec![]), result(&["a", "b"], vec![])).correct);
    }
}
