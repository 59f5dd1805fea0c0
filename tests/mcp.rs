//! `lode mcp` end to end: an MCP client speaking raw JSON-RPC (newline-delimited JSON) over
//! the child's stdin and stdout, on a demo project with generated pairs, an evaluation and a
//! tuning job. The handshake and the tool list; schema, sql and analyze_sql; reviewing
//! through the tools lands in the store as decisions by `mcp`, with undo; hostile SQL is
//! refused and changes no byte of the database; bad input is a tool error with the kind the
//! command line gives; resources, with no API key in the config resource.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use lode_core::store::{PairStatus, ReviewAction, Reviewer, Store};
use serde_json::{Value, json};

/// The fake key the server's environment holds; it must never reach a client.
const ENV_KEY: &str = "sk-secret-123";
/// A key written into config.yml itself.
const FILE_KEY: &str = "sk-literal-98765";

/// The demo project, made once for every test here (the offline loop takes ~40 s).
fn project() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_lode"))
            .current_dir(dir.path())
            .env_remove("LAMINI_API_KEY")
            .args(["demo", "proj", "--no-tui"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let proj = dir.path().join("proj");
        // A profile with its key in the file, which the config resource must not show.
        let config = proj.join("config.yml");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text.replacen(
            "      seed: 7\n",
            &format!(
                "      seed: 7\n    remote:\n      kind: openai\n      base_url: http://127.0.0.1:9/v1\n      model: remote-model\n      api_key: {FILE_KEY}\n"
            ),
            1,
        );
        assert!(text.contains(FILE_KEY));
        std::fs::write(&config, text).unwrap();
        // Predictions for eval_run: the eval set's own SQL, one per line.
        let eval = std::fs::read_to_string(proj.join("eval.jsonl")).unwrap();
        let preds: Vec<String> = eval
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["output"].as_str().unwrap().to_string()
            })
            .collect();
        std::fs::write(proj.join("preds.txt"), preds.join("\n") + "\n").unwrap();
        (dir, proj)
    })
    .1
}

/// A client of one `lode mcp` child.
struct Client {
    child: Child,
    /// `None` once closed.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: i64,
}

impl Client {
    fn start(dir: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lode"))
            .args(["mcp", "-C"])
            .arg(dir)
            .env("LAMINI_API_KEY", ENV_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lode mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut c = Client {
            child,
            stdin: Some(stdin),
            lines,
            next_id: 0,
        };
        let init = c.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "lode-test", "version": "1"}
            }),
        );
        let result = &init["result"];
        assert_eq!(result["protocolVersion"], "2025-06-18", "{init}");
        assert_eq!(result["serverInfo"]["name"], "lode", "{init}");
        assert!(result["capabilities"]["tools"].is_object(), "{init}");
        assert!(result["capabilities"]["resources"].is_object(), "{init}");
        c.notify("notifications/initialized", json!({}));
        c
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("the session is open");
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its response; every line on stdout must be a JSON-RPC
    /// message (stdout is the protocol only).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!("no answer to {method} in 120 s"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("lode mcp closed stdout waiting for {method}")
                }
            };
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// Calls a tool: `(is_error, the document)`; the text content holds the same document
    /// as `structuredContent`.
    fn call(&mut self, tool: &str, arguments: Value) -> (bool, Value) {
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let result = &response["result"];
        assert!(result.is_object(), "{tool}: a tool result, not {response}");
        let text = result["content"][0]["text"].as_str().expect("text content");
        let doc: Value = serde_json::from_str(text).expect("the text is JSON");
        assert_eq!(doc, result["structuredContent"], "{tool}");
        assert_eq!(doc["version"], 1, "{tool}: {doc}");
        (result["isError"] == json!(true), doc)
    }

    fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let (is_error, doc) = self.call(tool, arguments.clone());
        assert!(!is_error, "{tool} {arguments}: {doc}");
        doc
    }

    /// A tool error: the error document `lode --json` prints; returns `(kind, exit_code)`.
    fn error(&mut self, tool: &str, arguments: Value) -> (String, i64, Value) {
        let (is_error, doc) = self.call(tool, arguments.clone());
        assert!(is_error, "{tool} {arguments} should fail: {doc}");
        let e = &doc["error"];
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{doc}"
        );
        (
            e["kind"].as_str().unwrap().to_string(),
            e["exit_code"].as_i64().unwrap(),
            doc,
        )
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closing stdin ends the session; the process must exit on its own.
        drop(self.stdin.take());
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                if !std::thread::panicking() {
                    assert!(status.success(), "lode mcp exited with {status}");
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            panic!("lode mcp did not exit within 5 s of stdin closing");
        }
    }
}

fn store(dir: &Path) -> Store {
    Store::open(&dir.join(".lode/lode.db")).unwrap()
}

#[test]
fn tools_are_listed_with_input_schemas() {
    let mut c = Client::start(project());
    let listed = c.request("tools/list", json!({}));
    let tools = listed["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for expected in [
        "schema",
        "sql",
        "analyze_sql",
        "pairs_list",
        "pair_show",
        "pair_accept",
        "pair_reject",
        "pair_edit",
        "pair_undo",
        "coverage",
        "eval_run",
        "eval_show",
        "jobs",
    ] {
        let t = tools
            .iter()
            .find(|t| t["name"] == expected)
            .unwrap_or_else(|| panic!("{expected} missing from {names:?}"));
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 40),
            "{t}"
        );
    }
    let sql = tools.iter().find(|t| t["name"] == "sql").unwrap();
    assert_eq!(sql["inputSchema"]["required"], json!(["sql"]), "{sql}");
    assert_eq!(sql["annotations"]["readOnlyHint"], true, "{sql}");
    assert_eq!(c.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn schema_sql_and_analysis() {
    let mut c = Client::start(project());
    let doc = c.ok("schema", json!({}));
    assert_eq!(doc["command"], "schema");
    let tables: Vec<&str> = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        tables.contains(&"stores") && tables.contains(&"orders"),
        "{tables:?}"
    );
    let one = c.ok("schema", json!({"table": "STORES"}));
    assert_eq!(one["tables"].as_array().unwrap().len(), 1);
    assert_eq!(one["tables"][0]["name"], "stores");
    let (kind, code, _) = c.error("schema", json!({"table": "nope"}));
    assert_eq!((kind.as_str(), code), ("usage", 2));

    let rows = c.ok(
        "sql",
        json!({"sql": "SELECT name, region FROM stores ORDER BY name"}),
    );
    assert_eq!(rows["command"], "sql");
    assert_eq!(rows["columns"], json!(["name", "region"]));
    let n = rows["rows"].as_array().unwrap().len();
    assert!(n >= 3, "{rows}");
    assert_eq!(rows["truncated"], false);
    let capped = c.ok(
        "sql",
        json!({"sql": "SELECT name FROM stores", "max_rows": 2}),
    );
    assert_eq!(capped["rows"].as_array().unwrap().len(), 2);
    assert_eq!(capped["truncated"], true);
    let (kind, code, _) = c.error("sql", json!({"sql": "SELECT nope FROM stores"}));
    assert_eq!((kind.as_str(), code), ("query_error", 1));

    let a = c.ok(
        "analyze_sql",
        json!({"sql": "SELECT s.name, count(*) FROM stores s JOIN orders o ON o.store_id = s.id GROUP BY s.name"}),
    );
    assert!(a["tables"].to_string().contains("orders"), "{a}");
    assert!(a["hardness"].is_string(), "{a}");
}

#[test]
fn reviewing_through_the_tools_is_recorded_as_mcp_and_can_be_undone() {
    let dir = project();
    let mut c = Client::start(dir);
    let list = c.ok("pairs_list", json!({"status": "valid", "limit": 5}));
    assert_eq!(list["command"], "review list");
    let pairs = list["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 5, "{list}");
    assert!(list["counts"]["valid"].as_u64().unwrap() >= 5, "{list}");
    let page2 = c.ok(
        "pairs_list",
        json!({"status": "valid", "limit": 5, "offset": 5}),
    );
    assert_ne!(page2["pairs"][0]["id"], pairs[0]["id"]);
    let id = pairs[0]["id"].as_i64().unwrap();
    let other = pairs[1]["id"].as_i64().unwrap();

    let accepted = c.ok(
        "pair_accept",
        json!({"ids": [id], "reason": "the agent checked it"}),
    );
    assert_eq!(accepted["command"], "review accept");
    assert_eq!(accepted["decided"][0]["pair_id"], id);
    assert_eq!(accepted["decided"][0]["new_status"], "accepted");
    assert_eq!(accepted["decided"][0]["reviewer"], "mcp");
    let s = store(dir);
    assert_eq!(s.pair(id).unwrap().status, PairStatus::Accepted);
    let history = s.review_history(id).unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.action, last.reviewer, last.note.as_deref()),
        (
            ReviewAction::Accept,
            Some(Reviewer::Mcp),
            Some("the agent checked it")
        )
    );

    let undone = c.ok("pair_undo", json!({"id": id}));
    assert_eq!(
        (undone["undone"].clone(), undone["status"].clone()),
        (json!(true), json!("valid"))
    );
    assert_eq!(s.pair(id).unwrap().status, PairStatus::Valid);
    let history = s.review_history(id).unwrap();
    assert!(history[history.len() - 2].undone);
    assert_eq!(
        (
            history.last().unwrap().action,
            history.last().unwrap().reviewer
        ),
        (ReviewAction::Undo, Some(Reviewer::Mcp))
    );

    let shown = c.ok("pair_show", json!({"id": id}));
    assert_eq!(shown["command"], "review show");
    assert_eq!(shown["pair"]["id"], id);
    assert!(shown["validations"][0]["ok"].is_boolean(), "{shown}");
    let reviewers: Vec<&Value> = shown["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["reviewer"])
        .collect();
    assert_eq!(reviewers, [&json!("mcp"), &json!("mcp")]);

    // An edit is validated before anything is saved.
    let (is_error, doc) = c.call(
        "pair_edit",
        json!({"id": other, "sql": "SELECT nope FROM stores"}),
    );
    assert!(is_error, "{doc}");
    assert_eq!(doc["saved"], false, "{doc}");
    assert_eq!(doc["validation"]["ok"], false, "{doc}");
    assert!(s.review_history(other).unwrap().is_empty(), "nothing saved");
    let edited = c.ok(
        "pair_edit",
        json!({"id": other, "sql": "SELECT name, region FROM stores", "accept": true}),
    );
    assert_eq!(
        (edited["saved"].clone(), edited["status"].clone()),
        (json!(true), json!("accepted"))
    );
    let p = s.pair(other).unwrap();
    assert_eq!(
        (p.sql.as_str(), p.status),
        ("SELECT name, region FROM stores", PairStatus::Accepted)
    );

    let rejected = c.ok(
        "pair_reject",
        json!({"ids": [other], "reason": "duplicate of gold"}),
    );
    assert_eq!(rejected["decided"][0]["new_status"], "rejected");
    assert_eq!(s.pair(other).unwrap().status, PairStatus::Rejected);
    let shown = c.ok("pair_show", json!({"id": other}));
    assert_eq!(shown["rejected_reason"], "duplicate of gold");

    // Bad input: the kinds and exit codes the command line gives.
    let (kind, code, doc) = c.error("pair_show", json!({"id": 999_999}));
    assert_eq!((kind.as_str(), code), ("not_found", 1), "{doc}");
    assert_eq!(doc["command"], "review show");
    let before = s.review_history(id).unwrap().len();
    let (kind, _, _) = c.error("pair_accept", json!({"ids": [id, 999_999]}));
    assert_eq!(kind, "not_found");
    assert_eq!(
        s.review_history(id).unwrap().len(),
        before,
        "a bad id decides nothing"
    );
    let (kind, code, _) = c.error("pairs_list", json!({"status": "approved"}));
    assert_eq!((kind.as_str(), code), ("usage", 2));
    let (kind, code, _) = c.error("pair_show", json!({}));
    assert_eq!((kind.as_str(), code), ("usage", 2), "a missing argument");
    let (kind, _, _) = c.error("pair_show", json!({"id": "seven"}));
    assert_eq!(kind, "usage");
    let (kind, _, _) = c.error("pair_accept", json!({}));
    assert_eq!(kind, "usage", "no ids and no all_valid");
    let (kind, _, _) = c.error("pair_undo", json!({"id": 999_999}));
    assert_eq!(kind, "not_found");
    let (kind, _, _) = c.error("pairs_list", json!({"run": 999}));
    assert_eq!(kind, "not_found");
    let (kind, _, _) = c.error("pair_edit", json!({"id": id}));
    assert_eq!(kind, "usage", "neither sql nor question");
    let (kind, _, _) = c.error("pair_show", json!({"id": id, "extra": 1}));
    assert_eq!(kind, "usage", "unknown arguments are refused");
    let (kind, _, _) = c.error("no_such_tool", json!({}));
    assert_eq!(kind, "usage");
}

#[test]
fn hostile_statements_are_refused_and_change_nothing() {
    let dir = project();
    let db = dir.join("bakery.sqlite");
    let hash = || lode_core::project::sha256_hex(&std::fs::read(&db).unwrap());
    let before = hash();
    let mut c = Client::start(dir);
    let count = |c: &mut Client| {
        c.ok("sql", json!({"sql": "SELECT count(*) FROM orders"}))["rows"][0][0].clone()
    };
    let orders = count(&mut c);
    let attach = format!(
        "ATTACH DATABASE '{}' AS other",
        dir.join("other.sqlite").display()
    );
    for statement in [
        "DELETE FROM stores",
        "DROP TABLE orders",
        "UPDATE orders SET status = 'x'",
        "INSERT INTO stores (name) VALUES ('evil')",
        attach.as_str(),
        "SELECT 1; DELETE FROM stores",
        "PRAGMA writable_schema = ON",
        "CREATE TABLE t (x)",
        "VACUUM",
    ] {
        let (kind, code, doc) = c.error("sql", json!({"sql": statement}));
        assert_eq!((kind.as_str(), code), ("refused", 5), "{statement}: {doc}");
        assert_eq!(doc["command"], "sql");
    }
    let (kind, _, _) = c.error("sql", json!({"sql": "SELECT 1", "max_rows": 0}));
    assert_eq!(kind, "usage");
    assert_eq!(count(&mut c), orders);
    drop(c);
    assert_eq!(
        hash(),
        before,
        "the database file is byte for byte the same"
    );
    assert!(!dir.join("other.sqlite").exists(), "ATTACH made no file");
}

#[test]
fn coverage_evaluation_and_jobs() {
    let dir = project();
    let mut c = Client::start(dir);
    let cov = c.ok("coverage", json!({}));
    assert_eq!(cov["command"], "analyze");
    assert_eq!(cov["run_id"], 1);
    assert!(cov["coverage"]["gold"]["concepts"].is_object(), "{cov}");
    assert!(cov["failed_pairs"]["count"].is_u64(), "{cov}");
    assert_eq!(cov["model"], Value::Null, "no model is asked");
    let (kind, _, _) = c.error("coverage", json!({"factor": 0.5}));
    assert_eq!(kind, "usage");

    let jobs = c.ok("jobs", json!({}));
    assert_eq!(jobs["command"], "jobs list");
    assert_eq!(jobs["jobs"][0]["provider"], "memory", "{jobs}");
    assert_eq!(jobs["jobs"][0]["status"], "succeeded", "{jobs}");

    // The eval set's own SQL as predictions: every answer right.
    let run = c.ok(
        "eval_run",
        json!({"pred": "preds.txt", "model": "gold-itself"}),
    );
    assert_eq!(run["command"], "eval");
    assert_eq!(run["accuracy"], 1.0, "{run}");
    assert_eq!(run["summary"]["total"], 15, "{run}");
    let id = run["eval_run_id"].as_i64().unwrap();
    assert!(
        Path::new(run["report_dir"].as_str().unwrap())
            .join("report.json")
            .is_file()
    );
    let shown = c.ok("eval_show", json!({}));
    assert_eq!(shown["command"], "eval show");
    assert_eq!(shown["run"]["id"], id, "the newest by default");
    assert_eq!(shown["run"]["model"], "gold-itself");
    assert_eq!(shown["run"]["summary"]["accuracy"], 1.0);
    assert_eq!(shown["cases"].as_array().unwrap().len(), 15);
    let wrong = c.ok("eval_show", json!({"id": 1, "wrong_only": true}));
    assert!(
        wrong["cases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["correct"] == false),
        "{wrong}"
    );
    // The offline tuned model of the demo answers without a network.
    let tuned = c.ok("eval_run", json!({"job": 1}));
    assert!(
        tuned["model"].as_str().unwrap().contains("memory"),
        "{tuned}"
    );
    let (kind, code, _) = c.error("eval_show", json!({"id": 999}));
    assert_eq!((kind.as_str(), code), ("not_found", 1));
    let (kind, _, _) = c.error("eval_run", json!({"compare": "nope"}));
    assert_eq!(kind, "usage");
    let (kind, code, doc) = c.error("eval_run", json!({"pred": "missing.txt"}));
    assert_eq!((kind.as_str(), code), ("input", 2), "{doc}");
}

#[test]
fn resources_show_the_config_without_keys() {
    let dir = project();
    let mut c = Client::start(dir);
    let listed = c.request("resources/list", json!({}));
    let uris: Vec<&str> = listed["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    for uri in ["lode://config", "lode://schema", "lode://reports/latest"] {
        assert!(uris.contains(&uri), "{uri} missing from {uris:?}");
    }
    let read = c.request("resources/read", json!({"uri": "lode://config"}));
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("database:") && text.contains("remote:"),
        "{text}"
    );
    assert!(!text.contains(ENV_KEY), "{text}");
    assert!(!text.contains(FILE_KEY), "{text}");
    assert!(text.contains("[redacted]"), "{text}");

    let schema = c.request("resources/read", json!({"uri": "lode://schema"}));
    let doc: Value =
        serde_json::from_str(schema["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(doc["command"], "schema");
    let report = c.request("resources/read", json!({"uri": "lode://reports/latest"}));
    let text = report["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(text).is_ok());
    let missing = c.request("resources/read", json!({"uri": "lode://nope"}));
    assert!(missing["error"]["code"].is_i64(), "{missing}");
    // Nothing anywhere in the session held the key.
    let all = c.request("tools/call", json!({"name": "schema", "arguments": {}}));
    assert!(!all.to_string().contains(ENV_KEY));
}
