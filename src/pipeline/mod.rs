//! The stages as library code, usable from the CLI, the TUI and tests: evaluation so far.

pub mod eval;
pub mod eval_files;
pub mod model_eval;
