//! lode-core: build domain-specific text-to-SQL models, as a library.
//!
//! Every stage lives here (project inputs, the workspace store, the safe SQL engine and its
//! analysis, LLM clients, the offline rules engine, generation, coverage, tuning, evaluation)
//! with the task layer over them that both faces of the `lode` binary call. Arrows run one
//! way: tasks → pipeline/tune → sqlprompt/rules/llm → project/store/sql → config/diag.

pub mod config;
pub mod diag;
pub mod llm;
pub mod pipeline;
pub mod project;
pub mod rules;
pub mod sql;
pub mod sqlprompt;
pub mod store;
pub mod synth;
pub mod tasks;
pub mod tune;

/// The `User-Agent` of every HTTP request lode makes (LLM servers and tuning providers).
pub const USER_AGENT: &str = concat!("lode/", env!("CARGO_PKG_VERSION"));
