//! Validation by execution (the original only ran EXPLAIN): the SQL must be one read-only
//! statement that runs within the timeout and returns an informative result. Empty results,
//! all-NULL results and a single COUNT of 0 fail validation (they are almost always a wrong
//! literal or join in training data) and go to the debugger like errors. Rule validators
//! declared in config are checked here too. Every outcome keeps its execution stats.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::CustomValidator;
use crate::pipeline::eval::Preview;
use crate::sql::analyze::analyze;
use crate::sql::schema::Schema;
use crate::sql::{Database, ExecError, QueryResult, Value};

/// The result of validating one query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    pub ok: bool,
    /// `no_such_table`, `no_such_column`, `syntax`, `timeout`, `not_read_only`,
    /// `empty_result`, `all_null`, `zero_count`, `rule`, ...
    pub error_kind: Option<String>,
    /// What a person (or the debugger) should read.
    pub error: Option<String>,
    pub row_count: Option<usize>,
    pub elapsed_ms: Option<f64>,
    /// Remarks that are not failures (a truncated result).
    pub flags: Vec<String>,
    /// Order-insensitive hash of the result, for dedup.
    pub fingerprint: Option<String>,
    pub preview: Option<Preview>,
}

impl Validation {
    fn failed(kind: &str, error: String) -> Validation {
        Validation {
            ok: false,
            error_kind: Some(kind.to_string()),
            error: Some(error),
            row_count: None,
            elapsed_ms: None,
            flags: Vec::new(),
            fingerprint: None,
            preview: None,
        }
    }
}

/// A SQLite error message's category, for error analysis and the debugger.
pub fn error_category(message: &str) -> &'static str {
    let m = message.to_lowercase();
    if m.contains("no such table") {
        "no_such_table"
    } else if m.contains("no such column") {
        "no_such_column"
    } else if m.contains("ambiguous column") {
        "ambiguous_column"
    } else if m.contains("syntax error")
        || m.contains("incomplete input")
        || m.contains("unrecognized token")
    {
        "syntax"
    } else if m.contains("misuse of aggregate") || m.contains("misuse of window") {
        "misuse_of_aggregate"
    } else if m.contains("wrong number of arguments") {
        "wrong_arguments"
    } else if m.contains("no such function") {
        "no_such_function"
    } else if m.contains("datatype mismatch") {
        "datatype_mismatch"
    } else {
        "sqlite_error"
    }
}

fn exec_error(e: &ExecError) -> Validation {
    match e {
        ExecError::Timeout { .. } => Validation::failed("timeout", e.to_string()),
        ExecError::Rejected { reason } if reason.contains("more than one statement") => {
            Validation::failed("multiple_statements", reason.clone())
        }
        ExecError::Rejected { reason } => Validation::failed("not_read_only", reason.clone()),
        ExecError::Sqlite { message } => {
            Validation::failed(error_category(message), message.clone())
        }
        other => Validation::failed("error", other.to_string()),
    }
}

/// An order-insensitive hash of a result: its width and its sorted rows.
pub fn fingerprint(r: &QueryResult) -> String {
    let mut rows: Vec<String> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Real(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                        format!("{}", *f as i64)
                    }
                    other => other.display(),
                })
                .collect::<Vec<_>>()
                .join("\u{1f}")
        })
        .collect();
    rows.sort();
    let mut h = Sha256::new();
    h.update(r.columns.len().to_le_bytes());
    for row in rows {
        h.update(row.as_bytes());
        h.update([0x1e]);
    }
    h.finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Validates `sql` by running it, then applies the rule validators.
pub fn validate(
    db: &Database,
    schema: &Schema,
    sql: &str,
    rules: &[CustomValidator],
) -> Validation {
    let sql = sql.trim().trim_end_matches(';').trim();
    if sql.is_empty() {
        return Validation::failed("empty_sql", "no SQL query was produced".into());
    }
    let result = match db.query(sql) {
        Ok(r) => r,
        Err(e) => return exec_error(&e),
    };
    let elapsed_ms = result.elapsed.as_secs_f64() * 1000.0;
    let mut v = Validation {
        ok: true,
        error_kind: None,
        error: None,
        row_count: Some(result.rows.len()),
        elapsed_ms: Some(elapsed_ms),
        flags: Vec::new(),
        fingerprint: Some(fingerprint(&result)),
        preview: Some(Preview {
            columns: result.columns.clone(),
            rows: result.rows.iter().take(10).cloned().collect(),
            total_rows: result.rows.len(),
        }),
    };
    if result.truncated {
        v.flags.push("truncated".into());
    }
    let fail = |v: &mut Validation, kind: &str, msg: String| {
        v.ok = false;
        v.error_kind = Some(kind.to_string());
        v.error = Some(msg);
    };
    if result.rows.is_empty() {
        fail(&mut v, "empty_result", "the query returned no rows".into());
        return v;
    }
    if result.rows.iter().all(|r| r.iter().all(Value::is_null)) {
        fail(
            &mut v,
            "all_null",
            "the query returned only NULL values".into(),
        );
        return v;
    }
    if result.rows.len() == 1
        && result.rows[0].len() == 1
        && matches!(result.rows[0][0], Value::Integer(0))
        && sql.to_lowercase().contains("count(")
    {
        fail(
            &mut v,
            "zero_count",
            "the query counts nothing (a single COUNT of 0)".into(),
        );
        return v;
    }
    for rule in rules.iter().filter(|r| r.kind == "rule") {
        if let Some(problem) = check_rule(db, schema, sql, &result, elapsed_ms, rule) {
            fail(
                &mut v,
                "rule",
                format!("validator `{}`: {problem}", rule.name),
            );
            return v;
        }
    }
    v
}

/// The first way `sql` breaks a rule validator, if any.
fn check_rule(
    db: &Database,
    schema: &Schema,
    sql: &str,
    result: &QueryResult,
    elapsed_ms: f64,
    rule: &CustomValidator,
) -> Option<String> {
    if let Some(min) = rule.min_rows
        && result.rows.len() < min
    {
        return Some(format!(
            "{} rows, at least {min} required",
            result.rows.len()
        ));
    }
    if let Some(max) = rule.max_ms
        && elapsed_ms > max
    {
        return Some(format!(
            "ran {elapsed_ms:.0} ms, at most {max:.0} ms allowed"
        ));
    }
    if !rule.must_reference.is_empty() || !rule.must_not_reference.is_empty() {
        let analysis = analyze(sql, Some(schema)).ok();
        let uses = |name: &str| -> bool {
            analysis.as_ref().is_some_and(|a| {
                if name.contains('.') {
                    a.columns.iter().any(|c| c.eq_ignore_ascii_case(name))
                } else {
                    a.tables.iter().any(|t| t.eq_ignore_ascii_case(name))
                }
            })
        };
        if let Some(missing) = rule.must_reference.iter().find(|n| !uses(n)) {
            return Some(format!("does not use {missing}"));
        }
        if let Some(banned) = rule.must_not_reference.iter().find(|n| uses(n)) {
            return Some(format!("uses {banned}, which it must not"));
        }
    }
    if rule.no_select_star
        && crate::sql::analyze::template_in(sql, crate::sql::SqlDialect::of(schema))
            .contains("SELECT *")
    {
        return Some("uses SELECT *".into());
    }
    if let Some(check) = &rule.check_sql {
        let wrapped = format!("WITH result AS ({sql}) {check}");
        match db.query(&wrapped) {
            Ok(r) => {
                let truthy = r
                    .rows
                    .first()
                    .and_then(|row| row.first())
                    .is_some_and(|v| match v {
                        Value::Integer(i) => *i != 0,
                        Value::Real(f) => *f != 0.0,
                        Value::Text(t) => !t.is_empty() && t != "0",
                        _ => false,
                    });
                if !truthy {
                    return Some(format!("check `{check}` is not true for the result"));
                }
            }
            Err(e) => return Some(format!("check `{check}` failed: {e}")),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ExecLimits;

    fn db() -> (tempfile::TempDir, Database, Schema) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, n INTEGER);
             INSERT INTO t(a, n) VALUES ('x', 1), ('y', 2), ('z', NULL);
             CREATE TABLE u(id INTEGER PRIMARY KEY);",
        )
        .unwrap();
        drop(c);
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        let schema = crate::sql::schema::introspect(&db).unwrap();
        (dir, db, schema)
    }

    #[test]
    fn execution_decides_and_uninformative_results_fail() {
        let (_d, db, s) = db();
        let ok = validate(&db, &s, "SELECT a FROM t;", &[]);
        assert!(ok.ok && ok.row_count == Some(3) && ok.fingerprint.is_some());
        let kinds = [
            ("SELECT b FROM t", "no_such_column"),
            ("SELECT a FROM nowhere", "no_such_table"),
            ("SELEC a FROM t", "syntax"),
            ("DELETE FROM t", "not_read_only"),
            ("SELECT 1; SELECT 2", "multiple_statements"),
            ("SELECT a FROM t WHERE 0", "empty_result"),
            ("SELECT n FROM t WHERE n IS NULL", "all_null"),
            ("SELECT COUNT(*) FROM u", "zero_count"),
            ("", "empty_sql"),
        ];
        for (sql, kind) in kinds {
            let v = validate(&db, &s, sql, &[]);
            assert!(!v.ok, "{sql}");
            assert_eq!(v.error_kind.as_deref(), Some(kind), "{sql}: {:?}", v.error);
        }
    }

    #[test]
    fn fingerprints_ignore_row_order_and_integral_reals() {
        let (_d, db, _) = db();
        let a = db.query("SELECT a, n FROM t ORDER BY a").unwrap();
        let b = db
            .query("SELECT a, n * 1.0 FROM t ORDER BY a DESC")
            .unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = db.query("SELECT a, n FROM t WHERE a != 'z'").unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn rule_validators() {
        let (_d, db, s) = db();
        let rule = |f: &dyn Fn(&mut CustomValidator)| {
            let mut r = CustomValidator {
                name: "r".into(),
                kind: "rule".into(),
                min_rows: None,
                must_reference: vec![],
                must_not_reference: vec![],
                no_select_star: false,
                max_ms: None,
                check_sql: None,
                instruction: None,
            };
            f(&mut r);
            r
        };
        let cases: Vec<(CustomValidator, &str, bool)> = vec![
            (rule(&|r| r.min_rows = Some(3)), "SELECT a FROM t", true),
            (rule(&|r| r.min_rows = Some(4)), "SELECT a FROM t", false),
            (
                rule(&|r| r.must_reference = vec!["t.n".into()]),
                "SELECT a FROM t",
                false,
            ),
            (
                rule(&|r| r.must_not_reference = vec!["t".into()]),
                "SELECT a FROM t",
                false,
            ),
            (rule(&|r| r.no_select_star = true), "SELECT * FROM t", false),
            (
                rule(&|r| r.check_sql = Some("SELECT COUNT(*) = 3 FROM result".into())),
                "SELECT a FROM t",
                true,
            ),
            (
                rule(&|r| r.check_sql = Some("SELECT COUNT(*) = 2 FROM result".into())),
                "SELECT a FROM t",
                false,
            ),
        ];
        for (r, sql, ok) in cases {
            let v = validate(&db, &s, sql, std::slice::from_ref(&r));
            assert_eq!(v.ok, ok, "{r:?} on {sql}: {:?}", v.error);
            if !ok {
                assert_eq!(v.error_kind.as_deref(), Some("rule"));
            }
        }
    }
}
