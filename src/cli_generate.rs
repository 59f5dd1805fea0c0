//! `lode generate`: a generation run with progress bars and the per-generator summary.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{Cli, GenerateArgs};
use crate::pipeline::generate::{self, GenerateOptions, GenerateSummary};
use crate::project::Project;
use crate::store::Store;

/// Runs generation on a loaded project; shared by `lode generate` and `lode demo`.
pub fn run_generation(
    project: &Project,
    store: &Arc<Store>,
    snapshot: i64,
    profile: Option<&str>,
    use_cache: bool,
    opts: &GenerateOptions,
) -> Result<GenerateSummary> {
    let client =
        crate::pipeline::llm_client(project, Some(Arc::clone(store)), profile, use_cache, None)?;
    let bar = ProgressBar::new(0);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("generating");
    let pairs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let b = bar.clone();
    let p = Arc::clone(&pairs);
    let progress: generate::Progress = Arc::new(move |stage, done, total| match stage {
        "questions" => {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
        "pairs" => {
            let n = p.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            b.set_message(format!("{n} pairs"));
        }
        "dedup" => b.set_prefix("dedup"),
        _ => {}
    });
    let rt = crate::pipeline::runtime()?;
    let cancel = client.cancel_token();
    let summary = rt.block_on(async {
        tokio::select! {
            r = generate::run(project, Arc::clone(store), Arc::clone(&client), snapshot, opts, progress) => r,
            _ = tokio::signal::ctrl_c() => {
                cancel.cancel();
                Err(generate::GenerateError::Config("interrupted; run `lode generate` again to resume".into()))
            }
        }
    })?;
    bar.finish_and_clear();
    Ok(summary)
}

pub fn generate(cli: &Cli, args: &GenerateArgs) -> Result<i32> {
    let project = crate::cli::load_project(cli)?;
    let (store, snapshot) = project.open_store()?;
    let store = Arc::new(store);
    if let Some(bad) = args
        .gold
        .iter()
        .find(|&&g| g == 0 || g > project.gold.len())
    {
        anyhow::bail!(
            "--gold {bad}: the gold set has pairs 1 to {}",
            project.gold.len()
        );
    }
    let opts = GenerateOptions {
        resume: args.resume,
        new_run: args.new,
        only_gold: args.gold.iter().map(|g| g - 1).collect(),
    };
    let started = Instant::now();
    let before = store.llm_call_stats(None)?;
    let summary = run_generation(
        &project,
        &store,
        snapshot,
        cli.profile.as_deref(),
        !cli.no_cache,
        &opts,
    )?;
    let after = store.llm_call_stats(None)?;
    println!(
        "run {} {} in {:.1} s",
        summary.run_id,
        if summary.resumed {
            "resumed and finished"
        } else {
            "finished"
        },
        started.elapsed().as_secs_f64()
    );
    if summary.skipped_existing > 0 {
        println!(
            "{} pairs were already stored by the interrupted run",
            summary.skipped_existing
        );
    }
    print!("{}", summary.table());
    let t = summary.totals();
    if t.call_failures > 0 {
        println!(
            "{} LLM calls failed (their causes are stored with the run)",
            t.call_failures
        );
    }
    println!(
        "LLM calls: {} ({} from the cache, {} failed), {} prompt + {} completion tokens",
        after.calls - before.calls,
        after.cached - before.cached,
        after.failed - before.failed,
        after.prompt_tokens - before.prompt_tokens,
        after.completion_tokens - before.completion_tokens
    );
    println!(
        "review them with `lode review list --run {}`",
        summary.run_id
    );
    Ok(0)
}
