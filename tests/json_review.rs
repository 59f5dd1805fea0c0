//! `lode review --json`: the documents of list, show, accept, reject, edit and undo (pinned as
//! snapshots with times, durations and paths masked), their exit codes, and the error
//! documents of bad input. Each test has its own demo project (`lode demo --no-run`, no
//! generation) with four pairs of known content, so ids and texts are stable.

use std::path::{Path, PathBuf};
use std::process::Command;

use lode_core::store::{NewPair, NewRun, NewValidation, PairNotes, PairStatus, Store};
use serde_json::Value;

/// A project with one generation run of four pairs: 1 and 2 valid (validated once), 3
/// suspect, 4 invalid (its one attempt failed).
fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir.path())
        .args(["demo", "proj", "--no-run"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proj = dir.path().join("proj");
    let store = Store::open(&proj.join(".lode/lode.db")).unwrap();
    let run = store.create_run(&NewRun::default()).unwrap();
    let pair = |key: &str, question: &str, sql: &str, status| NewPair {
        origin_key: key.into(),
        generator: "pattern".into(),
        question: question.into(),
        sql: sql.into(),
        status: Some(status),
        ..Default::default()
    };
    let ok = |sql: &str, preview: &str| NewValidation {
        attempt: 1,
        sql: sql.into(),
        ok: true,
        row_count: Some(1),
        elapsed_ms: Some(0.25),
        flags_json: Some("[]".into()),
        result_preview_json: Some(preview.into()),
        ..Default::default()
    };
    let pairs = [
        (
            pair(
                "a",
                "How many stores are there?",
                "SELECT count(*) FROM stores",
                PairStatus::Valid,
            ),
            vec![ok(
                "SELECT count(*) FROM stores",
                r#"{"columns":["count(*)"],"rows":[[6]],"total_rows":1}"#,
            )],
        ),
        (
            pair(
                "b",
                "Name every store.",
                "SELECT name FROM stores",
                PairStatus::Valid,
            ),
            vec![ok(
                "SELECT name FROM stores",
                r#"{"columns":["name"],"rows":[["Rue Centrale"]],"total_rows":6}"#,
            )],
        ),
        (
            NewPair {
                notes: PairNotes {
                    disagreement: vec!["question says newest, SQL orders ascending".into()],
                    ..Default::default()
                },
                ..pair(
                    "c",
                    "Which store opened most recently?",
                    "SELECT name FROM stores ORDER BY opened_on ASC LIMIT 1",
                    PairStatus::Suspect,
                )
            },
            vec![],
        ),
        (
            pair(
                "d",
                "List the orders.",
                "SELECT nope FROM orders",
                PairStatus::Invalid,
            ),
            vec![NewValidation {
                attempt: 1,
                sql: "SELECT nope FROM orders".into(),
                ok: false,
                error_kind: Some("no_such_column".into()),
                error: Some("no such column: nope".into()),
                ..Default::default()
            }],
        ),
    ];
    for (p, validations) in pairs {
        store
            .insert_pair_with_validations(run, &p, &validations)
            .unwrap();
    }
    (dir, proj)
}

/// `lode --json <args>` in `dir`: (exit code, the one document on stdout, stderr).
fn lode_json(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("{args:?}: stdout is not one JSON document ({e}):\n{stdout}\n{stderr}")
    });
    assert_eq!(doc["version"], 1, "{doc}");
    (out.status.code().unwrap(), doc, stderr)
}

/// Runs a review verb with `--json`, checks the command and exit code, and returns the
/// document masked for a snapshot.
fn review(dir: &Path, args: &[&str], code: i32) -> String {
    let mut full = vec!["review"];
    full.extend_from_slice(args);
    let (got, doc, stderr) = lode_json(dir, &full);
    assert_eq!(got, code, "{full:?}: {doc}\n{stderr}");
    assert_eq!(doc["command"], format!("review {}", args[0]), "{doc}");
    let mut doc = doc;
    mask(&mut doc, &dir.display().to_string());
    serde_json::to_string_pretty(&doc).unwrap()
}

/// Masks what changes from run to run: times, durations, paths.
fn mask(v: &mut Value, dir: &str) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if v.is_null() {
                    continue;
                }
                if k.ends_with("_at") {
                    *v = "<time>".into();
                } else if k.ends_with("_ms") || k == "elapsed" {
                    *v = "<ms>".into();
                } else if k.ends_with("path") || k == "file" {
                    *v = "<path>".into();
                } else {
                    mask(v, dir);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, dir)),
        Value::String(s) if s.contains(dir) => *s = s.replace(dir, "<dir>"),
        _ => {}
    }
}

/// An error document: kind and exit code as documented.
fn error(dir: &Path, args: &[&str], kind: &str, code: i32) -> Value {
    let mut full = vec!["review"];
    full.extend_from_slice(args);
    let (got, doc, stderr) = lode_json(dir, &full);
    assert_eq!(got, code, "{full:?}: {doc}");
    assert_eq!(doc["command"], format!("review {}", args[0]), "{doc}");
    let e = &doc["error"];
    assert_eq!(e["kind"], kind, "{full:?}: {doc}");
    assert_eq!(e["exit_code"], code, "{doc}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    assert!(
        e.get("hint").is_some() && e.get("location").is_some(),
        "{doc}"
    );
    assert!(
        stderr.contains("error:"),
        "the text stays on stderr: {stderr}"
    );
    doc
}

#[test]
fn list_and_show() {
    let (_tmp, dir) = project();
    insta::assert_snapshot!("review_list", review(&dir, &["list"], 0));
    insta::assert_snapshot!(
        "review_list_page",
        review(
            &dir,
            &["list", "--status", "valid", "--limit", "1", "--offset", "1"],
            0
        )
    );
    insta::assert_snapshot!("review_show", review(&dir, &["show", "1"], 0));
    insta::assert_snapshot!("review_show_failed", review(&dir, &["show", "4"], 0));
}

#[test]
fn decisions_and_undo() {
    let (_tmp, dir) = project();
    insta::assert_snapshot!(
        "review_accept",
        review(&dir, &["accept", "1", "--reason", "counted by hand"], 0)
    );
    insta::assert_snapshot!(
        "review_reject",
        review(&dir, &["reject", "2", "--reason", "too vague"], 0)
    );
    // Edits: a question alone validates the pair's SQL as it is; SQL that does not run is
    // not saved (exit 1, `saved: false`); with --accept both are saved.
    insta::assert_snapshot!(
        "review_edit_question",
        review(
            &dir,
            &[
                "edit",
                "1",
                "--question",
                "How many stores does the chain have?"
            ],
            0
        )
    );
    insta::assert_snapshot!(
        "review_edit_refused",
        review(&dir, &["edit", "2", "--sql", "SELECT nope FROM stores"], 1)
    );
    insta::assert_snapshot!(
        "review_edit_accept",
        review(
            &dir,
            &[
                "edit",
                "2",
                "--sql",
                "SELECT name, region FROM stores ORDER BY name",
                "--accept"
            ],
            0
        )
    );
    insta::assert_snapshot!("review_undo", review(&dir, &["undo", "2"], 0));
    insta::assert_snapshot!("review_undo_nothing", review(&dir, &["undo", "3"], 0));
    // The history says who decided: the command line.
    insta::assert_snapshot!("review_show_history", review(&dir, &["show", "2"], 0));
    // --all-valid leaves the suspect pair out and says so.
    insta::assert_snapshot!(
        "review_accept_all_valid",
        review(&dir, &["accept", "--all-valid"], 0)
    );

    let store = Store::open(&dir.join(".lode/lode.db")).unwrap();
    for (id, status) in [
        (1, PairStatus::Accepted),
        (2, PairStatus::Accepted),
        (3, PairStatus::Suspect),
        (4, PairStatus::Invalid),
    ] {
        assert_eq!(store.pair(id).unwrap().status, status, "pair {id}");
    }
    let history = store.review_history(1).unwrap();
    assert!(
        history
            .iter()
            .all(|r| r.reviewer == Some(lode_core::store::Reviewer::Cli))
    );
}

#[test]
fn text_output_is_unchanged_by_the_documents() {
    let (_tmp, dir) = project();
    let text = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lode"))
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let (code, list) = text(&["review", "list"]);
    assert_eq!(code, 0);
    assert!(
        list.starts_with("    id  status     generator    question"),
        "{list}"
    );
    assert!(
        list.ends_with("run 1: invalid 1, suspect 1, valid 2\n"),
        "{list}"
    );
    assert_eq!(
        text(&["review", "accept", "1"]),
        (0, "accepted 1 pairs\n".into())
    );
    let (_, shown) = text(&["review", "show", "1"]);
    assert!(shown.contains(" accept by cli valid → accepted"), "{shown}");
    assert_eq!(
        text(&["review", "undo", "1"]),
        (0, "pair 1 is back to valid (undo of review 1)\n".into())
    );
    let (code, out) = text(&["review", "edit", "2", "--sql", "SELECT nope FROM stores"]);
    assert_eq!((code, out.as_str()), (1, ""), "the refusal is on stderr");
}

#[test]
fn bad_input_is_an_error_document() {
    let (_tmp, dir) = project();
    error(&dir, &["show", "99"], "not_found", 1);
    error(&dir, &["undo", "99"], "not_found", 1);
    error(&dir, &["list", "--run", "9"], "not_found", 1);
    let doc = error(&dir, &["accept"], "usage", 2);
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--all-valid"),
        "{doc}"
    );
    error(&dir, &["reject"], "usage", 2);
    error(&dir, &["edit", "1"], "usage", 2);
    let doc = error(&dir, &["list", "--status", "approved"], "usage", 2);
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("accepted"),
        "{doc}"
    );
    // One unknown id among good ones decides nothing.
    error(&dir, &["accept", "1", "99"], "not_found", 1);
    let store = Store::open(&dir.join(".lode/lode.db")).unwrap();
    assert!(store.review_history(1).unwrap().is_empty());
    assert_eq!(store.pair(1).unwrap().status, PairStatus::Valid);
    // clap's own usage errors are documents too.
    error(&dir, &["show", "seven"], "usage", 2);
}
