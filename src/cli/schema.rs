//! `lode schema`: the database's tables, columns, keys, row counts and sample values.

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
    /// Everything as JSON.
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
    let (db, _) = globals.open_db(args.db.as_deref(), None)?;
    let schema = lode_core::sql::schema::introspect(&db)?;
    let text = match args.format {
        SchemaFormat::Text => schema.to_text(),
        SchemaFormat::Create => schema.to_create_sql() + "\n",
        SchemaFormat::Annotated => schema.to_annotated_sql() + "\n",
        SchemaFormat::Json => serde_json::to_string_pretty(&schema)? + "\n",
    };
    print!("{text}");
    Ok(0)
}
