//! `lode eval` on the demo project: predictions from a file are judged, inference failures
//! count, the run is stored, reports come in the original's shapes and ours, runs can be
//! diffed, and eval questions that leak into training pairs are flagged.

use std::path::Path;
use std::process::{Command, Output};

use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::{NewPair, NewRun, PairStatus, Store};

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

#[test]
fn predictions_are_judged_stored_reported_and_diffed() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let n = project.eval.len();
    // All right, except: #2 no SQL in the reply, #3 the original's error string, #4 wrong.
    let mut preds: Vec<serde_json::Value> = project
        .eval
        .iter()
        .map(|p| serde_json::json!({ "generated_query": format!("```sql\n{}\n```", p.sql) }))
        .collect();
    preds[1] = serde_json::json!({ "generated_query": "I don't know." });
    preds[2] = serde_json::json!({ "generated_query": "Error: 429 Too Many Requests" });
    preds[3] = serde_json::json!({ "generated_query": "SELECT 1" });
    std::fs::write(
        dir.path().join("inference_results.json"),
        serde_json::to_string(&preds).unwrap(),
    )
    .unwrap();
    let out = lode(
        dir.path(),
        &["eval", "--pred", "inference_results.json", "--model", "m1"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let want = format!("{:.3}", (n - 3) as f64 / n as f64);
    assert!(stdout.contains(&want), "accuracy {want} missing:\n{stdout}");
    assert!(stdout.contains("no_prediction 2"), "{stdout}");
    // 12 of 15 right: the Wilson interval is 54.8-93.0%.
    assert_eq!(n, 15);
    let headline = "80.0% (95% CI 54.8-93.0%, 12/15)";
    assert!(
        stdout.contains(&format!("execution accuracy: {headline}")),
        "{stdout}"
    );

    let reports = dir.path().join("reports/eval-1");
    let analysis: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reports.join("analysis_results_with_data.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(analysis["stats"]["total"], n);
    assert_eq!(analysis["stats"]["equivalent"], n - 3);
    assert_eq!(analysis["stats"]["execution_errors"], 2);
    assert_eq!(analysis["results"][0]["status"], "success");
    assert!(analysis["results"][0]["gold_result_data"].is_array());
    let inference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reports.join("inference_results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(inference.as_array().unwrap().len(), n);
    let md = std::fs::read_to_string(reports.join("analysis_report.md")).unwrap();
    assert!(md.starts_with("# SQL Query Evaluation Report"));
    assert!(md.contains(&format!("- Total test cases: {n}")));
    let ours = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(ours.contains("## By concept") && ours.contains("## Failed cases"));
    assert!(ours.contains("Gold rows:") && ours.contains("Predicted rows:"));
    assert!(ours.contains(&format!("Execution accuracy: **{headline}**")));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).unwrap())
            .unwrap();
    let ci = report["accuracy_ci"].as_array().unwrap();
    assert!((ci[0].as_f64().unwrap() - 0.548).abs() < 1e-3, "{ci:?}");
    assert!((ci[1].as_f64().unwrap() - 0.930).abs() < 1e-3, "{ci:?}");

    // A second run with #4 fixed: the diff names it.
    preds[3] = serde_json::json!({ "generated_query": project.eval[3].sql });
    std::fs::write(
        dir.path().join("inference_results.json"),
        serde_json::to_string(&preds).unwrap(),
    )
    .unwrap();
    let out = lode(
        dir.path(),
        &["eval", "--pred", "inference_results.json", "--model", "m2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lode(dir.path(), &["eval", "diff", "1", "2"]);
    let diff = text(&out.stdout);
    assert!(diff.starts_with("1 flipped: 1 now right"), "{diff}");
    assert!(
        diff.contains(&format!("+ #4 {}", project.eval[3].question)),
        "{diff}"
    );
    // One fix in 15 decides nothing.
    assert!(
        diff.contains(
            "A and B are not distinguishable on these 15 questions (p = 1.000; b = 0, c = 1)"
        ),
        "{diff}"
    );
    let out = lode(dir.path(), &["eval", "list"]);
    let list = text(&out.stdout);
    assert!(list.contains("m2"));
    assert!(list.contains(headline), "{list}");
    let out = lode(dir.path(), &["eval", "diff", "1", "99"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no evaluation run with id 99"));

    let store = Store::open(&project.store_path()).unwrap();
    let cases = store.eval_cases(1).unwrap();
    assert_eq!(cases.len(), n);
    assert_eq!(cases[2].reason.as_deref(), Some("no_prediction"));
    assert_eq!(
        cases[2].raw_reply.as_deref(),
        Some("Error: 429 Too Many Requests")
    );
}

#[test]
fn a_prediction_file_of_the_wrong_length_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    std::fs::write(dir.path().join("p.sql"), "SELECT 1\nSELECT 2\n").unwrap();
    let out = lode(dir.path(), &["eval", "--pred", "p.sql"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("p.sql: 2 predictions for an eval set of 15 questions"),
        "{err}"
    );
}

#[test]
fn eval_questions_found_in_training_pairs_are_leakage() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let (store, _) = project.open_store().unwrap();
    let run = store
        .create_run(&NewRun {
            kind: lode_core::store::RunKind::Generate,
            ..Default::default()
        })
        .unwrap();
    let e0 = &project.eval[0];
    let e5 = &project.eval[5];
    store
        .insert_pairs(
            run,
            &[
                NewPair {
                    origin_key: "a".into(),
                    generator: "pattern".into(),
                    question: format!("  {}  ", e0.question.to_uppercase()),
                    sql: "SELECT 1".into(),
                    status: Some(PairStatus::Valid),
                    ..Default::default()
                },
                NewPair {
                    origin_key: "b".into(),
                    generator: "variation".into(),
                    question: "something else entirely".into(),
                    sql: e5.sql.replace("2024", "2023"),
                    status: Some(PairStatus::Accepted),
                    ..Default::default()
                },
                NewPair {
                    origin_key: "c".into(),
                    generator: "variation".into(),
                    question: project.eval[7].question.clone(),
                    sql: "SELECT 1".into(),
                    status: Some(PairStatus::Rejected),
                    ..Default::default()
                },
            ],
        )
        .unwrap();
    let leaks = lode_core::pipeline::model_eval::leakage(
        &project.eval,
        &store,
        lode_core::sql::SqlDialect::of(&project.schema),
    )
    .unwrap();
    let kinds: Vec<(usize, &str)> = leaks
        .iter()
        .map(|l| (l.position, l.kind.as_str()))
        .collect();
    assert!(kinds.contains(&(0, "question")), "{kinds:?}");
    assert!(kinds.contains(&(5, "sql_template")), "{kinds:?}");
    assert!(
        !kinds.iter().any(|(p, _)| *p == 7),
        "rejected pairs are not trained on"
    );
}

#[test]
fn a_constant_answer_right_on_this_data_is_caught_by_neighbour_databases() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    // Every prediction is its gold query, except the first: the gold's own result written
    // out as constants, right on this database and on no other.
    let gold = &project.eval[0].sql;
    let rows = project.db.query(gold).unwrap().rows;
    assert!(!rows.is_empty());
    let constants = format!(
        "VALUES {}",
        rows.iter()
            .map(|r| format!(
                "({})",
                r.iter()
                    .map(|v| v.sql_literal())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut preds: Vec<String> = project
        .eval
        .iter()
        .map(|p| p.sql.replace('\n', " "))
        .collect();
    preds[0] = constants;
    std::fs::write(dir.path().join("p.sql"), preds.join("\n") + "\n").unwrap();
    let store = dir.path().join(".lode");
    let out = lode(dir.path(), &["eval", "--pred", "p.sql", "--model", "plain"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lode(
        dir.path(),
        &[
            "eval",
            "--pred",
            "p.sql",
            "--model",
            "checked",
            "--neighbours",
            "2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let verdict = |run: u32| -> Vec<(bool, Option<String>)> {
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("reports/eval-{run}/report.json")))
                .unwrap(),
        )
        .unwrap();
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["result"]["verdict"]["correct"].as_bool().unwrap(),
                    c["result"]["verdict"]["reason"]["kind"]
                        .as_str()
                        .map(String::from),
                )
            })
            .collect()
    };
    let plain = verdict(1);
    let checked = verdict(2);
    assert!(
        plain[0].0,
        "the constants are right on the original: {plain:?}"
    );
    assert_eq!(
        checked[0],
        (false, Some("right_by_accident".to_string())),
        "{checked:?}"
    );
    // Gold against itself stays right on every neighbour.
    assert_eq!(
        plain.iter().filter(|v| v.0).count() - 1,
        checked.iter().filter(|v| v.0).count(),
        "{plain:?}\n{checked:?}"
    );
    // The neighbours were built beside the store, not next to the user's database.
    assert!(store.join("neighbours").is_dir());
    let beside_db: Vec<_> = std::fs::read_dir(project.db.path().parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('n'))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sqlite"))
        .collect();
    assert!(beside_db.is_empty(), "{beside_db:?}");
}

/// Writes one prediction per eval question and evaluates them as `model`.
fn eval_predictions(dir: &Path, preds: &[String], model: &str) {
    std::fs::write(dir.join("p.json"), serde_json::to_string(preds).unwrap()).unwrap();
    let out = lode(dir, &["eval", "--pred", "p.json", "--model", model]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn diff_says_which_run_is_better_and_refuses_runs_of_different_eval_sets() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let n = project.eval.len();
    // Run 1 gets 3 right, run 2 gets 13: ten questions only B answers, none only A does.
    let gold: Vec<String> = project.eval.iter().map(|p| p.sql.clone()).collect();
    let weak: Vec<String> = (0..n)
        .map(|i| {
            if i < 3 {
                gold[i].clone()
            } else {
                "SELECT 1".into()
            }
        })
        .collect();
    let strong: Vec<String> = (0..n)
        .map(|i| {
            if i < 13 {
                gold[i].clone()
            } else {
                "SELECT 1".into()
            }
        })
        .collect();
    eval_predictions(dir.path(), &weak, "weak");
    eval_predictions(dir.path(), &strong, "strong");

    let out = lode(dir.path(), &["eval", "diff", "1", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.contains("(A = run 1 weak, B = run 2 strong)")
            && diff.contains("b = 0 (A right, B wrong), c = 10 (A wrong, B right)"),
        "{diff}"
    );
    // p = 2 / 2^10
    assert!(
        diff.contains("B is better than A (p = 0.002; b = 0, c = 10)"),
        "{diff}"
    );
    let out = lode(dir.path(), &["eval", "diff", "2", "1"]);
    let diff = text(&out.stdout);
    assert!(
        diff.contains("B is worse than A (p = 0.002; b = 10, c = 0)"),
        "{diff}"
    );

    // A run of another eval set shares no question with these.
    let store = Store::open(&project.store_path()).unwrap();
    let other = store.create_eval_run("other", "lode", None, "{}").unwrap();
    store
        .add_eval_cases(
            other,
            &[lode_core::store::NewEvalCase {
                position: 0,
                question: "How many moons has Jupiter?".into(),
                gold_sql: "SELECT 95".into(),
                pred_sql: Some("SELECT 95".into()),
                raw_reply: None,
                correct: true,
                reason: None,
                hardness: None,
                detail_json: None,
            }],
        )
        .unwrap();
    drop(store);
    let out = lode(dir.path(), &["eval", "diff", "1", &other.to_string()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("runs 1 and {other} share no eval question")),
        "{err}"
    );
}
