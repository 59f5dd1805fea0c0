//! Every comparison profile reproduces the reference evaluators' verdicts on the hand-made
//! edge cases of `../shared/data/evaluator_edge_cases.json`, case by case, and scores 100% on
//! Spider gold-vs-gold. Skips, saying so, when `../shared/data` is absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lode_core::sql::compare::{Case, Profile, evaluate};
use lode_core::sql::{Database, ExecLimits};

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.join("evaluator_edge_cases.json").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} not found (shared benchmark data is absent)",
            dir.display()
        );
        None
    }
}

fn database(dir: &Path, db_id: &str) -> Database {
    let path = dir
        .join("spider_dev11/database")
        .join(db_id)
        .join(format!("{db_id}.sqlite"));
    Database::open(&path, ExecLimits::default()).expect("open spider database")
}

/// A verdict in the file's notation: "1", "0", "err", or for defog "exact/correct".
fn notation(profile: &Profile, v: &lode_core::sql::compare::Verdict) -> String {
    let failed = v.reason.as_ref().is_some_and(|r| r.kind() == "pred_error");
    match profile {
        Profile::Defog if failed => "err".into(),
        Profile::Defog => format!(
            "{}/{}",
            v.correct as u8,
            v.subset_correct.unwrap_or(false) as u8
        ),
        Profile::BirdEx if failed => "err".into(),
        _ => (v.correct as u8).to_string(),
    }
}

#[test]
fn every_profile_reproduces_the_reference_verdicts_on_the_edge_cases() {
    let Some(dir) = data_dir() else { return };
    let text = std::fs::read_to_string(dir.join("evaluator_edge_cases.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = file["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 20);
    let mut dbs: BTreeMap<String, Database> = BTreeMap::new();
    let profiles = [
        (
            "ts_default",
            Profile::SpiderTs {
                keep_distinct: false,
            },
        ),
        (
            "ts_keep_distinct",
            Profile::SpiderTs {
                keep_distinct: true,
            },
        ),
        ("bird_ex", Profile::BirdEx),
        ("defog_exact_subset", Profile::Defog),
    ];
    let mut failures = Vec::new();
    for c in cases {
        let db_id = c["db_id"].as_str().unwrap().to_string();
        let db = dbs
            .entry(db_id.clone())
            .or_insert_with(|| database(&dir, &db_id));
        let case = Case {
            gold_sql: c["gold"].as_str().unwrap(),
            pred_sql: c["pred"].as_str().unwrap(),
            question: "",
            ..Default::default()
        };
        let name = c["case"].as_str().unwrap();
        for (key, profile) in &profiles {
            let want = c["verdicts"][key].as_str().unwrap();
            let v = evaluate(db, profile, &case);
            let got = notation(profile, &v);
            if got != want {
                failures.push(format!(
                    "{name} / {key}: reference {want}, lode {got} ({v:?})"
                ));
            }
            if let Profile::BirdEx = profile {
                let want_f1 = c["verdicts"]["bird_soft_f1"].as_str().unwrap();
                if want_f1 != "err" {
                    let want_f1: f64 = want_f1.parse().unwrap();
                    let got_f1 = v.score.expect("bird_ex carries soft F1");
                    if (got_f1 - want_f1).abs() > 1e-3 {
                        failures.push(format!(
                            "{name} / soft F1: reference {want_f1}, lode {got_f1}"
                        ));
                    }
                }
            }
        }
        // The lode profile must give a reason whenever it says no.
        let v = evaluate(db, &Profile::default(), &case);
        assert!(v.correct || v.reason.is_some(), "{name}: no reason");
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_lode_profile_judges_the_edge_cases_by_correct_semantics() {
    let Some(dir) = data_dir() else { return };
    let text = std::fs::read_to_string(dir.join("evaluator_edge_cases.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    // (case, correct?, reason kind when wrong)
    let expected: &[(&str, bool, &str)] = &[
        ("col_swap", true, ""),
        ("missing_order_by", false, "order"),
        ("wrong_direction", false, "order"),
        ("missing_distinct", false, "duplicates"),
        ("count_vs_count_distinct", false, "values"),
        ("extra_column", false, "column_count"),
        ("int_vs_float", true, ""),
        ("float_last_ulp", true, ""),
        ("rounded_float", false, "values"),
        ("both_empty", true, ""),
        ("null_vs_sentinel", false, "values"),
        ("string_case", false, "values"),
        ("syntax_error", false, "pred_error"),
        ("dup_multiplicity", false, "duplicates"),
        ("alias_only", true, ""),
        ("alias_and_swap", true, ""),
        ("order_by_in_subquery", true, ""),
        ("tie_limit1", false, "values"),
    ];
    let mut dbs: BTreeMap<String, Database> = BTreeMap::new();
    let mut failures = Vec::new();
    for (name, correct, kind) in expected {
        let c = file["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case"] == *name)
            .unwrap_or_else(|| panic!("case {name} missing"));
        let db_id = c["db_id"].as_str().unwrap().to_string();
        let db = dbs
            .entry(db_id.clone())
            .or_insert_with(|| database(&dir, &db_id));
        let case = Case {
            gold_sql: c["gold"].as_str().unwrap(),
            pred_sql: c["pred"].as_str().unwrap(),
            question: "",
            ..Default::default()
        };
        let v = evaluate(db, &Profile::default(), &case);
        let got_kind = v.reason.as_ref().map_or("", |r| r.kind());
        if v.correct != *correct || got_kind != *kind {
            failures.push(format!("{name}: expected {correct} {kind}, got {v:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gold_against_itself_scores_100_percent_under_every_profile() {
    let Some(dir) = data_dir() else { return };
    let text = std::fs::read_to_string(dir.join("spider_dev11/dev.json")).unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut dbs: BTreeMap<String, Database> = BTreeMap::new();
    let profiles = [
        Profile::default(),
        Profile::SpiderTs {
            keep_distinct: false,
        },
        Profile::SpiderTs {
            keep_distinct: true,
        },
        Profile::BirdEx,
        Profile::Defog,
    ];
    let mut failures = Vec::new();
    for item in &items {
        let db_id = item["db_id"].as_str().unwrap().to_string();
        let db = dbs
            .entry(db_id.clone())
            .or_insert_with(|| database(&dir, &db_id));
        let sql = item["query"].as_str().unwrap();
        let case = Case {
            gold_sql: sql,
            pred_sql: sql,
            question: item["question"].as_str().unwrap_or(""),
            ..Default::default()
        };
        for profile in &profiles {
            let v = evaluate(db, profile, &case);
            if !v.correct {
                failures.push(format!("{}: {v:?}: {sql}", profile.name()));
            }
        }
    }
    assert_eq!(items.len(), 318);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
