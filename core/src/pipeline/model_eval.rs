//! Model evaluation on the project's eval set: predictions (from a model, or a file) are
//! executed and judged against the gold queries, the run lands in the store, and reports are
//! written, both the original's files and ours (accuracy per hardness, concept and table;
//! failed cases with gold and predicted rows side by side). Inference failures count in the
//! denominator, unlike the original.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::diag::{InputError, line_col};
use crate::pipeline::audit::Finding;
use crate::pipeline::eval::{EvalItem, EvalOptions, ItemResult, Preview, Summary, evaluate_items};
use crate::pipeline::samples::SampleScores;
use crate::pipeline::stats::PairedTest;
use crate::project::inputs::{array_element_offsets, normalize_question};
use crate::project::{GoldPair, Project};
use crate::sql::SqlDialect;
use crate::sql::analyze::{analyze, template_in};
use crate::sql::compare::Profile;
use crate::sql::extract::extract_sql;
use crate::store::{NewEvalCase, PairFilter, PairStatus, Store, StoreError};

/// One prediction: the SQL to run, or why there is none; and the model's raw reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub sql: Result<String, String>,
    pub raw: Option<String>,
}

impl Prediction {
    /// A model reply: its SQL is extracted; the original's `Error: ...` replies and replies
    /// with no SQL become failures with their cause.
    pub fn from_reply(reply: &str) -> Prediction {
        let trimmed = reply.trim();
        let sql = if let Some(err) = trimmed.strip_prefix("Error:") {
            Err(format!("inference failed: {}", err.trim()))
        } else {
            extract_sql(trimmed).ok_or_else(|| "no SQL in the model's reply".to_string())
        };
        Prediction {
            sql,
            raw: Some(reply.to_string()),
        }
    }
}

/// Reads predictions for `expected` questions from a file: the original's
/// `inference_results.json` (an array of `{question, gold_query, generated_query}`), a JSON
/// array of strings or of objects with `sql`/`generated_query`/`output`/`prediction`, JSONL of
/// the same, or plain text with one SQL per line.
pub fn load_predictions(path: &Path, expected: usize) -> Result<Vec<Prediction>, InputError> {
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(path, format!("cannot read: {e}"), "check the path"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let (line, col) = line_col(&String::from_utf8_lossy(&e.as_bytes()[..valid]), valid);
        InputError::new(
            path,
            "the predictions file is not valid UTF-8",
            "save the file as UTF-8",
        )
        .at(line, Some(col))
    })?;
    let from_value = |v: &Json, line: usize| -> Result<Prediction, InputError> {
        match v {
            Json::String(s) => Ok(Prediction::from_reply(s)),
            Json::Object(o) => {
                for key in [
                    "generated_query",
                    "sql",
                    "prediction",
                    "pred",
                    "output",
                    "query",
                ] {
                    if let Some(Json::String(s)) = o.get(key) {
                        return Ok(Prediction::from_reply(s));
                    }
                }
                Err(InputError::new(
                    path,
                    "a prediction object has no `generated_query`, `sql` or `output` string",
                    "give each prediction as {\"sql\": \"SELECT ...\"}",
                )
                .at(line, None))
            }
            Json::Null => Ok(Prediction {
                sql: Err("no prediction".into()),
                raw: None,
            }),
            _ => Err(InputError::new(
                path,
                "a prediction must be a string or an object",
                "give each prediction as a string or {\"sql\": \"SELECT ...\"}",
            )
            .at(line, None)),
        }
    };
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let is_jsonl = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    let preds: Vec<Prediction> = if is_json {
        let value: Json = serde_json::from_str(&text).map_err(|e| {
            InputError::new(path, format!("invalid JSON: {e}"), "fix the JSON syntax")
                .at(e.line(), Some(e.column()))
        })?;
        let Json::Array(items) = value else {
            return Err(InputError::new(
                path,
                "expected a JSON array of predictions",
                "write [\"SELECT ...\", ...] or the original's inference_results.json",
            ));
        };
        // Each element's problem names the line the element starts on.
        let starts = array_element_offsets(&text);
        items
            .iter()
            .enumerate()
            .map(|(i, v)| from_value(v, starts.get(i).map_or(1, |&o| line_col(&text, o).0)))
            .collect::<Result<_, _>>()?
    } else if is_jsonl {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Json = serde_json::from_str(line).map_err(|e| {
                InputError::new(
                    path,
                    format!("invalid JSON: {e}"),
                    "one JSON value per line",
                )
                .at(i + 1, Some(e.column()))
            })?;
            out.push(from_value(&v, i + 1)?);
        }
        out
    } else {
        text.lines()
            .map(|l| {
                let sql = l.split('\t').next().unwrap_or("").trim();
                if sql.is_empty() {
                    Prediction {
                        sql: Err("empty prediction".into()),
                        raw: Some(l.to_string()),
                    }
                } else {
                    Prediction {
                        sql: Ok(sql.to_string()),
                        raw: None,
                    }
                }
            })
            .collect()
    };
    if preds.len() != expected {
        return Err(InputError::new(
            path,
            format!(
                "{} predictions for an eval set of {expected} questions",
                preds.len()
            ),
            "give one prediction per eval question, in the eval set's order",
        ));
    }
    Ok(preds)
}

/// A finished model evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEval {
    pub eval_run_id: i64,
    pub model: String,
    pub profile: String,
    pub summary: Summary,
    /// The 95% Wilson interval of the execution accuracy.
    pub accuracy_ci: (f64, f64),
    pub cases: Vec<CaseReport>,
    /// accuracy breakdowns: concept → (pairs, correct); table → (pairs, correct)
    pub by_concept: BTreeMap<String, (usize, usize)>,
    pub by_table: BTreeMap<String, (usize, usize)>,
    pub leakage: Vec<Leak>,
    /// With several samples per question: the majority vote and pass@k beside sample 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleScores>,
    /// What the gold-set audit found in the eval set's gold SQL (run before every eval).
    pub audit: Vec<Finding>,
}

/// One evaluated question, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub position: usize,
    pub question: String,
    pub gold_sql: String,
    pub pred_sql: Option<String>,
    pub raw_reply: Option<String>,
    pub result: ItemResult,
    /// The LLM judge's opinion on a mismatch, when asked (never replaces the verdict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<Json>,
}

/// An eval question that also appears, in substance, in the training pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leak {
    pub position: usize,
    pub question: String,
    /// `question` or `sql_template`
    pub kind: String,
    pub pair_id: i64,
}

/// Eval questions whose normalized text or gold SQL template matches a pair that could be
/// trained on (valid, fixed or accepted).
pub fn leakage(
    eval: &[GoldPair],
    store: &Store,
    dialect: SqlDialect,
) -> Result<Vec<Leak>, StoreError> {
    let template = |sql: &str| template_in(sql, dialect);
    let pairs = store.pairs(&PairFilter {
        statuses: vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Accepted],
        ..Default::default()
    })?;
    let mut by_question: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_template: BTreeMap<String, i64> = BTreeMap::new();
    for p in &pairs {
        by_question
            .entry(normalize_question(&p.question))
            .or_insert(p.id);
        by_template
            .entry(p.template.clone().unwrap_or_else(|| template(&p.sql)))
            .or_insert(p.id);
    }
    let mut out = Vec::new();
    for (i, e) in eval.iter().enumerate() {
        if let Some(&id) = by_question.get(&normalize_question(&e.question)) {
            out.push(Leak {
                position: i,
                question: e.question.clone(),
                kind: "question".into(),
                pair_id: id,
            });
        } else if let Some(&id) = by_template.get(&template(&e.sql)) {
            out.push(Leak {
                position: i,
                question: e.question.clone(),
                kind: "sql_template".into(),
                pair_id: id,
            });
        }
    }
    Ok(out)
}

/// The project's eval questions paired with one prediction each, as evaluation items.
pub fn eval_items(project: &Project, predictions: &[Prediction]) -> Vec<EvalItem> {
    project
        .eval
        .iter()
        .zip(predictions)
        .enumerate()
        .map(|(i, (gold, pred))| EvalItem {
            index: i,
            db_id: "project".into(),
            gold_sql: gold.sql.clone(),
            pred_sql: pred.sql.clone(),
            question: gold.question.clone(),
        })
        .collect()
}

/// Judges `predictions` against the project's eval set and records the run in the store.
pub fn evaluate_model(
    project: &Project,
    store: &Store,
    model: &str,
    predictions: &[Prediction],
    profile: &Profile,
    options: &EvalOptions,
) -> Result<ModelEval, StoreError> {
    let items = eval_items(project, predictions);
    let mut databases = BTreeMap::new();
    databases.insert("project".to_string(), Arc::clone(&project.db));
    let eval_hash = project.input_hashes().eval;
    let config = json!({ "profile": profile, "threads": options.threads });
    let run_id =
        store.create_eval_run(model, profile.name(), Some(&eval_hash), &config.to_string())?;
    let options = EvalOptions {
        preview_rows: options.preview_rows.max(20),
        ..options.clone()
    };
    let mut results = evaluate_items(&items, &databases, profile, &options, &|_| {});
    if options.neighbours > 0 {
        // Built once per version of the database, beside the store.
        let store_dir = project
            .store_path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let dir = crate::pipeline::neighbours::folder(&store_dir, project.db.path());
        match crate::pipeline::neighbours::neighbours(
            project.db.path(),
            &dir,
            options.neighbours,
            project.db.limits(),
        ) {
            Ok(variants) => {
                crate::pipeline::neighbours::recheck(
                    &items,
                    &mut results,
                    "project",
                    &variants,
                    profile,
                    &options,
                );
            }
            Err(e) => {
                return Err(StoreError::Invalid(format!(
                    "the neighbour databases could not be built: {e}"
                )));
            }
        }
    }

    let mut by_concept: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_table: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut cases = Vec::with_capacity(results.len());
    let mut rows = Vec::with_capacity(results.len());
    for r in results {
        let gold = &project.eval[r.index];
        let pred = &predictions[r.index];
        if let Ok(a) = analyze(&gold.sql, Some(&project.schema)) {
            for c in a.concepts.keys() {
                let e = by_concept.entry(c.name().to_string()).or_default();
                e.0 += 1;
                e.1 += r.verdict.correct as usize;
            }
            for t in &a.tables {
                let e = by_table.entry(t.clone()).or_default();
                e.0 += 1;
                e.1 += r.verdict.correct as usize;
            }
        }
        rows.push(NewEvalCase {
            position: r.index as i64,
            question: gold.question.clone(),
            gold_sql: gold.sql.clone(),
            pred_sql: pred.sql.clone().ok(),
            raw_reply: pred.raw.clone(),
            correct: r.verdict.correct,
            reason: r.verdict.reason.as_ref().map(|x| x.kind().to_string()),
            hardness: r.hardness.map(|h| h.name().to_string()),
            detail_json: Some(
                json!({
                    "verdict": r.verdict,
                    "reason": r.verdict.reason.as_ref().map(|x| x.describe()),
                    "gold_preview": r.gold_preview,
                    "pred_preview": r.pred_preview,
                    "prediction_error": pred.sql.as_ref().err(),
                })
                .to_string(),
            ),
        });
        cases.push(CaseReport {
            position: r.index,
            question: gold.question.clone(),
            gold_sql: gold.sql.clone(),
            pred_sql: pred.sql.clone().ok(),
            raw_reply: pred.raw.clone(),
            result: r,
            judge: None,
        });
    }
    store.add_eval_cases(run_id, &rows)?;
    let results: Vec<ItemResult> = cases.iter().map(|c| c.result.clone()).collect();
    let summary = Summary::of(&results);
    let leakage = leakage(&project.eval, store, SqlDialect::of(&project.schema))?;
    store.finish_eval_run(
        run_id,
        crate::store::RunStatus::Completed,
        Some(
            &json!({
                "accuracy": summary.accuracy(),
                "accuracy_ci": summary.score().ci(),
                "summary": summary,
                "by_concept": by_concept,
                "by_table": by_table,
                "leakage": leakage.len(),
            })
            .to_string(),
        ),
    )?;
    Ok(ModelEval {
        eval_run_id: run_id,
        model: model.to_string(),
        profile: profile.name().to_string(),
        accuracy_ci: summary.score().ci(),
        summary,
        cases,
        by_concept,
        by_table,
        leakage,
        samples: None,
        audit: Vec::new(),
    })
}

/// A case whose verdict changed between two evaluation runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flip {
    pub position: i64,
    pub question: String,
    pub before: bool,
    pub after: bool,
    pub reason_after: Option<String>,
}

/// The cases that flipped between two runs (matched by question; positions may differ).
pub fn diff_runs(store: &Store, a: i64, b: i64) -> Result<Vec<Flip>, StoreError> {
    let before: BTreeMap<String, bool> = store
        .eval_cases(a)?
        .into_iter()
        .map(|c| (c.question, c.correct))
        .collect();
    let mut out = Vec::new();
    for c in store.eval_cases(b)? {
        if let Some(&was) = before.get(&c.question)
            && was != c.correct
        {
            out.push(Flip {
                position: c.position,
                question: c.question,
                before: was,
                after: c.correct,
                reason_after: c.reason,
            });
        }
    }
    Ok(out)
}

/// Run `a` against run `b`, question by question, on the questions both have (matched by
/// question text, as [`diff_runs`] matches); `None` when they share none, as runs of
/// different eval sets do.
pub fn paired_test(store: &Store, a: i64, b: i64) -> Result<Option<PairedTest>, StoreError> {
    let first: BTreeMap<String, bool> = store
        .eval_cases(a)?
        .into_iter()
        .map(|c| (c.question, c.correct))
        .collect();
    let second: BTreeMap<String, bool> = store
        .eval_cases(b)?
        .into_iter()
        .map(|c| (c.question, c.correct))
        .collect();
    let test = PairedTest::of(
        first
            .iter()
            .filter_map(|(q, &x)| second.get(q).map(|&y| (x, y))),
    );
    Ok((test.shared > 0).then_some(test))
}

/// A result as text for a prompt, like pandas' `to_string(index=False)`.
pub fn preview_text(p: &Preview) -> String {
    let mut s = p.columns.join("  ");
    for r in &p.rows {
        s.push('\n');
        let cells: Vec<String> = r.iter().map(|v| v.display()).collect();
        s.push_str(&cells.join("  "));
    }
    if p.total_rows > p.rows.len() {
        s.push_str(&format!("\n... ({} rows in all)", p.total_rows));
    }
    s
}

/// Cases worth a judge's opinion: both queries ran, the results differ.
pub fn mismatches(eval: &ModelEval) -> Vec<usize> {
    eval.cases
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            !c.result.verdict.correct
                && c.result.gold_preview.is_some()
                && c.result.pred_preview.is_some()
        })
        .map(|(i, _)| i)
        .collect()
}

/// Records judge opinions beside the verdicts (in the store and the report).
pub fn apply_judge(
    store: &Store,
    eval: &mut ModelEval,
    opinions: Vec<(usize, Json)>,
) -> Result<(), StoreError> {
    for (i, opinion) in opinions {
        let Some(case) = eval.cases.get_mut(i) else {
            continue;
        };
        store.set_eval_case_judge(eval.eval_run_id, case.position as i64, &opinion.to_string())?;
        case.judge = Some(opinion);
    }
    Ok(())
}

fn rows_json(p: &Option<Preview>) -> Json {
    match p {
        None => Json::Null,
        Some(p) => Json::Array(
            p.rows
                .iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    for (c, v) in p.columns.iter().zip(r) {
                        o.insert(c.clone(), serde_json::to_value(v).unwrap_or(Json::Null));
                    }
                    Json::Object(o)
                })
                .collect(),
        ),
    }
}

/// Writes the reports into `dir`: the original's `inference_results.json`,
/// `analysis_results_with_data.json` and `analysis_report.md`, and lode's `report.json` and
/// `report.md`. Returns the paths written.
pub fn write_reports(dir: &Path, eval: &ModelEval) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: String| -> std::io::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
        Ok(())
    };
    // The original's shapes.
    let inference: Vec<Json> = eval
        .cases
        .iter()
        .map(|c| {
            json!({
                "question": c.question,
                "gold_query": c.gold_sql,
                "generated_query": c.raw_reply.clone().or(c.pred_sql.clone()).unwrap_or_default(),
            })
        })
        .collect();
    write(
        "inference_results.json",
        serde_json::to_string_pretty(&inference).map_err(std::io::Error::other)?,
    )?;
    let mut execution_errors = 0;
    let results: Vec<Json> = eval
        .cases
        .iter()
        .map(|c| {
            let v = &c.result.verdict;
            let failed = matches!(
                v.reason.as_ref().map(|r| r.kind()),
                Some("pred_error" | "gold_error" | "timeout" | "rejected" | "no_prediction")
            );
            if failed {
                execution_errors += 1;
                json!({
                    "question": c.question, "gold_query": c.gold_sql,
                    "generated_query": c.pred_sql.clone().unwrap_or_default(),
                    "status": "error", "error": v.reason.as_ref().map(|r| r.describe()),
                    "equivalent": false, "confidence": 0.0,
                    "explanation": "One or both queries failed to execute",
                })
            } else {
                json!({
                    "question": c.question, "gold_query": c.gold_sql,
                    "generated_query": c.pred_sql.clone().unwrap_or_default(),
                    "status": "success", "equivalent": v.correct,
                    "confidence": 1.0,
                    "explanation": if v.correct {
                        format!("Results match under the {} profile", eval.profile)
                    } else {
                        v.reason.as_ref().map(|r| r.describe()).unwrap_or_default()
                    },
                    "differences": v.reason.as_ref().map(|r| vec![r.describe()]).unwrap_or_default(),
                    "gold_result_data": rows_json(&c.result.gold_preview),
                    "generated_result_data": rows_json(&c.result.pred_preview),
                })
            }
        })
        .collect();
    let total = eval.summary.total;
    let equivalent = eval.summary.correct;
    let rate = |n: usize| {
        if total == 0 {
            0.0
        } else {
            n as f64 / total as f64
        }
    };
    let avg_conf = if total == 0 {
        0.0
    } else {
        (total - execution_errors) as f64 / total as f64
    };
    write(
        "analysis_results_with_data.json",
        serde_json::to_string_pretty(&json!({
            "results": results,
            "stats": {
                "total": total,
                "equivalent": equivalent,
                "non_equivalent": total - equivalent - execution_errors.min(total - equivalent),
                "execution_errors": execution_errors,
                "average_confidence": avg_conf,
                "equivalence_rate": rate(equivalent),
            }
        }))
        .unwrap_or_default(),
    )?;
    let mut md = String::new();
    md.push_str("# SQL Query Evaluation Report\n\n## Summary\n\n");
    md.push_str(&format!("- Total test cases: {total}\n"));
    md.push_str(&format!(
        "- Functionally equivalent: {equivalent} ({:.1}%)\n",
        rate(equivalent) * 100.0
    ));
    let non_eq = total - equivalent - execution_errors.min(total - equivalent);
    md.push_str(&format!(
        "- Non-equivalent: {non_eq} ({:.1}%)\n",
        rate(non_eq) * 100.0
    ));
    md.push_str(&format!("- Execution errors: {execution_errors}\n"));
    md.push_str(&format!(
        "- Average confidence: {avg_conf:.2}\n\n## Detailed Results\n\n"
    ));
    for (i, c) in eval.cases.iter().enumerate() {
        let v = &c.result.verdict;
        md.push_str(&format!("### Test Case {}\n\n", i + 1));
        md.push_str(&format!("**Question:** {}\n\n", c.question));
        md.push_str(&format!("**Gold Query:**\n```sql\n{}\n```\n\n", c.gold_sql));
        md.push_str(&format!(
            "**Generated Query:**\n```sql\n{}\n```\n\n",
            c.pred_sql.clone().unwrap_or_default()
        ));
        let executed = !matches!(
            v.reason.as_ref().map(|r| r.kind()),
            Some("pred_error" | "gold_error" | "timeout" | "rejected" | "no_prediction")
        );
        md.push_str(&format!(
            "**Status:** {}\n\n**Equivalent:** {}\n\n**Confidence:** {:.2}\n\n",
            if executed { "success" } else { "error" },
            v.correct,
            if executed { 1.0 } else { 0.0 }
        ));
        let explanation = v
            .reason
            .as_ref()
            .map_or("Results match".to_string(), |r| r.describe());
        md.push_str(&format!("**Explanation:** {explanation}\n\n"));
    }
    write("analysis_report.md", md)?;
    // lode's own.
    write(
        "report.json",
        serde_json::to_string_pretty(eval).map_err(std::io::Error::other)?,
    )?;
    write("report.md", lode_markdown(eval))?;
    Ok(written)
}

fn preview_table(p: &Option<Preview>) -> String {
    let Some(p) = p else {
        return "_no result_\n".into();
    };
    let mut s = format!("| {} |\n", p.columns.join(" | "));
    s.push_str(&format!("|{}\n", "---|".repeat(p.columns.len().max(1))));
    for r in p.rows.iter().take(8) {
        let cells: Vec<String> = r.iter().map(|v| v.display().replace('|', "\\|")).collect();
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if p.total_rows > 8 {
        s.push_str(&format!("\n_{} rows in all_\n", p.total_rows));
    }
    s
}

/// The gold audit's findings, beside the score: a pair whose gold SQL is unfit scores wrong
/// (or right) for reasons that are not the model's.
fn audit_markdown(found: &[Finding]) -> String {
    if found.is_empty() {
        return "Gold audit: no findings in the eval set's gold SQL.\n\n".into();
    }
    let mut md = format!(
        "## Gold audit\n\n{} in the eval set's gold SQL (`lode audit` lists them too); the \
         verdicts of these pairs may be the gold's fault, not the model's:\n\n",
        match found.len() {
            1 => "1 finding".to_string(),
            n => format!("{n} findings"),
        }
    );
    for f in found {
        md.push_str(&format!(
            "- #{} `{}` ({}) {}: {} Fix: {}\n",
            f.position,
            f.kind.name(),
            f.location(),
            f.question,
            f.reason,
            f.fix
        ));
    }
    md.push('\n');
    md
}

fn lode_markdown(eval: &ModelEval) -> String {
    let s = &eval.summary;
    let mut md = format!(
        "# Evaluation of `{}` (run {}, profile `{}`)\n\nExecution accuracy: **{}**\n\n",
        eval.model,
        eval.eval_run_id,
        eval.profile,
        s.score(),
    );
    if let Some(samples) = &eval.samples {
        md.push_str(&format!("```\n{}```\n\n", samples.describe()));
    }
    let table = |title: &str, rows: &BTreeMap<String, (usize, usize)>| -> String {
        let mut t = format!(
            "## By {title}\n\n| {title} | pairs | correct | accuracy |\n|---|---|---|---|\n"
        );
        for (k, (n, c)) in rows {
            t.push_str(&format!(
                "| {k} | {n} | {c} | {:.1}% |\n",
                if *n == 0 {
                    0.0
                } else {
                    *c as f64 * 100.0 / *n as f64
                }
            ));
        }
        t.push('\n');
        t
    };
    md.push_str(&audit_markdown(&eval.audit));
    md.push_str(&table("hardness", &s.by_hardness));
    md.push_str(&table("concept", &eval.by_concept));
    md.push_str(&table("table", &eval.by_table));
    if !s.reasons.is_empty() {
        md.push_str("## Why predictions were wrong\n\n");
        for (k, n) in &s.reasons {
            md.push_str(&format!("- {k}: {n}\n"));
        }
        md.push('\n');
    }
    if !eval.leakage.is_empty() {
        md.push_str("## Leakage warning\n\nThese eval questions also appear in the training pairs, so their score measures memorization:\n\n");
        for l in &eval.leakage {
            md.push_str(&format!(
                "- #{} {} (same {} as pair {})\n",
                l.position + 1,
                l.question,
                l.kind.replace('_', " "),
                l.pair_id
            ));
        }
        md.push('\n');
    }
    let failed: Vec<&CaseReport> = eval
        .cases
        .iter()
        .filter(|c| !c.result.verdict.correct)
        .collect();
    if !failed.is_empty() {
        md.push_str("## Failed cases\n\n");
        for c in failed {
            let why = c
                .result
                .verdict
                .reason
                .as_ref()
                .map_or(String::new(), |r| r.describe());
            md.push_str(&format!(
                "### #{} {}\n\n{why}\n\n",
                c.position + 1,
                c.question
            ));
            md.push_str(&format!(
                "```sql\n-- gold\n{}\n-- predicted\n{}\n```\n\n",
                c.gold_sql,
                c.pred_sql.clone().unwrap_or_else(|| "(none)".into())
            ));
            if let Some(j) = &c.judge {
                md.push_str(&format!(
                    "LLM judge (advisory, the verdict stands): equivalent = {}, confidence = {}; {}\n\n",
                    j["equivalent"], j["confidence"], j["explanation"].as_str().or(j["error"].as_str()).unwrap_or("")
                ));
            }
            md.push_str("Gold rows:\n\n");
            md.push_str(&preview_table(&c.result.gold_preview));
            md.push_str("\nPredicted rows:\n\n");
            md.push_str(&preview_table(&c.result.pred_preview));
            md.push('\n');
        }
    }
    md
}

/// The distinct questions of a run whose verdicts changed, for printing.
pub fn describe_flips(flips: &[Flip]) -> String {
    let fixed: BTreeSet<_> = flips
        .iter()
        .filter(|f| f.after)
        .map(|f| f.position)
        .collect();
    let mut s = format!(
        "{} flipped: {} now right, {} now wrong\n",
        flips.len(),
        fixed.len(),
        flips.len() - fixed.len()
    );
    for f in flips {
        s.push_str(&format!(
            "  {} #{} {}{}\n",
            if f.after { "+" } else { "-" },
            f.position + 1,
            f.question,
            f.reason_after
                .as_ref()
                .map_or(String::new(), |r| format!("  ({r})"))
        ));
    }
    s
}
