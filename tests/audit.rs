//! The gold-set audit: each planted defect is found with its kind, a well-formed gold set
//! gives no finding, and `lode audit` exits 1 on findings and 0 when clean. Over Spider's dev
//! set (when `../shared/data/spider_dev11` is there) it prints what it finds, by kind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use lode_core::pipeline::audit::{AuditSet, Finding, FindingKind, audit_pairs};
use lode_core::project::GoldPair;
use lode_core::sql::{Database, ExecLimits};

/// A shop: 6 items over 3 colours, prices with one tie at the top, and every item in stock
/// in France (so a filter on France changes nothing).
fn shop(dir: &Path) -> Database {
    let path = dir.join("shop.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, colour TEXT,
                             price REAL NOT NULL, country TEXT NOT NULL, note TEXT);
         INSERT INTO items (name, colour, price, country) VALUES
           ('anvil', 'red', 30.0, 'France'),
           ('bell', 'blue', 30.0, 'France'),
           ('cup', 'green', 12.5, 'France'),
           ('drum', 'red', 8.0, 'France'),
           ('easel', 'blue', 20.0, 'France'),
           ('flute', 'green', 5.0, 'France');
         CREATE TABLE sales (item_id INTEGER REFERENCES items(id), qty INTEGER, city TEXT);
         INSERT INTO sales VALUES (1, 2, 'Paris'), (2, 1, 'Lyon'), (3, 5, 'Paris'),
                                  (1, 1, 'Nice'), (5, 3, 'Lyon');",
    )
    .unwrap();
    drop(conn);
    Database::open(&path, ExecLimits::default()).unwrap()
}

fn pair(question: &str, sql: &str) -> GoldPair {
    GoldPair {
        question: question.into(),
        sql: sql.into(),
        db_id: None,
        line: Some(7),
    }
}

fn kinds_of(db: &Database, question: &str, sql: &str) -> Vec<FindingKind> {
    audit_pairs(db, &[pair(question, sql)], AuditSet::Gold, None, 2)
        .into_iter()
        .map(|f| f.kind)
        .collect()
}

#[test]
fn a_failing_gold_query_is_found_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    let found = audit_pairs(
        &db,
        &[pair(
            "What is the weight of each item?",
            "SELECT weight FROM items",
        )],
        AuditSet::Eval,
        Some(Path::new("eval.jsonl")),
        1,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.kind, FindingKind::Fails);
    assert!(f.reason.contains("weight"), "{}", f.reason);
    assert_eq!((f.set, f.position, f.line), (AuditSet::Eval, 1, Some(7)));
    assert_eq!(f.location(), "eval.jsonl:7");
}

#[test]
fn an_empty_gold_query_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    assert_eq!(
        kinds_of(
            &db,
            "Which items are purple?",
            "SELECT name FROM items WHERE colour = 'purple'"
        ),
        [FindingKind::Empty]
    );
}

#[test]
fn only_nulls_and_a_lone_count_of_zero_are_all_null() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    assert_eq!(
        kinds_of(&db, "What are the notes?", "SELECT note FROM items"),
        [FindingKind::AllNull]
    );
    assert_eq!(
        kinds_of(
            &db,
            "How many items are purple?",
            "SELECT COUNT(*) FROM items WHERE colour = 'purple'"
        ),
        [FindingKind::AllNull]
    );
}

#[test]
fn limit_without_order_by_is_order_dependent() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    let found = audit_pairs(
        &db,
        &[pair("Name three items.", "SELECT name FROM items LIMIT 3")],
        AuditSet::Gold,
        None,
        1,
    );
    assert_eq!(
        found.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FindingKind::OrderDependent]
    );
    assert!(found[0].fix.contains("ORDER BY"), "{}", found[0].fix);
}

#[test]
fn a_limit_through_a_tie_is_found_and_a_limit_past_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    // anvil and bell both cost 30: LIMIT 1 keeps either.
    let found = audit_pairs(
        &db,
        &[pair(
            "Which item is the most expensive?",
            "SELECT name FROM items ORDER BY price DESC LIMIT 1",
        )],
        AuditSet::Gold,
        None,
        1,
    );
    assert_eq!(
        found.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FindingKind::LimitTies]
    );
    assert!(found[0].reason.contains("30.0"), "{}", found[0].reason);
    assert!(found[0].fix.contains("tie-breaker"), "{}", found[0].fix);
    // LIMIT 2 keeps both tied rows; a tie-breaker settles LIMIT 1.
    assert!(
        kinds_of(
            &db,
            "Which two items are the most expensive?",
            "SELECT name FROM items ORDER BY price DESC LIMIT 2"
        )
        .is_empty()
    );
    assert!(
        kinds_of(
            &db,
            "Which item is the most expensive?",
            "SELECT name FROM items ORDER BY price DESC, name LIMIT 1"
        )
        .is_empty()
    );
    // A key that is not in the output is looked at too (appended as a column).
    assert_eq!(
        kinds_of(
            &db,
            "Which colour has the most items?",
            "SELECT colour FROM items GROUP BY colour ORDER BY COUNT(*) DESC LIMIT 1"
        ),
        [FindingKind::LimitTies]
    );
}

#[test]
fn random_and_the_clock_are_nondeterministic() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    for sql in [
        "SELECT name FROM items ORDER BY random()",
        "SELECT name FROM items WHERE date('now') > '2000-01-01'",
        "SELECT name, CURRENT_TIMESTAMP FROM items",
    ] {
        assert_eq!(
            kinds_of(&db, "Which items are there?", sql),
            [FindingKind::Nondeterministic],
            "{sql}"
        );
    }
}

#[test]
fn a_filter_on_a_named_value_that_changes_nothing_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    let found = audit_pairs(
        &db,
        &[pair(
            "Which red items are made in France?",
            "SELECT name FROM items WHERE colour = 'red' AND country = 'France'",
        )],
        AuditSet::Gold,
        None,
        1,
    );
    // Only the France filter: the red one removes rows.
    assert_eq!(
        found.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FindingKind::FilterNotNeeded]
    );
    assert!(found[0].fix.contains("'France'"), "{}", found[0].fix);
    // A value the question does not name is not the question's filter.
    assert!(
        kinds_of(
            &db,
            "Which red items are there?",
            "SELECT name FROM items WHERE colour = 'red' AND country = 'France'"
        )
        .is_empty()
    );
}

#[test]
fn a_well_formed_gold_set_has_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop(dir.path());
    let pairs = [
        pair("How many items are there?", "SELECT COUNT(*) FROM items"),
        pair(
            "Which items are red?",
            "SELECT name FROM items WHERE colour = 'red'",
        ),
        pair(
            "Which items cost more than 10?",
            "SELECT name FROM items WHERE price > 10",
        ),
        pair(
            "Which blue or green items cost under 15?",
            "SELECT name FROM items WHERE colour IN ('blue', 'green') AND price < 15",
        ),
        pair("What is the average price?", "SELECT AVG(price) FROM items"),
        pair(
            "Which three items are the cheapest?",
            "SELECT name, price FROM items ORDER BY price LIMIT 3",
        ),
        pair(
            "How many items of each colour are there?",
            "SELECT colour, COUNT(*) FROM items GROUP BY colour",
        ),
        pair(
            "How many items were sold in Paris?",
            "SELECT SUM(qty) FROM sales WHERE city = 'Paris'",
        ),
        pair(
            "Which item sold the most units?",
            "SELECT i.name FROM items i JOIN sales s ON s.item_id = i.id \
             GROUP BY i.id ORDER BY SUM(s.qty) DESC LIMIT 1",
        ),
        pair(
            "What is the most expensive price?",
            "SELECT price FROM items ORDER BY price DESC LIMIT 1",
        ),
        pair(
            "List the items by name.",
            "SELECT name FROM items ORDER BY name",
        ),
    ];
    let found: Vec<Finding> = audit_pairs(&db, &pairs, AuditSet::Gold, None, 2);
    assert!(found.is_empty(), "{found:#?}");
}

fn lode(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .args(["-C", dir.to_str().unwrap()])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A project over the shop database with `gold` as its gold set.
fn project(dir: &Path, gold: &[(&str, &str)]) {
    shop(dir);
    std::fs::write(
        dir.join("gold.jsonl"),
        gold.iter()
            .map(|(q, s)| serde_json::json!({"question": q, "sql": s}).to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.yml"),
        "database:\n  path: shop.sqlite\npaths:\n  gold_test_set: gold.jsonl\n",
    )
    .unwrap();
}

#[test]
fn lode_audit_exits_1_naming_file_and_line_and_0_when_clean() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &[
            ("How many items are there?", "SELECT COUNT(*) FROM items"),
            ("Name three items.", "SELECT name FROM items LIMIT 3"),
        ],
    );
    let out = lode(dir.path(), &["audit"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("order_dependent"), "{stdout}");
    assert!(stdout.contains("gold.jsonl:2"), "{stdout}");
    assert!(stdout.contains("Name three items."), "{stdout}");
    let json = lode(dir.path(), &["audit", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["command"], "audit");
    assert_eq!(v["findings"][0]["kind"], "order_dependent");
    assert_eq!(v["findings"][0]["line"], 2);
    let clean = tempfile::tempdir().unwrap();
    project(
        clean.path(),
        &[("How many items are there?", "SELECT COUNT(*) FROM items")],
    );
    let out = lode(clean.path(), &["audit"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Spider's dev set over its 11 databases: counts by kind, and a sample of each, printed
/// (`cargo test --test audit spider -- --nocapture`).
#[test]
fn spider_dev_audit_counts_by_kind() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/spider_dev11");
    if !root.join("dev.json").exists() {
        println!("skipped: no {}", root.display());
        return;
    }
    let pairs = lode_core::project::load_gold_set(&root.join("dev.json"))
        .unwrap()
        .items;
    let mut by_db: BTreeMap<String, Vec<GoldPair>> = BTreeMap::new();
    for p in pairs {
        by_db
            .entry(p.db_id.clone().unwrap_or_default())
            .or_default()
            .push(p);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut samples: BTreeMap<&str, Vec<Finding>> = BTreeMap::new();
    let mut total = 0;
    for (db_id, pairs) in &by_db {
        let path = root
            .join("database")
            .join(db_id)
            .join(format!("{db_id}.sqlite"));
        let Ok(db) = Database::open(&path, ExecLimits::default()) else {
            println!("skipped {db_id}: no {}", path.display());
            continue;
        };
        total += pairs.len();
        for f in audit_pairs(&db, pairs, AuditSet::Eval, None, 2) {
            *counts.entry(f.kind.name()).or_default() += 1;
            samples.entry(f.kind.name()).or_default().push(f);
        }
    }
    println!("spider dev: {total} pairs audited");
    for (kind, n) in &counts {
        println!("{kind}: {n}");
    }
    for (kind, fs) in &samples {
        for f in fs.iter().take(3) {
            println!(
                "--- {kind}: {}\n    {}\n    {}",
                f.question, f.sql, f.reason
            );
        }
    }
    assert!(total > 0);
    // Spider's gold is known to cut through ties with LIMIT.
    assert!(
        counts.get("limit_ties").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
}

#[test]
fn eval_runs_the_audit_and_lists_its_findings_beside_the_score() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &[
            ("How many items are there?", "SELECT COUNT(*) FROM items"),
            ("Name three items.", "SELECT name FROM items LIMIT 3"),
        ],
    );
    std::fs::write(
        dir.path().join("p.sql"),
        "SELECT COUNT(*) FROM items\nSELECT name FROM items LIMIT 3\n",
    )
    .unwrap();
    let out = lode(dir.path(), &["eval", "--pred", "p.sql"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("gold audit: 1 finding (see report)"),
        "{stdout}"
    );
    let reports = dir.path().join("reports/eval-1");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["audit"][0]["kind"], "order_dependent");
    assert_eq!(json["audit"][0]["position"], 2);
    assert_eq!(json["summary"]["total"], 2, "the eval still runs");
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(md.contains("## Gold audit"), "{md}");
    assert!(md.contains("gold.jsonl:2"), "{md}");
}
