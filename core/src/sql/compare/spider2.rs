//! `spider2`: Spider 2.0's result comparison (`compare_pandas_table` of the spider2-lite
//! evaluation): every **gold column** must be found, as a whole vector of values, among the
//! prediction's columns (extra predicted columns are allowed, column order and names are
//! free); numbers match within an absolute tolerance of 0.01, NULL matches NULL; a column's
//! values are compared in row order, or sorted first when order does not matter (here: when
//! the gold's top-level query has no ORDER BY, lode's stand-in for the benchmark's per-task
//! `ignore_order` flag). A question may have several accepted gold answers (the gold text
//! split on `;`, with sql-eval's `{a, b}` alternatives expanded): matching any one is right.

use super::pyvalue::python_repr;
use super::{Case, Outcome, Reason, Verdict};
use crate::sql::{QueryResult, SqlDialect, Value};

/// `math.isclose(a, b, abs_tol=1e-2)` in the reference.
pub(super) const TOLERANCE: f64 = 1e-2;

pub(super) fn judge(case: &Case<'_>, golds: &[Outcome<'_>], pred: &QueryResult) -> Verdict {
    let ignore_order = !has_top_level_order_by(case.gold_sql, case.dialect);
    let mut missing = None;
    for gold in golds {
        match gold {
            Ok(g) => match missing_column(g, pred, ignore_order) {
                None => return Verdict::right(),
                Some(c) => {
                    missing.get_or_insert(c);
                }
            },
            Err(e) => {
                return Verdict::wrong(Reason::GoldError {
                    message: e.to_string(),
                });
            }
        }
    }
    let _ = missing;
    Verdict::wrong(Reason::Mismatch)
}

/// The first gold column no predicted column matches, or `None` when every one is found.
fn missing_column(gold: &QueryResult, pred: &QueryResult, ignore_order: bool) -> Option<usize> {
    let gold_cols = transpose(gold);
    let pred_cols = transpose(pred);
    gold_cols
        .iter()
        .position(|g| !pred_cols.iter().any(|p| vectors_match(g, p, ignore_order)))
}

/// The result's columns as vectors of values, in row order.
fn transpose(r: &QueryResult) -> Vec<Vec<&Value>> {
    let width = r.columns.len();
    (0..width)
        .map(|c| r.rows.iter().filter_map(|row| row.get(c)).collect())
        .collect()
}

/// `vectors_match` of the reference: equal length; pairwise NULL–NULL, numbers within the
/// tolerance, anything else by equality (text `'1'` is not the number 1).
fn vectors_match(a: &[&Value], b: &[&Value], ignore_order: bool) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    if ignore_order {
        a.sort_by_key(|v| sort_key(v));
        b.sort_by_key(|v| sort_key(v));
    }
    a.iter().zip(&b).all(|(x, y)| values_match(x, y))
}

/// The reference's sort key: `(x is None, str(x), isinstance(x, (int, float)))`.
fn sort_key(v: &Value) -> (bool, String, bool) {
    (
        v.is_null(),
        python_repr(v),
        matches!(v, Value::Integer(_) | Value::Real(_)),
    )
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Real(f) => Some(*f),
        _ => None,
    }
}

fn values_match(a: &Value, b: &Value) -> bool {
    if a.is_null() && b.is_null() {
        return true;
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) => {
            // math.isclose with rel_tol 1e-9 and abs_tol 1e-2.
            let diff = (x - y).abs();
            diff <= (1e-9 * x.abs().max(y.abs())).max(TOLERANCE)
        }
        _ => a == b,
    }
}

/// Whether the query's outermost level sorts (an ORDER BY inside a subquery does not count).
fn has_top_level_order_by(sql: &str, dialect: SqlDialect) -> bool {
    crate::sql::analyze::parse_query_in(sql, dialect).is_ok_and(|q| q.order_by.is_some())
}

#[cfg(test)]
mod tests {
    use super::super::Profile;
    use super::super::tests::result;
    use super::*;
    use crate::sql::ExecError;

    fn judge_sql(gold_sql: &str, golds: &[&QueryResult], pred: &QueryResult) -> bool {
        let case = Case {
            gold_sql,
            ..Case::default()
        };
        let outcomes: Vec<Outcome<'_>> = golds.iter().map(|g| Ok(*g)).collect();
        judge(&case, &outcomes, pred).correct
    }

    fn ints(rows: &[&[i64]]) -> Vec<Vec<Value>> {
        rows.iter()
            .map(|r| r.iter().map(|&i| Value::Integer(i)).collect())
            .collect()
    }

    // The examples below follow the definition of `compare_pandas_table` one rule at a time.

    #[test]
    fn extra_predicted_columns_are_allowed_missing_ones_are_not() {
        let gold = result(&["name"], vec![vec![Value::Text("a".into())]]);
        let pred = result(
            &["id", "name"],
            vec![vec![Value::Integer(1), Value::Text("a".into())]],
        );
        assert!(judge_sql("SELECT name FROM t", &[&gold], &pred));
        // The other way round: the gold's `id` column is not in the prediction.
        assert!(!judge_sql("SELECT id, name FROM t", &[&pred], &gold));
    }

    #[test]
    fn column_order_and_names_are_free() {
        let gold = result(&["a", "b"], ints(&[&[1, 2], &[3, 4]]));
        let pred = result(&["y", "x"], ints(&[&[2, 1], &[4, 3]]));
        assert!(judge_sql("SELECT a, b FROM t", &[&gold], &pred));
    }

    #[test]
    fn numbers_match_within_an_absolute_hundredth() {
        let gold = result(&["v"], vec![vec![Value::Real(10.0)]]);
        let near = result(&["v"], vec![vec![Value::Real(10.009)]]);
        let far = result(&["v"], vec![vec![Value::Real(10.02)]]);
        let int = result(&["v"], vec![vec![Value::Integer(10)]]);
        let text = result(&["v"], vec![vec![Value::Text("10".into())]]);
        assert!(judge_sql("SELECT v FROM t", &[&gold], &near));
        assert!(!judge_sql("SELECT v FROM t", &[&gold], &far));
        assert!(judge_sql("SELECT v FROM t", &[&gold], &int));
        assert!(!judge_sql("SELECT v FROM t", &[&gold], &text));
    }

    #[test]
    fn row_order_counts_only_when_the_gold_sorts() {
        let gold = result(&["a"], ints(&[&[1], &[2], &[3]]));
        let shuffled = result(&["a"], ints(&[&[3], &[1], &[2]]));
        assert!(judge_sql("SELECT a FROM t", &[&gold], &shuffled));
        assert!(!judge_sql(
            "SELECT a FROM t ORDER BY a",
            &[&gold],
            &shuffled
        ));
        // An ORDER BY inside a subquery is not the result's order.
        assert!(judge_sql(
            "SELECT a FROM (SELECT a FROM t ORDER BY a LIMIT 3)",
            &[&gold],
            &shuffled
        ));
    }

    #[test]
    fn columns_are_compared_as_whole_vectors_not_row_by_row() {
        // Each gold column is found on its own, even though no predicted row equals a gold
        // row: the reference compares columns independently.
        let gold = result(&["a", "b"], ints(&[&[1, 10], &[2, 20]]));
        let pred = result(&["a", "b"], ints(&[&[1, 20], &[2, 10]]));
        assert!(judge_sql("SELECT a, b FROM t", &[&gold], &pred));
        // With an ORDER BY the order of each column's values counts.
        assert!(!judge_sql("SELECT a, b FROM t ORDER BY a", &[&gold], &pred));
    }

    #[test]
    fn nulls_match_nulls_and_lengths_must_agree() {
        let gold = result(&["a"], vec![vec![Value::Null], vec![Value::Integer(1)]]);
        let pred = result(&["a"], vec![vec![Value::Integer(1)], vec![Value::Null]]);
        let short = result(&["a"], vec![vec![Value::Integer(1)]]);
        assert!(judge_sql("SELECT a FROM t", &[&gold], &pred));
        assert!(!judge_sql("SELECT a FROM t", &[&gold], &short));
    }

    #[test]
    fn any_accepted_gold_answer_is_enough() {
        let by_name = result(&["name"], vec![vec![Value::Text("a".into())]]);
        let by_id = result(&["id"], ints(&[&[7]]));
        let pred = result(&["id"], ints(&[&[7]]));
        assert!(judge_sql(
            "SELECT name FROM t; SELECT id FROM t",
            &[&by_name, &by_id],
            &pred
        ));
        assert!(!judge_sql("SELECT name FROM t", &[&by_name], &pred));
        // The profile executes every alternative.
        let p = Profile::from_name("spider2", false).unwrap();
        assert_eq!(
            p.gold_queries("SELECT name FROM t; SELECT id FROM t", SqlDialect::Sqlite)
                .len(),
            2
        );
    }

    #[test]
    fn a_failing_gold_is_a_gold_error() {
        let e = ExecError::Timeout {
            elapsed: std::time::Duration::from_secs(1),
            limit: std::time::Duration::from_secs(1),
        };
        let pred = result(&["a"], ints(&[&[1]]));
        let case = Case {
            gold_sql: "SELECT a FROM t",
            ..Case::default()
        };
        let v = judge(&case, &[Err(&e)], &pred);
        assert_eq!(v.reason.map(|r| r.kind()), Some("gold_error"));
    }
}
