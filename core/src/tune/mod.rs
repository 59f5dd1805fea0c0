//! Tuning: datasets and their exports, fine-tuning providers behind one trait (Lamini, OpenAI,
//! a local trainer command, and the offline `memory` provider), and the job watcher that
//! keeps status history, events and the loss series in the store.

pub mod dataset;
pub mod local;
pub mod memory;
pub mod providers;
pub mod rl;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::llm::BoxFuture;
use crate::project::Project;
pub use crate::store::JobStatus;
use crate::store::{Store, TuneProvider};

/// What a provider says about a job at one moment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JobUpdate {
    pub status: Option<JobStatus>,
    pub raw_status: String,
    pub message: String,
    pub step: Option<u64>,
    pub total_steps: Option<u64>,
    pub loss: Option<f64>,
    pub learning_rate: Option<f64>,
    /// The tuned model's id, once it exists.
    pub model_id: Option<String>,
    /// Why it failed, in words a user can act on.
    pub error: Option<String>,
    /// The provider's id of this event (providers with an event feed), kept with the event in
    /// the store so a restarted watch shows only newer ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// Why a tuning operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("{0}")]
    Refused(String),
    /// A provider's server refused a request or could not be reached. `message` names the
    /// endpoint and the job or model it was about; keys are redacted from it.
    #[error("{provider}: {message}")]
    Provider {
        provider: String,
        message: String,
        /// Worth trying again later: the server could not be reached, timed out, was rate
        /// limited or failed (5xx). Not so for a refused key, an unknown job or model, or a
        /// request the server calls invalid.
        transient: bool,
        /// The HTTP status, when the server answered.
        status: Option<u16>,
        /// How long the server asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Watching a job stopped: the provider refused the watch's requests, or could not be
    /// reached through a whole retry schedule. The job itself goes on at the provider.
    #[error("{message}")]
    WatchStopped {
        job: i64,
        /// The provider was unreachable (watching again later may work) rather than refusing.
        transient: bool,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl TuneError {
    /// Worth trying again later (see [`TuneError::Provider`]); everything else is permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            TuneError::Provider { transient, .. } | TuneError::WatchStopped { transient, .. } => {
                *transient
            }
            _ => false,
        }
    }

    /// The HTTP status of a provider's refusal.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TuneError::Provider { status, .. } => *status,
            _ => None,
        }
    }

    /// How long the provider asked to wait before the next request.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TuneError::Provider { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error without the provider's name in front (for messages that name it already).
    fn detail(&self) -> String {
        match self {
            TuneError::Provider { message, .. } => message.clone(),
            e => e.to_string(),
        }
    }
}

/// A place to fine-tune a model.
pub trait Provider: Send + Sync {
    fn name(&self) -> TuneProvider;
    /// Submits the dataset; returns the provider's job id.
    fn submit<'a>(
        &'a self,
        job_id: i64,
        data: &'a dataset::TrainingSet,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<String, TuneError>>;
    /// The job's state now.
    fn status<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<JobUpdate, TuneError>>;
    /// New progress events since the last call (providers with an event feed), oldest
    /// first, each once.
    fn events<'a>(
        &'a self,
        _external_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JobUpdate>, TuneError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Tells a provider with an event feed which event a previous watch showed last (its
    /// [`JobUpdate::event_id`], from the store), so [`Provider::events`] starts after it.
    fn resume_events(&self, _external_id: &str, _last_event_id: &str) {}
    fn cancel<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<(), TuneError>>;
}

/// The provider a user named (`--provider`, `tune.provider`).
pub fn parse_provider(name: &str) -> Result<TuneProvider, TuneError> {
    name.parse().map_err(|_| {
        TuneError::Refused(format!(
            "unknown tuning provider `{name}`; use memory, lamini, openai or local"
        ))
    })
}

/// The provider of a kind for a project.
pub fn provider_for(
    kind: TuneProvider,
    project: &Project,
    store: Arc<Store>,
) -> Result<Arc<dyn Provider>, TuneError> {
    Ok(match kind {
        TuneProvider::Memory => Arc::new(memory::MemoryProvider::new(store)),
        TuneProvider::Lamini => Arc::new(providers::LaminiTuner::from_config(&project.config)?),
        TuneProvider::OpenAi => Arc::new(providers::OpenAiTuner::from_config(&project.config)?),
        TuneProvider::Local => Arc::new(local::LocalTrainer::from_config(&project.config, store)?),
    })
}

/// Builds the dataset, checks it, records it and the job, and submits. Returns the job id.
pub async fn submit(
    project: &Project,
    store: &Arc<Store>,
    provider: &Arc<dyn Provider>,
    run_id: Option<i64>,
) -> Result<i64, TuneError> {
    let t = &project.config.tune;
    let data = dataset::build(store, run_id, t.include_valid, t.validation_split, t.seed)?;
    let n = data.train.len();
    if n < t.min_examples {
        return Err(TuneError::Refused(format!(
            "only {n} training examples (at least {} needed): accept more pairs with `lode review accept`, \
             or set tune.include_valid: true to train on valid pairs nobody reviewed",
            t.min_examples
        )));
    }
    let ids: Vec<i64> = data.all().map(|e| e.pair_id).collect();
    let text = dataset::render("messages", project, &data.train);
    let sha = crate::project::sha256_hex(text.as_bytes());
    let ds = store.create_dataset(
        &format!("{}-{}", provider.name(), &sha[..8]),
        "messages",
        run_id,
        None,
        &ids,
        Some(&sha),
    )?;
    let config = json!({
        "train": n,
        "validation": data.validation.len(),
        "template": "sqlprompt::question_prompt",
        "seed": t.seed,
    });
    let model = match provider.name() {
        TuneProvider::Lamini => Some(project.config.model.memory_tuning.clone()),
        TuneProvider::OpenAi => Some(t.openai.model.clone()),
        TuneProvider::Memory | TuneProvider::Local => None,
    };
    let job = store.create_job(
        provider.name(),
        model.as_deref(),
        Some(ds),
        JobStatus::Queued,
        &config.to_string(),
    )?;
    match provider.submit(job, &data, project).await {
        Ok(external) => {
            store.set_job_external_id(job, &external)?;
            store.update_job_status(
                job,
                JobStatus::Queued,
                &format!("submitted {n} examples as {external}"),
                None,
                None,
            )?;
            Ok(job)
        }
        Err(e) => {
            store.update_job_status(job, JobStatus::Failed, &e.to_string(), None, None)?;
            Err(e)
        }
    }
}

/// How a watch retries a provider it cannot reach (refused connections, timeouts, 429, 5xx):
/// waits from `first`, doubling up to `longest`, jittered, at most `retries` of them in a row;
/// a successful poll starts the schedule over. A `Retry-After` from the server replaces the
/// scheduled wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    pub first: Duration,
    pub longest: Duration,
    pub retries: usize,
}

impl RetrySchedule {
    /// Retries in a row before a watch gives up.
    pub const RETRIES: usize = 8;
    /// The longest scheduled wait between two retries (before jitter).
    pub const LONGEST: Duration = Duration::from_secs(120);

    /// The schedule of a watch that polls every `poll` (`tune.poll_s`): the first retry one
    /// poll interval later, then doubling up to two minutes, 8 retries (about 9 minutes
    /// without an answer at the default 5 s).
    pub fn for_poll(poll: Duration) -> RetrySchedule {
        RetrySchedule {
            first: poll.clamp(Duration::from_millis(1), Self::LONGEST),
            longest: Self::LONGEST,
            retries: Self::RETRIES,
        }
    }

    /// The waits, in order.
    fn delays(&self) -> backon::ExponentialBackoff {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.longest.max(self.first))
            .with_jitter()
            .with_max_times(self.retries)
            .build()
    }
}

/// How to watch a job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchOptions {
    /// The wait between two polls.
    pub poll: Duration,
    /// Return (the job going on) after this many answered polls.
    pub max_polls: Option<usize>,
    pub retry: RetrySchedule,
}

impl WatchOptions {
    /// Polls every `poll` until the job ends, retrying on [`RetrySchedule::for_poll`].
    pub fn every(poll: Duration) -> WatchOptions {
        WatchOptions {
            poll,
            max_polls: None,
            retry: RetrySchedule::for_poll(poll),
        }
    }
}

/// What a watch tells as it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WatchEvent<'a> {
    /// A status update or a progress event of the job, stored before it is told.
    Update(&'a JobUpdate),
    /// Something the watch goes on after: the provider cannot be reached for now (and when
    /// the next try is), or the job's events cannot be read.
    Warning(&'a str),
}

/// Polls a job until it ends (or `max_polls` is reached), storing every change, event and
/// loss value; calls `show` with each update, and with each warning as an update with only a
/// message. See [`watch_with`].
pub async fn watch(
    store: &Arc<Store>,
    provider: &Arc<dyn Provider>,
    job_id: i64,
    poll: Duration,
    max_polls: Option<usize>,
    show: &(dyn Fn(&JobUpdate) + Sync),
) -> Result<JobStatus, TuneError> {
    let options = WatchOptions {
        max_polls,
        ..WatchOptions::every(poll)
    };
    watch_with(store, provider, job_id, &options, &|ev| match ev {
        WatchEvent::Update(u) => show(u),
        WatchEvent::Warning(m) => show(&JobUpdate {
            message: m.to_string(),
            ..JobUpdate::default()
        }),
    })
    .await
}

/// Polls a job until it ends (or `options.max_polls` is reached), storing every change,
/// event and loss value before `show` is told. A restarted lode resumes from the store, the
/// event feed after the last event stored.
///
/// A provider that cannot be reached is retried on `options.retry`, each retry told as a
/// warning; when the schedule runs out the watch stops with [`TuneError::WatchStopped`]
/// (transient). A refusal (a key refused, an unknown job, an invalid request, no key) stops
/// it at once, with the reason (not transient). Either way the job's stored status stays (the
/// job may well go on at the provider): the reason is recorded as an event of the job.
pub async fn watch_with(
    store: &Arc<Store>,
    provider: &Arc<dyn Provider>,
    job_id: i64,
    options: &WatchOptions,
    show: &(dyn Fn(WatchEvent<'_>) + Sync),
) -> Result<JobStatus, TuneError> {
    let job = store.job(job_id)?;
    let external = job.external_id.clone().ok_or_else(|| {
        TuneError::Refused(format!(
            "job {job_id} was never submitted (no provider id); submit again with `lode tune`"
        ))
    })?;
    if job.status.is_terminal() {
        return Ok(job.status);
    }
    if let Some(last) = last_event_id(store, job_id)? {
        provider.resume_events(&external, &last);
    }
    let name = provider.name();
    let mut last_status = job.status;
    let mut polls = 0;
    // The retry schedule under way and the retries made, while the provider cannot be reached.
    let mut retrying: Option<(backon::ExponentialBackoff, usize)> = None;
    // The last warning about events, so a lasting failure is told once.
    let mut events_warning: Option<String> = None;
    loop {
        let update = match provider.status(&external).await {
            Ok(u) => {
                retrying = None;
                u
            }
            Err(e) if e.is_transient() => {
                let (delays, made) = retrying.get_or_insert_with(|| (options.retry.delays(), 0));
                let Some(scheduled) = delays.next() else {
                    let message = format!(
                        "stopped watching job {job_id}: cannot reach {name} after {made} \
                         retries ({}); the job goes on at {name}: watch it again with \
                         `lode jobs watch {job_id}`",
                        e.detail()
                    );
                    return Err(watch_stopped(store, job_id, true, message)?);
                };
                *made += 1;
                let (wait, asked) = match e.retry_after() {
                    Some(w) => (w, " as the server asked"),
                    None => (scheduled, ""),
                };
                let text = format!(
                    "cannot reach {name}: {}; retry {made} of {} in {}{asked}",
                    e.detail(),
                    options.retry.retries,
                    seconds(wait)
                );
                show(WatchEvent::Warning(&text));
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => {
                let message = format!(
                    "stopped watching job {job_id}: {e}; the job itself may go on at {name}: \
                     watch it again with `lode jobs watch {job_id}` once this is fixed"
                );
                return Err(watch_stopped(store, job_id, false, message)?);
            }
        };
        polls += 1;
        // The events are read after the status, so those that led to it are all there.
        let events = match provider.events(&external).await {
            Ok(events) => {
                events_warning = None;
                events
            }
            // Events are extra detail: the status still decides the job. Say why they are
            // missing (once while the same failure lasts) instead of showing none.
            Err(e) => {
                let text = format!("cannot read the job's events: {e}");
                if events_warning.as_deref() != Some(&text) {
                    show(WatchEvent::Warning(&text));
                }
                events_warning = Some(text);
                Vec::new()
            }
        };
        for ev in events {
            let data = json!({"step": ev.step, "total_steps": ev.total_steps, "loss": ev.loss, "learning_rate": ev.learning_rate, "event_id": ev.event_id});
            store.update_job_status(
                job_id,
                last_status,
                &ev.message,
                Some(&data.to_string()),
                None,
            )?;
            show(WatchEvent::Update(&ev));
        }
        let status = update.status.unwrap_or(JobStatus::Running);
        let changed = status != last_status || update.loss.is_some() || update.step.is_some();
        if changed {
            let data = json!({"step": update.step, "total_steps": update.total_steps, "loss": update.loss, "raw_status": update.raw_status});
            let result = update
                .model_id
                .as_ref()
                .map(|m| json!({"model_id": m}).to_string());
            let message = update.error.clone().unwrap_or_else(|| {
                if update.message.is_empty() {
                    update.raw_status.clone()
                } else {
                    update.message.clone()
                }
            });
            store.update_job_status(
                job_id,
                status,
                &message,
                Some(&data.to_string()),
                result.as_deref(),
            )?;
            last_status = status;
        }
        show(WatchEvent::Update(&update));
        if status.is_terminal() {
            return Ok(status);
        }
        if options.max_polls.is_some_and(|m| polls >= m) {
            return Ok(status);
        }
        tokio::time::sleep(options.poll).await;
    }
}

/// Records why a watch stopped as an event of the job, its status unchanged (the watch
/// failed, not the job as far as anyone knows); the error to return.
fn watch_stopped(
    store: &Store,
    job_id: i64,
    transient: bool,
    message: String,
) -> Result<TuneError, TuneError> {
    let status = store.job(job_id)?.status;
    store.update_job_status(job_id, status, &message, None, None)?;
    Ok(TuneError::WatchStopped {
        job: job_id,
        transient,
        message,
    })
}

/// The provider's id of the newest event stored for a job.
fn last_event_id(store: &Store, job_id: i64) -> Result<Option<String>, TuneError> {
    Ok(store.job_events(job_id)?.iter().rev().find_map(|e| {
        let data: serde_json::Value = serde_json::from_str(e.data_json.as_deref()?).ok()?;
        data["event_id"].as_str().map(String::from)
    }))
}

/// A wait in words: `250 ms`, `4 s`, `4.5 s`, `37 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else if s < 10.0 {
        let text = format!("{s:.1}");
        format!("{} s", text.trim_end_matches(".0"))
    } else {
        format!("{s:.0} s")
    }
}

/// The model a tuning job made, and the provider that serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct TunedModel {
    pub job: i64,
    pub provider: TuneProvider,
    pub model_id: String,
}

/// The tuned model of a job, once the job has one.
pub fn tuned_model(store: &Store, job_id: i64) -> Result<Option<TunedModel>, TuneError> {
    let job = store.job(job_id)?;
    Ok(job
        .result_json
        .as_deref()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|v| v["model_id"].as_str().map(String::from))
        .map(|model_id| TunedModel {
            job: job_id,
            provider: job.provider,
            model_id,
        }))
}

/// The model id of a job, once it has one.
pub fn job_model(store: &Store, job_id: i64) -> Result<Option<String>, TuneError> {
    Ok(tuned_model(store, job_id)?.map(|t| t.model_id))
}
