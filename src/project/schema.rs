//! Schema introspection of a SQLite database, and its renderings for people and prompts.

use serde::{Deserialize, Serialize};

use crate::sql::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// Primary-key column names in key order (empty for rowid tables without one).
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    pub indexes: Vec<Index>,
    pub row_count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The declared type as written in CREATE TABLE (may be empty).
    pub decl_type: String,
    pub not_null: bool,
    pub primary_key: bool,
    /// A few distinct non-NULL values, most frequent first.
    pub samples: Vec<Value>,
    /// Number of distinct non-NULL values.
    pub distinct_count: u64,
    /// Few distinct values relative to the rows: a column to filter and group by.
    pub categorical: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub ref_table: String,
    /// Referenced columns; empty when the key references the parent's primary key implicitly.
    pub ref_columns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
}

impl Schema {
    /// Looks a table up by name, case-insensitively as SQLite does.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}
