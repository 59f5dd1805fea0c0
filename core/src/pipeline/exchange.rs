//! Files in the original's shapes: `lamini-nested` (one `nested_results` line per gold
//! question, with the pattern, structural and sub-question variations, their validation and
//! any correction) and `lamini` (flattened `{input, output}` lines). Exports are made from
//! the store; imports go into it as a run, each pair re-validated by execution.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value as Json, json};

use crate::diag::InputError;
use crate::pipeline::validate::validate;
use crate::project::Project;
use crate::sql::SqlDialect;
use crate::sql::analyze::template_in;
use crate::store::{
    NewPair, NewRun, NewValidation, Pair, PairFilter, PairNotes, PairStatus, RunKind, SetName,
    Store, StoreError,
};

/// Which pairs an export takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSelection {
    /// Valid, fixed or accepted (the default).
    ValidOrAccepted,
    Accepted,
    All,
}

impl StatusSelection {
    pub fn parse(s: &str) -> Option<StatusSelection> {
        match s {
            "valid" => Some(StatusSelection::ValidOrAccepted),
            "accepted" => Some(StatusSelection::Accepted),
            "all" => Some(StatusSelection::All),
            _ => None,
        }
    }

    pub fn statuses(self) -> Vec<PairStatus> {
        match self {
            StatusSelection::ValidOrAccepted => {
                vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Accepted]
            }
            StatusSelection::Accepted => vec![PairStatus::Accepted],
            StatusSelection::All => Vec::new(),
        }
    }
}

/// The original's key for a generator's variations.
fn nested_key(generator: &str) -> String {
    match generator {
        "pattern" => "pattern_variations".into(),
        "variation" => "structural_variations".into(),
        "decomposer" => "sub_questions".into(),
        other => format!("{other}_variations"),
    }
}

fn generator_of(key: &str) -> String {
    match key {
        "pattern_variations" => "pattern".into(),
        "structural_variations" => "variation".into(),
        "sub_questions" => "decomposer".into(),
        other => other.trim_end_matches("_variations").to_string(),
    }
}

fn original_validation(ok: bool, error: Option<&str>) -> Json {
    json!({
        "is_valid": ok,
        "error": error,
        "explanation": if ok { "Query is valid and can be executed".to_string() } else { format!("Query is invalid: {}", error.unwrap_or("")) },
    })
}

/// The flattened `{input, output}` lines of a run's pairs.
pub fn export_flat(
    store: &Store,
    run_id: Option<i64>,
    selection: StatusSelection,
) -> Result<(String, usize), StoreError> {
    let pairs = store.pairs(&PairFilter {
        run_id,
        statuses: selection.statuses(),
        ..Default::default()
    })?;
    let mut out = String::new();
    let mut n = 0;
    for p in pairs.iter().filter(|p| !p.sql.is_empty()) {
        out.push_str(&json!({"input": p.question, "output": p.sql}).to_string());
        out.push('\n');
        n += 1;
    }
    Ok((out, n))
}

/// One `nested_results` line per gold question of a run.
pub fn export_nested(
    store: &Store,
    run_id: i64,
    selection: StatusSelection,
) -> Result<(String, usize), StoreError> {
    let gold: BTreeMap<i64, (String, String)> = store
        .gold_set(SetName::Gold)?
        .into_iter()
        .map(|g| (g.id, (g.question, g.sql)))
        .collect();
    let pairs = store.pairs(&PairFilter {
        run_id: Some(run_id),
        statuses: selection.statuses(),
        ..Default::default()
    })?;
    let mut by_gold: BTreeMap<i64, Vec<Pair>> = BTreeMap::new();
    for p in pairs.into_iter().filter(|p| !p.sql.is_empty()) {
        if let Some(g) = p.parent_gold_id {
            by_gold.entry(g).or_default().push(p);
        }
    }
    let mut out = String::new();
    for (gid, pairs) in &by_gold {
        let (q, s) = gold.get(gid).cloned().unwrap_or_default();
        let mut rec = serde_json::Map::new();
        rec.insert("original_question".into(), json!(q));
        rec.insert("original_sql".into(), json!(s));
        for key in [
            "pattern_variations",
            "structural_variations",
            "sub_questions",
        ] {
            rec.insert(key.into(), json!([]));
        }
        for p in pairs {
            let attempts = store.validations(p.id)?;
            let qkey = if p.generator == "decomposer" {
                "sub_question"
            } else {
                "question"
            };
            let mut v = serde_json::Map::new();
            v.insert(qkey.into(), json!(p.question));
            let first = attempts.first();
            v.insert(
                "generated_sql".into(),
                json!(first.map_or(p.sql.as_str(), |a| a.sql.as_str())),
            );
            if attempts.len() > 1 {
                let last = attempts.last();
                v.insert("corrected_sql".into(), json!(p.sql));
                v.insert(
                    "final_validation".into(),
                    original_validation(
                        last.is_some_and(|a| a.ok),
                        last.and_then(|a| a.error.as_deref()),
                    ),
                );
            } else {
                v.insert(
                    "validation".into(),
                    original_validation(
                        first.is_none_or(|a| a.ok),
                        first.and_then(|a| a.error.as_deref()),
                    ),
                );
            }
            let list = rec
                .entry(nested_key(&p.generator))
                .or_insert_with(|| json!([]));
            if let Json::Array(a) = list {
                a.push(Json::Object(v));
            }
        }
        out.push_str(&Json::Object(rec).to_string());
        out.push('\n');
    }
    Ok((out, by_gold.len()))
}

/// What an import brought in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    pub run_id: i64,
    pub pairs: usize,
    pub valid: usize,
    pub invalid: usize,
    /// The pairs per generator (the nested file's keys; `import` for flattened lines).
    pub by_generator: BTreeMap<String, ImportCounts>,
    /// Lines read of each shape: `nested_results` records and flattened `{input, output}`.
    pub nested_records: usize,
    pub flat_records: usize,
    /// Nested items without a question, left out.
    pub no_question: usize,
}

/// Pairs imported, and how many of them ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ImportCounts {
    pub pairs: usize,
    pub valid: usize,
    pub invalid: usize,
}

/// Imports a nested or flattened file of the original into a new run. Every pair is
/// re-validated by execution (the original only ran EXPLAIN).
pub fn import(project: &Project, store: &Store, path: &Path) -> Result<ImportSummary, ImportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, format!("cannot read: {e}"), "check the path"))?;
    let mut items: Vec<(String, String, String, Option<Json>)> = Vec::new(); // (generator, question, sql, original validation)
    let (mut nested_records, mut flat_records, mut no_question) = (0, 0, 0);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Json = serde_json::from_str(line).map_err(|e| {
            InputError::new(
                path,
                format!("invalid JSON: {e}"),
                "one JSON object per line (nested_results or {input, output})",
            )
            .at(i + 1, Some(e.column()))
        })?;
        if v.get("original_question").is_some() {
            let Json::Object(obj) = &v else { continue };
            nested_records += 1;
            for (key, list) in obj {
                let Json::Array(list) = list else { continue };
                for item in list {
                    let q = item["question"]
                        .as_str()
                        .or(item["sub_question"].as_str())
                        .unwrap_or("");
                    let corrected_ok = item["final_validation"]["is_valid"].as_bool() == Some(true);
                    let sql = if corrected_ok {
                        item["corrected_sql"].as_str()
                    } else {
                        item["generated_sql"].as_str()
                    }
                    .unwrap_or("");
                    if q.is_empty() {
                        no_question += 1;
                        continue;
                    }
                    let original = item
                        .get("final_validation")
                        .or(item.get("validation"))
                        .cloned();
                    items.push((generator_of(key), q.to_string(), sql.to_string(), original));
                }
            }
        } else {
            let q = v["input"].as_str().or(v["question"].as_str());
            let s = v["output"].as_str().or(v["sql"].as_str());
            match (q, s) {
                (Some(q), Some(s)) => {
                    flat_records += 1;
                    items.push(("import".into(), q.to_string(), s.to_string(), None))
                }
                _ => {
                    return Err(InputError::new(
                        path,
                        "a line is neither a nested_results record nor {\"input\", \"output\"}",
                        "export it again from the original, or write {\"input\": question, \"output\": sql}",
                    )
                    .at(i + 1, None)
                    .into());
                }
            }
        }
    }
    // The run is leased while it is written, so another lode process opening the store
    // does not take it for an interrupted one.
    let owner = crate::store::LeaseOwner::this_process();
    let run_id = store.create_leased_run(
        &NewRun {
            kind: RunKind::Import,
            profile: String::new(),
            config_json: json!({"file": path.display().to_string()}).to_string(),
            snapshot_id: None,
        },
        &owner,
    )?;
    let written = write_import(project, store, run_id, &owner, items);
    // Released whatever happened: a failed import is not a run someone is writing.
    let released = store.release_run(run_id, &owner);
    let mut summary = written?;
    released?;
    summary.nested_records = nested_records;
    summary.flat_records = flat_records;
    summary.no_question = no_question;
    Ok(summary)
}

type ImportItem = (String, String, String, Option<serde_json::Value>);

fn write_import(
    project: &Project,
    store: &Store,
    run_id: i64,
    owner: &crate::store::LeaseOwner,
    items: Vec<ImportItem>,
) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary {
        run_id,
        ..Default::default()
    };
    let mut beat = std::time::Instant::now();
    for (i, (generator, question, sql, original)) in items.into_iter().enumerate() {
        if beat.elapsed() >= crate::store::LEASE_HEARTBEAT {
            store.heartbeat_run(run_id, owner)?;
            beat = std::time::Instant::now();
        }
        let v = validate(&project.db, &project.schema, &sql, &[]);
        let status = if v.ok {
            PairStatus::Valid
        } else {
            PairStatus::Invalid
        };
        summary.pairs += 1;
        let counts = summary.by_generator.entry(generator.clone()).or_default();
        counts.pairs += 1;
        if v.ok {
            summary.valid += 1;
            counts.valid += 1;
        } else {
            summary.invalid += 1;
            counts.invalid += 1;
        }
        store.insert_pair_with_validations(
            run_id,
            &NewPair {
                origin_key: format!("import:{i}"),
                generator,
                question,
                sql: sql.clone(),
                status: Some(status),
                notes: PairNotes {
                    original_validation: original,
                    ..PairNotes::default()
                },
                template: (!sql.is_empty())
                    .then(|| template_in(&sql, SqlDialect::of(&project.schema))),
                result_fingerprint: v.fingerprint.clone(),
                ..Default::default()
            },
            &[NewValidation {
                attempt: 1,
                sql,
                ok: v.ok,
                error_kind: v.error_kind.clone(),
                error: v.error.clone(),
                row_count: v.row_count.map(|r| r as i64),
                elapsed_ms: v.elapsed_ms,
                ..Default::default()
            }],
        )?;
    }
    store.finish_run(
        run_id,
        crate::store::RunStatus::Completed,
        Some(
            &json!({"pairs": summary.pairs, "valid": summary.valid, "invalid": summary.invalid})
                .to_string(),
        ),
        None,
    )?;
    Ok(summary)
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
