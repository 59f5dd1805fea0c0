//! Neighbour databases, the test-suite idea for the user's own database: K variants with the
//! same schema, some rows left out (children of a left-out parent go too, so foreign keys still
//! hold) and the values of ordinary columns shuffled among their rows (so every value stays
//! in its column's domain and unique columns stay unique). A prediction that matches the gold
//! on the original but not on a neighbour was right by accident: it encodes this data, not the
//! question. Variants are built once per version of the database and kept beside the store
//! (`.lode/neighbours/<key>/`), never next to the user's file; the user's database is only read.
//!
//! A variant is used for a gold query only where that query still returns rows on it, so a
//! neighbour never fails a prediction because the gold itself became empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, params};

use crate::pipeline::eval::{EvalItem, EvalOptions, ItemResult, evaluate_items};
use crate::sql::compare::{Profile, Reason};
use crate::sql::{Database, ExecLimits, SqlDialect};
use crate::synth::Rng;

/// Why the neighbours could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NeighbourError {
    #[error("cannot build neighbour databases in {dir}: {message}")]
    Build { dir: PathBuf, message: String },
}

fn build_error(dir: &Path, e: impl std::fmt::Display) -> NeighbourError {
    NeighbourError::Build {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    }
}

/// Where the neighbours of `source` live under `store_dir`: a folder named by the database's
/// path, size and modification time, so a changed database gets new neighbours.
pub fn folder(store_dir: &Path, source: &Path) -> PathBuf {
    let meta = std::fs::metadata(source).ok();
    let stamp = format!(
        "{}|{}|{:?}",
        source.display(),
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok())
    );
    store_dir
        .join("neighbours")
        .join(format!("{:016x}", crate::synth::hash_str(&stamp)))
}

/// Whether neighbour databases can be built for `db`: they are modified copies of a SQLite
/// file, and lode never writes to a server, so a PostgreSQL target has none. The error says
/// so, for the caller to refuse `--neighbours` before any work is done.
pub fn supported(db: &Database) -> Result<(), String> {
    if db.dialect_name() == "sqlite" {
        Ok(())
    } else {
        Err(format!(
            "--neighbours needs a SQLite database: neighbour databases are modified copies of \
             the file, and lode never writes to a {} server ({}); leave --neighbours out, or \
             evaluate on a SQLite copy of the data",
            db.dialect_name(),
            db.path().display()
        ))
    }
}

/// The `k` neighbours of `source`, built into `dir` unless they are there already, opened
/// read-only with `limits`.
pub fn neighbours(
    source: &Path,
    dir: &Path,
    k: usize,
    limits: ExecLimits,
) -> Result<Vec<Arc<Database>>, NeighbourError> {
    std::fs::create_dir_all(dir).map_err(|e| build_error(dir, e))?;
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let path = dir.join(format!("n{i}.sqlite"));
        let done = dir.join(format!("n{i}.done"));
        if !done.exists() {
            // A name of this process's own, so two evaluations building at once do not
            // write one file; the rename makes the finished variant appear whole.
            let tmp = dir.join(format!("n{i}.{}.part", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            build_one(source, &tmp, 0x4E45_4947 + i as u64).map_err(|e| build_error(dir, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| build_error(dir, e))?;
            std::fs::write(&done, b"").map_err(|e| build_error(dir, e))?;
        }
        out.push(Arc::new(
            Database::open(&path, limits).map_err(|e| build_error(dir, e))?,
        ));
    }
    Ok(out)
}

/// One neighbour: a copy of `source` (by `VACUUM INTO`, from a read-only connection) with
/// rows left out and columns shuffled, deterministically from `seed`.
fn build_one(source: &Path, dest: &Path, seed: u64) -> rusqlite::Result<()> {
    {
        let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        src.execute("VACUUM INTO ?1", params![dest.to_string_lossy()])?;
    }
    let conn = Connection::open(dest)?;
    conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA journal_mode = OFF;")?;
    // Triggers would spread the changes; the copy does not need them.
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for t in triggers {
        conn.execute_batch(&format!("DROP TRIGGER \"{}\"", t.replace('"', "\"\"")))?;
    }
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND sql NOT LIKE '%WITHOUT ROWID%'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut rng = Rng::new(seed);
    let tx = conn.unchecked_transaction()?;
    // About a fifth of each table's rows left out, by a hash of the rowid and the seed.
    for t in &tables {
        let cut = 15 + rng.next() % 11;
        let salt = (rng.next() % 1_000_003) as i64;
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE ((rowid * 2654435761 + ?1) % 1000003) % 100 < ?2",
                q(t)
            ),
            params![salt, cut as i64],
        )?;
    }
    // Children of left-out parents go too, until every foreign key holds again.
    let mut fks: Vec<(String, String, String, String)> = Vec::new();
    for t in &tables {
        let mut stmt = tx.prepare(&format!("PRAGMA foreign_key_list({})", q(t)))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (seq, parent, from, to) = row?;
            // Single-column keys only; a composite key is left as it is.
            if seq == 0 {
                let to = match to {
                    Some(to) => to,
                    None => primary_key(&tx, &parent)?.unwrap_or_else(|| "rowid".into()),
                };
                fks.push((t.clone(), from, parent, to));
            }
        }
    }
    for _ in 0..16 {
        let mut changed = 0;
        for (child, from, parent, to) in &fks {
            changed += tx
                .execute(
                    &format!(
                        "DELETE FROM {c} WHERE {f} IS NOT NULL AND {f} NOT IN (SELECT {to} FROM {p})",
                        c = q(child),
                        f = q(from),
                        p = q(parent),
                        to = q(to)
                    ),
                    [],
                )
                .unwrap_or(0);
        }
        if changed == 0 {
            break;
        }
    }
    // Ordinary columns (not keys, not indexed) shuffled among their rows.
    for t in &tables {
        let keys = key_columns(&tx, t, &fks)?;
        let cols: Vec<String> = tx
            .prepare(&format!("PRAGMA table_info({})", q(t)))?
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|c| !keys.iter().any(|k| k.eq_ignore_ascii_case(c)))
            .collect();
        let rows: i64 =
            tx.query_row(&format!("SELECT count(*) FROM {}", q(t)), [], |r| r.get(0))?;
        if !(2..=200_000).contains(&rows) {
            continue;
        }
        for c in cols {
            // Half the columns, so some relations between columns survive.
            if rng.next().is_multiple_of(2) {
                continue;
            }
            shuffle_column(&tx, t, &c, &mut rng).ok();
        }
    }
    tx.commit()?;
    Ok(())
}

fn primary_key(conn: &Connection, table: &str) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare(&format!(
        "PRAGMA table_info(\"{}\")",
        table.replace('"', "\"\"")
    ))?;
    let pk: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(5)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|(k, _)| *k > 0)
        .collect();
    Ok(match pk.as_slice() {
        [(_, name)] => Some(name.clone()),
        _ => None,
    })
}

/// Primary-key, foreign-key (either end) and indexed columns of a table.
fn key_columns(
    conn: &Connection,
    table: &str,
    fks: &[(String, String, String, String)],
) -> rusqlite::Result<Vec<String>> {
    let q = format!("\"{}\"", table.replace('"', "\"\""));
    let mut keys: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({q})"))?
        .query_map([], |r| Ok((r.get::<_, i64>(5)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|(k, _)| *k > 0)
        .map(|(_, n)| n)
        .collect();
    for (child, from, parent, to) in fks {
        if child == table {
            keys.push(from.clone());
        }
        if parent == table {
            keys.push(to.clone());
        }
    }
    let indexes: Vec<String> = conn
        .prepare(&format!("PRAGMA index_list({q})"))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<Vec<_>, _>>()?;
    for i in indexes {
        let cols: Vec<String> = conn
            .prepare(&format!(
                "PRAGMA index_info(\"{}\")",
                i.replace('"', "\"\"")
            ))?
            .query_map([], |r| r.get::<_, Option<String>>(2))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        keys.extend(cols);
    }
    Ok(keys)
}

/// The column's values dealt back to its rows in a shuffled order.
fn shuffle_column(
    conn: &Connection,
    table: &str,
    column: &str,
    rng: &mut Rng,
) -> rusqlite::Result<()> {
    let (t, c) = (
        format!("\"{}\"", table.replace('"', "\"\"")),
        format!("\"{}\"", column.replace('"', "\"\"")),
    );
    let mut rows: Vec<(i64, rusqlite::types::Value)> = conn
        .prepare(&format!("SELECT rowid, {c} FROM {t}"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut values: Vec<rusqlite::types::Value> = rows.iter().map(|r| r.1.clone()).collect();
    rng.shuffle(&mut values);
    let mut update = conn.prepare(&format!("UPDATE {t} SET {c} = ?1 WHERE rowid = ?2"))?;
    for ((rowid, _), v) in rows.drain(..).zip(values) {
        update.execute(params![v, rowid])?;
    }
    Ok(())
}

/// Re-judges the predictions `results` found correct on each neighbour where the gold query
/// still returns rows; one that fails on a neighbour becomes wrong with the reason
/// `right_by_accident`. Returns how many did.
pub fn recheck(
    items: &[EvalItem],
    results: &mut [ItemResult],
    db_id: &str,
    variants: &[Arc<Database>],
    profile: &Profile,
    options: &EvalOptions,
) -> usize {
    let mut accidents = 0;
    let correct: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.verdict.correct && r.db_id == db_id)
        .map(|(i, _)| i)
        .collect();
    if correct.is_empty() {
        return 0;
    }
    let by_index: BTreeMap<usize, &EvalItem> = items.iter().map(|i| (i.index, i)).collect();
    for (v, db) in variants.iter().enumerate() {
        let mut databases = BTreeMap::new();
        databases.insert(db_id.to_string(), Arc::clone(db));
        let subset: Vec<EvalItem> = correct
            .iter()
            .filter(|&&i| results[i].verdict.correct)
            .filter_map(|&i| by_index.get(&results[i].index).copied())
            // Only where the gold query still says something on this neighbour.
            .filter(|item| {
                profile
                    .gold_queries(&item.gold_sql, SqlDialect::from_name(db.dialect_name()))
                    .first()
                    .is_some_and(|g| db.query(g).is_ok_and(|r| !r.rows.is_empty()))
            })
            .cloned()
            .collect();
        if subset.is_empty() {
            continue;
        }
        let options = EvalOptions {
            preview_rows: 0,
            ..options.clone()
        };
        for r in evaluate_items(&subset, &databases, profile, &options, &|_| {}) {
            if r.verdict.correct {
                continue;
            }
            if let Some(orig) = results.iter_mut().find(|x| x.index == r.index)
                && orig.verdict.correct
            {
                orig.verdict.correct = false;
                orig.verdict.reason = Some(Reason::RightByAccident {
                    neighbour: v + 1,
                    detail: r
                        .verdict
                        .reason
                        .as_ref()
                        .map_or_else(|| "the results differ".into(), Reason::describe),
                });
                accidents += 1;
            }
        }
    }
    accidents
}
