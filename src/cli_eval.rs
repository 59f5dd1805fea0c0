//! `lode eval-files`: the evaluation engine over the reference evaluators' own files.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use crate::cli::{Cli, EvalAction, EvalArgs, EvalFilesArgs};
use crate::pipeline::eval::{EvalOptions, Summary, evaluate_items};
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

/// `lode eval`: a model (or a prediction file) on the project's eval set.
pub fn eval(cli: &Cli, args: &EvalArgs) -> Result<i32> {
    use crate::pipeline::model_eval;
    let project = crate::cli::load_project(cli)?;
    let (store, _) = project.open_store()?;
    match &args.action {
        Some(EvalAction::List) => {
            let runs = store.eval_runs()?;
            if runs.is_empty() {
                println!("no evaluation runs yet: `lode eval --pred FILE` makes one");
            }
            for r in runs {
                let acc = r
                    .summary_json
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                    .and_then(|v| v["accuracy"].as_f64());
                println!(
                    "{:>4}  {}  {:<24} {:<10} {:<10} {}",
                    r.id,
                    r.created_at,
                    r.model,
                    r.profile,
                    r.status,
                    acc.map_or("-".into(), |a| format!("{:.1}%", a * 100.0))
                );
            }
            return Ok(0);
        }
        Some(EvalAction::Diff { a, b }) => {
            store.eval_run(*a)?;
            store.eval_run(*b)?;
            let flips = model_eval::diff_runs(&store, *a, *b)?;
            print!("{}", model_eval::describe_flips(&flips));
            return Ok(0);
        }
        None => {}
    }
    if project.eval_is_gold {
        eprintln!(
            "warning: no paths.eval_set in the config, so the gold set is the eval set: the \
             score measures memorization, not generalization"
        );
    }
    let profile = Profile::from_name(&args.compare, args.keep_distinct).map_err(|e| anyhow!(e))?;
    let Some(pred_path) = &args.pred else {
        return Err(anyhow!(
            "nothing to evaluate: pass --pred FILE with one prediction per eval question \
             ({} questions)",
            project.eval.len()
        ));
    };
    let predictions = model_eval::load_predictions(pred_path, project.eval.len())?;
    let model = args.model.clone().unwrap_or_else(|| {
        pred_path
            .file_stem()
            .map_or("predictions".into(), |s| s.to_string_lossy().into_owned())
    });
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = EvalOptions {
        threads,
        ..Default::default()
    };
    let result =
        model_eval::evaluate_model(&project, &store, &model, &predictions, &profile, &options)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        project
            .dir()
            .join("reports")
            .join(format!("eval-{}", result.eval_run_id))
    });
    let written = model_eval::write_reports(&dir, &result)
        .with_context(|| format!("cannot write reports to {}", dir.display()))?;
    print!("{}", result.summary.table(&profile));
    for leak in &result.leakage {
        eprintln!(
            "warning: eval question #{} \"{}\" has the same {} as training pair {}",
            leak.position + 1,
            leak.question,
            leak.kind.replace('_', " "),
            leak.pair_id
        );
    }
    println!("evaluation run {} stored; reports:", result.eval_run_id);
    for p in written {
        println!("  {}", p.display());
    }
    Ok(0)
}
