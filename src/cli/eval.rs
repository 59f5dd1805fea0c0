//! `lode eval`: a model (or a predictions file) on the project's eval set, stored and
//! reported; `lode eval list|diff`; and `lode eval-files`, the evaluation engine over the
//! reference evaluators' own files.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::json;

use super::globals::Globals;
use super::output::EventView;
use lode_core::pipeline::eval::{EvalOptions, Summary, evaluate_items};
use lode_core::pipeline::stats::{Accuracy, PairedTest, format_p};
use lode_core::pipeline::{eval_files, model_eval};
use lode_core::sql::compare::{PARITY_DEVIATIONS, Profile};
use lode_core::store::EvalRun;
use lode_core::tasks::evaluate::{self, EvaluateInput};
use lode_core::tasks::model::ModelRequest;

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
    #[arg(long, value_name = "K", default_value_t = 0, value_parser = super::globals::parse_small_count)]
    pub few_shot: usize,
    /// A name for the model evaluated (shown in reports and `lode eval list`).
    #[arg(long)]
    pub model: Option<String>,
    /// Comparison profile: lode, spider_ts, bird_ex, defog or spider2.
    #[arg(long, default_value = "lode")]
    pub compare: String,
    /// spider_ts: keep DISTINCT.
    #[arg(long)]
    pub keep_distinct: bool,
    /// Where to write the reports (default: reports/eval-<run> in the project).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Judge every correct prediction again on K neighbour databases (rows left out, values
    /// shuffled; built once beside the store); one that fails there counts as wrong,
    /// `right_by_accident`.
    #[arg(long, value_name = "K", default_value_t = 0, value_parser = super::globals::parse_small_count)]
    pub neighbours: usize,
    /// Worker threads (default: execution.threads, where 0 means every core).
    #[arg(long, value_parser = super::globals::parse_threads)]
    pub threads: Option<usize>,
    /// Ask the model K times per question (later samples warmer, each with its own seed) and
    /// report the first sample's accuracy, the majority vote's and pass@K.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = parse_samples)]
    pub samples: usize,
}

/// `--samples K`: 1 to 20; every sample is a call per question.
fn parse_samples(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(k) if (1..=20).contains(&k) => Ok(k),
        _ => Err(format!("must be a whole number from 1 to 20, not `{s}`")),
    }
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
    #[arg(long, required_unless_present_any = ["explain_profiles", "db_url"], conflicts_with = "db_url")]
    pub db_dir: Option<PathBuf>,
    /// Judge on a PostgreSQL server instead (postgres://user@host:port/db; the password from
    /// PGPASSWORD): every pair on that database, or with {db_id} in the URL one database
    /// (postgres://host/{db_id}) or schema (…?options=-c%20search_path%3D{db_id}) per db_id.
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
    /// Comparison profile: lode, spider_ts, bird_ex, defog or spider2.
    #[arg(long, alias = "compare", default_value = "lode")]
    pub profile: String,
    /// spider_ts: keep DISTINCT (test-suite's --keep_distinct).
    #[arg(long)]
    pub keep_distinct: bool,
    /// Write one JSON line per pair: index, db_id, verdict, reason, hardness, timing.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Wall-clock limit per query, in seconds.
    #[arg(long, default_value = "10", value_parser = super::globals::parse_seconds)]
    pub timeout: Duration,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = super::globals::parse_threads)]
    pub threads: Option<usize>,
    /// Print where each profile departs from correct semantics, and exit.
    #[arg(long)]
    pub explain_profiles: bool,
    /// Also judge every correct prediction on K neighbour databases (rows left out, values
    /// shuffled; built once into the system's temporary folder); one that fails there counts
    /// as wrong, `right_by_accident`.
    #[arg(long, value_name = "K", default_value_t = 0, value_parser = super::globals::parse_small_count)]
    pub neighbours: usize,
    /// Also report BIRD mini-dev's R-VES (reward-based efficiency): each correct pair's gold
    /// and prediction are timed N times in turn, sequentially (0: off).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = super::globals::parse_small_count)]
    pub ves: usize,
}

/// `lode eval`: with no flags, the newest tuned model (else the `--profile`/`llm.default`
/// profile) answers; `--job`, `--model memory:<dataset>` and `--pred FILE` choose otherwise.
pub fn run(globals: &Globals, args: &EvalArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    match &args.action {
        Some(EvalAction::List) => {
            let runs = store.eval_runs()?;
            if runs.is_empty() {
                println!("no evaluation runs yet: `lode eval --pred FILE` makes one");
            }
            for r in runs {
                println!(
                    "{:>4}  {}  {:<24} {:<10} {:<10} {}",
                    r.id,
                    r.created_at,
                    r.model,
                    r.profile,
                    r.status,
                    stored_score(r.summary_json.as_deref())
                );
            }
            return Ok(0);
        }
        Some(EvalAction::Diff { a, b }) => {
            let (run_a, run_b) = (store.eval_run(*a)?, store.eval_run(*b)?);
            let Some(test) = model_eval::paired_test(&store, *a, *b)? else {
                return Err(anyhow!(
                    "runs {a} and {b} share no eval question: they were made on different \
                     eval sets, so they cannot be compared; diff two runs of the same eval set"
                ));
            };
            let flips = model_eval::diff_runs(&store, *a, *b)?;
            print!("{}", model_eval::describe_flips(&flips));
            print!("{}", describe_paired(&test, &run_a, &run_b));
            return Ok(0);
        }
        None => {}
    }
    let compare = Profile::from_name(&args.compare, args.keep_distinct).map_err(|e| anyhow!(e))?;
    let store = Arc::new(store);
    let memory = args.model.clone().filter(|m| m.starts_with("memory:"));
    let input = EvaluateInput {
        model: ModelRequest {
            job: args.job,
            model: memory.clone(),
            ..globals.model_request()
        },
        predictions: args.pred.clone(),
        name: args.model.clone().filter(|_| memory.is_none()),
        compare: compare.clone(),
        threads: args.threads,
        few_shot: args.few_shot,
        judge: args.judge,
        out: args.out.clone(),
        neighbours: args.neighbours,
        samples: args.samples,
    };
    let view = EventView::new();
    let rt = lode_core::tasks::runtime()?;
    let outcome = rt.block_on(evaluate::run(&project, &store, &input, &view.reporter()));
    view.finish();
    let outcome = outcome?;
    println!("model: {}", outcome.model);
    print!("{}", outcome.result.summary.table(&compare));
    println!("execution accuracy: {}", outcome.result.summary.score());
    if let Some(samples) = &outcome.result.samples {
        print!("{}", samples.describe());
    }
    if !outcome.result.audit.is_empty() {
        println!(
            "gold audit: {} (see report)",
            super::output::plural(outcome.result.audit.len(), "finding")
        );
    }
    if let Some(calls) = outcome.calls.describe() {
        println!("{calls}");
    }
    println!(
        "evaluation run {} stored; reports:",
        outcome.result.eval_run_id
    );
    for p in &outcome.reports {
        println!("  {}", p.display());
    }
    Ok(0)
}

/// The paired test of `lode eval diff`, naming the runs A and B stand for.
fn describe_paired(test: &PairedTest, a: &EvalRun, b: &EvalRun) -> String {
    format!(
        "\npaired test on the {} questions both runs answered (A = run {} {}, B = run {} {}):\n  \
         b = {} (A right, B wrong), c = {} (A wrong, B right), exact McNemar {}\n  {}\n",
        test.shared,
        a.id,
        a.model,
        b.id,
        b.model,
        test.b,
        test.c,
        format_p(test.p),
        test.verdict()
    )
}

/// A stored run's accuracy with its interval, from the counts its summary records (runs
/// stored before intervals were reported have them too); `-` when there is none.
fn stored_score(summary_json: Option<&str>) -> String {
    let Some(v) = summary_json.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    else {
        return "-".into();
    };
    let count = |k: &str| v["summary"][k].as_u64().map(|n| n as usize);
    match (count("correct"), count("total")) {
        (Some(correct), Some(total)) => Accuracy::new(correct, total).to_string(),
        _ => v["accuracy"]
            .as_f64()
            .map_or("-".into(), |a| format!("{:.1}%", a * 100.0)),
    }
}

pub fn run_files(args: &EvalFilesArgs) -> Result<i32> {
    if args.explain_profiles {
        print!("{PARITY_DEVIATIONS}");
        return Ok(0);
    }
    let profile = Profile::from_name(&args.profile, args.keep_distinct).map_err(|e| anyhow!(e))?;
    let (Some(gold), Some(pred)) = (&args.gold, &args.pred) else {
        return Err(anyhow!(
            "--gold, --pred and --db-dir (or --db-url) are required"
        ));
    };
    let started = Instant::now();
    let files = match (&args.db_url, &args.db_dir) {
        (Some(url), _) => {
            // One role for every db_id: one warning.
            let mut warned = false;
            eval_files::load_url(gold, pred, url, args.timeout, &mut |db| {
                if !warned && db.can_write() {
                    warned = true;
                    super::sql::warn_if_writable(db);
                }
            })?
        }
        (None, Some(db_dir)) => eval_files::load(gold, pred, db_dir, args.timeout)?,
        (None, None) => return Err(anyhow!("give --db-dir DIR or --db-url URL")),
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = files.items.len();
    let show_progress = std::io::stderr().is_terminal();
    let results = evaluate_items(
        &files.items,
        &files.databases,
        &profile,
        &EvalOptions {
            threads,
            ..Default::default()
        },
        &|done| {
            if show_progress && (done % 25 == 0 || done == total) {
                eprint!("\revaluated {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }
        },
    );
    let mut results = results;
    let mut accidents = 0;
    if args.neighbours > 0 {
        for db in files.databases.values() {
            lode_core::pipeline::neighbours::supported(db).map_err(|e| anyhow!(e))?;
        }
        let cache = std::env::temp_dir().join("lode-neighbours");
        for (db_id, db) in &files.databases {
            let dir = lode_core::pipeline::neighbours::folder(&cache, db.path());
            let variants = lode_core::pipeline::neighbours::neighbours(
                db.path(),
                &dir,
                args.neighbours,
                db.limits(),
            )?;
            accidents += lode_core::pipeline::neighbours::recheck(
                &files.items,
                &mut results,
                db_id,
                &variants,
                &profile,
                &EvalOptions {
                    threads,
                    ..Default::default()
                },
            );
        }
    }
    let summary = Summary::of(&results);
    if let Some(out) = &args.out {
        let file = std::fs::File::create(out)
            .with_context(|| format!("cannot write {}", out.display()))?;
        let mut w = std::io::BufWriter::new(file);
        for r in &results {
            let line = json!({
                "index": r.index,
                "db_id": r.db_id,
                "verdict": r.verdict.correct,
                "reason": r.verdict.reason.as_ref().map(|x| x.kind()),
                "detail": r.verdict.reason.as_ref().map(|x| x.describe()),
                "score": r.verdict.score,
                "subset_correct": r.verdict.subset_correct,
                "hardness": r.hardness.map(|h| h.name()),
                "gold_ms": r.gold_ms,
                "pred_ms": r.pred_ms,
            });
            writeln!(w, "{line}")?;
        }
        w.flush()?;
    }
    print!("{}", summary.table(&profile));
    println!("execution accuracy: {}", summary.score());
    println!(
        "{total} pairs in {:.0} ms on {threads} threads",
        started.elapsed().as_secs_f64() * 1000.0
    );
    if args.neighbours > 0 {
        println!(
            "neighbour databases: {accidents} predictions right on the original were wrong on one of {} neighbours (counted wrong: right_by_accident)",
            args.neighbours
        );
    }
    if args.ves > 0 {
        let score = lode_core::pipeline::eval::r_ves(
            &files.items,
            &results,
            &files.databases,
            &profile,
            args.ves,
        );
        println!(
            "R-VES (BIRD mini-dev reward, {} timings per correct pair): {score:.2}",
            args.ves
        );
    }
    Ok(0)
}
