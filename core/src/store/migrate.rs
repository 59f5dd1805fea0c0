//! The schema migrations, in order, each applied in one transaction: SQL files, and the Rust
//! steps for data SQL alone cannot move.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{ErrorKind, Result};

/// One step of a migration.
pub(super) enum Step {
    Sql(&'static str),
    Rust(fn(&Transaction<'_>) -> Result<()>),
}

impl Step {
    pub(super) fn apply(&self, tx: &Transaction<'_>) -> Result<()> {
        match self {
            Step::Sql(sql) => Ok(tx.execute_batch(sql)?),
            Step::Rust(f) => f(tx),
        }
    }
}

/// The migrations; `PRAGMA user_version` is the number applied.
pub(super) const MIGRATIONS: &[&[Step]] = &[
    &[Step::Sql(include_str!("migrations/001_initial.sql"))],
    &[
        Step::Sql(include_str!("migrations/002_typed_records.sql")),
        Step::Rust(move_failure_placeholders),
        Step::Sql(
            "ALTER TABLE pairs DROP COLUMN concepts_json;
             ALTER TABLE pairs DROP COLUMN meta_json;",
        ),
    ],
    &[Step::Sql(include_str!("migrations/003_run_leases.sql"))],
    &[Step::Sql(include_str!("migrations/004_llm_servers.sql"))],
    &[Step::Sql(include_str!("migrations/005_review_drafts.sql"))],
    &[Step::Sql(include_str!("migrations/006_queue_index.sql"))],
    &[Step::Sql(include_str!("migrations/007_reviewer.sql"))],
];

/// Version 1 recorded a failed generator or sql-first call as a pair with empty SQL and a
/// made-up question (`(pattern produced no questions)`, `(sql-first simple call failed)`);
/// they move to `generation_failures` with the same run, origin key and time. A placeholder
/// someone reviewed, exported or derived a pair from stays a pair: its history is kept.
fn move_failure_placeholders(tx: &Transaction<'_>) -> Result<()> {
    struct Placeholder {
        id: i64,
        run_id: i64,
        generator: String,
        gold_pair_id: Option<i64>,
        origin_key: String,
        error: Option<String>,
        recorded_kind: Option<String>,
        created_at: String,
    }
    let placeholders: Vec<Placeholder> = {
        let mut stmt = tx.prepare(
            "SELECT id, run_id, generator, parent_gold_id, origin_key, llm_error,
                    json_extract(meta_json, '$.error_kind'), created_at
             FROM pairs p
             WHERE sql = ''
               AND (question LIKE '(% produced no questions)'
                    OR question LIKE '(sql-first % call failed)')
               AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.pair_id = p.id)
               AND NOT EXISTS (SELECT 1 FROM dataset_items d WHERE d.pair_id = p.id)
               AND NOT EXISTS (SELECT 1 FROM pairs c WHERE c.parent_pair_id = p.id)",
        )?;
        stmt.query_map([], |r| {
            Ok(Placeholder {
                id: r.get(0)?,
                run_id: r.get(1)?,
                generator: r.get(2)?,
                gold_pair_id: r.get(3)?,
                origin_key: r.get(4)?,
                error: r.get(5)?,
                recorded_kind: r.get(6)?,
                created_at: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    for p in placeholders {
        let error = p.error.unwrap_or_default();
        let kind = failure_kind(&p.origin_key, p.recorded_kind.as_deref(), &error);
        let exists = tx
            .query_row(
                "SELECT 1 FROM generation_failures WHERE run_id = ?1 AND origin_key = ?2",
                params![p.run_id, p.origin_key],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            tx.execute(
                "INSERT INTO generation_failures
                     (run_id, generator, gold_pair_id, origin_key, error_kind, error, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    p.run_id,
                    p.generator,
                    p.gold_pair_id,
                    p.origin_key,
                    kind,
                    error,
                    p.created_at
                ],
            )?;
        }
        for table in ["validations", "pair_concepts", "pair_tables"] {
            tx.execute(&format!("DELETE FROM {table} WHERE pair_id = ?1"), [p.id])?;
        }
        tx.execute("DELETE FROM pairs WHERE id = ?1", [p.id])?;
    }
    Ok(())
}

/// The kind of a version-1 failure: recorded (sql-first), a prompt that did not render (its
/// origin key ends in `:prompt`), or read from the message (`pattern call failed (timeout): …`).
fn failure_kind(origin_key: &str, recorded: Option<&str>, error: &str) -> Option<ErrorKind> {
    if let Some(k) = recorded {
        return k.parse().ok();
    }
    if origin_key.ends_with(":prompt") {
        return Some(ErrorKind::Prompt);
    }
    let (_, rest) = error.split_once("call failed (")?;
    let (kind, _) = rest.split_once(')')?;
    kind.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_failure_kinds_are_read_back() {
        assert_eq!(
            failure_kind("sql_first:simple:0", Some("timeout"), "x"),
            Some(ErrorKind::Timeout)
        );
        assert_eq!(
            failure_kind("pattern:3:0:prompt", None, "missing variable"),
            Some(ErrorKind::Prompt)
        );
        assert_eq!(
            failure_kind(
                "pattern:3:0:call",
                None,
                "pattern call failed (bad_request): prompt too long"
            ),
            Some(ErrorKind::BadRequest)
        );
        assert_eq!(failure_kind("pattern:3:0:call", None, "no idea"), None);
    }
}
