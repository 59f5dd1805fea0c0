//! SQL analysis on real data: Spider hardness must agree with the official labels of all 318
//! spider_dev11 questions, and every table and column the gold queries name must resolve
//! against the real schemas. Skips, saying so, when `../shared/data` is absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lode_core::sql::analyze::{Concept, Hardness, analyze};
use lode_core::sql::schema::{Schema, introspect};
use lode_core::sql::{Database, ExecLimits};

fn spider_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/spider_dev11");
    if dir.join("dev.json").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} not found (shared benchmark data is absent)",
            dir.display()
        );
        None
    }
}

struct Item {
    db_id: String,
    query: String,
    hardness: String,
}

fn load(dir: &Path) -> Vec<Item> {
    let text = std::fs::read_to_string(dir.join("dev.json")).expect("read dev.json");
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).expect("parse dev.json");
    items
        .iter()
        .map(|v| Item {
            db_id: v["db_id"].as_str().expect("db_id").to_string(),
            query: v["query"].as_str().expect("query").to_string(),
            hardness: v["hardness"].as_str().expect("hardness").to_string(),
        })
        .collect()
}

fn schemas(dir: &Path, items: &[Item]) -> BTreeMap<String, Schema> {
    let mut out = BTreeMap::new();
    for item in items {
        if out.contains_key(&item.db_id) {
            continue;
        }
        let path = dir
            .join("database")
            .join(&item.db_id)
            .join(format!("{}.sqlite", item.db_id));
        let db = Database::open(&path, ExecLimits::default()).expect("open spider db");
        out.insert(item.db_id.clone(), introspect(&db).expect("introspect"));
    }
    out
}

#[test]
fn spider_hardness_agrees_with_the_official_labels_on_all_318() {
    let Some(dir) = spider_dir() else { return };
    let items = load(&dir);
    assert_eq!(items.len(), 318);
    let mut disagreements = Vec::new();
    let mut per_level: BTreeMap<Hardness, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let analysis = analyze(&item.query, None)
            .unwrap_or_else(|e| panic!("item {i} does not parse: {e}\n{}", item.query));
        *per_level.entry(analysis.hardness).or_default() += 1;
        if analysis.hardness.name() != item.hardness {
            disagreements.push(format!(
                "#{i}: official {}, ours {} {:?}: {}",
                item.hardness, analysis.hardness, analysis.spider_counts, item.query
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert_eq!(per_level[&Hardness::Easy], 72);
    assert_eq!(per_level[&Hardness::Medium], 152);
    assert_eq!(per_level[&Hardness::Hard], 62);
    assert_eq!(per_level[&Hardness::Extra], 32);
}

#[test]
fn every_gold_reference_resolves_against_the_real_schema() {
    let Some(dir) = spider_dir() else { return };
    let items = load(&dir);
    let schemas = schemas(&dir, &items);
    let mut problems = Vec::new();
    let mut joins = 0;
    for (i, item) in items.iter().enumerate() {
        let schema = &schemas[&item.db_id];
        let analysis = analyze(&item.query, Some(schema)).expect("parses");
        if !analysis.unknown.is_empty() {
            problems.push(format!(
                "#{i} unknown {:?}: {}",
                analysis.unknown, item.query
            ));
        }
        for column in &analysis.columns {
            let (table, name) = column.split_once('.').expect("table.column");
            if table != "?" && name != "*" && schema.table(table).is_none() {
                problems.push(format!(
                    "#{i} column of a non-table {column}: {}",
                    item.query
                ));
            }
        }
        assert!(
            !analysis.tables.is_empty(),
            "#{i} names no table: {}",
            item.query
        );
        if analysis.has(Concept::JoinInner) {
            joins += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        joins > 50,
        "only {joins} joins found among 318 Spider queries"
    );
}
