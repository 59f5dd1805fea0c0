//! `lode mcp`: a Model Context Protocol server on stdin/stdout (newline-delimited JSON-RPC,
//! through the `rmcp` SDK) serving the project, so an agent can read the schema, run
//! read-only SQL, review pairs, see coverage and evaluate, as `lode` does from the command
//! line. Stdout carries the protocol only; warnings and logs go to stderr.
//!
//! Each tool returns the document the matching command prints with `--json` (the same
//! structs: `version`, `command`, then its fields) as JSON text content and as
//! `structuredContent`; a failure is a tool error (`isError: true`) holding the error document
//! `lode --json` prints, `{"version", "command", "error": {kind, message, location, hint,
//! exit_code}}`, classified by [`exit::classify`]. Review decisions go through
//! [`lode_core::pipeline::review::decide`], recorded as made by `mcp`. Queries run through the
//! project's [`Database`](lode_core::sql::Database), the executor every command uses (one
//! read-only statement, the config's limits).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::Args;
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::globals::Globals;
use super::{exit, json, review};
use lode_core::pipeline::coverage;
use lode_core::pipeline::review::Reviewer;
use lode_core::project::Project;
use lode_core::sql::compare::Profile;
use lode_core::store::{EvalCase, EvalRun, Store};
use lode_core::tasks::evaluate::{self, EvaluateInput};
use lode_core::tasks::model::ModelRequest;
use lode_core::tasks::{Reporter, StageEvent};

#[derive(Args, Debug)]
pub struct McpArgs {}

/// Serves the project in the current directory (or `-C DIR`) until the client closes stdin.
pub fn run(globals: &Globals, _args: &McpArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let server = LodeServer {
        project: Arc::new(project),
        store: Arc::new(store),
        model: globals.model_request(),
    };
    let rt = lode_core::tasks::runtime()?;
    rt.block_on(async move {
        let service = server
            .serve(rmcp::transport::stdio())
            .await
            .context("the MCP session did not start")?;
        service
            .waiting()
            .await
            .context("the MCP session ended abnormally")?;
        anyhow::Ok(())
    })?;
    // A read of stdin the session was waiting in may outlive it; the process ends anyway.
    rt.shutdown_background();
    Ok(0)
}

/// The server: one project and its store, shared by concurrent calls.
#[derive(Clone)]
struct LodeServer {
    project: Arc<Project>,
    store: Arc<Store>,
    /// `--profile` and `--no-cache`, for `eval_run` without a model of its own.
    model: ModelRequest,
}

// --- the tools' inputs ------------------------------------------------------------------------

/// Input of `schema`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SchemaInput {
    /// Only this table (its name as the schema lists it; case-insensitive).
    table: Option<String>,
}

/// Input of `sql`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SqlInput {
    /// One read-only statement (SELECT, WITH or VALUES). Writes, DDL, ATTACH, PRAGMA and a
    /// second statement are refused.
    sql: String,
    /// Rows to return at most; capped by the project's execution.max_rows.
    #[schemars(range(min = 1))]
    max_rows: Option<usize>,
}

/// Input of `analyze_sql`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AnalyzeSqlInput {
    /// The query to analyze (it is not run).
    sql: String,
}

/// Input of `pairs_list`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PairsListInput {
    /// Only pairs with this status: pending, valid, invalid, fixed, suspect, duplicate,
    /// leakage, accepted or rejected.
    status: Option<String>,
    /// The generation or import run (default: the newest).
    run: Option<i64>,
    /// Pairs to return at most (default 50).
    limit: Option<usize>,
    /// Pairs to skip first (default 0).
    offset: Option<usize>,
}

/// Input of `pair_show` and `pair_undo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PairIdInput {
    /// The pair's id (from pairs_list).
    id: i64,
}

/// Input of `pair_accept`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PairAcceptInput {
    /// The pairs to accept.
    #[serde(default)]
    ids: Vec<i64>,
    /// Accept every valid or fixed pair of the run too.
    #[serde(default)]
    all_valid: bool,
    /// With all_valid: accept suspect pairs (question and SQL disagree) too.
    #[serde(default)]
    include_suspect: bool,
    /// With all_valid: the run (default: the newest).
    run: Option<i64>,
    /// A note stored with each decision.
    reason: Option<String>,
}

/// Input of `pair_reject`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PairRejectInput {
    /// The pairs to reject.
    ids: Vec<i64>,
    /// Why (stored with each decision, shown by pair_show).
    reason: Option<String>,
}

/// Input of `pair_edit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PairEditInput {
    /// The pair's id.
    id: i64,
    /// The new SQL (validated by running it before anything is saved).
    sql: Option<String>,
    /// The new question.
    question: Option<String>,
    /// Accept the pair too (the edit and the accept are saved together or not at all).
    #[serde(default)]
    accept: bool,
}

/// Input of `coverage`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CoverageInput {
    /// The generation or import run (default: the newest).
    run: Option<i64>,
    /// A concept is under-represented when its gold share exceeds its generated share by
    /// this factor (default 1.5, at least 1).
    factor: Option<f64>,
}

/// Input of `eval_run`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EvalRunInput {
    /// A predictions file, one per eval question (text with one SQL per line, JSON or
    /// JSONL), relative to the project directory. Without it a model answers.
    pred: Option<String>,
    /// The model: `memory:<dataset>` for a memory-tuned model, else a name for the
    /// predictions in reports.
    model: Option<String>,
    /// The LLM profile that answers (`rules` is the offline backend); default llm.default,
    /// or the newest tuned model.
    profile: Option<String>,
    /// Evaluate the tuned model of this tuning job.
    job: Option<i64>,
    /// Comparison profile: lode (default), spider_ts, bird_ex, defog or spider2.
    compare: Option<String>,
    /// spider_ts: keep DISTINCT.
    #[serde(default)]
    keep_distinct: bool,
    /// Give the model the K closest pairs as worked examples (0 to 100).
    #[schemars(range(max = 100))]
    few_shot: Option<usize>,
}

/// Input of `eval_show`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EvalShowInput {
    /// The evaluation run (default: the newest).
    id: Option<i64>,
    /// Only the questions answered wrong.
    #[serde(default)]
    wrong_only: bool,
}

/// Input of `jobs`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobsInput {}

// --- the tools' documents (where no command prints one) -------------------------------------

/// `analyze` (the `coverage` tool): `lode analyze --json`'s fields, computed without a
/// model: `model`, `topics`, `fill`, `after_fill` and `report_dir` are `null` (no topics, no
/// root-cause write-up, no gap filling, no report written).
#[derive(Debug, Serialize)]
struct CoverageDoc {
    run_id: i64,
    model: Option<String>,
    coverage: coverage::Coverage,
    topics: Option<Json>,
    failed_pairs: FailedPairs,
    fill: Option<Json>,
    after_fill: Option<Json>,
    report_dir: Option<PathBuf>,
}

/// The failed pairs grouped three ways.
#[derive(Debug, Serialize)]
struct FailedPairs {
    count: usize,
    by_category: BTreeMap<String, usize>,
    by_generator: BTreeMap<String, usize>,
    by_concept: BTreeMap<String, usize>,
}

/// `eval` (the `eval_run` tool): the stored run and where its reports are.
#[derive(Debug, Serialize)]
struct EvalDoc {
    eval_run_id: i64,
    /// The model evaluated, as summaries name it.
    model: String,
    /// The comparison profile.
    compare: String,
    /// Execution accuracy in [0, 1], with its 95% Wilson interval.
    accuracy: f64,
    accuracy_ci: (f64, f64),
    summary: lode_core::pipeline::eval::Summary,
    /// Findings of the gold audit of the eval set (see the report).
    audit_findings: usize,
    /// Eval questions that repeat a training pair.
    leakage: usize,
    /// Absolute paths.
    report_dir: PathBuf,
    reports: Vec<PathBuf>,
    /// What the evaluation warned about.
    warnings: Vec<String>,
}

/// `eval show`: a stored evaluation run with its summary and cases.
#[derive(Debug, Serialize)]
struct EvalShown {
    run: EvalRunView,
    cases: Vec<EvalCaseView>,
}

#[derive(Debug, Serialize)]
struct EvalRunView {
    id: i64,
    created_at: String,
    finished_at: Option<String>,
    model: String,
    /// The comparison profile.
    compare: String,
    status: lode_core::store::RunStatus,
    eval_set_hash: Option<String>,
    /// The options it ran with.
    config: Json,
    /// `{accuracy, accuracy_ci, summary, by_concept, by_table, leakage}`, `null` until it
    /// finished.
    summary: Json,
}

impl From<EvalRun> for EvalRunView {
    fn from(r: EvalRun) -> EvalRunView {
        EvalRunView {
            id: r.id,
            created_at: r.created_at,
            finished_at: r.finished_at,
            model: r.model,
            compare: r.profile,
            status: r.status,
            eval_set_hash: r.eval_set_hash,
            config: parsed(Some(r.config_json)),
            summary: parsed(r.summary_json),
        }
    }
}

#[derive(Debug, Serialize)]
struct EvalCaseView {
    position: i64,
    question: String,
    gold_sql: String,
    pred_sql: Option<String>,
    correct: bool,
    reason: Option<String>,
    hardness: Option<String>,
    /// The comparison's detail (previews, the judge's opinion), `null` when none.
    detail: Json,
}

impl From<EvalCase> for EvalCaseView {
    fn from(c: EvalCase) -> EvalCaseView {
        EvalCaseView {
            position: c.position,
            question: c.question,
            gold_sql: c.gold_sql,
            pred_sql: c.pred_sql,
            correct: c.correct,
            reason: c.reason,
            hardness: c.hardness,
            detail: parsed(c.detail_json),
        }
    }
}

/// `path` as an agent can open it whatever its own directory.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Text that holds JSON, as JSON (`null` when absent or not JSON).
fn parsed(text: Option<String>) -> Json {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Json::Null)
}

// --- the tool table ---------------------------------------------------------------------------

/// One tool: its name, the command whose document it returns, what it is for, its input.
struct ToolSpec {
    name: &'static str,
    command: &'static str,
    description: &'static str,
    schema: fn() -> Arc<Map<String, Json>>,
    read_only: bool,
}

/// The input schema of `T`, without the top-level title (noise to a model).
fn input_schema<T: JsonSchema + 'static>() -> Arc<Map<String, Json>> {
    let mut schema = schema_for_type::<T>().as_ref().clone();
    for noise in ["title", "description", "$schema"] {
        schema.remove(noise);
    }
    Arc::new(schema)
}

const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "schema",
        command: "schema",
        description: "The database schema: tables with columns (types, keys, distinct counts, \
            sample values), foreign keys, indexes and row counts. Give `table` for one table. \
            Read it before writing SQL.",
        schema: input_schema::<SchemaInput>,
        read_only: true,
    },
    ToolSpec {
        name: "sql",
        command: "sql",
        description: "Run one read-only SQL statement on the project's database with the \
            project's limits (time, rows, cell and result size) and get \
            {columns, rows, truncated, truncated_cells, elapsed}. Writes, DDL, ATTACH, PRAGMA \
            and multiple statements are refused (error kind `refused`).",
        schema: input_schema::<SqlInput>,
        read_only: true,
    },
    ToolSpec {
        name: "analyze_sql",
        command: "sql",
        description: "Analyze a query without running it: SQL concepts used, tables, columns, \
            hardness (easy..extra), level and template, resolved against the project schema.",
        schema: input_schema::<AnalyzeSqlInput>,
        read_only: true,
    },
    ToolSpec {
        name: "pairs_list",
        command: "review list",
        description: "List generated question/SQL pairs of a run (the newest by default) with \
            their status, and the run's counts by status. Filter by status (e.g. `valid` to \
            review, `suspect` where question and SQL disagree); page with limit and offset.",
        schema: input_schema::<PairsListInput>,
        read_only: true,
    },
    ToolSpec {
        name: "pair_show",
        command: "review show",
        description: "One pair in full: question, SQL, status, analysis, notes (why it is \
            suspect or a duplicate), every validation attempt with its result preview, and \
            the review history (who decided what, undone or not).",
        schema: input_schema::<PairIdInput>,
        read_only: true,
    },
    ToolSpec {
        name: "pair_accept",
        command: "review accept",
        description: "Accept pairs as training data (by id, and/or every valid pair of a run \
            with all_valid). Recorded in the review history as decided by `mcp`; pair_undo \
            reverts it.",
        schema: input_schema::<PairAcceptInput>,
        read_only: false,
    },
    ToolSpec {
        name: "pair_reject",
        command: "review reject",
        description: "Reject pairs, with a reason. Recorded in the review history as decided \
            by `mcp`; pair_undo reverts it.",
        schema: input_schema::<PairRejectInput>,
        read_only: false,
    },
    ToolSpec {
        name: "pair_edit",
        command: "review edit",
        description: "Change a pair's SQL and/or question. The SQL the pair would have is run \
            first and nothing is saved unless it validates (then `saved` is false, the result \
            an error, and `validation` says why). With accept, the edit and the accept are \
            saved together. pair_undo steps back.",
        schema: input_schema::<PairEditInput>,
        read_only: false,
    },
    ToolSpec {
        name: "pair_undo",
        command: "review undo",
        description: "Undo the latest decision on a pair (accept, reject or edit), restoring \
            its question, SQL and status.",
        schema: input_schema::<PairIdInput>,
        read_only: false,
    },
    ToolSpec {
        name: "coverage",
        command: "analyze",
        description: "Coverage of a run (the newest by default) against the gold set: SQL \
            concepts, hardness, tables, joins and columns in gold, generated and accepted \
            pairs; missing and under-represented concepts, unused tables and joins; failed \
            pairs by category, generator and concept. Deterministic, no model.",
        schema: input_schema::<CoverageInput>,
        read_only: true,
    },
    ToolSpec {
        name: "eval_run",
        command: "eval",
        description: "Evaluate a model on the project's eval set by execution accuracy, as \
            `lode eval` does: a predictions file (pred), a tuned model (job, or model \
            `memory:<dataset>`) or an LLM profile answers; every answer is run and compared. \
            Stores the run and writes reports; returns accuracy and the summary.",
        schema: input_schema::<EvalRunInput>,
        read_only: false,
    },
    ToolSpec {
        name: "eval_show",
        command: "eval show",
        description: "A stored evaluation run (the newest by default): model, comparison \
            profile, accuracy and summary, and each question with gold and predicted SQL and \
            the verdict's reason.",
        schema: input_schema::<EvalShowInput>,
        read_only: true,
    },
    ToolSpec {
        name: "jobs",
        command: "jobs list",
        description: "The tuning jobs, newest first: provider, status, base and tuned model.",
        schema: input_schema::<JobsInput>,
        read_only: true,
    },
];

fn tool(spec: &ToolSpec) -> Tool {
    Tool::new(spec.name, spec.description, (spec.schema)()).with_annotations(
        ToolAnnotations::new()
            .read_only(spec.read_only)
            .destructive(false)
            .open_world(false),
    )
}

/// The tool's arguments as `T`; a usage error (exit 2's kind) naming what is wrong.
fn arguments<T: DeserializeOwned>(tool: &str, args: Option<Map<String, Json>>) -> Result<T> {
    serde_json::from_value(Json::Object(args.unwrap_or_default())).map_err(|e| {
        exit::usage(
            format!("invalid arguments for {tool}: {e}"),
            "see the tool's inputSchema (tools/list)",
        )
    })
}

impl LodeServer {
    /// Runs a tool: its document, or the error `lode --json` would print, as the result.
    async fn call(&self, name: &str, args: Option<Map<String, Json>>) -> CallToolResult {
        let Some(spec) = TOOLS.iter().find(|t| t.name == name) else {
            let e = exit::usage(
                format!("no tool named `{name}`"),
                format!(
                    "the tools are {}",
                    TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                ),
            );
            return failure("mcp", &e);
        };
        let outcome = if name == "eval_run" {
            let server = self.clone();
            tokio::spawn(async move { server.eval_run(args).await }).await
        } else {
            let (server, name) = (self.clone(), name.to_string());
            tokio::task::spawn_blocking(move || server.call_blocking(&name, args)).await
        };
        let outcome = outcome.unwrap_or_else(|e| {
            // A panic in a tool is that call's error, never the session's end.
            Err(anyhow::anyhow!("{name} failed unexpectedly: {e}"))
        });
        match outcome {
            Ok(Outcome { doc, ok }) => {
                let doc = json::document(spec.command, &doc);
                if ok {
                    CallToolResult::structured(doc)
                } else {
                    CallToolResult::structured_error(doc)
                }
            }
            Err(e) => failure(spec.command, &e),
        }
    }

    fn call_blocking(&self, name: &str, args: Option<Map<String, Json>>) -> Result<Outcome> {
        let (project, store) = (&*self.project, &*self.store);
        let by = Reviewer::Mcp;
        match name {
            "schema" => {
                let input: SchemaInput = arguments(name, args)?;
                let mut schema = project.schema.clone();
                if let Some(t) = &input.table {
                    schema.tables.retain(|x| x.name.eq_ignore_ascii_case(t));
                    if schema.tables.is_empty() {
                        return Err(exit::usage(
                            format!("no table named `{t}` in the database"),
                            format!(
                                "the tables are {}",
                                project
                                    .schema
                                    .tables
                                    .iter()
                                    .map(|t| t.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
                Outcome::ok(&schema)
            }
            "sql" => {
                let input: SqlInput = arguments(name, args)?;
                let mut limits = project.db.limits();
                if let Some(n) = input.max_rows {
                    if n == 0 {
                        return Err(exit::usage(
                            "max_rows must be at least 1",
                            "leave it out for the project's execution.max_rows",
                        ));
                    }
                    limits.max_rows = n.min(limits.max_rows);
                }
                let result = project.db.query_detached(&input.sql, limits, None)?;
                Outcome::ok(&result)
            }
            "analyze_sql" => {
                let input: AnalyzeSqlInput = arguments(name, args)?;
                let analysis = lode_core::sql::analyze::analyze(&input.sql, Some(&project.schema))?;
                Outcome::ok(&analysis)
            }
            "pairs_list" => {
                let input: PairsListInput = arguments(name, args)?;
                let list = review::list(
                    store,
                    input.status.as_deref(),
                    input.run,
                    input.limit.unwrap_or(50),
                    input.offset.unwrap_or(0),
                )?;
                Outcome::ok(&list)
            }
            "pair_show" => {
                let input: PairIdInput = arguments(name, args)?;
                Outcome::ok(&review::show(store, input.id)?)
            }
            "pair_accept" => {
                let input: PairAcceptInput = arguments(name, args)?;
                let d = review::accept(
                    project,
                    store,
                    &input.ids,
                    input.all_valid,
                    input.include_suspect,
                    input.run,
                    input.reason.as_deref(),
                    by,
                )?;
                Outcome::ok(&d)
            }
            "pair_reject" => {
                let input: PairRejectInput = arguments(name, args)?;
                let d = review::reject(project, store, &input.ids, input.reason.as_deref(), by)?;
                Outcome::ok(&d)
            }
            "pair_edit" => {
                let input: PairEditInput = arguments(name, args)?;
                let edited = review::edit(
                    project,
                    store,
                    input.id,
                    input.sql.as_deref(),
                    input.question.as_deref(),
                    input.accept,
                    by,
                )?;
                // Not saved is the command's exit 1: the document, as an error result.
                Ok(Outcome {
                    ok: edited.saved,
                    doc: serde_json::to_value(&edited)?,
                })
            }
            "pair_undo" => {
                let input: PairIdInput = arguments(name, args)?;
                Outcome::ok(&review::undo(project, store, input.id, by)?)
            }
            "coverage" => {
                let input: CoverageInput = arguments(name, args)?;
                let factor = input.factor.unwrap_or(1.5);
                if !(factor.is_finite() && factor >= 1.0) {
                    return Err(exit::usage(
                        "factor must be a number of at least 1",
                        "leave it out for 1.5",
                    ));
                }
                let run_id = match input.run {
                    Some(r) => store.run(r)?.id,
                    None => lode_core::tasks::analyze::default_run(store)?.ok_or_else(|| {
                        exit::usage(
                            "nothing to analyze yet: no generation or import run",
                            "run `lode generate` first",
                        )
                    })?,
                };
                let pairs = coverage::run_pairs(store, Some(run_id))?;
                let cov = coverage::coverage(project, &pairs, factor);
                let e = coverage::error_analysis(store, &pairs, &project.schema)?;
                Outcome::ok(&CoverageDoc {
                    run_id,
                    model: None,
                    coverage: cov,
                    topics: None,
                    failed_pairs: FailedPairs {
                        count: e.failed,
                        by_category: e.by_category,
                        by_generator: e.by_generator,
                        by_concept: e.by_concept,
                    },
                    fill: None,
                    after_fill: None,
                    report_dir: None,
                })
            }
            "eval_show" => {
                let input: EvalShowInput = arguments(name, args)?;
                let run = match input.id {
                    Some(id) => store.eval_run(id)?,
                    None => store.eval_runs()?.into_iter().next().ok_or_else(|| {
                        exit::usage(
                            "no evaluation runs yet",
                            "eval_run (or `lode eval`) makes one",
                        )
                    })?,
                };
                let cases = store
                    .eval_cases(run.id)?
                    .into_iter()
                    .filter(|c| !(input.wrong_only && c.correct))
                    .map(EvalCaseView::from)
                    .collect();
                Outcome::ok(&EvalShown {
                    run: run.into(),
                    cases,
                })
            }
            "jobs" => {
                let _: JobsInput = arguments(name, args)?;
                // `lode jobs list --json`'s own document.
                Outcome::ok(&super::jobs::JobsDoc {
                    jobs: super::jobs::job_docs(store)?,
                })
            }
            other => Err(anyhow::anyhow!("{other} is not run here")),
        }
    }

    /// `eval_run`: [`evaluate::run`] as `lode eval` calls it; progress is not reported, and
    /// warnings come back in the document.
    async fn eval_run(&self, args: Option<Map<String, Json>>) -> Result<Outcome> {
        let input: EvalRunInput = arguments("eval_run", args)?;
        let compare = Profile::from_name(
            input.compare.as_deref().unwrap_or("lode"),
            input.keep_distinct,
        )
        .map_err(|e| exit::usage(e, "use lode, spider_ts, bird_ex, defog or spider2"))?;
        let few_shot = input.few_shot.unwrap_or(0);
        if few_shot > 100 {
            return Err(exit::usage("few_shot must be from 0 to 100", ""));
        }
        let memory = input.model.clone().filter(|m| m.starts_with("memory:"));
        let predictions = input.pred.as_ref().map(|p| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.project.dir().join(p)
            }
        });
        let evaluate_input = EvaluateInput {
            model: ModelRequest {
                profile: input.profile.clone().or(self.model.profile.clone()),
                job: input.job,
                model: memory.clone(),
                use_cache: self.model.use_cache,
            },
            predictions,
            name: input.model.clone().filter(|_| memory.is_none()),
            compare,
            few_shot,
            ..EvaluateInput::default()
        };
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let reporter = {
            let warnings = Arc::clone(&warnings);
            Reporter::new(move |event| {
                if let StageEvent::Warning { message, .. } = event {
                    eprintln!("warning: {message}");
                    warnings
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(message);
                }
            })
        };
        let outcome = evaluate::run(&self.project, &self.store, &evaluate_input, &reporter).await?;
        let r = &outcome.result;
        let warnings = std::mem::take(&mut *warnings.lock().unwrap_or_else(|p| p.into_inner()));
        Outcome::ok(&EvalDoc {
            eval_run_id: r.eval_run_id,
            model: outcome.model.clone(),
            compare: r.profile.clone(),
            accuracy: r.summary.accuracy(),
            accuracy_ci: r.accuracy_ci,
            summary: r.summary.clone(),
            audit_findings: r.audit.len(),
            leakage: r.leakage.len(),
            report_dir: absolute(&outcome.report_dir),
            reports: outcome.reports.iter().map(|p| absolute(p)).collect(),
            warnings,
        })
    }

    // --- resources ----------------------------------------------------------------------------

    /// The newest evaluation's report folder that exists.
    fn latest_eval_report(&self) -> Option<PathBuf> {
        let runs = self.store.eval_runs().ok()?;
        runs.iter()
            .map(|r| {
                self.project
                    .dir()
                    .join("reports")
                    .join(format!("eval-{}", r.id))
            })
            .find(|d| d.join("report.json").is_file())
    }

    /// The newest analysis report folder that exists.
    fn latest_analysis_report(&self) -> Option<PathBuf> {
        let runs = self.store.runs().ok()?;
        runs.iter()
            .map(|r| {
                self.project
                    .dir()
                    .join("reports")
                    .join(format!("analysis-{}", r.id))
            })
            .find(|d| d.join("coverage.json").is_file())
    }

    /// Every resource there is now: uri, name, description, mime type, file (none for the
    /// ones made on the fly).
    fn resources(
        &self,
    ) -> Vec<(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<PathBuf>,
    )> {
        let mut out = vec![
            (
                "lode://config",
                "config",
                "The project's config.yml, API keys and other secrets redacted.",
                "application/yaml",
                None,
            ),
            (
                "lode://schema",
                "schema",
                "The database schema as the schema tool returns it.",
                "application/json",
                None,
            ),
        ];
        if let Some(dir) = self.latest_eval_report() {
            out.push((
                "lode://reports/latest",
                "latest evaluation report (JSON)",
                "The newest evaluation's report.json: summary, every case, audit findings.",
                "application/json",
                Some(dir.join("report.json")),
            ));
            let md = dir.join("report.md");
            if md.is_file() {
                out.push((
                    "lode://reports/latest.md",
                    "latest evaluation report",
                    "The newest evaluation's report.md.",
                    "text/markdown",
                    Some(md),
                ));
            }
        }
        if let Some(dir) = self.latest_analysis_report() {
            out.push((
                "lode://reports/analysis/latest",
                "latest coverage report",
                "The newest analysis's coverage.json (lode analyze).",
                "application/json",
                Some(dir.join("coverage.json")),
            ));
        }
        out
    }

    fn read(&self, uri: &str) -> Result<Option<(String, &'static str)>> {
        match uri {
            "lode://config" => {
                let path = &self.project.config.source;
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let secrets = lode_core::llm::known_secrets(&self.project.config);
                Ok(Some((
                    lode_core::config::redact(&text, &secrets),
                    "application/yaml",
                )))
            }
            "lode://schema" => Ok(Some((
                serde_json::to_string_pretty(&json::document("schema", &self.project.schema))?,
                "application/json",
            ))),
            other => {
                let Some((_, _, _, mime, Some(file))) =
                    self.resources().into_iter().find(|r| r.0 == other)
                else {
                    return Ok(None);
                };
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                Ok(Some((text, mime)))
            }
        }
    }
}

/// A tool's document and whether it is a success.
struct Outcome {
    doc: Json,
    ok: bool,
}

impl Outcome {
    fn ok(doc: &impl Serialize) -> Result<Outcome> {
        Ok(Outcome {
            doc: serde_json::to_value(doc)?,
            ok: true,
        })
    }
}

/// The error result: the error document `lode --json` prints for `e`.
fn failure(command: &str, e: &anyhow::Error) -> CallToolResult {
    let f = exit::classify(e);
    eprintln!("{command}: {}", f.message);
    CallToolResult::structured_error(json::error_document(command, &f))
}

const INSTRUCTIONS: &str = "lode builds text-to-SQL training data for one database. Read the \
    schema (tool `schema`, resource lode://schema), try SQL with `sql` (read-only, limited) and \
    `analyze_sql`, review generated pairs with `pairs_list`, `pair_show`, `pair_accept`, \
    `pair_reject`, `pair_edit` and `pair_undo` (each decision is recorded as made by `mcp` and \
    can be undone), check `coverage`, and evaluate with `eval_run` / `eval_show`. Every \
    result is a JSON document with `version` and `command`; an error result holds \
    {\"error\": {kind, message, location, hint, exit_code}}.";

impl ServerHandler for LodeServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(
            Implementation::new("lode", env!("CARGO_PKG_VERSION"))
                .with_title("lode text-to-SQL workbench"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            TOOLS.iter().map(tool).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name: Cow<'static, str> = request.name;
        Ok(self.call(&name, request.arguments).await.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let server = self.clone();
        let found = tokio::task::spawn_blocking(move || server.resources())
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ListResourcesResult::with_all_items(
            found
                .into_iter()
                .map(|(uri, name, description, mime, _)| {
                    Resource::new(uri, name)
                        .with_description(description)
                        .with_mime_type(mime)
                })
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (server, uri) = (self.clone(), request.uri.clone());
        let read = tokio::task::spawn_blocking(move || server.read(&uri))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        match read {
            Ok(Some((text, mime))) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, request.uri).with_mime_type(mime),
            ])
            .into()),
            Ok(None) => Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            )),
            Err(e) => Err(ErrorData::internal_error(super::error_message(&e), None)),
        }
    }
}
