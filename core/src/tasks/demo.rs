//! The demo workflow: every stage that exists, in order, on the generated demo project with
//! the offline backends (the rules profile writes and fixes pairs, the memory provider tunes,
//! the evaluated answers are scored again by the RL reward),
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
    pub reward: DemoReward,
}

/// The evaluated model's answers scored again as an RL trainer would see them
/// (`lode reward`, arctic shape).
pub struct DemoReward {
    pub answers: usize,
    pub mean: f64,
    /// Answers whose result matches (reward 1), that run (0.1), and the rest (0).
    pub matches: usize,
    pub runs: usize,
    /// The evaluation's correct count, when it judged with the same (`lode`) comparator.
    pub evaluation_correct: Option<usize>,
}

impl DemoReward {
    pub fn headline(&self) -> String {
        let mut line = format!(
            "arctic reward of the evaluated answers: mean {:.3} over {} ({} match, {} run, {} fail)",
            self.mean,
            self.answers,
            self.matches,
            self.runs,
            self.answers - self.matches - self.runs
        );
        if let Some(c) = self.evaluation_correct {
            line.push_str(&if c == self.matches {
                format!("; matches agree with the evaluation ({c})")
            } else {
                format!("; DISAGREES with the evaluation's {c} correct")
            });
        }
        line
    }
}

/// Scores the evaluation's answers with the reward service's scorer.
fn reward_stage(
    project: &Project,
    store: &Store,
    evaluation: &EvaluateOutcome,
) -> Result<DemoReward, TaskError> {
    use crate::pipeline::reward::{RewardItem, Scorer, Shape, project_sources, reward_limits};
    let sources = project_sources(project, Some(store))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scorer = Scorer::new(
        sources,
        reward_limits(project.config.execution.limits()),
        threads,
    );
    let cases = &evaluation.result.cases;
    let items: Vec<RewardItem> = cases
        .iter()
        .map(|c| RewardItem {
            question_id: Some(format!("eval:{}", c.position + 1)),
            prediction: c
                .raw_reply
                .clone()
                .or_else(|| c.pred_sql.clone())
                .unwrap_or_default(),
            ..RewardItem::default()
        })
        .collect();
    let scores = scorer.score(&items, Shape::Arctic);
    let matches = scores.iter().filter(|s| s.parts.matches).count();
    let runs = scores
        .iter()
        .filter(|s| s.parts.executes && !s.parts.matches)
        .count();
    let mean = if scores.is_empty() {
        0.0
    } else {
        scores.iter().map(|s| s.score).sum::<f64>() / scores.len() as f64
    };
    // right_by_accident verdicts come from neighbour databases the reward does not use.
    let comparable = evaluation.result.profile == "lode"
        && !cases.iter().any(|c| {
            c.result
                .verdict
                .reason
                .as_ref()
                .is_some_and(|r| r.kind() == "right_by_accident")
        });
    Ok(DemoReward {
        answers: scores.len(),
        mean,
        matches,
        runs,
        evaluation_correct: comparable.then_some(evaluation.result.summary.correct),
    })
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
    let reward = reward_stage(project, store, &evaluation)?;
    Ok(DemoOutcome {
        generation,
        analysis,
        tuning,
        evaluation,
        reward,
    })
}
