//! `lode eval`: a model (or a predictions file) on the project's eval set, stored and
//! reported; `lode eval list|diff`; and `lode eval-files`, the evaluation engine over the
//! reference evaluators' own files.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

use super::globals::Globals;
use super::output::EventView;
use lode_core::pipeline::eval::{EvalOptions, Summary, evaluate_items};
use lode_core::pipeline::stats::{ALPHA, Accuracy, PairedTest, format_p};
use lode_core::pipeline::{eval_files, model_eval};
use lode_core::sql::analyze::Hardness;
use lode_core::sql::compare::{PARITY_DEVIATIONS, PROFILE_NAMES, Profile};
use lode_core::store::EvalRun;
use lode_core::tasks::evaluate::{self, EvaluateInput, EvaluateOutcome};
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
        Some(EvalAction::List) => return list(globals, &store),
        Some(EvalAction::Diff { a, b }) => return diff(globals, &store, *a, *b),
        None => {}
    }
    let compare = compare_profile(&args.compare, args.keep_distinct)?;
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
    if globals.json {
        super::json::emit("eval", &EvalDoc::of(&outcome, &compare, args.neighbours))?;
        return Ok(0);
    }
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

/// `--compare NAME` / `--profile NAME`: a comparison profile, or a usage error.
fn compare_profile(name: &str, keep_distinct: bool) -> Result<Profile> {
    Profile::from_name(name, keep_distinct).map_err(|e| {
        super::exit::usage(
            e,
            "lode is the default; spider_ts, bird_ex and defog reproduce the reference \
             evaluators (see lode eval-files --explain-profiles)",
        )
    })
}

/// `lode eval list`: the stored runs, newest first.
fn list(globals: &Globals, store: &lode_core::store::Store) -> Result<i32> {
    let runs = store.eval_runs()?;
    if globals.json {
        let runs: Vec<RunRow> = runs.iter().map(RunRow::of).collect();
        super::json::emit("eval list", &RunList { runs })?;
        return Ok(0);
    }
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
            StoredScore::of(r.summary_json.as_deref())
        );
    }
    Ok(0)
}

/// `lode eval diff A B`: the questions whose verdict changed, and the paired test.
fn diff(globals: &Globals, store: &lode_core::store::Store, a: i64, b: i64) -> Result<i32> {
    let (run_a, run_b) = (store.eval_run(a)?, store.eval_run(b)?);
    let Some(test) = model_eval::paired_test(store, a, b)? else {
        return Err(super::exit::usage(
            format!(
                "runs {a} and {b} share no eval question: they were made on different eval \
                 sets, so they cannot be compared"
            ),
            "diff two runs of the same eval set (lode eval list shows them)",
        ));
    };
    let flips = model_eval::diff_runs(store, a, b)?;
    if globals.json {
        let doc = DiffDoc {
            a: RunRef::of(&run_a),
            b: RunRef::of(&run_b),
            now_right: flips.iter().filter(|f| f.after).count(),
            now_wrong: flips.iter().filter(|f| !f.after).count(),
            flips: &flips,
            paired_test: PairedDoc::of(&test),
        };
        super::json::emit("eval diff", &doc)?;
        return Ok(0);
    }
    print!("{}", model_eval::describe_flips(&flips));
    print!("{}", describe_paired(&test, &run_a, &run_b));
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

/// A stored run's accuracy, from the counts its summary records (runs stored before
/// intervals were reported have them too), or the bare rate of an older summary.
enum StoredScore {
    Counts(Accuracy),
    Rate(f64),
    None,
}

impl StoredScore {
    fn of(summary_json: Option<&str>) -> StoredScore {
        let Some(v) = summary_json.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        else {
            return StoredScore::None;
        };
        let count = |k: &str| v["summary"][k].as_u64().map(|n| n as usize);
        match (count("correct"), count("total")) {
            (Some(correct), Some(total)) => StoredScore::Counts(Accuracy::new(correct, total)),
            _ => v["accuracy"]
                .as_f64()
                .map_or(StoredScore::None, StoredScore::Rate),
        }
    }
}

/// The accuracy with its interval; `-` when there is none.
impl std::fmt::Display for StoredScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredScore::Counts(a) => write!(f, "{a}"),
            StoredScore::Rate(r) => write!(f, "{:.1}%", r * 100.0),
            StoredScore::None => f.write_str("-"),
        }
    }
}

// The JSON documents (src/cli/JSON.md, "eval", "eval list", "eval diff", "eval-files").

/// An accuracy as a ratio with its 95% Wilson interval and the counts.
#[derive(Debug, Serialize)]
struct Score {
    accuracy: f64,
    ci_low: f64,
    ci_high: f64,
    correct: usize,
    total: usize,
}

impl From<Accuracy> for Score {
    fn from(a: Accuracy) -> Score {
        let (ci_low, ci_high) = a.ci();
        Score {
            accuracy: a.rate(),
            ci_low,
            ci_high,
            correct: a.correct,
            total: a.total,
        }
    }
}

/// One hardness level of the table.
#[derive(Debug, Serialize)]
struct HardnessRow {
    hardness: String,
    count: usize,
    correct: usize,
    /// `null` when the level has no pair.
    accuracy: Option<f64>,
}

/// What `Summary::table` shows: the overall score, the hardness levels, the reasons.
#[derive(Debug, Serialize)]
struct SummaryDoc {
    #[serde(flatten)]
    score: Score,
    by_hardness: Vec<HardnessRow>,
    /// Wrong pairs by reason (`column_count`, `row_count`, `values`, `right_by_accident`…).
    reasons: BTreeMap<String, usize>,
    /// bird_ex: the mean soft F1.
    soft_f1: Option<f64>,
    /// defog: the "correct" (subset) count.
    subset_correct: Option<usize>,
}

impl SummaryDoc {
    fn of(summary: &Summary) -> SummaryDoc {
        let mut levels: Vec<&str> = Hardness::ALL.iter().map(|h| h.name()).collect();
        if summary.by_hardness.contains_key("unknown") {
            levels.push("unknown");
        }
        let by_hardness = levels
            .into_iter()
            .map(|level| {
                let (count, correct) = summary.by_hardness.get(level).copied().unwrap_or((0, 0));
                HardnessRow {
                    hardness: level.to_string(),
                    count,
                    correct,
                    accuracy: (count > 0).then(|| correct as f64 / count as f64),
                }
            })
            .collect();
        SummaryDoc {
            score: summary.score().into(),
            by_hardness,
            reasons: summary.reasons.clone(),
            soft_f1: summary.mean_score,
            subset_correct: summary.subset_correct,
        }
    }
}

/// `--neighbours K`: how many right answers failed on a neighbour database.
#[derive(Debug, Serialize)]
struct NeighboursDoc {
    k: usize,
    right_by_accident: usize,
}

impl NeighboursDoc {
    fn of(k: usize, summary: &Summary) -> Option<NeighboursDoc> {
        (k > 0).then(|| NeighboursDoc {
            k,
            right_by_accident: summary
                .reasons
                .get("right_by_accident")
                .copied()
                .unwrap_or(0),
        })
    }
}

/// `--samples K`: the first sample, the majority vote, pass@k and pass@1.
#[derive(Debug, Serialize)]
struct SamplesDoc {
    k: usize,
    single: Score,
    majority: Score,
    pass_at_k: Score,
    pass_at_1: f64,
}

/// `lode eval`'s document.
#[derive(Debug, Serialize)]
struct EvalDoc<'a> {
    eval_run_id: i64,
    model: &'a str,
    compare: &'a str,
    #[serde(flatten)]
    summary: SummaryDoc,
    samples: Option<SamplesDoc>,
    neighbours: Option<NeighboursDoc>,
    audit_findings: usize,
    leakage: usize,
    calls: Option<&'a lode_core::store::LlmCallStats>,
    report_dir: &'a Path,
    reports: &'a [PathBuf],
}

impl<'a> EvalDoc<'a> {
    fn of(outcome: &'a EvaluateOutcome, compare: &'a Profile, neighbours: usize) -> EvalDoc<'a> {
        let r = &outcome.result;
        EvalDoc {
            eval_run_id: r.eval_run_id,
            model: &outcome.model,
            compare: compare.name(),
            summary: SummaryDoc::of(&r.summary),
            samples: r.samples.as_ref().map(|s| SamplesDoc {
                k: s.k,
                single: s.single.into(),
                majority: s.majority.into(),
                pass_at_k: s.pass_at_k.into(),
                pass_at_1: s.pass_at_1,
            }),
            neighbours: NeighboursDoc::of(neighbours, &r.summary),
            audit_findings: r.audit.len(),
            leakage: r.leakage.len(),
            calls: (outcome.calls.0.calls > 0).then_some(&outcome.calls.0),
            report_dir: &outcome.report_dir,
            reports: &outcome.reports,
        }
    }
}

/// One run of `lode eval list`.
#[derive(Debug, Serialize)]
struct RunRow<'a> {
    id: i64,
    created_at: &'a str,
    finished_at: Option<&'a str>,
    model: &'a str,
    compare: &'a str,
    status: lode_core::store::RunStatus,
    eval_set_hash: Option<&'a str>,
    accuracy: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    correct: Option<usize>,
    total: Option<usize>,
}

impl<'a> RunRow<'a> {
    fn of(r: &'a EvalRun) -> RunRow<'a> {
        let score = StoredScore::of(r.summary_json.as_deref());
        let (accuracy, ci, counts) = match score {
            StoredScore::Counts(a) => (Some(a.rate()), Some(a.ci()), Some((a.correct, a.total))),
            StoredScore::Rate(rate) => (Some(rate), None, None),
            StoredScore::None => (None, None, None),
        };
        RunRow {
            id: r.id,
            created_at: &r.created_at,
            finished_at: r.finished_at.as_deref(),
            model: &r.model,
            compare: &r.profile,
            status: r.status,
            eval_set_hash: r.eval_set_hash.as_deref(),
            accuracy,
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
            correct: counts.map(|c| c.0),
            total: counts.map(|c| c.1),
        }
    }
}

#[derive(Debug, Serialize)]
struct RunList<'a> {
    runs: Vec<RunRow<'a>>,
}

/// A run `lode eval diff` compares.
#[derive(Debug, Serialize)]
struct RunRef<'a> {
    id: i64,
    model: &'a str,
}

impl<'a> RunRef<'a> {
    fn of(r: &'a EvalRun) -> RunRef<'a> {
        RunRef {
            id: r.id,
            model: &r.model,
        }
    }
}

/// The exact McNemar test of `lode eval diff`.
#[derive(Debug, Serialize)]
struct PairedDoc {
    shared: usize,
    b: usize,
    c: usize,
    p: f64,
    /// `b_better`, `b_worse` or `not_distinguishable` (at p < 0.05).
    verdict: &'static str,
    /// The verdict in words, as the text prints it.
    summary: String,
}

impl PairedDoc {
    fn of(t: &PairedTest) -> PairedDoc {
        let verdict = if t.p < ALPHA && t.c > t.b {
            "b_better"
        } else if t.p < ALPHA && t.b > t.c {
            "b_worse"
        } else {
            "not_distinguishable"
        };
        PairedDoc {
            shared: t.shared,
            b: t.b,
            c: t.c,
            p: t.p,
            verdict,
            summary: t.verdict(),
        }
    }
}

#[derive(Debug, Serialize)]
struct DiffDoc<'a> {
    a: RunRef<'a>,
    b: RunRef<'a>,
    now_right: usize,
    now_wrong: usize,
    flips: &'a [model_eval::Flip],
    paired_test: PairedDoc,
}

/// `lode eval-files`' document.
#[derive(Debug, Serialize)]
struct EvalFilesDoc<'a> {
    compare: &'a str,
    #[serde(flatten)]
    summary: SummaryDoc,
    neighbours: Option<NeighboursDoc>,
    r_ves: Option<RVesDoc>,
    threads: usize,
    elapsed_ms: f64,
    out: Option<&'a Path>,
}

/// `--ves N`: BIRD mini-dev's R-VES, on its 0-100 scale.
#[derive(Debug, Serialize)]
struct RVesDoc {
    timings: usize,
    score: f64,
}

/// `lode eval-files --explain-profiles`: PROFILES.md, whole and by section.
#[derive(Debug, Serialize)]
struct ExplainDoc<'a> {
    sections: Vec<ExplainSection<'a>>,
    markdown: &'a str,
}

#[derive(Debug, Serialize)]
struct ExplainSection<'a> {
    title: &'a str,
    /// The profile the section is about (`null` for the introduction and R-VES).
    profile: Option<&'a str>,
    text: &'a str,
}

impl<'a> ExplainDoc<'a> {
    fn of(markdown: &'a str) -> ExplainDoc<'a> {
        let mut sections = Vec::new();
        let mut rest = markdown;
        while !rest.is_empty() {
            // A section is a heading line and the text up to the next `#`/`##` heading.
            let (head, body) = rest.split_once('\n').unwrap_or((rest, ""));
            let end = body
                .match_indices("\n#")
                .map(|(i, _)| i + 1)
                .next()
                .unwrap_or(body.len());
            let title = head.trim_start_matches('#').trim();
            let profile = title
                .split_whitespace()
                .next()
                .and_then(|w| PROFILE_NAMES.iter().find(|p| **p == w).copied());
            sections.push(ExplainSection {
                title,
                profile,
                text: body[..end].trim(),
            });
            rest = &body[end..];
        }
        ExplainDoc { sections, markdown }
    }
}

pub fn run_files(globals: &Globals, args: &EvalFilesArgs) -> Result<i32> {
    if args.explain_profiles {
        if globals.json {
            super::json::emit("eval-files", &ExplainDoc::of(PARITY_DEVIATIONS))?;
        } else {
            print!("{PARITY_DEVIATIONS}");
        }
        return Ok(0);
    }
    let profile = compare_profile(&args.profile, args.keep_distinct)?;
    let (Some(gold), Some(pred)) = (&args.gold, &args.pred) else {
        return Err(super::exit::usage(
            "--gold, --pred and --db-dir (or --db-url) are required",
            "see lode eval-files --help",
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
        (None, None) => {
            return Err(super::exit::usage(
                "give --db-dir DIR or --db-url URL",
                "--db-dir holds <db_id>/<db_id>.sqlite; --db-url is a PostgreSQL server",
            ));
        }
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
            lode_core::pipeline::neighbours::supported(db)
                .map_err(|e| super::exit::usage(e, ""))?;
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
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !globals.json {
        print!("{}", summary.table(&profile));
        println!("execution accuracy: {}", summary.score());
        println!("{total} pairs in {elapsed_ms:.0} ms on {threads} threads");
        if args.neighbours > 0 {
            println!(
                "neighbour databases: {accidents} predictions right on the original were wrong on one of {} neighbours (counted wrong: right_by_accident)",
                args.neighbours
            );
        }
    }
    let r_ves = (args.ves > 0).then(|| {
        lode_core::pipeline::eval::r_ves(
            &files.items,
            &results,
            &files.databases,
            &profile,
            args.ves,
        )
    });
    if globals.json {
        let doc = EvalFilesDoc {
            compare: profile.name(),
            summary: SummaryDoc::of(&summary),
            neighbours: (args.neighbours > 0).then_some(NeighboursDoc {
                k: args.neighbours,
                right_by_accident: accidents,
            }),
            r_ves: r_ves.map(|score| RVesDoc {
                timings: args.ves,
                score,
            }),
            threads,
            elapsed_ms,
            out: args.out.as_deref(),
        };
        super::json::emit("eval-files", &doc)?;
    } else if let Some(score) = r_ves {
        println!(
            "R-VES (BIRD mini-dev reward, {} timings per correct pair): {score:.2}",
            args.ves
        );
    }
    Ok(0)
}
