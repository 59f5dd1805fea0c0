//! The safe executor: the only way SQL reaches a user database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::Value;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExecLimits {
    pub timeout: Duration,
    pub max_rows: usize,
    pub max_cell_bytes: usize,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits { timeout: Duration::from_secs(10), max_rows: 10_000, max_cell_bytes: 4096 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
    pub truncated_cells: usize,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("todo")]
    Todo,
}

pub struct Database {
    path: PathBuf,
    limits: ExecLimits,
}

impl Database {
    pub fn open(path: &Path, limits: ExecLimits) -> Result<Database, ExecError> {
        Ok(Database { path: path.to_path_buf(), limits })
    }
    pub fn query(&self, _sql: &str) -> Result<QueryResult, ExecError> {
        let _ = (&self.path, self.limits);
        Err(ExecError::Todo)
    }
}
