//! The offline rules backend on the demo project: every pair it yields executes and returns
//! rows, its wording follows its SQL, and it answers the generators' structured tasks.

use std::collections::BTreeSet;

use lode_core::llm::{Backend, LlmRequest, Message, OutputSchema, Task};
use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::rules::{RulesEngine, count_by_how};

fn demo() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    (dir, project)
}

#[test]
fn every_pair_from_every_generator_executes() {
    let (_dir, project) = demo();
    let engine = RulesEngine::new(&project, 7);
    let mut all = Vec::new();
    for generator in [
        "pattern",
        "variation",
        "decomposer",
        "comparative",
        "edge_case",
        "granular",
        "paraphrase",
    ] {
        for gold in &project.gold {
            all.extend(engine.similar(generator, gold, 3));
        }
    }
    all.extend(engine.schema_pairs());
    assert!(
        all.len() >= 150,
        "only {} pairs: {:?}",
        all.len(),
        count_by_how(&all)
    );
    for p in &all {
        let r = project
            .db
            .query(&p.sql)
            .unwrap_or_else(|e| panic!("{} ({}) fails: {e}\n{}", p.question, p.how, p.sql));
        assert!(!r.rows.is_empty(), "{}: no rows\n{}", p.question, p.sql);
    }
    let kinds: BTreeSet<String> = count_by_how(&all).into_keys().collect();
    for k in [
        "value",
        "number",
        "direction",
        "schema",
        "part",
        "paraphrase",
    ] {
        assert!(kinds.contains(k), "no {k} pairs: {kinds:?}");
    }
}

#[test]
fn mutated_wording_follows_the_sql() {
    let (_dir, project) = demo();
    let engine = RulesEngine::new(&project, 7);
    let gold = project
        .gold
        .iter()
        .find(|g| g.question.contains("five best-selling"))
        .expect("the demo has a top-5 question");
    let pairs = engine.similar("variation", gold, 10);
    let flipped = pairs
        .iter()
        .find(|p| p.how == "direction")
        .expect("a direction flip");
    assert!(
        flipped.question.contains("worst-selling"),
        "{}",
        flipped.question
    );
    assert!(flipped.sql.contains("ASC"), "{}", flipped.sql);
    let number = pairs
        .iter()
        .find(|p| p.how == "number")
        .expect("a number change");
    let n = ["three", "ten", "six", "two"]
        .into_iter()
        .find(|w| number.question.contains(w))
        .unwrap_or_else(|| panic!("number word missing: {}", number.question));
    let digits = match n {
        "three" => "3",
        "ten" => "10",
        "six" => "6",
        _ => "2",
    };
    assert!(
        number.sql.contains(&format!("LIMIT {digits}")),
        "{} / {}",
        number.question,
        number.sql
    );
}

#[test]
fn the_backend_answers_structured_tasks_and_remembers_its_sql() {
    let (_dir, project) = demo();
    let backend = lode_core::rules::RulesBackend::new(&project, 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gold = &project.gold[3];
    let req = LlmRequest::new("pattern", vec![Message::user("(prompt)")])
        .with_schema(OutputSchema::new(
            "pattern",
            &[("q1", "str"), ("q2", "str")],
        ))
        .with_task(Task::SimilarQuestions {
            generator: "pattern".into(),
            question: gold.question.clone(),
            sql: gold.sql.clone(),
            count: 2,
            offset: 0,
        });
    let resp = rt.block_on(backend.complete(&req)).unwrap();
    let json = resp.json.unwrap();
    let q1 = json["q1"].as_str().unwrap().to_string();
    assert!(!q1.is_empty(), "{json}");
    // Asked for SQL for its own question, it gives the SQL it made.
    let req = LlmRequest::new("schema_to_sql", vec![Message::user("(prompt)")])
        .with_schema(OutputSchema::new("sql", &[("sql", "str")]))
        .with_task(Task::QuestionToSql {
            question: q1.clone(),
        });
    let resp = rt.block_on(backend.complete(&req)).unwrap();
    let sql = resp.json.unwrap()["sql"].as_str().unwrap().to_string();
    assert!(project.db.query(&sql).is_ok(), "{sql}");
    assert_ne!(sql, gold.sql, "a variant, not the gold");
    // Free-form prompts are refused with a clear message.
    let req = LlmRequest::new("judge", vec![Message::user("anything")]);
    let err = rt.block_on(backend.complete(&req)).unwrap_err();
    assert!(err.to_string().contains("rules backend"), "{err}");
    // A misspelt column is repaired.
    let fixed = backend
        .engine()
        .debug("SELECT nme FROM stores", "no such column: nme")
        .expect("a fix");
    assert_eq!(fixed, "SELECT name FROM stores");
}
