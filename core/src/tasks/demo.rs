//! The demo workflow: every stage that exists, in order, on the generated demo project with
//! the offline backends (the rules profile writes and fixes pairs, the memory provider tunes,
//! the evaluated answers are scored again by the RL reward),
//! through the same tasks the CLI and the TUI call. A stage whose work is already in the store
//! is not repeated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

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

/// Every stage's outcome, and its key numbers ([`DemoSummary`]).
pub struct DemoOutcome {
    pub generation: DemoGeneration,
    pub analysis: Option<AnalysisOutcome>,
    pub tuning: DemoTuning,
    pub evaluation: EvaluateOutcome,
    pub reward: DemoReward,
    pub summary: DemoSummary,
}

/// The evaluated model's answers scored again as an RL trainer would see them
/// (`lode reward`, arctic shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoReward {
    pub answers: usize,
    pub mean: f64,
    /// Answers whose result matches (reward 1), that run (0.1), and the rest (0).
    pub matches: usize,
    pub runs: usize,
    pub fails: usize,
    /// The evaluation's correct count, when it judged with the same (`lode`) comparator.
    pub evaluation_correct: Option<usize>,
    /// The reward's matches equal the evaluation's correct count (null when not comparable).
    pub agrees_with_evaluation: Option<bool>,
}

/// The key numbers of every stage: what `lode demo` prints at the end, and `--json` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoSummary {
    pub generation: GenerationSummary,
    /// `None` when there was no run to analyze.
    pub analysis: Option<CoverageSummary>,
    pub tuning: TuningSummary,
    pub evaluation: EvaluationSummary,
    pub reward: DemoReward,
}

/// The generation stage: the run and its pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationSummary {
    pub run_id: i64,
    /// The run was finished before (an earlier demo): nothing was generated now.
    pub already_done: bool,
    /// The model that wrote the pairs (`None` for a run finished before).
    pub model: Option<String>,
    /// The run's pairs by status (`valid`, `fixed`, `duplicate`, `invalid`, …).
    pub pairs_by_status: BTreeMap<String, u64>,
    /// Pairs fit to train on: valid, fixed or accepted.
    pub valid_pairs: u64,
}

impl GenerationSummary {
    fn of(generation: &DemoGeneration, counts: BTreeMap<String, u64>) -> GenerationSummary {
        let valid_pairs = ["valid", "fixed", "accepted"]
            .iter()
            .filter_map(|s| counts.get(*s))
            .sum();
        let (run_id, already_done, model) = match generation {
            DemoGeneration::Ran(g) => (g.summary.run_id, false, Some(g.model.clone())),
            DemoGeneration::AlreadyDone(run, _) => (*run, true, None),
        };
        GenerationSummary {
            run_id,
            already_done,
            model,
            pairs_by_status: counts,
            valid_pairs,
        }
    }
}

/// The analysis stage: concept coverage of the run after any gap filling.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageSummary {
    pub run_id: i64,
    pub model: String,
    /// SQL concepts the gold set uses.
    pub gold_concepts: usize,
    /// Of those, the concepts the generated pairs use too.
    pub covered_concepts: usize,
    /// `covered_concepts / gold_concepts` (1 when the gold set uses none).
    pub concept_coverage: f64,
    pub missing_concepts: Vec<String>,
    pub underrepresented_concepts: Vec<String>,
    pub unused_tables: Vec<String>,
    pub unused_joins: Vec<String>,
    pub failed_pairs: usize,
    /// Gaps gap filling asked pairs for (`None` without filling).
    pub gaps_asked: Option<usize>,
    /// Of those, the gaps now covered by new valid pairs.
    pub gaps_filled: Option<usize>,
    pub report_dir: PathBuf,
}

impl CoverageSummary {
    pub fn of(a: &AnalysisOutcome) -> CoverageSummary {
        let c = a.after_fill.as_ref().unwrap_or(&a.coverage);
        let gold = a.coverage.gold.concepts.len();
        let covered = gold - c.missing_concepts.len().min(gold);
        CoverageSummary {
            run_id: a.run_id,
            model: a.model.clone(),
            gold_concepts: gold,
            covered_concepts: covered,
            concept_coverage: if gold == 0 {
                1.0
            } else {
                covered as f64 / gold as f64
            },
            missing_concepts: c.missing_concepts.clone(),
            underrepresented_concepts: c
                .underrepresented_concepts
                .iter()
                .map(|u| u.name.clone())
                .collect(),
            unused_tables: c.unused_tables.clone(),
            unused_joins: c.unused_joins.clone(),
            failed_pairs: a.errors.failed,
            gaps_asked: a.fill.as_ref().map(|f| f.asked.len()),
            gaps_filled: a.fill.as_ref().map(|f| f.filled.len()),
            report_dir: a.report_dir.clone(),
        }
    }
}

/// The tuning stage: the job, or why there was none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuningSummary {
    /// `ran`, `already_done` or `skipped`.
    pub outcome: &'static str,
    pub job_id: Option<i64>,
    pub provider: Option<String>,
    /// The job's status (`succeeded`, `failed`, …).
    pub status: Option<String>,
    /// The tuned model, once the job succeeded.
    pub model: Option<String>,
    /// Why tuning was skipped, or the provider's last word on the job.
    pub message: Option<String>,
}

impl TuningSummary {
    pub fn of(tuning: &DemoTuning) -> TuningSummary {
        let job = |outcome, j: &JobOutcome| TuningSummary {
            outcome,
            job_id: Some(j.job),
            provider: Some(j.provider.as_str().to_string()),
            status: Some(j.status.as_str().to_string()),
            model: j.model.clone(),
            message: (!j.last_message.is_empty()).then(|| j.last_message.clone()),
        };
        match tuning {
            DemoTuning::Ran(j) => job("ran", j),
            DemoTuning::AlreadyDone(j) => job("already_done", j),
            DemoTuning::Skipped(why) => TuningSummary {
                outcome: "skipped",
                job_id: None,
                provider: None,
                status: None,
                model: None,
                message: Some(why.clone()),
            },
        }
    }
}

/// The evaluation stage: execution accuracy with its 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationSummary {
    pub eval_run_id: i64,
    /// The model evaluated, as summaries name it.
    pub model: String,
    /// The comparison profile (`lode`, `spider`, …).
    pub profile: String,
    pub correct: usize,
    pub total: usize,
    /// `correct / total`.
    pub accuracy: f64,
    /// The 95% Wilson interval of the accuracy, `[low, high]`.
    pub accuracy_ci: (f64, f64),
    pub report_dir: PathBuf,
}

impl EvaluationSummary {
    pub fn of(e: &EvaluateOutcome) -> EvaluationSummary {
        let score = e.result.summary.score();
        EvaluationSummary {
            eval_run_id: e.result.eval_run_id,
            model: e.model.clone(),
            profile: e.result.profile.clone(),
            correct: score.correct,
            total: score.total,
            accuracy: score.rate(),
            accuracy_ci: score.ci(),
            report_dir: e.report_dir.clone(),
        }
    }
}

/// One finished stage's key numbers, as [`run`] hands them out before the next stage starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StageSummary {
    Generation(GenerationSummary),
    Analysis(CoverageSummary),
    Tuning(TuningSummary),
    Evaluation(EvaluationSummary),
    Reward(DemoReward),
}

impl StageSummary {
    /// `generation`, `analysis`, `tuning`, `evaluation` or `reward`.
    pub fn name(&self) -> &'static str {
        match self {
            StageSummary::Generation(_) => "generation",
            StageSummary::Analysis(_) => "analysis",
            StageSummary::Tuning(_) => "tuning",
            StageSummary::Evaluation(_) => "evaluation",
            StageSummary::Reward(_) => "reward",
        }
    }
}

/// Called after each stage with its key numbers and how long it took.
pub type OnStage<'a> = &'a (dyn Fn(&StageSummary, Duration) + Send + Sync);

impl DemoReward {
    pub fn headline(&self) -> String {
        let mut line = format!(
            "arctic reward of the evaluated answers: mean {:.3} over {} ({} match, {} run, {} fail)",
            self.mean, self.answers, self.matches, self.runs, self.fails
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
    let evaluation_correct = comparable.then_some(evaluation.result.summary.correct);
    Ok(DemoReward {
        answers: scores.len(),
        mean,
        matches,
        runs,
        fails: scores.len() - matches - runs,
        evaluation_correct,
        agrees_with_evaluation: evaluation_correct.map(|c| c == matches),
    })
}

/// Runs generation, analysis (with gap filling after a new run), tuning and evaluation, and
/// scores the evaluated answers with the reward; `on_stage` gets each stage's key numbers as
/// it ends.
pub async fn run(
    project: &Project,
    store: &Arc<Store>,
    snapshot: i64,
    reporter: &Reporter,
    on_stage: OnStage<'_>,
) -> Result<DemoOutcome, TaskError> {
    let offline = ModelRequest::profile(DEMO_PROFILE);
    let mut started = Instant::now();
    // Hands a stage's numbers out with the time since the previous stage ended.
    let mut finished = |summary: StageSummary| {
        on_stage(&summary, started.elapsed());
        started = Instant::now();
    };
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
    let generation_summary = {
        let run_id = match &generation {
            DemoGeneration::Ran(g) => g.summary.run_id,
            DemoGeneration::AlreadyDone(run, _) => *run,
        };
        let counts = store.count_pairs_by_status(Some(run_id))?;
        GenerationSummary::of(&generation, counts)
    };
    finished(StageSummary::Generation(generation_summary.clone()));
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
    let analysis_summary = analysis.as_ref().map(CoverageSummary::of);
    if let Some(a) = &analysis_summary {
        finished(StageSummary::Analysis(a.clone()));
    }
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
    let tuning_summary = TuningSummary::of(&tuning);
    finished(StageSummary::Tuning(tuning_summary.clone()));
    // The model is chosen as for `lode eval` with no flags: the tuned model when tuning
    // succeeded, else the default profile.
    let evaluation = evaluate::run(project, store, &EvaluateInput::default(), reporter).await?;
    let evaluation_summary = EvaluationSummary::of(&evaluation);
    finished(StageSummary::Evaluation(evaluation_summary.clone()));
    let reward = reward_stage(project, store, &evaluation)?;
    finished(StageSummary::Reward(reward.clone()));
    Ok(DemoOutcome {
        generation,
        analysis,
        tuning,
        evaluation,
        reward: reward.clone(),
        summary: DemoSummary {
            generation: generation_summary,
            analysis: analysis_summary,
            tuning: tuning_summary,
            evaluation: evaluation_summary,
            reward,
        },
    })
}
