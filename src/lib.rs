//! lode: build domain-specific text-to-SQL models.
//!
//! The library holds every stage (project inputs, the workspace store, the safe SQL engine,
//! analysis); the `lode` binary is a thin command line over it.

pub mod bench;
pub mod cli;
mod cli_analyze;
mod cli_coverage;
mod cli_eval;
mod cli_generate;
mod cli_review;
mod cli_tune;
pub mod config;
pub mod diag;
pub mod llm;
pub mod pipeline;
pub mod project;
pub mod sql;
pub mod store;
pub mod tui;
pub mod tune;
