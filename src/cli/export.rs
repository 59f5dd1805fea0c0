//! `lode export` and `lode import`: runs in the original's file shapes, and the original's
//! files brought into the store as a run (re-validated). With `--json`, one document each:
//! what was written ([`ExportDoc`]) or read ([`ImportDoc`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use serde::Serialize;

use super::exit::usage;
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

/// `lode export --json`: what was written.
#[derive(Debug, Serialize)]
pub struct ExportDoc {
    pub format: String,
    /// The shape of rl-tasks and dpo files (`null` for the other formats).
    pub flavour: Option<&'static str>,
    /// The run exported; `null` for every run (rl-tasks and dpo without `--run`).
    pub run: Option<i64>,
    /// The pairs selected (`valid`, `accepted` or `all`); `null` where the format decides
    /// (rl-tasks: accepted pairs; dpo; openai-batch: the eval questions).
    pub status: Option<String>,
    /// Records written to the data file, each one `unit`.
    pub count: usize,
    /// `pair`, `gold_question` (lamini-nested: one record per gold question),
    /// `eval_question` (openai-batch), `rl_task` or `preference_pair`.
    pub unit: &'static str,
    /// Every file written: the data file first (`role` `data`), then what goes beside it.
    pub files: Vec<WrittenFile>,
    /// What was left out, and why.
    pub skipped: Vec<Skipped>,
    /// dpo: the preference pairs per source (`debugger`, `review_edits`,
    /// `rejected_vs_accepted`); `null` for the other formats.
    pub by_source: Option<BTreeMap<&'static str, usize>>,
    /// rl-tasks: gold queries run to fingerprint their result (no stored fingerprint);
    /// `null` for the other formats.
    pub gold_queries_run: Option<usize>,
    /// rl-tasks: pairs whose gold SQL does not run now; their task has no
    /// `gold_fingerprint`.
    pub gold_errors: Vec<GoldError>,
}

#[derive(Debug, Serialize)]
pub struct WrittenFile {
    pub path: PathBuf,
    /// `data`, `dataset_info` (LLaMA-Factory), `axolotl` (a config stub) or `reward_client`
    /// (lode_reward.py).
    pub role: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    /// `no_sql` (pairs without SQL), `repeated_question` (an accepted pair asking an earlier
    /// one's question), `duplicate` (a repeated preference pair), `same_result` (a rejected
    /// pair returning the accepted pair's result).
    pub reason: &'static str,
    pub count: usize,
}

#[derive(Debug, Serialize)]
pub struct GoldError {
    pub pair_id: i64,
    pub error: String,
}

impl ExportDoc {
    fn new(args: &ExportArgs, unit: &'static str, count: usize, data: &Path) -> ExportDoc {
        ExportDoc {
            format: args.format.clone(),
            flavour: None,
            run: args.run,
            status: Some(args.status.clone()),
            count,
            unit,
            files: vec![WrittenFile {
                path: data.to_path_buf(),
                role: "data",
            }],
            skipped: Vec::new(),
            by_source: None,
            gold_queries_run: None,
            gold_errors: Vec::new(),
        }
    }

    fn skip(&mut self, reason: &'static str, count: usize) {
        if count > 0 {
            self.skipped.push(Skipped { reason, count });
        }
    }

    fn beside(&mut self, path: PathBuf, role: &'static str) {
        self.files.push(WrittenFile { path, role });
    }
}

/// The formats `--format` takes.
fn known_format(f: &str) -> bool {
    matches!(f, "lamini-nested" | "rl-tasks" | "dpo")
        || lode_core::tune::dataset::FORMATS.contains(&f)
}

pub fn run(globals: &Globals, args: &ExportArgs) -> Result<i32> {
    if !known_format(&args.format) {
        return Err(usage(
            format!("unknown export format `{}`", args.format),
            "use lamini-nested, lamini, messages, alpaca, sharegpt, prompt-completion, \
             openai-batch, lamini-templated, rl-tasks or dpo",
        ));
    }
    let rl_format = matches!(args.format.as_str(), "rl-tasks" | "dpo");
    if args.flavour.is_some() && !rl_format {
        return Err(usage(
            format!(
                "--flavour applies to --format rl-tasks and dpo only, not `{}`",
                args.format
            ),
            "",
        ));
    }
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    if let Some(r) = args.run {
        store.run(r)?;
    }
    match args.format.as_str() {
        "rl-tasks" => return export_rl_tasks(globals, &project, &store, args),
        "dpo" => return export_preferences(globals, &project, &store, args),
        _ => {}
    }
    let selection = StatusSelection::parse(&args.status).ok_or_else(|| {
        usage(
            format!(
                "--status must be valid, accepted or all, not `{}`",
                args.status
            ),
            "",
        )
    })?;
    let run = match args.run {
        Some(r) => r,
        None => lode_core::tasks::analyze::default_run(&store)?
            .ok_or_else(|| anyhow!("no run to export yet: run `lode generate` first"))?,
    };
    let ts = file_stamp();
    let (text, n, default_name, unit, no_sql) = match args.format.as_str() {
        "lamini-nested" => {
            let (t, n) = exchange::export_nested(&store, run, selection)?;
            (
                t,
                n,
                format!("nested_results_{ts}.jsonl"),
                "gold_question",
                0,
            )
        }
        "lamini" => {
            let (t, n) = exchange::export_flat(&store, Some(run), selection)?;
            (t, n, format!("flattened_{ts}.jsonl"), "pair", 0)
        }
        "openai-batch" => {
            let model = project.config.tune.openai.model.clone();
            let t = lode_core::tune::dataset::openai_batch(&project, &model);
            (
                t,
                project.eval.len(),
                format!("batch_{ts}.jsonl"),
                "eval_question",
                0,
            )
        }
        f => {
            let pairs = store.pairs(&PairFilter {
                run_id: args.run.or(Some(run)),
                statuses: selection.statuses(),
                ..Default::default()
            })?;
            let selected = pairs.len();
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
                "pair",
                selected - n,
            )
        }
    };
    let path = args.out.clone().unwrap_or_else(|| default_name.into());
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let mut doc = ExportDoc::new(args, unit, n, &path);
    doc.run = Some(run);
    if args.format == "openai-batch" {
        doc.status = None;
    }
    doc.skip("no_sql", no_sql);
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
        doc.beside(dir.join("dataset_info.json"), "dataset_info");
        doc.beside(dir.join("axolotl.yml"), "axolotl");
    }
    if globals.json {
        super::json::emit("export", &doc)?;
        return Ok(0);
    }
    if doc.files.len() > 1 {
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

/// Nothing to export: said on stderr with exit 1, or with `--json` the error document.
fn nothing(globals: &Globals, message: String) -> Result<i32> {
    if globals.json {
        return Err(anyhow!(message));
    }
    eprintln!("{message}");
    Ok(1)
}

/// `--format rl-tasks`: one RL task per accepted pair, and the reward client beside it.
fn export_rl_tasks(
    globals: &Globals,
    project: &lode_core::project::Project,
    store: &lode_core::store::Store,
    args: &ExportArgs,
) -> Result<i32> {
    let flavour = rl::TaskFlavour::parse(args.flavour.as_deref().unwrap_or("trl"))
        .map_err(|e| usage(e.to_string(), ""))?;
    let set = rl::tasks(project, store, args.run)?;
    if set.tasks.is_empty() {
        let scope = args
            .run
            .map_or_else(String::new, |r| format!(" in run {r}"));
        return nothing(
            globals,
            format!(
                "no accepted pairs{scope}: RL tasks are made from accepted pairs only; accept \
                 pairs with `lode review accept ID…` (or every valid one with `lode review \
                 accept --all-valid`), or in the TUI (`lode`)"
            ),
        );
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
    let mut doc = ExportDoc::new(args, "rl_task", set.tasks.len(), &path);
    doc.flavour = Some(flavour.as_str());
    doc.status = None;
    doc.beside(shim.clone(), "reward_client");
    doc.skip("repeated_question", set.repeats_skipped);
    doc.gold_queries_run = Some(set.executed);
    doc.gold_errors = set
        .gold_errors
        .iter()
        .map(|(id, e)| GoldError {
            pair_id: *id,
            error: e.clone(),
        })
        .collect();
    let warn = || {
        for (id, e) in &set.gold_errors {
            eprintln!(
                "warning: the gold SQL of pair {id} does not run now ({e}); its task has no gold_fingerprint"
            );
        }
    };
    if globals.json {
        warn();
        super::json::emit("export", &doc)?;
        return Ok(0);
    }
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
    warn();
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
    globals: &Globals,
    project: &lode_core::project::Project,
    store: &lode_core::store::Store,
    args: &ExportArgs,
) -> Result<i32> {
    let flavour = rl::PreferenceFlavour::parse(args.flavour.as_deref().unwrap_or("openai"))
        .map_err(|e| usage(e.to_string(), ""))?;
    let set = rl::preferences(project, store, args.run)?;
    if set.pairs.is_empty() {
        let scope = args
            .run
            .map_or_else(String::new, |r| format!(" in run {r}"));
        return nothing(
            globals,
            format!(
                "no preference pairs{scope}: they come from (1) the SQL debugger's failed \
                 attempts of pairs it then fixed (generate with an LLM profile and \
                 generate.debugger_attempts above 0), (2) reviewers' edits of pairs then \
                 accepted (`lode review edit ID --sql … --accept`), and (3) rejected pairs \
                 whose question an accepted pair asks with another result (`lode review \
                 reject ID`)"
            ),
        );
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| format!("dpo_{}_{}.jsonl", flavour.as_str(), file_stamp()).into());
    write_file(&path, &rl::render_preferences(flavour, project, &set.pairs))?;
    let mut doc = ExportDoc::new(args, "preference_pair", set.pairs.len(), &path);
    doc.flavour = Some(flavour.as_str());
    doc.status = None;
    doc.skip("duplicate", set.duplicates);
    doc.skip("same_result", set.same_result);
    doc.by_source = Some(
        rl::PreferenceSource::ALL
            .iter()
            .map(|s| {
                let key = match s {
                    rl::PreferenceSource::Debugger => "debugger",
                    rl::PreferenceSource::ReviewEdit => "review_edits",
                    rl::PreferenceSource::RejectedVsAccepted => "rejected_vs_accepted",
                };
                (key, set.by_source.get(s).copied().unwrap_or(0))
            })
            .collect(),
    );
    if globals.json {
        super::json::emit("export", &doc)?;
        return Ok(0);
    }
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

/// `lode import --json`: what was read and stored.
#[derive(Debug, Serialize)]
pub struct ImportDoc {
    pub file: PathBuf,
    /// `lamini-nested`, `lamini` (flattened `{input, output}` lines), `mixed` (both), or
    /// `null` for a file with no records.
    pub format: Option<&'static str>,
    /// The new run the pairs are in.
    pub run_id: i64,
    /// Pairs stored, and how many of them ran (valid) or not (invalid).
    pub pairs: usize,
    pub valid: usize,
    pub invalid: usize,
    /// Per generator (from the nested file's keys; `import` for flattened lines).
    pub by_generator: BTreeMap<String, exchange::ImportCounts>,
    pub skipped: Vec<Skipped>,
}

pub fn run_import(globals: &Globals, args: &ImportArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    // A mistake in the file is an input error at its line (exit 2), not a failure.
    let s = exchange::import(&project, &store, &args.file).map_err(|e| match e {
        exchange::ImportError::Input(i) => anyhow::Error::new(i),
        exchange::ImportError::Store(s) => anyhow::Error::new(s),
    })?;
    if globals.json {
        let format = match (s.nested_records > 0, s.flat_records > 0) {
            (true, true) => Some("mixed"),
            (true, false) => Some("lamini-nested"),
            (false, true) => Some("lamini"),
            (false, false) => None,
        };
        let mut skipped = Vec::new();
        if s.no_question > 0 {
            skipped.push(Skipped {
                reason: "no_question",
                count: s.no_question,
            });
        }
        super::json::emit(
            "import",
            &ImportDoc {
                file: args.file.clone(),
                format,
                run_id: s.run_id,
                pairs: s.pairs,
                valid: s.valid,
                invalid: s.invalid,
                by_generator: s.by_generator.clone(),
                skipped,
            },
        )?;
        return Ok(0);
    }
    println!(
        "imported {} pairs into run {} ({} valid, {} invalid after running them); review them with `lode review list --run {}`",
        s.pairs, s.run_id, s.valid, s.invalid, s.run_id
    );
    Ok(0)
}
