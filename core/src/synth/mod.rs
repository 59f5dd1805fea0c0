//! The offline question/SQL synthesis: words for a schema's names, SQL written from the
//! schema and its data with the question that says what it does, and the check that a
//! question and its SQL agree.

pub mod names;
pub mod retrieve;
