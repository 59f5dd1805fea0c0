//! `lode eval-files`: the evaluation engine over the reference evaluators' own files.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use crate::cli::EvalFilesArgs;
use crate::pipeline::eval::{Summary, evaluate_items};
use crate::pipeline::eval_files;
use crate::sql::compare::{PARITY_DEVIATIONS, Profile};

pub fn eval_files(args: &EvalFilesArgs) -> Result<i32> {
    if args.explain_profiles {
        print!("{PARITY_DEVIATIONS}");
        return Ok(0);
    }
    let profile = Profile::from_name(&args.profile, args.keep_distinct).map_err(|e| anyhow!(e))?;
    let (Some(gold), Some(pred), Some(db_dir)) = (&args.gold, &args.pred, &args.db_dir) else {
        return Err(anyhow!("--gold, --pred and --db-dir are required"));
    };
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(anyhow!("--timeout must be a positive number of seconds"));
    }
    let started = Instant::now();
    let files = eval_files::load(gold, pred, db_dir, Duration::from_secs_f64(args.timeout))?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = files.items.len();
    let show_progress = std::io::stderr().is_terminal();
    let results = evaluate_items(
        &files.items,
        &files.databases,
        &profile,
        threads,
        None,
        &|done| {
            if show_progress && (done % 25 == 0 || done == total) {
                eprint!("\revaluated {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }
        },
    );
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
    println!(
        "{total} pairs in {:.0} ms on {threads} threads",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(0)
}
