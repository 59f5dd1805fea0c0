//! Every face picks a stage's model the same way: after a successful tuning job, `lode eval`
//! with no flags, the TUI's evaluate key and `lode demo` all score the tuned model, name it,
//! and agree; an explicit `--profile` wins over the tuned model in the CLI and the TUI alike.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lode::tui::app::BgEvent;
use lode_core::project::Project;
use lode_core::tasks::StageEvent;
use lode_core::tasks::model::ModelRequest;

fn lode(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The accuracy the newest evaluation run stored, with its model id.
fn newest_eval(store: &lode_core::store::Store) -> (String, f64) {
    let run = store.eval_runs().unwrap().into_iter().next().unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(run.summary_json.as_deref().unwrap()).unwrap();
    (run.model, summary["accuracy"].as_f64().unwrap())
}

/// Starts the TUI's evaluation (ctrl-e) with `model` and waits for its last event.
fn evaluate_in_tui(dir: &Path, model: ModelRequest) -> String {
    let project = Project::load(&dir.join("config.yml")).unwrap();
    let (store, _) = project.open_store().unwrap();
    let mut app = lode::tui::build_app(Arc::new(project), Arc::new(store), model).unwrap();
    let cmds = app.handle_key(KeyEvent::new(KeyCode::Char('e'), KeyModifiers::CONTROL));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for cmd in cmds {
        lode::tui::perform(cmd, &app, &tx);
    }
    loop {
        let ev = rt
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(120), rx.recv()).await
            })
            .expect("the evaluation ended within 2 minutes")
            .unwrap();
        let end = matches!(
            ev,
            BgEvent::Stage(StageEvent::Finished { .. } | StageEvent::Failed { .. })
        );
        app.handle_bg(ev);
        if end {
            return app.message.clone();
        }
    }
}

#[test]
fn eval_after_tune_scores_the_tuned_model_in_every_face() {
    let dir = tempfile::tempdir().unwrap();
    // The demo runs generate, analyze, tune (memory provider) and evaluate.
    let demo = stdout(&lode(dir.path(), &["demo", "proj", "--no-tui"]));
    let proj = dir.path().join("proj");
    assert!(
        demo.contains("Evaluation: evaluation run 1 of tuned model memory:1 of job 1"),
        "{demo}"
    );
    // The RL reward scores the same answers with the same comparator: it agrees.
    assert!(
        demo.contains("Reward (lode reward): arctic reward")
            && demo.contains("matches agree with the evaluation"),
        "{demo}"
    );
    let project = Project::load(&proj.join("config.yml")).unwrap();
    let (store, _) = project.open_store().unwrap();
    let (demo_model, demo_accuracy) = newest_eval(&store);
    assert_eq!(demo_model, "memory:1");

    // `lode eval` with no flags: the tuned model, named.
    let cli = stdout(&lode(&proj, &["eval"]));
    assert!(
        cli.contains("model: tuned model memory:1 of job 1"),
        "{cli}"
    );
    assert_eq!(newest_eval(&store), (demo_model.clone(), demo_accuracy));

    // The TUI's evaluate: the same model, the same score.
    let message = evaluate_in_tui(&proj, ModelRequest::default_model());
    assert!(
        message.contains("of tuned model memory:1 of job 1")
            && message.contains(&format!("{:.1}%", demo_accuracy * 100.0)),
        "{message}"
    );
    assert_eq!(newest_eval(&store), (demo_model, demo_accuracy));
    assert_eq!(store.eval_runs().unwrap().len(), 3);
}

#[test]
fn an_explicit_profile_wins_over_the_tuned_model_in_every_face() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&lode(dir.path(), &["demo", "proj", "--no-tui"]));
    let proj = dir.path().join("proj");
    let cli = stdout(&lode(&proj, &["--profile", "rules", "eval"]));
    assert!(cli.contains("model: profile rules (rules:rules)"), "{cli}");
    let message = evaluate_in_tui(&proj, ModelRequest::profile("rules"));
    assert!(
        message.contains("of profile rules (rules:rules)"),
        "{message}"
    );
    let project = Project::load(&proj.join("config.yml")).unwrap();
    let (store, _) = project.open_store().unwrap();
    assert_eq!(newest_eval(&store).0, "rules:rules");
}
