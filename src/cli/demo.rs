//! `lode demo`: write the demo project and run every stage on it offline (through the same
//! tasks as the other commands), then open the TUI on a terminal or print the summary.
//! `--json`: JSON lines, one `stage` line as each stage ends and a `done` line with every
//! stage's key numbers; the TUI never opens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::check::ProjectInputs;
use super::globals::{Globals, terminal_attached};
use super::output::{EventView, indent, ms, plural, print_warnings};
use lode_core::project::{Project, demo};
use lode_core::tasks::demo::{
    CoverageSummary, DemoGeneration, DemoReward, DemoTuning, EvaluationSummary, GenerationSummary,
    StageSummary, TuningSummary,
};

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

/// `--postgres URL` and `--pg-schema`, checked before anything is written.
fn check_postgres_args(args: &DemoArgs, url: &str) -> Result<()> {
    if lode_core::project::url_has_password(url) {
        return Err(super::exit::usage(
            "--postgres: the URL holds a password",
            "give it without one and put the password in PGPASSWORD (config.yml never holds it)",
        ));
    }
    if !args
        .pg_schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || args.pg_schema.is_empty()
    {
        return Err(super::exit::usage(
            format!(
                "--pg-schema: `{}` is not a schema name lode makes",
                args.pg_schema
            ),
            "use lower-case letters, digits and _ only",
        ));
    }
    Ok(())
}

/// Loads the demo's bakery into a schema of the PostgreSQL database at `url` and points the
/// project's config at it (the SQLite file stays beside it). Says whether it did; a project
/// that points at that schema already is left as it is.
fn to_postgres(args: &DemoArgs, url: &str, config_path: &std::path::Path) -> Result<bool> {
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

/// A `stage` line of `--json`: the stage, how long it took, and its key numbers.
#[derive(Serialize)]
struct StageLine<'a, T: Serialize> {
    stage: &'a str,
    elapsed_ms: u64,
    #[serde(flatten)]
    numbers: &'a T,
}

/// The `project` stage: where the project is and whether it was written now.
#[derive(Serialize)]
struct ProjectStage<'a> {
    project_dir: &'a Path,
    /// Written now (false: the project already there was used).
    written: bool,
    /// Rows of each table of the demo database, when written now.
    tables: Option<std::collections::BTreeMap<&'a str, u64>>,
    /// The PostgreSQL schema the bakery is in, with `--postgres`.
    postgres_schema: Option<&'a str>,
}

/// The `done` line of `--json`: the project and every stage's key numbers (`null` for
/// stages that did not run: all of them with `--no-run`).
#[derive(Serialize)]
struct DemoDone<'a> {
    project_dir: &'a Path,
    config: PathBuf,
    written: bool,
    /// The stages ran (false with `--no-run`).
    ran: bool,
    /// The project's inputs, once loaded.
    inputs: Option<ProjectInputs>,
    store: Option<PathBuf>,
    /// The input snapshot the stages ran on.
    snapshot: Option<i64>,
    generation: Option<&'a GenerationSummary>,
    analysis: Option<&'a CoverageSummary>,
    tuning: Option<&'a TuningSummary>,
    evaluation: Option<&'a EvaluationSummary>,
    reward: Option<&'a DemoReward>,
    elapsed_ms: u64,
}

fn whole_ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

pub fn run(args: &DemoArgs, globals: &Globals) -> Result<i32> {
    let json = globals.json;
    let config_path = args.dir.join("config.yml");
    let started = Instant::now();
    let existing = config_path.exists() && !args.force;
    let mut written = None;
    if let Some(url) = &args.postgres {
        check_postgres_args(args, url)?;
    }
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
        written = Some(summary);
    }
    if let Some(url) = &args.postgres {
        let pointed_now = to_postgres(args, url, &config_path)?;
        if existing {
            align_inputs(&args.dir, demo::DemoDialect::Postgres, pointed_now)?;
        }
    } else if existing && std::fs::read_to_string(&config_path)?.contains(SQLITE_DATABASE) {
        align_inputs(&args.dir, demo::DemoDialect::Sqlite, false)?;
    }
    let mut done = DemoDone {
        project_dir: &args.dir,
        config: config_path.clone(),
        written: written.is_some(),
        ran: false,
        inputs: None,
        store: None,
        snapshot: None,
        generation: None,
        analysis: None,
        tuning: None,
        evaluation: None,
        reward: None,
        elapsed_ms: 0,
    };
    if json {
        let stage = ProjectStage {
            project_dir: &args.dir,
            written: written.is_some(),
            tables: written
                .as_ref()
                .map(|w| w.tables.iter().map(|(t, n)| (t.as_str(), *n)).collect()),
            postgres_schema: args.postgres.as_ref().map(|_| args.pg_schema.as_str()),
        };
        let line = StageLine {
            stage: "project",
            elapsed_ms: whole_ms(started.elapsed()),
            numbers: &stage,
        };
        super::json::emit_line("demo", "stage", &line)?;
    }
    if args.no_run {
        if json {
            done.elapsed_ms = whole_ms(started.elapsed());
            super::json::emit_line("demo", "done", &done)?;
        }
        return Ok(0);
    }
    let project = Project::load(&config_path)?;
    print_warnings(&project.warnings);
    let (store, snapshot) = project.open_store()?;
    let store = Arc::new(store);
    if !json {
        let mut out = std::io::stdout().lock();
        write_project_summary(&mut out, &project)?;
        writeln!(
            out,
            "Workspace store: {} (input snapshot {snapshot})",
            project.store_path().display()
        )?;
    }
    let view = EventView::new();
    let rt = lode_core::tasks::runtime()?;
    // With --json, each stage's line as it ends (a failed write shows at the `done` line).
    let on_stage = move |summary: &StageSummary, elapsed: Duration| {
        if json {
            let line = StageLine {
                stage: summary.name(),
                elapsed_ms: whole_ms(elapsed),
                numbers: summary,
            };
            let _ = super::json::emit_line("demo", "stage", &line);
        }
    };
    let outcome = rt.block_on(lode_core::tasks::demo::run(
        &project,
        &store,
        snapshot,
        &view.reporter(),
        &on_stage,
    ));
    view.finish();
    let outcome = outcome?;
    if json {
        let s = &outcome.summary;
        done.ran = true;
        done.inputs = Some(ProjectInputs::of(&project));
        done.store = Some(project.store_path());
        done.snapshot = Some(snapshot);
        done.generation = Some(&s.generation);
        done.analysis = s.analysis.as_ref();
        done.tuning = Some(&s.tuning);
        done.evaluation = Some(&s.evaluation);
        done.reward = Some(&s.reward);
        done.elapsed_ms = whole_ms(started.elapsed());
        super::json::emit_line("demo", "done", &done)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
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
        crate::tui::run(project, store, globals.model_request())?;
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
