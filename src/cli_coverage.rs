//! `lode analyze`: coverage tables, failed-pair analysis, reports, and `--fill`.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use crate::cli::{AnalyzeArgs, Cli};
use crate::pipeline::coverage::{self, Coverage, ErrorAnalysis, FillReport, TopicCoverage};
use crate::project::Project;
use crate::store::Store;

/// The whole analysis of a run; shared by `lode analyze` and `lode demo`.
pub struct AnalysisOutcome {
    pub run_id: i64,
    pub coverage: Coverage,
    pub topics: Option<TopicCoverage>,
    pub errors: ErrorAnalysis,
    pub fill: Option<FillReport>,
    pub after_fill: Option<Coverage>,
    pub report_dir: std::path::PathBuf,
}

pub fn run_analysis(
    project: &Project,
    store: &Arc<Store>,
    run_id: i64,
    profile: Option<&str>,
    use_cache: bool,
    args: &AnalyzeArgs,
) -> Result<AnalysisOutcome> {
    let client = crate::pipeline::llm_client(
        project,
        Some(Arc::clone(store)),
        profile,
        use_cache,
        Some(run_id),
    )?;
    let rt = crate::pipeline::runtime()?;
    let pairs = coverage::run_pairs(store, Some(run_id))?;
    let cov = coverage::coverage(project, &pairs, args.factor);
    let topics = if args.no_topics {
        None
    } else {
        Some(rt.block_on(coverage::topic_coverage(
            &client,
            project,
            &pairs,
            args.factor,
        )))
    };
    let mut errors = coverage::error_analysis(store, &pairs, &project.schema)?;
    if errors.failed > 0 {
        let req = coverage::error_analysis_request(&errors);
        errors.original["llm_analysis"] = match rt.block_on(client.call(&req)) {
            Ok(r) => json!(
                r.json
                    .as_ref()
                    .and_then(|j| j["analysis"].as_str())
                    .unwrap_or(&r.text)
            ),
            Err(e) => json!(format!("(no root-cause write-up: {e})")),
        };
    }
    let (fill, after_fill) = if args.fill {
        let report = rt.block_on(coverage::fill_gaps(
            project,
            Arc::clone(store),
            Arc::clone(&client),
            run_id,
            &cov,
            topics.as_ref(),
            args.per_gap,
        ))?;
        let pairs = coverage::run_pairs(store, Some(run_id))?;
        (
            Some(report),
            Some(coverage::coverage(project, &pairs, args.factor)),
        )
    } else {
        (None, None)
    };
    let dir = args.out.clone().unwrap_or_else(|| {
        project
            .dir()
            .join("reports")
            .join(format!("analysis-{run_id}"))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let md = coverage::markdown(
        after_fill.as_ref().unwrap_or(&cov),
        topics.as_ref(),
        &errors,
        fill.as_ref(),
    );
    std::fs::write(dir.join("coverage.md"), md)?;
    let report = json!({
        "run_id": run_id,
        "coverage": cov,
        "topics": topics,
        "errors": {"failed": errors.failed, "by_category": errors.by_category, "by_generator": errors.by_generator, "by_concept": errors.by_concept},
        "fill": fill,
        "coverage_after_fill": after_fill,
    });
    std::fs::write(
        dir.join("coverage.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    if errors.failed > 0 {
        std::fs::write(
            dir.join("sql_error_analysis.json"),
            serde_json::to_string_pretty(&errors.original)?,
        )?;
    }
    store.save_analysis(Some(run_id), "coverage", &report.to_string())?;
    Ok(AnalysisOutcome {
        run_id,
        coverage: cov,
        topics,
        errors,
        fill,
        after_fill,
        report_dir: dir,
    })
}

pub fn analyze(cli: &Cli, args: &AnalyzeArgs) -> Result<i32> {
    let project = crate::cli::load_project(cli)?;
    let (store, _) = project.open_store()?;
    let store = Arc::new(store);
    let run_id = match args.run {
        Some(r) => {
            store.run(r)?;
            r
        }
        None => store
            .runs()?
            .into_iter()
            .find(|r| r.kind == "generate" || r.kind == "import")
            .map(|r| r.id)
            .ok_or_else(|| anyhow!("nothing to analyze yet: run `lode generate` first"))?,
    };
    let out = run_analysis(
        &project,
        &store,
        run_id,
        cli.profile.as_deref(),
        !cli.no_cache,
        args,
    )?;
    print_outcome(&out);
    Ok(0)
}

pub fn print_outcome(out: &AnalysisOutcome) {
    let c = &out.coverage;
    println!(
        "run {}: {} gold pairs, {} generated (valid, fixed or accepted), {} accepted",
        out.run_id, c.gold.pairs, c.generated.pairs, c.accepted.pairs
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
