//! `bird_ex`: BIRD execution accuracy (`evaluation_ex.calculate_ex`: the set of predicted row
//! tuples equals the set of gold row tuples), with BIRD's soft F1
//! (`evaluation_f1.calculate_f1_score`) as the verdict's score.

use std::collections::HashSet;

use super::pyvalue::{PyKey, row_key};
use super::{Reason, Verdict};
use crate::sql::{QueryResult, Value};

pub(super) fn judge(gold: Option<&QueryResult>, pred: &QueryResult) -> Verdict {
    let Some(gold) = gold else {
        return Verdict::from_bool(false);
    };
    let correct = ex(&gold.rows, &pred.rows);
    Verdict {
        correct,
        reason: (!correct).then_some(Reason::Mismatch),
        score: Some(soft_f1(&gold.rows, &pred.rows)),
        subset_correct: None,
    }
}

/// `set(predicted_res) == set(ground_truth_res)`.
pub(super) fn ex(gold: &[Vec<Value>], pred: &[Vec<Value>]) -> bool {
    let g: HashSet<Vec<PyKey<'_>>> = gold.iter().map(|r| row_key(r)).collect();
    let p: HashSet<Vec<PyKey<'_>>> = pred.iter().map(|r| row_key(r)).collect();
    g == p
}

/// Rows with duplicates dropped, first occurrence kept (`list(dict.fromkeys(rows))`).
fn dedup(rows: &[Vec<Value>]) -> Vec<Vec<PyKey<'_>>> {
    let mut seen = HashSet::new();
    rows.iter()
        .map(|r| row_key(r))
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

/// BIRD's soft F1: rows paired by position after dedup; per pair, the share of values found
/// in the other row, scaled by the gold row's width.
pub(super) fn soft_f1(gold: &[Vec<Value>], pred: &[Vec<Value>]) -> f64 {
    if gold.is_empty() && pred.is_empty() {
        return 1.0;
    }
    let pred = dedup(pred);
    let gold = dedup(gold);
    let (mut tp, mut fp, mut fneg) = (0.0f64, 0.0f64, 0.0f64);
    for (i, g) in gold.iter().enumerate() {
        let Some(p) = pred.get(i) else {
            fneg += 1.0;
            continue;
        };
        let width = g.len() as f64;
        if width == 0.0 {
            continue;
        }
        let matches = p.iter().filter(|v| g.contains(v)).count() as f64;
        let pred_only = p.len() as f64 - matches;
        let gold_only = g.iter().filter(|v| !p.contains(v)).count() as f64;
        tp += matches / width;
        fp += pred_only / width;
        fneg += gold_only / width;
    }
    if pred.len() > gold.len() {
        fp += (pred.len() - gold.len()) as f64;
    }
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fneg > 0.0 {
        tp / (tp + fneg)
    } else {
        0.0
    };
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_order_matters_and_duplicates_do_not() {
        let i = Value::Integer;
        let t = |s: &str| Value::Text(s.into());
        let gold = vec![vec![t("a"), i(1)], vec![t("b"), i(2)]];
        let swapped = vec![vec![i(1), t("a")], vec![i(2), t("b")]];
        assert!(!ex(&gold, &swapped));
        let dup_reordered = vec![vec![t("b"), i(2)], vec![t("a"), i(1)], vec![t("a"), i(1)]];
        assert!(ex(&gold, &dup_reordered));
        assert!(ex(&[], &[]));
    }

    #[test]
    fn soft_f1_on_the_mini_dev_readme_example() {
        // The worked example of bird-bench/mini_dev's README: gold (Apple, 325), (Orange,
        // NULL), (Banana, 119); predicted (325, Apple), (191, Orange), (NULL, Banana). The
        // README's table counts raw cells and leaves the NULLs out, and says 0.8; the code
        // (`evaluation_f1.calculate_row_match`) counts a NULL like any value: row 2 has
        // 191 predicted only and NULL gold only, row 3 NULL predicted only and 119 gold
        // only, so tp = 1 + 0.5 + 0.5, fp = fn = 1 and F1 = 2/3. lode follows the code.
        let (i, t) = (Value::Integer, |s: &str| Value::Text(s.into()));
        let gold = vec![
            vec![t("Apple"), i(325)],
            vec![t("Orange"), Value::Null],
            vec![t("Banana"), i(119)],
        ];
        let pred = vec![
            vec![i(325), t("Apple")],
            vec![i(191), t("Orange")],
            vec![Value::Null, t("Banana")],
        ];
        let f1 = soft_f1(&gold, &pred);
        assert!((f1 - 2.0 / 3.0).abs() < 1e-12, "{f1}");
        // Identical rows in another column order score 1, as the README says.
        let swapped: Vec<Vec<Value>> = gold
            .iter()
            .map(|r| r.iter().rev().cloned().collect())
            .collect();
        assert_eq!(soft_f1(&gold, &swapped), 1.0);
    }

    #[test]
    fn soft_f1_pairs_rows_by_position() {
        let i = Value::Integer;
        let gold = vec![vec![i(1), i(2)], vec![i(3), i(4)]];
        assert_eq!(soft_f1(&gold, &gold), 1.0);
        // Extra column: each row matches 2 of 2 gold values plus 1 pred-only (/2).
        let extra = vec![vec![i(1), i(2), i(9)], vec![i(3), i(4), i(9)]];
        let f1 = soft_f1(&gold, &extra);
        assert!((f1 - 0.8).abs() < 1e-12, "{f1}");
        assert_eq!(soft_f1(&gold, &[]), 0.0);
    }
}
