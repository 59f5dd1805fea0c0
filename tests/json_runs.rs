//! `--json` for the run commands (`generate`, `export`, `import`, `tune`, `jobs`), with the
//! `lode` binary on the demo project: every document parses, starts with `version` 1 and the
//! command, and keeps the shape src/cli/JSON.md documents (insta snapshots of the documents
//! with times, durations and temporary paths masked); streams are JSON lines ending with a
//! `done` line or an error document; errors carry their kind and exit code. The offline
//! `rules` backend and `memory` tuner run everything; fake servers (in process) stand in for
//! an OpenAI job with losses, a refused key and a slow model.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::{JobStatus, Store, TuneProvider};
use lode_testkit::{FakeRequest, FakeResponse, FakeServer};
use serde_json::{Value, json};

/// `lode` in `dir` with `args` (`--json` is among them where a test wants it).
fn lode(dir: &Path, args: &[&str]) -> Output {
    lode_env(dir, &[], args)
}

fn lode_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lode"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("LAMINI_API_KEY")
        .env_remove("OPENAI_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run lode")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every JSON value on stdout, in order (lines of a stream, or one pretty document).
fn documents(out: &Output) -> Vec<Value> {
    let stdout = text(&out.stdout);
    serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"))
}

/// The one document on stdout, with its version and command checked; the exit code must be
/// `code`.
fn document(out: &Output, command: &str, code: i32) -> Value {
    let docs = documents(out);
    assert_eq!(
        docs.len(),
        1,
        "one document expected:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let doc = docs.into_iter().next().unwrap();
    check_head(&doc, command);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{doc:#}\nstderr:\n{}",
        text(&out.stderr)
    );
    doc
}

/// A stream: JSON lines, each one line of stdout, each with the version, the command and an
/// event; the last is `done`. The exit code must be `code`.
fn stream(out: &Output, command: &str, code: i32) -> Vec<Value> {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for line in &lines {
        check_head(line, command);
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys[2], "event", "{line}");
    }
    assert_eq!(lines.last().unwrap()["event"], "done", "{stdout}");
    lines
}

fn check_head(doc: &Value, command: &str) {
    let keys: Vec<&String> = doc.as_object().expect("an object").keys().collect();
    assert_eq!(&keys[..2], ["version", "command"], "{doc}");
    assert_eq!(doc["version"], 1, "{doc}");
    assert_eq!(doc["command"], command, "{doc}");
}

/// The error document of a failed command: its kind and exit code as expected.
fn error(out: &Output, command: &str, kind: &str, code: i32) -> Value {
    let docs = documents(out);
    let doc = docs
        .last()
        .unwrap_or_else(|| panic!("no document on stdout"));
    check_head(doc, command);
    let e = &doc["error"];
    assert_eq!(e["kind"], kind, "{doc:#}");
    assert_eq!(e["exit_code"], code, "{doc:#}");
    assert_eq!(out.status.code(), Some(code), "{doc:#}");
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["kind", "message", "location", "hint", "exit_code"],
        "{doc:#}"
    );
    // The text is on stderr too.
    assert!(
        text(&out.stderr).contains("error: "),
        "{}",
        text(&out.stderr)
    );
    e.clone()
}

/// The document with what changes from run to run masked: times, durations, the temporary
/// directory and a dataset's name (a hash of its examples).
fn masked(doc: &Value, dir: &Path) -> String {
    masked_numbers(doc, dir, &[])
}

/// [`masked`], and every number under the keys `under` masked too: the rules backend's
/// pairs are the same from run to run, but which of two duplicates is kept (and so which
/// generator a kept pair is counted for) depends on the order concurrent calls end in.
fn masked_numbers(doc: &Value, dir: &Path, under: &[&str]) -> String {
    fn walk(v: &mut Value, key: &str, numbers: bool, dirs: &[String], under: &[&str]) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let numbers = numbers || under.contains(&k.as_str());
                    walk(v, k, numbers, dirs, under);
                }
            }
            Value::Array(items) => {
                for v in items {
                    walk(v, key, numbers, dirs, under);
                }
            }
            _ if v.is_null() => {}
            _ if key == "at" || key.ends_with("_at") => *v = json!("[time]"),
            _ if key.ends_with("_ms") || key == "elapsed" => *v = json!("[ms]"),
            _ if key == "name" => *v = json!("[name]"),
            Value::Number(_) if numbers => *v = json!("[n]"),
            Value::String(s) => {
                for d in dirs {
                    if s.contains(d.as_str()) {
                        *s = s.replace(d.as_str(), "[dir]");
                    }
                }
            }
            _ => {}
        }
    }
    let mut v = doc.clone();
    let mut dirs = vec![dir.display().to_string()];
    if let Ok(real) = dir.canonicalize() {
        dirs.insert(0, real.display().to_string());
    }
    walk(&mut v, "", false, &dirs, under);
    serde_json::to_string_pretty(&v).unwrap()
}

/// The keys of an object, in order.
fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// A demo project with nothing run yet (written in process: a second).
fn fresh() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    dir
}

/// A copy of the demo with the gold set imported as run 1 (once for the file), and one
/// more pair (26) asking gold question 1 with other SQL: 26 valid pairs, the same every
/// time (generated pairs vary a little from run to run: which of two duplicates is kept
/// depends on the order concurrent calls end in).
fn imported() -> tempfile::TempDir {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let dir = fresh();
        let mut pairs = std::fs::read_to_string(dir.path().join("gold.jsonl")).unwrap();
        pairs.push_str(
            "{\"input\": \"How many orders were placed online?\", \"output\": \"SELECT COUNT(*) FROM orders\"}\n",
        );
        std::fs::write(dir.path().join("pairs.jsonl"), pairs).unwrap();
        let out = lode(dir.path(), &["import", "pairs.jsonl"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("imported 26 pairs into run 1 (26 valid"),
            "{}",
            text(&out.stdout)
        );
        dir
    });
    let copy = tempfile::tempdir().unwrap();
    copy_dir(base.path(), copy.path());
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn generate_streams_throttled_progress_and_ends_with_the_run_summary() {
    let dir = fresh();
    let started = std::time::Instant::now();
    let out = lode(dir.path(), &["--json", "generate", "--gold", "1,2"]);
    let elapsed = started.elapsed();
    let lines = stream(&out, "generate", 0);
    // Progress and the model stay on stderr too.
    assert!(
        text(&out.stderr).contains("generating with profile rules"),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(lines[0]["event"], "started");
    assert_eq!(
        keys(&lines[0]),
        ["version", "command", "event", "stage", "detail"]
    );
    assert_eq!(lines[0]["stage"], "generation");
    let progress: Vec<&Value> = lines.iter().filter(|l| l["event"] == "progress").collect();
    assert!(!progress.is_empty());
    for p in &progress {
        assert_eq!(
            keys(p),
            [
                "version",
                "command",
                "event",
                "stage",
                "unit",
                "done",
                "total",
                "pairs_stored",
                "pairs_by_generator"
            ]
        );
        assert!(p["done"].as_u64() <= p["total"].as_u64(), "{p}");
        let by: u64 = p["pairs_by_generator"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(Some(by), p["pairs_stored"].as_u64(), "{p}");
    }
    let stored: Vec<u64> = progress
        .iter()
        .map(|p| p["pairs_stored"].as_u64().unwrap())
        .collect();
    assert!(stored.windows(2).all(|w| w[0] <= w[1]), "{stored:?}");
    // Not a line per pair: at most one every 250 ms, plus the first and last of each phase.
    let bound = (elapsed.as_millis() / 250) as usize + 6;
    assert!(
        progress.len() <= bound,
        "{} progress lines in {elapsed:?}",
        progress.len()
    );
    // The last progress line before `done` has every pair the run stored.
    let calls = progress
        .iter()
        .rfind(|p| p["unit"] == "generator calls")
        .unwrap();
    assert_eq!(calls["done"], calls["total"], "{calls}");
    assert_eq!(progress.last().unwrap()["unit"], "dedup");

    let done = lines.last().unwrap();
    assert_eq!(done["totals"]["generated"], stored.last().copied().unwrap());
    // The counts vary a little from run to run (see `imported`): the snapshot pins the
    // shape, and the totals are the sums of the generators' counts.
    for field in ["asked", "generated", "valid", "duplicate"] {
        let sum: u64 = done["by_generator"]
            .as_object()
            .unwrap()
            .values()
            .map(|g| g[field].as_u64().unwrap())
            .sum();
        assert_eq!(Some(sum), done["totals"][field].as_u64(), "{field}");
    }
    insta::assert_snapshot!(
        "generate_done",
        masked_numbers(
            done,
            dir.path(),
            &["by_generator", "totals", "diversity", "calls"]
        )
    );

    // Without --json: the text summary, no JSON.
    let out = lode(dir.path(), &["generate", "--new", "--gold", "1"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("run 2 finished with profile rules"),
        "{stdout}"
    );
    assert!(!stdout.contains('{'), "{stdout}");
}

#[test]
fn generate_usage_and_not_found_errors() {
    let dir = fresh();
    let e = error(
        &lode(dir.path(), &["--json", "generate", "--gold", "0"]),
        "generate",
        "usage",
        2,
    );
    assert_eq!(e["message"], "--gold 0: the gold set has pairs 1 to 25");
    // Flags that do not fit together are clap's usage error, with the command named.
    let e = error(
        &lode(
            dir.path(),
            &["generate", "--new", "--resume", "1", "--json"],
        ),
        "generate",
        "usage",
        2,
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("'--new' cannot be used with"),
        "{e}"
    );
    let out = lode(dir.path(), &["--json", "generate", "--resume", "99"]);
    let e = error(&out, "generate", "not_found", 1);
    assert_eq!(e["message"], "no run with id 99 in the workspace store");
    // The stream's lines come first (here `started`), then the error document.
    let docs = documents(&out);
    assert_eq!(docs[0]["event"], "started");
}

/// The demo project with an OpenAI-compatible profile at `url` whose key is `KEY`.
fn demo_with_llm(url: &str, generate_yaml: &str) -> tempfile::TempDir {
    let dir = fresh();
    let path = dir.path().join("config.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let base = text.split("\nllm:").next().unwrap().to_string();
    std::fs::write(
        &path,
        format!(
            "{base}\nllm:\n  default: fake\n  profiles:\n    fake:\n      kind: openai\n      \
             base_url: {url}/v1\n      api_key_env: LODE_JSON_RUNS_KEY\n      model: fake\n      \
             max_concurrency: 2\n      timeout_s: 5\n{generate_yaml}\n"
        ),
    )
    .unwrap();
    dir
}

const KEY: (&str, &str) = ("LODE_JSON_RUNS_KEY", "sk-json-runs-0123456789abcdef");

#[test]
fn a_failed_generation_run_is_an_error_document_naming_the_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(|_: &FakeRequest| {
            FakeResponse::json(
                401,
                json!({"error": {"message": "Incorrect API key provided"}}),
            )
        }))
        .unwrap();
    let dir = demo_with_llm(
        &server.url(),
        "generate:\n  per_gold:\n    pattern: 1\n    variation: 0\n    decomposer: 0\n  sql_first: 0\n",
    );
    let out = lode_env(dir.path(), &[KEY], &["--json", "generate", "--gold", "1,2"]);
    let e = error(&out, "generate", "failed", 1);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("generation run 1 failed: "),
        "{message}"
    );
    assert!(
        message.contains("`lode generate` to resume run 1"),
        "{message}"
    );
    let docs = documents(&out);
    assert_eq!(docs[0]["event"], "started");
    // Without --json the same words, on stderr.
    let out = lode_env(dir.path(), &[KEY], &["generate", "--gold", "1,2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("error: generation run 1 failed: "),
        "{}",
        text(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_generation_run_with_the_interrupted_document() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(|r: &FakeRequest| {
            let body = r.json();
            let system = body["messages"][0]["content"].as_str().unwrap_or("");
            let user = body["messages"][1]["content"].as_str().unwrap_or("");
            let tag = user.len() * 31 + user.bytes().map(|b| b as usize).sum::<usize>();
            let answer = if system.contains("precise SQL queries") {
                json!({"sql_query": format!("SELECT name, '{tag:x}' FROM stores")})
            } else {
                json!({"q1": format!("first {tag:x}?"), "q2": format!("second {tag:x}?")})
            };
            FakeResponse::chat(&answer.to_string()).with_delay(Duration::from_millis(150))
        }))
        .unwrap();
    let dir = demo_with_llm(
        &server.url(),
        "generate:\n  per_gold:\n    pattern: 1\n    variation: 1\n    decomposer: 0\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir.path())
        .args(["--json", "generate"])
        .env(KEY.0, KEY.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            lines.push(line);
        }
        lines
    });
    // Once a pair is stored, ctrl-c.
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a progress line with a stored pair");
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "progress" && v["pairs_stored"].as_u64() > Some(0) {
            break;
        }
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(130), "{stdout}");
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect();
    let last = docs.last().unwrap();
    check_head(last, "generate");
    assert_eq!(last["error"]["kind"], "interrupted", "{last}");
    assert_eq!(last["error"]["exit_code"], 130);
    assert!(docs.iter().all(|d| d["event"] != "done"));
}

#[test]
fn jobs_list_tune_watch_and_cancel_documents() {
    let dir = imported();
    let d = dir.path();

    let empty = document(&lode(d, &["--json", "jobs", "list"]), "jobs list", 0);
    assert_eq!(empty["jobs"], json!([]));

    let submitted = document(&lode(d, &["--json", "tune", "--no-watch"]), "tune", 0);
    insta::assert_snapshot!("tune_no_watch", masked(&submitted, d));
    assert_eq!(submitted["job"]["status"], "queued");
    assert_eq!(submitted["watched"], false);

    // The newest job: an update line per event the watch stores, then the progress.
    let out = lode(d, &["--json", "jobs", "watch"]);
    let lines = stream(&out, "jobs watch", 0);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["started", "update", "progress", "done"]);
    let all: Vec<String> = lines.iter().map(|l| masked(l, d)).collect();
    insta::assert_snapshot!("jobs_watch", all.join("\n"));

    // Submitted and watched: the job's every event, from its creation.
    let out = lode(d, &["--json", "tune"]);
    let lines = stream(&out, "tune", 0);
    let examples = submitted["job"]["dataset"]["train"].as_u64().unwrap();
    let updates: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "update")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(updates.len(), 3, "{updates:?}");
    assert_eq!(updates[0], "created");
    assert_eq!(
        updates[1],
        format!("submitted {examples} examples as memory-2")
    );
    assert!(updates[2].starts_with("indexed "), "{updates:?}");
    assert_eq!(lines.last().unwrap()["watched"], true);
    let all: Vec<String> = lines.iter().map(|l| masked(l, d)).collect();
    insta::assert_snapshot!("tune_watch", all.join("\n"));

    let list = document(&lode(d, &["jobs", "list", "--json"]), "jobs list", 0);
    insta::assert_snapshot!("jobs_list", masked(&list, d));
    // `lode jobs` alone lists too, under its own name.
    let bare = document(&lode(d, &["--json", "jobs"]), "jobs", 0);
    assert_eq!(bare["jobs"], list["jobs"]);

    // A job submitted and not watched yet, cancelled.
    let queued = document(&lode(d, &["--json", "tune", "--no-watch"]), "tune", 0);
    assert_eq!(queued["job"]["id"], 3);
    let cancelled = document(
        &lode(d, &["--json", "jobs", "cancel", "3"]),
        "jobs cancel",
        0,
    );
    assert_eq!(cancelled["job"]["status"], "cancelled");
    assert_eq!(cancelled["job"]["tuned_model"], Value::Null);
    assert_eq!(cancelled["job"]["last_message"], "cancelled by the user");
    insta::assert_snapshot!("jobs_cancel", masked(&cancelled, d));

    // Errors: an unknown job, a bad provider, a run that does not exist.
    let e = error(
        &lode(d, &["--json", "jobs", "watch", "99"]),
        "jobs watch",
        "not_found",
        1,
    );
    assert_eq!(e["message"], "no job with id 99 in the workspace store");
    error(
        &lode(d, &["--json", "jobs", "cancel", "99"]),
        "jobs cancel",
        "not_found",
        1,
    );
    let e = error(
        &lode(d, &["--json", "tune", "--provider", "bogus"]),
        "tune",
        "usage",
        2,
    );
    assert_eq!(
        e["message"],
        "unknown tuning provider `bogus`; use memory, lamini, openai or local"
    );
    error(
        &lode(d, &["--json", "tune", "--run", "99"]),
        "tune",
        "not_found",
        1,
    );

    // The text stays as it was.
    let out = lode(d, &["jobs", "list"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("   3  memory   cancelled  memory-3 "),
        "{stdout}"
    );
}

#[test]
fn a_tuning_job_in_an_empty_project() {
    let dir = fresh();
    let list = document(&lode(dir.path(), &["--json", "jobs"]), "jobs", 0);
    assert_eq!(list["jobs"], json!([]));
    // Nothing to watch: said as a usage error; nothing to train on: the work fails.
    error(
        &lode(dir.path(), &["--json", "jobs", "watch"]),
        "jobs watch",
        "usage",
        2,
    );
    let e = error(&lode(dir.path(), &["--json", "tune"]), "tune", "failed", 1);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("only 0 training examples"),
        "{e}"
    );
}

/// An OpenAI job: running with two metric events (steps 1 and 2 of 4, losses 0.9 and 0.5),
/// then succeeded.
fn openai_job(r: &FakeRequest, polls: &AtomicUsize) -> FakeResponse {
    let path = r.path.split('?').next().unwrap_or("");
    if path.ends_with("/events") {
        if r.path.contains("after=") {
            return FakeResponse::json(200, json!({"data": [], "has_more": false}));
        }
        return FakeResponse::json(
            200,
            json!({"data": [
                {"id": "ev-2", "message": "Step 2/4: training loss=0.50", "type": "metrics", "data": {"step": 2, "total_steps": 4, "train_loss": 0.5}},
                {"id": "ev-1", "message": "Step 1/4: training loss=0.90", "type": "metrics", "data": {"step": 1, "total_steps": 4, "train_loss": 0.9}}
            ], "has_more": false}),
        );
    }
    if polls.fetch_add(1, Ordering::SeqCst) == 0 {
        FakeResponse::json(200, json!({"id": "ftjob-9", "status": "running"}))
    } else {
        FakeResponse::json(
            200,
            json!({"id": "ftjob-9", "status": "succeeded", "fine_tuned_model": "ft:gpt-4o-mini:lode:9"}),
        )
    }
}

#[test]
fn jobs_watch_streams_each_stored_event_with_its_loss() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let polls = AtomicUsize::new(0);
    let server = rt
        .block_on(FakeServer::start(move |r: &FakeRequest| {
            openai_job(r, &polls)
        }))
        .unwrap();
    let dir = fresh();
    let config = dir.path().join("config.yml");
    let mut text_of = std::fs::read_to_string(&config).unwrap();
    text_of.push_str(&format!(
        "  poll_s: 0.05\n  openai:\n    base_url: {}/v1\n    api_key_env: LODE_JSON_RUNS_KEY\n    model: gpt-4o-mini-2024-07-18\n",
        server.url()
    ));
    std::fs::write(&config, text_of).unwrap();
    {
        let store = Store::open(&dir.path().join(".lode/lode.db")).unwrap();
        let job = store
            .create_job(
                TuneProvider::OpenAi,
                Some("gpt-4o-mini-2024-07-18"),
                None,
                JobStatus::Running,
                "{}",
            )
            .unwrap();
        assert_eq!(job, 1);
        store.set_job_external_id(job, "ftjob-9").unwrap();
    }
    let out = lode_env(dir.path(), &[KEY], &["--json", "jobs", "watch"]);
    let lines = stream(&out, "jobs watch", 0);
    let updates: Vec<(Value, Value, Value)> = lines
        .iter()
        .filter(|l| l["event"] == "update")
        .map(|l| (l["status"].clone(), l["step"].clone(), l["loss"].clone()))
        .collect();
    assert_eq!(
        updates,
        [
            (json!("running"), json!(1), json!(0.9)),
            (json!("running"), json!(2), json!(0.5)),
            (json!("succeeded"), Value::Null, Value::Null),
        ]
    );
    let done = &lines.last().unwrap()["job"];
    assert_eq!(done["tuned_model"], "ft:gpt-4o-mini:lode:9");
    assert_eq!(done["losses"], json!([0.9, 0.5]));
    assert_eq!(done["base_model"], "gpt-4o-mini-2024-07-18");
    // Progress lines: steps as the watch saw them, at most every 250 ms (so how many there
    // are depends on the machine's speed), the last one written before `done`.
    let steps: Vec<u64> = lines
        .iter()
        .filter(|l| l["event"] == "progress")
        .map(|l| l["done"].as_u64().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&1));
    assert_eq!(steps.last(), Some(&2));
    let all: Vec<String> = lines
        .iter()
        .filter(|l| l["event"] != "progress")
        .map(|l| masked(l, dir.path()))
        .collect();
    insta::assert_snapshot!("jobs_watch_openai", all.join("\n"));
}

#[test]
fn export_documents_say_what_was_written_and_skipped() {
    let dir = imported();
    let d = dir.path();
    std::fs::create_dir(d.join("sft")).unwrap();
    std::fs::create_dir(d.join("rl")).unwrap();

    let flat = document(
        &lode(d, &["--json", "export", "--out", "flat.jsonl"]),
        "export",
        0,
    );
    insta::assert_snapshot!("export_lamini", masked(&flat, d));
    let lines = std::fs::read_to_string(d.join("flat.jsonl")).unwrap();
    assert_eq!(Some(lines.lines().count() as u64), flat["count"].as_u64());

    let alpaca = document(
        &lode(
            d,
            &[
                "--json",
                "export",
                "--format",
                "alpaca",
                "--out",
                "sft/alpaca.jsonl",
            ],
        ),
        "export",
        0,
    );
    insta::assert_snapshot!("export_alpaca", masked(&alpaca, d));
    for f in alpaca["files"].as_array().unwrap() {
        assert!(d.join(f["path"].as_str().unwrap()).exists(), "{f}");
    }

    let nested = document(
        &lode(
            d,
            &[
                "--json",
                "export",
                "--format",
                "lamini-nested",
                "--status",
                "all",
                "--out",
                "nested.jsonl",
            ],
        ),
        "export",
        0,
    );
    assert_eq!(nested["unit"], "gold_question");
    assert_eq!(nested["status"], "all");

    // Nothing accepted yet: no RL tasks, an error document (exit 1) saying what to do.
    let e = error(
        &lode(d, &["--json", "export", "--format", "rl-tasks"]),
        "export",
        "failed",
        1,
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("lode review accept"),
        "{e}"
    );
    error(
        &lode(d, &["--json", "export", "--format", "dpo"]),
        "export",
        "failed",
        1,
    );

    let accepted = lode(d, &["review", "accept", "--all-valid"]);
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    let rl = document(
        &lode(
            d,
            &[
                "--json",
                "export",
                "--format",
                "rl-tasks",
                "--flavour",
                "verl",
                "--out",
                "rl/tasks.jsonl",
            ],
        ),
        "export",
        0,
    );
    insta::assert_snapshot!("export_rl_tasks", masked(&rl, d));
    assert!(d.join("rl/lode_reward.py").exists());

    // Pair 26 rejected: gold question 1 asked with another result, a preference pair.
    let rejected = lode(d, &["review", "reject", "26"]);
    assert!(rejected.status.success(), "{}", text(&rejected.stderr));
    let dpo = document(
        &lode(
            d,
            &["--json", "export", "--format", "dpo", "--out", "dpo.jsonl"],
        ),
        "export",
        0,
    );
    insta::assert_snapshot!("export_dpo", masked(&dpo, d));

    // Usage errors exit 2; an unknown run is not found.
    let e = error(
        &lode(d, &["--json", "export", "--format", "csv"]),
        "export",
        "usage",
        2,
    );
    assert_eq!(e["message"], "unknown export format `csv`");
    assert!(
        e["hint"].as_str().unwrap().contains("rl-tasks or dpo"),
        "{e}"
    );
    error(
        &lode(d, &["--json", "export", "--flavour", "trl"]),
        "export",
        "usage",
        2,
    );
    error(
        &lode(
            d,
            &[
                "--json",
                "export",
                "--format",
                "rl-tasks",
                "--flavour",
                "axolotl",
            ],
        ),
        "export",
        "usage",
        2,
    );
    error(
        &lode(d, &["--json", "export", "--status", "some"]),
        "export",
        "usage",
        2,
    );
    let e = error(
        &lode(d, &["--json", "export", "--run", "99"]),
        "export",
        "not_found",
        1,
    );
    assert_eq!(e["message"], "no run with id 99 in the workspace store");
}

#[test]
fn import_documents_say_what_was_read_per_generator() {
    let dir = imported();
    let d = dir.path();
    // Two records as the original writes them, one item without a question (left out, and
    // said).
    let record = |q: &str, sql: &str, pattern: &[(&str, &str)], sub: &[(&str, &str)]| {
        json!({
            "original_question": q,
            "original_sql": sql,
            "pattern_variations": pattern.iter().map(|(q, s)| json!({"question": q, "generated_sql": s, "validation": {"is_valid": true}})).collect::<Vec<_>>(),
            "structural_variations": [],
            "sub_questions": sub.iter().map(|(q, s)| json!({"sub_question": q, "generated_sql": s})).collect::<Vec<_>>(),
        })
        .to_string()
    };
    let nested = [
        record(
            "How many stores are there?",
            "SELECT COUNT(*) FROM stores",
            &[
                (
                    "How many products are there?",
                    "SELECT COUNT(*) FROM products",
                ),
                (
                    "How many employees are there?",
                    "SELECT COUNT(*) FROM employes",
                ),
            ],
            &[("Which stores are there?", "SELECT name FROM stores")],
        ),
        record(
            "Which cities have a store?",
            "SELECT DISTINCT city FROM stores",
            &[("", "SELECT 1")],
            &[],
        ),
    ]
    .join("\n");
    std::fs::write(d.join("nested.jsonl"), nested + "\n").unwrap();

    let doc = document(&lode(d, &["--json", "import", "nested.jsonl"]), "import", 0);
    assert_eq!(doc["format"], "lamini-nested");
    assert_eq!(
        doc["skipped"],
        json!([{"reason": "no_question", "count": 1}])
    );
    let per: u64 = doc["by_generator"]
        .as_object()
        .unwrap()
        .values()
        .map(|g| g["pairs"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(per), doc["pairs"].as_u64());
    insta::assert_snapshot!("import_nested", masked(&doc, d));

    std::fs::write(
        d.join("flat.jsonl"),
        "{\"input\": \"How many stores are there?\", \"output\": \"SELECT COUNT(*) FROM stores\"}\n\
         {\"input\": \"Which stores are broken?\", \"output\": \"SELECT broken FROM stores\"}\n",
    )
    .unwrap();
    let doc = document(&lode(d, &["--json", "import", "flat.jsonl"]), "import", 0);
    insta::assert_snapshot!("import_flat", masked(&doc, d));

    // A file that is not there, a line that is neither shape: input errors at the file (and
    // line), exit 2.
    let e = error(
        &lode(d, &["--json", "import", "missing.jsonl"]),
        "import",
        "input",
        2,
    );
    assert_eq!(e["location"]["file"], "missing.jsonl");
    std::fs::write(
        d.join("bad.jsonl"),
        "{\"input\": \"q\", \"output\": \"SELECT 1\"}\n[1, 2]\n",
    )
    .unwrap();
    let e = error(
        &lode(d, &["--json", "import", "bad.jsonl"]),
        "import",
        "input",
        2,
    );
    assert_eq!(e["location"], json!({"file": "bad.jsonl", "line": 2}));

    // The text stays as it was.
    let out = lode(d, &["import", "flat.jsonl"]);
    assert!(
        text(&out.stdout).starts_with("imported 2 pairs into run "),
        "{}",
        text(&out.stdout)
    );
}
