//! `--json` for the evaluation commands: `lode eval` (a run, `list`, `diff`), `lode
//! eval-files` (and `--explain-profiles`), `lode llm check` (the offline profile and an
//! OpenAI-compatible fake server), `lode reward` (`--stdin` lines, `serve`'s first line) and
//! `lode bench`. Each document parses, starts with `version` 1 and its `command`, and keeps
//! the shape src/cli/JSON.md documents (snapshots, volatile values masked); each family's
//! errors come as an error document with their exit code.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use lode_testkit::{FakeRequest, FakeResponse, FakeServer};
use serde_json::{Value, json};

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .args(args)
        .env_remove("LAMINI_API_KEY")
        .output()
        .expect("run lode")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The one document on stdout: the whole of stdout parses as one JSON value, an object
/// whose first fields are `version` 1 and `command`.
fn document(out: &Output, command: &str) -> Value {
    let stdout = text(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
            text(&out.stderr)
        )
    });
    let keys: Vec<&String> = doc.as_object().expect("an object").keys().collect();
    assert_eq!(keys[..2], ["version", "command"], "{doc}");
    assert_eq!(doc["version"], json!(1), "{doc}");
    assert_eq!(doc["command"], json!(command), "{doc}");
    doc
}

/// A command's document when it exits with `code`.
fn document_with(out: &Output, command: &str, code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    document(out, command)
}

/// The error document of a failed command: its kind and exit code, the same as the
/// process's, and a message.
fn error(out: &Output, command: &str, kind: &str, code: i32) -> Value {
    let doc = document_with(out, command, code);
    let e = &doc["error"];
    assert_eq!(e["kind"], json!(kind), "{doc}");
    assert_eq!(e["exit_code"], json!(code), "{doc}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    for k in ["location", "hint"] {
        assert!(e.get(k).is_some(), "no {k}: {doc}");
    }
    assert!(
        !text(&out.stderr).is_empty(),
        "the error is on stderr as text too"
    );
    doc
}

/// Values that differ from run to run or machine to machine, by key: times, durations,
/// paths, addresses, thread counts, timing-based scores.
fn volatile(key: &str) -> bool {
    key.ends_with("_ms")
        || key.ends_with("_at")
        || key.ends_with("_s")
        || key.ends_with("path")
        || key.ends_with("_dir")
        || key.ends_with("_hash")
        || matches!(
            key,
            "elapsed"
                | "reports"
                | "url"
                | "address"
                | "out"
                | "threads"
                | "best"
                | "median"
                | "r_ves"
        )
}

/// The document with volatile values replaced by `"<key>"` (a `null` stays `null`).
fn mask(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if volatile(k) && !v.is_null() {
                        masked_value(k, v)
                    } else {
                        mask(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        // Ratios and p-values to 9 decimals: the last bits of a float (and of serde_json's
        // reading of it) are not part of the shape.
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            json!((x * 1e9).round() / 1e9)
        }
        other => other.clone(),
    }
}

/// A placeholder keeping the value's outline: an object keeps its keys.
fn masked_value(key: &str, v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.keys()
                .map(|k| (k.clone(), json!(format!("<{k}>"))))
                .collect(),
        ),
        Value::Array(items) => json!(format!("<{} {key}>", items.len())),
        _ => json!(format!("<{key}>")),
    }
}

fn masked(v: &Value) -> String {
    serde_json::to_string_pretty(&mask(v)).unwrap()
}

/// The demo project (written offline) and the evaluation runs made on it, in order: 1 the
/// offline rules model, 2 a predictions file (the eval set's own SQL, the first one wrong)
/// with neighbour databases, 3 the rules model with three samples. Made once per test file,
/// in the target's scratch directory.
struct Demo {
    dir: PathBuf,
    evals: Vec<Value>,
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("json_eval_demo");
        let _ = std::fs::remove_dir_all(&dir);
        let parent = dir.parent().unwrap();
        let out = lode(parent, &["demo", "json_eval_demo", "--no-run"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let eval_set = std::fs::read_to_string(dir.join("eval.jsonl")).unwrap();
        let mut preds: Vec<String> = eval_set
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["output"].as_str().unwrap().to_string()
            })
            .collect();
        preds[0] = "SELECT 1".into();
        std::fs::write(dir.join("preds.sql"), preds.join("\n") + "\n").unwrap();
        let runs: [&[&str]; 3] = [
            &["--json", "eval", "--model", "rules-base"],
            &[
                "eval",
                "--json",
                "--pred",
                "preds.sql",
                "--model",
                "gold",
                "--neighbours",
                "2",
            ],
            &["--json", "eval", "--samples", "3", "--model", "rules-3"],
        ];
        let evals = runs
            .iter()
            .map(|args| document_with(&lode(&dir, args), "eval", 0))
            .collect();
        Demo { dir, evals }
    })
}

#[test]
fn eval_prints_the_run_as_one_document() {
    let d = demo();
    let run = &d.evals[0];
    assert_eq!(run["eval_run_id"], json!(1));
    assert_eq!(run["total"], json!(15));
    let n: u64 = run["by_hardness"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["count"].as_u64().unwrap())
        .sum();
    assert_eq!(n, 15, "every question in a hardness level");
    assert!(run["reports"].as_array().unwrap().len() >= 4, "{run}");
    assert!(run["calls"]["calls"].as_u64().unwrap() >= 15, "{run}");
    insta::assert_snapshot!("eval_rules", masked(run));

    let preds = &d.evals[1];
    assert_eq!(preds["correct"], json!(14));
    assert_eq!(
        preds["calls"],
        Value::Null,
        "a predictions file calls no model"
    );
    let (lo, hi) = (
        preds["ci_low"].as_f64().unwrap(),
        preds["ci_high"].as_f64().unwrap(),
    );
    let acc = preds["accuracy"].as_f64().unwrap();
    assert!(lo < acc && acc < hi && hi <= 1.0, "{preds}");
    assert_eq!(preds["neighbours"]["k"], json!(2));
    insta::assert_snapshot!("eval_predictions_neighbours", masked(preds));

    let samples = &d.evals[2];
    assert_eq!(samples["samples"]["k"], json!(3));
    insta::assert_snapshot!("eval_samples", masked(samples));
}

#[test]
fn eval_list_and_diff() {
    let d = demo();
    let out = lode(&d.dir, &["eval", "list", "--json"]);
    let list = document_with(&out, "eval list", 0);
    let ids: Vec<i64> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2, 1], "newest first");
    insta::assert_snapshot!("eval_list", masked(&list));

    let out = lode(&d.dir, &["--json", "eval", "diff", "1", "2"]);
    let diff = document_with(&out, "eval diff", 0);
    assert_eq!(diff["paired_test"]["verdict"], json!("b_better"));
    assert_eq!(
        diff["flips"].as_array().unwrap().len() as u64,
        diff["now_right"].as_u64().unwrap() + diff["now_wrong"].as_u64().unwrap()
    );
    insta::assert_snapshot!("eval_diff", masked(&diff));

    // Without --json, the same text as before.
    let out = lode(&d.dir, &["eval", "diff", "1", "2"]);
    let human = text(&out.stdout);
    assert!(
        human.contains("14 flipped: 14 now right, 0 now wrong"),
        "{human}"
    );
    assert!(human.contains("exact McNemar p < 0.001"), "{human}");
}

#[test]
fn eval_errors_are_documents() {
    let d = demo();
    let out = lode(&d.dir, &["--json", "eval", "diff", "1", "99"]);
    error(&out, "eval diff", "not_found", 1);
    let out = lode(&d.dir, &["--json", "eval", "--compare", "nope"]);
    let doc = error(&out, "eval", "usage", 2);
    assert!(doc["error"]["message"].as_str().unwrap().contains("nope"));
    // A predictions file has one answer per question: no samples.
    let out = lode(
        &d.dir,
        &["--json", "eval", "--pred", "preds.sql", "--samples", "2"],
    );
    error(&out, "eval", "usage", 2);
    // No project here.
    let empty = tempfile::tempdir().unwrap();
    let out = lode(empty.path(), &["--json", "eval", "list"]);
    error(&out, "eval list", "usage", 2);
}

/// Spider's layout in `dir`: `dbs/shop/shop.sqlite`, with a gold file of three pairs and
/// predictions, one of them wrong.
fn eval_files_fixture(dir: &Path) {
    let db_dir = dir.join("dbs/shop");
    std::fs::create_dir_all(&db_dir).unwrap();
    let conn = rusqlite::Connection::open(db_dir.join("shop.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL, kind TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO item SELECT i, 'item ' || i, i * 1.5, CASE i % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'c' END FROM n;",
    )
    .unwrap();
    std::fs::write(
        dir.join("gold.sql"),
        "SELECT name FROM item WHERE kind = 'a' ORDER BY price DESC LIMIT 3\tshop\n\
         SELECT kind, count(*) FROM item GROUP BY kind\tshop\n\
         SELECT count(*) FROM item\tshop\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pred.sql"),
        "SELECT name FROM item WHERE kind = 'a' ORDER BY price ASC LIMIT 3\n\
         SELECT count(*), kind FROM item GROUP BY kind ORDER BY kind DESC\n\
         SELECT count(id) FROM item\n",
    )
    .unwrap();
}

#[test]
fn eval_files_summary_document() {
    let dir = tempfile::tempdir().unwrap();
    eval_files_fixture(dir.path());
    let files = [
        "eval-files",
        "--gold",
        "gold.sql",
        "--pred",
        "pred.sql",
        "--db-dir",
        "dbs",
    ];
    let out = lode(dir.path(), &[&files[..], &["--json"]].concat());
    let doc = document_with(&out, "eval-files", 0);
    assert_eq!(doc["total"], json!(3));
    assert_eq!(doc["correct"], json!(2));
    assert_eq!(doc["reasons"], json!({"values": 1}));
    assert_eq!(doc["neighbours"], Value::Null);
    assert_eq!(doc["r_ves"], Value::Null);
    insta::assert_snapshot!("eval_files", masked(&doc));

    // Neighbours, R-VES and the verdict file, which keeps its own lines.
    let more = [
        "--json",
        "--profile",
        "bird_ex",
        "--neighbours",
        "1",
        "--ves",
        "2",
        "--out",
        "v.jsonl",
    ];
    let out = lode(dir.path(), &[&files[..], &more].concat());
    let doc = document_with(&out, "eval-files", 0);
    assert_eq!(doc["compare"], json!("bird_ex"));
    assert_eq!(doc["neighbours"]["k"], json!(1));
    assert_eq!(doc["r_ves"]["timings"], json!(2));
    let score = doc["r_ves"]["score"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&score), "{doc}");
    assert_eq!(doc["out"], json!("v.jsonl"));
    let verdicts = std::fs::read_to_string(dir.path().join("v.jsonl")).unwrap();
    assert_eq!(verdicts.lines().count(), 3);
    insta::assert_snapshot!("eval_files_bird_neighbours_ves", masked(&doc));

    // The text is unchanged.
    let out = lode(dir.path(), &files);
    let human = text(&out.stdout);
    assert!(human.contains("execution accuracy: 66.7%"), "{human}");
    assert!(human.contains("3 pairs in "), "{human}");
}

#[test]
fn eval_files_explains_its_profiles_as_sections() {
    let dir = tempfile::tempdir().unwrap();
    let out = lode(dir.path(), &["--json", "eval-files", "--explain-profiles"]);
    let doc = document_with(&out, "eval-files", 0);
    let sections = doc["sections"].as_array().unwrap();
    let profiles: Vec<&str> = sections
        .iter()
        .filter_map(|s| s["profile"].as_str())
        .collect();
    assert_eq!(
        profiles,
        ["lode", "spider_ts", "bird_ex", "defog", "spider2"]
    );
    assert!(
        sections
            .iter()
            .all(|s| !s["text"].as_str().unwrap().is_empty())
    );
    let markdown = doc["markdown"].as_str().unwrap();
    assert!(markdown.starts_with("# Comparison profiles"));
    // The text without --json is the markdown itself.
    let out = lode(dir.path(), &["eval-files", "--explain-profiles"]);
    assert_eq!(text(&out.stdout), markdown);
}

#[test]
fn eval_files_errors_are_documents() {
    let dir = tempfile::tempdir().unwrap();
    eval_files_fixture(dir.path());
    let base = [
        "--json",
        "eval-files",
        "--gold",
        "gold.sql",
        "--pred",
        "pred.sql",
    ];
    let out = lode(
        dir.path(),
        &[&base[..], &["--db-dir", "dbs", "--profile", "nope"]].concat(),
    );
    error(&out, "eval-files", "usage", 2);
    // Missing --db-dir: clap's own error, as a document (named after the words before the
    // first flag).
    let out = lode(
        dir.path(),
        &["eval-files", "--json", "--gold", "g", "--pred", "p"],
    );
    error(&out, "eval-files", "usage", 2);
    // A gold line naming a database that is not there.
    std::fs::write(dir.path().join("gold.sql"), "SELECT 1\tnowhere\n").unwrap();
    std::fs::write(dir.path().join("pred.sql"), "SELECT 1\n").unwrap();
    let out = lode(dir.path(), &[&base[..], &["--db-dir", "dbs"]].concat());
    let doc = error(&out, "eval-files", "input", 2);
    assert_eq!(doc["error"]["location"]["line"], json!(1), "{doc}");
}

#[test]
fn llm_check_of_the_offline_profile() {
    let d = demo();
    let out = lode(&d.dir, &["--json", "llm", "check"]);
    let doc = document_with(&out, "llm check", 0);
    assert_eq!(doc["works"], json!(true));
    assert_eq!(doc["backend"], json!("rules"));
    assert!(doc["request"]["answer"].as_str().is_some(), "{doc}");
    insta::assert_snapshot!("llm_check_rules", masked(&doc));

    let out = lode(&d.dir, &["--json", "llm", "check", "nope"]);
    let doc = error(&out, "llm check", "input", 2);
    assert!(doc["error"]["location"]["file"].is_string(), "{doc}");
}

const KEY_VAR: &str = "LODE_JSON_EVAL_KEY";

/// A copy of the demo project whose default profile, `fake`, is an OpenAI-compatible server
/// at `url`.
fn project_at(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = lode(dir.path(), &["demo", "p", "--no-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = dir.path().join("p/config.yml");
    let config = std::fs::read_to_string(&path).unwrap();
    let base = config.split("\nllm:").next().unwrap();
    std::fs::write(
        &path,
        format!(
            "{base}\nllm:\n  default: fake\n  profiles:\n    fake:\n      kind: openai\n      \
             base_url: {url}/v1\n      api_key_env: {KEY_VAR}\n      model: fake\n      \
             timeout_s: 5\n"
        ),
    )
    .unwrap();
    dir
}

fn check_at(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir.join("p"))
        .args(["--json", "llm", "check"])
        .env(KEY_VAR, "sk-json-eval-test")
        .output()
        .unwrap()
}

#[test]
fn llm_check_of_an_openai_compatible_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(|r: &FakeRequest| {
            if r.method == "GET" && r.path == "/v1/models" {
                return FakeResponse::json(200, json!({"data": [{"id": "other"}, {"id": "fake"}]}));
            }
            FakeResponse::chat(&json!({"sql": "SELECT 1"}).to_string())
        }))
        .unwrap();
    let dir = project_at(&server.url());
    let doc = document_with(&check_at(dir.path()), "llm check", 0);
    assert_eq!(doc["models"]["offered"], json!(["other", "fake"]));
    assert_eq!(doc["models"]["includes_model"], json!(true));
    assert_eq!(doc["request"]["output_mode"], json!("json_schema"));
    assert_eq!(doc["url"], json!(format!("{}/v1", server.url())));
    assert!(
        !doc.to_string().contains("sk-json-eval-test"),
        "no key shown"
    );
    insta::assert_snapshot!("llm_check_openai", masked(&doc));

    // A refused key: the check finishes, reports the problem, and exits 1.
    let refusing = rt
        .block_on(FakeServer::start(|_: &FakeRequest| {
            FakeResponse::json(
                401,
                json!({"error": {"message": "Incorrect API key provided"}}),
            )
        }))
        .unwrap();
    let dir = project_at(&refusing.url());
    let doc = document_with(&check_at(dir.path()), "llm check", 1);
    assert_eq!(doc["works"], json!(false));
    assert_eq!(doc["request"]["error"]["kind"], json!("auth"));
    assert!(
        doc["request"]["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("export {KEY_VAR}=")),
        "{doc}"
    );
    insta::assert_snapshot!(
        "llm_check_refused",
        masked(&doc).replace(&refusing.url(), "http://<server>")
    );
}

/// `lode reward --stdin` with `lines` on stdin: its exit code and stdout.
fn reward_stdin(dir: &Path, args: &[&str], lines: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), text(&out.stdout))
}

#[test]
fn reward_stdin_lines_carry_the_version() {
    let d = demo();
    let items = [
        json!({"id": 1, "gold_sql": "SELECT count(*) FROM stores", "prediction": "SELECT count(*) FROM stores"}),
        json!({"id": 2, "gold_sql": "SELECT count(*) FROM stores", "prediction": "SELECT 1"}),
    ];
    let mut input: String = items.iter().map(|i| format!("{i}\n")).collect();
    // With and without --json, the same lines: one per item, in order.
    let mut outputs = Vec::new();
    for args in [&["reward", "--stdin"][..], &["--json", "reward", "--stdin"]] {
        let (code, stdout) = reward_stdin(&d.dir, args, &input);
        assert_eq!(code, Some(0), "{stdout}");
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        for (line, id) in lines.iter().zip([1, 2]) {
            let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
            assert_eq!(keys[..2], ["version", "id"], "{line}");
            assert_eq!(line["version"], json!(1));
            assert_eq!(line["id"], json!(id));
        }
        assert_eq!(lines[0]["score"], json!(1.0));
        outputs.push(Value::Array(lines));
    }
    assert_eq!(outputs[0], outputs[1]);
    insta::assert_snapshot!("reward_stdin", masked(&outputs[0]));
    // A line that is not an item: its error line, the others scored, exit 1.
    input.push_str("not json\n");
    let (code, stdout) = reward_stdin(&d.dir, &["reward", "--stdin"], &input);
    assert_eq!(code, Some(1));
    let last: Value = serde_json::from_str(stdout.lines().nth(2).unwrap()).unwrap();
    assert_eq!(last["version"], json!(1));
    assert_eq!(last["error"]["kind"], json!("bad_item"));
}

#[test]
fn reward_serve_prints_where_it_listens_as_a_line() {
    let d = demo();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(&d.dir)
        .args(["--json", "reward", "serve", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let line: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
    assert_eq!(keys[..3], ["version", "command", "event"], "{line}");
    assert_eq!(line["command"], json!("reward serve"));
    assert_eq!(line["event"], json!("listening"));
    let url = line["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    // The line's own fields in name order (a stream line's order after `event` is not part
    // of its shape).
    let fields: std::collections::BTreeMap<&String, &Value> =
        line.as_object().unwrap().iter().collect();
    insta::assert_snapshot!(
        "reward_serve_listening",
        masked(&serde_json::to_value(fields).unwrap())
    );
    // It answers there; ctrl-c ends the stream with its done line.
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(0));
    let done: Value = serde_json::from_str(rest.trim()).unwrap_or_else(|e| panic!("{e}: {rest}"));
    assert_eq!(done["event"], json!("done"), "{done}");
}

#[test]
fn reward_errors_are_documents() {
    let d = demo();
    let out = lode(&d.dir, &["--json", "reward"]);
    error(&out, "reward", "usage", 2);
    let out = lode(&d.dir, &["--json", "reward", "--stdin", "--shape", "nope"]);
    let doc = error(&out, "reward", "usage", 2);
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("arctic"),
        "{doc}"
    );
    let empty = tempfile::tempdir().unwrap();
    let out = lode(empty.path(), &["--json", "reward", "serve", "--port", "0"]);
    error(&out, "reward serve", "usage", 2);
}

#[cfg(feature = "bench")]
#[test]
fn bench_results_are_a_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = lode(
        dir.path(),
        &["--json", "bench", "--only", "demo", "--repeat", "1"],
    );
    let doc = document_with(&out, "bench", 0);
    let figures = doc["figures"].as_array().unwrap();
    assert_eq!(figures.len(), 1, "{doc}");
    assert!(figures[0]["best"].as_f64().unwrap() > 0.0);
    insta::assert_snapshot!("bench_demo", masked(&doc));

    let out = lode(dir.path(), &["--json", "bench", "--only", "nope"]);
    let doc = error(&out, "bench", "usage", 2);
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("spider"),
        "{doc}"
    );
}
