//! Coverage and error analysis: pinned counts on a small hand-checked fixture, topic-name
//! normalization, the Spider dev set and the demo, and gap filling with the rules backend.

use std::sync::Arc;

use lode_core::pipeline::coverage::{self, describe_set, normalize_topic};
use lode_core::pipeline::generate::{self, GenerateOptions};
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::project::{GlossaryEntry, Project};
use lode_core::sql::schema::introspect;
use lode_core::sql::{Database, ExecLimits};

#[test]
fn pinned_counts_on_a_hand_checked_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.sqlite");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE dept(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT, salary REAL, dept_id INTEGER REFERENCES dept(id));
         CREATE TABLE audit(id INTEGER PRIMARY KEY, note TEXT);
         INSERT INTO dept VALUES (1, 'a'); INSERT INTO emp VALUES (1, 'x', 10, 1);",
    )
    .unwrap();
    drop(c);
    let db = Database::open(&path, ExecLimits::default()).unwrap();
    let schema = introspect(&db).unwrap();
    let sqls = [
        "SELECT name FROM emp WHERE salary > 5", // where, single_table
        "SELECT d.name, COUNT(*) FROM dept d JOIN emp e ON e.dept_id = d.id GROUP BY d.name", // join, group, aggregate
        "SELECT name FROM emp ORDER BY salary DESC LIMIT 1", // order, limit
    ];
    let c = describe_set(&sqls, &schema);
    assert_eq!(c.pairs, 3);
    assert_eq!(c.concepts["where"], 1);
    assert_eq!(c.concepts["join_inner"], 1);
    assert_eq!(c.concepts["group_by"], 1);
    assert_eq!(c.concepts["aggregate"], 1);
    assert_eq!(c.concepts["order_by"], 1);
    assert_eq!(c.concepts["limit"], 1);
    assert_eq!(c.concepts["single_table"], 2);
    assert_eq!(c.hardness["easy"], 1);
    assert_eq!(c.hardness["medium"], 2);
    assert_eq!(c.tables["emp"], 3);
    assert_eq!(c.tables["dept"], 1);
    assert!(!c.tables.contains_key("audit"));
    assert_eq!(c.joins.iter().collect::<Vec<_>>(), vec!["emp|dept"]);
    assert!(c.columns.contains("emp.salary") && c.columns.contains("dept.name"));
    assert!(!c.columns.contains("audit.note"));
}

#[test]
fn topic_names_merge_case_whitespace_plurals_and_glossary_terms() {
    let glossary = vec![GlossaryEntry {
        term: "AOV".into(),
        definition: "Average order value: revenue divided by orders.".into(),
    }];
    let n = |t: &str| normalize_topic(t, &glossary);
    assert_eq!(n("Sales"), n("sales"));
    assert_eq!(n("  Sales "), "sale");
    assert_eq!(n("Customer Segments"), n("customer segment"));
    assert_eq!(n("Categories"), "category");
    assert_eq!(n("average order value"), "aov");
    assert_eq!(n("Average Order Values"), "aov");
    assert_ne!(n("sales"), n("stores"));
}

#[test]
fn concept_coverage_of_the_spider_dev_set() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/spider_dev11");
    if !dir.join("dev.json").exists() {
        eprintln!(
            "skipping: {} not found (shared benchmark data is absent)",
            dir.display()
        );
        return;
    }
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dev.json")).unwrap()).unwrap();
    let mut total = std::collections::BTreeMap::new();
    let mut unused_tables = 0;
    let dbs: std::collections::BTreeSet<String> = items
        .iter()
        .map(|i| i["db_id"].as_str().unwrap().to_string())
        .collect();
    for db_id in &dbs {
        let db = Database::open(
            &dir.join("database")
                .join(db_id)
                .join(format!("{db_id}.sqlite")),
            ExecLimits::default(),
        )
        .unwrap();
        let schema = introspect(&db).unwrap();
        let sqls: Vec<&str> = items
            .iter()
            .filter(|i| i["db_id"] == db_id.as_str())
            .map(|i| i["query"].as_str().unwrap())
            .collect();
        let c = describe_set(&sqls, &schema);
        assert_eq!(c.unparsed, 0);
        for (k, v) in c.concepts {
            *total.entry(k).or_insert(0) += v;
        }
        unused_tables += schema
            .tables
            .iter()
            .filter(|t| !c.tables.contains_key(&t.name))
            .count();
    }
    // Spider dev has no CTEs, window functions or CASE, and many joins and aggregates.
    assert!(!total.contains_key("cte") && !total.contains_key("window_function"));
    assert!(
        total["aggregate"] > 100 && total["join_inner"] > 60,
        "{total:?}"
    );
    assert!(unused_tables < 60);
}

#[test]
fn fill_adds_valid_pairs_for_at_least_half_of_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    // A thin run: pattern questions only, so many concepts and tables are missing.
    let path = dir.path().join("config.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let base = text.split("\ngenerate:").next().unwrap().to_string();
    std::fs::write(
        &path,
        format!(
            "{base}\ngenerate:\n  per_gold:\n    pattern: 1\n    variation: 0\n    decomposer: 0\n"
        ),
    )
    .unwrap();
    let project = Project::load(&path).unwrap();
    let (store, snapshot) = project.open_store().unwrap();
    let store = Arc::new(store);
    let client = lode_core::tasks::model::profile_client(
        &project,
        Some(Arc::clone(&store)),
        None,
        true,
        None,
    )
    .unwrap();
    let rt = lode_core::tasks::runtime().unwrap();
    let summary = rt
        .block_on(generate::run(
            &project,
            Arc::clone(&store),
            Arc::clone(&client),
            snapshot,
            &GenerateOptions::default(),
            Arc::new(|_| {}),
        ))
        .unwrap();
    let pairs = coverage::run_pairs(&store, Some(summary.run_id)).unwrap();
    let cov = coverage::coverage(&project, &pairs, 1.5);
    let gaps: Vec<String> = cov
        .missing_concepts
        .iter()
        .map(|c| format!("concept:{c}"))
        .chain(cov.unused_tables.iter().map(|t| format!("table:{t}")))
        .collect();
    assert!(gaps.len() >= 5, "the thin run should leave gaps: {gaps:?}");
    let report = rt
        .block_on(coverage::fill_gaps(
            &project,
            Arc::clone(&store),
            client,
            summary.run_id,
            &cov,
            None,
            2,
        ))
        .unwrap();
    let filled = gaps
        .iter()
        .filter(|g| report.filled.contains_key(*g))
        .count();
    assert!(
        filled * 2 >= gaps.len(),
        "filled {filled} of {}: {gaps:?}\n{report:?}",
        gaps.len()
    );
    // The new pairs are in the run, awaiting review, and they execute.
    let after = coverage::run_pairs(&store, Some(summary.run_id)).unwrap();
    let fills: Vec<_> = after.iter().filter(|p| p.generator == "gap_fill").collect();
    assert!(!fills.is_empty());
    for p in fills.iter().filter(|p| {
        matches!(
            p.status,
            lode_core::store::PairStatus::Valid | lode_core::store::PairStatus::Fixed
        )
    }) {
        assert!(project.db.query(&p.sql).is_ok(), "{}", p.sql);
    }
    let cov2 = coverage::coverage(&project, &after, 1.5);
    assert!(cov2.missing_concepts.len() < cov.missing_concepts.len());
}
