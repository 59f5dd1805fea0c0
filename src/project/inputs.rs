//! Project inputs: glossary and gold/eval sets in every format the original accepted.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlossaryEntry {
    pub term: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldPair {
    pub question: String,
    pub sql: String,
    /// Spider's db_id when the set came from a Spider-style file.
    pub db_id: Option<String>,
}
