//! Bad input gets a clear error naming the file, the line and the fix: never a panic, never
//! silence (issue 14 §3).

use std::path::{Path, PathBuf};
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

/// A small database: singers and concerts.
fn database(dir: &Path) -> PathBuf {
    let path = dir.join("music.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
         INSERT INTO singer VALUES (1, 'Joe', 'France', 52), (2, 'Rose', 'Netherlands', 41),
                                   (3, 'John', 'France', 29);
         CREATE TABLE concert (id INTEGER PRIMARY KEY, singer_id INTEGER REFERENCES singer(id), year INTEGER);
         INSERT INTO concert VALUES (1, 1, 2014), (2, 2, 2015);",
    )
    .unwrap();
    path
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

const GOOD_GOLD: &str = "{\"input\": \"How many singers are there?\", \"output\": \"SELECT count(*) FROM singer\"}\n\
{\"input\": \"Which singers are from France?\", \"output\": \"SELECT name FROM singer WHERE country = 'France'\"}\n";

#[test]
fn init_without_a_glossary_writes_a_project_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let gold = write(dir.path(), "gold.jsonl", GOOD_GOLD);
    let out = lode(
        dir.path(),
        &[
            "init",
            "p",
            "--db",
            db.to_str().unwrap(),
            "--gold",
            gold.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("project ok: 2 tables, 0 glossary entries"),
        "{stdout}"
    );
    let config = std::fs::read_to_string(dir.path().join("p/config.yml")).unwrap();
    assert!(
        config.contains("# glossary: glossary.jsonl"),
        "the glossary key stays commented out:\n{config}"
    );
    // Every later command loads the project.
    let out = lode(&dir.path().join("p"), &["review", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A project directory over `database(dir)` with the given gold (and eval) text.
fn project(dir: &Path, gold: &str, eval: Option<&str>) -> PathBuf {
    let db = database(dir);
    write(dir, "gold.jsonl", gold);
    let mut config = format!(
        "database:\n  path: {}\npaths:\n  gold_test_set: gold.jsonl\n",
        db.file_name().unwrap().to_str().unwrap()
    );
    if let Some(eval) = eval {
        write(dir, "eval.jsonl", eval);
        config.push_str("  eval_set: eval.jsonl\n");
    }
    write(dir, "config.yml", &config)
}

#[test]
fn an_empty_gold_or_eval_set_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), GOOD_GOLD, None);
    let out = lode(dir.path(), &["review", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The gold set is emptied after a first load: no run reuses the old one.
    for empty in ["[]", "[\n]\n", "# nothing yet\n"] {
        write(dir.path(), "gold.jsonl", empty);
        for args in [&["review", "list"][..], &["generate", "--profile", "rules"]] {
            let out = lode(dir.path(), args);
            assert_eq!(out.status.code(), Some(1), "{args:?} on {empty:?}");
            let err = text(&out.stderr);
            assert!(
                err.contains("gold.jsonl: the question/SQL set has no pairs"),
                "{err}"
            );
            assert!(err.contains("fix: add at least one pair"), "{err}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), GOOD_GOLD, Some("[]"));
    let out = lode(dir.path(), &["eval", "--profile", "rules"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("eval.jsonl: the question/SQL set has no pairs"),
        "{err}"
    );
}

#[test]
fn a_database_without_tables_is_an_error_at_load() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), GOOD_GOLD, None);
    let empty = dir.path().join("empty.sqlite");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    write(
        dir.path(),
        "config.yml",
        "database:\n  path: empty.sqlite\npaths:\n  gold_test_set: gold.jsonl\n",
    );
    let out = lode(dir.path(), &["review", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("empty.sqlite: the database has no tables"),
        "{err}"
    );
    assert!(err.contains("fix: point database.path"), "{err}");
}
