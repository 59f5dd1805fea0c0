//! The analysis workflow: coverage of a run (concepts, hardness, tables, joins, topics), the
//! failed-pair analysis with the model's root-cause write-up, the reports, and gap filling.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use super::model::{self, ModelRequest, Purpose};
use super::{Reporter, Stage, StageEvent, TaskError};
use crate::pipeline::coverage::{self, Coverage, ErrorAnalysis, FillReport, TopicCoverage};
use crate::project::Project;
use crate::store::{RunKind, Store};

/// What to analyze and how.
#[derive(Debug, Clone)]
pub struct AnalyzeInput {
    pub model: ModelRequest,
    /// The run; the newest generate or import run when `None`.
    pub run: Option<i64>,
    /// Ask for pairs for each gap and add them to the run.
    pub fill: bool,
    /// Pairs asked per gap when filling.
    pub per_gap: usize,
    /// Ask the model for the topics of the questions.
    pub topics: bool,
    /// A concept is under-represented below gold share / factor.
    pub factor: f64,
    /// The report folder; `reports/analysis-<run>` when `None`.
    pub out: Option<PathBuf>,
}

impl Default for AnalyzeInput {
    fn default() -> Self {
        AnalyzeInput {
            model: ModelRequest::default_model(),
            run: None,
            fill: false,
            per_gap: 2,
            topics: true,
            factor: 1.5,
            out: None,
        }
    }
}

/// The whole analysis of a run.
pub struct AnalysisOutcome {
    pub run_id: i64,
    /// The model that named topics, wrote the root-cause analysis and filled gaps.
    pub model: String,
    pub coverage: Coverage,
    pub topics: Option<TopicCoverage>,
    pub errors: ErrorAnalysis,
    pub fill: Option<FillReport>,
    pub after_fill: Option<Coverage>,
    pub report_dir: PathBuf,
}

impl AnalysisOutcome {
    /// One line: concept coverage after any filling, unused tables and joins, failures.
    pub fn headline(&self) -> String {
        let c = self.after_fill.as_ref().unwrap_or(&self.coverage);
        let gold = self.coverage.gold.concepts.len();
        format!(
            "run {} ({}): {} of the gold set's {} SQL concepts in the generated pairs ({} \
             missing, {} under-represented); tables unused {}, joins unused {}; {} failed pairs",
            self.run_id,
            self.model,
            gold - c.missing_concepts.len().min(gold),
            gold,
            c.missing_concepts.len(),
            c.underrepresented_concepts.len(),
            c.unused_tables.len(),
            c.unused_joins.len(),
            self.errors.failed
        )
    }
}

/// The run `lode analyze` works on when none is named: the newest generate or import run.
pub fn default_run(store: &Store) -> Result<Option<i64>, TaskError> {
    Ok(store
        .runs()?
        .into_iter()
        .find(|r| matches!(r.kind, RunKind::Generate | RunKind::Import))
        .map(|r| r.id))
}

/// The deterministic coverage of a run (no model, no reports): what the dashboards show.
pub fn coverage_of(
    project: &Project,
    store: &Store,
    run: Option<i64>,
    factor: f64,
) -> Result<Coverage, TaskError> {
    let pairs = coverage::run_pairs(store, run)?;
    Ok(coverage::coverage(project, &pairs, factor))
}

/// Analyzes a run, writes `coverage.md`, `coverage.json` (and `sql_error_analysis.json` when
/// pairs failed) and stores the analysis for the dashboards.
pub async fn run(
    project: &Project,
    store: &Arc<Store>,
    input: &AnalyzeInput,
    reporter: &Reporter,
) -> Result<AnalysisOutcome, TaskError> {
    let r = run_inner(project, store, input, reporter).await;
    reporter.failed(Stage::Analyze, r)
}

async fn run_inner(
    project: &Project,
    store: &Arc<Store>,
    input: &AnalyzeInput,
    reporter: &Reporter,
) -> Result<AnalysisOutcome, TaskError> {
    let run_id = match input.run {
        Some(r) => {
            store.run(r)?;
            r
        }
        None => default_run(store)?.ok_or_else(|| {
            TaskError::Invalid("nothing to analyze yet: run `lode generate` first".into())
        })?,
    };
    let choice = model::choose(
        project,
        store,
        &input.model,
        Purpose::Generate,
        Some(run_id),
    )?;
    reporter.emit(StageEvent::Started {
        stage: Stage::Analyze,
        detail: format!("analyzing run {run_id} with {}", choice.label),
    });
    let client = &choice.client;
    let pairs = coverage::run_pairs(store, Some(run_id))?;
    let cov = coverage::coverage(project, &pairs, input.factor);
    let topics = if input.topics {
        Some(coverage::topic_coverage(client, project, &pairs, input.factor).await)
    } else {
        None
    };
    let mut errors = coverage::error_analysis(store, &pairs, &project.schema)?;
    if errors.failed > 0 {
        let req = coverage::error_analysis_request(&errors);
        errors.original["llm_analysis"] = match client.call(&req).await {
            Ok(r) => json!(
                r.json
                    .as_ref()
                    .and_then(|j| j["analysis"].as_str())
                    .unwrap_or(&r.text)
            ),
            Err(e) => {
                reporter.warn(
                    Stage::Analyze,
                    format!("no root-cause write-up of the failed pairs: {e}"),
                );
                json!(format!("(no root-cause write-up: {e})"))
            }
        };
    }
    let (fill, after_fill) = if input.fill {
        let report = coverage::fill_gaps(
            project,
            Arc::clone(store),
            Arc::clone(client),
            run_id,
            &cov,
            topics.as_ref(),
            input.per_gap,
        )
        .await?;
        let pairs = coverage::run_pairs(store, Some(run_id))?;
        (
            Some(report),
            Some(coverage::coverage(project, &pairs, input.factor)),
        )
    } else {
        (None, None)
    };
    let dir = input.out.clone().unwrap_or_else(|| {
        project
            .dir()
            .join("reports")
            .join(format!("analysis-{run_id}"))
    });
    std::fs::create_dir_all(&dir)
        .map_err(TaskError::io(format!("cannot create {}", dir.display())))?;
    let md = coverage::markdown(
        after_fill.as_ref().unwrap_or(&cov),
        topics.as_ref(),
        &errors,
        fill.as_ref(),
    );
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(TaskError::io(format!("cannot write {}", path.display())))
    };
    write("coverage.md", md)?;
    let report = json!({
        "run_id": run_id,
        "model": choice.label,
        "coverage": cov,
        "topics": topics,
        "errors": {"failed": errors.failed, "by_category": errors.by_category, "by_generator": errors.by_generator, "by_concept": errors.by_concept},
        "fill": fill,
        "coverage_after_fill": after_fill,
    });
    write("coverage.json", pretty(&report))?;
    if errors.failed > 0 {
        write("sql_error_analysis.json", pretty(&errors.original))?;
    }
    store.save_analysis(Some(run_id), "coverage", &report.to_string())?;
    super::report_store_errors(reporter, Stage::Analyze, client);
    let outcome = AnalysisOutcome {
        run_id,
        model: choice.label,
        coverage: cov,
        topics,
        errors,
        fill,
        after_fill,
        report_dir: dir,
    };
    reporter.emit(StageEvent::Finished {
        stage: Stage::Analyze,
        summary: outcome.headline(),
    });
    Ok(outcome)
}

fn pretty(v: &serde_json::Value) -> String {
    // A `Value` always serializes; the fallback keeps the report compact instead of failing.
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}
