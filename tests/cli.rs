//! The `lode` binary end to end: demo, schema, sql, init, and how bad input is reported.

use std::path::Path;
use std::process::{Command, Output};

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .args(args)
        .output()
        .expect("run lode")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = lode(dir.path(), &["--help"]);
    let help = text(&out.stdout);
    let mut commands = vec!["demo", "init", "schema", "sql", "generate", "eval", "tune"];
    if cfg!(feature = "bench") {
        commands.push("bench");
    }
    for cmd in commands {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "{cmd} missing from:\n{help}"
        );
    }
}

#[test]
fn demo_writes_the_project_and_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = lode(dir.path(), &["demo", "proj"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Schema (6 tables)"), "{stdout}");
    assert!(stdout.contains("25 gold pairs, 15 eval pairs"), "{stdout}");
    assert!(!stdout.contains("FAILS"), "{stdout}");
    // Running it again reuses the project.
    let again = lode(dir.path(), &["demo", "proj"]);
    assert!(again.status.success());
    assert!(text(&again.stderr).contains("already in"));
    let store = lode_core::store::Store::open(&dir.path().join("proj/.lode/lode.db")).unwrap();
    assert_eq!(
        store
            .gold_set(lode_core::store::SetName::Eval)
            .unwrap()
            .len(),
        15
    );
    assert_eq!(
        store.latest_snapshot().unwrap().unwrap().id,
        1,
        "an unchanged project records no new snapshot"
    );
    drop(store);

    let proj = dir.path().join("proj");
    let out = lode(
        &proj,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT name FROM stores ORDER BY id LIMIT 2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "name\nRue Centrale\nCanal Street\n");

    let out = lode(&proj, &["sql", "DELETE FROM orders"]);
    assert_eq!(out.status.code(), Some(5), "refused as unsafe");
    assert!(text(&out.stderr).contains("DELETE from orders is not allowed"));

    let out = lode(
        &proj,
        &[
            "sql",
            "--timeout",
            "0.5",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        ],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("timed out"));

    let out = lode(
        &proj,
        &[
            "sql",
            "--analyze",
            "SELECT name FROM stores WHERE city LIKE 'P%'",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let analysis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(analysis["hardness"], "medium");
    assert_eq!(
        analysis["columns"],
        serde_json::json!(["stores.city", "stores.name"])
    );
    assert_eq!(analysis["concepts"]["like"], 1);

    std::fs::write(
        proj.join("queries.sql"),
        "SELECT count(*) FROM orders\nSELEC broken\n\nSELECT name FROM nowhere\n",
    )
    .unwrap();
    let out = lode(&proj, &["sql", "--analyze", "--file", "queries.sql"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["analysis"]["hardness"], "easy");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("syntax error"));
    assert_eq!(
        lines[2]["analysis"]["unknown"],
        serde_json::json!(["nowhere"])
    );
    assert!(text(&out.stderr).contains("1 queries could not be analyzed"));

    let out = lode(&proj, &["schema", "--format", "create"]);
    assert!(text(&out.stdout).starts_with("CREATE TABLE stores (\n  id INTEGER,"));
}

#[test]
fn malformed_config_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yml"),
        "database:\n  path: x.sqlite\nexecution:\n  max_rows: many\n",
    )
    .unwrap();
    let out = lode(dir.path(), &["schema"]);
    assert_eq!(out.status.code(), Some(2), "a configuration error");
    let err = text(&out.stderr);
    assert!(err.contains("config.yml:4:"), "{err}");
    assert!(err.contains("fix:"), "{err}");
}

#[test]
fn a_database_that_is_not_sqlite_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("data.sqlite"),
        "hello, I am text".repeat(100),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.yml"),
        "database:\n  path: data.sqlite\n",
    )
    .unwrap();
    let out = lode(dir.path(), &["schema"]);
    assert_eq!(out.status.code(), Some(3), "the database cannot be opened");
    let err = text(&out.stderr);
    assert!(
        err.contains("data.sqlite") && err.contains("SQLite"),
        "{err}"
    );
}

#[test]
fn init_writes_a_config_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        lode(dir.path(), &["demo", "d", "--no-run"])
            .status
            .success()
    );
    let d = dir.path().join("d");
    let out = lode(
        dir.path(),
        &[
            "init",
            "mine",
            "--db",
            d.join("bakery.sqlite").to_str().unwrap(),
            "--gold",
            d.join("gold.jsonl").to_str().unwrap(),
            "--glossary",
            d.join("glossary.jsonl").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("project ok: 6 tables, 16 glossary entries, 25 gold pairs"),
        "{}",
        text(&out.stdout)
    );
    // Without an eval set the user is warned what the score would mean.
    assert!(text(&out.stderr).contains("memorization"));
    // The inputs are recorded in the workspace store; the gold set doubles as the eval set.
    let store = lode_core::store::Store::open(&dir.path().join("mine/.lode/lode.db")).unwrap();
    assert_eq!(
        store
            .gold_set(lode_core::store::SetName::Gold)
            .unwrap()
            .len(),
        25
    );
    assert_eq!(
        store
            .gold_set(lode_core::store::SetName::Eval)
            .unwrap()
            .len(),
        25
    );
    assert!(store.latest_snapshot().unwrap().is_some());
    drop(store);
    let again = lode(dir.path(), &["init", "mine"]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("--force"));
}

#[test]
fn outside_a_project_the_error_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = lode(dir.path(), &["schema"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(text(&out.stderr).contains("lode init"));
}

#[test]
fn review_edit_with_accept_saves_the_edit_and_the_accept() {
    let dir = tempfile::tempdir().unwrap();
    assert!(lode(dir.path(), &["demo", "proj"]).status.success());
    let proj = dir.path().join("proj");
    let store = lode_core::store::Store::open(&proj.join(".lode/lode.db")).unwrap();
    let id = store
        .pairs(&lode_core::store::PairFilter::default())
        .unwrap()
        .into_iter()
        .find(|p| p.status != lode_core::store::PairStatus::Accepted)
        .expect("the demo generated pairs")
        .id;
    let sql = "SELECT name, region FROM stores";
    let out = lode(
        &proj,
        &["review", "edit", &id.to_string(), "--sql", sql, "--accept"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("saved and accepted"));
    let pair = store.pair(id).unwrap();
    assert_eq!(pair.sql, sql);
    assert_eq!(pair.status, lode_core::store::PairStatus::Accepted);
    let actions: Vec<_> = store
        .review_history(id)
        .unwrap()
        .iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(
        actions[actions.len() - 2..],
        [
            lode_core::store::ReviewAction::Edit,
            lode_core::store::ReviewAction::Accept
        ]
    );
}

#[test]
fn numbers_out_of_range_in_flags_are_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["sql", "--db", "x.sqlite", "--timeout", "1e300", "SELECT 1"][..],
        &["sql", "--db", "x.sqlite", "--timeout=-1", "SELECT 1"],
        &["sql", "--db", "x.sqlite", "--max-rows", "0", "SELECT 1"],
        &[
            "eval-files",
            "--gold",
            "g",
            "--pred",
            "p",
            "--db-dir",
            "d",
            "--timeout",
            "1e300",
        ],
        &[
            "eval-files",
            "--gold",
            "g",
            "--pred",
            "p",
            "--db-dir",
            "d",
            "--threads",
            "99999999",
        ],
        &["analyze", "--per-gap", "4294967296"],
        &["eval", "--few-shot", "1000000"],
    ] {
        let out = lode(dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("must be"), "{args:?}: {stderr}");
    }
}
