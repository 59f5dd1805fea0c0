//! The generation pipeline: on the demo with the offline rules backend, and against a
//! scripted fake LLM server (the debugger fixing a query on its second attempt, a debugger
//! that never succeeds, a failing call, a duplicate, custom components, resume after kill).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lode_core::pipeline::generate::{self, GenerateOptions, GenerateSummary};
use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::sql::analyze::analyze;
use lode_core::store::{PairFilter, PairStatus, Store};
use lode_testkit::{FakeRequest, FakeResponse, FakeServer};
use serde_json::json;

fn demo_with(generate_yaml: &str, llm_yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let path = dir.path().join("config.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let base = text.split("\nllm:").next().unwrap().to_string();
    std::fs::write(&path, format!("{base}\n{llm_yaml}\n{generate_yaml}\n")).unwrap();
    (dir, path)
}

fn run(
    project: &Project,
    profile: Option<&str>,
    opts: &GenerateOptions,
) -> (GenerateSummary, Arc<Store>) {
    let (store, snapshot) = project.open_store().unwrap();
    let store = Arc::new(store);
    let client = lode_core::tasks::model::profile_client(
        project,
        Some(Arc::clone(&store)),
        profile,
        true,
        None,
    )
    .unwrap();
    let rt = lode_core::tasks::runtime().unwrap();
    let summary = rt
        .block_on(generate::run(
            project,
            Arc::clone(&store),
            client,
            snapshot,
            opts,
            Arc::new(|_| {}),
        ))
        .unwrap();
    (summary, store)
}

#[test]
fn the_demo_yields_150_distinct_valid_pairs_covering_the_gold_concepts() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let (summary, store) = run(&project, None, &GenerateOptions::default());
    let pairs = store
        .pairs(&PairFilter {
            run_id: Some(summary.run_id),
            statuses: vec![PairStatus::Valid, PairStatus::Fixed],
            ..Default::default()
        })
        .unwrap();
    let questions: std::collections::BTreeSet<String> = pairs
        .iter()
        .map(|p| lode_core::project::inputs::normalize_question(&p.question))
        .collect();
    assert!(
        pairs.len() >= 150,
        "{} valid pairs\n{}",
        pairs.len(),
        summary.table()
    );
    assert_eq!(questions.len(), pairs.len(), "valid pairs must be distinct");
    let mut generated = std::collections::BTreeSet::new();
    for p in &pairs {
        let r = project
            .db
            .query(&p.sql)
            .unwrap_or_else(|e| panic!("{}: {e}", p.sql));
        assert!(!r.rows.is_empty());
        generated.extend(
            analyze(&p.sql, Some(&project.schema))
                .unwrap()
                .concepts
                .into_keys(),
        );
    }
    for g in &project.gold {
        for c in analyze(&g.sql, Some(&project.schema))
            .unwrap()
            .concepts
            .keys()
        {
            assert!(
                generated.contains(c),
                "the gold set uses {c}, no generated pair does"
            );
        }
    }
    // Every valid pair has its validation history.
    assert!(store.validations(pairs[0].id).unwrap()[0].ok);
}

/// The scripted provider: answers by the step (system role) and the question in the prompt.
fn scripted(r: &FakeRequest) -> FakeResponse {
    let body = r.json();
    let system = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let user = body["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let chat = |v: serde_json::Value| FakeResponse::chat(&v.to_string());
    if system.contains("replicating question patterns") {
        if user.contains("Which customers have more than 15 completed orders?") {
            return FakeResponse::json(
                400,
                json!({"error": {"message": "prompt too long for this model"}}),
            );
        }
        return chat(json!({"q1": "QA: store names please", "q2": "QB: something impossible"}));
    }
    if system.contains("meaningful variations") {
        return chat(json!({"q1": "QC: cakes by unit price again", "q2": "QD: cities of stores"}));
    }
    if system.contains("seasonal") {
        return chat(json!({"q1": "QX: how many stores"}));
    }
    if system.contains("precise SQL queries") {
        let sql = if user.contains("QA:") {
            "SELECT nme FROM stores"
        } else if user.contains("QB:") {
            "SELECT impossible FROM stores"
        } else if user.contains("QC:") {
            // The demo's second gold query, written slightly differently.
            "select name, flavor, unit_price from products where category = 'Cake' and active = 1 order by unit_price desc"
        } else if user.contains("QD:") {
            "SELECT DISTINCT city FROM stores"
        } else if user.contains("QX:") {
            "SELECT COUNT(*) FROM stores"
        } else {
            "SELECT 1"
        };
        return chat(json!({"sql_query": sql}));
    }
    if system.contains("debugging expert") {
        let sql = if user.contains("QA:") {
            "SELECT name FROM stores"
        } else if user.contains("QX:") {
            "SELECT name FROM stores ORDER BY name"
        } else {
            // Never fixes QB: another wrong column each time.
            if user.contains("still_wrong_1") {
                "SELECT still_wrong_2 FROM stores"
            } else {
                "SELECT still_wrong_1 FROM stores"
            }
        };
        return chat(json!({"corrected_sql": sql}));
    }
    FakeResponse::json(400, json!({"error": "unexpected request"}))
}

fn openai_profile(url: &str) -> String {
    format!(
        "llm:\n  default: fake\n  profiles:\n    fake:\n      kind: openai\n      base_url: {url}/v1\n      model: fake\n      max_concurrency: 4\n      timeout_s: 5\n"
    )
}

#[test]
fn debugger_failures_duplicates_and_custom_components() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(FakeServer::start(scripted)).unwrap();
    let generate_yaml = "generate:\n  per_gold:\n    pattern: 1\n    variation: 1\n    decomposer: 0\n  debugger_attempts: 2\n  generators:\n    - name: seasonal\n      role: You write seasonal questions.\n      instruction: \"Write a seasonal question like: {question}\"\n      output: {q1: str}\n      fan_out: [q1]\n      count: 1\n  validators:\n    - name: at_least_two_rows\n      kind: rule\n      min_rows: 2\n";
    let (_dir, config) = demo_with(generate_yaml, &openai_profile(&server.url()));
    let project = Project::load(&config).unwrap();
    let opts = GenerateOptions {
        only_gold: vec![0, 4],
        ..Default::default()
    };
    let (summary, store) = rt.block_on(async {
        tokio::task::spawn_blocking(move || run(&project, None, &opts))
            .await
            .unwrap()
    });
    let pairs = store
        .pairs(&PairFilter {
            run_id: Some(summary.run_id),
            ..Default::default()
        })
        .unwrap();
    let find = |tag: &str| {
        pairs
            .iter()
            .find(|p| p.question.starts_with(tag))
            .unwrap_or_else(|| panic!("no {tag} pair in {pairs:#?}"))
    };

    // QA: fixed by the debugger on the second attempt.
    let qa = find("QA");
    assert_eq!(qa.status, PairStatus::Fixed);
    assert_eq!(qa.sql, "SELECT name FROM stores");
    let v = store.validations(qa.id).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].error_kind.as_deref(), Some("no_such_column"));
    assert!(v[1].ok);

    // QB: the debugger never succeeds: kept as failed, with every attempt.
    let qb = find("QB");
    assert_eq!(qb.status, PairStatus::Invalid);
    let v = store.validations(qb.id).unwrap();
    assert_eq!(v.len(), 3, "the first try and two debugger attempts");
    assert!(v.iter().all(|a| !a.ok));

    // QC: the same SQL template and result as a gold pair: a duplicate. QD is new.
    let qc = find("QC");
    assert_eq!(qc.status, PairStatus::Duplicate);
    // It says what it repeats: a gold pair, by number and question.
    let repeats = qc
        .notes
        .duplicate_text()
        .expect("a duplicate says what it repeats");
    assert!(repeats.starts_with("same as gold pair "), "{repeats}");
    assert_eq!(find("QD").status, PairStatus::Valid);

    // The custom generator took part; the custom rule validator failed its first SQL
    // (one row) and the debugger's second passed.
    let qx = find("QX");
    assert_eq!(qx.generator, "seasonal");
    assert_eq!(qx.status, PairStatus::Fixed);
    let v = store.validations(qx.id).unwrap();
    assert_eq!(v[0].error_kind.as_deref(), Some("rule"));
    assert!(v[0].error.as_deref().unwrap().contains("at_least_two_rows"));

    // The pattern call for gold pair 5 failed: recorded with its cause; the run went on.
    let failures = store.generation_failures(summary.run_id).unwrap();
    let failed = failures
        .iter()
        .find(|f| f.generator == "pattern")
        .expect("the failed call is recorded");
    assert!(failed.error.contains("prompt too long"), "{failed:?}");
    assert_eq!(summary.by_generator["pattern"].call_failures, 1);
    assert!(summary.by_generator["variation"].generated >= 4);
    let stats = store.llm_call_stats(None).unwrap();
    assert!(stats.failed >= 1);
}

fn lode(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lode"));
    c.current_dir(dir).args(args);
    c
}

/// Slow scripted answers, so a run can be killed in the middle.
fn slow(r: &FakeRequest) -> FakeResponse {
    let body = r.json();
    let system = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let user = body["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let delay = std::time::Duration::from_millis(60);
    let tag = format!(
        "{:x}",
        user.len() * 31 + user.bytes().map(|b| b as usize).sum::<usize>()
    );
    if system.contains("precise SQL queries") {
        return FakeResponse::chat(
            &json!({"sql_query": format!("SELECT name, '{tag}' FROM stores")}).to_string(),
        )
        .with_delay(delay);
    }
    FakeResponse::chat(
        &json!({"q1": format!("first {tag}?"), "q2": format!("second {tag}?")}).to_string(),
    )
    .with_delay(delay)
}

#[test]
fn a_killed_run_resumes_without_duplicates_or_repeated_calls() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(FakeServer::start(slow)).unwrap();
    let generate_yaml =
        "generate:\n  per_gold:\n    pattern: 1\n    variation: 1\n    decomposer: 0\n";
    let (dir, _) = demo_with(generate_yaml, &openai_profile(&server.url()));
    let db = dir.path().join(".lode/lode.db");

    // A reference: how many calls one uninterrupted run makes.
    let (ref_dir, _) = demo_with(generate_yaml, &openai_profile(&server.url()));
    let out = lode(ref_dir.path(), &["generate"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full_calls = server.count();
    let ref_store = Store::open(&ref_dir.path().join(".lode/lode.db")).unwrap();
    let full_pairs = ref_store
        .count_pairs_by_status(None)
        .unwrap()
        .values()
        .sum::<u64>();
    assert!(full_pairs >= 100, "{full_pairs}");

    // Kill a run once some pairs are stored.
    let before = server.count();
    let mut child = lode(dir.path(), &["generate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stored = 0;
    for _ in 0..400 {
        std::thread::sleep(std::time::Duration::from_millis(25));
        if db.exists()
            && let Ok(s) = Store::open(&db)
        {
            stored = s
                .count_pairs_by_status(None)
                .unwrap_or_default()
                .values()
                .sum::<u64>();
            if stored >= 10 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        stored >= 10 && stored < full_pairs,
        "killed with {stored} of {full_pairs} pairs stored"
    );
    let first_part = server.count() - before;

    // Rerun: it resumes the same run and finishes it.
    let out = lode(dir.path(), &["generate"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("resumed"), "{stdout}");
    let second_part = server.count() - before - first_part;
    let store = Store::open(&db).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1, "the rerun continued the same run");
    let pairs = store
        .count_pairs_by_status(None)
        .unwrap()
        .values()
        .sum::<u64>();
    assert_eq!(pairs, full_pairs, "no pair lost or stored twice");
    // Calls answered before the kill came from the cache; only the ones in flight (at most
    // the concurrency limit) were asked again.
    assert!(
        first_part + second_part <= full_calls + 4,
        "{first_part} + {second_part} calls, a full run makes {full_calls}"
    );
}

#[test]
fn a_prompt_that_cannot_be_filled_in_is_said_once_not_skipped_silently() {
    let generate_yaml = "generate:\n  per_gold:\n    pattern: 1\n  prompts:\n    llm_validator: v.txt\n  validators:\n    - name: exact\n      kind: llm\n      instruction: Check the SQL.\n";
    let (dir, _) = demo_with(
        generate_yaml,
        "llm:\n  default: rules\n  profiles:\n    rules:\n      kind: rules\n",
    );
    std::fs::write(dir.path().join("v.txt"), "Check this: {nope}\n").unwrap();
    let out = lode(dir.path(), &["generate", "--gold", "1,2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warning = "the validator exact prompt cannot be used";
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    assert!(stderr.contains("{nope}"), "{stderr}");
}
