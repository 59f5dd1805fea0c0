//! `lode tune`: submit a tuning job on the accepted pairs and watch it (a line per update).

use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use super::globals::Globals;
use super::output::EventView;
use lode_core::tasks::tune::{self, JobOutcome, TuneInput};
use lode_core::tune::JobStatus;

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// memory, lamini, openai or local (default: tune.provider).
    #[arg(long)]
    pub provider: Option<String>,
    /// Train on this run's pairs only (default: every run's).
    #[arg(long)]
    pub run: Option<i64>,
    /// Submit and return without watching.
    #[arg(long)]
    pub no_watch: bool,
}

pub fn run(globals: &Globals, args: &TuneArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let store = Arc::new(store);
    let input = TuneInput {
        provider: args.provider.clone(),
        run: args.run,
        watch: !args.no_watch,
    };
    let view = EventView::new();
    let rt = lode_core::tasks::runtime()?;
    let outcome = rt.block_on(tune::submit(&project, &store, &input, &view.reporter()));
    view.finish();
    let outcome = outcome?;
    if args.no_watch {
        println!(
            "job {} submitted to {}; follow it with `lode jobs watch {}`",
            outcome.job, outcome.provider, outcome.job
        );
        return Ok(0);
    }
    Ok(finish_message(&outcome))
}

/// Prints how a watched job ended; the exit code (0 only for success).
pub fn finish_message(outcome: &JobOutcome) -> i32 {
    if outcome.status == JobStatus::Succeeded {
        println!(
            "{}; evaluate it with `lode eval` (the newest tuned model) or `lode eval --job {}`",
            outcome.headline(),
            outcome.job
        );
        0
    } else {
        println!("{}", outcome.headline());
        1
    }
}
