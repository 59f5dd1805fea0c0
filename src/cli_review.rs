//! `lode review`, `lode export`, `lode import`: the review verbs the TUI offers, for scripts
//! and CI (each writes the same history the TUI writes), and files in the original's shapes.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};

use crate::cli::{Cli, ExportArgs, ImportArgs, ReviewAction, ReviewArgs};
use crate::pipeline::exchange::{self, StatusSelection};
use crate::pipeline::validate::validate;
use crate::store::{PairFilter, PairStatus, ReviewAction as Action, Store};

fn clip(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n - 1).collect::<String>())
    } else {
        one_line
    }
}

fn latest_generate_run(store: &Store) -> Result<Option<i64>> {
    Ok(store
        .runs()?
        .into_iter()
        .find(|r| r.kind == "generate" || r.kind == "import")
        .map(|r| r.id))
}

pub fn review(cli: &Cli, args: &ReviewArgs) -> Result<i32> {
    let project = crate::cli::load_project(cli)?;
    let (store, _) = project.open_store()?;
    let mut out = std::io::stdout().lock();
    match &args.action {
        ReviewAction::List { status, run, limit } => {
            let statuses = match status {
                Some(s) => vec![s.parse::<PairStatus>().map_err(|_| {
                    anyhow!(
                        "unknown status `{s}`; use one of {}",
                        PairStatus::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?],
                None => Vec::new(),
            };
            let run = match run {
                Some(r) => Some(*r),
                None => latest_generate_run(&store)?,
            };
            let pairs = store.pairs(&PairFilter {
                run_id: run,
                statuses,
                limit: Some(*limit),
                ..Default::default()
            })?;
            writeln!(
                out,
                "{:>6}  {:<10} {:<12} {:<50} sql",
                "id", "status", "generator", "question"
            )?;
            for p in &pairs {
                writeln!(
                    out,
                    "{:>6}  {:<10} {:<12} {:<50} {}",
                    p.id,
                    p.status.as_str(),
                    clip(&p.generator, 12),
                    clip(&p.question, 50),
                    clip(&p.sql, 60)
                )?;
            }
            let counts = store.count_pairs_by_status(run)?;
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                out,
                "run {}: {}",
                run.map_or("all".into(), |r| r.to_string()),
                parts.join(", ")
            )?;
        }
        ReviewAction::Show { id } => {
            let p = store.pair(*id)?;
            writeln!(
                out,
                "pair {} ({}, {}, run {})",
                p.id, p.status, p.generator, p.run_id
            )?;
            writeln!(out, "question: {}", p.question)?;
            writeln!(out, "sql:      {}", p.sql)?;
            for v in store.validations(p.id)? {
                writeln!(
                    out,
                    "  attempt {}: {}{}",
                    v.attempt,
                    if v.ok {
                        "ok".to_string()
                    } else {
                        format!("failed ({})", v.error_kind.unwrap_or_default())
                    },
                    v.error.map(|e| format!(": {e}")).unwrap_or_default()
                )?;
            }
            for r in store.review_history(p.id)? {
                writeln!(
                    out,
                    "  {} {} {} → {}{}",
                    r.created_at,
                    r.action,
                    r.prev_status,
                    r.new_status,
                    if r.undone { " (undone)" } else { "" }
                )?;
            }
        }
        ReviewAction::Accept {
            ids,
            all_valid,
            run,
            reason,
        } => {
            let mut targets = ids.clone();
            if *all_valid {
                let run = match run {
                    Some(r) => Some(*r),
                    None => latest_generate_run(&store)?,
                };
                targets.extend(
                    store
                        .pairs(&PairFilter {
                            run_id: run,
                            statuses: vec![PairStatus::Valid, PairStatus::Fixed],
                            ..Default::default()
                        })?
                        .into_iter()
                        .map(|p| p.id),
                );
            }
            if targets.is_empty() {
                bail!("give pair ids to accept, or --all-valid");
            }
            for id in &targets {
                store.review(*id, Action::Accept, None, None, None, reason.as_deref())?;
            }
            writeln!(out, "accepted {} pairs", targets.len())?;
        }
        ReviewAction::Reject { ids, reason } => {
            if ids.is_empty() {
                bail!("give the ids of the pairs to reject");
            }
            for id in ids {
                store.review(*id, Action::Reject, None, None, None, reason.as_deref())?;
            }
            writeln!(out, "rejected {} pairs", ids.len())?;
        }
        ReviewAction::Edit { id, sql, question } => {
            if sql.is_none() && question.is_none() {
                bail!("give --sql and/or --question");
            }
            let current = store.pair(*id)?;
            let new_sql = sql.clone().unwrap_or(current.sql.clone());
            let v = validate(
                &project.db,
                &project.schema,
                &new_sql,
                &project.config.generate.validators,
            );
            if !v.ok {
                eprintln!(
                    "not saved: the SQL does not validate ({}): {}",
                    v.error_kind.unwrap_or_default(),
                    v.error.unwrap_or_default()
                );
                return Ok(1);
            }
            store.review(
                *id,
                Action::Edit,
                question.as_deref(),
                sql.as_deref(),
                Some(PairStatus::Valid),
                None,
            )?;
            writeln!(
                out,
                "pair {id} saved ({} rows); accept it with `lode review accept {id}`",
                v.row_count.unwrap_or(0)
            )?;
        }
        ReviewAction::Undo { id } => match store.undo_last_review(*id)? {
            Some(r) => writeln!(
                out,
                "pair {id} is back to {} ({})",
                r.new_status,
                r.note.unwrap_or_default()
            )?,
            None => writeln!(out, "pair {id} has no decision to undo")?,
        },
    }
    Ok(0)
}

pub fn export(cli: &Cli, args: &ExportArgs) -> Result<i32> {
    let project = crate::cli::load_project(cli)?;
    let (store, _) = project.open_store()?;
    let selection = StatusSelection::parse(&args.status).ok_or_else(|| {
        anyhow!(
            "--status must be valid, accepted or all, not `{}`",
            args.status
        )
    })?;
    let run = match args.run {
        Some(r) => {
            store.run(r)?;
            r
        }
        None => latest_generate_run(&store)?
            .ok_or_else(|| anyhow!("no run to export yet: run `lode generate` first"))?,
    };
    let ts = crate::store::now_rfc3339()
        .replace([':', '-'], "")
        .replace('T', "_");
    let ts = &ts[..15.min(ts.len())];
    let (text, n, default_name) = match args.format.as_str() {
        "lamini-nested" => {
            let (t, n) = exchange::export_nested(&store, run, selection)?;
            (t, n, format!("nested_results_{ts}.jsonl"))
        }
        "lamini" => {
            let (t, n) = exchange::export_flat(&store, Some(run), selection)?;
            (t, n, format!("flattened_{ts}.jsonl"))
        }
        "openai-batch" => {
            let model = project.config.tune.openai.model.clone();
            let t = crate::tune::dataset::openai_batch(&project, &model);
            (t, project.eval.len(), format!("batch_{ts}.jsonl"))
        }
        f if crate::tune::dataset::FORMATS.contains(&f) => {
            let pairs = store.pairs(&PairFilter {
                run_id: args.run.or(Some(run)),
                statuses: selection.statuses(),
                ..Default::default()
            })?;
            let examples: Vec<crate::tune::dataset::Example> = pairs
                .into_iter()
                .filter(|p| !p.sql.is_empty())
                .map(|p| crate::tune::dataset::Example {
                    pair_id: p.id,
                    question: p.question,
                    sql: p.sql,
                })
                .collect();
            let n = examples.len();
            (
                crate::tune::dataset::render(f, &project, &examples),
                n,
                format!("{f}_{ts}.jsonl"),
            )
        }
        other => bail!(
            "unknown export format `{other}`; use lamini-nested, lamini, messages, alpaca, sharegpt, prompt-completion, openai-batch or lamini-templated"
        ),
    };
    let path = args.out.clone().unwrap_or_else(|| default_name.into());
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if args.format == "sharegpt" || args.format == "alpaca" {
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let info = crate::tune::dataset::llama_factory_entry("lode", &file_name, &args.format);
        std::fs::write(
            dir.join("dataset_info.json"),
            serde_json::to_string_pretty(&info)?,
        )?;
        std::fs::write(
            dir.join("axolotl.yml"),
            crate::tune::dataset::axolotl_stub(
                &file_name,
                &args.format,
                &project.config.model.memory_tuning,
            ),
        )?;
        println!("wrote dataset_info.json (LLaMA-Factory) and axolotl.yml beside it");
    }
    println!(
        "wrote {} ({n} {}) from run {run}",
        path.display(),
        if args.format == "lamini" {
            "pairs"
        } else {
            "gold questions"
        }
    );
    Ok(0)
}

pub fn import(cli: &Cli, args: &ImportArgs) -> Result<i32> {
    let project = crate::cli::load_project(cli)?;
    let (store, _) = project.open_store()?;
    let s = exchange::import(&project, &store, &args.file)?;
    println!(
        "imported {} pairs into run {} ({} valid, {} invalid after running them); review them with `lode review list --run {}`",
        s.pairs, s.run_id, s.valid, s.invalid, s.run_id
    );
    Ok(0)
}
