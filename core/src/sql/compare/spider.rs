//! `spider_ts`: Spider test-suite execution match (`exec_eval.eval_exec_match` with one
//! database, `plug_value` off), reproduced with its oddities: see `PROFILES.md`.

use std::collections::{HashMap, HashSet};

use super::pyvalue::{PyKey, python_repr, python_type, row_key};
use super::{Case, Verdict};
use crate::sql::{QueryResult, Value};

/// The prediction as test-suite executes it: `value` → `1` (evaluation.py), `> =` closed up
/// (postprocess), and unless `keep_distinct`, only the first statement with every DISTINCT
/// token removed (`remove_distinct` keeps `sqlparse.parse(s)[0]`), then `YEAR(CURDATE())` →
/// `2020` at execution.
pub fn spider_prepare_pred(pred: &str, keep_distinct: bool) -> String {
    let pred = pred.replace("value", "1");
    prepare(&pred, keep_distinct)
}

/// The gold as test-suite executes it (the same steps but the `value` replacement).
pub fn prepare_gold(gold: &str, keep_distinct: bool) -> String {
    prepare(gold, keep_distinct)
}

fn prepare(sql: &str, keep_distinct: bool) -> String {
    let mut s = postprocess(sql);
    if !keep_distinct {
        s = remove_distinct(first_statement(&s));
    }
    replace_cur_year(&s)
}

fn postprocess(sql: &str) -> String {
    sql.replace("> =", ">=")
        .replace("< =", "<=")
        .replace("! =", "!=")
}

/// The text test-suite decides row order from (postprocessed, DISTINCT removed unless kept).
fn order_text(gold: &str, keep_distinct: bool) -> String {
    let s = postprocess(gold);
    if keep_distinct {
        s
    } else {
        remove_distinct(first_statement(&s))
    }
}

/// Byte ranges of quoted strings, quoted identifiers and comments, which no token rule
/// looks inside.
fn scan_opaque(sql: &str) -> Vec<(usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push((start, i));
            }
            b'[' => {
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push((start, i));
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                out.push((start, i));
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                out.push((start, i));
            }
            _ => i += 1,
        }
    }
    out
}

fn in_opaque(ranges: &[(usize, usize)], i: usize) -> bool {
    ranges.iter().any(|&(a, b)| a <= i && i < b)
}

/// The first statement, with its `;`, as `sqlparse.parse(s)[0]` splits.
fn first_statement(sql: &str) -> &str {
    let opaque = scan_opaque(sql);
    for (i, c) in sql.char_indices() {
        if c == ';' && !in_opaque(&opaque, i) {
            return &sql[..=i];
        }
    }
    sql
}

/// Deletes every DISTINCT keyword outside strings, quoted names and comments, as
/// test-suite's `remove_distinct` does (so `COUNT(DISTINCT x)` becomes `COUNT( x)`).
pub fn remove_distinct(sql: &str) -> String {
    let opaque = scan_opaque(sql);
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        let is_word_start = (b[i].is_ascii_alphabetic() || b[i] == b'_')
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        if is_word_start && !in_opaque(&opaque, i) {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$') {
                j += 1;
            }
            if sql[i..j].eq_ignore_ascii_case("distinct") {
                out.push_str(&sql[last..i]);
                last = j;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[last..]);
    out
}

/// `re.sub("YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", "2020", q, flags=re.IGNORECASE)`.
fn replace_cur_year(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while let Some(pos) = lower[i..].find("year") {
        let start = i + pos;
        let mut j = start + 4;
        let skip_ws = |mut k: usize| {
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            k
        };
        let mut ok = true;
        for expected in ["(", "curdate", "(", ")", ")"] {
            j = skip_ws(j);
            if lower[j..].starts_with(expected) {
                j += expected.len();
            } else {
                ok = false;
                break;
            }
        }
        if ok {
            j = skip_ws(j);
            out.push_str(&sql[last..start]);
            out.push_str("2020");
            last = j;
            i = j;
        } else {
            i = start + 4;
        }
    }
    out.push_str(&sql[last..]);
    out
}

pub(super) fn judge(
    case: &Case<'_>,
    gold: Option<&QueryResult>,
    pred: &QueryResult,
    keep_distinct: bool,
) -> Verdict {
    let Some(gold) = gold else {
        return Verdict::from_bool(false);
    };
    let order_matters = order_text(case.gold_sql, keep_distinct)
        .to_lowercase()
        .contains("order by");
    Verdict::from_bool(result_eq(&gold.rows, &pred.rows, order_matters))
}

/// test-suite's `result_eq(result1=gold, result2=pred, order_matters)`.
pub(super) fn result_eq(gold: &[Vec<Value>], pred: &[Vec<Value>], order_matters: bool) -> bool {
    if gold.is_empty() && pred.is_empty() {
        return true;
    }
    if gold.len() != pred.len() {
        return false;
    }
    let ncols = gold[0].len();
    if pred[0].len() != ncols {
        return false;
    }
    if !quick_accept(gold, pred, order_matters) {
        return false;
    }
    let gold_sets: Vec<HashSet<PyKey<'_>>> = (0..ncols)
        .map(|c| gold.iter().map(|r| PyKey::of(&r[c])).collect())
        .collect();
    // Pred column p can stand for gold column g only if every pred value of p occurs in g.
    // test-suite prunes with 20 random rows when there are more than 3 columns; pruning is
    // sound, so using every row gives the same verdict, deterministically.
    let candidates: Vec<Vec<usize>> = (0..ncols)
        .map(|g| {
            (0..ncols)
                .filter(|&p| {
                    ncols <= 3
                        || pred
                            .iter()
                            .all(|r| gold_sets[g].contains(&PyKey::of(&r[p])))
                })
                .collect()
        })
        .collect();
    let gold_keys: Vec<Vec<PyKey<'_>>> = gold.iter().map(|r| row_key(r)).collect();
    let gold_bag = bag(&gold_keys);
    let mut perm = Vec::with_capacity(ncols);
    let mut used = vec![false; ncols];
    search(&candidates, &mut perm, &mut used, &mut |perm| {
        let permuted: Vec<Vec<PyKey<'_>>> = pred
            .iter()
            .map(|r| perm.iter().map(|&p| PyKey::of(&r[p])).collect())
            .collect();
        if order_matters {
            permuted == gold_keys
        } else {
            bag(&permuted) == gold_bag
        }
    })
}

/// Tries every permutation allowed by `candidates` (gold column → pred column) until `check`
/// accepts one.
pub(super) fn search(
    candidates: &[Vec<usize>],
    perm: &mut Vec<usize>,
    used: &mut [bool],
    check: &mut dyn FnMut(&[usize]) -> bool,
) -> bool {
    if perm.len() == candidates.len() {
        return check(perm);
    }
    for &p in &candidates[perm.len()] {
        if used[p] {
            continue;
        }
        used[p] = true;
        perm.push(p);
        let found = search(candidates, perm, used, check);
        perm.pop();
        used[p] = false;
        if found {
            return true;
        }
    }
    false
}

fn bag<'a>(rows: &[Vec<PyKey<'a>>]) -> HashMap<Vec<PyKey<'a>>, usize> {
    let mut m = HashMap::with_capacity(rows.len());
    for r in rows {
        *m.entry(r.clone()).or_insert(0) += 1;
    }
    m
}

/// `quick_rej`: each row's values sorted by `str(v) + str(type(v))`, then the row lists
/// (order matters) or row sets compared. True means "not rejected".
fn quick_accept(gold: &[Vec<Value>], pred: &[Vec<Value>], order_matters: bool) -> bool {
    let unorder = |row: &Vec<Value>| -> Vec<Value> {
        let mut keyed: Vec<(String, &Value)> = row
            .iter()
            .map(|v| (format!("{}{}", python_repr(v), python_type(v)), v))
            .collect();
        // Python's sort is stable; so is this one.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.into_iter().map(|(_, v)| v.clone()).collect()
    };
    let g: Vec<Vec<Value>> = gold.iter().map(unorder).collect();
    let p: Vec<Vec<Value>> = pred.iter().map(unorder).collect();
    let gk: Vec<Vec<PyKey<'_>>> = g.iter().map(|r| row_key(r)).collect();
    let pk: Vec<Vec<PyKey<'_>>> = p.iter().map(|r| row_key(r)).collect();
    if order_matters {
        gk == pk
    } else {
        let gs: HashSet<&Vec<PyKey<'_>>> = gk.iter().collect();
        let ps: HashSet<&Vec<PyKey<'_>>> = pk.iter().collect();
        gs == ps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_goes_everywhere_but_strings() {
        assert_eq!(
            remove_distinct("SELECT DISTINCT a, count(distinct b) FROM t WHERE c = 'distinct'"),
            "SELECT  a, count( b) FROM t WHERE c = 'distinct'"
        );
        assert_eq!(
            remove_distinct("SELECT distinctive FROM t"),
            "SELECT distinctive FROM t"
        );
    }

    #[test]
    fn only_the_first_statement_survives_distinct_removal() {
        assert_eq!(
            spider_prepare_pred("SELECT 1; DROP TABLE t", false),
            "SELECT 1;"
        );
        assert_eq!(
            spider_prepare_pred("SELECT 1; DROP TABLE t", true),
            "SELECT 1; DROP TABLE t"
        );
        assert_eq!(
            spider_prepare_pred("SELECT ';' ; SELECT 2", false),
            "SELECT ';' ;"
        );
    }

    #[test]
    fn value_becomes_one_even_inside_names() {
        assert_eq!(
            spider_prepare_pred("SELECT max_value FROM t WHERE x = 'value'", true),
            "SELECT max_1 FROM t WHERE x = '1'"
        );
    }

    #[test]
    fn cur_year_and_spaced_operators() {
        assert_eq!(
            prepare("SELECT a FROM t WHERE y > = year( CURDATE() ) - 1", true),
            "SELECT a FROM t WHERE y >= 2020- 1"
        );
    }

    #[test]
    fn result_eq_matches_the_reference_on_small_tables() {
        let i = Value::Integer;
        let t = |s: &str| Value::Text(s.into());
        // Column permutation.
        let gold = vec![vec![t("a"), i(1)], vec![t("b"), i(2)]];
        let pred = vec![vec![i(2), t("b")], vec![i(1), t("a")]];
        assert!(result_eq(&gold, &pred, false));
        assert!(!result_eq(&gold, &pred, true));
        // Bag semantics: multiplicities matter.
        let gold = vec![vec![i(1)], vec![i(1)], vec![i(2)]];
        let pred = vec![vec![i(1)], vec![i(2)], vec![i(2)]];
        assert!(!result_eq(&gold, &pred, false));
        // Empty results are equal whatever their columns.
        assert!(result_eq(&[], &[], true));
        // 40 == 40.0
        assert!(result_eq(&[vec![i(40)]], &[vec![Value::Real(40.0)]], false));
    }

    #[test]
    fn wide_tables_prune_columns_soundly() {
        let i = Value::Integer;
        let gold: Vec<Vec<Value>> = (0..30)
            .map(|r| (0..5).map(|c| i(r * 10 + c)).collect())
            .collect();
        let pred: Vec<Vec<Value>> = gold
            .iter()
            .rev()
            .map(|r| {
                vec![
                    r[4].clone(),
                    r[2].clone(),
                    r[0].clone(),
                    r[1].clone(),
                    r[3].clone(),
                ]
            })
            .collect();
        assert!(result_eq(&gold, &pred, false));
        let mut wrong = pred.clone();
        wrong[3][1] = i(-1);
        assert!(!result_eq(&gold, &wrong, false));
    }
}
