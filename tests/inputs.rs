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
            assert_eq!(out.status.code(), Some(2), "{args:?} on {empty:?}");
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
    assert_eq!(out.status.code(), Some(2));
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
    assert_eq!(out.status.code(), Some(2), "an input error");
    let err = text(&out.stderr);
    assert!(
        err.contains("empty.sqlite: the database has no tables"),
        "{err}"
    );
    assert!(err.contains("fix: point database.path"), "{err}");
    let out = lode(dir.path(), &["schema"]);
    assert_eq!(out.status.code(), Some(2), "an input error");
    let err = text(&out.stderr);
    assert!(
        err.contains("empty.sqlite: the database has no tables"),
        "{err}"
    );
    assert!(err.contains("fix: point database.path"), "{err}");
}

const BAD_GOLD: &str = "[\n  {\"question\": \"How many singers are there?\", \"query\": \"SELECT count(*) FROM singer\"},\n  {\"question\": \"Names?\", \"query\": \"SELECT nme FROM singer\"},\n  {\"question\": \"Old singers?\", \"query\": \"SELECT name FROM singer WHERE age > 1000\"},\n  {\"question\": \"Remove them\", \"query\": \"DELETE FROM singer\"}\n]\n";

#[test]
fn init_and_check_report_every_broken_gold_query_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let gold = write(dir.path(), "dev.json", BAD_GOLD);
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
    let g = gold.display().to_string();
    for expected in [
        format!("{g}:3: the SQL fails: no such column: nme"),
        format!("{g}:4: the SQL returns no rows"),
        format!("{g}:5: the SQL is not one read-only query"),
        "3 problems".to_string(),
        "`lode check`".to_string(),
    ] {
        assert!(
            stdout.contains(&expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    assert!(!stdout.contains(&format!("{g}:2:")), "{stdout}");
    assert!(!stdout.contains("lode schema"), "{stdout}");

    let p = dir.path().join("p");
    let out = lode(&p, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches(&g).count(), 3, "{stdout}");
    assert!(stdout.contains("checked 4 gold queries"), "{stdout}");

    // Fixed, the check passes; a separate eval set and the glossary are checked too.
    std::fs::write(&gold, GOOD_GOLD).unwrap();
    write(
        &p,
        "eval.jsonl",
        "{\"input\": \"Concerts in 2014?\", \"output\": \"SELECT id FROM concert WHERE year = 2014\"}\n{\"input\": \"Ages?\", \"output\": \"SELECT agee FROM singer\"}\n",
    );
    write(
        &p,
        "glossary.json",
        "{\n \"veteran\": \"a singer over 50\",\n \"VETERAN\": \"again\"\n}\n",
    );
    let config = std::fs::read_to_string(p.join("config.yml"))
        .unwrap()
        .replace("# eval_set: eval.jsonl", "eval_set: eval.jsonl")
        .replace("# glossary: glossary.jsonl", "glossary: glossary.json");
    std::fs::write(p.join("config.yml"), config).unwrap();
    let out = lode(&p, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("eval.jsonl:2: the SQL fails: no such column: agee"),
        "{stdout}"
    );
    assert!(
        stdout.contains("glossary.json:3: term `VETERAN` is defined again"),
        "{stdout}"
    );
    assert!(
        stdout.contains("checked 2 gold queries, 2 eval queries, 2 glossary entries"),
        "{stdout}"
    );
    assert!(stdout.contains("2 problems"), "{stdout}");
    // Printed once: as a problem, not again as a warning.
    assert!(
        !text(&out.stderr).contains("VETERAN"),
        "{}",
        text(&out.stderr)
    );

    write(
        &p,
        "eval.jsonl",
        "{\"input\": \"Concerts in 2014?\", \"output\": \"SELECT id FROM concert WHERE year = 2014\"}\n",
    );
    write(&p, "glossary.json", "{\"veteran\": \"a singer over 50\"}\n");
    let out = lode(&p, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("no problems"));
}

#[test]
fn each_cause_of_an_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "afile", "x");
    let out = lode(dir.path(), &["demo", "afile/sub"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: cannot write"), "{err}");
    assert_eq!(err.matches("(os error").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A reader that goes away (`lode … | head -1`) ends lode quietly: no panic, no exit 101.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_lode_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), GOOD_GOLD, None);
    let run = |args: &[&str], close_stdout: bool| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lode"))
            .current_dir(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close one end before lode writes to it.
        if close_stdout {
            drop(child.stdout.take());
        } else {
            drop(child.stderr.take());
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{args:?}: {:?} {}",
            out.status,
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{}",
            text(&out.stderr)
        );
    };
    run(&["schema"], true);
    run(&["review", "list"], true);
    run(&["check"], true);
    run(
        &[
            "sql",
            "--format",
            "csv",
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000) SELECT x FROM n",
        ],
        true,
    );
    // The error goes to a closed stderr.
    run(&["sql", "SELECT nope FROM nowhere"], false);
}

#[test]
fn csv_output_says_on_stderr_when_the_row_cap_cut_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let db = db.to_str().unwrap();
    let sql = "SELECT name FROM singer ORDER BY id";
    let out = lode(
        dir.path(),
        &["sql", "--db", db, "--format", "csv", "--max-rows", "2", sql],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "name\nJoe\nRose\n");
    let err = text(&out.stderr);
    assert!(err.contains("only the first 2 rows"), "{err}");
    assert!(err.contains("--max-rows"), "{err}");
    // Nothing cut, nothing said.
    let out = lode(dir.path(), &["sql", "--db", db, "--format", "csv", sql]);
    assert_eq!(text(&out.stdout), "name\nJoe\nRose\nJohn\n");
    assert_eq!(text(&out.stderr), "");
    // JSON carries it in the result.
    let out = lode(
        dir.path(),
        &[
            "sql",
            "--db",
            db,
            "--format",
            "json",
            "--max-rows",
            "2",
            sql,
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["truncated"], true);
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
}
