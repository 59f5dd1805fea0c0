//! The offline `memory` provider: "tunes" in an instant by indexing the training pairs, and
//! answers as a model by retrieving the closest pair and re-binding the values the new
//! question names (looked up in the database). It lets the demo run the whole loop offline,
//! generate → review → tune → evaluate, with an honest score on the held-out eval set.

use std::sync::Arc;
use std::time::Instant;

use super::{JobStatus, JobUpdate, Provider, TuneError, dataset::TrainingSet};
use crate::llm::{Backend, BoxFuture, LlmError, LlmRequest, LlmResponse, Task};
use crate::project::{GoldPair, Project};
use crate::rules::RulesEngine;
use crate::store::{Store, TuneProvider};

pub struct MemoryProvider {
    store: Arc<Store>,
}

impl MemoryProvider {
    pub fn new(store: Arc<Store>) -> MemoryProvider {
        MemoryProvider { store }
    }
}

impl Provider for MemoryProvider {
    fn name(&self) -> TuneProvider {
        TuneProvider::Memory
    }

    fn submit<'a>(
        &'a self,
        job_id: i64,
        _data: &'a TrainingSet,
        _project: &'a Project,
    ) -> BoxFuture<'a, Result<String, TuneError>> {
        Box::pin(async move {
            let job = self.store.job(job_id)?;
            let ds = job
                .dataset_id
                .ok_or_else(|| TuneError::Refused("the job has no dataset".into()))?;
            Ok(format!("memory-{ds}"))
        })
    }

    fn status<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<JobUpdate, TuneError>> {
        Box::pin(async move {
            let ds: i64 = external_id
                .strip_prefix("memory-")
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| TuneError::Refused(format!("not a memory job: {external_id}")))?;
            let n = self.store.dataset_pair_ids(ds)?.len();
            Ok(JobUpdate {
                status: Some(JobStatus::Succeeded),
                raw_status: "indexed".into(),
                message: format!("indexed {n} pairs"),
                step: Some(1),
                total_steps: Some(1),
                model_id: Some(format!("memory:{ds}")),
                ..Default::default()
            })
        })
    }

    fn cancel<'a>(&'a self, _external_id: &'a str) -> BoxFuture<'a, Result<(), TuneError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The memory model as an LLM backend: SQL for a question from the indexed pairs.
pub struct MemoryBackend {
    model: String,
    engine: RulesEngine,
}

impl MemoryBackend {
    /// The model `memory:<dataset id>`.
    pub fn load(model: &str, project: &Project, store: &Store) -> Result<MemoryBackend, LlmError> {
        let ds: i64 = model
            .strip_prefix("memory:")
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| LlmError::Config {
                message: format!("`{model}` is not a memory model (memory:<dataset id>)"),
            })?;
        let ids = store.dataset_pair_ids(ds).map_err(|e| LlmError::Config {
            message: e.to_string(),
        })?;
        if ids.is_empty() {
            return Err(LlmError::Config {
                message: format!("dataset {ds} is empty or missing; tune again with `lode tune`"),
            });
        }
        let mut pairs = Vec::with_capacity(ids.len());
        for id in ids {
            let p = store.pair(id).map_err(|e| LlmError::Config {
                message: e.to_string(),
            })?;
            pairs.push(GoldPair {
                question: p.question,
                sql: p.sql,
                db_id: None,
                line: None,
            });
        }
        Ok(MemoryBackend {
            model: model.to_string(),
            engine: RulesEngine::from_pairs(project, pairs, 7),
        })
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn complete<'a>(
        &'a self,
        request: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<LlmResponse, LlmError>> {
        Box::pin(async move {
            let start = Instant::now();
            let Some(Task::QuestionToSql { question }) = &request.task else {
                return Err(LlmError::Unsupported {
                    message: "the memory model answers questions with SQL only".into(),
                });
            };
            // No stored pair near the question: an empty answer, judged wrong like any other.
            let sql = self.engine.answer(question).unwrap_or_default();
            Ok(LlmResponse {
                json: request
                    .schema
                    .as_ref()
                    .map(|_| serde_json::json!({"sql": sql})),
                text: sql,
                usage: None,
                latency: start.elapsed(),
                ..LlmResponse::default()
            })
        })
    }
}
