//! The whole demo loop on PostgreSQL (`lode demo --postgres URL`): the bakery loaded into a
//! schema of a real server, generation, validation, analysis, tuning, evaluation and the
//! reward run there, with about as many valid pairs as on SQLite (within 10%) and the same
//! evaluation accuracy; the PostgreSQL edition of the gold and eval sets answers every
//! question as the SQLite edition does on bakery.sqlite. Skips, saying so, when no PostgreSQL
//! server can be had.

use std::path::Path;
use std::process::{Command, Output};

use lode_core::project::Project;
use lode_core::sql::SqlDialect;
use lode_core::sql::compare::{Case, Profile, Verdict};
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

/// The demo's evaluation line, from its accuracy on: `0.0% (95% CI 0.0-20.4%, 0/15) execution
/// accuracy on 15 eval questions (lode profile)`.
fn evaluation(summary: &str) -> String {
    let line = summary
        .lines()
        .find(|l| l.starts_with("Evaluation:"))
        .unwrap_or_else(|| panic!("no Evaluation line in:\n{summary}"));
    let from = line
        .rfind(": ")
        .unwrap_or_else(|| panic!("no accuracy in {line}"));
    let to = line
        .find("; report")
        .unwrap_or_else(|| panic!("no report in {line}"));
    line[from + 2..to].to_string()
}

/// `sql` with each `ROUND(x, n)` replaced by `x`.
fn unrounded(sql: &str) -> String {
    let mut out = sql.to_string();
    while let Some(start) = out.find("ROUND(") {
        let open = start + "ROUND".len();
        let (mut depth, mut comma, mut close) = (0, None, None);
        for (i, c) in out[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(open + i);
                        break;
                    }
                }
                ',' if depth == 1 => comma = Some(open + i),
                _ => {}
            }
        }
        let (Some(comma), Some(close)) = (comma, close) else {
            panic!("no ROUND(x, n) in {sql}")
        };
        out = format!(
            "{}{}{}",
            &out[..start],
            &out[open + 1..comma],
            &out[close + 1..]
        );
    }
    out
}

/// Runs the SQLite edition's query on bakery.sqlite and the PostgreSQL edition's on the
/// server and judges them as lode's evaluation does (bags of rows, order over the ORDER BY
/// keys, numbers within its tolerance); panics when the PostgreSQL one fails.
fn judge(lite: &Project, pg: &Project, question: &str, lite_sql: &str, pg_sql: &str) -> Verdict {
    let profile = Profile::default();
    let golds: Vec<_> = profile
        .gold_queries(lite_sql, SqlDialect::Sqlite)
        .iter()
        .map(|q| lite.db.query(q))
        .collect();
    let on_pg = pg.db.query(&profile.pred_query(pg_sql));
    if let Err(e) = &on_pg {
        panic!("{question}\n{pg_sql}\nfails on PostgreSQL: {e}");
    }
    let gold_refs: Vec<_> = golds.iter().map(Result::as_ref).collect();
    let case = Case {
        gold_sql: lite_sql,
        pred_sql: pg_sql,
        question,
        dialect: SqlDialect::Sqlite,
    };
    profile.judge(&case, &gold_refs, on_pg.as_ref())
}

/// Every gold and eval pair of the PostgreSQL project runs on the server and returns what the
/// SQLite project's pair returns on bakery.sqlite, as lode's own comparison judges it; but
/// for the last digit of a `ROUND(x, n)` where SQLite's binary floating point and
/// PostgreSQL's exact `numeric` fall on either side of a tie (a sum of 7072.205 is
/// 7072.2049999… in floating point, so SQLite rounds it to 7072.2 where PostgreSQL gives
/// 7072.21): those pairs must agree without the ROUND. Returns how many pairs differed so.
fn same_answers_as_sqlite(lite: &Project, pg: &Project) -> usize {
    assert_eq!(pg.db.dialect_name(), "postgresql");
    assert_eq!(lite.db.dialect_name(), "sqlite");
    let (mut checked, mut ties) = (0, 0);
    for (set, lite_pairs, pg_pairs) in [
        ("gold", &lite.gold, &pg.gold),
        ("eval", &lite.eval, &pg.eval),
    ] {
        assert_eq!(lite_pairs.len(), pg_pairs.len(), "{set}");
        for (l, p) in lite_pairs.iter().zip(pg_pairs.iter()) {
            assert_eq!(l.question, p.question, "{set}");
            checked += 1;
            let verdict = judge(lite, pg, &l.question, &l.sql, &p.sql);
            if verdict.correct {
                continue;
            }
            let why = verdict.reason.map(|r| r.describe()).unwrap_or_default();
            let exact = l.sql.contains("ROUND(")
                && judge(
                    lite,
                    pg,
                    &l.question,
                    &unrounded(&l.sql),
                    &unrounded(&p.sql),
                )
                .correct;
            assert!(
                exact,
                "{set}: {}\nSQLite:     {}\nPostgreSQL: {}\n{why}",
                l.question, l.sql, p.sql
            );
            eprintln!("{set}: {}: {why}, the same without ROUND", l.question);
            ties += 1;
        }
    }
    assert_eq!(checked, 40);
    ties
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

    // The project's gold and eval sets are PostgreSQL's edition, and answer as SQLite's do.
    let gold = std::fs::read_to_string(dir.path().join("pg/gold.jsonl")).unwrap();
    assert!(!gold.contains("strftime"), "{gold}");
    assert!(pg_out.contains("Inputs: 16 glossary entries, 25 gold pairs, 15 eval pairs"));
    assert!(!pg_out.contains("gold queries fail"), "{pg_out}");
    let lite_project = Project::load(&dir.path().join("lite/config.yml")).unwrap();
    let pg_project = Project::load(&dir.path().join("pg/config.yml")).unwrap();
    let ties = same_answers_as_sqlite(&lite_project, &pg_project);
    eprintln!("40 pairs give the same answers on both, {ties} of them but for a rounding tie");

    let (a, b) = (valid_pairs(&lite), valid_pairs(&pg_out));
    let (ea, eb) = (evaluation(&lite), evaluation(&pg_out));
    eprintln!("valid pairs: SQLite {a}, PostgreSQL {b}; evaluation: SQLite {ea}, PostgreSQL {eb}");
    assert!(
        (b as f64 - a as f64).abs() <= 0.1 * a as f64,
        "SQLite {a} valid pairs, PostgreSQL {b}:\n{pg_out}"
    );
    // The same eval questions with the same answers, asked of a model tuned on each target's
    // own valid pairs (303-304 and 314 today, not all the same ones: the schema-driven part of
    // the offline generator sees PostgreSQL's column types), score the same.
    assert_eq!(ea, eb, "SQLite:\n{lite}\nPostgreSQL:\n{pg_out}");
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

    // The SQLite demo project pointed at the server later gets the PostgreSQL edition too.
    let moved = lode(
        dir.path(),
        &[
            "demo",
            "lite",
            "--no-run",
            "--postgres",
            server.url(),
            "--pg-schema",
            "lode_lite",
        ],
    );
    assert!(moved.status.success(), "{moved:?}");
    assert!(
        String::from_utf8_lossy(&moved.stderr).contains("in PostgreSQL's dialect"),
        "{moved:?}"
    );
    for file in ["glossary.jsonl", "gold.jsonl", "eval.jsonl"] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("lite").join(file)).unwrap(),
            std::fs::read_to_string(dir.path().join("pg").join(file)).unwrap(),
            "{file}"
        );
    }
}
