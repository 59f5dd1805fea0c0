//! The demo workflow: every stage that exists, in order, on the generated demo project with
//! the offline backends (the rules profile writes and fixes pairs, the memory provider tunes),
//! through the same tasks the CLI and the TUI call. A stage whose work is already in the store
//! is not repeated.

use std::sync::Arc;

use super::analyze::{self, AnalysisOutcome, AnalyzeInput};
use super::evaluate::{self, EvaluateInput, EvaluateOutcome};
use super::generate::{self, GenerateInput, GenerateOutcome};
use super::model::ModelRequest;
use super::tune::{self, JobOutcome, TuneInput};
use super::{Reporter, Stage, TaskError};
use crate::project::Project;
use crate::store::{RunKind, RunStatus, Store, TuneProvider};
use crate::tune::JobStatus;

/// The offline profile the demo generates and analyzes with.
pub const DEMO_PROFILE: &str = "rules";

/// What the demo's generation stage did.
pub enum DemoGeneration {
    /// A new run.
    Ran(GenerateOutcome),
    /// A finished run was already there: (run id, pairs by status).
    AlreadyDone(i64, std::collections::BTreeMap<String, u64>),
}

/// What the demo's tuning stage did.
pub enum DemoTuning {
    Ran(JobOutcome),
    /// A succeeded memory job was already there.
    AlreadyDone(JobOutcome),
    /// Tuning could not run (too few pairs, say); evaluation uses the profile instead.
    Skipped(String),
}

/// Every stage's outcome.
pub struct DemoOutcome {
    pub generation: DemoGeneration,
    pub analysis: Option<AnalysisOutcome>,
    pub tuning: DemoTuning,
    pub evaluation: EvaluateOutcome,
}

/// Runs generation, analysis (with gap filling after a new run), tuning and evaluation.
pub async fn run(
    project: &Project,
    store: &Arc<Store>,
    snapshot: i64,
    reporter: &Reporter,
) -> Result<DemoOutcome, TaskError> {
    let offline = ModelRequest::profile(DEMO_PROFILE);
    let generation = match store.latest_run(RunKind::Generate)? {
        Some(run) if run.status == RunStatus::Completed => {
            DemoGeneration::AlreadyDone(run.id, store.count_pairs_by_status(Some(run.id))?)
        }
        _ => {
            let input = GenerateInput {
                model: offline.clone(),
                snapshot: Some(snapshot),
                ..GenerateInput::default()
            };
            DemoGeneration::Ran(
                generate::run(
                    project,
                    store,
                    &input,
                    reporter,
                    super::CancellationToken::new(),
                )
                .await?,
            )
        }
    };
    let analysis = match analyze::default_run(store)? {
        Some(run) => Some(
            analyze::run(
                project,
                store,
                &AnalyzeInput {
                    model: offline.clone(),
                    run: Some(run),
                    fill: matches!(generation, DemoGeneration::Ran(_)),
                    ..AnalyzeInput::default()
                },
                reporter,
            )
            .await?,
        ),
        None => None,
    };
    let done = store
        .jobs()?
        .into_iter()
        .find(|j| j.provider == TuneProvider::Memory && j.status == JobStatus::Succeeded);
    let tuning = match done {
        Some(j) => DemoTuning::AlreadyDone(tune::outcome(store, j.id, JobStatus::Succeeded)?),
        None => {
            let input = TuneInput {
                provider: Some("memory".into()),
                run: None,
                watch: true,
            };
            match tune::submit(project, store, &input, reporter).await {
                Ok(o) => DemoTuning::Ran(o),
                Err(e) => {
                    reporter.warn(Stage::Tune, format!("tuning skipped: {e}"));
                    DemoTuning::Skipped(e.to_string())
                }
            }
        }
    };
    // The model is chosen as for `lode eval` with no flags: the tuned model when tuning
    // succeeded, else the default profile.
    let evaluation = evaluate::run(project, store, &EvaluateInput::default(), reporter).await?;
    Ok(DemoOutcome {
        generation,
        analysis,
        tuning,
        evaluation,
    })
}
