//! `lode analyze`: coverage tables, failed-pair analysis, reports, and `--fill`. `--json`:
//! the whole analysis as one document (progress stays on stderr).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::globals::Globals;
use super::output::EventView;
use lode_core::pipeline::coverage::{Coverage, FillReport, TopicCoverage};
use lode_core::tasks::analyze::{self, AnalysisOutcome, AnalyzeInput};

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// The run (default: the newest generate run).
    #[arg(long)]
    pub run: Option<i64>,
    /// Fill the gaps found: new pairs for missing concepts, tables, joins and topics.
    #[arg(long)]
    pub fill: bool,
    /// Pairs asked for each gap when filling.
    #[arg(long, default_value_t = 2, value_parser = super::globals::parse_small_count)]
    pub per_gap: usize,
    /// Skip the LLM topic analysis (deterministic coverage only).
    #[arg(long)]
    pub no_topics: bool,
    /// A concept is under-represented when its gold share exceeds its generated share by
    /// this factor.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,
    /// Where to write the reports (default: reports/analysis-<run>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(globals: &Globals, args: &AnalyzeArgs) -> Result<i32> {
    if !(args.factor.is_finite() && args.factor >= 1.0) {
        return Err(super::exit::usage(
            format!(
                "--factor must be a number of at least 1, not {}",
                args.factor
            ),
            "a concept is under-represented when its gold share is --factor times its \
             generated share (1.5 by default)",
        ));
    }
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let store = Arc::new(store);
    let input = AnalyzeInput {
        model: globals.model_request(),
        run: args.run,
        fill: args.fill,
        per_gap: args.per_gap,
        topics: !args.no_topics,
        factor: args.factor,
        out: args.out.clone(),
    };
    let view = EventView::new();
    let rt = lode_core::tasks::runtime()?;
    let outcome = rt.block_on(analyze::run(&project, &store, &input, &view.reporter()));
    view.finish();
    let outcome = outcome?;
    if globals.json {
        super::json::emit("analyze", &AnalyzeDocument::of(&outcome))?;
    } else {
        print_outcome(&outcome);
    }
    Ok(0)
}

/// `lode analyze --json`.
#[derive(Serialize)]
struct AnalyzeDocument<'a> {
    run_id: i64,
    /// The model that named topics, wrote the root-cause analysis and filled gaps.
    model: &'a str,
    /// Coverage of the run before gap filling.
    coverage: &'a Coverage,
    /// Topic coverage (`null` with `--no-topics`).
    topics: Option<&'a TopicCoverage>,
    failed_pairs: FailedPairs<'a>,
    /// What `--fill` asked and got (`null` without it).
    fill: Option<&'a FillReport>,
    /// Coverage after gap filling (`null` without `--fill`).
    after_fill: Option<&'a Coverage>,
    report_dir: &'a Path,
}

/// The failed pairs grouped three ways (the full write-up is in the report folder).
#[derive(Serialize)]
struct FailedPairs<'a> {
    count: usize,
    by_category: &'a BTreeMap<String, usize>,
    by_generator: &'a BTreeMap<String, usize>,
    by_concept: &'a BTreeMap<String, usize>,
}

impl<'a> AnalyzeDocument<'a> {
    fn of(out: &'a AnalysisOutcome) -> AnalyzeDocument<'a> {
        AnalyzeDocument {
            run_id: out.run_id,
            model: &out.model,
            coverage: &out.coverage,
            topics: out.topics.as_ref(),
            failed_pairs: FailedPairs {
                count: out.errors.failed,
                by_category: &out.errors.by_category,
                by_generator: &out.errors.by_generator,
                by_concept: &out.errors.by_concept,
            },
            fill: out.fill.as_ref(),
            after_fill: out.after_fill.as_ref(),
            report_dir: &out.report_dir,
        }
    }
}

fn print_outcome(out: &AnalysisOutcome) {
    let c = &out.coverage;
    println!(
        "run {} ({}): {} gold pairs, {} generated (valid, fixed or accepted), {} accepted",
        out.run_id, out.model, c.gold.pairs, c.generated.pairs, c.accepted.pairs
    );
    println!(
        "{:<26} {:>6} {:>10} {:>9}",
        "concept", "gold", "generated", "accepted"
    );
    let keys: std::collections::BTreeSet<&String> = c
        .gold
        .concepts
        .keys()
        .chain(c.generated.concepts.keys())
        .collect();
    for k in keys {
        let mark = if c.missing_concepts.contains(k) {
            "  missing"
        } else if c.underrepresented_concepts.iter().any(|u| &u.name == k) {
            "  under-represented"
        } else {
            ""
        };
        println!(
            "{:<26} {:>6} {:>10} {:>9}{mark}",
            k,
            c.gold.concepts.get(k).copied().unwrap_or(0),
            c.generated.concepts.get(k).copied().unwrap_or(0),
            c.accepted.concepts.get(k).copied().unwrap_or(0)
        );
    }
    println!("hardness, generated: {:?}", c.generated.hardness);
    println!(
        "tables never used: {}",
        if c.unused_tables.is_empty() {
            "none".into()
        } else {
            c.unused_tables.join(", ")
        }
    );
    println!(
        "joins never used: {}",
        if c.unused_joins.is_empty() {
            "none".into()
        } else {
            c.unused_joins.join(", ")
        }
    );
    println!("columns never used: {}", c.unused_columns.len());
    if let Some(t) = &out.topics {
        println!(
            "topics: {} in gold, {} in generated; missing: {}",
            t.gold.len(),
            t.generated.len(),
            if t.missing.is_empty() {
                "none".into()
            } else {
                t.missing.join(", ")
            }
        );
    }
    println!(
        "failed pairs: {} {:?}",
        out.errors.failed, out.errors.by_category
    );
    if let (Some(f), Some(after)) = (&out.fill, &out.after_fill) {
        println!(
            "gap filling: {} gaps asked, {} now have valid pairs; missing concepts {} → {}, unused tables {} → {}, unused joins {} → {}",
            f.asked.len(),
            f.filled.len(),
            c.missing_concepts.len(),
            after.missing_concepts.len(),
            c.unused_tables.len(),
            after.unused_tables.len(),
            c.unused_joins.len(),
            after.unused_joins.len()
        );
    }
    println!("reports in {}", out.report_dir.display());
}
