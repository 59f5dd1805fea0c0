//! The stages' engines: generation, validation, coverage, evaluation and exchange formats.
//! Workflows over them (with the model chosen and progress reported) are in `tasks`.

pub mod audit;
pub mod coverage;
pub mod eval;
pub mod eval_files;
pub mod exchange;
pub mod generate;
pub mod inference;
pub mod model_eval;
pub mod neighbours;
pub mod prompts;
pub mod review;
pub mod reward;
pub mod samples;
pub mod stats;
pub mod validate;
