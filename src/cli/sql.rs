//! `lode sql`: run one read-only statement safely (table, JSON or CSV), or, with `--analyze`,
//! print the concepts, tables, columns, hardness, level and template of queries as JSON.
//! `--json`: the `--format json` result (or the analysis) inside the versioned document;
//! `--analyze --file` then streams one `query` line per query and a `done` line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;

use super::exit;
use super::globals::Globals;
use super::output::{write_csv, write_table};
use lode_core::sql::analyze::{Analysis, analyze as analyze_sql};
use lode_core::sql::schema::{Schema, introspect};
use lode_core::sql::{Database, ExecLimits, QueryResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RowFormat {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The statement (one read-only SELECT or WITH).
    pub sql: Option<String>,
    /// A database to use instead of the project's.
    #[arg(long, conflicts_with = "db_url")]
    pub db: Option<PathBuf>,
    /// A PostgreSQL database instead (postgres://user@host:port/db; the password from
    /// PGPASSWORD, never from the command line).
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
    /// With --db-url: refuse a role that could write (lode never writes; a SELECT-only role
    /// is the safer setup).
    #[arg(long, requires = "db_url")]
    pub refuse_writable: bool,
    /// Wall-clock limit in seconds (default: execution.timeout_s, else 10).
    #[arg(long, value_parser = super::globals::parse_seconds)]
    pub timeout: Option<Duration>,
    /// Rows to keep (default: execution.max_rows).
    #[arg(long, value_parser = super::globals::parse_rows)]
    pub max_rows: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: RowFormat,
    /// Print the analysis (concepts, tables, columns, hardness, template) as JSON instead of
    /// running the query.
    #[arg(long)]
    pub analyze: bool,
    /// With --analyze: a file of queries, one per line (or `SQL<TAB>db_id` lines); prints one
    /// JSON line each.
    #[arg(long, requires = "analyze")]
    pub file: Option<PathBuf>,
}

pub fn run(globals: &Globals, args: &SqlArgs) -> Result<i32> {
    if globals.json && args.format == RowFormat::Csv {
        return Err(exit::usage(
            "--json and --format csv do not go together",
            "drop --json for CSV, or --format for the JSON document",
        ));
    }
    if args.analyze {
        return analyze(globals, args);
    }
    let Some(sql) = &args.sql else {
        return Err(exit::usage(
            "give the statement to run",
            "lode sql \"SELECT …\" (or --analyze --file FILE to analyze queries)",
        ));
    };
    let base = match &args.db_url {
        Some(url) => {
            let limits = if globals.config.exists() {
                globals.load_config()?.execution.limits()
            } else {
                ExecLimits::default()
            };
            let db = Database::connect_url(url, None, limits, args.refuse_writable)?;
            warn_if_writable(&db);
            db
        }
        None => globals.open_db(args.db.as_deref(), None)?.0,
    };
    let base = std::sync::Arc::new(base);
    let mut limits = base.limits();
    if let Some(t) = args.timeout {
        limits.timeout = t;
    }
    if let Some(n) = args.max_rows {
        limits.max_rows = n;
    }
    // Detached: the answer comes back at the deadline even from a step SQLite cannot
    // interrupt; the process exits right after, ending that step too. A refused statement
    // (exit 5), a timeout (4) or a failing query (1) is an error `main` reports.
    let result = base.query_detached(sql, limits, None)?;
    if globals.json {
        super::json::emit("sql", &result)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        RowFormat::Table => write_table(&mut out, &result, std::io::stdout().is_terminal())?,
        RowFormat::Json => {
            serde_json::to_writer(&mut out, &result)?;
            writeln!(out)?;
        }
        RowFormat::Csv => {
            write_csv(&mut out, &result)?;
            // CSV has no place for it: say on stderr what was cut and how to get it.
            for note in cut_notes(&result, limits) {
                eprintln!("note: {note}");
            }
        }
    }
    Ok(0)
}

/// Says so when a PostgreSQL role could write.
pub fn warn_if_writable(db: &Database) {
    if db.can_write() {
        eprintln!(
            "warning: the role of {} can write to it; lode only reads (every statement in a \
             read-only transaction that is rolled back), but a SELECT-only role is safer \
             (--refuse-writable refuses such a role)",
            db.path().display()
        );
    }
}

/// What the limits cut from a result, and how to raise them (JSON says it in `truncated` and
/// `truncated_cells`, the table in its footer).
fn cut_notes(result: &QueryResult, limits: ExecLimits) -> Vec<String> {
    let mut notes = Vec::new();
    if result.truncated {
        notes.push(format!(
            "only the first {} rows are written: the row cap (execution.max_rows) cut the rest; \
             pass --max-rows N for more",
            result.rows.len()
        ));
    }
    if result.truncated_cells > 0 {
        notes.push(format!(
            "{} long cells were cut to {} bytes: raise execution.max_cell_bytes in config.yml \
             for more",
            result.truncated_cells, limits.max_cell_bytes
        ));
    }
    notes
}

/// The schema to resolve names against: `--db` or `--db-url`, else the project's database,
/// else none. Its dialect is the grammar the queries are read in (SQLite's without one).
fn schema(globals: &Globals, args: &SqlArgs) -> Result<Option<Schema>> {
    let db = match (&args.db, &args.db_url) {
        (Some(p), _) => Database::open(p, ExecLimits::default())?,
        (None, Some(url)) => Database::connect_url(url, None, ExecLimits::default(), false)?,
        (None, None) if globals.config.exists() => {
            lode_core::project::open_database(&globals.load_config()?)?
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(introspect(&db)?))
}

/// One query of `--analyze --file` with `--json`: a `query` line of the stream.
#[derive(Serialize)]
struct AnalyzedLine<'a> {
    /// The 1-based line of the file.
    line: usize,
    sql: &'a str,
    /// `None` when the query could not be analyzed (`error` says why).
    analysis: Option<&'a Analysis>,
    error: Option<String>,
}

/// The `done` line of `--analyze --file` with `--json`.
#[derive(Serialize)]
struct AnalyzedFile {
    /// Queries read (blank lines skipped).
    queries: usize,
    analyzed: usize,
    /// Queries that could not be analyzed.
    failed: usize,
}

fn analyze(globals: &Globals, args: &SqlArgs) -> Result<i32> {
    let schema = schema(globals, args)?;
    let mut out = std::io::stdout().lock();
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            exit::usage(
                format!("cannot read {}: {e}", file.display()),
                "--file takes a file of queries, one per line (or `SQL<TAB>db_id` lines)",
            )
        })?;
        let mut counts = AnalyzedFile {
            queries: 0,
            analyzed: 0,
            failed: 0,
        };
        for (i, line) in text.lines().enumerate() {
            let sql = line.split('\t').next().unwrap_or("").trim();
            if sql.is_empty() {
                continue;
            }
            counts.queries += 1;
            let analysis = analyze_sql(sql, schema.as_ref());
            match &analysis {
                Ok(_) => counts.analyzed += 1,
                Err(_) => counts.failed += 1,
            }
            if globals.json {
                let record = AnalyzedLine {
                    line: i + 1,
                    sql,
                    analysis: analysis.as_ref().ok(),
                    error: analysis.as_ref().err().map(ToString::to_string),
                };
                super::json::emit_line("sql", "query", &record)?;
                continue;
            }
            let record = match analysis {
                Ok(a) => json!({"line": i + 1, "sql": sql, "analysis": a}),
                Err(e) => json!({"line": i + 1, "sql": sql, "error": e.to_string()}),
            };
            writeln!(out, "{record}")?;
        }
        if counts.failed > 0 {
            eprintln!(
                "{} queries could not be analyzed (see their \"error\")",
                counts.failed
            );
        }
        if globals.json {
            super::json::emit_line("sql", "done", &counts)?;
        }
        return Ok(0);
    }
    let Some(sql) = &args.sql else {
        return Err(exit::usage(
            "give the query to analyze",
            "lode sql --analyze \"SELECT …\", or --file FILE for a file of queries",
        ));
    };
    let analysis = analyze_sql(sql, schema.as_ref())?;
    if globals.json {
        super::json::emit("sql", &analysis)?;
    } else {
        serde_json::to_writer_pretty(&mut out, &analysis)?;
        writeln!(out)?;
    }
    Ok(0)
}
