//! The whole demo loop on PostgreSQL (`lode demo --postgres URL`): the bakery loaded into a
//! schema of a real server, generation, validation, analysis, tuning, evaluation and the
//! reward run there, with about as many valid pairs as on SQLite (within 10%). Skips, saying
//! so, when no PostgreSQL server can be had.

use std::path::Path;
use std::process::{Command, Output};

use lode_testkit::pg;

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .args(args)
        .output()
        .expect("run lode")
}

/// The valid pairs the demo's generation line reports.
fn valid_pairs(summary: &str) -> usize {
    let line = summary
        .lines()
        .find(|l| l.starts_with("Generation:"))
        .unwrap_or_else(|| panic!("no Generation line in:\n{summary}"));
    let before = line
        .split(" valid pairs")
        .next()
        .unwrap_or_else(|| panic!("no valid pair count in {line}"));
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no valid pair count in {line}"))
}

#[test]
fn the_demo_loop_runs_on_postgresql_with_as_many_valid_pairs_as_on_sqlite() {
    let Some(server) = pg::server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let on_sqlite = lode(dir.path(), &["demo", "lite", "--no-tui"]);
    assert!(on_sqlite.status.success(), "{:?}", on_sqlite);
    let lite = String::from_utf8_lossy(&on_sqlite.stdout).into_owned();

    let on_pg = lode(
        dir.path(),
        &["demo", "pg", "--no-tui", "--postgres", server.url()],
    );
    let pg_out = String::from_utf8_lossy(&on_pg.stdout).into_owned();
    assert!(
        on_pg.status.success(),
        "{pg_out}\n{}",
        String::from_utf8_lossy(&on_pg.stderr)
    );
    // The project points at the server, not at the SQLite file beside it.
    let config = std::fs::read_to_string(dir.path().join("pg/config.yml")).unwrap();
    assert!(config.contains("url: 'postgres://"), "{config}");
    assert!(config.contains("search_path%3Dlode_demo"), "{config}");
    let orders: u64 = server
        .psql("SELECT count(*) FROM lode_demo.orders")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(orders > 0, "the bakery's orders are in the server");

    let (a, b) = (valid_pairs(&lite), valid_pairs(&pg_out));
    eprintln!("valid pairs: SQLite {a}, PostgreSQL {b}");
    assert!(
        (b as f64 - a as f64).abs() <= 0.1 * a as f64,
        "SQLite {a} valid pairs, PostgreSQL {b}:\n{pg_out}"
    );
    for stage in [
        "Coverage:",
        "Tuning",
        "Evaluation:",
        "Reward (lode reward):",
    ] {
        assert!(pg_out.contains(stage), "no {stage} line:\n{pg_out}");
    }
    assert!(
        pg_out.contains("matches agree with the evaluation"),
        "{pg_out}"
    );

    // A second run reuses the loaded schema; another demo into it is refused without
    // --force, and a schema lode did not make is never replaced.
    let again = lode(
        dir.path(),
        &[
            "demo",
            "pg",
            "--no-tui",
            "--no-run",
            "--postgres",
            server.url(),
        ],
    );
    assert!(again.status.success(), "{again:?}");
    let other = lode(
        dir.path(),
        &["demo", "pg2", "--no-run", "--postgres", server.url()],
    );
    assert!(!other.status.success());
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("--force"),
        "{other:?}"
    );
    server.psql("CREATE SCHEMA theirs").unwrap();
    let theirs = lode(
        dir.path(),
        &[
            "demo",
            "pg3",
            "--no-run",
            "--force",
            "--postgres",
            server.url(),
            "--pg-schema",
            "theirs",
        ],
    );
    assert!(!theirs.status.success());
    assert!(
        String::from_utf8_lossy(&theirs.stderr).contains("not lode's"),
        "{theirs:?}"
    );
}
