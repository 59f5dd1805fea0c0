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

/// A runtime for the async LLM calls of a command.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
