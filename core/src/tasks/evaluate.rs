//! The evaluation workflow: the chosen model (or a predictions file) answers the eval
//! questions, every answer is executed and compared, the run is stored and reported.

use std::path::PathBuf;
use std::sync::Arc;

use super::model::{self, ModelRequest, Purpose};
use super::{CallsSpent, Reporter, Stage, StageEvent, TaskError, call_stats};
use crate::pipeline::audit::{self, AuditSet};
use crate::pipeline::eval::EvalOptions;
use crate::pipeline::model_eval::{self, ModelEval};
use crate::pipeline::{inference, samples};
use crate::project::Project;
use crate::sql::compare::Profile;
use crate::store::Store;

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvaluateInput {
    /// The model that answers (ignored for answering when `predictions` is given).
    pub model: ModelRequest,
    /// Predictions from a file instead of a model, one per eval question.
    pub predictions: Option<PathBuf>,
    /// The name runs and reports give the model; by default the chosen model's id, or the
    /// predictions file's stem.
    pub name: Option<String>,
    /// How results are compared.
    pub compare: Profile,
    /// Worker threads for execution; `execution.threads` (0: every core) when `None`.
    pub threads: Option<usize>,
    /// Give the model the K closest pairs as worked examples.
    pub few_shot: usize,
    /// Ask the LLM judge (the LLM profile, never the model under test) about each mismatch.
    pub judge: bool,
    /// The report folder; `reports/eval-<run>` when `None`.
    pub out: Option<PathBuf>,
    /// Neighbour databases to judge each correct prediction on again (0: none).
    pub neighbours: usize,
    /// Answers asked of the model per question (at least 1); with more than one, the
    /// majority vote and pass@k are reported beside the first sample's accuracy.
    pub samples: usize,
}

impl Default for EvaluateInput {
    fn default() -> Self {
        EvaluateInput {
            model: ModelRequest::default_model(),
            predictions: None,
            name: None,
            compare: Profile::default(),
            threads: None,
            few_shot: 0,
            judge: false,
            out: None,
            neighbours: 0,
            samples: 1,
        }
    }
}

/// A stored evaluation run and where its reports are.
pub struct EvaluateOutcome {
    pub result: ModelEval,
    /// The model evaluated, as summaries name it.
    pub model: String,
    pub reports: Vec<PathBuf>,
    pub report_dir: PathBuf,
    pub calls: CallsSpent,
}

impl EvaluateOutcome {
    pub fn headline(&self) -> String {
        let mut line = format!(
            "evaluation run {} of {}: {} execution accuracy on {} eval questions ({} profile)",
            self.result.eval_run_id,
            self.model,
            self.result.summary.score(),
            self.result.summary.total,
            self.result.profile
        );
        if let Some(s) = &self.result.samples {
            line.push_str(&format!(
                "; of {} samples, majority vote {}, pass@{} {}",
                s.k, s.majority, s.k, s.pass_at_k
            ));
        }
        line
    }
}

/// Evaluates a model (or predictions file) on the project's eval set.
pub async fn run(
    project: &Project,
    store: &Arc<Store>,
    input: &EvaluateInput,
    reporter: &Reporter,
) -> Result<EvaluateOutcome, TaskError> {
    let r = run_inner(project, store, input, reporter).await;
    reporter.failed(Stage::Evaluate, r)
}

async fn run_inner(
    project: &Project,
    store: &Arc<Store>,
    input: &EvaluateInput,
    reporter: &Reporter,
) -> Result<EvaluateOutcome, TaskError> {
    if project.eval.is_empty() {
        return Err(TaskError::Invalid(
            "the eval set is empty: set paths.eval_set (or paths.gold_set) to a file with pairs"
                .into(),
        ));
    }
    if project.eval_is_gold {
        reporter.warn(
            Stage::Evaluate,
            "no paths.eval_set in the config, so the gold set is the eval set: the score \
             measures memorization, not generalization",
        );
    }
    if input.neighbours > 0 {
        // Before any prediction is asked for.
        crate::pipeline::neighbours::supported(&project.db).map_err(TaskError::Invalid)?;
    }
    if input.samples > 1 && input.predictions.is_some() {
        return Err(TaskError::Invalid(
            "--samples asks the model several times; a predictions file has one answer per \
             question: drop --pred or --samples"
                .into(),
        ));
    }
    // The gold SQL is questioned before it judges anything; its findings go in the report.
    let audit = blocking(|| audit::audit(project, AuditSet::Eval));
    let before = call_stats(store)?;
    // The calls the model answered with, attributed to the eval run once it exists.
    let mut call_ids = Vec::new();
    // Samples 2..K of each question, when asked for.
    let mut other_samples = Vec::new();
    let (predictions, model_id, label) = match &input.predictions {
        Some(path) => {
            let predictions = model_eval::load_predictions(path, project.eval.len())?;
            let name = input.name.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map_or("predictions".into(), |s| s.to_string_lossy().into_owned())
            });
            reporter.emit(StageEvent::Started {
                stage: Stage::Evaluate,
                detail: format!("judging the predictions in {}", path.display()),
            });
            (predictions, name.clone(), format!("predictions {name}"))
        }
        None => {
            let choice = model::choose(project, store, &input.model, Purpose::Evaluate, None)?;
            if let Some(note) = &choice.note {
                reporter.warn(Stage::Evaluate, note.clone());
            }
            let index = (input.few_shot > 0)
                .then(|| -> Result<crate::sqlprompt::MemoryIndex, TaskError> {
                    let t = &project.config.tune;
                    let data =
                        crate::tune::dataset::build(store, None, t.include_valid, 0.0, t.seed)?;
                    Ok(crate::sqlprompt::MemoryIndex::new(
                        data.all()
                            .map(|e| (e.question.clone(), e.sql.clone()))
                            .collect(),
                    ))
                })
                .transpose()?;
            let examples = index.as_ref().map_or(String::new(), |i| {
                format!(
                    ", with the {} closest of {} pairs as examples",
                    input.few_shot,
                    i.len()
                )
            });
            reporter.emit(StageEvent::Started {
                stage: Stage::Evaluate,
                detail: format!(
                    "asking {} for {} questions{examples}",
                    choice.label,
                    project.eval.len()
                ),
            });
            let questions: Vec<String> = project.eval.iter().map(|p| p.question.clone()).collect();
            let samples = input.samples.max(1);
            let mut answers = Vec::with_capacity(samples);
            for sample in 0..samples {
                let events = reporter.clone();
                answers.push(
                    inference::predict_sample(
                        Arc::clone(&choice.client),
                        &project.schema,
                        &project.glossary,
                        &questions,
                        index.as_ref(),
                        input.few_shot,
                        sample,
                        Arc::new(move |done, total| {
                            events.emit(StageEvent::Progress {
                                stage: Stage::Evaluate,
                                done: (sample * total + done) as u64,
                                total: (samples * total) as u64,
                                unit: if samples == 1 { "questions" } else { "answers" },
                            })
                        }),
                    )
                    .await,
                );
                if choice.client.halted().is_some() {
                    break;
                }
            }
            let predictions = answers.remove(0);
            other_samples = answers;
            super::report_store_errors(reporter, Stage::Evaluate, &choice.client);
            call_ids = choice.client.take_call_ids();
            // A model that could not be asked at all is not a model that scored 0.
            if let Some(reason) = choice.client.halted() {
                return Err(TaskError::Invalid(format!(
                    "{reason}; the evaluation was not scored"
                )));
            }
            let name = input.name.clone().unwrap_or(choice.model_id);
            (predictions, name, choice.label)
        }
    };
    let options = EvalOptions {
        threads: input
            .threads
            .unwrap_or_else(|| project.config.execution.thread_count())
            .max(1),
        neighbours: input.neighbours,
        ..Default::default()
    };
    let mut result = blocking(|| {
        model_eval::evaluate_model(
            project,
            store,
            &model_id,
            &predictions,
            &input.compare,
            &options,
        )
    })?;
    if !other_samples.is_empty() {
        result.samples = Some(blocking(|| {
            samples::score(project, &result, &other_samples, &input.compare, &options)
        }));
    }
    result.audit = audit;
    if input.judge {
        call_ids.extend(judge(project, store, &mut result, reporter).await?);
    }
    if let Err(e) = store.attribute_calls_to_eval(&call_ids, result.eval_run_id) {
        reporter.warn(
            Stage::Evaluate,
            format!(
                "the LLM calls were not tied to eval run {}: {e}",
                result.eval_run_id
            ),
        );
    }
    let dir = input.out.clone().unwrap_or_else(|| {
        project
            .dir()
            .join("reports")
            .join(format!("eval-{}", result.eval_run_id))
    });
    let reports = model_eval::write_reports(&dir, &result).map_err(TaskError::io(format!(
        "cannot write reports to {}",
        dir.display()
    )))?;
    for leak in &result.leakage {
        reporter.warn(
            Stage::Evaluate,
            format!(
                "eval question #{} \"{}\" has the same {} as training pair {}",
                leak.position + 1,
                leak.question,
                leak.kind.replace('_', " "),
                leak.pair_id
            ),
        );
    }
    let outcome = EvaluateOutcome {
        result,
        model: label,
        reports,
        report_dir: dir,
        calls: CallsSpent::between(&before, &call_stats(store)?),
    };
    reporter.emit(StageEvent::Finished {
        stage: Stage::Evaluate,
        summary: outcome.headline(),
    });
    Ok(outcome)
}

/// Asks the LLM profile's judge about each mismatch; its opinion is stored beside the
/// verdict, never replacing it. Returns the judge's logged calls.
async fn judge(
    project: &Project,
    store: &Arc<Store>,
    result: &mut ModelEval,
    reporter: &Reporter,
) -> Result<Vec<i64>, TaskError> {
    let judge = model::choose(
        project,
        store,
        &ModelRequest::default_model(),
        Purpose::Generate,
        None,
    )?;
    let cases = model_eval::mismatches(result);
    reporter.emit(StageEvent::Started {
        stage: Stage::Evaluate,
        detail: format!(
            "asking the judge ({}) about {} mismatches",
            judge.label,
            cases.len()
        ),
    });
    let mut opinions = Vec::new();
    for i in cases {
        let c = &result.cases[i];
        let (Some(g), Some(p)) = (&c.result.gold_preview, &c.result.pred_preview) else {
            continue;
        };
        let req = inference::judge_request(
            &c.question,
            &c.gold_sql,
            c.pred_sql.as_deref().unwrap_or(""),
            &model_eval::preview_text(g),
            &model_eval::preview_text(p),
        );
        opinions.push((i, inference::judge(&judge.client, &req).await));
        if judge.client.halted().is_some() {
            break;
        }
    }
    super::report_store_errors(reporter, Stage::Evaluate, &judge.client);
    if let Some(reason) = judge.client.halted() {
        reporter.warn(
            Stage::Evaluate,
            format!("the judge was not asked about every mismatch: {reason}"),
        );
    }
    model_eval::apply_judge(store, result, opinions)?;
    Ok(judge.client.take_call_ids())
}

/// Runs blocking work (execution on worker threads) without stalling the async runtime's
/// other tasks: on a multi-threaded runtime the worker is handed over while `f` runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
