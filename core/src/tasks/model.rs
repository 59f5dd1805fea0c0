//! The one place that decides which model a stage talks to. Every face (the CLI, the TUI and
//! `lode demo`) asks [`choose`]; nothing else builds an LLM client for a stage.
//!
//! Generation and analysis use an LLM profile: `--profile`, else `llm.default`, else the
//! offline `rules` backend. Evaluation asks, in this order: `--job ID` (that job's tuned
//! model), `--model memory:<dataset>`, `--profile NAME`; with none of them, the model of the
//! newest succeeded tuning job that lode can query, else the profile as above.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Secret;
use crate::llm::{Backend, ClientOptions, LaminiBackend, LlmClient, LlmError, OpenAiBackend};
use crate::project::Project;
use crate::store::{Store, TuneProvider};
use crate::tune::{JobStatus, TunedModel};

/// What the user asked for (flags and config); all empty means "the default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelRequest {
    /// `--profile`: an LLM profile from `llm.profiles`.
    pub profile: Option<String>,
    /// `--job`: the tuned model of that job (evaluation only).
    pub job: Option<i64>,
    /// `--model`: `memory:<dataset>` (evaluation only).
    pub model: Option<String>,
    /// `--no-cache` turns this off: answers are not taken from the store's cache (the answers
    /// received are still stored in it).
    pub use_cache: bool,
}

impl ModelRequest {
    /// The defaults: `llm.default` (or the newest tuned model, for evaluation), with the cache.
    pub fn default_model() -> ModelRequest {
        ModelRequest {
            use_cache: true,
            ..ModelRequest::default()
        }
    }

    /// The named profile, with the cache.
    pub fn profile(name: &str) -> ModelRequest {
        ModelRequest {
            profile: Some(name.to_string()),
            use_cache: true,
            ..ModelRequest::default()
        }
    }
}

/// What a model answers for: generation (and gap filling, topics) or evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Writing and fixing training pairs: always an LLM profile.
    Generate,
    /// Answering the eval questions: a tuned model when there is one.
    Evaluate,
}

/// Where the chosen model came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// An LLM profile (`--profile` or `llm.default`).
    Profile { name: String },
    /// The tuned model of a tuning job.
    TunedJob {
        job: i64,
        provider: TuneProvider,
        model_id: String,
    },
    /// The offline memory model of a dataset (`--model memory:<dataset>`).
    Memory { model_id: String },
}

/// The model a stage will use, ready to call, with the words every summary names it by.
pub struct ModelChoice {
    pub source: ModelSource,
    /// How summaries, reports and stored runs name it, e.g. `profile default (rules:rules)` or
    /// `tuned model memory:ds3 of job 2`.
    pub label: String,
    /// The short identity stored with evaluation runs: `kind:model`.
    pub model_id: String,
    /// Why the obvious choice was passed over, if it was (shown as a warning).
    pub note: Option<String>,
    pub client: Arc<LlmClient>,
}

/// Picks and builds the model a stage uses. `run_id` tags the LLM calls in the store's log.
pub fn choose(
    project: &Project,
    store: &Arc<Store>,
    request: &ModelRequest,
    purpose: Purpose,
    run_id: Option<i64>,
) -> Result<ModelChoice, LlmError> {
    let cfg = |message: String| LlmError::Config { message };
    if purpose == Purpose::Evaluate {
        if let Some(job) = request.job {
            let tuned = crate::tune::tuned_model(store, job)
                .map_err(|e| cfg(e.to_string()))?
                .ok_or_else(|| {
                    let status = store
                        .job(job)
                        .map_or_else(|e| e.to_string(), |j| j.status.to_string());
                    cfg(format!(
                        "job {job} has no tuned model yet (status {status}); watch it with \
                         `lode jobs watch {job}`"
                    ))
                })?;
            return tuned_choice(project, store, tuned, None, request.use_cache);
        }
        if let Some(model) = &request.model {
            let Some(dataset) = model.strip_prefix("memory:") else {
                return Err(cfg(format!(
                    "`{model}` is not a tuned model lode knows; use --job ID or memory:<dataset>"
                )));
            };
            if dataset.is_empty() {
                return Err(cfg("--model memory:<dataset> needs a dataset id".into()));
            }
            let backend: Arc<dyn Backend> = Arc::new(crate::tune::memory::MemoryBackend::load(
                model, project, store,
            )?);
            return Ok(ModelChoice {
                source: ModelSource::Memory {
                    model_id: model.clone(),
                },
                label: format!("memory model {model}"),
                model_id: model.clone(),
                note: None,
                client: tuned_client(backend, TuneProvider::Memory, store, request.use_cache),
            });
        }
        if request.profile.is_none() {
            let mut note = None;
            let jobs = store.jobs().map_err(|e| cfg(e.to_string()))?;
            for job in jobs.iter().filter(|j| j.status == JobStatus::Succeeded) {
                let Some(tuned) =
                    crate::tune::tuned_model(store, job.id).map_err(|e| cfg(e.to_string()))?
                else {
                    continue;
                };
                if served_by_lode(tuned.provider) {
                    return tuned_choice(project, store, tuned, note, request.use_cache);
                }
                note.get_or_insert_with(|| {
                    format!(
                        "the newest tuned model ({} of job {}, {}) is not served by lode; serve \
                         it (for example with vLLM) and add an openai profile for it",
                        tuned.model_id, tuned.job, tuned.provider
                    )
                });
            }
            let mut choice = profile_choice(project, store, request, run_id)?;
            choice.note = note;
            return Ok(choice);
        }
    }
    profile_choice(project, store, request, run_id)
}

/// Providers whose tuned models lode can query itself.
fn served_by_lode(provider: TuneProvider) -> bool {
    matches!(
        provider,
        TuneProvider::Memory | TuneProvider::Lamini | TuneProvider::OpenAi
    )
}

fn profile_choice(
    project: &Project,
    store: &Arc<Store>,
    request: &ModelRequest,
    run_id: Option<i64>,
) -> Result<ModelChoice, LlmError> {
    let client = profile_client(
        project,
        Some(Arc::clone(store)),
        request.profile.as_deref(),
        request.use_cache,
        run_id,
    )?;
    let name = client.options().profile.clone();
    let model_id = format!("{}:{}", client.backend().kind(), client.backend().model());
    Ok(ModelChoice {
        label: format!("profile {name} ({model_id})"),
        source: ModelSource::Profile { name },
        model_id,
        note: None,
        client,
    })
}

/// The client of an LLM profile: `profile` or `llm.default` (the offline `rules` backend
/// when neither names one), with its limits, and the store's cache and call log when a store
/// is given. `lode llm check` uses it without a store.
pub fn profile_client(
    project: &Project,
    store: Option<Arc<Store>>,
    profile: Option<&str>,
    use_cache: bool,
    run_id: Option<i64>,
) -> Result<Arc<LlmClient>, LlmError> {
    let name = project.config.profile_name(profile).to_string();
    let settings = project
        .config
        .profile(profile)
        .map_err(|e| LlmError::Config {
            message: e.to_string(),
        })?;
    let backend: Arc<dyn Backend> = match settings.kind {
        crate::config::ProfileKind::Rules => {
            Arc::new(crate::rules::RulesBackend::new(project, settings.seed))
        }
        _ => crate::llm::remote_backend(&name, &settings, &project.config)?,
    };
    let options = ClientOptions {
        profile: name,
        max_concurrency: settings.max_concurrency.max(1),
        requests_per_minute: settings.requests_per_minute,
        use_cache,
        run_id,
        max_tokens: Some(settings.max_tokens),
        answer_temperature: Some(settings.answer_temperature),
        ..ClientOptions::default()
    };
    Ok(Arc::new(LlmClient::new(backend, options, store)))
}

fn tuned_choice(
    project: &Project,
    store: &Arc<Store>,
    tuned: TunedModel,
    note: Option<String>,
    use_cache: bool,
) -> Result<ModelChoice, LlmError> {
    let cfg = |message: String| LlmError::Config { message };
    let timeout = Duration::from_secs(120);
    let model_id = tuned.model_id.clone();
    let backend: Arc<dyn Backend> = match tuned.provider {
        TuneProvider::Memory => Arc::new(crate::tune::memory::MemoryBackend::load(
            &model_id, project, store,
        )?),
        TuneProvider::Lamini => {
            let key = project
                .config
                .api
                .key
                .clone()
                .ok_or_else(|| cfg("set LAMINI_API_KEY to query a Lamini model".into()))?;
            Arc::new(
                LaminiBackend::new(&project.config.api.url, &model_id, key, timeout)?
                    .with_known_secrets(crate::llm::known_secrets(&project.config)),
            )
        }
        TuneProvider::OpenAi => {
            let o = &project.config.tune.openai;
            let key = std::env::var(&o.api_key_env).ok().map(Secret::new);
            Arc::new(
                OpenAiBackend::new(&o.base_url, &model_id, key, serde_json::json!({}), timeout)?
                    .with_known_secrets(crate::llm::known_secrets(&project.config)),
            )
        }
        other @ TuneProvider::Local => {
            return Err(cfg(format!(
                "a {other} model is not served by lode: serve {model_id} (for example with vLLM) \
                 and add an openai profile for it"
            )));
        }
    };
    Ok(ModelChoice {
        label: format!("tuned model {model_id} of job {}", tuned.job),
        model_id: model_id.clone(),
        source: ModelSource::TunedJob {
            job: tuned.job,
            provider: tuned.provider,
            model_id,
        },
        note,
        client: tuned_client(backend, tuned.provider, store, use_cache),
    })
}

fn tuned_client(
    backend: Arc<dyn Backend>,
    provider: TuneProvider,
    store: &Arc<Store>,
    use_cache: bool,
) -> Arc<LlmClient> {
    // `--no-cache` holds for tuned models too: a memory model re-indexed under the same id
    // would otherwise answer with the replies stored before.
    let options = ClientOptions {
        profile: format!("tuned:{provider}"),
        max_concurrency: 8,
        use_cache,
        ..ClientOptions::default()
    };
    Arc::new(LlmClient::new(backend, options, Some(Arc::clone(store))))
}
