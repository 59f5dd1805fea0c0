//! `lode schema`: the database's tables, columns, keys, row counts and sample values. On a
//! table of more than 100 000 rows the distinct counts and values come from its first 100 000
//! rows, and the listing says so. `--json`: the `--format json` schema inside the document.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::globals::Globals;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    /// A readable listing with keys, counts and samples.
    Text,
    /// CREATE TABLE text as the original's get_schema builds it.
    Create,
    /// CREATE TABLE with keys, row counts and sample values, as prompts get it.
    Annotated,
    /// Everything as JSON (the global `--json` gives the same inside the versioned document).
    Json,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// A database to read instead of the project's.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: SchemaFormat,
}

pub fn run(globals: &Globals, args: &SchemaArgs) -> Result<i32> {
    if globals.json && matches!(args.format, SchemaFormat::Create | SchemaFormat::Annotated) {
        return Err(super::exit::usage(
            "--json prints the schema as JSON; --format create and annotated print SQL text",
            "drop --json for the SQL text, or --format for the JSON document",
        ));
    }
    let (db, _) = globals.open_db(args.db.as_deref(), None)?;
    let schema = lode_core::sql::schema::introspect(&db)?;
    if schema.tables.is_empty() {
        // As loading a project says it (exit 2, kind `input`).
        return Err(lode_core::diag::InputError::new(
            db.path(),
            "the database has no tables (that this role may read)",
            "point database.path (or database.url) in config.yml, or --db, at the database \
             that holds your data",
        )
        .into());
    }
    if globals.json {
        super::json::emit("schema", &schema)?;
        return Ok(0);
    }
    let text = match args.format {
        SchemaFormat::Text => schema.to_text(),
        SchemaFormat::Create => schema.to_create_sql() + "\n",
        SchemaFormat::Annotated => schema.to_annotated_sql() + "\n",
        SchemaFormat::Json => serde_json::to_string_pretty(&schema)? + "\n",
    };
    // Written, not print!ed: a full disk is an error message, not a panic.
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(0)
}
