//! The command line: one subcommand per stage, each a thin layer over the library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::project::{Project, demo};
use crate::sql::{Database, ExecError, ExecLimits, QueryResult};

#[derive(Parser, Debug)]
#[command(
    name = "lode",
    version,
    about = "Build domain-specific text-to-SQL models: generate, validate, review, analyze, tune and evaluate",
    long_about = None,
)]
pub struct Cli {
    /// The project's config file.
    #[arg(long, global = true, default_value = "config.yml")]
    pub config: PathBuf,
    /// Run as if started in DIR (the project directory).
    #[arg(short = 'C', long = "project", global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// The LLM profile to use instead of llm.default (`rules` is the offline backend).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Do not answer LLM calls from the cache (answers are still stored).
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Without a command, `lode` opens the terminal UI on the project here.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the demo project (a bakery chain) and run every stage on it offline
    Demo(DemoArgs),
    /// Start a project: write config.yml for your database, glossary and gold set
    Init(InitArgs),
    /// Print the database schema: tables, columns, keys, row counts, sample values
    Schema(SchemaArgs),
    /// Run one read-only query safely, or analyze queries (concepts, hardness, template)
    Sql(SqlArgs),
    /// Generate training pairs from the gold set, validate them by execution, dedup them
    Generate(GenerateArgs),
    /// Coverage of SQL concepts, tables and topics, failed-pair analysis, and gap filling
    Analyze(AnalyzeArgs),
    /// Review generated pairs from the command line: list, accept, reject, edit, undo
    Review(ReviewArgs),
    /// Write a run in the original's file shapes (lamini-nested, lamini)
    Export(ExportArgs),
    /// Bring the original's nested or flattened files into the store as a run
    Import(ImportArgs),
    /// Tune a model on the accepted pairs (memory offline, Lamini, OpenAI or a local trainer)
    Tune(TuneArgs),
    /// List tuning jobs, watch one, or cancel one
    Jobs(JobsArgs),
    /// Evaluate a model on the eval set by execution accuracy, store the run, write reports
    Eval(EvalArgs),
    /// Check an LLM profile: models offered, one structured request, latency
    Llm(LlmArgs),
    /// Judge prediction files against gold files like the reference evaluators (Spider, BIRD, defog)
    EvalFiles(EvalFilesArgs),
    /// Measure executor, analysis, evaluation and demo-generation speed
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub action: Option<EvalAction>,
    /// Predictions, one per eval question: text (one SQL per line), JSON or JSONL, or the
    /// original's inference_results.json. Without it the LLM profile answers the questions.
    #[arg(long)]
    pub pred: Option<PathBuf>,
    /// Ask the LLM judge about each mismatch (stored beside the verdict, never replacing it).
    #[arg(long)]
    pub judge: bool,
    /// Evaluate the model of this tuning job.
    #[arg(long)]
    pub job: Option<i64>,
    /// Give the model the K closest accepted pairs as examples (retrieval-augmented).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub few_shot: usize,
    /// A name for the model evaluated (shown in reports and `lode eval list`).
    #[arg(long)]
    pub model: Option<String>,
    /// Comparison profile: lode, spider_ts, bird_ex or defog.
    #[arg(long, default_value = "lode")]
    pub compare: String,
    /// spider_ts: keep DISTINCT.
    #[arg(long)]
    pub keep_distinct: bool,
    /// Where to write the reports (default: reports/eval-<run> in the project).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Start a new run even if the last one did not finish (the default resumes it).
    #[arg(long)]
    pub new: bool,
    /// Resume this run.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<i64>,
    /// Only these gold pairs (1-based positions, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub gold: Vec<usize>,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// The run (default: the newest generate run).
    #[arg(long)]
    pub run: Option<i64>,
    /// Fill the gaps found: new pairs for missing concepts, tables, joins and topics.
    #[arg(long)]
    pub fill: bool,
    /// Pairs asked for each gap when filling.
    #[arg(long, default_value_t = 2)]
    pub per_gap: usize,
    /// Skip the LLM topic analysis (deterministic coverage only).
    #[arg(long)]
    pub no_topics: bool,
    /// A concept is under-represented when its gold share exceeds its generated share by
    /// this factor.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,
    /// Where to write the reports (default: reports/analysis-<run>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// memory, lamini, openai or local (default: tune.provider).
    #[arg(long)]
    pub provider: Option<String>,
    /// Train on this run's pairs only (default: every run's).
    #[arg(long)]
    pub run: Option<i64>,
    /// Submit and return without watching.
    #[arg(long)]
    pub no_watch: bool,
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub action: Option<JobsAction>,
}

#[derive(Subcommand, Debug)]
pub enum JobsAction {
    /// List tuning jobs
    List,
    /// Follow a job until it ends (the newest by default)
    Watch { id: Option<i64> },
    /// Cancel a job
    Cancel { id: i64 },
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub action: ReviewAction,
}

#[derive(Subcommand, Debug)]
pub enum ReviewAction {
    /// List pairs (newest run by default)
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        run: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a pair with its validation attempts and review history
    Show { id: i64 },
    /// Accept pairs (or every valid pair with --all-valid)
    Accept {
        ids: Vec<i64>,
        #[arg(long)]
        all_valid: bool,
        #[arg(long)]
        run: Option<i64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject pairs
    Reject {
        ids: Vec<i64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change a pair's SQL and/or question; the SQL is validated before it is saved
    Edit {
        id: i64,
        #[arg(long)]
        sql: Option<String>,
        #[arg(long)]
        question: Option<String>,
    },
    /// Undo the latest decision on a pair
    Undo { id: i64 },
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// lamini-nested (nested_results) or lamini (flattened {input, output}).
    #[arg(long, default_value = "lamini")]
    pub format: String,
    /// The run (default: the newest generate run).
    #[arg(long)]
    pub run: Option<i64>,
    /// valid (valid, fixed or accepted), accepted, or all.
    #[arg(long, default_value = "valid")]
    pub status: String,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A nested_results_*.jsonl or flattened *.jsonl file of the original.
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct LlmArgs {
    #[command(subcommand)]
    pub action: LlmAction,
}

#[derive(Subcommand, Debug)]
pub enum LlmAction {
    /// List the server's models, send one tiny structured request, report what works
    Check {
        /// The profile (default: --profile, else llm.default).
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum EvalAction {
    /// List the evaluation runs in the store
    List,
    /// List the cases whose verdict changed between two runs
    Diff { a: i64, b: i64 },
}

#[derive(Args, Debug)]
pub struct EvalFilesArgs {
    /// Gold file: one `SQL<TAB>db_id` per line.
    #[arg(long, required_unless_present = "explain_profiles")]
    pub gold: Option<PathBuf>,
    /// Prediction file: one SQL per line, in the gold file's order.
    #[arg(long, required_unless_present = "explain_profiles")]
    pub pred: Option<PathBuf>,
    /// Directory holding `<db_id>/<db_id>.sqlite`.
    #[arg(long, required_unless_present = "explain_profiles")]
    pub db_dir: Option<PathBuf>,
    /// Comparison profile: lode, spider_ts, bird_ex or defog.
    #[arg(long, alias = "compare", default_value = "lode")]
    pub profile: String,
    /// spider_ts: keep DISTINCT (test-suite's --keep_distinct).
    #[arg(long)]
    pub keep_distinct: bool,
    /// Write one JSON line per pair: index, db_id, verdict, reason, hardness, timing.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Wall-clock limit per query, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print where each profile departs from correct semantics, and exit.
    #[arg(long)]
    pub explain_profiles: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to write the demo project.
    #[arg(default_value = "lode-demo")]
    pub dir: PathBuf,
    /// Regenerate the project files even if the directory already holds a project.
    #[arg(long)]
    pub force: bool,
    /// Only write the project; run no stage.
    #[arg(long)]
    pub no_run: bool,
    /// Print the summary and exit instead of opening the TUI (it opens only on a terminal).
    #[arg(long)]
    pub no_tui: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The project directory (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Your SQLite database.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Your gold question/SQL set (JSONL, JSON array or Spider dev.json).
    #[arg(long)]
    pub gold: Option<PathBuf>,
    /// A held-out evaluation set (same formats as the gold set).
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Your glossary (JSONL, JSON object or CSV).
    #[arg(long)]
    pub glossary: Option<PathBuf>,
    /// Overwrite an existing config.yml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    /// A readable listing with keys, counts and samples.
    Text,
    /// CREATE TABLE text as the original's get_schema builds it.
    Create,
    /// CREATE TABLE with keys, row counts and sample values, as prompts get it.
    Annotated,
    /// Everything as JSON.
    Json,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// A database to read instead of the project's.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: SchemaFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RowFormat {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The statement (one read-only SELECT or WITH).
    pub sql: Option<String>,
    /// A database to use instead of the project's.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Wall-clock limit in seconds (default: execution.timeout_s, else 10).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Rows to keep (default: execution.max_rows).
    #[arg(long)]
    pub max_rows: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: RowFormat,
    /// Print the analysis (concepts, tables, columns, hardness, template) as JSON instead of
    /// running the query.
    #[arg(long)]
    pub analyze: bool,
    /// With --analyze: a file of queries, one per line (or `SQL<TAB>db_id` lines); prints one
    /// JSON line each.
    #[arg(long, requires = "analyze")]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Spider data directory (with dev.json and database/).
    #[arg(long, default_value = "../shared/data/spider_dev11")]
    pub spider: PathBuf,
    /// Repetitions of each measurement (the best and the median are reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Keep the generated evaluation files (gold and prediction variants) in DIR.
    #[arg(long, value_name = "DIR")]
    pub keep_files: Option<PathBuf>,
    /// Run only these groups (comma-separated): spider, demo, llm, generate, tui.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    pub only: Vec<String>,
    /// Pairs in the store for the TUI benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub tui_pairs: usize,
    /// (internal) the TUI benchmark's child process: open DIR, draw one frame, report.
    #[arg(long, value_name = "DIR", hide = true)]
    pub tui_child: Option<PathBuf>,
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    if let Some(dir) = &cli.project {
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot enter project directory {}", dir.display()))?;
    }
    let Some(command) = &cli.command else {
        return cmd_tui(&cli);
    };
    match command {
        Command::Demo(args) => cmd_demo(args),
        Command::Init(args) => cmd_init(args),
        Command::Schema(args) => cmd_schema(&cli, args),
        Command::Sql(args) => cmd_sql(&cli, args),
        Command::Generate(args) => crate::cli_generate::generate(&cli, args),
        Command::Analyze(args) => crate::cli_coverage::analyze(&cli, args),
        Command::Tune(args) => crate::cli_tune::tune(&cli, args),
        Command::Jobs(args) => crate::cli_tune::jobs(&cli, args),
        Command::Review(args) => crate::cli_review::review(&cli, args),
        Command::Export(args) => crate::cli_review::export(&cli, args),
        Command::Import(args) => crate::cli_review::import(&cli, args),
        Command::Eval(args) => crate::cli_eval::eval(&cli, args),
        Command::Llm(args) => crate::cli_eval::llm(&cli, args),
        Command::EvalFiles(args) => crate::cli_eval::eval_files(args),
        Command::Bench(args) => crate::bench::run(args),
    }
}

pub(crate) fn load_project(cli: &Cli) -> Result<Project> {
    let config = load_config(cli)?;
    let project = Project::from_config(config)?;
    print_warnings(&project.warnings[project.config.warnings.len()..]);
    Ok(project)
}

fn load_config(cli: &Cli) -> Result<Config> {
    if !cli.config.exists() {
        bail!(
            "no {} here: run lode inside a project directory, pass -C DIR or --config FILE, \
             or create one with `lode init` (or try `lode demo`)",
            cli.config.display()
        );
    }
    let config = Config::load(&cli.config)?;
    print_warnings(&config.warnings);
    Ok(config)
}

fn print_warnings(warnings: &[crate::diag::Warning]) {
    for w in warnings {
        eprintln!("{w}");
    }
}

/// Both ends of the terminal are a terminal: the TUI can run.
fn terminal_attached() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// `lode` alone: the TUI on the project here, or what to do instead.
fn cmd_tui(cli: &Cli) -> Result<i32> {
    if !cli.config.exists() {
        use clap::CommandFactory;
        let mut help = Cli::command();
        eprintln!(
            "no {} here, so there is no project to open: pass -C DIR, create one with \
             `lode init`, or try `lode demo`.\n",
            cli.config.display()
        );
        help.print_help()?;
        return Ok(2);
    }
    if !terminal_attached() {
        bail!(
            "the TUI needs a terminal (stdin and stdout are not one); use the commands instead, \
             e.g. `lode review list` (see `lode --help`)"
        );
    }
    let project = load_project(cli)?;
    let (store, _) = project.open_store()?;
    crate::tui::run(project, std::sync::Arc::new(store))?;
    Ok(0)
}

fn cmd_demo(args: &DemoArgs) -> Result<i32> {
    let config_path = args.dir.join("config.yml");
    let started = std::time::Instant::now();
    if config_path.exists() && !args.force {
        eprintln!(
            "using the demo project already in {} (pass --force to regenerate it)",
            args.dir.display()
        );
    } else {
        let opts = demo::DemoOptions {
            force: args.force,
            ..demo::DemoOptions::default()
        };
        let summary = demo::write_demo(&args.dir, &opts)?;
        let rows: Vec<String> = summary
            .tables
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        eprintln!(
            "wrote the demo project to {} in {:.0} ms ({})",
            args.dir.display(),
            started.elapsed().as_secs_f64() * 1000.0,
            rows.join(", ")
        );
    }
    if args.no_run {
        return Ok(0);
    }
    let project = Project::load(&config_path)?;
    print_warnings(&project.warnings);
    let (store, snapshot) = project.open_store()?;
    let store = std::sync::Arc::new(store);
    let mut out = std::io::stdout().lock();
    write_project_summary(&mut out, &project)?;
    writeln!(
        out,
        "Workspace store: {} (input snapshot {snapshot})",
        project.store_path().display()
    )?;
    let generated = demo_generation(&mut out, &project, &store, snapshot)?;
    demo_analysis(&mut out, &project, &store, generated)?;
    let job = demo_tuning(&mut out, &project, &store)?;
    demo_evaluation(&mut out, &project, &store, job)?;
    if !args.no_tui && terminal_attached() {
        drop(out);
        crate::tui::run(project, store)?;
    } else {
        writeln!(
            out,
            "\nReview the pairs in the TUI: lode -C {0} (from the source tree: cargo run \
             --release -- -C {0})",
            args.dir.display()
        )?;
    }
    Ok(0)
}

/// The generation stage on the demo, with the offline rules backend. A demo that already has
/// a finished run keeps it (rerunning would only find duplicates).
fn demo_generation(
    out: &mut impl Write,
    project: &Project,
    store: &std::sync::Arc<crate::store::Store>,
    snapshot: i64,
) -> Result<bool> {
    writeln!(out)?;
    if let Some(run) = store.latest_run("generate")?
        && run.status == crate::store::RunStatus::Completed
    {
        let counts = store.count_pairs_by_status(Some(run.id))?;
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(
            out,
            "Generation: run {} already done ({})",
            run.id,
            parts.join(", ")
        )?;
        return Ok(false);
    }
    let started = std::time::Instant::now();
    let summary = crate::cli_generate::run_generation(
        project,
        store,
        snapshot,
        Some("rules"),
        true,
        &crate::pipeline::generate::GenerateOptions::default(),
    )?;
    let t = summary.totals();
    writeln!(
        out,
        "Generation (rules backend): run {} made {} valid pairs ({} fixed by the debugger, {} duplicates, {} failed) in {:.1} s",
        summary.run_id,
        t.valid + t.fixed,
        t.fixed,
        t.duplicate,
        t.failed,
        started.elapsed().as_secs_f64()
    )?;
    write!(out, "{}", indent(&summary.table(), "  "))?;
    writeln!(
        out,
        "  review them with `lode review list` (or in the TUI), export with `lode export`"
    )?;
    Ok(true)
}

/// Coverage and error analysis of the demo run; gaps are filled right after a new run.
fn demo_analysis(
    out: &mut impl Write,
    project: &Project,
    store: &std::sync::Arc<crate::store::Store>,
    fill: bool,
) -> Result<()> {
    let Some(run) = store.latest_run("generate")? else {
        return Ok(());
    };
    let args = AnalyzeArgs {
        run: Some(run.id),
        fill,
        per_gap: 2,
        no_topics: false,
        factor: 1.5,
        out: None,
    };
    let a = crate::cli_coverage::run_analysis(project, store, run.id, Some("rules"), true, &args)?;
    let c = a.after_fill.as_ref().unwrap_or(&a.coverage);
    writeln!(out)?;
    writeln!(
        out,
        "Coverage: {} of the gold set's {} SQL concepts in the generated pairs ({} missing, {} under-represented); tables unused {}, joins unused {}; {} failed pairs",
        a.coverage.gold.concepts.len() - c.missing_concepts.len(),
        a.coverage.gold.concepts.len(),
        c.missing_concepts.len(),
        c.underrepresented_concepts.len(),
        c.unused_tables.len(),
        c.unused_joins.len(),
        a.errors.failed
    )?;
    if let Some(f) = &a.fill {
        writeln!(
            out,
            "  gap filling: {} gaps asked, {} now covered by new valid pairs",
            f.asked.len(),
            f.filled.len()
        )?;
    }
    writeln!(
        out,
        "  report {}",
        a.report_dir.join("coverage.md").display()
    )?;
    Ok(())
}

/// The tuning stage on the demo: the offline memory provider indexes the pairs (a job that
/// already succeeded is reused).
fn demo_tuning(
    out: &mut impl Write,
    project: &Project,
    store: &std::sync::Arc<crate::store::Store>,
) -> Result<Option<i64>> {
    writeln!(out)?;
    if let Some(j) = store
        .jobs()?
        .into_iter()
        .find(|j| j.provider == "memory" && j.status == "succeeded")
    {
        writeln!(out, "Tuning: job {} already done (memory model)", j.id)?;
        return Ok(Some(j.id));
    }
    match crate::cli_tune::run_tune(project, store, "memory", None, true, true) {
        Ok((job, status)) => {
            let model = crate::tune::job_model(store, job)?.unwrap_or_default();
            writeln!(
                out,
                "Tuning (memory provider, offline): job {job} {} → model {model}",
                status.as_str()
            )?;
            Ok(Some(job))
        }
        Err(e) => {
            writeln!(out, "Tuning skipped: {e}")?;
            Ok(None)
        }
    }
}

/// The evaluation stage on the demo: the tuned memory model (or, without one, the rules
/// backend's nearest-gold-pair baseline) answers the held-out eval questions, and the run is
/// judged, stored and reported.
fn demo_evaluation(
    out: &mut impl Write,
    project: &Project,
    store: &std::sync::Arc<crate::store::Store>,
    job: Option<i64>,
) -> Result<()> {
    use crate::pipeline::{eval::EvalOptions, inference, model_eval};
    let (client, label) = match job {
        Some(j) => (
            crate::pipeline::tuned_model_client(project, store, Some(j), None)?,
            format!("memory model of job {j}"),
        ),
        None => (
            crate::pipeline::llm_client(
                project,
                Some(std::sync::Arc::clone(store)),
                Some("rules"),
                true,
                None,
            )?,
            "rules baseline".to_string(),
        ),
    };
    let questions: Vec<String> = project.eval.iter().map(|p| p.question.clone()).collect();
    let rt = crate::pipeline::runtime()?;
    let predictions = rt.block_on(inference::predict(
        client,
        &project.schema,
        &project.glossary,
        &questions,
        std::sync::Arc::new(|_, _| {}),
    ));
    let options = EvalOptions {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Default::default()
    };
    let profile = crate::sql::compare::Profile::default();
    let result =
        model_eval::evaluate_model(project, store, &label, &predictions, &profile, &options)?;
    let dir = project
        .dir()
        .join("reports")
        .join(format!("eval-{}", result.eval_run_id));
    model_eval::write_reports(&dir, &result)?;
    writeln!(out)?;
    writeln!(
        out,
        "Evaluation ({label}, lode profile): {:.1}% execution accuracy on {} held-out eval questions; report {}",
        result.summary.accuracy() * 100.0,
        result.summary.total,
        dir.join("report.md").display()
    )?;
    Ok(())
}

/// The summary printed after the main job: inputs, schema and the gold set's shape.
fn write_project_summary(out: &mut impl Write, project: &Project) -> Result<()> {
    let dir = project.dir().display();
    writeln!(out, "lode project {dir}")?;
    writeln!(out)?;
    writeln!(out, "Schema ({} tables)", project.schema.tables.len())?;
    write!(out, "{}", indent(&project.schema.to_text(), "  "))?;
    writeln!(
        out,
        "Inputs: {} glossary entries, {} gold pairs, {} eval pairs{}",
        project.glossary.len(),
        project.gold.len(),
        project.eval.len(),
        if project.eval_is_gold {
            " (the gold set)"
        } else {
            ""
        }
    )?;
    writeln!(out)?;
    writeln!(out, "Gold set")?;
    let mut failures = 0;
    let mut concepts = std::collections::BTreeSet::new();
    let mut hardness = std::collections::BTreeMap::new();
    for (i, pair) in project.gold.iter().enumerate() {
        let outcome = match project.db.query(&pair.sql) {
            Ok(r) => format!("{}, {:.1} ms", plural(r.rows.len(), "row"), ms(r.elapsed)),
            Err(e) => {
                failures += 1;
                format!("FAILS: {e}")
            }
        };
        let level = match crate::sql::analyze::analyze(&pair.sql, Some(&project.schema)) {
            Ok(a) => {
                concepts.extend(a.concepts.keys().copied());
                *hardness.entry(a.hardness).or_insert(0) += 1;
                a.hardness.name().to_string()
            }
            Err(e) => format!("unparsed: {e}"),
        };
        writeln!(
            out,
            "  {:>2}. {}  [{outcome}; {level}]",
            i + 1,
            pair.question
        )?;
    }
    if failures > 0 {
        writeln!(out, "{failures} gold queries fail against the database")?;
    }
    let by_level: Vec<String> = hardness.iter().map(|(h, n)| format!("{h} {n}")).collect();
    writeln!(
        out,
        "Spider hardness: {}; {} of {} SQL concepts used",
        by_level.join(", "),
        concepts.len(),
        crate::sql::analyze::Concept::ALL.len()
    )?;
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{prefix}{l}\n")
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

const CONFIG_TEMPLATE: &str = include_str!("../config.example.yml");

fn cmd_init(args: &InitArgs) -> Result<i32> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let config_path = args.dir.join("config.yml");
    if config_path.exists() && !args.force {
        bail!(
            "{} already exists; edit it, or pass --force to overwrite it",
            config_path.display()
        );
    }
    let rel = |p: &Option<PathBuf>, default: &str| -> Result<String> {
        match p {
            None => Ok(default.to_string()),
            Some(p) => {
                let abs =
                    std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))?;
                if !abs.exists() {
                    bail!("{} does not exist", p.display());
                }
                Ok(abs.to_string_lossy().into_owned())
            }
        }
    };
    let mut text = CONFIG_TEMPLATE.to_string();
    for (key, value) in [
        (
            "path: data.sqlite",
            format!("path: {}", yaml_str(&rel(&args.db, "data.sqlite")?)),
        ),
        (
            "gold_test_set: gold.jsonl",
            format!(
                "gold_test_set: {}",
                yaml_str(&rel(&args.gold, "gold.jsonl")?)
            ),
        ),
        (
            "glossary: glossary.jsonl",
            format!(
                "glossary: {}",
                yaml_str(&rel(&args.glossary, "glossary.jsonl")?)
            ),
        ),
    ] {
        text = text.replacen(key, &value, 1);
    }
    if let Some(eval) = &args.eval {
        text = text.replacen(
            "# eval_set: eval.jsonl",
            &format!("eval_set: {}", yaml_str(&rel(&Some(eval.clone()), "")?)),
            1,
        );
    }
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!("wrote {}", config_path.display());
    // Check what we can now, so mistakes surface at init rather than mid-run.
    match Project::load(&config_path) {
        Ok(p) => {
            print_warnings(&p.warnings);
            println!(
                "project ok: {} tables, {} glossary entries, {} gold pairs, {} eval pairs",
                p.schema.tables.len(),
                p.glossary.len(),
                p.gold.len(),
                p.eval.len()
            );
            p.open_store()?;
            println!("workspace store: {}", p.store_path().display());
        }
        Err(e) => {
            println!("the project is not complete yet:\n{e}");
            println!(
                "edit {} and run `lode schema` to check it",
                config_path.display()
            );
        }
    }
    Ok(0)
}

/// A YAML scalar for a path: quoted when it holds anything YAML would read specially.
fn yaml_str(s: &str) -> String {
    if s.chars().all(|c| c.is_alphanumeric() || "/._-".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn open_db(
    cli: &Cli,
    db: Option<&Path>,
    limits: Option<ExecLimits>,
) -> Result<(Database, Option<Config>)> {
    let (path, config) = match db {
        Some(p) => (p.to_path_buf(), None),
        None => {
            let config = load_config(cli)?;
            let path = config.database_path()?.to_path_buf();
            (path, Some(config))
        }
    };
    let limits = limits.unwrap_or_else(|| {
        config
            .as_ref()
            .map_or_else(ExecLimits::default, |c| c.execution.limits())
    });
    Ok((Database::open(&path, limits)?, config))
}

fn cmd_schema(cli: &Cli, args: &SchemaArgs) -> Result<i32> {
    let (db, _) = open_db(cli, args.db.as_deref(), None)?;
    let schema = crate::project::introspect(&db)?;
    let text = match args.format {
        SchemaFormat::Text => schema.to_text(),
        SchemaFormat::Create => schema.to_create_sql() + "\n",
        SchemaFormat::Annotated => schema.to_annotated_sql() + "\n",
        SchemaFormat::Json => serde_json::to_string_pretty(&schema)? + "\n",
    };
    print!("{text}");
    Ok(0)
}

fn cmd_sql(cli: &Cli, args: &SqlArgs) -> Result<i32> {
    if args.analyze {
        return crate::cli_analyze::run(cli, args);
    }
    let Some(sql) = &args.sql else {
        bail!("give the statement to run: lode sql \"SELECT …\"");
    };
    let (base, config) = open_db(cli, args.db.as_deref(), None)?;
    let mut limits = base.limits();
    if let Some(t) = args.timeout {
        if !(t.is_finite() && t > 0.0) {
            bail!("--timeout must be a positive number of seconds");
        }
        limits.timeout = Duration::from_secs_f64(t);
    }
    if let Some(n) = args.max_rows {
        limits.max_rows = n.max(1);
    }
    let _ = config;
    match base.query_with(sql, limits, None) {
        Ok(result) => {
            let mut out = std::io::stdout().lock();
            match args.format {
                RowFormat::Table => {
                    write_table(&mut out, &result, std::io::stdout().is_terminal())?
                }
                RowFormat::Json => {
                    serde_json::to_writer(&mut out, &result)?;
                    writeln!(out)?;
                }
                RowFormat::Csv => write_csv(&mut out, &result)?,
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(match e {
                ExecError::Rejected { .. } => 3,
                ExecError::Timeout { .. } => 4,
                _ => 1,
            })
        }
    }
}

/// Prints rows as an aligned table, with the truncation and timing underneath.
pub fn write_table(out: &mut impl Write, r: &QueryResult, clip: bool) -> std::io::Result<()> {
    const MAX_WIDTH: usize = 60;
    let cell = |s: String| -> String {
        let s = s.replace(['\n', '\r', '\t'], " ");
        if clip && s.chars().count() > MAX_WIDTH {
            s.chars().take(MAX_WIDTH - 1).collect::<String>() + "…"
        } else {
            s
        }
    };
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| row.iter().map(|v| cell(v.display())).collect())
        .collect();
    let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&r.columns))?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    )?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    let mut note = format!(
        "({} row{}{}, {:.1} ms",
        r.rows.len(),
        if r.rows.len() == 1 { "" } else { "s" },
        if r.truncated {
            ", truncated at the row cap"
        } else {
            ""
        },
        ms(r.elapsed)
    );
    if r.truncated_cells > 0 {
        note.push_str(&format!(", {} long cells cut", r.truncated_cells));
    }
    note.push(')');
    writeln!(out, "{note}")
}

fn write_csv(out: &mut impl Write, r: &QueryResult) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(&r.columns)?;
    for row in &r.rows {
        w.write_record(row.iter().map(|v| match v {
            crate::sql::Value::Null => String::new(),
            other => other.display(),
        }))?;
    }
    w.flush()?;
    Ok(())
}
