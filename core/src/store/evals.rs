//! Evaluation runs with their per-case verdicts, and stored analyses.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Result, RunStatus, Store, StoreError, now_rfc3339};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRun {
    pub id: i64,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub model: String,
    pub profile: String,
    pub status: RunStatus,
    pub eval_set_hash: Option<String>,
    pub config_json: String,
    pub summary_json: Option<String>,
}

/// One evaluated question to record.
#[derive(Debug, Clone, Default)]
pub struct NewEvalCase {
    pub position: i64,
    pub question: String,
    pub gold_sql: String,
    pub pred_sql: Option<String>,
    pub raw_reply: Option<String>,
    pub correct: bool,
    pub reason: Option<String>,
    pub hardness: Option<String>,
    pub detail_json: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalCase {
    pub id: i64,
    pub eval_run_id: i64,
    pub position: i64,
    pub question: String,
    pub gold_sql: String,
    pub pred_sql: Option<String>,
    pub raw_reply: Option<String>,
    pub correct: bool,
    pub reason: Option<String>,
    pub hardness: Option<String>,
    pub detail_json: Option<String>,
}

const RUN_COLUMNS: &str = "id, created_at, finished_at, model, profile, status, eval_set_hash, \
                           config_json, summary_json";

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<EvalRun> {
    Ok(EvalRun {
        id: r.get(0)?,
        created_at: r.get(1)?,
        finished_at: r.get(2)?,
        model: r.get(3)?,
        profile: r.get(4)?,
        status: r.get(5)?,
        eval_set_hash: r.get(6)?,
        config_json: r.get(7)?,
        summary_json: r.get(8)?,
    })
}

impl Store {
    pub fn create_eval_run(
        &self,
        model: &str,
        profile: &str,
        eval_set_hash: Option<&str>,
        config_json: &str,
    ) -> Result<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO eval_runs (created_at, model, profile, status, eval_set_hash, config_json)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
            params![now_rfc3339(), model, profile, eval_set_hash, config_json],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records cases in one transaction; a position already recorded is kept (resumable).
    pub fn add_eval_cases(&self, eval_run_id: i64, cases: &[NewEvalCase]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO eval_cases (eval_run_id, position, question, gold_sql, pred_sql,
                                         raw_reply, correct, reason, hardness, detail_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (eval_run_id, position) DO NOTHING",
            )?;
            for c in cases {
                insert.execute(params![
                    eval_run_id,
                    c.position,
                    c.question,
                    c.gold_sql,
                    c.pred_sql,
                    c.raw_reply,
                    c.correct,
                    c.reason,
                    c.hardness,
                    c.detail_json
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds the LLM judge's opinion to a case's detail (the verdict is not changed).
    pub fn set_eval_case_judge(
        &self,
        eval_run_id: i64,
        position: i64,
        judge_json: &str,
    ) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE eval_cases SET detail_json = json_set(coalesce(detail_json, '{}'), '$.judge', json(?3))
             WHERE eval_run_id = ?1 AND position = ?2",
            params![eval_run_id, position, judge_json],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "evaluation case",
                id: position,
            });
        }
        Ok(())
    }

    pub fn finish_eval_run(
        &self,
        id: i64,
        status: RunStatus,
        summary_json: Option<&str>,
    ) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE eval_runs SET status = ?2, finished_at = ?3, summary_json = ?4 WHERE id = ?1",
            params![id, status, now_rfc3339(), summary_json],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "evaluation run",
                id,
            });
        }
        Ok(())
    }

    pub fn eval_run(&self, id: i64) -> Result<EvalRun> {
        self.lock()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM eval_runs WHERE id = ?1"),
                [id],
                run_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: "evaluation run",
                id,
            })
    }

    /// All evaluation runs, newest first.
    pub fn eval_runs(&self) -> Result<Vec<EvalRun>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM eval_runs ORDER BY id DESC"
        ))?;
        let rows = stmt.query_map([], run_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn eval_cases(&self, eval_run_id: i64) -> Result<Vec<EvalCase>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, eval_run_id, position, question, gold_sql, pred_sql, raw_reply, correct,
                    reason, hardness, detail_json
             FROM eval_cases WHERE eval_run_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([eval_run_id], |r| {
            Ok(EvalCase {
                id: r.get(0)?,
                eval_run_id: r.get(1)?,
                position: r.get(2)?,
                question: r.get(3)?,
                gold_sql: r.get(4)?,
                pred_sql: r.get(5)?,
                raw_reply: r.get(6)?,
                correct: r.get(7)?,
                reason: r.get(8)?,
                hardness: r.get(9)?,
                detail_json: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Positions already judged in a run (to resume it).
    pub fn done_eval_positions(&self, eval_run_id: i64) -> Result<BTreeSet<i64>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT position FROM eval_cases WHERE eval_run_id = ?1")?;
        let rows = stmt.query_map([eval_run_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn save_analysis(&self, run_id: Option<i64>, kind: &str, report_json: &str) -> Result<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO analyses (run_id, kind, created_at, report_json) VALUES (?1, ?2, ?3, ?4)",
            params![run_id, kind, now_rfc3339(), report_json],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The newest analysis of a kind (for a run, or the newest of any run).
    pub fn latest_analysis(&self, run_id: Option<i64>, kind: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT report_json FROM analyses WHERE kind = ?2 AND (?1 IS NULL OR run_id = ?1)
                 ORDER BY id DESC LIMIT 1",
                params![run_id, kind],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_cases_are_resumable() {
        let store = Store::open_in_memory().unwrap();
        let id = store.create_eval_run("m", "lode", Some("h"), "{}").unwrap();
        let case = |p: i64, correct| NewEvalCase {
            position: p,
            question: format!("q{p}"),
            gold_sql: "SELECT 1".into(),
            correct,
            ..Default::default()
        };
        store
            .add_eval_cases(id, &[case(0, true), case(1, false)])
            .unwrap();
        store
            .add_eval_cases(id, &[case(1, true), case(2, true)])
            .unwrap();
        let cases = store.eval_cases(id).unwrap();
        assert_eq!(cases.len(), 3);
        assert!(!cases[1].correct, "a recorded case is not overwritten");
        assert_eq!(
            store
                .done_eval_positions(id)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        store
            .finish_eval_run(id, RunStatus::Completed, Some("{\"accuracy\":0.66}"))
            .unwrap();
        assert_eq!(store.eval_run(id).unwrap().status, RunStatus::Completed);
        store.save_analysis(None, "coverage", "{\"a\":1}").unwrap();
        store.save_analysis(None, "coverage", "{\"a\":2}").unwrap();
        assert_eq!(
            store.latest_analysis(None, "coverage").unwrap().as_deref(),
            Some("{\"a\":2}")
        );
    }
}
