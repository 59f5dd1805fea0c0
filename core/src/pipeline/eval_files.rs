//! `lode eval-files`: the reference evaluators' batch mode on their own files. Gold lines are
//! `SQL<TAB>db_id`, prediction lines one SQL each (anything after a tab is ignored, as
//! test-suite does), databases at `DIR/<db_id>/<db_id>.sqlite`. Blank lines (SParC/CoSQL
//! interaction breaks) are skipped in both files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::InputError;
use crate::pipeline::eval::{EvalItem, eval_limits};
use crate::sql::{Database, ExecError};

/// The pairs of a gold and a prediction file, with their databases opened.
pub struct EvalFiles {
    pub items: Vec<EvalItem>,
    pub databases: BTreeMap<String, Arc<Database>>,
}

/// Why the files cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalFilesError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Database(ExecError),
}

/// Non-blank lines with their 1-based line numbers.
fn lines(path: &Path) -> Result<Vec<(usize, String)>, InputError> {
    let text = std::fs::read(path).map_err(|e| {
        InputError::new(path, format!("cannot read the file: {e}"), "check the path")
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        InputError::new(path, "the file is not valid UTF-8", "save it as UTF-8").at(line, None)
    })?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect())
}

/// Reads the gold and prediction files and opens every database they name.
pub fn load(
    gold: &Path,
    pred: &Path,
    db_dir: &Path,
    timeout: std::time::Duration,
) -> Result<EvalFiles, EvalFilesError> {
    load_with(gold, pred, &mut |db_id, gline| {
        let path: PathBuf = db_dir.join(db_id).join(format!("{db_id}.sqlite"));
        if !path.exists() {
            return Err(InputError::new(
                gold,
                format!("unknown db_id `{db_id}`: {} does not exist", path.display()),
                "check --db-dir: each database lives at DIR/<db_id>/<db_id>.sqlite",
            )
            .at(gline, None)
            .into());
        }
        Database::open(&path, eval_limits(timeout))
            .map(Arc::new)
            .map_err(EvalFilesError::Database)
    })
}

/// Reads the gold and prediction files and judges every pair on one database (a PostgreSQL
/// server's, say), whatever db_id the gold lines name.
pub fn load_on(gold: &Path, pred: &Path, db: Arc<Database>) -> Result<EvalFiles, EvalFilesError> {
    load_with(gold, pred, &mut |_, _| Ok(Arc::clone(&db)))
}

/// The placeholder in a `--db-url` that stands for each gold line's db_id.
pub const DB_ID_PLACEHOLDER: &str = "{db_id}";

/// Reads the gold and prediction files and judges them on a PostgreSQL server. Without
/// [`DB_ID_PLACEHOLDER`] in `url` every pair runs on that one database; with it, each db_id
/// gets its own connection, the placeholder replaced by the db_id: a database per db_id
/// (`postgres://host/{db_id}`) or a schema per db_id
/// (`postgres://host/spider?options=-c%20search_path%3D{db_id}`). A db_id must then be
/// letters, digits and `_` (it becomes part of a URL). `connected` sees each new connection
/// (to warn about a role that can write).
pub fn load_url(
    gold: &Path,
    pred: &Path,
    url: &str,
    timeout: std::time::Duration,
    connected: &mut dyn FnMut(&Database),
) -> Result<EvalFiles, EvalFilesError> {
    let limits = eval_limits(timeout);
    if !url.contains(DB_ID_PLACEHOLDER) {
        let db =
            Database::connect_url(url, None, limits, false).map_err(EvalFilesError::Database)?;
        connected(&db);
        return load_on(gold, pred, Arc::new(db));
    }
    load_with(gold, pred, &mut |db_id, gline| {
        if db_id.is_empty() || !db_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(InputError::new(
                gold,
                format!(
                    "db_id `{db_id}` cannot stand in for {DB_ID_PLACEHOLDER} in --db-url: only \
                     letters, digits and _ can"
                ),
                "rename the database, or give a --db-url without {db_id} to judge every pair on one database",
            )
            .at(gline, None)
            .into());
        }
        let db = Database::connect_url(&url.replace(DB_ID_PLACEHOLDER, db_id), None, limits, false)
            .map_err(EvalFilesError::Database)?;
        connected(&db);
        Ok(Arc::new(db))
    })
}

/// Gives the database of a db_id named on a gold line (the line for errors).
type Opener<'a> = dyn FnMut(&str, usize) -> Result<Arc<Database>, EvalFilesError> + 'a;

/// Reads the files; `open(db_id, gold line)` gives each database the first time it is named.
fn load_with(gold: &Path, pred: &Path, open: &mut Opener<'_>) -> Result<EvalFiles, EvalFilesError> {
    let gold_lines = lines(gold)?;
    let pred_lines = lines(pred)?;
    if pred_lines.len() != gold_lines.len() {
        let (line, what) = if pred_lines.len() < gold_lines.len() {
            let missing = gold_lines[pred_lines.len()].0;
            (
                pred_lines.last().map_or(1, |l| l.0),
                format!(
                    "{} has {} predictions but {} has {} gold queries; gold line {missing} has no prediction",
                    pred.display(),
                    pred_lines.len(),
                    gold.display(),
                    gold_lines.len()
                ),
            )
        } else {
            (
                pred_lines[gold_lines.len()].0,
                format!(
                    "{} has {} predictions but {} has only {} gold queries",
                    pred.display(),
                    pred_lines.len(),
                    gold.display(),
                    gold_lines.len()
                ),
            )
        };
        return Err(InputError::new(
            pred,
            what,
            "give exactly one prediction line per gold line, in the same order",
        )
        .at(line, None)
        .into());
    }
    let mut databases: BTreeMap<String, Arc<Database>> = BTreeMap::new();
    let mut items = Vec::with_capacity(gold_lines.len());
    for (index, ((gline, g), (_, p))) in gold_lines.iter().zip(&pred_lines).enumerate() {
        let Some((sql, db_id)) = g.trim().rsplit_once('\t') else {
            return Err(InputError::new(
                gold,
                "a gold line must be `SQL<TAB>db_id`; this one has no tab",
                "separate the query and the database id with a tab",
            )
            .at(*gline, None)
            .into());
        };
        let db_id = db_id.trim().to_string();
        if !databases.contains_key(&db_id) {
            let db = open(&db_id, *gline)?;
            databases.insert(db_id.clone(), db);
        }
        let pred_sql = p.trim().split('\t').next().unwrap_or("").to_string();
        items.push(EvalItem {
            index,
            db_id,
            gold_sql: sql.trim().to_string(),
            pred_sql: Ok(pred_sql),
            question: String::new(),
        });
    }
    Ok(EvalFiles { items, databases })
}
