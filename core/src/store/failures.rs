//! Generation calls that produced no pair (a failed LLM call, a prompt that could not be
//! rendered), each with its cause, so a run shows them without placeholder pairs.

use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use super::{ErrorKind, Result, Store, now_rfc3339};

/// A failed generation call to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGenerationFailure {
    pub generator: String,
    pub gold_pair_id: Option<i64>,
    /// The call's identity in the run (see [`super::NewPair::origin_key`]).
    pub origin_key: String,
    pub error_kind: ErrorKind,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationFailure {
    pub id: i64,
    pub run_id: i64,
    pub generator: String,
    pub gold_pair_id: Option<i64>,
    pub origin_key: String,
    /// `None` only for a failure carried over from a version-1 store that did not record it.
    pub error_kind: Option<ErrorKind>,
    pub error: String,
    pub created_at: String,
}

fn failure_from_row(r: &Row<'_>) -> rusqlite::Result<GenerationFailure> {
    Ok(GenerationFailure {
        id: r.get(0)?,
        run_id: r.get(1)?,
        generator: r.get(2)?,
        gold_pair_id: r.get(3)?,
        origin_key: r.get(4)?,
        error_kind: r.get(5)?,
        error: r.get(6)?,
        created_at: r.get(7)?,
    })
}

impl Store {
    /// Records a failed call; a call already recorded for the run (a resumed run that failed
    /// again) is kept as first recorded. Returns whether it was new.
    pub fn record_generation_failure(&self, run_id: i64, f: &NewGenerationFailure) -> Result<bool> {
        let n = self.lock().execute(
            "INSERT INTO generation_failures
                 (run_id, generator, gold_pair_id, origin_key, error_kind, error, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (run_id, origin_key) DO NOTHING",
            params![
                run_id,
                f.generator,
                f.gold_pair_id,
                f.origin_key,
                f.error_kind,
                f.error,
                now_rfc3339()
            ],
        )?;
        Ok(n == 1)
    }

    /// Forgets one failed call of a run (a resumed run asked it again and it was answered);
    /// returns whether there was one.
    pub fn forget_generation_failure(&self, run_id: i64, origin_key: &str) -> Result<bool> {
        let n = self.lock().execute(
            "DELETE FROM generation_failures WHERE run_id = ?1 AND origin_key = ?2",
            params![run_id, origin_key],
        )?;
        Ok(n == 1)
    }

    /// Forgets a run's failed calls of these kinds (a resumed run asks them again); returns
    /// how many.
    pub fn clear_generation_failures(&self, run_id: i64, kinds: &[ErrorKind]) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare("DELETE FROM generation_failures WHERE run_id = ?1 AND error_kind = ?2")?;
            for kind in kinds {
                n += stmt.execute(params![run_id, kind])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// A run's failed calls, oldest first.
    pub fn generation_failures(&self, run_id: i64) -> Result<Vec<GenerationFailure>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, run_id, generator, gold_pair_id, origin_key, error_kind, error, created_at
             FROM generation_failures WHERE run_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run_id], failure_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewRun, RunKind};

    #[test]
    fn a_failure_is_recorded_once_per_origin() {
        let store = Store::open_in_memory().unwrap();
        let run = store
            .create_run(&NewRun {
                kind: RunKind::Generate,
                ..Default::default()
            })
            .unwrap();
        let f = NewGenerationFailure {
            generator: "pattern".into(),
            gold_pair_id: None,
            origin_key: "pattern:1:0:call".into(),
            error_kind: ErrorKind::Timeout,
            error: "pattern call failed (timeout): deadline".into(),
        };
        assert!(store.record_generation_failure(run, &f).unwrap());
        let again = NewGenerationFailure {
            error: "second".into(),
            ..f.clone()
        };
        assert!(!store.record_generation_failure(run, &again).unwrap());
        let stored = store.generation_failures(run).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].error_kind, Some(ErrorKind::Timeout));
        assert_eq!(stored[0].error, f.error);
        assert!(store.origins(run).unwrap().contains("pattern:1:0:call"));
    }
}
