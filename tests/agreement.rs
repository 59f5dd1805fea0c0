//! The question–SQL agreement check on real data: it must pass nearly every gold pair of the
//! 318 spider_dev11 questions, and catch at least 9 of 10 mismatches planted into them
//! (a flipped order, another filter value, another aggregate, another table in the
//! question). Skips, saying so, when `../shared/data` is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lode_core::sql::analyze::analyze;
use lode_core::sql::schema::{Schema, introspect};
use lode_core::sql::{Database, ExecLimits, Value};
use lode_core::synth::agree::check;
use lode_core::synth::names::Names;

/// At most this share of the unmodified gold pairs may be flagged.
const GOLD_FLAG_BOUND: f64 = 0.10;
/// At least this share of the planted mismatches must be caught.
const CATCH_BOUND: f64 = 0.90;

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
    question: String,
    query: String,
}

struct Db {
    schema: Schema,
    names: Names,
    db: Database,
}

fn load(dir: &Path) -> (Vec<Item>, BTreeMap<String, Db>) {
    let text = std::fs::read_to_string(dir.join("dev.json")).expect("read dev.json");
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).expect("parse dev.json");
    let items: Vec<Item> = items
        .iter()
        .map(|v| Item {
            db_id: v["db_id"].as_str().expect("db_id").to_string(),
            question: v["question"].as_str().expect("question").to_string(),
            query: v["query"].as_str().expect("query").to_string(),
        })
        .collect();
    let mut dbs = BTreeMap::new();
    for item in &items {
        if dbs.contains_key(&item.db_id) {
            continue;
        }
        let path = dir
            .join("database")
            .join(&item.db_id)
            .join(format!("{}.sqlite", item.db_id));
        let db = Database::open(&path, ExecLimits::default()).expect("open spider db");
        let schema = introspect(&db).expect("introspect");
        let names = Names::new(&schema, &[]);
        dbs.insert(item.db_id.clone(), Db { schema, names, db });
    }
    (items, dbs)
}

#[test]
fn gold_pairs_mostly_agree() {
    let Some(dir) = spider_dir() else { return };
    let (items, dbs) = load(&dir);
    let mut flagged = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let d = &dbs[&item.db_id];
        let reasons = check(&item.question, &item.query, &d.schema, &d.names);
        if !reasons.is_empty() {
            flagged.push(format!(
                "#{i} {}\n    Q: {}\n    SQL: {}\n    -> {}",
                item.db_id,
                item.question,
                item.query,
                reasons.join("; ")
            ));
        }
    }
    let rate = flagged.len() as f64 / items.len() as f64;
    println!(
        "gold pairs flagged: {} of {} ({:.1}%)\n{}",
        flagged.len(),
        items.len(),
        100.0 * rate,
        flagged.join("\n")
    );
    assert!(
        rate < GOLD_FLAG_BOUND,
        "{} of {} gold pairs flagged, over the bound of {:.0}%:\n{}",
        flagged.len(),
        items.len(),
        100.0 * GOLD_FLAG_BOUND,
        flagged.join("\n")
    );
}

/// The four kinds of planted mismatch.
const KINDS: [&str; 4] = ["direction", "value", "aggregate", "table"];

/// Superlatives swapped in a question whose SQL has no ORDER BY … LIMIT to flip.
const OPPOSITES: &[(&str, &str)] = &[
    ("highest", "lowest"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("greatest", "least"),
    ("most", "least"),
    ("maximum", "minimum"),
    ("oldest", "youngest"),
    ("fewest", "most"),
    ("ascending", "descending"),
];

/// The question and SQL with one mismatch of `kind` planted, when the pair has what it needs.
fn plant(kind: &str, item: &Item, d: &Db) -> Option<(String, String)> {
    match kind {
        "direction" => plant_direction(item),
        "value" => plant_value(item, d),
        "aggregate" => plant_aggregate(item),
        "table" => plant_table(item, d),
        _ => unreachable!(),
    }
}

/// The byte position of `word` in `text`, case-insensitively, as whole words.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let lower = text.to_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(word).map(|p| p + from) {
        let before = lower[..at].chars().next_back();
        let after = lower[at + word.len()..].chars().next();
        if !before.is_some_and(|c| c.is_alphanumeric())
            && !after.is_some_and(|c| c.is_alphanumeric())
        {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn replace_at(text: &str, at: usize, len: usize, with: &str) -> String {
    format!("{}{with}{}", &text[..at], &text[at + len..])
}

/// Flips the outer ORDER BY … LIMIT of the SQL, else swaps a superlative of the question.
fn plant_direction(item: &Item) -> Option<(String, String)> {
    let sql = &item.query;
    let upper = sql.to_uppercase();
    if let (Some(order), Some(limit)) = (upper.rfind("ORDER BY"), upper.rfind("LIMIT"))
        && order < limit
        && !upper[order..].contains(')')
    {
        let key = &upper[order..limit];
        let flipped = if let Some(p) = find_word(key, "desc") {
            replace_at(sql, order + p, 4, "ASC")
        } else if let Some(p) = find_word(key, "asc") {
            replace_at(sql, order + p, 3, "DESC")
        } else {
            format!("{} DESC {}", sql[..limit].trim_end(), &sql[limit..])
        };
        return Some((item.question.clone(), flipped));
    }
    for (a, b) in OPPOSITES {
        for (from, to) in [(a, b), (b, a)] {
            if find_word(&item.question, "at most").is_some()
                || find_word(&item.question, "at least").is_some()
            {
                return None;
            }
            if let Some(at) = find_word(&item.question, from) {
                return Some((replace_at(&item.question, at, from.len(), to), sql.clone()));
            }
        }
    }
    None
}

/// String literals of a SQL text with their byte ranges (quotes excluded).
fn string_literals(sql: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let q = bytes[i];
        if (q == b'\'' || q == b'"')
            && let Some(len) = sql[i + 1..].find(q as char)
        {
            out.push((i + 1, i + 1 + len));
            i += len + 2;
            continue;
        }
        i += 1;
    }
    out
}

/// Replaces a filter's string literal by another value of the same column that the question
/// does not name.
fn plant_value(item: &Item, d: &Db) -> Option<(String, String)> {
    let sql = &item.query;
    let question = item.question.to_lowercase();
    let tables = analyze(sql, Some(&d.schema)).ok()?.tables;
    for (start, end) in string_literals(sql) {
        let literal = sql[start..end].trim_matches('%');
        if literal.is_empty() {
            continue;
        }
        for table in tables.iter().filter_map(|t| d.schema.table(t)) {
            for column in &table.columns {
                let ident = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
                let found =
                    d.db.query(&format!(
                        "SELECT DISTINCT {c} FROM {t} WHERE {c} LIKE '%{lit}%' LIMIT 1",
                        c = ident(&column.name),
                        t = ident(&table.name),
                        lit = literal.replace('\'', "''")
                    ))
                    .ok()
                    .is_some_and(|r| !r.rows.is_empty());
                if !found {
                    continue;
                }
                let others =
                    d.db.query(&format!(
                        "SELECT DISTINCT {c} FROM {t} WHERE {c} IS NOT NULL LIMIT 50",
                        c = ident(&column.name),
                        t = ident(&table.name),
                    ))
                    .ok()?;
                let other = others.rows.iter().find_map(|row| match row.first() {
                    Some(Value::Text(v))
                        if !v.trim().is_empty()
                            && !v.eq_ignore_ascii_case(literal)
                            && !question.contains(&v.to_lowercase())
                            && !v.to_lowercase().contains(&literal.to_lowercase())
                            && !literal.to_lowercase().contains(&v.to_lowercase())
                            && v.len() > 2 =>
                    {
                        Some(v.clone())
                    }
                    _ => None,
                })?;
                let with = sql[start..end].replace(literal, &other);
                return Some((
                    item.question.clone(),
                    replace_at(sql, start, end - start, &with),
                ));
            }
        }
    }
    None
}

/// Swaps AVG with SUM and MAX with MIN in the SQL (the first of them).
fn plant_aggregate(item: &Item) -> Option<(String, String)> {
    let upper = item.query.to_uppercase();
    [
        ("AVG(", "SUM("),
        ("SUM(", "AVG("),
        ("MAX(", "MIN("),
        ("MIN(", "MAX("),
    ]
    .iter()
    .filter_map(|(from, to)| upper.find(from).map(|at| (at, from, to)))
    .min_by_key(|(at, _, _)| *at)
    .map(|(at, from, to)| {
        (
            item.question.clone(),
            replace_at(&item.query, at, from.len(), to),
        )
    })
}

/// Replaces the words of a table the SQL reads in the question by another table's words.
fn plant_table(item: &Item, d: &Db) -> Option<(String, String)> {
    let read = analyze(&item.query, Some(&d.schema)).ok()?.tables;
    let read: BTreeSet<String> = read.iter().map(|t| t.to_lowercase()).collect();
    let other = d.schema.tables.iter().map(|t| t.name.as_str()).find(|t| {
        let words = d.names.one(t);
        !read.contains(&t.to_lowercase())
            && !read
                .iter()
                .any(|r| d.names.one(r).contains(&words) || words.contains(&d.names.one(r)))
    })?;
    let mut question = item.question.clone();
    let mut planted = false;
    for t in &read {
        for (mine, theirs) in [
            (d.names.many(t), d.names.many(other)),
            (d.names.one(t), d.names.one(other)),
        ] {
            while let Some(at) = find_word(&question, &mine.to_lowercase()) {
                question = replace_at(&question, at, mine.len(), &theirs);
                planted = true;
            }
        }
    }
    planted.then(|| (question, item.query.clone()))
}

#[test]
fn planted_mismatches_are_caught() {
    let Some(dir) = spider_dir() else { return };
    let (items, dbs) = load(&dir);
    let mut planted: BTreeMap<&str, usize> = BTreeMap::new();
    let mut caught: BTreeMap<&str, usize> = BTreeMap::new();
    let mut missed = Vec::new();
    for item in &items {
        let d = &dbs[&item.db_id];
        // A gold pair the check already flags says nothing about what planting adds.
        if !check(&item.question, &item.query, &d.schema, &d.names).is_empty() {
            continue;
        }
        for kind in KINDS {
            let Some((question, sql)) = plant(kind, item, d) else {
                continue;
            };
            *planted.entry(kind).or_default() += 1;
            let reasons = check(&question, &sql, &d.schema, &d.names);
            if reasons.is_empty() {
                missed.push(format!("{kind}:\n    Q: {question}\n    SQL: {sql}"));
            } else {
                *caught.entry(kind).or_default() += 1;
            }
        }
    }
    let total: usize = planted.values().sum();
    let total_caught: usize = caught.values().sum();
    for kind in KINDS {
        let p = planted.get(kind).copied().unwrap_or(0);
        let c = caught.get(kind).copied().unwrap_or(0);
        println!(
            "{kind:<10} caught {c} of {p} ({:.1}%)",
            100.0 * c as f64 / p.max(1) as f64
        );
        assert!(p >= 10, "only {p} {kind} mismatches could be planted");
    }
    let rate = total_caught as f64 / total as f64;
    println!(
        "all        caught {total_caught} of {total} ({:.1}%)\nmissed:\n{}",
        100.0 * rate,
        missed.join("\n")
    );
    assert!(
        rate >= CATCH_BOUND,
        "caught {total_caught} of {total} planted mismatches, under {:.0}%",
        100.0 * CATCH_BOUND
    );
}
