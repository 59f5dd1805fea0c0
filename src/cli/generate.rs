//! `lode generate`: a generation run with a progress bar and the per-generator summary.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use super::globals::Globals;
use super::output::EventView;
use lode_core::pipeline::generate::{GenerateError, GenerateOptions};
use lode_core::store::{RunKind, RunStatus, Store};
use lode_core::tasks::CancellationToken;
use lode_core::tasks::TaskError;
use lode_core::tasks::generate::{self, GenerateInput};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Start a new run even if the last one did not finish (the default resumes it).
    #[arg(long)]
    pub new: bool,
    /// Resume this run.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<i64>,
    /// Only these gold pairs (1-based positions, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub gold: Vec<usize>,
}

pub fn run(globals: &Globals, args: &GenerateArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, snapshot) = project.open_store()?;
    let store = Arc::new(store);
    if let Some(bad) = args.gold.iter().find(|&&g| g == 0) {
        anyhow::bail!(
            "--gold {bad}: the gold set has pairs 1 to {}",
            project.gold.len()
        );
    }
    let new_run = args.new || (args.resume.is_none() && !resume_failed_run(&store)?);
    let input = GenerateInput {
        model: globals.model_request(),
        options: GenerateOptions {
            resume: args.resume,
            new_run,
            only_gold: args.gold.iter().map(|g| g - 1).collect(),
        },
        snapshot: Some(snapshot),
    };
    let started = Instant::now();
    let view = EventView::new();
    let rt = lode_core::tasks::runtime()?;
    let cancel = CancellationToken::new();
    let watch = cancel.clone();
    let outcome = rt.block_on(async {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                watch.cancel();
            }
        });
        generate::run(&project, &store, &input, &view.reporter(), cancel).await
    });
    view.finish();
    let outcome = match outcome {
        Err(TaskError::Generate(GenerateError::RunFailed { run_id, reason })) => {
            eprintln!("error: generation run {run_id} failed: {reason}");
            eprintln!(
                "  the pairs it made are kept; fix the cause (`lode llm check` tests the \
                 profile) and run `lode generate` to resume run {run_id}, or \
                 `lode generate --new` to start over"
            );
            return Ok(1);
        }
        other => other?,
    };
    let s = &outcome.summary;
    println!(
        "{} in {:.1} s",
        outcome.headline(),
        started.elapsed().as_secs_f64()
    );
    if s.skipped_existing > 0 {
        println!(
            "{} pairs were already stored by the interrupted run",
            s.skipped_existing
        );
    }
    print!("{}", s.table());
    println!("{}", s.diversity.line());
    let t = s.totals();
    if t.call_failures > 0 {
        println!(
            "{} LLM calls failed (their causes are stored with the run)",
            t.call_failures
        );
    }
    if let Some(calls) = outcome.calls.describe() {
        println!("{calls}");
    }
    println!("review them with `lode review list --run {}`", s.run_id);
    Ok(0)
}

/// When the newest generation run failed, whether to resume it (a plain `lode generate`
/// does): asked at a terminal, said otherwise.
fn resume_failed_run(store: &Store) -> Result<bool> {
    let Some(last) = store.latest_run(RunKind::Generate)? else {
        return Ok(true);
    };
    if last.status != RunStatus::Failed {
        return Ok(true);
    }
    let reason = last.error.as_deref().unwrap_or("no reason was recorded");
    if !super::globals::terminal_attached() {
        eprintln!(
            "resuming generation run {} (it failed: {reason}); `lode generate --new` starts \
             over instead",
            last.id
        );
        return Ok(true);
    }
    eprintln!("generation run {} failed: {reason}", last.id);
    eprint!("resume it (the pairs it made are kept)? [Y/n] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(!matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "n" | "no"
    ))
}
