//! The generation workflow: pick the model, run (or resume) a generation run, report progress
//! and each stored pair, and sum up what the run made and what it cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::model::{self, ModelRequest, Purpose};
use super::{CallsSpent, Reporter, Stage, StageEvent, TaskError, call_stats};
use crate::pipeline::generate::{self, GenerateEvent, GenerateOptions, GenerateSummary};
use crate::project::Project;
use crate::store::Store;

/// What to generate with.
#[derive(Debug, Clone, Default)]
pub struct GenerateInput {
    pub model: ModelRequest,
    pub options: GenerateOptions,
    /// The input snapshot the run is made from; the newest one when `None`.
    pub snapshot: Option<i64>,
}

/// What a generation run made.
#[derive(Debug, Clone)]
pub struct GenerateOutcome {
    pub summary: GenerateSummary,
    /// The model that wrote the pairs, as summaries name it.
    pub model: String,
    pub calls: CallsSpent,
}

impl GenerateOutcome {
    /// One line: the run, what it made, with which model.
    pub fn headline(&self) -> String {
        let t = self.summary.totals();
        format!(
            "run {} {} with {}: {} valid pairs ({} fixed by the debugger), {} failed, {} \
             duplicates",
            self.summary.run_id,
            if self.summary.resumed {
                "resumed and finished"
            } else {
                "finished"
            },
            self.model,
            t.valid + t.fixed,
            t.fixed,
            t.failed,
            t.duplicate
        )
    }
}

/// Runs generation until it ends or `cancel` fires (then the run is kept, resumable).
pub async fn run(
    project: &Project,
    store: &Arc<Store>,
    input: &GenerateInput,
    reporter: &Reporter,
    cancel: super::CancellationToken,
) -> Result<GenerateOutcome, TaskError> {
    let r = run_inner(project, store, input, reporter, cancel).await;
    reporter.failed(Stage::Generate, r)
}

async fn run_inner(
    project: &Project,
    store: &Arc<Store>,
    input: &GenerateInput,
    reporter: &Reporter,
    cancel: super::CancellationToken,
) -> Result<GenerateOutcome, TaskError> {
    if let Some(bad) = input
        .options
        .only_gold
        .iter()
        .find(|&&g| g >= project.gold.len())
    {
        return Err(TaskError::Invalid(format!(
            "gold pair {} does not exist: the gold set has pairs 1 to {}",
            bad + 1,
            project.gold.len()
        )));
    }
    let snapshot = match input.snapshot {
        Some(s) => s,
        None => store.latest_snapshot()?.map_or(0, |s| s.id),
    };
    let choice = model::choose(project, store, &input.model, Purpose::Generate, None)?;
    if let Some(note) = &choice.note {
        reporter.warn(Stage::Generate, note.clone());
    }
    reporter.emit(StageEvent::Started {
        stage: Stage::Generate,
        detail: format!("generating with {}", choice.label),
    });
    let before = call_stats(store)?;
    let events = reporter.clone();
    let stored = Arc::new(AtomicU64::new(0));
    let progress: generate::Progress = Arc::new(move |ev| match ev {
        GenerateEvent::Questions { done, total } => events.emit(StageEvent::Progress {
            stage: Stage::Generate,
            done: done as u64,
            total: total as u64,
            unit: "generator calls",
        }),
        GenerateEvent::PairStored { generator } => {
            let n = stored.fetch_add(1, Ordering::Relaxed) + 1;
            events.emit(StageEvent::ItemStored {
                stage: Stage::Generate,
                what: format!("{generator} pair ({n} stored)"),
            })
        }
        GenerateEvent::Dedup => events.emit(StageEvent::Progress {
            stage: Stage::Generate,
            done: 0,
            total: 1,
            unit: "dedup",
        }),
        GenerateEvent::Warning(message) => events.warn(Stage::Generate, message),
    });
    let client_cancel = choice.client.cancel_token();
    let run = generate::run(
        project,
        Arc::clone(store),
        Arc::clone(&choice.client),
        snapshot,
        &input.options,
        progress,
    );
    let summary = tokio::select! {
        r = run => r?,
        _ = cancel.cancelled() => {
            client_cancel.cancel();
            return Err(TaskError::Cancelled(
                "the run is kept; run generation again to resume it".into(),
            ));
        }
    };
    super::report_store_errors(reporter, Stage::Generate, &choice.client);
    let outcome = GenerateOutcome {
        summary,
        model: choice.label,
        calls: CallsSpent::between(&before, &call_stats(store)?),
    };
    reporter.emit(StageEvent::Finished {
        stage: Stage::Generate,
        summary: outcome.headline(),
    });
    Ok(outcome)
}
