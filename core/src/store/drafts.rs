//! SQL drafts of the review screen: an unsaved edit of a pair, kept across pair changes and
//! quitting until it is saved or discarded.

use rusqlite::params;

use super::{Result, Store, now_rfc3339};

impl Store {
    /// Keeps (or replaces) the draft of a pair.
    pub fn save_draft(&self, pair_id: i64, sql: &str) -> Result<()> {
        self.lock().execute(
            "INSERT INTO review_drafts (pair_id, sql, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (pair_id) DO UPDATE SET sql = excluded.sql,
                                                 updated_at = excluded.updated_at",
            params![pair_id, sql, now_rfc3339()],
        )?;
        Ok(())
    }

    /// Forgets the draft of a pair; whether there was one.
    pub fn drop_draft(&self, pair_id: i64) -> Result<bool> {
        Ok(self
            .lock()
            .execute("DELETE FROM review_drafts WHERE pair_id = ?1", [pair_id])?
            == 1)
    }

    /// Every draft: (pair id, SQL).
    pub fn drafts(&self) -> Result<Vec<(i64, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT pair_id, sql FROM review_drafts ORDER BY pair_id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_are_kept_replaced_and_dropped() {
        let store = Store::open_in_memory().unwrap();
        store
            .lock()
            .execute_batch(
                "INSERT INTO runs (id, kind, status, profile, config_json, created_at)
                 VALUES (1, 'generate', 'completed', 'p', '{}', 'now');
                 INSERT INTO pairs (id, run_id, origin_key, generator, question, sql, status,
                                    created_at, updated_at)
                 VALUES (7, 1, 'o', 'pattern', 'q', 'SELECT 1', 'valid', 'now', 'now');",
            )
            .unwrap();
        store.save_draft(7, "SELECT 2").unwrap();
        store.save_draft(7, "SELECT 3").unwrap();
        assert_eq!(store.drafts().unwrap(), vec![(7, "SELECT 3".to_string())]);
        assert!(store.drop_draft(7).unwrap());
        assert!(!store.drop_draft(7).unwrap());
        assert!(store.drafts().unwrap().is_empty());
    }
}
