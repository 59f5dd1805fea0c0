//! What the offline memory model buys over the untuned offline baseline, on held-out Spider
//! questions. For each of several Spider dev databases a project is made the way `lode init`
//! makes one, with the database's first 15 dev questions as the gold set and the rest as the
//! held-out eval set; offline generation runs, the valid pairs are accepted, the memory
//! provider tunes, and `lode eval` scores both the untuned `rules` profile (which knows the
//! gold pairs and its schema templates) and the memory model (which knows the trained pairs).
//! The memory model also keeps the untuned engine's knowledge, as a tuned model keeps its base
//! model's; a third score, retrieval over the trained pairs alone (`--pred`), shows what the
//! memory knows by itself. Skips, saying so, when `../shared/data/spider_dev11` is
//! absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use lode_core::project::Project;
use lode_core::synth::retrieve::Retriever;

const GOLD_QUESTIONS: usize = 15;
const DATABASES: &[&str] = &[
    "concert_singer",
    "pets_1",
    "poker_player",
    "orchestra",
    "employee_hire_evaluation",
    "course_teach",
    "singer",
];

fn lode(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lode"))
        .args(["-C", dir.to_str().unwrap()])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lode {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// (correct, total) of a stored evaluation run, from its report, with the model it names.
fn score(project: &Path, run: u32) -> (u64, u64, String) {
    let path = project.join(format!("reports/eval-{run}/report.json"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (
        report["summary"]["correct"].as_u64().unwrap(),
        report["summary"]["total"].as_u64().unwrap(),
        report["model"].as_str().unwrap_or_default().to_string(),
    )
}

fn write_pairs(path: &Path, pairs: &[&serde_json::Value]) {
    let lines: String = pairs
        .iter()
        .map(|p| {
            serde_json::json!({"question": p["question"], "sql": p["query"]}).to_string() + "\n"
        })
        .collect();
    std::fs::write(path, lines).unwrap();
}

fn pct(c: u64, t: u64) -> f64 {
    100.0 * c as f64 / t.max(1) as f64
}

#[test]
fn the_memory_model_against_the_untuned_baseline_on_held_out_spider_questions() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/spider_dev11");
    if !data.join("dev.json").exists() {
        eprintln!(
            "skipped: {} is absent (the Spider dev subset this comparison runs on)",
            data.display()
        );
        return;
    }
    let dev: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("dev.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (mut rules_all, mut memory_all, mut alone_all, mut total_all) = (0, 0, 0, 0);
    println!(
        "{:<26} {:>5} {:>7} {:>16} {:>16} {:>16}",
        "database", "eval", "trained", "rules (untuned)", "memory (tuned)", "trained alone"
    );
    for db in DATABASES {
        let questions: Vec<&serde_json::Value> = dev.iter().filter(|q| q["db_id"] == *db).collect();
        assert!(questions.len() > GOLD_QUESTIONS, "{db}");
        let gold = tmp.path().join(format!("{db}_gold.jsonl"));
        let eval = tmp.path().join(format!("{db}_eval.jsonl"));
        write_pairs(&gold, &questions[..GOLD_QUESTIONS]);
        write_pairs(&eval, &questions[GOLD_QUESTIONS..]);
        let project = tmp.path().join(db);
        let sqlite = data.join(format!("database/{db}/{db}.sqlite"));
        // `lode init` checks the sets and says which gold queries return no rows; it still
        // writes the project.
        lode(
            tmp.path(),
            &[
                "init",
                project.to_str().unwrap(),
                "--db",
                sqlite.to_str().unwrap(),
                "--gold",
                gold.to_str().unwrap(),
                "--eval",
                eval.to_str().unwrap(),
            ],
        );
        lode(&project, &["generate"]);
        let accepted = lode(&project, &["review", "accept", "--all-valid"]);
        lode(&project, &["tune", "--provider", "memory"]);
        let trained: u64 = accepted
            .split("accepted ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // Run 1: the untuned offline baseline; run 2: the tuned memory model.
        lode(&project, &["eval", "--profile", "rules"]);
        lode(&project, &["eval", "--job", "1"]);
        // Run 3: retrieval over the trained (accepted) pairs alone, as predictions: what the
        // memory knows without the base engine's knowledge.
        let loaded = Project::load(&project.join("config.yml")).unwrap();
        let store = rusqlite::Connection::open(project.join(".lode/lode.db")).unwrap();
        let trained_pairs: Vec<(String, String)> = store
            .prepare("SELECT question, sql FROM pairs WHERE status = 'accepted' ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let alone = Retriever::new(
            std::sync::Arc::clone(&loaded.db),
            &loaded.schema,
            &loaded.glossary,
            trained_pairs,
        );
        let predictions: String = loaded
            .eval
            .iter()
            .map(|p| {
                alone
                    .answer(&p.question)
                    .unwrap_or_default()
                    .replace('\n', " ")
                    + "\n"
            })
            .collect();
        let pred = tmp.path().join(format!("{db}_trained_alone.txt"));
        std::fs::write(&pred, predictions).unwrap();
        lode(
            &project,
            &[
                "eval",
                "--pred",
                pred.to_str().unwrap(),
                "--model",
                "trained-alone",
            ],
        );
        let (rules, total, rules_model) = score(&project, 1);
        let (memory, total_m, memory_model) = score(&project, 2);
        let (alone_score, _, _) = score(&project, 3);
        assert_eq!(rules_model, "rules:rules");
        assert!(memory_model.starts_with("memory:"), "{memory_model}");
        assert_eq!(total, total_m);
        assert_eq!(total as usize, questions.len() - GOLD_QUESTIONS);
        println!(
            "{db:<26} {total:>5} {trained:>7} {:>9} {:>5.1}% {:>9} {:>5.1}% {:>9} {:>5.1}%",
            format!("{rules}/{total}"),
            pct(rules, total),
            format!("{memory}/{total}"),
            pct(memory, total),
            format!("{alone_score}/{total}"),
            pct(alone_score, total),
        );
        rules_all += rules;
        memory_all += memory;
        alone_all += alone_score;
        total_all += total;
    }
    println!(
        "{:<26} {total_all:>5} {:>7} {:>9} {:>5.1}% {:>9} {:>5.1}% {:>9} {:>5.1}%",
        "overall",
        "",
        format!("{rules_all}/{total_all}"),
        pct(rules_all, total_all),
        format!("{memory_all}/{total_all}"),
        pct(memory_all, total_all),
        format!("{alone_all}/{total_all}"),
        pct(alone_all, total_all),
    );
    // What is honestly true: the tuned model keeps what the untuned engine knows (the gold
    // pairs and the schema-driven pairs) and adds the trained pairs; but those were generated
    // offline from the same schema, data and gold pairs, so they carry little the base does
    // not already have. The memory buys next to nothing here (the closing note of issue 17
    // gives the numbers); with pairs a person or an LLM wrote, it has something to add. What
    // must hold: the tuned model is never far behind its base, and it scores at least what
    // its memory alone does.
    println!(
        "the memory bought {} of {total_all} held-out questions over the untuned baseline",
        memory_all as i64 - rules_all as i64
    );
    // The trained pairs come first in retrieval and shift its word weights, so the tuned
    // model can lose a few questions its base answered (measured: 2-4 of 160, varying with
    // which duplicates a concurrent generation run keeps); it must keep nine tenths.
    assert!(
        memory_all * 10 >= rules_all * 9,
        "the memory model ({memory_all}/{total_all}) fell behind its own base, the untuned \
         engine ({rules_all}/{total_all})"
    );
    assert!(
        memory_all >= alone_all,
        "the memory model ({memory_all}/{total_all}) scored below its trained pairs alone \
         ({alone_all}/{total_all})"
    );
    assert!(
        memory_all > 0 && rules_all > 0,
        "a model scored nothing: rules {rules_all}, memory {memory_all}"
    );
}
