//! `lode eval-files`: the evaluation engine over the reference evaluators' own files.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use crate::cli::{Cli, EvalAction, EvalArgs, EvalFilesArgs, LlmAction, LlmArgs};
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
    let store = std::sync::Arc::new(store);
    let calls_before = store.llm_call_stats(None)?;
    let rt = crate::pipeline::runtime()?;
    let tuned = args.job.is_some()
        || args
            .model
            .as_deref()
            .is_some_and(|m| m.starts_with("memory:"));
    let client = if tuned {
        crate::pipeline::tuned_model_client(&project, &store, args.job, args.model.as_deref())?
    } else {
        crate::pipeline::llm_client(
            &project,
            Some(std::sync::Arc::clone(&store)),
            cli.profile.as_deref(),
            !cli.no_cache,
            None,
        )?
    };
    let (predictions, model) = match &args.pred {
        Some(pred_path) => {
            let predictions = model_eval::load_predictions(pred_path, project.eval.len())?;
            let model = args.model.clone().unwrap_or_else(|| {
                pred_path
                    .file_stem()
                    .map_or("predictions".into(), |s| s.to_string_lossy().into_owned())
            });
            (predictions, model)
        }
        None => {
            let questions: Vec<String> = project.eval.iter().map(|p| p.question.clone()).collect();
            let backend = client.backend();
            let model = args
                .model
                .clone()
                .unwrap_or_else(|| format!("{}:{}", backend.kind(), backend.model()));
            eprintln!(
                "asking {model} (profile {}) for {} questions…",
                client.options().profile,
                questions.len()
            );
            let show = std::io::stderr().is_terminal();
            let index = (args.few_shot > 0)
                .then(|| -> Result<crate::tune::memory::MemoryIndex> {
                    let t = &project.config.tune;
                    let data =
                        crate::tune::dataset::build(&store, None, t.include_valid, 0.0, t.seed)?;
                    Ok(crate::tune::memory::MemoryIndex::new(
                        data.all()
                            .map(|e| (e.question.clone(), e.sql.clone()))
                            .collect(),
                    ))
                })
                .transpose()?;
            if let Some(i) = &index {
                eprintln!(
                    "giving the model the {} closest of {} pairs as examples",
                    args.few_shot,
                    i.len()
                );
            }
            let predictions = rt.block_on(crate::pipeline::inference::predict_with(
                std::sync::Arc::clone(&client),
                &project.schema,
                &project.glossary,
                &questions,
                index.as_ref(),
                args.few_shot,
                std::sync::Arc::new(move |done, total| {
                    if show {
                        eprint!("\rinference {done}/{total}");
                        if done == total {
                            eprintln!();
                        }
                    }
                }),
            ));
            (predictions, model)
        }
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = EvalOptions {
        threads,
        ..Default::default()
    };
    let mut result =
        model_eval::evaluate_model(&project, &store, &model, &predictions, &profile, &options)?;
    if args.judge {
        let cases = model_eval::mismatches(&result);
        eprintln!("asking the LLM judge about {} mismatches…", cases.len());
        let opinions = rt.block_on(async {
            let mut out = Vec::new();
            for i in cases {
                let c = &result.cases[i];
                let (Some(g), Some(p)) = (&c.result.gold_preview, &c.result.pred_preview) else {
                    continue;
                };
                let req = crate::pipeline::inference::judge_request(
                    &c.question,
                    &c.gold_sql,
                    c.pred_sql.as_deref().unwrap_or(""),
                    &model_eval::preview_text(g),
                    &model_eval::preview_text(p),
                );
                out.push((i, crate::pipeline::inference::judge(&client, &req).await));
            }
            out
        });
        model_eval::apply_judge(&store, &mut result, opinions)?;
    }
    let dir = args.out.clone().unwrap_or_else(|| {
        project
            .dir()
            .join("reports")
            .join(format!("eval-{}", result.eval_run_id))
    });
    let written = model_eval::write_reports(&dir, &result)
        .with_context(|| format!("cannot write reports to {}", dir.display()))?;
    print!("{}", result.summary.table(&profile));
    let calls = store.llm_call_stats(None)?;
    let n = calls.calls - calls_before.calls;
    if n > 0 {
        println!(
            "LLM calls: {n} ({} from the cache, {} failed), {} prompt + {} completion tokens, {:.1} s of latency",
            calls.cached - calls_before.cached,
            calls.failed - calls_before.failed,
            calls.prompt_tokens - calls_before.prompt_tokens,
            calls.completion_tokens - calls_before.completion_tokens,
            (calls.total_latency_ms - calls_before.total_latency_ms) / 1000.0
        );
    }
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

/// `lode llm check`: what works with a profile, in plain words.
pub fn llm(cli: &Cli, args: &LlmArgs) -> Result<i32> {
    let LlmAction::Check { name } = &args.action;
    let project = crate::cli::load_project(cli)?;
    let name = name.as_deref().or(cli.profile.as_deref());
    let profile_name = project.config.profile_name(name).to_string();
    let client = crate::pipeline::llm_client(&project, None, name, false, None)?;
    let backend = std::sync::Arc::clone(client.backend());
    println!(
        "profile {profile_name}: {} backend, model {}",
        backend.kind(),
        backend.model()
    );
    let rt = crate::pipeline::runtime()?;
    let mut problems = 0;
    match rt.block_on(backend.list_models()) {
        Ok(models) if models.is_empty() => println!("  models: the server does not list them"),
        Ok(models) => {
            let listed = models.iter().any(|m| m == backend.model());
            println!(
                "  models: {} offered{}",
                models.len(),
                if listed {
                    ", including this profile's"
                } else {
                    "; this profile's model is NOT among them"
                }
            );
            if !listed {
                problems += 1;
                println!(
                    "    offered: {}",
                    models
                        .iter()
                        .take(10)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Err(e) => {
            problems += 1;
            println!("  models: cannot list them: {e}");
        }
    }
    let question = project
        .gold
        .first()
        .map_or("How many rows are there?".to_string(), |g| {
            g.question.clone()
        });
    let req =
        crate::pipeline::inference::question_request(&project.schema, &project.glossary, &question);
    let started = Instant::now();
    match rt.block_on(client.call(&req)) {
        Ok(resp) => {
            println!(
                "  structured request: ok in {:.0} ms ({})",
                started.elapsed().as_secs_f64() * 1000.0,
                backend.structured_mode().unwrap_or("unknown mode")
            );
            let sql = resp
                .json
                .as_ref()
                .and_then(|j| j["sql"].as_str())
                .unwrap_or(&resp.text);
            println!(
                "    asked: {question}\n    answer: {}",
                sql.lines().next().unwrap_or("")
            );
            if let Some(u) = resp.usage {
                println!(
                    "    tokens: {} in, {} out",
                    u.prompt_tokens, u.completion_tokens
                );
            }
        }
        Err(e) => {
            problems += 1;
            println!("  structured request: FAILED ({}): {e}", e.kind());
        }
    }
    if problems == 0 {
        println!("profile {profile_name} works");
        Ok(0)
    } else {
        println!("profile {profile_name}: {problems} problem(s) above");
        Ok(1)
    }
}
