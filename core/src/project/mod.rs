//! A lode project: its inputs (config, glossary, gold and eval sets), the schema of its
//! database, and the generated demo project.

pub mod check;
pub mod demo;
pub mod inputs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::diag::{InputError, Warning};
use crate::sql::schema::{Schema, introspect};
use crate::sql::{Database, ExecError};

pub use inputs::{GlossaryEntry, GoldPair, format_glossary, load_glossary, load_gold_set};

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Database(#[from] ExecError),
    #[error(transparent)]
    Schema(#[from] crate::sql::schema::IntrospectError),
}

/// The project's database: its SQLite file (`database.path`), or its PostgreSQL database
/// (`database.url`, the password from `database.password_env` or `PGPASSWORD`, never from
/// the file; TLS roots plus `database.ssl_root_cert`); an error says how to set it.
pub fn open_database(config: &Config) -> Result<Database, ProjectError> {
    if let Some(url) = &config.database.url {
        if config.database.path.is_some() {
            return Err(InputError::new(
                &config.source,
                "database.path and database.url are both set",
                "keep one: path for a SQLite file, url for a PostgreSQL database",
            )
            .into());
        }
        if url_has_password(url) {
            return Err(InputError::new(
                &config.source,
                "database.url holds a password",
                "remove it from the URL and put it in an environment variable: PGPASSWORD, or the \
                 one database.password_env names",
            )
            .into());
        }
        let pg = crate::sql::pg::PgDatabase::connect_tls(
            url,
            config.database.password_env.as_deref(),
            config.database.ssl_root_cert.as_deref(),
            config.execution.limits(),
            config.database.refuse_writable,
        )?;
        return Ok(Database::from_target(Box::new(pg)));
    }
    Ok(Database::open(
        config.database_path()?,
        config.execution.limits(),
    )?)
}

/// Whether a database URL carries a password (`user:secret@`).
pub fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .is_some_and(|(creds, _)| creds.contains(':'))
}

/// Everything a stage needs, loaded and checked.
pub struct Project {
    pub config: Config,
    pub db: Arc<Database>,
    pub schema: Schema,
    pub glossary: Vec<GlossaryEntry>,
    pub gold: Vec<GoldPair>,
    pub eval: Vec<GoldPair>,
    /// No separate eval set: the gold set is used for evaluation too.
    pub eval_is_gold: bool,
    pub warnings: Vec<Warning>,
}

/// Hashes of the inputs a run was made from, so a later change is noticed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputHashes {
    pub config: String,
    pub schema: String,
    pub glossary: String,
    pub gold: String,
    pub eval: String,
}

impl Project {
    /// Loads the project whose config file is `config_path`.
    pub fn load(config_path: &Path) -> Result<Project, ProjectError> {
        let config = Config::load(config_path)?;
        Self::from_config(config)
    }

    pub fn from_config(config: Config) -> Result<Project, ProjectError> {
        let mut warnings = config.warnings.clone();
        let db = open_database(&config)?;
        let schema = introspect(&db)?;
        if schema.tables.is_empty() {
            // Nothing could be generated, validated or evaluated over it.
            return Err(InputError::new(
                db.path(),
                "the database has no tables (that this role may read)",
                format!(
                    "point database.path (a SQLite file) or database.url (a PostgreSQL database) in {} at the database that holds your data",
                    config.source.display()
                ),
            )
            .into());
        }
        let glossary = match &config.paths.glossary {
            Some(p) => {
                let loaded = load_glossary(p)?;
                warnings.extend(loaded.warnings);
                loaded.items
            }
            None => Vec::new(),
        };
        let gold = load_gold_set(config.gold_path()?)?;
        warnings.extend(gold.warnings);
        let (eval, eval_is_gold) = match &config.paths.eval_set {
            Some(p) => {
                let loaded = load_gold_set(p)?;
                warnings.extend(loaded.warnings);
                (loaded.items, false)
            }
            None => (gold.items.clone(), true),
        };
        Ok(Project {
            config,
            db: Arc::new(db),
            schema,
            glossary,
            gold: gold.items,
            eval,
            eval_is_gold,
            warnings,
        })
    }

    /// The project directory (where config.yml lives).
    pub fn dir(&self) -> &Path {
        &self.config.base_dir
    }

    /// Where the workspace store lives.
    pub fn store_path(&self) -> PathBuf {
        self.dir().join(".lode").join("lode.db")
    }

    /// Hashes of the config, schema, glossary, gold and eval sets as loaded.
    pub fn input_hashes(&self) -> InputHashes {
        let file_hash = |p: Option<&Path>| {
            p.and_then(|p| std::fs::read(p).ok())
                .map_or_else(String::new, |b| sha256_hex(&b))
        };
        InputHashes {
            config: file_hash(Some(&self.config.source)),
            schema: sha256_hex(self.schema.to_create_sql().as_bytes()),
            glossary: file_hash(self.config.paths.glossary.as_deref()),
            gold: file_hash(self.config.paths.gold_test_set.as_deref()),
            eval: file_hash(self.config.eval_path().ok()),
        }
    }
}

impl Project {
    /// Opens the project's workspace store (creating it), marks runs a crash left "running"
    /// as interrupted, and records the inputs: a snapshot of their hashes and the gold and
    /// eval sets. Returns the store and the snapshot id.
    pub fn open_store(&self) -> Result<(crate::store::Store, i64), crate::store::StoreError> {
        let store = crate::store::Store::open(&self.store_path())?;
        store.mark_interrupted_runs()?;
        let h = self.input_hashes();
        let snapshot =
            store.record_snapshot(&h.config, &h.schema, &h.glossary, &h.gold, &h.eval)?;
        let pairs = |set: &[GoldPair]| -> Vec<(String, String)> {
            set.iter()
                .map(|p| (p.question.clone(), p.sql.clone()))
                .collect()
        };
        store.replace_gold_set(crate::store::SetName::Gold, snapshot, &pairs(&self.gold))?;
        store.replace_gold_set(crate::store::SetName::Eval, snapshot, &pairs(&self.eval))?;
        Ok((store, snapshot))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
