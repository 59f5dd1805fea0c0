//! `lode demo`: write the demo project and run every stage on it offline (through the same
//! tasks as the other commands), then open the TUI on a terminal or print the summary.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use super::globals::terminal_attached;
use super::output::{EventView, indent, ms, plural, print_warnings};
use lode_core::project::{Project, demo};
use lode_core::tasks::demo::{DemoGeneration, DemoTuning};
use lode_core::tasks::model::ModelRequest;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to write the demo project.
    #[arg(default_value = "lode-demo")]
    pub dir: PathBuf,
    /// Regenerate the project files even if the directory already holds a project.
    #[arg(long)]
    pub force: bool,
    /// Only write the project; run no stage.
    #[arg(long)]
    pub no_run: bool,
    /// Print the summary and exit instead of opening the TUI (it opens only on a terminal).
    #[arg(long)]
    pub no_tui: bool,
    /// Run the demo on PostgreSQL: load the bakery into a new schema of this database
    /// (postgres://user@host:port/db; the password from PGPASSWORD), point the project at it
    /// and write its glossary, gold and eval sets in PostgreSQL's dialect.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// The schema the bakery is loaded into (replaced with --force only when lode made it).
    #[arg(long, default_value = "lode_demo", requires = "postgres")]
    pub pg_schema: String,
}

/// The line of the demo's config.yml that points it at `bakery.sqlite`.
const SQLITE_DATABASE: &str = "  path: bakery.sqlite";

/// Loads the demo's bakery into a schema of the PostgreSQL database at `url` and points the
/// project's config at it (the SQLite file stays beside it). Says whether it did; a project
/// that points at that schema already is left as it is.
fn to_postgres(args: &DemoArgs, url: &str, config_path: &std::path::Path) -> Result<bool> {
    if lode_core::project::url_has_password(url) {
        anyhow::bail!(
            "--postgres: the URL holds a password; give it without one and put the password in \
             PGPASSWORD (config.yml never holds it)"
        );
    }
    if !args
        .pg_schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || args.pg_schema.is_empty()
    {
        anyhow::bail!("--pg-schema: use lower-case letters, digits and _ only");
    }
    let text = std::fs::read_to_string(config_path)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let target = format!("{url}{sep}options=-c%20search_path%3D{}", args.pg_schema);
    if text.contains(&target) {
        // This demo project was loaded into that schema already.
        return Ok(false);
    }
    let sqlite = args.dir.join("bakery.sqlite");
    let started = std::time::Instant::now();
    let loaded = lode_core::sql::pg::load_sqlite(url, None, &sqlite, &args.pg_schema, args.force)?;
    let rows: u64 = loaded.tables.iter().map(|(_, n)| n).sum();
    eprintln!(
        "loaded the bakery into schema {} of {} ({} tables, {rows} rows, {:.1} s)",
        args.pg_schema,
        lode_core::sql::pg::redacted(url),
        loaded.tables.len(),
        started.elapsed().as_secs_f64()
    );
    let replaced = text.replacen(
        SQLITE_DATABASE,
        &format!("  url: '{target}'   # the bakery in PostgreSQL (bakery.sqlite is the same data)"),
        1,
    );
    if replaced == text {
        anyhow::bail!(
            "{} has no `path: bakery.sqlite` line to point at PostgreSQL; regenerate it with --force",
            config_path.display()
        );
    }
    std::fs::write(config_path, replaced)?;
    Ok(true)
}

/// Rewrites the glossary, gold set and eval set of an existing demo project in the dialect of
/// the database it points at, when they are this version's edition for the other one (a
/// SQLite project pointed at a server; or a project written for PostgreSQL whose loading
/// failed, run again on SQLite). Inputs that are neither edition (edited, or from another
/// version) are left as they are, with a warning when `warn`.
fn align_inputs(dir: &std::path::Path, dialect: demo::DemoDialect, warn: bool) -> Result<()> {
    let name = match dialect {
        demo::DemoDialect::Sqlite => "SQLite",
        demo::DemoDialect::Postgres => "PostgreSQL",
    };
    match demo::inputs_edition(dir) {
        Some(edition) if edition == dialect => {}
        Some(_) => {
            demo::write_inputs(dir, dialect)?;
            eprintln!(
                "rewrote glossary.jsonl, gold.jsonl and eval.jsonl in {} in {name}'s dialect",
                dir.display()
            );
        }
        None if warn => eprintln!(
            "warning: glossary.jsonl, gold.jsonl or eval.jsonl in {} is not the demo's own \
             (edited?), so it was left as it is; SQL not written for {name} may fail there \
             (pass --force to regenerate the project)",
            dir.display()
        ),
        None => {}
    }
    Ok(())
}

pub fn run(args: &DemoArgs, model: &ModelRequest) -> Result<i32> {
    let config_path = args.dir.join("config.yml");
    let started = std::time::Instant::now();
    let existing = config_path.exists() && !args.force;
    if existing {
        eprintln!(
            "using the demo project already in {} (pass --force to regenerate it)",
            args.dir.display()
        );
    } else {
        let opts = demo::DemoOptions {
            force: args.force,
            dialect: if args.postgres.is_some() {
                demo::DemoDialect::Postgres
            } else {
                demo::DemoDialect::Sqlite
            },
            ..demo::DemoOptions::default()
        };
        let summary = demo::write_demo(&args.dir, &opts)?;
        let rows: Vec<String> = summary
            .tables
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        eprintln!(
            "wrote the demo project to {} in {:.0} ms ({})",
            args.dir.display(),
            started.elapsed().as_secs_f64() * 1000.0,
            rows.join(", ")
        );
    }
    if let Some(url) = &args.postgres {
        let pointed_now = to_postgres(args, url, &config_path)?;
        if existing {
            align_inputs(&args.dir, demo::DemoDialect::Postgres, pointed_now)?;
        }
    } else if existing && std::fs::read_to_string(&config_path)?.contains(SQLITE_DATABASE) {
        align_inputs(&args.dir, demo::DemoDialect::Sqlite, false)?;
    }
    if args.no_run {
        return Ok(0);
    }
    let project = Project::load(&config_path)?;
    print_warnings(&project.warnings);
    let (store, snapshot) = project.open_store()?;
    let store = Arc::new(store);
    let mut out = std::io::stdout().lock();
    write_project_summary(&mut out, &project)?;
    writeln!(
        out,
        "Workspace store: {} (input snapshot {snapshot})",
        project.store_path().display()
    )?;
    let view = EventView::new();
    let rt = lode_core::tasks::runtime()?;
    let outcome = rt.block_on(lode_core::tasks::demo::run(
        &project,
        &store,
        snapshot,
        &view.reporter(),
    ));
    view.finish();
    let outcome = outcome?;
    writeln!(out)?;
    match &outcome.generation {
        DemoGeneration::AlreadyDone(run, counts) => {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                out,
                "Generation: run {run} already done ({})",
                parts.join(", ")
            )?;
        }
        DemoGeneration::Ran(g) => {
            writeln!(out, "Generation: {}", g.headline())?;
            write!(out, "{}", indent(&g.summary.table(), "  "))?;
            writeln!(out, "  {}", g.summary.diversity.line())?;
            writeln!(
                out,
                "  review them with `lode review list` (or in the TUI), export with `lode export`"
            )?;
        }
    }
    if let Some(a) = &outcome.analysis {
        writeln!(out)?;
        writeln!(out, "Coverage: {}", a.headline())?;
        if let Some(f) = &a.fill {
            writeln!(
                out,
                "  gap filling: {} gaps asked, {} now covered by new valid pairs",
                f.asked.len(),
                f.filled.len()
            )?;
        }
        writeln!(
            out,
            "  report {}",
            a.report_dir.join("coverage.md").display()
        )?;
    }
    writeln!(out)?;
    match &outcome.tuning {
        DemoTuning::Ran(j) => writeln!(out, "Tuning (memory provider, offline): {}", j.headline())?,
        DemoTuning::AlreadyDone(j) => writeln!(out, "Tuning: already done, {}", j.headline())?,
        DemoTuning::Skipped(why) => writeln!(out, "Tuning skipped: {why}")?,
    }
    let e = &outcome.evaluation;
    writeln!(out)?;
    writeln!(
        out,
        "Evaluation: {}; report {}",
        e.headline(),
        e.report_dir.join("report.md").display()
    )?;
    writeln!(out, "Reward (lode reward): {}", outcome.reward.headline())?;
    if !args.no_tui && terminal_attached() {
        drop(out);
        crate::tui::run(project, store, model.clone())?;
    } else {
        writeln!(
            out,
            "\nReview the pairs in the TUI: lode -C {0} (from the source tree: cargo run \
             --release -- -C {0})",
            args.dir.display()
        )?;
    }
    Ok(0)
}

/// The summary printed after the main job: inputs, schema and the gold set's shape.
fn write_project_summary(out: &mut impl Write, project: &Project) -> Result<()> {
    let dir = project.dir().display();
    writeln!(out, "lode project {dir}")?;
    writeln!(out)?;
    writeln!(out, "Schema ({} tables)", project.schema.tables.len())?;
    write!(out, "{}", indent(&project.schema.to_text(), "  "))?;
    writeln!(
        out,
        "Inputs: {} glossary entries, {} gold pairs, {} eval pairs{}",
        project.glossary.len(),
        project.gold.len(),
        project.eval.len(),
        if project.eval_is_gold {
            " (the gold set)"
        } else {
            ""
        }
    )?;
    writeln!(out)?;
    writeln!(out, "Gold set")?;
    let mut failures = 0;
    let mut concepts = std::collections::BTreeSet::new();
    let mut hardness = std::collections::BTreeMap::new();
    for (i, pair) in project.gold.iter().enumerate() {
        let outcome = match project.db.query(&pair.sql) {
            Ok(r) => format!("{}, {:.1} ms", plural(r.rows.len(), "row"), ms(r.elapsed)),
            Err(e) => {
                failures += 1;
                format!("FAILS: {e}")
            }
        };
        let level = match lode_core::sql::analyze::analyze(&pair.sql, Some(&project.schema)) {
            Ok(a) => {
                concepts.extend(a.concepts.keys().copied());
                *hardness.entry(a.hardness).or_insert(0) += 1;
                a.hardness.name().to_string()
            }
            Err(e) => format!("unparsed: {e}"),
        };
        writeln!(
            out,
            "  {:>2}. {}  [{outcome}; {level}]",
            i + 1,
            pair.question
        )?;
    }
    if failures > 0 {
        writeln!(out, "{failures} gold queries fail against the database")?;
    }
    let by_level: Vec<String> = hardness.iter().map(|(h, n)| format!("{h} {n}")).collect();
    writeln!(
        out,
        "Spider hardness: {}; {} of {} SQL concepts used",
        by_level.join(", "),
        concepts.len(),
        lode_core::sql::analyze::Concept::ALL.len()
    )?;
    Ok(())
}
