//! `lode tune`: submit a tuning job on the accepted pairs and watch it (a line per update).
//! With `--json`: one document when not watching, else the watch's stream (`update` lines,
//! then `done`), as `lode jobs watch --json` writes it.

use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::globals::Globals;
use super::jobs::{JobDoc, JobFeed};
use super::output::EventView;
use lode_core::store::Store;
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

/// `lode tune --json`: the job submitted (and watched to its end unless `--no-watch`).
#[derive(Debug, Serialize)]
pub struct TuneDoc {
    pub job: JobDoc,
    /// The job was watched to its end (else it was only submitted).
    pub watched: bool,
}

pub fn run(globals: &Globals, args: &TuneArgs) -> Result<i32> {
    let project = globals.load_project()?;
    if let Some(p) = &args.provider {
        lode_core::tune::parse_provider(p).map_err(|e| {
            super::exit::usage(e.to_string(), "see `lode tune --help` for the providers")
        })?;
    }
    let (store, _) = project.open_store()?;
    if let Some(r) = args.run {
        store.run(r)?;
    }
    let store = Arc::new(store);
    let input = TuneInput {
        provider: args.provider.clone(),
        run: args.run,
        watch: !args.no_watch,
    };
    // Watching, the job's events are a stream; only submitting, the job is one document.
    let mut view = EventView::for_stream(globals.json && !args.no_watch, "tune");
    if globals.json && !args.no_watch {
        let feed = JobFeed::of_next_job(&store, "tune")?;
        view = view.with_items(move || feed.write());
    }
    let rt = lode_core::tasks::runtime()?;
    let outcome = rt.block_on(tune::submit(&project, &store, &input, &view.reporter()));
    view.finish();
    let outcome = outcome?;
    if args.no_watch {
        if globals.json {
            let job = JobDoc::of(&store, &store.job(outcome.job)?)?;
            super::json::emit(
                "tune",
                &TuneDoc {
                    job,
                    watched: false,
                },
            )?;
            return Ok(0);
        }
        println!(
            "job {} submitted to {}; follow it with `lode jobs watch {}`",
            outcome.job, outcome.provider, outcome.job
        );
        return Ok(0);
    }
    finish(globals, "tune", &store, &outcome)
}

/// How a watched job ended: the text line, or with `--json` the stream's `done` line; the
/// exit code (0 only for success: a job that failed or was cancelled is a result, exit 1).
pub fn finish(
    globals: &Globals,
    command: &str,
    store: &Store,
    outcome: &JobOutcome,
) -> Result<i32> {
    let code = if outcome.status == JobStatus::Succeeded {
        0
    } else {
        1
    };
    if globals.json {
        let job = JobDoc::of(store, &store.job(outcome.job)?)?;
        if command == "tune" {
            super::json::emit_line(command, "done", &TuneDoc { job, watched: true })?;
        } else {
            super::json::emit_line(command, "done", &super::jobs::OneJob { job })?;
        }
        return Ok(code);
    }
    Ok(finish_message(outcome))
}

/// Prints how a watched job ended; the exit code (0 only for success).
fn finish_message(outcome: &JobOutcome) -> i32 {
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
