//! The workspace store: one SQLite database per project (`.lode/lode.db`, WAL, versioned
//! migrations) that every stage writes and every face reads. Each write is one transaction
//! with `synchronous=FULL`, so a `kill -9` at any moment loses nothing reported saved.

mod drafts;
mod enums;
mod evals;
mod failures;
mod jobs;
mod leases;
mod llm;
mod migrate;
mod pairs;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

pub use enums::{
    ErrorKind, JobStatus, PairStatus, ReviewAction, Reviewer, RunKind, RunStatus, SetName,
    TuneProvider,
};
pub use evals::{EvalCase, EvalRun, NewEvalCase};
pub use failures::{GenerationFailure, NewGenerationFailure};
pub use jobs::{Dataset, Job, JobEvent, JobProgress};
pub use leases::{LEASE_HEARTBEAT, LEASE_STALE_AFTER, LeaseOwner, RunLease, host_name, unix_ms};
pub use llm::{LlmCallStats, NewLlmCall, cache_key};
pub use pairs::{
    NewPair, NewRun, NewValidation, Pair, PairAnalysis, PairFilter, PairNotes, PairSummary,
    QueueQuery, QueueSort, Review, Run, ValidationAttempt,
};

use migrate::MIGRATIONS;

/// The store's schema version this lode writes (`PRAGMA user_version` after migration).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a store operation waits for another process's write to finish before it fails.
/// Waiting is fine (writes are short transactions); failing a reviewer's decision is not.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Switches a file store to WAL (a no-op read when it already is). Two processes creating a
/// store at once both try; the switch needs a lock SQLite does not wait for from inside the
/// statement, so a busy answer is retried until [`BUSY_TIMEOUT`].
fn ensure_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let attempt = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .and_then(|mode| {
                if mode.eq_ignore_ascii_case("wal") {
                    Ok(mode)
                } else {
                    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                }
            });
        match attempt {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) if std::time::Instant::now() >= deadline => {
                return Err(StoreError::Invalid(format!(
                    "could not switch to WAL journaling (got {mode})"
                )));
            }
            Err(e) if !is_busy(&e) || std::time::Instant::now() >= deadline => {
                return Err(e.into());
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Applies the migrations due, each in its own exclusive transaction that reads the version
/// again inside: when several processes open a new store at once, one migrates and the
/// others wait, then find nothing left to do.
fn migrate(conn: &mut Connection, path: Option<&Path>) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let newer = |found: i64| StoreError::Newer {
        path: path.map(Path::to_path_buf).unwrap_or_default(),
        found,
        known,
    };
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > known {
        return Err(newer(version));
    }
    if version == known {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(newer(version));
        }
        let Some(steps) = MIGRATIONS.get(version as usize) else {
            return Ok(());
        };
        for step in *steps {
            step.apply(&tx)?;
        }
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the workspace store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "the workspace store {path} was written by a newer lode (schema version {found}, this lode knows {known}); upgrade lode"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("workspace store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("no {what} with id {id} in the workspace store")]
    NotFound { what: &'static str, id: i64 },
    #[error("workspace store: {0}")]
    Invalid(String),
    #[error(
        "run {run_id} is being written by pid {pid} on host {host} (heartbeat {heartbeat_secs} s ago); wait for it or pass --new"
    )]
    RunBusy {
        run_id: i64,
        pid: i64,
        host: String,
        heartbeat_secs: u64,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the store; share it in an `Arc` between threads.
pub struct Store {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

/// Hashes of the inputs at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSnapshot {
    pub id: i64,
    pub created_at: String,
    pub config_hash: String,
    pub schema_hash: String,
    pub glossary_hash: String,
    pub gold_hash: String,
    pub eval_hash: String,
}

/// A gold or eval pair as stored for a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredGold {
    pub id: i64,
    pub set_name: SetName,
    pub position: i64,
    pub question: String,
    pub sql: String,
    pub snapshot_id: i64,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let open_err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        let store = Store {
            conn: Mutex::new(conn),
            path: Some(path.to_path_buf()),
        };
        store.configure(true).map_err(|e| match e {
            StoreError::Sqlite(e) => open_err(e.to_string()),
            other => other,
        })?;
        Ok(store)
    }

    /// A store in memory, for tests and dry runs.
    pub fn open_in_memory() -> Result<Store> {
        let store = Store {
            conn: Mutex::new(Connection::open_in_memory()?),
            path: None,
        };
        store.configure(false)?;
        Ok(store)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Sets the connection up and brings the schema up to date. Nothing is written unless a
    /// migration is due: the pragmas are per connection, and switching to WAL is done once,
    /// by whichever process gets there first (the others wait and see it done).
    fn configure(&self, wal: bool) -> Result<()> {
        let mut conn = self.lock();
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Every transaction this store opens writes: take the write lock at BEGIN, where the
        // busy handler waits for it, not at the first write, where SQLite fails at once when
        // another process committed since this one started reading (SQLITE_BUSY_SNAPSHOT).
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        if wal {
            ensure_wal(&conn)?;
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        migrate(&mut conn, self.path.as_deref())
    }

    /// The connection; a panic in another thread does not poison the store for good.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version applied.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// The journal mode in force (`wal` for a file store).
    pub fn journal_mode(&self) -> Result<String> {
        Ok(self
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?)
    }

    // --- input snapshots and gold sets ----------------------------------------------------

    /// Records the input hashes; returns the latest snapshot's id when nothing changed.
    pub fn record_snapshot(
        &self,
        config: &str,
        schema: &str,
        glossary: &str,
        gold: &str,
        eval: &str,
    ) -> Result<i64> {
        let mut conn = self.lock();
        // Inputs unchanged (the usual open): a read, no write lock taken.
        if let Some(id) = same_snapshot(&conn, [config, schema, glossary, gold, eval])? {
            return Ok(id);
        }
        // Changed: look again under the write lock, so two processes opening at once record
        // one snapshot, not two.
        let tx = conn.transaction()?;
        if let Some(id) = same_snapshot(&tx, [config, schema, glossary, gold, eval])? {
            return Ok(id);
        }
        tx.execute(
            "INSERT INTO input_snapshots
             (created_at, config_hash, schema_hash, glossary_hash, gold_hash, eval_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![now_rfc3339(), config, schema, glossary, gold, eval],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    pub fn latest_snapshot(&self) -> Result<Option<InputSnapshot>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT id, created_at, config_hash, schema_hash, glossary_hash, gold_hash,
                        eval_hash FROM input_snapshots ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(InputSnapshot {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        config_hash: r.get(2)?,
                        schema_hash: r.get(3)?,
                        glossary_hash: r.get(4)?,
                        gold_hash: r.get(5)?,
                        eval_hash: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// Stores the gold (or eval) set of a snapshot; idempotent for the same snapshot.
    /// Returns the ids in input order.
    pub fn replace_gold_set(
        &self,
        set_name: SetName,
        snapshot_id: i64,
        pairs: &[(String, String)],
    ) -> Result<Vec<i64>> {
        let mut conn = self.lock();
        // Stored already (the usual open): a read, no write lock taken.
        if let Some(ids) = same_gold_set(&conn, set_name, snapshot_id, pairs)? {
            return Ok(ids);
        }
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(pairs.len());
        {
            let mut insert = tx.prepare(
                "INSERT INTO gold_pairs (set_name, position, question, sql, snapshot_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (set_name, snapshot_id, position) DO UPDATE
                 SET question = excluded.question, sql = excluded.sql
                 RETURNING id",
            )?;
            for (i, (q, s)) in pairs.iter().enumerate() {
                ids.push(
                    insert
                        .query_row(params![set_name, i as i64, q, s, snapshot_id], |r| r.get(0))?,
                );
            }
            tx.execute(
                "DELETE FROM gold_pairs WHERE set_name = ?1 AND snapshot_id = ?2 AND position >= ?3
                 AND id NOT IN (SELECT parent_gold_id FROM pairs WHERE parent_gold_id IS NOT NULL)",
                params![set_name, snapshot_id, pairs.len() as i64],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// The gold (or eval) set of the latest snapshot that has one.
    pub fn gold_set(&self, set_name: SetName) -> Result<Vec<StoredGold>> {
        self.gold_set_where(
            "snapshot_id = (SELECT max(snapshot_id) FROM gold_pairs WHERE set_name = ?1)",
            params![set_name],
        )
    }

    /// The gold (or eval) set as recorded with a snapshot (empty when it has none).
    pub fn gold_set_of(&self, set_name: SetName, snapshot_id: i64) -> Result<Vec<StoredGold>> {
        self.gold_set_where("snapshot_id = ?2", params![set_name, snapshot_id])
    }

    fn gold_set_where(
        &self,
        snapshot: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<StoredGold>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, set_name, position, question, sql, snapshot_id FROM gold_pairs
             WHERE set_name = ?1 AND {snapshot}
             ORDER BY position"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok(StoredGold {
                id: r.get(0)?,
                set_name: r.get(1)?,
                position: r.get(2)?,
                question: r.get(3)?,
                sql: r.get(4)?,
                snapshot_id: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The latest snapshot's id when its hashes are these (config, schema, glossary, gold, eval).
fn same_snapshot(conn: &Connection, hashes: [&str; 5]) -> Result<Option<i64>> {
    let latest: Option<(i64, [String; 5])> = conn
        .query_row(
            "SELECT id, config_hash, schema_hash, glossary_hash, gold_hash, eval_hash
             FROM input_snapshots ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                ))
            },
        )
        .optional()?;
    Ok(latest.and_then(|(id, stored)| (stored == hashes.map(str::to_string)).then_some(id)))
}

/// The ids of a snapshot's gold (or eval) set when it holds exactly these pairs, in order.
fn same_gold_set(
    conn: &Connection,
    set_name: SetName,
    snapshot_id: i64,
    pairs: &[(String, String)],
) -> Result<Option<Vec<i64>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, position, question, sql FROM gold_pairs
         WHERE set_name = ?1 AND snapshot_id = ?2 ORDER BY position",
    )?;
    let stored: Vec<(i64, i64, String, String)> = stmt
        .query_map(params![set_name, snapshot_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let same = stored.len() == pairs.len()
        && stored
            .iter()
            .zip(pairs)
            .enumerate()
            .all(|(i, ((_, pos, q, s), (pq, ps)))| *pos == i as i64 && q == pq && s == ps);
    Ok(same.then(|| stored.into_iter().map(|(id, ..)| id).collect()))
}

/// The current UTC time as RFC 3339 with milliseconds (`2026-11-25T02:30:00.123Z`).
pub fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(now.as_secs() as i64, now.subsec_millis())
}

/// Formats seconds since the epoch (UTC) with the days-to-civil algorithm.
pub fn format_rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_civil_dates() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(
            format_rfc3339(1_795_574_096, 999),
            "2026-11-25T02:34:56.999Z"
        );
        assert!(now_rfc3339().starts_with("20"));
    }

    #[test]
    fn snapshots_are_not_duplicated() {
        let store = Store::open_in_memory().unwrap();
        let a = store.record_snapshot("c", "s", "g", "go", "e").unwrap();
        let b = store.record_snapshot("c", "s", "g", "go", "e").unwrap();
        assert_eq!(a, b);
        let c = store.record_snapshot("c2", "s", "g", "go", "e").unwrap();
        assert_ne!(a, c);
        assert_eq!(store.latest_snapshot().unwrap().unwrap().config_hash, "c2");
    }

    #[test]
    fn gold_sets_are_idempotent_per_snapshot() {
        let store = Store::open_in_memory().unwrap();
        let snap = store.record_snapshot("c", "s", "g", "go", "e").unwrap();
        let pairs = vec![
            ("q1".to_string(), "SELECT 1".to_string()),
            ("q2".to_string(), "SELECT 2".to_string()),
        ];
        let ids = store.replace_gold_set(SetName::Gold, snap, &pairs).unwrap();
        let again = store.replace_gold_set(SetName::Gold, snap, &pairs).unwrap();
        assert_eq!(ids, again);
        let stored = store.gold_set(SetName::Gold).unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[1].question, "q2");
        assert_eq!(stored[1].set_name, SetName::Gold);
        assert!(store.gold_set(SetName::Eval).unwrap().is_empty());
        // Only gold and eval exist: the type refuses other names, and so does the schema.
        assert!("other".parse::<SetName>().is_err());
        assert!(
            store
                .lock()
                .execute(
                    "INSERT INTO gold_pairs (set_name, position, question, sql, snapshot_id)
                     VALUES ('other', 0, 'q', 'SELECT 1', ?1)",
                    [snap],
                )
                .is_err()
        );
    }
}
