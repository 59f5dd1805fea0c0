//! `defog`: defog sql-eval's `compare_query_results` (exact match, and the "correct" subset
//! verdict), reproduced over a small model of the pandas DataFrames it compares: column dtypes
//! inferred as pandas does (int64, float64 with NaN for NULL, object), `.values ==` with
//! numpy broadcasting, `normalize_table`'s dedupe / name-sorted columns / row sorting with its
//! ORDER BY regex, `fillna(-99999)`, and `assert_frame_equal`'s tolerances.

use std::cmp::Ordering;

use super::{Case, Reason, Verdict};
use crate::sql::compare::Outcome;
use crate::sql::{QueryResult, Value};

/// A Python object in a DataFrame cell.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    None,
    Int(i64),
    /// A float; NaN stands for a NULL in a float64 column.
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
}

impl Cell {
    fn is_na(&self) -> bool {
        matches!(self, Cell::None) || matches!(self, Cell::Float(f) if f.is_nan())
    }

    fn number(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DType {
    Int64,
    Float64,
    Object,
}

/// A DataFrame, row-major.
#[derive(Debug, Clone)]
struct Frame {
    names: Vec<String>,
    dtypes: Vec<DType>,
    rows: Vec<Vec<Cell>>,
}

/// An exception sql-eval's comparison would raise (the pair then counts as an error).
#[derive(Debug)]
struct Raised(String);

impl Frame {
    /// `pd.DataFrame(cursor.fetchall(), columns=names)`.
    fn from_result(r: &QueryResult) -> Frame {
        let ncols = r.columns.len();
        let mut dtypes = Vec::with_capacity(ncols);
        for c in 0..ncols {
            let col = r.rows.iter().map(|row| &row[c]);
            let dtype = if r.rows.is_empty() {
                DType::Object
            } else if col.clone().all(|v| matches!(v, Value::Integer(_))) {
                DType::Int64
            } else if col
                .clone()
                .all(|v| matches!(v, Value::Integer(_) | Value::Real(_) | Value::Null))
                && col.clone().any(|v| !v.is_null())
            {
                DType::Float64
            } else {
                DType::Object
            };
            dtypes.push(dtype);
        }
        let rows = r
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&dtypes)
                    .map(|(v, d)| match (v, d) {
                        (Value::Null, DType::Float64) => Cell::Float(f64::NAN),
                        (Value::Integer(i), DType::Float64) => Cell::Float(*i as f64),
                        (Value::Null, _) => Cell::None,
                        (Value::Integer(i), _) => Cell::Int(*i),
                        (Value::Real(f), _) => Cell::Float(*f),
                        (Value::Text(s), _) => Cell::Str(s.clone()),
                        (Value::Blob(b), _) => Cell::Bytes(b.clone()),
                    })
                    .collect()
            })
            .collect();
        Frame {
            names: r.columns.clone(),
            dtypes,
            rows,
        }
    }

    fn shape(&self) -> (usize, usize) {
        (self.rows.len(), self.names.len())
    }

    fn select(&self, cols: &[usize]) -> Frame {
        Frame {
            names: cols.iter().map(|&c| self.names[c].clone()).collect(),
            dtypes: cols.iter().map(|&c| self.dtypes[c]).collect(),
            rows: self
                .rows
                .iter()
                .map(|r| cols.iter().map(|&c| r[c].clone()).collect())
                .collect(),
        }
    }

    fn column(&self, c: usize) -> Vec<Cell> {
        self.rows.iter().map(|r| r[c].clone()).collect()
    }
}

/// numpy's elementwise `==` on `.values`: numbers numerically, NaN unequal to itself,
/// `None == None`, no equality across types.
fn np_eq(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::None, Cell::None) => true,
        (Cell::Int(x), Cell::Int(y)) => x == y,
        (Cell::Str(x), Cell::Str(y)) => x == y,
        (Cell::Bytes(x), Cell::Bytes(y)) => x == y,
        _ => match (a.number(), b.number()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// `(df_gold.values == df_gen.values).all()`, with numpy broadcasting; `None` when numpy
/// would raise (incompatible shapes).
fn values_equal(a: &Frame, b: &Frame) -> Option<bool> {
    let ((r1, c1), (r2, c2)) = (a.shape(), b.shape());
    let dim = |x: usize, y: usize| -> Option<usize> {
        if x == y {
            Some(x)
        } else if x == 1 {
            Some(y)
        } else if y == 1 {
            Some(x)
        } else {
            None
        }
    };
    let rows = dim(r1, r2)?;
    let cols = dim(c1, c2)?;
    for i in 0..rows {
        for j in 0..cols {
            let x = &a.rows[if r1 == 1 { 0 } else { i }][if c1 == 1 { 0 } else { j }];
            let y = &b.rows[if r2 == 1 { 0 } else { i }][if c2 == 1 { 0 } else { j }];
            if !np_eq(x, y) {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// Equality for `drop_duplicates`: NA equals NA, `1 == 1.0`.
fn dup_eq(a: &Cell, b: &Cell) -> bool {
    (a.is_na() && b.is_na()) || np_eq(a, b)
}

/// pandas' sort order within one column: NA last whatever the direction; comparing a string
/// with a number raises, as Python does.
fn sort_cmp(a: &Cell, b: &Cell, ascending: bool) -> Result<Ordering, Raised> {
    match (a.is_na(), b.is_na()) {
        (true, true) => return Ok(Ordering::Equal),
        (true, false) => return Ok(Ordering::Greater),
        (false, true) => return Ok(Ordering::Less),
        _ => {}
    }
    let o = match (a, b) {
        (Cell::Str(x), Cell::Str(y)) => x.cmp(y),
        (Cell::Bytes(x), Cell::Bytes(y)) => x.cmp(y),
        (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
        _ => match (a.number(), b.number()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => {
                return Err(Raised(
                    "TypeError: '<' not supported between instances of different types".into(),
                ));
            }
        },
    };
    Ok(if ascending { o } else { o.reverse() })
}

/// `df.sort_values(by=keys, ascending=ascending)` (stable; NA last).
fn sort_rows(frame: &mut Frame, keys: &[usize], ascending: bool) -> Result<(), Raised> {
    // Mixed types in a sorted object column raise before any comparison result is used.
    for &k in keys {
        if frame.dtypes[k] == DType::Object {
            let mut kinds = frame
                .rows
                .iter()
                .filter(|r| !r[k].is_na())
                .map(|r| match &r[k] {
                    Cell::Str(_) => 0,
                    Cell::Bytes(_) => 1,
                    _ => 2,
                });
            if let Some(first) = kinds.next()
                && kinds.any(|k| k != first)
            {
                return Err(Raised(
                    "TypeError: '<' not supported between instances of 'str' and 'int'".into(),
                ));
            }
        }
    }
    let mut error = None;
    frame.rows.sort_by(|x, y| {
        for &k in keys {
            match sort_cmp(&x[k], &y[k], ascending) {
                Ok(Ordering::Equal) => continue,
                Ok(o) => return o,
                Err(e) => {
                    error.get_or_insert(e);
                    return Ordering::Equal;
                }
            }
        }
        Ordering::Equal
    });
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The ORDER BY columns `normalize_table` reads from a query with its regexes, and the
/// direction it applies to all of them.
fn order_by_columns(sql: &str) -> Option<(Vec<String>, bool)> {
    let lower = sql.to_lowercase();
    let start = lower.find("order by")?;
    let clause = &sql[start..];
    let clause_lower = &lower[start..];
    // findall(r"(?<=ORDER BY)(.*?)(?=;|,|\)|$)"): the first "ORDER BY" whose text reaches a
    // terminator without crossing a newline.
    let mut tokens_text = None;
    let mut from = 0;
    while let Some(pos) = clause_lower[from..].find("order by") {
        let begin = from + pos + "order by".len();
        let rest = &clause[begin..];
        let mut end = None;
        for (i, ch) in rest.char_indices() {
            if matches!(ch, ';' | ',' | ')') {
                end = Some(i);
                break;
            }
            if ch == '\n' {
                if i + 1 == rest.len() {
                    end = Some(i);
                }
                break;
            }
        }
        if end.is_none() && !rest.contains('\n') {
            end = Some(rest.len());
        }
        if let Some(e) = end {
            tokens_text = Some(rest[..e].to_string());
            break;
        }
        from = begin;
    }
    let text = tokens_text.unwrap_or_default();
    let tokens: Vec<String> = text
        .split_whitespace()
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
        .collect();
    let upper: Vec<String> = tokens.iter().map(|t| t.to_uppercase()).collect();
    let ascending = if upper.iter().any(|t| t == "DESC") {
        false
    } else {
        upper.iter().any(|t| t == "ASC")
    };
    let cols = tokens
        .into_iter()
        .map(|t| t.trim().replace([',', '('], ""))
        .filter(|t| {
            !["desc", "asc", "nulls", "last", "first", "limit"].contains(&t.to_lowercase().as_str())
        })
        .collect();
    Some((cols, ascending))
}

/// Whether `normalize_table` treats the pair as ordered: the category is `order_by` (lode
/// sets it when the gold has ORDER BY, as sql-eval's own question files mostly do) or the
/// question asks to order, sort or arrange.
fn has_order_by(case: &Case<'_>) -> bool {
    let category = case.gold_sql.to_lowercase().contains("order by");
    let asks = case
        .question
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| ["order", "sort", "arrange"].contains(&w.to_lowercase().as_str()));
    category || asks
}

/// `normalize_table(df, query_category, question, sql)`.
fn normalize(frame: &Frame, ordered: bool, sql: Option<&str>) -> Result<Frame, Raised> {
    // drop_duplicates (first kept)
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for r in &frame.rows {
        if !rows
            .iter()
            .any(|k| k.iter().zip(r).all(|(a, b)| dup_eq(a, b)))
        {
            rows.push(r.clone());
        }
    }
    // reindex(sorted(columns)): duplicate labels raise.
    let mut order: Vec<usize> = (0..frame.names.len()).collect();
    order.sort_by(|&a, &b| frame.names[a].cmp(&frame.names[b]));
    for w in order.windows(2) {
        if frame.names[w[0]] == frame.names[w[1]] {
            return Err(Raised(
                "ValueError: cannot reindex on an axis with duplicate labels".into(),
            ));
        }
    }
    let mut sorted = Frame {
        rows,
        ..frame.clone()
    }
    .select(&order);
    if ordered {
        if let Some(sql) = sql.filter(|s| !s.is_empty())
            && let Some((cols, ascending)) = order_by_columns(sql)
        {
            let other: Vec<usize> = (0..sorted.names.len())
                .filter(|&i| !cols.contains(&sorted.names[i]))
                .collect();
            let keys: Vec<usize> = cols
                .iter()
                .filter_map(|c| sorted.names.iter().position(|n| n == c))
                .collect();
            let by: Vec<usize> = keys.iter().chain(&other).copied().collect();
            sort_rows(&mut sorted, &by, ascending)?;
            let mut layout = other.clone();
            layout.extend(&keys);
            sorted = sorted.select(&layout);
        }
    } else {
        let by: Vec<usize> = (0..sorted.names.len()).collect();
        sort_rows(&mut sorted, &by, true)?;
    }
    Ok(sorted)
}

/// `compare_df(df_gold, df_gen, ...)`.
fn compare_df(gold: &Frame, gen_: &Frame, case: &Case<'_>) -> Result<bool, Raised> {
    if values_equal(gold, gen_) == Some(true) {
        return Ok(true);
    }
    let ordered = has_order_by(case);
    let g = normalize(gold, ordered, Some(case.gold_sql))?;
    let p = normalize(gen_, ordered, Some(case.pred_sql))?;
    if g.shape() != p.shape() {
        return Ok(false);
    }
    // fillna(-99999) on both, then elementwise equality.
    let fill = |c: &Cell| {
        if c.is_na() {
            Cell::Int(-99999)
        } else {
            c.clone()
        }
    };
    Ok(g.rows
        .iter()
        .zip(&p.rows)
        .all(|(a, b)| a.iter().zip(b).all(|(x, y)| np_eq(&fill(x), &fill(y)))))
}

/// pandas' approximate equality (`assert_series_equal(check_dtype=False)`): exact when
/// either side is an integer column, else `math.isclose(rel_tol=1e-5, abs_tol=1e-8)`; NA
/// equals NA.
fn approx_eq(a: &Cell, b: &Cell, exact: bool) -> bool {
    if a.is_na() || b.is_na() {
        return a.is_na() && b.is_na();
    }
    match (a.number(), b.number()) {
        (Some(x), Some(y)) => {
            if exact {
                x == y
            } else {
                x == y || (x - y).abs() <= (1e-5 * x.abs().max(y.abs())).max(1e-8)
            }
        }
        _ => np_eq(a, b),
    }
}

fn series_equal(a: &[Cell], da: DType, b: &[Cell], db: DType) -> bool {
    let exact = da == DType::Int64 || db == DType::Int64;
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| approx_eq(x, y, exact))
}

fn sorted_column(frame: &Frame, c: usize) -> Result<Vec<Cell>, Raised> {
    let mut single = frame.select(&[c]);
    sort_rows(&mut single, &[0], true)?;
    Ok(single.rows.into_iter().map(|mut r| r.remove(0)).collect())
}

/// `deduplicate_columns`: repeated names become `name_<position>`.
fn dedup_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                format!("{n}_{i}")
            } else {
                n.clone()
            }
        })
        .collect()
}

/// `subset_df(df_sub=gold, df_super=gen)`: every gold column equals a distinct predicted
/// column, and the matched columns, renamed, give the gold table.
fn subset_df(gold: &Frame, gen_: &Frame, case: &Case<'_>) -> Result<bool, Raised> {
    if gold.rows.is_empty() || gold.names.is_empty() {
        return Ok(false);
    }
    let mut sub = gold.clone();
    sub.names = dedup_names(&sub.names);
    let super_names = dedup_names(&gen_.names);
    let mut remaining: Vec<usize> = (0..gen_.names.len()).collect();
    let mut matched = Vec::new();
    for c in 0..sub.names.len() {
        let col_sub = sorted_column(&sub, c)?;
        let mut found = None;
        for (k, &p) in remaining.iter().enumerate() {
            let col_super = sorted_column(gen_, p)?;
            if series_equal(&col_sub, sub.dtypes[c], &col_super, gen_.dtypes[p]) {
                found = Some(k);
                break;
            }
        }
        match found {
            Some(k) => matched.push(remaining.remove(k)),
            None => return Ok(false),
        }
    }
    // `df_super[matched_columns]` uses the de-duplicated names on the original frame.
    for &p in &matched {
        if super_names[p] != gen_.names[p] {
            return Err(Raised(format!("KeyError: '{}'", super_names[p])));
        }
    }
    let ordered = has_order_by(case);
    let sub_n = normalize(&sub, ordered, None)?;
    let mut sup = gen_.select(&matched);
    sup.names = sub.names.clone();
    let sup_n = normalize(&sup, ordered, None)?;
    if sub_n.shape() != sup_n.shape() || sub_n.names != sup_n.names {
        return Ok(false);
    }
    Ok((0..sub_n.names.len()).all(|c| {
        series_equal(
            &sub_n.column(c),
            sub_n.dtypes[c],
            &sup_n.column(c),
            sup_n.dtypes[c],
        )
    }))
}

/// sql-eval's gold alternatives: split on `;`; in each, the first `{a, b}` becomes every
/// non-empty combination of its items (`GROUP BY {}` after it is filled the same way).
pub fn expand_gold_alternatives(gold: &str) -> Vec<String> {
    let mut out = Vec::new();
    for q in gold.split(';') {
        let q = q.trim();
        if q.is_empty() {
            continue;
        }
        let Some(start) = q.find('{') else {
            out.push(q.to_string());
            continue;
        };
        let Some(end) = q[start + 1..].find('}').map(|e| e + start + 1) else {
            out.push(q.to_string());
            continue;
        };
        let options: Vec<&str> = q[start + 1..end].split(',').collect();
        let left = &q[..start];
        let right = &q[end + 1..];
        for r in 1..=options.len() {
            for combo in combinations(options.len(), r) {
                let cols: Vec<&str> = combo.iter().map(|&i| options[i]).collect();
                let column_str = cols.join(", ");
                let right = right.replace("GROUP BY {}", &format!("GROUP BY {column_str}"));
                out.push(format!("{left}{column_str}{right}"));
            }
        }
    }
    out
}

/// `itertools.combinations(range(n), r)` in its order.
fn combinations(n: usize, r: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut idx: Vec<usize> = (0..r).collect();
    if r > n {
        return out;
    }
    loop {
        out.push(idx.clone());
        let mut i = r;
        loop {
            if i == 0 {
                return out;
            }
            i -= 1;
            if idx[i] != i + n - r {
                break;
            }
            if i == 0 && idx[0] == n - r {
                return out;
            }
        }
        idx[i] += 1;
        for j in i + 1..r {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

pub(super) fn judge(case: &Case<'_>, golds: &[Outcome<'_>], pred: &QueryResult) -> Verdict {
    let generated = Frame::from_result(pred);
    let mut correct = false;
    let raised = |e: Raised| {
        let mut v = Verdict::wrong(Reason::PredError {
            message: format!("sql-eval's comparison raises {}", e.0),
        });
        v.subset_correct = Some(false);
        v
    };
    for gold in golds {
        let gold = match gold {
            Ok(g) => Frame::from_result(g),
            Err(e) => {
                let mut v = Verdict::wrong(Reason::GoldError {
                    message: e.to_string(),
                });
                v.subset_correct = Some(false);
                return v;
            }
        };
        match compare_df(&gold, &generated, case) {
            Ok(true) => {
                let mut v = Verdict::right();
                v.subset_correct = Some(true);
                return v;
            }
            Ok(false) => {}
            Err(e) => return raised(e),
        }
        match subset_df(&gold, &generated, case) {
            Ok(true) => correct = true,
            Ok(false) => {}
            Err(e) => return raised(e),
        }
    }
    let mut v = Verdict::wrong(Reason::Mismatch);
    v.subset_correct = Some(correct);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_alternatives_expand_like_sql_eval() {
        assert_eq!(
            expand_gold_alternatives("SELECT {a,b} FROM t GROUP BY {};SELECT c FROM t;"),
            vec![
                "SELECT a FROM t GROUP BY a",
                "SELECT b FROM t GROUP BY b",
                "SELECT a, b FROM t GROUP BY a, b",
                "SELECT c FROM t",
            ]
        );
        assert_eq!(combinations(4, 2).len(), 6);
        assert_eq!(combinations(3, 3), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn order_by_regex_reads_like_sql_eval() {
        assert_eq!(
            order_by_columns("SELECT a FROM t ORDER BY t.age DESC LIMIT 3"),
            Some((vec!["age".to_string(), "3".to_string()], false))
        );
        assert_eq!(
            order_by_columns("SELECT a FROM t ORDER BY name"),
            Some((vec!["name".to_string()], false)),
            "no direction means descending in sql-eval"
        );
        assert_eq!(
            order_by_columns("select a from t order by b asc, c"),
            Some((vec!["b".to_string()], true))
        );
        assert_eq!(order_by_columns("SELECT a FROM t"), None);
    }

    #[test]
    fn broadcasting_makes_a_single_value_match_a_column_of_it() {
        let f = |rows: Vec<Vec<Cell>>, n: usize| Frame {
            names: (0..n).map(|i| format!("c{i}")).collect(),
            dtypes: vec![DType::Int64; n],
            rows,
        };
        let one = f(vec![vec![Cell::Int(5)]], 1);
        let many = f(vec![vec![Cell::Int(5)], vec![Cell::Int(5)]], 1);
        assert_eq!(values_equal(&one, &many), Some(true));
        let two_by_two = f(vec![vec![Cell::Int(1), Cell::Int(2)]; 2], 2);
        let three = f(vec![vec![Cell::Int(1)]; 3], 1);
        assert_eq!(values_equal(&two_by_two, &three), None);
    }
}
