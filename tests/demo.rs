//! The generated demo project: reproducible, complete, and every gold and eval query answers.

use lode_core::project::demo::{DemoError, DemoOptions, write_demo};
use lode_core::project::{Project, inputs::normalize_question, load_gold_set};
use lode_core::sql::Value;

#[test]
fn two_generations_are_byte_identical() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = write_demo(a.path(), &DemoOptions::default()).unwrap();
    write_demo(b.path(), &DemoOptions::default()).unwrap();
    for file in &sa.files {
        let name = file.file_name().unwrap();
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        assert!(
            x == y,
            "{} differs between generations",
            name.to_string_lossy()
        );
    }
    // Another seed gives other data.
    let c = tempfile::tempdir().unwrap();
    write_demo(
        c.path(),
        &DemoOptions {
            seed: 1,
            ..DemoOptions::default()
        },
    )
    .unwrap();
    assert_ne!(
        std::fs::read(a.path().join("bakery.sqlite")).unwrap(),
        std::fs::read(c.path().join("bakery.sqlite")).unwrap()
    );
}

#[test]
fn every_gold_and_eval_query_returns_rows() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_demo(dir.path(), &DemoOptions::default()).unwrap();
    assert!((20..=35).contains(&summary.gold_pairs));
    assert!(summary.eval_pairs >= 12);
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    assert!(!project.eval_is_gold);
    assert_eq!(project.glossary.len(), summary.glossary_entries);
    for pair in project.gold.iter().chain(&project.eval) {
        let r = project
            .db
            .query(&pair.sql)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", pair.question, pair.sql));
        assert!(!r.rows.is_empty(), "no rows: {}", pair.question);
        let all_null = r.rows.iter().all(|row| row.iter().all(Value::is_null));
        assert!(!all_null, "only NULLs: {}", pair.question);
        if r.rows.len() == 1 && r.rows[0].len() == 1 {
            assert_ne!(
                r.rows[0][0],
                Value::Integer(0),
                "a zero count: {}",
                pair.question
            );
        }
    }
}

#[test]
fn eval_set_shares_no_question_or_sql_with_gold() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let gold = load_gold_set(&dir.path().join("gold.jsonl")).unwrap().items;
    let eval = load_gold_set(&dir.path().join("eval.jsonl")).unwrap().items;
    for e in &eval {
        for g in &gold {
            assert_ne!(
                normalize_question(&e.question),
                normalize_question(&g.question)
            );
            assert_ne!(e.sql, g.sql, "{}", e.question);
        }
    }
}

#[test]
fn data_is_realistic_and_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let count = |t: &str| s.tables.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!(count("stores"), 6);
    assert!((300..=600).contains(&count("customers")));
    assert!(
        (2_000..=6_000).contains(&count("orders")),
        "{}",
        count("orders")
    );
    assert!(count("order_items") > count("orders"));
    let conn = rusqlite::Connection::open(dir.path().join("bakery.sqlite")).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let violations: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(violations, 0);
    let span: (String, String) = conn
        .query_row(
            "SELECT min(order_date), max(order_date) FROM orders",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(span, ("2023-01-01".to_string(), "2024-12-31".to_string()));
}

#[test]
fn refuses_to_overwrite_a_project_without_force() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let err = write_demo(dir.path(), &DemoOptions::default()).unwrap_err();
    assert!(matches!(err, DemoError::Exists(_)));
    assert!(err.to_string().contains("--force"));
    write_demo(
        dir.path(),
        &DemoOptions {
            force: true,
            ..DemoOptions::default()
        },
    )
    .unwrap();
}

#[test]
fn gold_set_spans_the_concept_taxonomy_and_names_only_real_columns() {
    use lode_core::sql::analyze::{Concept, analyze};
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for pair in project.gold.iter().chain(&project.eval) {
        let a = analyze(&pair.sql, Some(&project.schema))
            .unwrap_or_else(|e| panic!("{}: {e}", pair.sql));
        assert!(
            a.unknown.is_empty(),
            "{:?} unknown in {}",
            a.unknown,
            pair.sql
        );
        seen.extend(a.concepts.keys().copied());
    }
    for c in [
        Concept::JoinInner,
        Concept::JoinOuter,
        Concept::GroupBy,
        Concept::Having,
        Concept::NestedWhereSubquery,
        Concept::Cte,
        Concept::WindowFunction,
        Concept::CaseWhen,
        Concept::DateTime,
        Concept::Ratio,
    ] {
        assert!(seen.contains(&c), "no gold or eval pair uses {c}");
    }
}
