//! The stages as library code, usable from the CLI, the TUI and tests.

pub mod coverage;
pub mod eval;
pub mod eval_files;
pub mod exchange;
pub mod generate;
pub mod inference;
pub mod model_eval;
pub mod prompts;
pub mod validate;

use std::sync::Arc;

use crate::llm::{ClientOptions, LlmClient, LlmError, backend_for};
use crate::project::Project;
use crate::store::Store;

/// The LLM client of a project: the profile named by `profile_override` or `llm.default`
/// (the offline `rules` backend when neither names one), with its limits, the store's cache
/// and call log.
pub fn llm_client(
    project: &Project,
    store: Option<Arc<Store>>,
    profile_override: Option<&str>,
    use_cache: bool,
    run_id: Option<i64>,
) -> Result<Arc<LlmClient>, LlmError> {
    let name = project.config.profile_name(profile_override).to_string();
    let profile = project
        .config
        .profile(profile_override)
        .map_err(|e| LlmError::Config {
            message: e.to_string(),
        })?;
    let backend = backend_for(&name, &profile, &project.config, Some(project))?;
    let options = ClientOptions {
        profile: name,
        max_concurrency: profile.max_concurrency.max(1),
        requests_per_minute: profile.requests_per_minute,
        use_cache,
        run_id,
        ..ClientOptions::default()
    };
    Ok(Arc::new(LlmClient::new(backend, options, store)))
}

/// A client for a tuned model: the model of a succeeded tuning job, or `memory:<dataset>`.
pub fn tuned_model_client(
    project: &Project,
    store: &Arc<Store>,
    job_id: Option<i64>,
    model: Option<&str>,
) -> Result<Arc<LlmClient>, LlmError> {
    use crate::llm::{Backend, LaminiBackend, OpenAiBackend};
    let cfg = |e: String| LlmError::Config { message: e };
    let (provider, model_id) = match (job_id, model) {
        (Some(j), _) => {
            let job = store.job(j).map_err(|e| cfg(e.to_string()))?;
            let id = crate::tune::job_model(store, j)
                .map_err(|e| cfg(e.to_string()))?
                .ok_or_else(|| cfg(format!("job {j} has no tuned model yet (status {}); watch it with `lode jobs watch {j}`", job.status)))?;
            (job.provider, id)
        }
        (None, Some(m)) if m.starts_with("memory:") => ("memory".to_string(), m.to_string()),
        (None, Some(m)) => {
            return Err(cfg(format!(
                "`{m}` is not a tuned model lode knows; use --job ID or memory:<dataset>"
            )));
        }
        (None, None) => return Err(cfg("no model given".into())),
    };
    let timeout = std::time::Duration::from_secs(120);
    let backend: Arc<dyn Backend> = match provider.as_str() {
        "memory" => Arc::new(crate::tune::memory::MemoryBackend::load(
            &model_id, project, store,
        )?),
        "lamini" => {
            let key = project
                .config
                .api
                .key
                .clone()
                .ok_or_else(|| cfg("set LAMINI_API_KEY to query a Lamini model".into()))?;
            Arc::new(LaminiBackend::new(
                &project.config.api.url,
                &model_id,
                key,
                timeout,
            )?)
        }
        "openai" => {
            let o = &project.config.tune.openai;
            let key = std::env::var(&o.api_key_env)
                .ok()
                .map(crate::config::Secret::new);
            Arc::new(OpenAiBackend::new(
                &o.base_url,
                &model_id,
                key,
                serde_json::json!({}),
                timeout,
            )?)
        }
        other => {
            return Err(cfg(format!(
                "a {other} model is not served by lode: serve {model_id} (for example with vLLM) and add an openai profile for it"
            )));
        }
    };
    let options = ClientOptions {
        profile: format!("tuned:{provider}"),
        max_concurrency: 8,
        ..ClientOptions::default()
    };
    Ok(Arc::new(LlmClient::new(
        backend,
        options,
        Some(Arc::clone(store)),
    )))
}

/// A runtime for the async LLM calls of a command.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
