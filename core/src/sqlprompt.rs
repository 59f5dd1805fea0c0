//! The text-to-SQL prompt, one for training and for inference (the original trained without
//! the glossary and queried with it), and the retrieval index that picks worked examples for
//! a question. Tuning exports and inference both import this module, so a tuned model is
//! asked exactly the way it was taught.

use crate::llm::{LlmRequest, Message, OutputSchema, Task};
use crate::project::inputs::normalize_question;
use crate::project::{GlossaryEntry, format_glossary};
use crate::sql::schema::Schema;

/// The system message of the text-to-SQL prompt.
pub const SYSTEM: &str = "You are an expert SQLite analyst. Answer the question with one \
                          read-only SQLite query.";

/// The system message for a PostgreSQL database.
pub const SYSTEM_POSTGRES: &str = "You are an expert PostgreSQL analyst. Answer the question \
                                   with one read-only PostgreSQL query.";

/// The system message for the schema's dialect (training exports and inference both use
/// this, so a tuned model is asked in the dialect it was taught).
pub fn system_prompt(schema: &Schema) -> &'static str {
    if schema.dialect == "postgresql" {
        SYSTEM_POSTGRES
    } else {
        SYSTEM
    }
}

/// The user message of the text-to-SQL prompt: schema, glossary, question. Training exports
/// use exactly this text, so a tuned model is asked the way it was taught.
pub fn question_prompt(schema: &Schema, glossary: &[GlossaryEntry], question: &str) -> String {
    let mut s = String::new();
    s.push_str("Database schema:\n");
    s.push_str(&schema.to_create_sql());
    if !glossary.is_empty() {
        s.push_str("\nGlossary:\n");
        s.push_str(&format_glossary(glossary));
        s.push('\n');
    }
    s.push_str(&format!("\nOutput only SQL - {question}"));
    s
}

/// The request for one question.
pub fn question_request(schema: &Schema, glossary: &[GlossaryEntry], question: &str) -> LlmRequest {
    LlmRequest::new(
        "eval",
        vec![
            Message::system(system_prompt(schema)),
            Message::user(question_prompt(schema, glossary, question)),
        ],
    )
    .with_schema(OutputSchema::new("sql_answer", &[("sql", "str")]))
    .with_task(Task::QuestionToSql {
        question: question.to_string(),
    })
}

/// Adds retrieved pairs as worked examples before the question (retrieval-augmented
/// inference); the question's own prompt is unchanged, so it still matches training.
pub fn with_examples(mut req: LlmRequest, examples: &[(String, String)]) -> LlmRequest {
    if examples.is_empty() {
        return req;
    }
    let mut text = String::from("Examples of questions about this database and their SQL:\n");
    for (q, s) in examples {
        text.push_str(&format!("Question: {q}\nSQL: {s}\n\n"));
    }
    if let Some(user) = req.messages.iter_mut().find(|m| m.role == "user") {
        user.content = format!("{text}{}", user.content);
    }
    req
}

/// A lexical index over pairs: the closest questions to a new one (word overlap, with
/// glossary terms and schema names as they are written). Retrieval-augmented inference uses
/// it to give any model the top-k pairs as examples.
pub struct MemoryIndex {
    pairs: Vec<(String, String)>,
    words: Vec<std::collections::BTreeSet<String>>,
}

fn word_set(q: &str) -> std::collections::BTreeSet<String> {
    normalize_question(q)
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.len() > 2)
        .map(|w| w.trim_end_matches('s').to_string())
        .collect()
}

impl MemoryIndex {
    pub fn new(pairs: Vec<(String, String)>) -> MemoryIndex {
        let words = pairs.iter().map(|(q, _)| word_set(q)).collect();
        MemoryIndex { pairs, words }
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The `k` pairs whose questions share the most words with `question`.
    pub fn top_k(&self, question: &str, k: usize) -> Vec<(String, String)> {
        let q = word_set(question);
        let mut scored: Vec<(f64, usize)> = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let inter = q.intersection(w).count() as f64;
                let union = q.union(w).count().max(1) as f64;
                (inter / union, i)
            })
            .filter(|(s, _)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| self.pairs[i].clone())
            .collect()
    }
}
