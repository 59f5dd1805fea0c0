//! LLM backends behind one trait: an OpenAI-compatible client (OpenAI, Lamini's `/inf`, vLLM,
//! SGLang, Ollama, llama-server, LM Studio, Together), Lamini's own completions API, and the
//! offline `rules` backend. [`LlmClient`] adds what makes them dependable: retries with
//! backoff, concurrency and rate limits, timeouts, cancellation, the response cache and the
//! call log in the workspace store.

mod client;
mod lamini;
mod openai;
mod output_schema;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use client::{ANSWER_PURPOSES, ClientOptions, DEFAULT_MAX_TOKENS, LlmClient};
pub use lamini::{LaminiBackend, llama3_prompt as lamini_prompt};
pub use openai::OpenAiBackend;
pub(crate) use openai::{retry_after_capped, root_cause};
pub use output_schema::{OutputSchema, extract_json};

use crate::config::{Config, LlmProfile, ProfileKind, Secret};
use crate::store::ErrorKind;

/// A boxed future, so backends can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message {
            role: "system".into(),
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// Sampling parameters; `None` leaves the server's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<u64>,
}

/// What a request asks, in a form the offline rules backend can answer without reading the
/// prompt. HTTP backends ignore it and send the messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Write SQL answering a question (schema-to-SQL, and model inference in evaluation).
    QuestionToSql { question: String },
    /// New questions in the manner of a gold pair. `generator` is pattern, variation,
    /// decomposer, comparative, edge_case, granular or paraphrase.
    SimilarQuestions {
        generator: String,
        question: String,
        sql: String,
        count: usize,
        /// Which call this is for the same gold pair (0, 1, ...): later calls ask for
        /// further questions.
        #[serde(default)]
        offset: usize,
    },
    /// Fix a query that failed, given the error.
    DebugSql {
        question: String,
        sql: String,
        error: String,
    },
    /// SQL first: a query at a complexity level, with its question (OmniSQL style).
    SqlFirst {
        level: String,
        /// Which pair of this level is asked for (0, 1, ...).
        #[serde(default)]
        offset: usize,
    },
    /// Business topics of a question (coverage analysis).
    Topics { question: String },
    /// A pair that fills a coverage gap: `kind` is `concept`, `table`, `join` (`a|b`) or
    /// `topic`; `offset` asks for a further pair for the same gap.
    FillGap {
        kind: String,
        target: String,
        #[serde(default)]
        offset: usize,
    },
}

/// One request to a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmRequest {
    pub messages: Vec<Message>,
    /// The structured answer wanted; `None` for free text.
    pub schema: Option<OutputSchema>,
    pub sampling: Sampling,
    /// What the call is for (a generator's name, `eval`, `judge`); logged, not sent.
    pub purpose: String,
    /// The task, for the rules backend; not sent.
    #[serde(skip)]
    pub task: Option<Task>,
}

impl LlmRequest {
    pub fn new(purpose: &str, messages: Vec<Message>) -> LlmRequest {
        LlmRequest {
            messages,
            schema: None,
            sampling: Sampling::default(),
            purpose: purpose.to_string(),
            task: None,
        }
    }

    pub fn with_schema(mut self, schema: OutputSchema) -> Self {
        self.schema = Some(schema);
        self
    }

    pub fn with_task(mut self, task: Task) -> Self {
        self.task = Some(task);
        self
    }
}

/// Token counts as the server reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A model's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// The structured answer, checked against the request's schema.
    pub json: Option<Json>,
    /// The text the model produced.
    pub text: String,
    pub usage: Option<Usage>,
    #[serde(skip)]
    pub latency: Duration,
    /// Served from the cache.
    #[serde(skip)]
    pub cached: bool,
    /// Requests sent for it, retries included (0 when served from the cache).
    #[serde(skip)]
    pub attempts: u32,
    /// Why each earlier attempt was retried.
    #[serde(skip)]
    pub retries: Vec<String>,
}

/// Why a call failed. Each carries the provider's message where there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("authentication failed: {message}")]
    Auth { message: String },
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("timed out after {:.1} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("request refused ({status}): {message}")]
    BadRequest { status: u16, message: String },
    #[error("the model is not available: {message}")]
    ModelUnavailable { message: String, retryable: bool },
    #[error("cannot reach the server: {message}")]
    Network { message: String },
    #[error("unusable response: {message}")]
    BadResponse { message: String },
    #[error("the answer does not fit the requested shape: {message}")]
    SchemaViolation { message: String, text: String },
    #[error("cancelled")]
    Cancelled,
    #[error("{message}")]
    Unsupported { message: String },
    #[error("configuration: {message}")]
    Config { message: String },
    /// The answer was cut at the token limit (`finish_reason: length`).
    #[error("the answer was cut off at the token limit: {message}")]
    Truncated { message: String },
    /// Not sent: earlier calls of the same client failed in a way retrying will not fix.
    #[error("{message}")]
    Halted { message: String },
}

impl LlmError {
    /// What kind of failure it is, stored with failed calls.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LlmError::Auth { .. } => ErrorKind::Auth,
            LlmError::RateLimited { .. } => ErrorKind::RateLimit,
            LlmError::Timeout(_) => ErrorKind::Timeout,
            LlmError::Server { .. } => ErrorKind::Server,
            LlmError::BadRequest { .. } => ErrorKind::BadRequest,
            LlmError::ModelUnavailable { .. } => ErrorKind::ModelUnavailable,
            LlmError::Network { .. } => ErrorKind::Network,
            LlmError::BadResponse { .. } => ErrorKind::BadResponse,
            LlmError::SchemaViolation { .. } => ErrorKind::SchemaViolation,
            LlmError::Cancelled => ErrorKind::Cancelled,
            LlmError::Unsupported { .. } => ErrorKind::Unsupported,
            LlmError::Config { .. } => ErrorKind::Config,
            LlmError::Truncated { .. } => ErrorKind::Truncated,
            LlmError::Halted { .. } => ErrorKind::Halted,
        }
    }

    /// An error that the next call would meet too: a refused key, an unknown model, a
    /// server that could not be reached even after retries, a configuration mistake. The
    /// client's circuit breaker counts them.
    pub fn is_permanent(&self) -> bool {
        match self {
            // Not `Unsupported`: that is one request the backend cannot answer (the offline
            // rules backend and a free-form validator prompt), not a server that is gone.
            LlmError::Auth { .. }
            | LlmError::Network { .. }
            | LlmError::Config { .. }
            | LlmError::Halted { .. } => true,
            LlmError::ModelUnavailable { retryable, .. } => !retryable,
            _ => false,
        }
    }

    /// Worth another try after a pause.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. }
            | LlmError::Timeout(_)
            | LlmError::Server { .. }
            | LlmError::Network { .. } => true,
            LlmError::ModelUnavailable { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The error with every known secret and credential-looking token taken out of its
    /// texts ([`crate::config::redact`]), before it is shown, stored or written.
    pub fn redacted(self, known: &[Secret]) -> LlmError {
        let r = |m: String| crate::config::redact(&m, known);
        match self {
            LlmError::Auth { message } => LlmError::Auth {
                message: r(message),
            },
            LlmError::RateLimited {
                message,
                retry_after,
            } => LlmError::RateLimited {
                message: r(message),
                retry_after,
            },
            LlmError::Server { status, message } => LlmError::Server {
                status,
                message: r(message),
            },
            LlmError::BadRequest { status, message } => LlmError::BadRequest {
                status,
                message: r(message),
            },
            LlmError::ModelUnavailable { message, retryable } => LlmError::ModelUnavailable {
                message: r(message),
                retryable,
            },
            LlmError::Network { message } => LlmError::Network {
                message: r(message),
            },
            LlmError::BadResponse { message } => LlmError::BadResponse {
                message: r(message),
            },
            LlmError::SchemaViolation { message, text } => LlmError::SchemaViolation {
                message: r(message),
                text: r(text),
            },
            LlmError::Unsupported { message } => LlmError::Unsupported {
                message: r(message),
            },
            LlmError::Config { message } => LlmError::Config {
                message: r(message),
            },
            LlmError::Truncated { message } => LlmError::Truncated {
                message: r(message),
            },
            LlmError::Halted { message } => LlmError::Halted {
                message: r(message),
            },
            e @ (LlmError::Timeout(_) | LlmError::Cancelled) => e,
        }
    }

    /// How long the server asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A model endpoint.
pub trait Backend: Send + Sync {
    /// `openai`, `lamini` or `rules`.
    fn kind(&self) -> &'static str;
    /// The model asked for.
    fn model(&self) -> &str;
    /// Sends one request (no retries: [`LlmClient`] adds them).
    fn complete<'a>(
        &'a self,
        request: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<LlmResponse, LlmError>>;
    /// The models the server offers, where it can say.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// How structured answers are asked for: `json_schema` (enforced by the server),
    /// `json_object`, `prompt_only` (the shape asked for in the prompt), `output_type`
    /// (Lamini); `None` until known.
    fn structured_mode(&self) -> Option<&'static str> {
        None
    }
    /// Why the server is asked in the mode it is (the server's refusal of a better one).
    fn structured_mode_reason(&self) -> Option<String> {
        None
    }
    /// Starts in a mode learnt in an earlier process (`None` when the text is not a mode of
    /// this backend); returns the mode taken.
    fn restore_structured_mode(&self, _mode: &str) -> Option<&'static str> {
        None
    }
    /// The server and model the backend talks to (`openai http://host/v1 model`), for
    /// remembering what the server supports; `None` for backends without a server.
    fn server_key(&self) -> Option<String> {
        None
    }
    /// Everything about a request that changes the answer, as one text: for a server, its
    /// address and the body sent (after `extra_body` is merged). The cache keys on it.
    fn cache_identity(&self, request: &LlmRequest) -> String {
        // Plain data (strings, numbers, maps with string keys): serializing cannot fail.
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.kind(),
            self.model(),
            serde_json::to_string(&request.messages).unwrap_or_default(),
            serde_json::to_string(&request.schema).unwrap_or_default(),
            serde_json::to_string(&request.sampling).unwrap_or_default(),
        )
    }
}

/// The API key of a profile: `api_key` (after `${VAR}`), else the variable named by
/// `api_key_env`, else for `lamini` profiles `api.key` / `LAMINI_API_KEY`.
pub fn resolve_key(profile: &LlmProfile, config: &Config) -> Option<Secret> {
    if let Some(k) = profile.api_key.as_ref().filter(|k| !k.expose().is_empty()) {
        return Some(k.clone());
    }
    if let Some(var) = &profile.api_key_env
        && let Ok(v) = std::env::var(var)
        && !v.is_empty()
    {
        return Some(Secret::new(v));
    }
    if profile.kind == ProfileKind::Lamini {
        return config.api.key.clone();
    }
    None
}

/// Every key the configuration knows: `api.key` (or `LAMINI_API_KEY`), each profile's key as
/// [`resolve_key`] finds it, and the OpenAI tuning key (`tune.openai.api_key_env`). Error
/// texts from servers are redacted with them.
pub fn known_secrets(config: &Config) -> Vec<Secret> {
    let mut keys: Vec<Secret> = config.api.key.iter().cloned().collect();
    keys.extend(
        config
            .llm
            .profiles
            .values()
            .filter_map(|p| resolve_key(p, config)),
    );
    if let Ok(k) = std::env::var(&config.tune.openai.api_key_env)
        && !k.is_empty()
    {
        keys.push(Secret::new(k));
    }
    keys.dedup();
    keys
}

/// The backend of a profile that names a server (openai or lamini). The offline `rules`
/// profile is built by the task layer (`tasks::model`), which has the project it needs.
pub fn remote_backend(
    name: &str,
    profile: &LlmProfile,
    config: &Config,
) -> Result<Arc<dyn Backend>, LlmError> {
    let timeout = Duration::from_secs_f64(profile.timeout_s.max(0.1));
    match profile.kind {
        ProfileKind::Openai => {
            let base = profile.base_url.clone().ok_or_else(|| LlmError::Config {
                message: format!(
                    "profile `{name}` needs a base_url (for example http://127.0.0.1:8000/v1)"
                ),
            })?;
            let model = profile.model.clone().ok_or_else(|| LlmError::Config {
                message: format!("profile `{name}` needs a model"),
            })?;
            Ok(Arc::new(
                OpenAiBackend::new(
                    &base,
                    &model,
                    resolve_key(profile, config),
                    profile.extra_body.clone(),
                    timeout,
                )?
                .with_known_secrets(known_secrets(config)),
            ))
        }
        ProfileKind::Lamini => {
            let base = profile
                .base_url
                .clone()
                .unwrap_or_else(|| config.api.url.clone());
            let model = profile
                .model
                .clone()
                .unwrap_or_else(|| config.model.default.clone());
            let key = resolve_key(profile, config).ok_or_else(|| LlmError::Config {
                message: format!(
                    "profile `{name}` has no API key: set LAMINI_API_KEY, api.key, or the profile's api_key_env"
                ),
            })?;
            Ok(Arc::new(
                LaminiBackend::new(&base, &model, key, timeout)?
                    .with_known_secrets(known_secrets(config)),
            ))
        }
        ProfileKind::Rules => Err(LlmError::Config {
            message: format!(
                "profile `{name}` is the offline rules backend, which is built with its project \
                 by lode_core::tasks::model::profile_client"
            ),
        }),
    }
}
