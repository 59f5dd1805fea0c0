//! lode: build domain-specific text-to-SQL models.
//!
//! The library holds every stage (project inputs, the workspace store, the safe SQL engine,
//! analysis); the `lode` binary is a thin command line over it.

pub mod cli;
pub mod config;
pub mod project;
pub mod sql;
pub mod store;
