//! Tuning and job workflows: submit a job (and watch it), watch a job, cancel a job. Watching
//! stores every status change, event and loss value before it is reported, so a restarted
//! lode (or another face) resumes from the store. A provider that cannot be reached is
//! retried on a bounded schedule, each retry reported as a warning; a watch that stops (a
//! refusal, or the schedule run out) is an error that says why and how to watch again, the
//! job's status left as it was.

use std::sync::Arc;
use std::time::Duration;

use super::{Reporter, Stage, StageEvent, TaskError};
use crate::project::Project;
use crate::store::{Store, TuneProvider};
use crate::tune::{self, JobStatus, JobUpdate};

/// What to tune.
#[derive(Debug, Clone, Default)]
pub struct TuneInput {
    /// `memory`, `lamini`, `openai` or `local`; `tune.provider` when `None`.
    pub provider: Option<String>,
    /// Train on this run's pairs; every run's when `None`.
    pub run: Option<i64>,
    /// Watch the job until it ends (else return once it is submitted).
    pub watch: bool,
}

/// Where a job stands when the task returns.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    pub job: i64,
    pub provider: TuneProvider,
    pub status: JobStatus,
    /// The tuned model, once the job succeeded.
    pub model: Option<String>,
    /// The last thing the provider said (the failure reason of a failed job).
    pub last_message: String,
}

impl JobOutcome {
    pub fn headline(&self) -> String {
        match (&self.status, &self.model) {
            (JobStatus::Succeeded, Some(m)) => format!(
                "job {} ({}) succeeded: tuned model {m}",
                self.job, self.provider
            ),
            (status, _) if status.is_terminal() => format!(
                "job {} ({}) {}: {}",
                self.job,
                self.provider,
                status.as_str(),
                self.last_message
            ),
            (status, _) => format!(
                "job {} submitted to {} ({})",
                self.job,
                self.provider,
                status.as_str()
            ),
        }
    }
}

/// Submits a tuning job on the accepted pairs and, when asked, watches it to the end.
pub async fn submit(
    project: &Project,
    store: &Arc<Store>,
    input: &TuneInput,
    reporter: &Reporter,
) -> Result<JobOutcome, TaskError> {
    let r = async {
        let provider_name = tune::parse_provider(
            input
                .provider
                .as_deref()
                .unwrap_or(&project.config.tune.provider),
        )?;
        let provider = tune::provider_for(provider_name, project, Arc::clone(store))?;
        reporter.emit(StageEvent::Started {
            stage: Stage::Tune,
            detail: format!("submitting a tuning job to {provider_name}"),
        });
        let job = tune::submit(project, store, &provider, input.run).await?;
        if !input.watch {
            let outcome = outcome(store, job, JobStatus::Queued)?;
            reporter.emit(StageEvent::Finished {
                stage: Stage::Tune,
                summary: outcome.headline(),
            });
            return Ok(outcome);
        }
        watch_with(project, store, job, &provider, reporter).await
    }
    .await;
    reporter.failed(Stage::Tune, r)
}

/// Watches a job (the newest when `job` is `None`) until it ends.
pub async fn watch(
    project: &Project,
    store: &Arc<Store>,
    job: Option<i64>,
    reporter: &Reporter,
) -> Result<JobOutcome, TaskError> {
    let r = async {
        let id = match job {
            Some(i) => i,
            None => store
                .jobs()?
                .first()
                .map(|j| j.id)
                .ok_or_else(|| TaskError::Invalid("no tuning job to watch".into()))?,
        };
        let record = store.job(id)?;
        let provider = tune::provider_for(record.provider, project, Arc::clone(store))?;
        reporter.emit(StageEvent::Started {
            stage: Stage::Tune,
            detail: format!(
                "watching job {id} ({}, {})",
                record.provider,
                record.external_id.as_deref().unwrap_or("not submitted")
            ),
        });
        watch_with(project, store, id, &provider, reporter).await
    }
    .await;
    reporter.failed(Stage::Tune, r)
}

async fn watch_with(
    project: &Project,
    store: &Arc<Store>,
    job: i64,
    provider: &Arc<dyn tune::Provider>,
    reporter: &Reporter,
) -> Result<JobOutcome, TaskError> {
    let poll = Duration::from_secs_f64(project.config.tune.poll_s.max(0.05));
    let show = |ev: tune::WatchEvent<'_>| match ev {
        tune::WatchEvent::Update(u) => {
            if let (Some(done), Some(total)) = (u.step, u.total_steps) {
                reporter.emit(StageEvent::Progress {
                    stage: Stage::Tune,
                    done,
                    total,
                    unit: "steps",
                });
            }
            let text = describe_update(u);
            if !text.is_empty() {
                reporter.emit(StageEvent::ItemStored {
                    stage: Stage::Tune,
                    what: text,
                });
            }
        }
        // A retry to come, or events that cannot be read: the watch goes on.
        tune::WatchEvent::Warning(message) => reporter.warn(Stage::Tune, message),
    };
    let options = tune::WatchOptions::every(poll);
    let status = tune::watch_with(store, provider, job, &options, &show).await?;
    let outcome = outcome(store, job, status)?;
    reporter.emit(StageEvent::Finished {
        stage: Stage::Tune,
        summary: outcome.headline(),
    });
    Ok(outcome)
}

/// Cancels a job with its provider and records who cancelled it.
pub async fn cancel(
    project: &Project,
    store: &Arc<Store>,
    job: i64,
    by: &str,
) -> Result<(), TaskError> {
    let record = store.job(job)?;
    let external = record.external_id.clone().ok_or_else(|| {
        TaskError::Invalid(format!(
            "job {job} was never submitted, so there is nothing to cancel"
        ))
    })?;
    let provider = tune::provider_for(record.provider, project, Arc::clone(store))?;
    provider.cancel(&external).await?;
    store.update_job_status(
        job,
        JobStatus::Cancelled,
        &format!("cancelled {by}"),
        None,
        None,
    )?;
    Ok(())
}

/// Where a job stands, from the store.
pub fn outcome(store: &Store, job: i64, status: JobStatus) -> Result<JobOutcome, TaskError> {
    let record = store.job(job)?;
    let model = tune::job_model(store, job)?;
    let last_message = store
        .job_events(job)?
        .last()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    Ok(JobOutcome {
        job,
        provider: record.provider,
        status,
        model,
        last_message,
    })
}

/// A job update in one line: status · step · loss · message · error · model.
pub fn describe_update(u: &JobUpdate) -> String {
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
    parts.join(" · ")
}
