//! `lode generate`: a generation run with a progress bar and the per-generator summary; with
//! `--json`, a stream of JSON lines (the event view's `started`, `progress` and `warning`
//! lines, then `done` with [`GenerateDoc`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::globals::Globals;
use super::output::EventView;
use lode_core::pipeline::generate::{GenerateError, GenerateOptions, GeneratorStats};
use lode_core::store::{RunKind, RunStatus, Store};
use lode_core::tasks::CancellationToken;
use lode_core::tasks::TaskError;
use lode_core::tasks::generate::{self, GenerateInput, GenerateOutcome};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Start a new run even if the last one did not finish (the default resumes it).
    #[arg(long, conflicts_with = "resume")]
    pub new: bool,
    /// Resume this run.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<i64>,
    /// Only these gold pairs (1-based positions, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub gold: Vec<usize>,
}

pub fn run(globals: &Globals, args: &GenerateArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, snapshot) = project.open_store()?;
    let store = Arc::new(store);
    if let Some(bad) = args.gold.iter().find(|&&g| g == 0) {
        return Err(super::exit::usage(
            format!(
                "--gold {bad}: the gold set has pairs 1 to {}",
                project.gold.len()
            ),
            "",
        ));
    }
    let new_run = args.new || (args.resume.is_none() && !resume_failed_run(&store, !globals.json)?);
    let input = GenerateInput {
        model: globals.model_request(),
        options: GenerateOptions {
            resume: args.resume,
            new_run,
            only_gold: args.gold.iter().map(|g| g - 1).collect(),
        },
        snapshot: Some(snapshot),
    };
    let started = Instant::now();
    let view = EventView::for_stream(globals.json, "generate");
    let rt = lode_core::tasks::runtime()?;
    let cancel = CancellationToken::new();
    let watch = cancel.clone();
    let outcome = rt.block_on(async {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                watch.cancel();
            }
        });
        generate::run(&project, &store, &input, &view.reporter(), cancel).await
    });
    view.finish();
    let outcome = match outcome {
        // The pairs made are kept: said with the way on (the text and the JSON error).
        Err(TaskError::Generate(GenerateError::RunFailed { run_id, reason })) => {
            return Err(anyhow::anyhow!(
                "generation run {run_id} failed: {reason}\n  the pairs it made are kept; fix \
                 the cause (`lode llm check` tests the profile) and run `lode generate` to \
                 resume run {run_id}, or `lode generate --new` to start over"
            ));
        }
        other => other?,
    };
    let elapsed = started.elapsed();
    if globals.json {
        super::json::emit_line("generate", "done", &GenerateDoc::of(&outcome, elapsed))?;
        return Ok(0);
    }
    let s = &outcome.summary;
    println!("{} in {:.1} s", outcome.headline(), elapsed.as_secs_f64());
    if s.skipped_existing > 0 {
        println!(
            "{} pairs were already stored by the interrupted run",
            s.skipped_existing
        );
    }
    print!("{}", s.table());
    println!("{}", s.diversity.line());
    let t = s.totals();
    if t.call_failures > 0 {
        println!(
            "{} LLM calls failed (their causes are stored with the run)",
            t.call_failures
        );
    }
    if let Some(calls) = outcome.calls.describe() {
        println!("{calls}");
    }
    println!("review them with `lode review list --run {}`", s.run_id);
    Ok(0)
}

/// The `done` line of `lode generate --json`: the run's summary.
#[derive(Debug, Serialize)]
pub struct GenerateDoc {
    pub run_id: i64,
    /// The run was resumed (it had been interrupted or had failed).
    pub resumed: bool,
    /// The model that wrote the pairs, as the summary names it.
    pub model: String,
    /// Pairs already stored by the interrupted run when it resumed.
    pub skipped_existing: usize,
    pub by_generator: BTreeMap<String, GeneratorDoc>,
    pub totals: GeneratorDoc,
    pub diversity: DiversityDoc,
    pub calls: CallsDoc,
    pub elapsed_ms: u64,
}

/// One generator's counts (the summary table's row).
#[derive(Debug, Serialize)]
pub struct GeneratorDoc {
    pub asked: usize,
    pub generated: usize,
    pub valid: usize,
    pub fixed: usize,
    pub suspect: usize,
    pub failed: usize,
    pub empty: usize,
    pub duplicate: usize,
    pub leakage: usize,
    pub call_failures: usize,
    pub why_none: Option<String>,
}

impl From<&GeneratorStats> for GeneratorDoc {
    fn from(g: &GeneratorStats) -> GeneratorDoc {
        GeneratorDoc {
            asked: g.asked,
            generated: g.generated,
            valid: g.valid,
            fixed: g.fixed,
            suspect: g.suspect,
            failed: g.failed,
            empty: g.empty,
            duplicate: g.duplicate,
            leakage: g.leakage,
            call_failures: g.call_failures,
            why_none: g.why_none.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DiversityDoc {
    pub pairs: usize,
    pub templates: usize,
    pub results: usize,
    pub per_gold: Vec<GoldDiversity>,
    /// Pairs from no gold pair (SQL-first, gap filling).
    pub unanchored: Spread,
}

#[derive(Debug, Serialize)]
pub struct GoldDiversity {
    /// The gold pair's position, from 1 (as `--gold` takes it).
    pub gold: i64,
    #[serde(flatten)]
    pub spread: Spread,
}

/// Kept pairs, distinct SQL templates and distinct results.
#[derive(Debug, Serialize)]
pub struct Spread {
    pub pairs: usize,
    pub templates: usize,
    pub results: usize,
}

impl Spread {
    fn of((pairs, templates, results): (usize, usize, usize)) -> Spread {
        Spread {
            pairs,
            templates,
            results,
        }
    }
}

/// The LLM calls the run made.
#[derive(Debug, Serialize)]
pub struct CallsDoc {
    pub calls: u64,
    pub cached: u64,
    pub failed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: f64,
}

impl GenerateDoc {
    pub fn of(outcome: &GenerateOutcome, elapsed: std::time::Duration) -> GenerateDoc {
        let s = &outcome.summary;
        let d = &s.diversity;
        let c = &outcome.calls.0;
        GenerateDoc {
            run_id: s.run_id,
            resumed: s.resumed,
            model: outcome.model.clone(),
            skipped_existing: s.skipped_existing,
            by_generator: s
                .by_generator
                .iter()
                .map(|(name, g)| (name.clone(), g.into()))
                .collect(),
            totals: (&s.totals()).into(),
            diversity: DiversityDoc {
                pairs: d.pairs,
                templates: d.templates,
                results: d.results,
                per_gold: d
                    .per_gold
                    .iter()
                    .map(|(position, spread)| GoldDiversity {
                        // The store numbers gold pairs from 0; `--gold` and people from 1.
                        gold: position + 1,
                        spread: Spread::of(*spread),
                    })
                    .collect(),
                unanchored: Spread::of(d.unanchored),
            },
            calls: CallsDoc {
                calls: c.calls,
                cached: c.cached,
                failed: c.failed,
                prompt_tokens: c.prompt_tokens,
                completion_tokens: c.completion_tokens,
                latency_ms: c.total_latency_ms,
            },
            elapsed_ms: elapsed.as_millis() as u64,
        }
    }
}

/// When the newest generation run failed, whether to resume it (a plain `lode generate`
/// does): asked at a terminal when `may_ask` (not with `--json`), said otherwise.
fn resume_failed_run(store: &Store, may_ask: bool) -> Result<bool> {
    let Some(last) = store.latest_run(RunKind::Generate)? else {
        return Ok(true);
    };
    if last.status != RunStatus::Failed {
        return Ok(true);
    }
    let reason = last.error.as_deref().unwrap_or("no reason was recorded");
    if !may_ask || !super::globals::terminal_attached() {
        eprintln!(
            "resuming generation run {} (it failed: {reason}); `lode generate --new` starts \
             over instead",
            last.id
        );
        return Ok(true);
    }
    eprintln!("generation run {} failed: {reason}", last.id);
    eprint!("resume it (the pairs it made are kept)? [Y/n] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(!matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "n" | "no"
    ))
}
