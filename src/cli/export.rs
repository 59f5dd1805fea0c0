//! `lode export` and `lode import`: runs in the original's file shapes, and the original's
//! files brought into the store as a run (re-validated).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use super::globals::Globals;
use lode_core::pipeline::exchange::{self, StatusSelection};
use lode_core::store::PairFilter;
use lode_core::tune::rl;

/// The Python client of `lode reward`, written beside RL task files.
const REWARD_SHIM: &str = include_str!("../integrations/lode_reward.py");

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// lamini-nested (nested_results) or lamini (flattened {input, output}); training sets:
    /// messages, alpaca, sharegpt, prompt-completion, lamini-templated, openai-batch (the eval
    /// questions); rl-tasks (one RL task per accepted pair: the eval prompt and the gold a
    /// reward compares with, with lode_reward.py beside it); dpo (preference pairs from the
    /// SQL debugger's fixes, reviewers' edits and rejected pairs).
    #[arg(long, default_value = "lamini")]
    pub format: String,
    /// The shape of rl-tasks (trl, verl or openai; default trl) or dpo (openai or trl;
    /// default openai).
    #[arg(long)]
    pub flavour: Option<String>,
    /// The run (default: the newest generate run; for rl-tasks and dpo, every run).
    #[arg(long)]
    pub run: Option<i64>,
    /// valid (valid, fixed or accepted), accepted, or all (not for rl-tasks, made from
    /// accepted pairs, nor dpo).
    #[arg(long, default_value = "valid")]
    pub status: String,
    /// The file to write (default: a name with the format and the time, here).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A nested_results_*.jsonl or flattened *.jsonl file of the original.
    pub file: PathBuf,
}

/// A timestamp for default file names: `20261125_023000`.
fn file_stamp() -> String {
    let ts = lode_core::store::now_rfc3339()
        .replace([':', '-'], "")
        .replace('T', "_");
    ts[..15.min(ts.len())].to_string()
}

pub fn run(globals: &Globals, args: &ExportArgs) -> Result<i32> {
    let rl_format = matches!(args.format.as_str(), "rl-tasks" | "dpo");
    if args.flavour.is_some() && !rl_format {
        bail!(
            "--flavour applies to --format rl-tasks and dpo only, not `{}`",
            args.format
        );
    }
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    if let Some(r) = args.run {
        store.run(r)?;
    }
    match args.format.as_str() {
        "rl-tasks" => return export_rl_tasks(&project, &store, args),
        "dpo" => return export_preferences(&project, &store, args),
        _ => {}
    }
    let selection = StatusSelection::parse(&args.status).ok_or_else(|| {
        anyhow!(
            "--status must be valid, accepted or all, not `{}`",
            args.status
        )
    })?;
    let run = match args.run {
        Some(r) => r,
        None => lode_core::tasks::analyze::default_run(&store)?
            .ok_or_else(|| anyhow!("no run to export yet: run `lode generate` first"))?,
    };
    let ts = file_stamp();
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
            let t = lode_core::tune::dataset::openai_batch(&project, &model);
            (t, project.eval.len(), format!("batch_{ts}.jsonl"))
        }
        f if lode_core::tune::dataset::FORMATS.contains(&f) => {
            let pairs = store.pairs(&PairFilter {
                run_id: args.run.or(Some(run)),
                statuses: selection.statuses(),
                ..Default::default()
            })?;
            let examples: Vec<lode_core::tune::dataset::Example> = pairs
                .into_iter()
                .filter(|p| !p.sql.is_empty())
                .map(|p| lode_core::tune::dataset::Example {
                    pair_id: p.id,
                    question: p.question,
                    sql: p.sql,
                })
                .collect();
            let n = examples.len();
            (
                lode_core::tune::dataset::render(f, &project, &examples),
                n,
                format!("{f}_{ts}.jsonl"),
            )
        }
        other => bail!(
            "unknown export format `{other}`; use lamini-nested, lamini, messages, alpaca, sharegpt, prompt-completion, openai-batch, lamini-templated, rl-tasks or dpo"
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
        let info = lode_core::tune::dataset::llama_factory_entry("lode", &file_name, &args.format);
        std::fs::write(
            dir.join("dataset_info.json"),
            serde_json::to_string_pretty(&info)?,
        )?;
        std::fs::write(
            dir.join("axolotl.yml"),
            lode_core::tune::dataset::axolotl_stub(
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

/// `--format rl-tasks`: one RL task per accepted pair, and the reward client beside it.
fn export_rl_tasks(
    project: &lode_core::project::Project,
    store: &lode_core::store::Store,
    args: &ExportArgs,
) -> Result<i32> {
    let flavour = rl::TaskFlavour::parse(args.flavour.as_deref().unwrap_or("trl"))?;
    let set = rl::tasks(project, store, args.run)?;
    if set.tasks.is_empty() {
        let scope = args
            .run
            .map_or_else(String::new, |r| format!(" in run {r}"));
        eprintln!(
            "no accepted pairs{scope}: RL tasks are made from accepted pairs only; accept pairs \
             with `lode review accept ID…` (or every valid one with `lode review accept \
             --all-valid`), or in the TUI (`lode`)"
        );
        return Ok(1);
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| format!("rl_tasks_{}_{}.jsonl", flavour.as_str(), file_stamp()).into());
    write_file(&path, &rl::render_tasks(flavour, &set.tasks))?;
    let shim = path
        .parent()
        .unwrap_or(std::path::Path::new(""))
        .join("lode_reward.py");
    write_file(&shim, REWARD_SHIM)?;
    let mut notes = Vec::new();
    if set.repeats_skipped > 0 {
        notes.push(format!(
            "{} accepted pairs repeating an earlier question skipped",
            set.repeats_skipped
        ));
    }
    if set.executed > 0 {
        notes.push(format!(
            "{} gold queries run to fingerprint their result",
            set.executed
        ));
    }
    println!(
        "wrote {} ({} RL tasks, {} flavour){}",
        path.display(),
        set.tasks.len(),
        flavour.as_str(),
        if notes.is_empty() {
            String::new()
        } else {
            format!("; {}", notes.join(", "))
        }
    );
    for (id, e) in &set.gold_errors {
        eprintln!(
            "warning: the gold SQL of pair {id} does not run now ({e}); its task has no gold_fingerprint"
        );
    }
    println!(
        "wrote {} (the reward client: score replies with `lode reward serve` or `lode reward --stdin`)",
        shim.display()
    );
    if flavour == rl::TaskFlavour::Verl {
        println!(
            "verl reads parquet: python3 -c \"import pandas as pd; pd.read_json('{}', lines=True).to_parquet('{}')\"",
            path.display(),
            path.with_extension("parquet").display()
        );
    }
    Ok(0)
}

/// `--format dpo`: preference pairs from the debugger, reviewers' edits and rejected pairs.
fn export_preferences(
    project: &lode_core::project::Project,
    store: &lode_core::store::Store,
    args: &ExportArgs,
) -> Result<i32> {
    let flavour = rl::PreferenceFlavour::parse(args.flavour.as_deref().unwrap_or("openai"))?;
    let set = rl::preferences(project, store, args.run)?;
    if set.pairs.is_empty() {
        let scope = args
            .run
            .map_or_else(String::new, |r| format!(" in run {r}"));
        eprintln!(
            "no preference pairs{scope}: they come from (1) the SQL debugger's failed attempts \
             of pairs it then fixed (generate with an LLM profile and generate.debugger_attempts \
             above 0), (2) reviewers' edits of pairs then accepted (`lode review edit ID --sql \
             … --accept`), and (3) rejected pairs whose question an accepted pair asks with \
             another result (`lode review reject ID`)"
        );
        return Ok(1);
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| format!("dpo_{}_{}.jsonl", flavour.as_str(), file_stamp()).into());
    write_file(&path, &rl::render_preferences(flavour, project, &set.pairs))?;
    let mut skipped = Vec::new();
    if set.duplicates > 0 {
        skipped.push(format!("{} repeats", set.duplicates));
    }
    if set.same_result > 0 {
        skipped.push(format!(
            "{} rejected pairs returning the accepted result",
            set.same_result
        ));
    }
    println!(
        "wrote {} ({} preference pairs, {} flavour): {}{}",
        path.display(),
        set.pairs.len(),
        flavour.as_str(),
        rl::source_summary(&set),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped {}", skipped.join(", "))
        }
    );
    Ok(0)
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub fn run_import(globals: &Globals, args: &ImportArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let s = exchange::import(&project, &store, &args.file)?;
    println!(
        "imported {} pairs into run {} ({} valid, {} invalid after running them); review them with `lode review list --run {}`",
        s.pairs, s.run_id, s.valid, s.invalid, s.run_id
    );
    Ok(0)
}
