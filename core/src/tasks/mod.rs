//! The task layer: one function per workflow (generate, analyze, evaluate, tune and jobs, the
//! demo), called by both faces. A task takes typed inputs (the project, the model request,
//! options), reports what it does through one [`StageEvent`] stream, and returns a typed
//! outcome. The CLI draws the events as progress bars and summaries, the TUI as footer
//! progress and messages; `lode demo` runs the same tasks in a row. [`model::choose`] is the
//! only place a stage's model is picked, and every `Finished` summary names it.

pub mod analyze;
pub mod demo;
pub mod evaluate;
pub mod generate;
pub mod model;
pub mod tune;

use std::sync::Arc;

/// Stops a task: the CLI fires it on ctrl-c, the TUI on its cancel key.
pub use tokio_util::sync::CancellationToken;

use crate::store::{LlmCallStats, Store};

/// The workflow an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Generate,
    Analyze,
    Tune,
    Evaluate,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Generate => "generation",
            Stage::Analyze => "analysis",
            Stage::Tune => "tuning",
            Stage::Evaluate => "evaluation",
        }
    }
}

/// What a task tells its face while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum StageEvent {
    /// The task began; `detail` names the model it uses, where it uses one.
    Started { stage: Stage, detail: String },
    /// `done` of `total` units (`questions`, `gaps`, `steps`) finished.
    Progress {
        stage: Stage,
        done: u64,
        total: u64,
        unit: &'static str,
    },
    /// One item (a pair, a verdict, a job event) is committed to the store.
    ItemStored { stage: Stage, what: String },
    /// Something the user should know that did not stop the task.
    Warning { stage: Stage, message: String },
    /// The task ended; a one-line summary naming the model.
    Finished { stage: Stage, summary: String },
    /// The task stopped with an error (also returned as the task's `Err`).
    Failed { stage: Stage, error: String },
}

/// Where a task sends its events. Cheap to clone; safe to call from any thread.
#[derive(Clone)]
pub struct Reporter {
    sink: Arc<dyn Fn(StageEvent) + Send + Sync>,
}

impl Reporter {
    pub fn new(sink: impl Fn(StageEvent) + Send + Sync + 'static) -> Reporter {
        Reporter {
            sink: Arc::new(sink),
        }
    }

    pub fn emit(&self, event: StageEvent) {
        (self.sink)(event)
    }

    pub fn warn(&self, stage: Stage, message: impl Into<String>) {
        self.emit(StageEvent::Warning {
            stage,
            message: message.into(),
        })
    }

    /// Reports `Failed` for an error on its way out of a task.
    fn failed<T>(&self, stage: Stage, r: Result<T, TaskError>) -> Result<T, TaskError> {
        if let Err(e) = &r {
            self.emit(StageEvent::Failed {
                stage,
                error: e.to_string(),
            });
        }
        r
    }
}

/// Why a task stopped.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    #[error(transparent)]
    Generate(#[from] crate::pipeline::generate::GenerateError),
    #[error(transparent)]
    Tune(#[from] crate::tune::TuneError),
    #[error(transparent)]
    Input(#[from] crate::diag::InputError),
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    #[error(transparent)]
    Demo(#[from] crate::project::demo::DemoError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The inputs of the task do not fit the project (a bad option value, no eval set).
    #[error("{0}")]
    Invalid(String),
    /// Stopped by the user (ctrl-c, a cancel key); what was stored stays.
    #[error("interrupted: {0}")]
    Cancelled(String),
}

impl TaskError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TaskError {
        let context = context.into();
        move |source| TaskError::Io { context, source }
    }
}

/// LLM calls, tokens and latency a task spent (the difference of the store's totals).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallsSpent(pub LlmCallStats);

impl CallsSpent {
    fn between(before: &LlmCallStats, after: &LlmCallStats) -> CallsSpent {
        CallsSpent(LlmCallStats {
            calls: after.calls - before.calls,
            cached: after.cached - before.cached,
            failed: after.failed - before.failed,
            prompt_tokens: after.prompt_tokens - before.prompt_tokens,
            completion_tokens: after.completion_tokens - before.completion_tokens,
            total_latency_ms: after.total_latency_ms - before.total_latency_ms,
        })
    }

    /// `LLM calls: 12 (3 from the cache, 0 failed), …`; `None` when no call was made.
    pub fn describe(&self) -> Option<String> {
        let s = &self.0;
        (s.calls > 0).then(|| {
            format!(
                "LLM calls: {} ({} from the cache, {} failed), {} prompt + {} completion tokens, \
                 {:.1} s of latency",
                s.calls,
                s.cached,
                s.failed,
                s.prompt_tokens,
                s.completion_tokens,
                s.total_latency_ms / 1000.0
            )
        })
    }
}

/// Reports the store writes (cache, call log) a client could not make.
fn report_store_errors(reporter: &Reporter, stage: Stage, client: &crate::llm::LlmClient) {
    for e in client.take_store_errors() {
        reporter.warn(stage, e);
    }
}

fn call_stats(store: &Store) -> Result<LlmCallStats, TaskError> {
    Ok(store.llm_call_stats(None)?)
}

/// A runtime for a face that is not async itself (the CLI, the demo).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
