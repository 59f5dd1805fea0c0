//! `--json` of `schema`, `sql`, `check`, `audit`, `analyze`, `init` and `demo`: each document
//! parses, has `version` 1 and its `command`, and keeps the shape src/cli/JSON.md documents
//! (snapshots, with times, durations and the temporary directory masked); errors are error
//! documents with the documented kind and exit code; a bad outcome (a failing check, audit
//! findings) is the normal document with exit 1.
//!
//! One demo project is run once (`lode --json demo --no-tui`, the whole offline loop) and
//! shared by the tests; they only read it, except `analyze`, which rewrites its own report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .args(args)
        .output()
        .expect("run lode")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Where the tests write: a fresh folder under the target directory for this run.
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("json_project");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root.canonicalize().unwrap()
    })
}

/// The demo project, run once, and the JSON lines `lode --json demo` wrote.
struct Demo {
    dir: PathBuf,
    stream: String,
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let out = lode(root(), &["--json", "demo", "proj", "--no-tui"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        Demo {
            dir: root().join("proj"),
            stream: text(&out.stdout),
        }
    })
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A demo project written (no stage run) with one gold query that fails and one whose LIMIT
/// cuts an unordered result: `lode check` and `lode audit` find something.
fn broken_project(name: &str) -> PathBuf {
    let dir = scratch(name);
    let out = lode(&dir, &["demo", "p", "--no-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = dir.join("p");
    let gold = p.join("gold.jsonl");
    let mut text = std::fs::read_to_string(&gold).unwrap();
    text.push_str(
        "{\"input\":\"Which stores are there?\",\"output\":\"SELECT nme FROM stores\"}\n\
         {\"input\":\"Name one product.\",\"output\":\"SELECT name FROM products LIMIT 1\"}\n",
    );
    std::fs::write(&gold, text).unwrap();
    p
}

/// Volatile values replaced: durations (`…_ms`, `elapsed`) and times (`…_at`) by
/// placeholders, the test's directory inside strings by `[DIR]`.
fn mask(v: &mut Value) {
    let dir = root().to_string_lossy().into_owned();
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if x.is_null() {
                    continue;
                }
                if k.ends_with("_ms") || k == "elapsed" {
                    *x = Value::from("[ms]");
                } else if k.ends_with("_at") {
                    *x = Value::from("[time]");
                } else {
                    mask(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        Value::String(s) if s.contains(&dir) => *s = s.replace(&dir, "[DIR]"),
        _ => {}
    }
}

/// One document: it parses, starts with version 1 and `command`; masked.
fn document(out: &Output, command: &str) -> Value {
    let stdout = text(&out.stdout);
    let mut v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{stdout}"));
    check_envelope(&v, command);
    mask(&mut v);
    v
}

/// Values that depend on which pairs the offline generator kept (its workers race, so a pair
/// or a gap more or less from run to run), replaced by `[varies]`: the demo's numbers.
fn mask_generated(v: &mut Value) {
    const VARY: &[&str] = &[
        "pairs_by_status",
        "valid_pairs",
        "covered_concepts",
        "concept_coverage",
        "missing_concepts",
        "underrepresented_concepts",
        "unused_tables",
        "unused_joins",
        "failed_pairs",
        "gaps_asked",
        "gaps_filled",
        "message",
        "correct",
        "accuracy",
        "accuracy_ci",
        "mean",
        "matches",
        "runs",
        "fails",
        "evaluation_correct",
    ];
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if VARY.contains(&k.as_str()) && !x.is_null() {
                    *x = Value::from("[varies]");
                } else {
                    mask_generated(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_generated),
        _ => {}
    }
}

/// The shape of a document whose numbers come from generated pairs (`lode analyze`): numbers
/// become `<number>`, maps of numbers `<counts>`, arrays of plain values `<array>` and arrays
/// of objects the shape of their first (its strings `<string>`); keys, nesting, the other
/// strings and nulls stay.
fn shape(v: &Value) -> Value {
    fn walk(v: &Value, in_list: bool) -> Value {
        match v {
            Value::Number(_) => Value::from("<number>"),
            Value::String(_) if in_list => Value::from("<string>"),
            Value::Array(items) => match items.first() {
                Some(first @ Value::Object(_)) => Value::Array(vec![walk(first, true)]),
                _ => Value::from("<array>"),
            },
            Value::Object(map) if map.values().all(Value::is_number) => Value::from("<counts>"),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, x)| {
                        let x = if k == "version" {
                            x.clone()
                        } else {
                            walk(x, in_list)
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(v, false)
}

fn check_envelope(v: &Value, command: &str) {
    let keys: Vec<&String> = v.as_object().expect("an object").keys().collect();
    assert_eq!(keys[..2], ["version", "command"], "{v}");
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["command"], command, "{v}");
}

/// JSON lines: each parses, with version, command and `event` first; masked.
fn lines(stdout: &str, command: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{stdout}"));
            check_envelope(&v, command);
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(keys[2], "event", "{l}");
            mask(&mut v);
            v
        })
        .collect()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

fn pretty_lines(vs: &[Value]) -> String {
    vs.iter().map(pretty).collect::<Vec<_>>().join("\n")
}

/// The error document: the kind and exit code it says, and the process's exit code.
fn error(out: &Output, command: &str, kind: &str, code: i32) -> Value {
    let v = document(out, command);
    assert_eq!(v["error"]["kind"], kind, "{v}");
    assert_eq!(v["error"]["exit_code"], code, "{v}");
    assert_eq!(out.status.code(), Some(code), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    // Text on stderr all the same.
    assert!(
        text(&out.stderr).contains("error: "),
        "{}",
        text(&out.stderr)
    );
    v
}

#[test]
fn demo_streams_one_line_per_stage_and_a_done_line() {
    let d = demo();
    let events = lines(&d.stream, "demo");
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["stage"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("stage", "project"),
            ("stage", "generation"),
            ("stage", "analysis"),
            ("stage", "tuning"),
            ("stage", "evaluation"),
            ("stage", "reward"),
            ("done", ""),
        ]
    );
    let done = events.last().unwrap();
    assert_eq!(done["ran"], true);
    assert!(done["generation"]["valid_pairs"].as_u64().unwrap() > 100);
    let e = &done["evaluation"];
    let (lo, hi) = (
        e["accuracy_ci"][0].as_f64().unwrap(),
        e["accuracy_ci"][1].as_f64().unwrap(),
    );
    let accuracy = e["accuracy"].as_f64().unwrap();
    assert!(lo <= accuracy && accuracy <= hi && hi <= 1.0, "{e}");
    let r = &done["reward"];
    assert_eq!(
        r["answers"],
        r["matches"].as_u64().unwrap() + r["runs"].as_u64().unwrap() + r["fails"].as_u64().unwrap()
    );
    assert_eq!(r["agrees_with_evaluation"], true);
    let mut events = events;
    events.iter_mut().for_each(mask_generated);
    insta::assert_snapshot!("demo", pretty_lines(&events));

    // Run again: every stage is found done, and said so.
    let out = lode(root(), &["--json", "demo", "proj", "--no-tui"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = lines(&text(&out.stdout), "demo");
    assert_eq!(again.len(), 7);
    assert_eq!(again[0]["written"], false);
    assert_eq!(again[1]["already_done"], true);
    assert_eq!(again[3]["outcome"], "already_done");
}

#[test]
fn demo_without_running_writes_the_project_line_and_a_done_line() {
    let dir = scratch("demo_no_run");
    let out = lode(&dir, &["demo", "p", "--no-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = lines(&text(&out.stdout), "demo");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["ran"], false);
    insta::assert_snapshot!("demo_no_run", pretty_lines(&events));

    // A flag that does not fit: a usage error, before anything is written.
    let out = lode(
        &dir,
        &[
            "--json",
            "demo",
            "pg",
            "--postgres",
            "postgres://lode:secret@localhost/shop",
        ],
    );
    let v = error(&out, "demo", "usage", 2);
    assert!(!pretty(&v).contains("secret"), "{v}");
    assert!(!dir.join("pg").exists());
}

#[test]
fn schema_is_the_format_json_schema_in_the_document() {
    let d = demo();
    let out = lode(&d.dir, &["--json", "schema"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = document(&out, "schema");
    assert_eq!(v["tables"].as_array().unwrap().len(), 6);
    // `--format json` prints the same schema without the envelope, as before.
    let plain = lode(&d.dir, &["schema", "--format", "json"]);
    let mut plain: Value = serde_json::from_slice(&plain.stdout).unwrap();
    mask(&mut plain);
    let mut inner = v.clone();
    let map = inner.as_object_mut().unwrap();
    map.shift_remove("version");
    map.shift_remove("command");
    assert_eq!(inner, plain);
    insta::assert_snapshot!("schema", pretty(&v));

    let out = lode(&d.dir, &["schema", "--json", "--format", "create"]);
    error(&out, "schema", "usage", 2);
    let out = lode(&d.dir, &["--json", "schema", "--db", "missing.sqlite"]);
    error(&out, "schema", "database_unreachable", 3);
}

#[test]
fn sql_results_and_analyses_are_documents() {
    let d = demo();
    let sql = "SELECT name, city FROM stores ORDER BY id LIMIT 3";
    let out = lode(&d.dir, &["--json", "sql", sql]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = document(&out, "sql");
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
    insta::assert_snapshot!("sql", pretty(&v));
    // `--format json` as before: the result alone, on one line.
    let plain = lode(&d.dir, &["sql", "--format", "json", sql]);
    let plain: Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(plain["rows"], v["rows"]);
    assert!(plain.get("version").is_none());

    let out = lode(
        &d.dir,
        &[
            "--json",
            "sql",
            "--analyze",
            "SELECT name FROM stores WHERE city LIKE 'P%'",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = document(&out, "sql");
    assert_eq!(v["hardness"], "medium");
    insta::assert_snapshot!("sql_analyze", pretty(&v));

    std::fs::write(
        d.dir.join("queries_json.sql"),
        "SELECT count(*) FROM orders\nSELEC broken\n\nSELECT name FROM nowhere\n",
    )
    .unwrap();
    let out = lode(
        &d.dir,
        &["--json", "sql", "--analyze", "--file", "queries_json.sql"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = lines(&text(&out.stdout), "sql");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["query", "query", "query", "done"]);
    assert!(events[1]["analysis"].is_null());
    assert!(
        events[1]["error"]
            .as_str()
            .unwrap()
            .contains("syntax error")
    );
    assert_eq!(events[3]["failed"], 1);
    insta::assert_snapshot!("sql_analyze_file", pretty_lines(&events));

    // Errors: refused (5), a query error (1), a usage error (2), a timeout (4).
    let out = lode(&d.dir, &["--json", "sql", "DELETE FROM orders"]);
    let v = error(&out, "sql", "refused", 5);
    insta::assert_snapshot!("sql_refused", pretty(&v));
    let out = lode(&d.dir, &["--json", "sql", "SELECT nope FROM stores"]);
    error(&out, "sql", "query_error", 1);
    let out = lode(&d.dir, &["--json", "sql"]);
    error(&out, "sql", "usage", 2);
    let out = lode(&d.dir, &["--json", "sql", "--analyze"]);
    error(&out, "sql", "usage", 2);
    let out = lode(
        &d.dir,
        &["--json", "sql", "--analyze", "--file", "missing.sql"],
    );
    error(&out, "sql", "usage", 2);
    let out = lode(&d.dir, &["--json", "sql", "--format", "csv", "SELECT 1"]);
    error(&out, "sql", "usage", 2);
    let out = lode(
        &d.dir,
        &[
            "--json",
            "sql",
            "--timeout",
            "0.3",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        ],
    );
    error(&out, "sql", "timeout", 4);
}

#[test]
fn check_prints_its_report_and_exits_1_on_problems() {
    let d = demo();
    let out = lode(&d.dir, &["--json", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = document(&out, "check");
    assert_eq!(v["ok"], true);
    insta::assert_snapshot!("check", pretty(&v));

    let p = broken_project("check_broken");
    let out = lode(&p, &["--json", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = document(&out, "check");
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["problems"][0]["line"], 26);
    insta::assert_snapshot!("check_problems", pretty(&v));

    // No project here: a usage error.
    let out = lode(&scratch("check_nowhere"), &["check", "--json"]);
    error(&out, "check", "usage", 2);
}

#[test]
fn audit_prints_its_findings_and_exits_1_on_them() {
    let d = demo();
    let out = lode(&d.dir, &["--json", "audit"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = document(&out, "audit");
    assert_eq!(v["ok"], true);
    insta::assert_snapshot!("audit", pretty(&v));

    let p = broken_project("audit_broken");
    let out = lode(&p, &["audit", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = document(&out, "audit");
    assert_eq!(v["ok"], false);
    assert_eq!(v["by_kind"]["fails"], 1, "{v}");
    assert_eq!(v["by_kind"]["order_dependent"], 1, "{v}");
    insta::assert_snapshot!("audit_findings", pretty(&v));

    let out = lode(&scratch("audit_nowhere"), &["--json", "audit"]);
    error(&out, "audit", "usage", 2);
}

#[test]
fn analyze_is_one_document() {
    let d = demo();
    let out = lode(&d.dir, &["--json", "analyze"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = document(&out, "analyze");
    assert_eq!(v["run_id"], 1);
    assert!(v["fill"].is_null() && v["after_fill"].is_null());
    assert_eq!(v["coverage"]["gold"]["pairs"], 25);
    insta::assert_snapshot!("analyze", pretty(&shape(&v)));

    let out = lode(&d.dir, &["--json", "analyze", "--run", "999"]);
    error(&out, "analyze", "not_found", 1);
    let out = lode(&d.dir, &["--json", "analyze", "--factor", "0.5"]);
    error(&out, "analyze", "usage", 2);
}

#[test]
fn init_says_what_it_wrote() {
    let d = demo();
    let dir = scratch("init");
    let db = d.dir.join("bakery.sqlite");
    let gold = d.dir.join("gold.jsonl");
    let out = lode(
        &dir,
        &[
            "--json",
            "init",
            "p",
            "--db",
            db.to_str().unwrap(),
            "--gold",
            gold.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = document(&out, "init");
    assert_eq!(v["database"]["kind"], "sqlite");
    assert_eq!(v["check"]["ok"], true);
    insta::assert_snapshot!("init", pretty(&v));

    // The template's database is not there yet: written, but the project does not load.
    let out = lode(&dir, &["--json", "init", "empty"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = document(&out, "init");
    assert!(v["check"].is_null());
    assert_eq!(v["not_loaded"]["kind"], "database_unreachable");
    insta::assert_snapshot!("init_not_loaded", pretty(&v));

    // A config already there, a file that does not exist: usage errors.
    let out = lode(&dir, &["--json", "init", "p"]);
    error(&out, "init", "usage", 2);
    let out = lode(&dir, &["init", "q", "--db", "missing.sqlite", "--json"]);
    error(&out, "init", "usage", 2);
}
