//! A lode project: its inputs (glossary, gold and eval sets), the schema of its database, and
//! the generated demo project.

pub mod demo;
pub mod inputs;
pub mod schema;

pub use inputs::{GlossaryEntry, GoldPair};
pub use schema::{Column, ForeignKey, Index, Schema, Table};
