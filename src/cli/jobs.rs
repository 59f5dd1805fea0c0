//! `lode jobs`: list tuning jobs, watch one (resuming from the store after a restart), cancel
//! one. With `--json`: `jobs list` and `jobs cancel` print one document, `jobs watch` a
//! stream (an `update` line per job event the watch stores, then `done`); [`JobDoc`] is the
//! job in each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use super::globals::Globals;
use super::output::EventView;
use lode_core::store::{Job, JobEvent, JobProgress, JobStatus, Store, TuneProvider};
use lode_core::tasks::tune;

#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub action: Option<JobsAction>,
}

#[derive(Subcommand, Debug)]
pub enum JobsAction {
    /// List tuning jobs
    List,
    /// Follow a job until it ends (the newest by default)
    Watch { id: Option<i64> },
    /// Cancel a job
    Cancel { id: i64 },
}

pub fn run(globals: &Globals, args: &JobsArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let store = Arc::new(store);
    match args.action.as_ref().unwrap_or(&JobsAction::List) {
        JobsAction::List => {
            let jobs = job_docs(&store)?;
            if globals.json {
                super::json::emit(
                    if args.action.is_some() {
                        "jobs list"
                    } else {
                        "jobs"
                    },
                    &JobsDoc { jobs },
                )?;
                return Ok(0);
            }
            if jobs.is_empty() {
                println!("no tuning jobs yet: `lode tune` submits one");
            }
            for j in jobs {
                println!(
                    "{:>4}  {:<8} {:<10} {:<24} {}  {}",
                    j.id,
                    j.provider,
                    j.status,
                    j.external_id.unwrap_or_default(),
                    j.updated_at,
                    j.tuned_model.as_deref().unwrap_or("-")
                );
            }
            Ok(0)
        }
        JobsAction::Watch { id } => {
            let mut view = EventView::for_stream(globals.json, "jobs watch");
            if globals.json {
                // The job the watch follows: as `tune::watch` picks it (an unknown one is
                // its error to report).
                let job = match id {
                    Some(id) => Some(*id),
                    None => store.jobs()?.first().map(|j| j.id),
                };
                if let Some(job) = job {
                    let feed = JobFeed::of_job(&store, "jobs watch", job)?;
                    view = view.with_items(move || feed.write());
                }
            }
            let rt = lode_core::tasks::runtime()?;
            let outcome = rt.block_on(tune::watch(&project, &store, *id, &view.reporter()));
            view.finish();
            super::tune::finish(globals, "jobs watch", &store, &outcome?)
        }
        JobsAction::Cancel { id } => {
            let rt = lode_core::tasks::runtime()?;
            rt.block_on(tune::cancel(&project, &store, *id, "by the user"))?;
            if globals.json {
                super::json::emit(
                    "jobs cancel",
                    &OneJob {
                        job: JobDoc::of(&store, &store.job(*id)?)?,
                    },
                )?;
                return Ok(0);
            }
            println!("job {id} cancelled");
            Ok(0)
        }
    }
}

/// `lode jobs list --json`.
#[derive(Debug, Serialize)]
pub struct JobsDoc {
    /// Newest first.
    pub jobs: Vec<JobDoc>,
}

/// `lode jobs cancel --json`, the `done` line of `lode jobs watch --json`.
#[derive(Debug, Serialize)]
pub struct OneJob {
    pub job: JobDoc,
}

/// A tuning job as `--json` documents show it.
#[derive(Debug, Clone, Serialize)]
pub struct JobDoc {
    pub id: i64,
    /// `memory`, `lamini`, `openai` or `local`.
    pub provider: TuneProvider,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: JobStatus,
    /// The provider's id of the job (`null` until it is submitted).
    pub external_id: Option<String>,
    /// The model tuned (`null` for the memory and local providers).
    pub base_model: Option<String>,
    /// The tuned model, once the job succeeded.
    pub tuned_model: Option<String>,
    pub dataset: Option<DatasetDoc>,
    /// The newest step and step count the provider reported.
    pub step: Option<u64>,
    pub total_steps: Option<u64>,
    /// The provider's own word for where the job is (`SCHEDULED`, `validating_files`).
    pub phase: Option<String>,
    /// The loss values reported, oldest first, one per step.
    pub losses: Vec<f64>,
    /// The newest event's message (a failed job's reason).
    pub last_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The examples a job was given.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetDoc {
    pub id: i64,
    pub name: String,
    pub format: String,
    /// Examples in all (training and validation).
    pub examples: i64,
    pub train: Option<u64>,
    pub validation: Option<u64>,
}

/// The split a job's config records (`{"train": 287, "validation": 32, …}`).
#[derive(Debug, Default, Deserialize)]
struct Split {
    train: Option<u64>,
    validation: Option<u64>,
}

impl JobDoc {
    pub fn of(store: &Store, job: &Job) -> Result<JobDoc> {
        let events = store.job_events(job.id)?;
        let progress = JobProgress::of_events(&events);
        let split: Split = serde_json::from_str(&job.config_json).unwrap_or_default();
        let dataset = job
            .dataset_id
            .and_then(|id| store.dataset(id).ok())
            .map(|d| DatasetDoc {
                id: d.id,
                name: d.name,
                format: d.format,
                examples: d.item_count,
                train: split.train,
                validation: split.validation,
            });
        Ok(JobDoc {
            id: job.id,
            provider: job.provider,
            status: job.status,
            external_id: job.external_id.clone(),
            base_model: job.model.clone(),
            tuned_model: job.tuned_model(),
            dataset,
            step: progress.step,
            total_steps: progress.total_steps,
            phase: progress.phase,
            losses: progress.losses,
            last_message: events.last().map(|e| e.message.clone()),
            created_at: job.created_at.clone(),
            updated_at: job.updated_at.clone(),
        })
    }
}

/// Every job, newest first.
pub fn job_docs(store: &Store) -> Result<Vec<JobDoc>> {
    store.jobs()?.iter().map(|j| JobDoc::of(store, j)).collect()
}

/// An `update` line of a watch: one event the watch stored (a status change, a step, a loss
/// value, the provider's event), with the figures its data hold.
#[derive(Debug, Serialize)]
pub struct UpdateLine {
    pub job: i64,
    pub at: String,
    pub status: JobStatus,
    pub message: String,
    pub step: Option<u64>,
    pub total_steps: Option<u64>,
    pub loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub phase: Option<String>,
}

/// The figures of an event's data, where they are numbers (the rest is left out).
#[derive(Debug, Default)]
struct Figures {
    step: Option<u64>,
    total_steps: Option<u64>,
    loss: Option<f64>,
    learning_rate: Option<f64>,
    phase: Option<String>,
}

impl UpdateLine {
    fn of(e: &JobEvent) -> UpdateLine {
        let f = e
            .data_json
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .map(|v| Figures {
                step: v["step"].as_u64(),
                total_steps: v["total_steps"].as_u64(),
                loss: v["loss"].as_f64(),
                learning_rate: v["learning_rate"].as_f64(),
                phase: v["raw_status"]
                    .as_str()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            })
            .unwrap_or_default();
        UpdateLine {
            job: e.job_id,
            at: e.at.clone(),
            status: e.status,
            message: e.message.clone(),
            step: f.step,
            total_steps: f.total_steps,
            loss: f.loss,
            learning_rate: f.learning_rate,
            phase: f.phase,
        }
    }
}

/// The `update` lines of a watch with `--json`: the job events stored since the last ones
/// written. A watch stores every status change, event and loss value before it reports it,
/// so the store is where the figures are read.
pub struct JobFeed {
    store: Arc<Store>,
    command: String,
    state: Mutex<FeedState>,
}

struct FeedState {
    /// The job followed, once known.
    job: Option<i64>,
    /// For a job still to be submitted: it is the first one above this id.
    newer_than: i64,
    /// The newest event written.
    written: i64,
}

impl JobFeed {
    /// The new events of `job` (those stored from now on).
    pub fn of_job(store: &Arc<Store>, command: &str, job: i64) -> Result<JobFeed> {
        let written = store.job_event_heads()?.get(&job).copied().unwrap_or(0);
        Ok(JobFeed {
            store: Arc::clone(store),
            command: command.to_string(),
            state: Mutex::new(FeedState {
                job: Some(job),
                newer_than: 0,
                written,
            }),
        })
    }

    /// Every event of the job submitted from now on (the first job created after this).
    pub fn of_next_job(store: &Arc<Store>, command: &str) -> Result<JobFeed> {
        let newer_than = store.jobs()?.first().map_or(0, |j| j.id);
        Ok(JobFeed {
            store: Arc::clone(store),
            command: command.to_string(),
            state: Mutex::new(FeedState {
                job: None,
                newer_than,
                written: 0,
            }),
        })
    }

    /// Writes the events stored since the last call.
    pub fn write(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.job.is_none() {
            let heads: BTreeMap<i64, i64> = self.store.job_event_heads().unwrap_or_default();
            state.job = heads.keys().copied().find(|&id| id > state.newer_than);
        }
        let Some(job) = state.job else { return };
        let Ok(events) = self.store.job_events(job) else {
            return;
        };
        let since = state.written;
        for e in events.iter().filter(|e| e.id > since) {
            let _ = super::json::emit_line(&self.command, "update", &UpdateLine::of(e));
            state.written = e.id;
        }
    }
}
