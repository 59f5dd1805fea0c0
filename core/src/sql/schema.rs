//! Schema introspection of a SQLite database, and its renderings for people and prompts.

use serde::{Deserialize, Serialize};

use crate::sql::{Database, ExecError, ExecLimits, Target, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: Vec<Table>,
    /// The SQL dialect of the database: empty for SQLite, `postgresql` for PostgreSQL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dialect: String,
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
    /// Rows the column statistics (distinct counts, samples, categorical) were read from: the
    /// first rows in table order, at most 100 000. Below `row_count` they describe a sample.
    #[serde(default)]
    pub stats_rows: u64,
    /// The database's own description of the table (PostgreSQL `COMMENT ON`), a hint of
    /// what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The PostgreSQL schema of a table listed as `schema.table` (another schema on the
    /// search path has a table of the same name); empty when the name is the bare name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

impl Table {
    /// The table's name for SQL text, each part given to `quote` (which quotes as much as
    /// the caller wants): `"sales"."orders"` for a table listed as `sales.orders`, never
    /// `"sales.orders"`, which would name a table with a dot in its name.
    pub fn sql_name(&self, quote: impl Fn(&str) -> String) -> String {
        match self
            .name
            .strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
        {
            Some(rel) if !self.namespace.is_empty() => {
                format!("{}.{}", quote(&self.namespace), quote(rel))
            }
            _ => quote(&self.name),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The declared type as written in CREATE TABLE (may be empty).
    pub decl_type: String,
    pub not_null: bool,
    pub primary_key: bool,
    /// A few distinct non-NULL values, most frequent first (in the table's statistics rows,
    /// see [`Table::stats_rows`]).
    pub samples: Vec<Value>,
    /// Number of distinct non-NULL values in the statistics rows: a lower bound when they are
    /// a sample ([`Table::sampled`]).
    pub distinct_count: u64,
    /// Few distinct values relative to the rows: a column to filter and group by.
    pub categorical: bool,
    /// The database's description of the column (PostgreSQL `COMMENT ON`; an enum's labels
    /// when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
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
    /// A table's name for SQL text (see [`Table::sql_name`]); a name the schema does not
    /// list is quoted whole.
    pub fn table_sql(&self, name: &str, quote: impl Fn(&str) -> String) -> String {
        match self.table(name) {
            Some(t) => t.sql_name(quote),
            None => quote(name),
        }
    }

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

    /// The column statistics come from the first [`Table::stats_rows`] rows, not all of them.
    pub fn sampled(&self) -> bool {
        self.stats_rows < self.row_count
    }

    /// `column`'s samples are every distinct value it has (not a few of them).
    pub fn all_values_shown(&self, column: &Column) -> bool {
        !self.sampled() && column.samples.len() as u64 == column.distinct_count
    }
}

/// Distinct values shown per column.
const SAMPLE_VALUES: usize = 5;
/// Rows scanned per column for samples and distinct counts, so huge tables stay quick.
const SAMPLE_SCAN_ROWS: usize = 100_000;
/// A column with at most this many distinct values (and repeats) is flagged categorical.
const CATEGORICAL_MAX_DISTINCT: u64 = 25;

/// Few distinct values relative to the rows read, none of them a blob: a column to filter
/// and group by.
fn categorical(column: &Column, stats_rows: u64) -> bool {
    column.distinct_count > 0
        && column.distinct_count <= CATEGORICAL_MAX_DISTINCT
        && column.distinct_count * 2 <= stats_rows
        && !column.samples.iter().any(|v| matches!(v, Value::Blob(_)))
}

/// Why a schema could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the schema of {path}: {source}")]
pub struct IntrospectError {
    pub path: std::path::PathBuf,
    #[source]
    pub source: ExecError,
}

/// A comment's text on one line, as a prompt shows it.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Quotes an identifier for SQLite.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Null => String::new(),
        other => other.display(),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        Value::Real(f) => *f as i64,
        _ => 0,
    }
}

/// Reads tables, columns, keys, indexes, row counts and samples through the safe executor.
pub fn introspect(db: &Database) -> Result<Schema, IntrospectError> {
    db.target().introspect()
}

/// Runs introspection's own small queries on `db`: every row they return is seen (up to
/// 100,000; sampling bounds the work), cells cut at 256 bytes, errors naming the database.
fn introspection_query(
    db: &dyn Target,
) -> impl Fn(&str) -> Result<crate::sql::QueryResult, IntrospectError> + '_ {
    let limits = ExecLimits {
        max_rows: 100_000,
        max_cell_bytes: 256,
        ..db.limits()
    };
    move |sql| {
        db.query_with(sql, limits, None)
            .map_err(|source| IntrospectError {
                path: db.location().to_path_buf(),
                source,
            })
    }
}

/// [`introspect`] for a SQLite file, from `sqlite_master` and its pragmas.
pub(crate) fn introspect_sqlite(db: &dyn Target) -> Result<Schema, IntrospectError> {
    let q = introspection_query(db);
    let tables = q(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )?;
    let mut schema = Schema::default();
    for row in &tables.rows {
        let name = text(&row[0]);
        let lit = Value::Text(name.clone()).sql_literal();
        let ident = quote_ident(&name);
        let cols = q(&format!(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info({lit}) ORDER BY cid"
        ))?;
        let mut pk: Vec<(i64, String)> = Vec::new();
        let mut columns = Vec::new();
        for c in &cols.rows {
            let col_name = text(&c[0]);
            if int(&c[3]) > 0 {
                pk.push((int(&c[3]), col_name.clone()));
            }
            columns.push(Column {
                name: col_name,
                decl_type: text(&c[1]),
                not_null: int(&c[2]) != 0,
                primary_key: int(&c[3]) > 0,
                ..Column::default()
            });
        }
        pk.sort();
        let fks = q(&format!(
            "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list({lit}) ORDER BY id, seq"
        ))?;
        let mut foreign_keys: Vec<ForeignKey> = Vec::new();
        let mut last_id = None;
        for f in &fks.rows {
            let id = int(&f[0]);
            if last_id != Some(id) {
                foreign_keys.push(ForeignKey {
                    columns: Vec::new(),
                    ref_table: text(&f[1]),
                    ref_columns: Vec::new(),
                });
                last_id = Some(id);
            }
            let fk = foreign_keys.last_mut().expect("pushed above");
            fk.columns.push(text(&f[2]));
            let to = text(&f[3]);
            if !to.is_empty() {
                fk.ref_columns.push(to);
            }
        }
        let idx = q(&format!(
            "SELECT name, \"unique\" FROM pragma_index_list({lit}) WHERE origin = 'c' ORDER BY name"
        ))?;
        let mut indexes = Vec::new();
        for i in &idx.rows {
            let index_name = text(&i[0]);
            let info = q(&format!(
                "SELECT name FROM pragma_index_info({}) ORDER BY seqno",
                Value::Text(index_name.clone()).sql_literal()
            ))?;
            indexes.push(Index {
                name: index_name,
                columns: info.rows.iter().map(|r| text(&r[0])).collect(),
                unique: int(&i[1]) != 0,
            });
        }
        let row_count = q(&format!("SELECT count(*) FROM {ident}"))?
            .rows
            .first()
            .map_or(0, |r| int(&r[0]).max(0) as u64);
        let stats_rows = row_count.min(SAMPLE_SCAN_ROWS as u64);
        for column in &mut columns {
            let c = quote_ident(&column.name);
            // The table's own first rows: through an index the scan would see only the
            // smallest values of the column (100 000 rows of a 10M-row table's index on `id`
            // are ids 1..100 000; of an index on a category, its first few categories).
            let sample =
                format!("(SELECT {c} AS v FROM {ident} NOT INDEXED LIMIT {SAMPLE_SCAN_ROWS})");
            let distinct = q(&format!("SELECT count(DISTINCT v) FROM {sample}"))?;
            column.distinct_count = distinct
                .rows
                .first()
                .map_or(0, |r| int(&r[0]).max(0) as u64);
            let values = q(&format!(
                "SELECT v, count(*) AS n FROM {sample} WHERE v IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT {SAMPLE_VALUES}"
            ))?;
            column.samples = values
                .rows
                .into_iter()
                .map(|mut r| r.swap_remove(0))
                .collect();
            column.categorical = categorical(column, stats_rows);
        }
        schema.tables.push(Table {
            name,
            columns,
            primary_key: pk.into_iter().map(|(_, n)| n).collect(),
            foreign_keys,
            indexes,
            row_count,
            stats_rows,
            comment: None,
            namespace: String::new(),
        });
    }
    Ok(schema)
}

/// The schema of a PostgreSQL database from `pg_catalog`, through the PostgreSQL executor:
/// every table and view the role may read in the schemas on the search path, which holds
/// every schema the role may use unless the URL sets it (a table outside `public` is named
/// `schema.table` when its bare name is taken by another), keys, foreign keys, indexes, row
/// counts, samples, comments, and an enum's labels.
pub(crate) fn introspect_pg(db: &dyn Target) -> Result<Schema, IntrospectError> {
    let q = introspection_query(db);
    let tables = q(
        "SELECT c.oid::int8, n.nspname, c.relname, obj_description(c.oid, 'pg_class'),
               count(*) OVER (PARTITION BY c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname = ANY (current_schemas(false))
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND has_table_privilege(c.oid, 'SELECT')
        ORDER BY n.nspname <> 'public', n.nspname, c.relname",
    )?;
    // Each table's name as the schema lists it: bare, or `schema.table` outside `public`
    // when another schema has a table of that name.
    let names: std::collections::HashMap<(String, String), String> = tables
        .rows
        .iter()
        .map(|row| {
            let (nsp, rel) = (text(&row[1]), text(&row[2]));
            let name = if int(&row[4]) > 1 && nsp != "public" {
                format!("{nsp}.{rel}")
            } else {
                rel.clone()
            };
            ((nsp, rel), name)
        })
        .collect();
    let mut schema = Schema {
        dialect: "postgresql".into(),
        ..Schema::default()
    };
    for row in &tables.rows {
        let oid = int(&row[0]);
        let (nsp, rel) = (text(&row[1]), text(&row[2]));
        let name = names
            .get(&(nsp.clone(), rel.clone()))
            .cloned()
            .unwrap_or_else(|| rel.clone());
        let ident = format!("{}.{}", pg_ident(&nsp), pg_ident(&rel));
        let comment = Some(text(&row[3])).filter(|c| !c.is_empty());
        let cols = q(&format!(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    col_description(a.attrelid, a.attnum),
                    (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
                       FROM pg_enum e WHERE e.enumtypid = a.atttypid)
             FROM pg_attribute a
             WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum"
        ))?;
        let pk_rows = q(&format!(
            "SELECT a.attname FROM pg_index i
               JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(col, ord) ON true
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.col
             WHERE i.indrelid = {oid} AND i.indisprimary ORDER BY k.ord"
        ))?;
        let primary_key: Vec<String> = pk_rows.rows.iter().map(|r| text(&r[0])).collect();
        let mut columns: Vec<Column> = cols
            .rows
            .iter()
            .map(|c| {
                let col = text(&c[0]);
                let enum_labels = text(&c[4]);
                Column {
                    primary_key: primary_key.contains(&col),
                    name: col,
                    decl_type: text(&c[1]),
                    not_null: matches!(c[2], Value::Integer(1)),
                    comment: Some(text(&c[3])).filter(|c| !c.is_empty()).or_else(|| {
                        (!enum_labels.is_empty()).then(|| format!("one of: {enum_labels}"))
                    }),
                    ..Column::default()
                }
            })
            .collect();
        let fks = q(&format!(
            "SELECT c.conname, rn.nspname, rc.relname, a.attname, af.attname
             FROM pg_constraint c
               JOIN pg_class rc ON rc.oid = c.confrelid
               JOIN pg_namespace rn ON rn.oid = rc.relnamespace
               JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, refcol, ord) ON true
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
               JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = k.refcol
             WHERE c.conrelid = {oid} AND c.contype = 'f'
             ORDER BY c.conname, k.ord"
        ))?;
        let mut foreign_keys: Vec<ForeignKey> = Vec::new();
        let mut last: Option<String> = None;
        for f in &fks.rows {
            let con = text(&f[0]);
            if last.as_deref() != Some(con.as_str()) {
                let (rn, rc) = (text(&f[1]), text(&f[2]));
                foreign_keys.push(ForeignKey {
                    columns: Vec::new(),
                    ref_table: names
                        .get(&(rn.clone(), rc.clone()))
                        .cloned()
                        .unwrap_or_else(|| {
                            if rn == "public" {
                                rc
                            } else {
                                format!("{rn}.{rc}")
                            }
                        }),
                    ref_columns: Vec::new(),
                });
                last = Some(con);
            }
            let fk = foreign_keys.last_mut().expect("pushed above");
            fk.columns.push(text(&f[3]));
            fk.ref_columns.push(text(&f[4]));
        }
        let idx = q(&format!(
            "SELECT ci.relname, i.indisunique, a.attname
             FROM pg_index i
               JOIN pg_class ci ON ci.oid = i.indexrelid
               JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(col, ord) ON true
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.col
             WHERE i.indrelid = {oid} AND NOT i.indisprimary
             ORDER BY ci.relname, k.ord"
        ))?;
        let mut indexes: Vec<Index> = Vec::new();
        for r in &idx.rows {
            let index_name = text(&r[0]);
            if indexes.last().is_none_or(|i| i.name != index_name) {
                indexes.push(Index {
                    name: index_name,
                    columns: Vec::new(),
                    unique: matches!(r[1], Value::Integer(1)),
                });
            }
            indexes
                .last_mut()
                .expect("pushed above")
                .columns
                .push(text(&r[2]));
        }
        let row_count = q(&format!("SELECT count(*) FROM {ident}"))?
            .rows
            .first()
            .map_or(0, |r| int(&r[0]).max(0) as u64);
        let stats_rows = row_count.min(SAMPLE_SCAN_ROWS as u64);
        for column in &mut columns {
            let c = pg_ident(&column.name);
            let sample = format!("(SELECT {c} AS v FROM {ident} LIMIT {SAMPLE_SCAN_ROWS}) s");
            // Types without equality (json, xml, …) have no distinct count or samples.
            if let Ok(d) = q(&format!("SELECT count(DISTINCT v) FROM {sample}")) {
                column.distinct_count = d.rows.first().map_or(0, |r| int(&r[0]).max(0) as u64);
            }
            if let Ok(values) = q(&format!(
                "SELECT v, count(*) AS n FROM {sample} WHERE v IS NOT NULL GROUP BY v \
                 ORDER BY n DESC, v::text LIMIT {SAMPLE_VALUES}"
            )) {
                column.samples = values
                    .rows
                    .into_iter()
                    .map(|mut r| r.swap_remove(0))
                    .collect();
            }
            column.categorical = categorical(column, stats_rows);
        }
        let namespace = if name != rel { nsp } else { String::new() };
        schema.tables.push(Table {
            name,
            columns,
            primary_key,
            foreign_keys,
            indexes,
            row_count,
            stats_rows,
            comment,
            namespace,
        });
    }
    Ok(schema)
}

/// Quotes an identifier for PostgreSQL.
pub fn pg_ident(name: &str) -> String {
    // Always quoted: a bare `user` or `order` is a keyword, not the column.
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Schema {
    /// `CREATE TABLE` text as the original's `get_schema` builds it from `PRAGMA table_info`:
    /// one block per table, columns with their declared types, blocks joined by a blank line.
    pub fn to_create_sql(&self) -> String {
        self.tables
            .iter()
            .map(|t| {
                let cols: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| {
                        format!("  {} {}", c.name, c.decl_type)
                            .trim_end()
                            .to_string()
                    })
                    .collect();
                format!("CREATE TABLE {} (\n{}\n);", t.name, cols.join(",\n"))
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// The schema for prompts: CREATE TABLE with keys, references, row counts and sample
    /// values as comments, so a model sees real values to filter on.
    pub fn to_annotated_sql(&self) -> String {
        self.tables
            .iter()
            .map(|t| {
                let mut lines = Vec::new();
                for (i, c) in t.columns.iter().enumerate() {
                    let mut def = format!("  {}", c.name);
                    if !c.decl_type.is_empty() {
                        def.push(' ');
                        def.push_str(&c.decl_type);
                    }
                    if c.primary_key && t.primary_key.len() == 1 {
                        def.push_str(" PRIMARY KEY");
                    }
                    if c.not_null && !c.primary_key {
                        def.push_str(" NOT NULL");
                    }
                    if let Some(fk) = t
                        .foreign_keys
                        .iter()
                        .find(|fk| fk.columns.len() == 1 && fk.columns[0] == c.name)
                    {
                        let target = fk.ref_columns.first().map_or_else(
                            || t.primary_key.first().cloned().unwrap_or_default(),
                            Clone::clone,
                        );
                        def.push_str(&format!(" REFERENCES {}({target})", fk.ref_table));
                    }
                    let last = i + 1 == t.columns.len() && t.primary_key.len() < 2;
                    if !last {
                        def.push(',');
                    }
                    if !c.samples.is_empty() {
                        let shown: Vec<String> = c.samples.iter().map(Value::sql_literal).collect();
                        let label = if c.categorical && t.all_values_shown(c) {
                            "values"
                        } else if t.sampled() {
                            "sample values"
                        } else {
                            "e.g."
                        };
                        def.push_str(&format!(" -- {label}: {}", shown.join(", ")));
                    }
                    // The database's own description of the column (PostgreSQL COMMENT ON,
                    // an enum's labels): a hint of what it means.
                    if let Some(note) = &c.comment {
                        let sep = if def.contains(" -- ") { "; " } else { " -- " };
                        def.push_str(&format!("{sep}{}", one_line(note)));
                    }
                    lines.push(def);
                }
                if t.primary_key.len() > 1 {
                    lines.push(format!("  PRIMARY KEY ({})", t.primary_key.join(", ")));
                }
                let sampled = if t.sampled() {
                    format!("; column values from the first {} rows", t.stats_rows)
                } else {
                    String::new()
                };
                let about = t
                    .comment
                    .as_ref()
                    .map(|c| format!("-- {}\n", one_line(c)))
                    .unwrap_or_default();
                format!(
                    "{about}CREATE TABLE {} ( -- {} rows{sampled}\n{}\n);",
                    t.name,
                    t.row_count,
                    lines.join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// A readable listing for `lode schema`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            if t.sampled() {
                out.push_str(&format!(
                    "{} ({} rows; distinct counts and sample values from the first {} rows)\n",
                    t.name, t.row_count, t.stats_rows
                ));
            } else {
                out.push_str(&format!("{} ({} rows)\n", t.name, t.row_count));
            }
            let width = t.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
            let type_width = t
                .columns
                .iter()
                .map(|c| c.decl_type.len())
                .max()
                .unwrap_or(0);
            for c in &t.columns {
                let mut notes = Vec::new();
                if c.primary_key {
                    notes.push("PK".to_string());
                }
                if let Some(fk) = t
                    .foreign_keys
                    .iter()
                    .find(|fk| fk.columns.contains(&c.name))
                {
                    let pos = fk.columns.iter().position(|x| x == &c.name).unwrap_or(0);
                    let to = fk
                        .ref_columns
                        .get(pos)
                        .map_or(String::new(), |r| format!(".{r}"));
                    notes.push(format!("→ {}{to}", fk.ref_table));
                }
                if c.not_null && !c.primary_key {
                    notes.push("not null".into());
                }
                let samples: Vec<String> = c.samples.iter().map(Value::sql_literal).collect();
                let sample_text = if samples.is_empty() {
                    String::new()
                } else if c.categorical && t.all_values_shown(c) {
                    format!("  {{{}}}", samples.join(", "))
                } else if t.sampled() {
                    format!("  sample values: {}", samples.join(", "))
                } else {
                    format!("  e.g. {}", samples.join(", "))
                };
                let distinct = if t.sampled() {
                    format!("≥{}", c.distinct_count)
                } else {
                    c.distinct_count.to_string()
                };
                out.push_str(&format!(
                    "  {:width$}  {:type_width$}  {:>6} distinct  {}{}\n",
                    c.name,
                    c.decl_type,
                    distinct,
                    notes.join(", "),
                    sample_text,
                ));
            }
            for i in &t.indexes {
                out.push_str(&format!(
                    "  index {}{} ({})\n",
                    i.name,
                    if i.unique { " unique" } else { "" },
                    i.columns.join(", ")
                ));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn fixture() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE stores (id INTEGER PRIMARY KEY, city TEXT NOT NULL);
             CREATE TABLE \"order items\" (order_id INTEGER, line INTEGER, store_id INTEGER REFERENCES stores(id), kind TEXT,
                PRIMARY KEY (order_id, line));
             CREATE INDEX items_store ON \"order items\"(store_id);
             INSERT INTO stores VALUES (1, 'Lyon'), (2, 'Paris');
             WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 40)
             INSERT INTO \"order items\" SELECT x, 1, 1 + x % 2, CASE WHEN x % 3 = 0 THEN 'cake' ELSE 'bread' END FROM n;",
        )
        .unwrap();
        drop(conn);
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        (dir, db)
    }

    #[test]
    fn reads_tables_keys_indexes_counts_and_samples() {
        let (_d, db) = fixture();
        let s = introspect(&db).unwrap();
        assert_eq!(s.tables.len(), 2);
        let items = s.table("ORDER ITEMS").unwrap();
        assert_eq!(items.row_count, 40);
        assert_eq!(items.primary_key, vec!["order_id", "line"]);
        assert_eq!(items.foreign_keys[0].ref_table, "stores");
        assert_eq!(items.foreign_keys[0].columns, vec!["store_id"]);
        assert_eq!(items.indexes[0].columns, vec!["store_id"]);
        let kind = items.column("kind").unwrap();
        assert!(kind.categorical);
        assert_eq!(kind.distinct_count, 2);
        assert_eq!(kind.samples[0], Value::Text("bread".into()));
        assert!(!items.column("order_id").unwrap().categorical);
        let city = s.table("stores").unwrap().column("city").unwrap();
        assert!(city.not_null);
    }

    #[test]
    fn statistics_come_from_the_table_rows_and_say_when_they_are_a_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.sqlite");
        let conn = Connection::open(&path).unwrap();
        // 150 000 rows; an index on `cat` lists its 10 values in order, 15 000 rows each, so
        // its first 100 000 entries hold only 7 of them.
        conn.execute_batch(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, cat INTEGER, note TEXT);
             WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 149999)
             INSERT INTO big SELECT x, x % 10, 'row ' || x FROM n;
             CREATE INDEX big_cat ON big(cat);
             CREATE TABLE small (id INTEGER PRIMARY KEY, tier TEXT);
             WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 39)
             INSERT INTO small SELECT x, 'tier' || (x % 8) FROM n;",
        )
        .unwrap();
        drop(conn);
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        let s = introspect(&db).unwrap();
        let big = s.table("big").unwrap();
        assert_eq!(big.row_count, 150_000);
        assert_eq!(big.stats_rows, 100_000);
        assert!(big.sampled());
        let cat = big.column("cat").unwrap();
        assert_eq!(cat.distinct_count, 10, "counted through the index?");
        assert!(!big.all_values_shown(cat));
        let text = s.to_text();
        assert!(
            text.contains(
                "big (150000 rows; distinct counts and sample values from the first 100000 rows)"
            ),
            "{text}"
        );
        assert!(text.contains("≥10 distinct"), "{text}");
        assert!(text.contains("≥100000 distinct"), "{text}");
        assert!(text.contains("sample values: 0, 1, 2, 3, 4"), "{text}");
        let annotated = s.to_annotated_sql();
        assert!(
            annotated.contains("-- 150000 rows; column values from the first 100000 rows"),
            "{annotated}"
        );
        assert!(
            annotated.contains("cat INTEGER, -- sample values: 0"),
            "{annotated}"
        );

        // 5 of 8 values are shown as examples, not as the whole set.
        let small = s.table("small").unwrap();
        let tier = small.column("tier").unwrap();
        assert!(!small.sampled());
        assert!(tier.categorical);
        assert_eq!((tier.distinct_count, tier.samples.len()), (8, 5));
        assert!(!small.all_values_shown(tier));
        assert!(text.contains("8 distinct    e.g. 'tier0'"), "{text}");
        assert!(!text.contains("{'tier0'"), "{text}");
        assert!(
            annotated.contains("tier TEXT -- e.g.: 'tier0'"),
            "{annotated}"
        );
        assert!(!annotated.contains("small ( -- 40 rows;"), "{annotated}");
    }

    #[test]
    fn renders_like_the_original_get_schema() {
        let (_d, db) = fixture();
        let s = introspect(&db).unwrap();
        let text = s.to_create_sql();
        assert!(text.starts_with("CREATE TABLE stores (\n  id INTEGER,\n  city TEXT\n);\n\nCREATE TABLE order items ("), "{text}");
        let annotated = s.to_annotated_sql();
        assert!(
            annotated.contains("store_id INTEGER REFERENCES stores(id),"),
            "{annotated}"
        );
        assert!(
            annotated.contains("-- values: 'bread', 'cake'"),
            "{annotated}"
        );
        assert!(
            annotated.contains("PRIMARY KEY (order_id, line)"),
            "{annotated}"
        );
        assert!(s.to_text().contains("→ stores.id"));
    }
}
