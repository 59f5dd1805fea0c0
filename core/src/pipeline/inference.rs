//! Asking a model for SQL: the one prompt used both to train and to query a model (the
//! original trained without the glossary and queried with it), concurrent inference over a
//! question set, and the optional LLM judge for mismatches (the original's
//! SQLResultAnalyzer prompt), whose opinion is stored beside the execution verdict.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value as Json, json};

use crate::llm::{LlmClient, LlmError, LlmRequest, Message, OutputSchema};
use crate::pipeline::model_eval::Prediction;
use crate::project::GlossaryEntry;
use crate::sql::schema::Schema;
use crate::sqlprompt::{MemoryIndex, question_request, with_examples};

/// Predictions for `questions`, in order, with the client's concurrency. A failed call is a
/// prediction with its cause (it counts as wrong), never a dropped question.
pub async fn predict(
    client: Arc<LlmClient>,
    schema: &Schema,
    glossary: &[GlossaryEntry],
    questions: &[String],
    progress: Arc<dyn Fn(usize, usize) + Send + Sync>,
) -> Vec<Prediction> {
    predict_with(client, schema, glossary, questions, None, 0, progress).await
}

/// [`predict`] with the `k` closest pairs of `index` given as examples.
pub async fn predict_with(
    client: Arc<LlmClient>,
    schema: &Schema,
    glossary: &[GlossaryEntry],
    questions: &[String],
    index: Option<&MemoryIndex>,
    k: usize,
    progress: Arc<dyn Fn(usize, usize) + Send + Sync>,
) -> Vec<Prediction> {
    predict_sample(client, schema, glossary, questions, index, k, 0, progress).await
}

/// The temperature of the second and later samples of a question: warm enough that an LLM
/// answers differently, cool enough that it still answers the question.
pub const SAMPLE_TEMPERATURE: f64 = 0.7;

/// [`predict_with`] for sample `sample` (0-based) of each question. Sample 0 is asked
/// exactly as a single answer is; later samples are drawn at [`SAMPLE_TEMPERATURE`] with
/// the sample number as seed, so each is a different draw (and a different cache entry).
#[allow(clippy::too_many_arguments)]
pub async fn predict_sample(
    client: Arc<LlmClient>,
    schema: &Schema,
    glossary: &[GlossaryEntry],
    questions: &[String],
    index: Option<&MemoryIndex>,
    k: usize,
    sample: usize,
    progress: Arc<dyn Fn(usize, usize) + Send + Sync>,
) -> Vec<Prediction> {
    let total = questions.len();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(total);
    // A tuned Lamini model learnt to answer with bare SQL (see tune::dataset), so it is asked
    // without an output type; other models answer in a JSON field.
    let bare = client.backend().kind() == "lamini";
    for q in questions {
        let mut req = question_request(schema, glossary, q);
        if let Some(index) = index {
            req = with_examples(req, &index.top_k(q, k));
        }
        if bare {
            req.schema = None;
        }
        if sample > 0 {
            req.sampling.temperature = Some(SAMPLE_TEMPERATURE);
            req.sampling.seed = Some(sample as u64);
        }
        let client = Arc::clone(&client);
        let done = Arc::clone(&done);
        let progress = Arc::clone(&progress);
        tasks.push(tokio::spawn(async move {
            let outcome = client.call(&req).await;
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            outcome
        }));
    }
    let mut out = Vec::with_capacity(total);
    for t in tasks {
        let outcome = t.await.unwrap_or_else(|e| {
            Err(LlmError::BadResponse {
                message: format!("inference task failed: {e}"),
            })
        });
        out.push(match outcome {
            Ok(resp) => {
                let from_json = resp
                    .json
                    .as_ref()
                    .and_then(|j| j["sql"].as_str())
                    .map(str::to_string);
                let mut p = Prediction::from_reply(from_json.as_deref().unwrap_or(&resp.text));
                p.raw = Some(resp.text);
                p
            }
            Err(e) => Prediction {
                sql: Err(format!("inference failed: {e}")),
                raw: None,
            },
        });
    }
    out
}

/// The original's SQLResultAnalyzer prompt, for a mismatch.
pub fn judge_request(
    question: &str,
    gold_sql: &str,
    pred_sql: &str,
    gold_rows: &str,
    pred_rows: &str,
) -> LlmRequest {
    let prompt = format!(
        "Analyze these two SQL query results:\n\nGold Query: {gold_sql}\nGenerated Query: {pred_sql}\n\n\
         Gold Result:\n{gold_rows}\n\nGenerated Result:\n{pred_rows}\n\n\
         Determine if these results are functionally equivalent. Consider:\n\
         1. Do they contain the same information, even if formatted differently?\n\
         2. Are differences in ordering significant for the query's purpose?\n\
         3. Are numerical differences within acceptable rounding/precision limits?\n\
         4. Do the results answer the original question equally well?\n\n\
         Original Question: {question}\n\n\
         Format your response as a JSON with these keys:\n\
         - equivalent: boolean indicating if results are functionally equivalent\n\
         - confidence: number between 0-1 indicating confidence in assessment\n\
         - explanation: detailed explanation of your reasoning\n\
         - differences: list of specific differences found (empty if equivalent)"
    );
    LlmRequest::new(
        "judge",
        vec![
            Message::system(
                "You are an expert at analyzing SQL query results and determining functional equivalence.",
            ),
            Message::user(prompt),
        ],
    )
    .with_schema(OutputSchema::new(
        "result_analysis",
        &[
            ("equivalent", "bool"),
            ("confidence", "float"),
            ("explanation", "str"),
            ("differences", "array"),
        ],
    ))
}

/// The judge's opinion, or why there is none; stored as is beside the verdict.
pub async fn judge(client: &LlmClient, request: &LlmRequest) -> Json {
    match client.call(request).await {
        Ok(resp) => resp
            .json
            .unwrap_or_else(|| json!({"error": "no structured answer"})),
        Err(e) => json!({"error": e.to_string(), "error_kind": e.kind()}),
    }
}
