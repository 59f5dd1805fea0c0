//! `lode sql --analyze`: concepts, tables, columns, hardness, level and template of one query
//! or of a file of queries (one per line, or Spider's `SQL<TAB>db_id` lines), as JSON.

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::cli::{Cli, SqlArgs};
use crate::project::{Schema, introspect};
use crate::sql::analyze::analyze;
use crate::sql::{Database, ExecLimits};

/// The schema to resolve names against: `--db`, else the project's database, else none.
fn schema(cli: &Cli, args: &SqlArgs) -> Result<Option<Schema>> {
    let path = match &args.db {
        Some(p) => p.clone(),
        None if cli.config.exists() => {
            let config = crate::config::Config::load(&cli.config)?;
            config.database_path()?.to_path_buf()
        }
        None => return Ok(None),
    };
    let db = Database::open(&path, ExecLimits::default())?;
    Ok(Some(introspect(&db)?))
}

pub fn run(cli: &Cli, args: &SqlArgs) -> Result<i32> {
    let schema = schema(cli, args)?;
    let mut out = std::io::stdout().lock();
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut failures = 0;
        for (i, line) in text.lines().enumerate() {
            let sql = line.split('\t').next().unwrap_or("").trim();
            if sql.is_empty() {
                continue;
            }
            let record = match analyze(sql, schema.as_ref()) {
                Ok(a) => json!({"line": i + 1, "sql": sql, "analysis": a}),
                Err(e) => {
                    failures += 1;
                    json!({"line": i + 1, "sql": sql, "error": e.to_string()})
                }
            };
            writeln!(out, "{record}")?;
        }
        if failures > 0 {
            eprintln!("{failures} queries could not be analyzed (see their \"error\")");
        }
        return Ok(0);
    }
    let Some(sql) = &args.sql else {
        bail!("give the query to analyze, or --file FILE");
    };
    match analyze(sql, schema.as_ref()) {
        Ok(a) => {
            serde_json::to_writer_pretty(&mut out, &a)?;
            writeln!(out)?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}
