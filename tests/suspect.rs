//! The agreement check in the pipeline: on the demo with the offline rules backend, a pair
//! whose question says one direction and whose SQL orders the other ends `suspect` with the
//! reason in its notes, and `lode review accept --all-valid` leaves it out (saying so) until
//! `--include-suspect` is given. With `generate.agreement_check: false` the same pair is valid.

use std::path::Path;
use std::sync::Arc;

use lode_core::pipeline::generate::{self, NewQuestion};
use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::{NewRun, Pair, PairFilter, PairStatus, RunKind, Store};

const AGREEING: &str = "Which store opened earliest?";
const PLANTED: &str = "Which store opened most recently, and in which city?";

/// Adds the agreeing pair and the planted one to a new run; returns the run and its pairs.
fn add_pairs(project: &Project) -> (i64, Arc<Store>, Vec<Pair>) {
    let (store, snapshot) = project.open_store().unwrap();
    let store = Arc::new(store);
    let run_id = store
        .create_run(&NewRun {
            kind: RunKind::Generate,
            snapshot_id: Some(snapshot),
            profile: "rules".into(),
            config_json: "{}".into(),
        })
        .unwrap();
    let client = lode_core::tasks::model::profile_client(
        project,
        Some(Arc::clone(&store)),
        None,
        true,
        None,
    )
    .unwrap();
    let items = vec![
        NewQuestion {
            generator: "gap_fill".into(),
            question: AGREEING.into(),
            sql: Some("SELECT name FROM stores ORDER BY opened_on ASC LIMIT 1".into()),
            origin: "test:agreeing".into(),
        },
        NewQuestion {
            generator: "gap_fill".into(),
            question: PLANTED.into(),
            // Ascending: the earliest store, not the most recent one.
            sql: Some("SELECT name, city FROM stores ORDER BY opened_on ASC LIMIT 1".into()),
            origin: "test:planted".into(),
        },
    ];
    let rt = lode_core::tasks::runtime().unwrap();
    let n = rt
        .block_on(generate::add_questions(
            project,
            Arc::clone(&store),
            client,
            run_id,
            items,
        ))
        .unwrap();
    assert_eq!(n, 2);
    let pairs = store
        .pairs(&PairFilter {
            run_id: Some(run_id),
            ..Default::default()
        })
        .unwrap();
    (run_id, store, pairs)
}

fn find<'a>(pairs: &'a [Pair], question: &str) -> &'a Pair {
    pairs
        .iter()
        .find(|p| p.question == question)
        .unwrap_or_else(|| panic!("no pair `{question}` in {pairs:#?}"))
}

fn lode(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_disagreeing_pair_is_suspect_and_bulk_accept_leaves_it_out() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    assert!(project.config.generate.agreement_check, "on by default");
    let (run_id, store, pairs) = add_pairs(&project);

    let agreeing = find(&pairs, AGREEING);
    assert_eq!(agreeing.status, PairStatus::Valid, "{:?}", agreeing.notes);
    assert!(agreeing.notes.disagreement.is_empty());
    let planted = find(&pairs, PLANTED);
    assert_eq!(planted.status, PairStatus::Suspect);
    assert_eq!(
        planted.notes.disagreement,
        ["question says recently, SQL orders ascending"]
    );
    // The reason is what the pair view and `review show` print.
    assert!(
        planted
            .notes
            .lines()
            .contains(&("disagrees".into(), planted.notes.disagreement[0].clone()))
    );
    let (ok, out) = lode(dir.path(), &["review", "show", &planted.id.to_string()]);
    assert!(ok, "{out}");
    assert!(out.contains("suspect"), "{out}");
    assert!(
        out.contains("disagrees: question says recently, SQL orders ascending"),
        "{out}"
    );
    drop(store);

    let run = run_id.to_string();
    let (ok, out) = lode(
        dir.path(),
        &["review", "accept", "--all-valid", "--run", &run],
    );
    assert!(ok, "{out}");
    assert!(out.contains("accepted 1 pairs"), "{out}");
    assert!(out.contains("left out 1 suspect pair"), "{out}");
    assert!(out.contains("--include-suspect"), "{out}");
    let (store, _) = project.open_store().unwrap();
    assert_eq!(
        store.pair(agreeing.id).unwrap().status,
        PairStatus::Accepted
    );
    assert_eq!(store.pair(planted.id).unwrap().status, PairStatus::Suspect);
    let counts = store.count_pairs_by_status(Some(run_id)).unwrap();
    assert_eq!(counts.get("suspect"), Some(&1), "{counts:?}");

    let (ok, out) = lode(
        dir.path(),
        &[
            "review",
            "accept",
            "--all-valid",
            "--include-suspect",
            "--run",
            &run,
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("accepted 1 pairs"), "{out}");
    assert!(!out.contains("left out"), "{out}");
    assert_eq!(store.pair(planted.id).unwrap().status, PairStatus::Accepted);
}

#[test]
fn the_check_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let path = dir.path().join("config.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("generate:\n", "generate:\n  agreement_check: false\n", 1);
    assert!(text.contains("agreement_check: false"), "{text}");
    std::fs::write(&path, text).unwrap();
    let project = Project::load(&path).unwrap();
    assert!(project.warnings.is_empty(), "{:?}", project.warnings);
    let (_, _, pairs) = add_pairs(&project);
    let planted = find(&pairs, PLANTED);
    assert_eq!(planted.status, PairStatus::Valid);
    assert!(planted.notes.disagreement.is_empty());
}
