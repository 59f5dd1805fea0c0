//! `lode export` and `lode import`: runs in the original's file shapes, and the original's
//! files brought into the store as a run (re-validated).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use super::globals::Globals;
use lode_core::pipeline::exchange::{self, StatusSelection};
use lode_core::store::PairFilter;

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

pub fn run(globals: &Globals, args: &ExportArgs) -> Result<i32> {
    let project = globals.load_project()?;
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
        None => lode_core::tasks::analyze::default_run(&store)?
            .ok_or_else(|| anyhow!("no run to export yet: run `lode generate` first"))?,
    };
    let ts = lode_core::store::now_rfc3339()
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
