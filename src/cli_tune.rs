//! `lode tune` and `lode jobs`: submit a tuning job, list, watch (a live line with step and
//! loss), cancel. Watching resumes from the store after a restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::cli::{Cli, JobsAction, JobsArgs, TuneArgs};
use crate::project::Project;
use crate::store::Store;
use crate::tune::{self, JobStatus, JobUpdate};

fn show(u: &JobUpdate) {
    let mut parts = Vec::new();
    if let Some(s) = u.status {
        parts.push(s.as_str().to_string());
    }
    if let (Some(s), Some(t)) = (u.step, u.total_steps) {
        parts.push(format!("step {s}/{t}"));
    }
    if let Some(l) = u.loss {
        parts.push(format!("loss {l:.4}"));
    }
    if !u.message.is_empty() {
        parts.push(u.message.clone());
    }
    if let Some(e) = &u.error {
        parts.push(e.clone());
    }
    if let Some(m) = &u.model_id {
        parts.push(format!("model {m}"));
    }
    if !parts.is_empty() {
        eprintln!("  {}", parts.join(" · "));
    }
}

/// Submits (and, unless `no_watch`, watches) a job; shared with `lode demo`.
pub fn run_tune(
    project: &Project,
    store: &Arc<Store>,
    provider: &str,
    run: Option<i64>,
    watch: bool,
    quiet: bool,
) -> Result<(i64, JobStatus)> {
    let p = tune::provider_for(provider, project, Arc::clone(store))?;
    let rt = crate::pipeline::runtime()?;
    let job = rt.block_on(tune::submit(project, store, &p, run))?;
    if !watch {
        return Ok((job, JobStatus::Queued));
    }
    let poll = Duration::from_secs_f64(project.config.tune.poll_s.max(0.05));
    let status = rt.block_on(tune::watch(store, &p, job, poll, None, &|u| {
        if !quiet {
            show(u)
        }
    }))?;
    Ok((job, status))
}

pub fn tune(cli: &Cli, args: &TuneArgs) -> Result<i32> {
    let project = crate::cli::load_project(cli)?;
    let (store, _) = project.open_store()?;
    let store = Arc::new(store);
    let provider = args
        .provider
        .clone()
        .unwrap_or_else(|| project.config.tune.provider.clone());
    let (job, status) = run_tune(&project, &store, &provider, args.run, !args.no_watch, false)?;
    if args.no_watch {
        println!("job {job} submitted to {provider}; follow it with `lode jobs watch {job}`");
        return Ok(0);
    }
    finish_message(&store, job, status)
}

fn finish_message(store: &Store, job: i64, status: JobStatus) -> Result<i32> {
    match status {
        JobStatus::Succeeded => {
            let model = tune::job_model(store, job)?.unwrap_or_default();
            println!(
                "job {job} succeeded: model {model}; evaluate it with `lode eval --job {job}`"
            );
            Ok(0)
        }
        other => {
            let reason = store
                .job_events(job)?
                .last()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            println!("job {job} {}: {reason}", other.as_str());
            Ok(1)
        }
    }
}

pub fn jobs(cli: &Cli, args: &JobsArgs) -> Result<i32> {
    let project = crate::cli::load_project(cli)?;
    let (store, _) = project.open_store()?;
    let store = Arc::new(store);
    match args.action.as_ref().unwrap_or(&JobsAction::List) {
        JobsAction::List => {
            let jobs = store.jobs()?;
            if jobs.is_empty() {
                println!("no tuning jobs yet: `lode tune` submits one");
            }
            for j in jobs {
                let model = tune::job_model(&store, j.id)?.unwrap_or_else(|| "-".into());
                println!(
                    "{:>4}  {:<8} {:<10} {:<24} {}  {}",
                    j.id,
                    j.provider,
                    j.status,
                    j.external_id.unwrap_or_default(),
                    j.updated_at,
                    model
                );
            }
            Ok(0)
        }
        JobsAction::Watch { id } => {
            let id = match id {
                Some(i) => *i,
                None => store
                    .jobs()?
                    .first()
                    .map(|j| j.id)
                    .ok_or_else(|| anyhow!("no tuning job to watch"))?,
            };
            let job = store.job(id)?;
            let p = tune::provider_for(&job.provider, &project, Arc::clone(&store))?;
            let rt = crate::pipeline::runtime()?;
            let poll = Duration::from_secs_f64(project.config.tune.poll_s.max(0.05));
            eprintln!(
                "watching job {id} ({}, {})",
                job.provider,
                job.external_id.clone().unwrap_or_default()
            );
            let status = rt.block_on(tune::watch(&store, &p, id, poll, None, &show))?;
            finish_message(&store, id, status)
        }
        JobsAction::Cancel { id } => {
            let job = store.job(*id)?;
            let external = job
                .external_id
                .clone()
                .ok_or_else(|| anyhow!("job {id} was never submitted"))?;
            let p = tune::provider_for(&job.provider, &project, Arc::clone(&store))?;
            let rt = crate::pipeline::runtime()?;
            rt.block_on(p.cancel(&external))?;
            store.update_job_status(*id, "cancelled", "cancelled by the user", None, None)?;
            println!("job {id} cancelled");
            Ok(0)
        }
    }
}
