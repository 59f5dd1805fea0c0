//! Result comparison: whether a predicted query's result matches the gold query's, under a
//! named profile.
//!
//! `lode` (the default) is where correct semantics live: bags of rows, columns in any order,
//! row order checked only over the gold's top-level ORDER BY keys, a float tolerance, and a
//! reason for every mismatch. `spider_ts`, `bird_ex` and `defog` are **parity** profiles: they
//! reproduce the verdicts of the field's reference evaluators, oddities included, so numbers
//! can be compared with published ones. [`PARITY_DEVIATIONS`] lists, in one place, where each
//! parity profile departs from correct semantics and where lode departs from the reference
//! code it reproduces.
//!
//! A profile decides which texts to execute ([`Profile::gold_queries`],
//! [`Profile::pred_query`]) and judges the outcomes ([`Profile::judge`]); executing them is
//! the caller's job (`pipeline::eval`), always through the safe executor.

mod bird;
mod defog;
mod lode;
mod pyvalue;
mod spider;
mod spider2;

use serde::Serialize;

use super::{ExecError, QueryResult, SqlDialect, Value};

pub use defog::expand_gold_alternatives;
pub use lode::OrderKeys;
pub use pyvalue::{PyKey, py_eq, python_repr};
pub use spider::{remove_distinct, spider_prepare_pred};

/// Where each parity profile departs from correct semantics, and where lode's reproduction
/// departs from the reference code. Printed by `lode eval-files --explain-profiles`.
pub const PARITY_DEVIATIONS: &str = include_str!("PROFILES.md");

/// A named comparison profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Profile {
    /// Spider test-suite execution match (`taoyds/test-suite-sql-eval`, one database).
    SpiderTs { keep_distinct: bool },
    /// BIRD execution accuracy (`bird-bench/mini_dev`): set of positional row tuples. The
    /// verdict carries BIRD's soft F1 as its score.
    BirdEx,
    /// defog sql-eval (`defog-ai/sql-eval`): exact match, and the "correct" subset verdict.
    Defog,
    /// Ours: multiset rows, any column order, order over the top-level ORDER BY keys only,
    /// relative float tolerance, a reason for every mismatch.
    Lode { float_tolerance: f64 },
    /// Spider 2.0-style: every gold column found among the predicted ones (extra columns
    /// allowed), numbers within 0.01, several accepted gold answers.
    Spider2,
}

impl Default for Profile {
    fn default() -> Self {
        Profile::Lode {
            float_tolerance: lode::DEFAULT_FLOAT_TOLERANCE,
        }
    }
}

/// Profile names accepted by `--profile`.
pub const PROFILE_NAMES: [&str; 5] = ["lode", "spider_ts", "bird_ex", "defog", "spider2"];

impl Profile {
    /// Parses a profile name; `keep_distinct` applies to `spider_ts` only.
    pub fn from_name(name: &str, keep_distinct: bool) -> Result<Profile, String> {
        match name {
            "lode" => Ok(Profile::default()),
            "spider_ts" | "spider" | "test_suite" => Ok(Profile::SpiderTs { keep_distinct }),
            "bird_ex" | "bird" => Ok(Profile::BirdEx),
            "defog" => Ok(Profile::Defog),
            "spider2" | "spider_2" => Ok(Profile::Spider2),
            other => Err(format!(
                "unknown comparison profile `{other}`; choose one of {}",
                PROFILE_NAMES.join(", ")
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Profile::SpiderTs { .. } => "spider_ts",
            Profile::BirdEx => "bird_ex",
            Profile::Defog => "defog",
            Profile::Lode { .. } => "lode",
            Profile::Spider2 => "spider2",
        }
    }

    /// The texts to execute for the gold side, in order, `gold_sql` read in the target's
    /// `dialect`. Results depend only on the database and the text, so callers cache them by
    /// (database, text).
    pub fn gold_queries(&self, gold_sql: &str, dialect: SqlDialect) -> Vec<String> {
        match self {
            Profile::SpiderTs { keep_distinct } => {
                vec![spider::prepare_gold(gold_sql, *keep_distinct)]
            }
            Profile::BirdEx => vec![gold_sql.to_string()],
            Profile::Defog => defog::expand_gold_alternatives(gold_sql),
            Profile::Lode { .. } => vec![lode::OrderPlan::cached(gold_sql, dialect).query.clone()],
            Profile::Spider2 => defog::expand_gold_alternatives(gold_sql),
        }
    }

    /// The gold query's Spider hardness (`None` when it does not parse) and
    /// [`gold_queries`](Self::gold_queries), from one parse of the text in `dialect`.
    pub fn gold_plan(
        &self,
        gold_sql: &str,
        dialect: SqlDialect,
    ) -> (Option<crate::sql::analyze::Hardness>, Vec<String>) {
        let parsed = crate::sql::analyze::parse_query_in(gold_sql, dialect).ok();
        let hardness = parsed
            .as_ref()
            .map(|q| crate::sql::analyze::spider_counts(q).hardness());
        let queries = match (self, parsed) {
            (Profile::Lode { .. }, Some(query)) => {
                let plan = lode::OrderPlan::cached_with(gold_sql, dialect, || {
                    lode::OrderPlan::from_query(gold_sql, query)
                });
                vec![plan.query.clone()]
            }
            _ => self.gold_queries(gold_sql, dialect),
        };
        (hardness, queries)
    }

    /// The text to execute for the prediction.
    pub fn pred_query(&self, pred_sql: &str) -> String {
        match self {
            Profile::SpiderTs { keep_distinct } => spider_prepare_pred(pred_sql, *keep_distinct),
            _ => pred_sql.to_string(),
        }
    }

    /// Judges one pair from the outcomes of [`gold_queries`](Self::gold_queries) (same order)
    /// and [`pred_query`](Self::pred_query).
    pub fn judge(&self, case: &Case<'_>, golds: &[Outcome<'_>], pred: Outcome<'_>) -> Verdict {
        let Some(first_gold) = golds.first() else {
            return Verdict::wrong(Reason::GoldError {
                message: "the gold query is empty".into(),
            });
        };
        // An execution failure decides the verdict before any comparison, in every profile:
        // the prediction is wrong, and the reason says why.
        if let Err(e) = first_gold {
            return Verdict::wrong(Reason::GoldError {
                message: e.to_string(),
            });
        }
        let pred = match pred {
            Ok(p) => p,
            Err(e) => return Verdict::wrong(Reason::from_pred_error(e)),
        };
        for g in golds.iter().flatten() {
            if g.truncated {
                return Verdict::wrong(Reason::TooLarge { side: Side::Gold });
            }
        }
        if pred.truncated {
            return Verdict::wrong(Reason::TooLarge { side: Side::Pred });
        }
        match self {
            Profile::SpiderTs { keep_distinct } => {
                let gold = first_gold.as_ref().ok().copied();
                spider::judge(case, gold, pred, *keep_distinct)
            }
            Profile::BirdEx => {
                let gold = first_gold.as_ref().ok().copied();
                bird::judge(gold, pred)
            }
            Profile::Defog => defog::judge(case, golds, pred),
            Profile::Spider2 => spider2::judge(case, golds, pred),
            Profile::Lode { float_tolerance } => {
                let gold = first_gold.as_ref().ok().copied();
                lode::judge(case, gold, pred, *float_tolerance)
            }
        }
    }
}

/// Executes a pair on `db` (the gold queries, then the prediction) and judges it, the gold
/// SQL read in `db`'s dialect. The evaluation pipeline does the same with a cache of gold
/// results and many threads.
pub fn evaluate(db: &super::Database, profile: &Profile, case: &Case<'_>) -> Verdict {
    let case = &Case {
        dialect: SqlDialect::from_name(db.dialect_name()),
        ..*case
    };
    let golds: Vec<Result<QueryResult, ExecError>> = profile
        .gold_queries(case.gold_sql, case.dialect)
        .iter()
        .map(|q| db.query(q))
        .collect();
    let pred = db.query(&profile.pred_query(case.pred_sql));
    let gold_refs: Vec<Outcome<'_>> = golds.iter().map(Result::as_ref).collect();
    profile.judge(case, &gold_refs, pred.as_ref())
}

/// What a profile may look at besides the results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Case<'a> {
    pub gold_sql: &'a str,
    pub pred_sql: &'a str,
    /// The question (defog sorts rows when it asks to order, sort or arrange).
    pub question: &'a str,
    /// The target's dialect, which the gold SQL is read in (its ORDER BY keys).
    pub dialect: SqlDialect,
}

/// The outcome of executing one query.
pub type Outcome<'a> = Result<&'a QueryResult, &'a ExecError>;

/// Which query a reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Gold,
    Pred,
}

/// Why a prediction was judged wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The results have different numbers of rows.
    RowCount { gold: usize, pred: usize },
    /// The results have different numbers of columns.
    ColumnCount { gold: usize, pred: usize },
    /// The same rows, in an order the gold's ORDER BY does not allow.
    Order { row: usize },
    /// A value differs; `row`/`column` index the gold result.
    Values {
        row: usize,
        column: usize,
        gold: Value,
        pred: Value,
    },
    /// The same distinct rows, repeated a different number of times.
    Duplicates,
    /// The results differ (a parity profile, which does not say how).
    Mismatch,
    /// The prediction failed to execute.
    PredError { message: String },
    /// The gold query failed to execute (a defect of the eval set, not of the model).
    GoldError { message: String },
    /// A query ran past the time limit.
    Timeout { side: Side },
    /// The prediction was refused: not a single read-only statement.
    Rejected { reason: String },
    /// A result had more rows than the evaluation's row cap.
    TooLarge { side: Side },
    /// The model gave no prediction (inference failed or no SQL in its reply).
    NoPrediction { message: String },
    /// Right on the original database, wrong on a neighbour database (1-based): the
    /// prediction fits this data, not the question.
    RightByAccident { neighbour: usize, detail: String },
}

impl Reason {
    fn from_pred_error(e: &ExecError) -> Reason {
        match e {
            ExecError::Timeout { .. } => Reason::Timeout { side: Side::Pred },
            ExecError::Rejected { reason } => Reason::Rejected {
                reason: reason.clone(),
            },
            other => Reason::PredError {
                message: other.to_string(),
            },
        }
    }

    /// A short stable name: `row_count`, `values`, `timeout`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::RowCount { .. } => "row_count",
            Reason::ColumnCount { .. } => "column_count",
            Reason::Order { .. } => "order",
            Reason::Values { .. } => "values",
            Reason::Duplicates => "duplicates",
            Reason::Mismatch => "mismatch",
            Reason::PredError { .. } => "pred_error",
            Reason::GoldError { .. } => "gold_error",
            Reason::Timeout { .. } => "timeout",
            Reason::Rejected { .. } => "rejected",
            Reason::TooLarge { .. } => "too_large",
            Reason::NoPrediction { .. } => "no_prediction",
            Reason::RightByAccident { .. } => "right_by_accident",
        }
    }

    /// One line for a human.
    pub fn describe(&self) -> String {
        match self {
            Reason::RowCount { gold, pred } => format!("{pred} rows, expected {gold}"),
            Reason::ColumnCount { gold, pred } => format!("{pred} columns, expected {gold}"),
            Reason::Order { row } => format!("rows out of order from row {}", row + 1),
            Reason::Values {
                row,
                column,
                gold,
                pred,
            } => format!(
                "row {}, column {}: {} instead of {}",
                row + 1,
                column + 1,
                pred.sql_literal(),
                gold.sql_literal()
            ),
            Reason::Duplicates => "the same rows, repeated a different number of times".into(),
            Reason::Mismatch => "the results differ".into(),
            Reason::PredError { message } => format!("prediction failed: {message}"),
            Reason::GoldError { message } => format!("gold query failed: {message}"),
            Reason::Timeout { side: Side::Pred } => "prediction timed out".into(),
            Reason::Timeout { side: Side::Gold } => "gold query timed out".into(),
            Reason::Rejected { reason } => format!("prediction refused: {reason}"),
            Reason::TooLarge { side: Side::Pred } => "prediction returned too many rows".into(),
            Reason::TooLarge { side: Side::Gold } => "gold query returned too many rows".into(),
            Reason::NoPrediction { message } => format!("no prediction: {message}"),
            Reason::RightByAccident { neighbour, detail } => format!(
                "right on this database by accident: on neighbour database {neighbour}, {detail}"
            ),
        }
    }
}

/// A profile's judgement of one pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub correct: bool,
    /// Why not, when not correct.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// A graded score where the profile has one (BIRD's soft F1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// defog's second verdict: the gold result is contained in the prediction's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset_correct: Option<bool>,
}

impl Verdict {
    pub fn right() -> Verdict {
        Verdict {
            correct: true,
            reason: None,
            score: None,
            subset_correct: None,
        }
    }

    pub fn wrong(reason: Reason) -> Verdict {
        Verdict {
            correct: false,
            reason: Some(reason),
            score: None,
            subset_correct: None,
        }
    }

    fn from_bool(correct: bool) -> Verdict {
        if correct {
            Verdict::right()
        } else {
            Verdict::wrong(Reason::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> QueryResult {
        QueryResult {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            truncated: false,
            truncated_cells: 0,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn execution_failures_decide_before_comparison() {
        let ok = result(&["a"], vec![vec![Value::Integer(1)]]);
        let timeout = ExecError::Timeout {
            elapsed: Duration::from_secs(1),
            limit: Duration::from_secs(1),
        };
        let rejected = ExecError::Rejected {
            reason: "DROP TABLE t is not allowed".into(),
        };
        for profile in PROFILE_NAMES {
            let p = Profile::from_name(profile, false).unwrap();
            let case = Case::default();
            let v = p.judge(&case, &[Ok(&ok)], Err(&timeout));
            assert_eq!(
                v.reason.as_ref().map(Reason::kind),
                Some("timeout"),
                "{profile}"
            );
            let v = p.judge(&case, &[Ok(&ok)], Err(&rejected));
            assert_eq!(
                v.reason.as_ref().map(Reason::kind),
                Some("rejected"),
                "{profile}"
            );
            let v = p.judge(&case, &[Err(&rejected)], Ok(&ok));
            assert_eq!(
                v.reason.as_ref().map(Reason::kind),
                Some("gold_error"),
                "{profile}"
            );
            assert!(!v.correct);
        }
    }

    #[test]
    fn unknown_profile_names_the_choices() {
        let e = Profile::from_name("exact", false).unwrap_err();
        assert!(
            e.contains("lode, spider_ts, bird_ex, defog, spider2"),
            "{e}"
        );
    }
}
