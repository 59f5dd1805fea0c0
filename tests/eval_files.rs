//! `lode eval-files` end to end on generated databases: verdicts and their file, hostile
//! predictions (refused or stopped, database bytes unchanged), and clear errors for bad files.

use std::path::Path;
use std::process::{Command, Output};

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run lode")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A database directory in the reference layout: `dbs/shop/shop.sqlite`.
fn fixture(dir: &Path) {
    let db_dir = dir.join("dbs/shop");
    std::fs::create_dir_all(&db_dir).unwrap();
    let conn = rusqlite::Connection::open(db_dir.join("shop.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL, kind TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO item SELECT i, 'item ' || i, i * 1.5, CASE i % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'c' END FROM n;",
    )
    .unwrap();
}

#[test]
fn hostile_predictions_are_wrong_with_a_reason_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let db = dir.path().join("dbs/shop/shop.sqlite");
    let before = std::fs::read(&db).unwrap();
    let gold = "SELECT count(*) FROM item\tshop\n";
    let hostile = [
        "DROP TABLE item",
        "DELETE FROM item",
        "UPDATE item SET price = 0",
        "INSERT INTO item(name) VALUES ('x')",
        "ATTACH DATABASE 'other.db' AS o",
        "PRAGMA writable_schema = 1",
        "SELECT count(*) FROM item; DROP TABLE item",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        "SELECT count(*) FROM item a, item b, item c, item d",
    ];
    std::fs::write(dir.path().join("gold.sql"), gold.repeat(hostile.len())).unwrap();
    std::fs::write(dir.path().join("pred.sql"), hostile.join("\n")).unwrap();
    for profile in ["lode", "spider_ts", "bird_ex", "defog"] {
        let out = lode(
            dir.path(),
            &[
                "eval-files",
                "--gold",
                "gold.sql",
                "--pred",
                "pred.sql",
                "--db-dir",
                "dbs",
                "--timeout",
                "1",
                "--profile",
                profile,
                "--keep-distinct",
                "--out",
                "v.jsonl",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let verdicts: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("v.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(verdicts.len(), hostile.len());
        for (v, sql) in verdicts.iter().zip(hostile) {
            assert_eq!(v["verdict"], false, "{profile}: {sql} judged right");
            let reason = v["reason"].as_str().unwrap();
            assert!(
                reason == "rejected" || reason == "timeout",
                "{profile}: {sql}: reason {reason}"
            );
        }
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "{profile} changed the database"
        );
    }
}

#[test]
fn verdicts_per_hardness_and_the_verdict_file() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    std::fs::write(
        dir.path().join("gold.sql"),
        "SELECT name FROM item WHERE kind = 'a' ORDER BY price DESC LIMIT 3\tshop\n\
         SELECT kind, count(*) FROM item GROUP BY kind\tshop\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pred.sql"),
        "SELECT name FROM item WHERE kind = 'a' ORDER BY price ASC LIMIT 3\n\
         SELECT count(*), kind FROM item GROUP BY kind ORDER BY kind DESC\n",
    )
    .unwrap();
    let out = lode(
        dir.path(),
        &[
            "eval-files",
            "--gold",
            "gold.sql",
            "--pred",
            "pred.sql",
            "--db-dir",
            "dbs",
            "--out",
            "v.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("EXECUTION ACCURACY (lode)"), "{stdout}");
    assert!(stdout.contains("0.500"), "{stdout}");
    let v: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("v.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[0]["verdict"], false);
    assert_eq!(v[0]["reason"], "values");
    assert_eq!(v[0]["hardness"], "hard");
    assert_eq!(v[1]["verdict"], true);
    assert_eq!(v[1]["index"], 1);
}

#[test]
fn short_prediction_file_and_unknown_database_are_named() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    std::fs::write(
        dir.path().join("gold.sql"),
        "SELECT 1\tshop\nSELECT 2\tshop\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("pred.sql"), "SELECT 1\n").unwrap();
    let out = lode(
        dir.path(),
        &[
            "eval-files",
            "--gold",
            "gold.sql",
            "--pred",
            "pred.sql",
            "--db-dir",
            "dbs",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a mistake in an input file is exit 2"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("pred.sql:1: pred.sql has 1 predictions but gold.sql has 2"),
        "{err}"
    );
    assert!(err.contains("gold line 2 has no prediction"), "{err}");

    std::fs::write(
        dir.path().join("gold.sql"),
        "SELECT 1\tshop\nSELECT 2\tnowhere\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("pred.sql"), "SELECT 1\nSELECT 2\n").unwrap();
    let out = lode(
        dir.path(),
        &[
            "eval-files",
            "--gold",
            "gold.sql",
            "--pred",
            "pred.sql",
            "--db-dir",
            "dbs",
        ],
    );
    let err = text(&out.stderr);
    assert!(err.contains("gold.sql:2: unknown db_id `nowhere`"), "{err}");
    assert!(err.contains("DIR/<db_id>/<db_id>.sqlite"), "{err}");

    let out = lode(dir.path(), &["eval-files", "--explain-profiles"]);
    assert!(text(&out.stdout).contains("## spider_ts"));
}

#[test]
fn r_ves_grades_correct_pairs_by_speed_and_wrong_ones_zero() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    // Two pairs judged correct and one wrong: R-VES = 100 × (√r1 + √r2 + 0) / 3, each reward
    // between 0.25 and 1.25, so the score lies in [33.3, 74.6].
    let gold = "SELECT name FROM item WHERE kind = 'a'\tshop\n".repeat(3);
    let pred = "SELECT name FROM item WHERE kind = 'a'\n\
                SELECT name FROM item WHERE kind = 'a' ORDER BY id\n\
                SELECT name FROM item WHERE kind = 'b'\n";
    std::fs::write(dir.path().join("gold.sql"), gold).unwrap();
    std::fs::write(dir.path().join("pred.sql"), pred).unwrap();
    let out = lode(
        dir.path(),
        &[
            "eval-files",
            "--gold",
            "gold.sql",
            "--pred",
            "pred.sql",
            "--db-dir",
            "dbs",
            "--profile",
            "bird_ex",
            "--ves",
            "5",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let score: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("R-VES (BIRD mini-dev reward, 5 timings per correct pair): "))
        .unwrap_or_else(|| panic!("no R-VES line: {stdout}"))
        .trim()
        .parse()
        .unwrap();
    assert!((33.3..=74.6).contains(&score), "{score}");
}

#[test]
fn a_prediction_right_by_accident_fails_on_a_neighbour_database() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let db = dir.path().join("dbs/shop/shop.sqlite");
    let before = std::fs::read(&db).unwrap();
    // The two dearest items are ids 299 and 300 here: naming them is right on this data
    // only; a filter with another threshold between the same prices is right everywhere.
    let gold = "SELECT name FROM item WHERE price > 447\tshop\n".repeat(3);
    let pred = "SELECT name FROM item WHERE id IN (299, 300)\n\
                SELECT name FROM item WHERE price > 447.5\n\
                SELECT name FROM item WHERE price > 447\n";
    std::fs::write(dir.path().join("gold.sql"), gold).unwrap();
    std::fs::write(dir.path().join("pred.sql"), pred).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "eval-files",
            "--gold",
            "gold.sql",
            "--pred",
            "pred.sql",
            "--db-dir",
            "dbs",
            "--out",
            "verdicts.jsonl",
        ];
        args.extend_from_slice(extra);
        let out = lode(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let verdicts: Vec<serde_json::Value> =
            std::fs::read_to_string(dir.path().join("verdicts.jsonl"))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        (text(&out.stdout), verdicts)
    };
    let (_, plain) = run(&[]);
    assert!(plain.iter().all(|v| v["verdict"] == true), "{plain:?}");
    let (stdout, checked) = run(&["--neighbours", "3"]);
    assert_eq!(checked[0]["verdict"], false, "{checked:?}");
    assert_eq!(checked[0]["reason"], "right_by_accident", "{checked:?}");
    assert!(
        checked[0]["detail"]
            .as_str()
            .unwrap()
            .contains("neighbour database"),
        "{checked:?}"
    );
    assert_eq!(checked[1]["verdict"], true, "{checked:?}");
    assert_eq!(checked[2]["verdict"], true, "{checked:?}");
    assert!(
        stdout.contains("1 predictions right on the original were wrong"),
        "{stdout}"
    );
    // The user's database is only read.
    assert_eq!(std::fs::read(&db).unwrap(), before);
}
