//! Exported datasets and tuning jobs with their status history.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{JobStatus, Result, Store, StoreError, TuneProvider, now_rfc3339};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub id: i64,
    pub name: String,
    pub format: String,
    pub created_at: String,
    pub run_id: Option<i64>,
    pub path: Option<String>,
    pub item_count: i64,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub provider: TuneProvider,
    pub external_id: Option<String>,
    pub model: Option<String>,
    pub dataset_id: Option<i64>,
    pub status: JobStatus,
    pub created_at: String,
    pub updated_at: String,
    pub config_json: String,
    pub result_json: Option<String>,
    /// A local trainer's process id (its process group too).
    pub pid: Option<i64>,
    /// A cancel was asked for (the local trainer reports the job cancelled from then on).
    pub cancel_requested: bool,
    /// A local trainer's exit code, recorded by the lode that spawned and reaped it.
    pub exit_code: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub id: i64,
    pub job_id: i64,
    pub at: String,
    pub status: JobStatus,
    pub message: String,
    pub data_json: Option<String>,
}

const DATASET_COLUMNS: &str = "id, name, format, created_at, run_id, path, item_count, sha256";

fn dataset_from_row(r: &Row<'_>) -> rusqlite::Result<Dataset> {
    Ok(Dataset {
        id: r.get(0)?,
        name: r.get(1)?,
        format: r.get(2)?,
        created_at: r.get(3)?,
        run_id: r.get(4)?,
        path: r.get(5)?,
        item_count: r.get(6)?,
        sha256: r.get(7)?,
    })
}

const JOB_COLUMNS: &str = "id, provider, external_id, model, dataset_id, status, created_at, \
                           updated_at, config_json, result_json, pid, cancel_requested, exit_code";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        provider: r.get(1)?,
        external_id: r.get(2)?,
        model: r.get(3)?,
        dataset_id: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        config_json: r.get(8)?,
        result_json: r.get(9)?,
        pid: r.get(10)?,
        cancel_requested: r.get(11)?,
        exit_code: r.get(12)?,
    })
}

impl Store {
    /// Records an exported dataset and the pairs it holds, in one transaction.
    pub fn create_dataset(
        &self,
        name: &str,
        format: &str,
        run_id: Option<i64>,
        path: Option<&str>,
        pair_ids: &[i64],
        sha256: Option<&str>,
    ) -> Result<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO datasets (name, format, created_at, run_id, path, item_count, sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                name,
                format,
                now_rfc3339(),
                run_id,
                path,
                pair_ids.len() as i64,
                sha256
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO dataset_items (dataset_id, pair_id) VALUES (?1, ?2)",
            )?;
            for p in pair_ids {
                insert.execute(params![id, p])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    pub fn dataset(&self, id: i64) -> Result<Dataset> {
        self.lock()
            .query_row(
                &format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE id = ?1"),
                [id],
                dataset_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound {
                what: "dataset",
                id,
            })
    }

    pub fn datasets(&self) -> Result<Vec<Dataset>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DATASET_COLUMNS} FROM datasets ORDER BY id DESC"
        ))?;
        let rows = stmt.query_map([], dataset_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn dataset_pair_ids(&self, id: i64) -> Result<Vec<i64>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT pair_id FROM dataset_items WHERE dataset_id = ?1 ORDER BY pair_id")?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates a job and its first event.
    pub fn create_job(
        &self,
        provider: TuneProvider,
        model: Option<&str>,
        dataset_id: Option<i64>,
        status: JobStatus,
        config_json: &str,
    ) -> Result<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let now = now_rfc3339();
        tx.execute(
            "INSERT INTO jobs (provider, model, dataset_id, status, created_at, updated_at,
                               config_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            params![provider, model, dataset_id, status, now, config_json],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO job_events (job_id, at, status, message) VALUES (?1, ?2, ?3, 'created')",
            params![id, now, status],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Sets the provider's id for a job (once submitted).
    pub fn set_job_external_id(&self, id: i64, external_id: &str) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE jobs SET external_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, external_id, now_rfc3339()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "job", id });
        }
        Ok(())
    }

    /// Updates a job's status and appends the event, in one transaction.
    pub fn update_job_status(
        &self,
        id: i64,
        status: JobStatus,
        message: &str,
        data_json: Option<&str>,
        result_json: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let now = now_rfc3339();
        let n = tx.execute(
            "UPDATE jobs SET status = ?2, updated_at = ?3, result_json = coalesce(?4, result_json)
             WHERE id = ?1",
            params![id, status, now, result_json],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "job", id });
        }
        tx.execute(
            "INSERT INTO job_events (job_id, at, status, message, data_json)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, now, status, message, data_json],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a local trainer's process.
    pub fn set_job_pid(&self, id: i64, pid: i64) -> Result<()> {
        self.update_job_process(id, "pid = ?2", pid)
    }

    /// Records that a cancel was asked for.
    pub fn request_job_cancel(&self, id: i64) -> Result<()> {
        self.update_job_process(id, "cancel_requested = ?2", true)
    }

    /// Records a local trainer's exit code.
    pub fn set_job_exit_code(&self, id: i64, code: i64) -> Result<()> {
        self.update_job_process(id, "exit_code = ?2", code)
    }

    fn update_job_process(&self, id: i64, set: &str, value: impl rusqlite::ToSql) -> Result<()> {
        let n = self.lock().execute(
            &format!("UPDATE jobs SET {set}, updated_at = ?3 WHERE id = ?1"),
            params![id, value, now_rfc3339()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "job", id });
        }
        Ok(())
    }

    /// The job a provider knows by `external_id`.
    pub fn job_by_external_id(
        &self,
        provider: TuneProvider,
        external_id: &str,
    ) -> Result<Option<Job>> {
        Ok(self
            .lock()
            .query_row(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE provider = ?1 AND external_id = ?2
                     ORDER BY id DESC LIMIT 1"
                ),
                params![provider, external_id],
                job_from_row,
            )
            .optional()?)
    }

    pub fn job(&self, id: i64) -> Result<Job> {
        self.lock()
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound { what: "job", id })
    }

    pub fn jobs(&self) -> Result<Vec<Job>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC"))?;
        let rows = stmt.query_map([], job_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn job_events(&self, job_id: i64) -> Result<Vec<JobEvent>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, job_id, at, status, message, data_json FROM job_events
             WHERE job_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([job_id], |r| {
            Ok(JobEvent {
                id: r.get(0)?,
                job_id: r.get(1)?,
                at: r.get(2)?,
                status: r.get(3)?,
                message: r.get(4)?,
                data_json: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_history_is_kept() {
        let store = Store::open_in_memory().unwrap();
        let id = store
            .create_job(
                TuneProvider::Lamini,
                Some("llama"),
                None,
                JobStatus::Queued,
                "{}",
            )
            .unwrap();
        store.set_job_external_id(id, "job-42").unwrap();
        store
            .update_job_status(
                id,
                JobStatus::Running,
                "step 10/100",
                Some("{\"step\":10}"),
                None,
            )
            .unwrap();
        store
            .update_job_status(
                id,
                JobStatus::Succeeded,
                "done",
                None,
                Some("{\"model\":\"m1\"}"),
            )
            .unwrap();
        let job = store.job(id).unwrap();
        assert_eq!(job.status, JobStatus::Succeeded);
        assert_eq!(job.provider, TuneProvider::Lamini);
        assert_eq!(job.external_id.as_deref(), Some("job-42"));
        assert_eq!(job.result_json.as_deref(), Some("{\"model\":\"m1\"}"));
        let events = store.job_events(id).unwrap();
        let statuses: Vec<JobStatus> = events.iter().map(|e| e.status).collect();
        assert_eq!(
            statuses,
            vec![JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded]
        );
        assert!(
            store
                .update_job_status(99, JobStatus::Failed, "", None, None)
                .is_err()
        );
    }

    #[test]
    fn a_local_trainers_process_is_kept_on_its_job() {
        let store = Store::open_in_memory().unwrap();
        let id = store
            .create_job(TuneProvider::Local, None, None, JobStatus::Queued, "{}")
            .unwrap();
        store.set_job_external_id(id, "job-1").unwrap();
        let job = store.job(id).unwrap();
        assert_eq!(
            (job.pid, job.cancel_requested, job.exit_code),
            (None, false, None)
        );
        store.set_job_pid(id, 4242).unwrap();
        store.request_job_cancel(id).unwrap();
        store.set_job_exit_code(id, 130).unwrap();
        let job = store
            .job_by_external_id(TuneProvider::Local, "job-1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (job.pid, job.cancel_requested, job.exit_code),
            (Some(4242), true, Some(130))
        );
        assert!(
            store
                .job_by_external_id(TuneProvider::Lamini, "job-1")
                .unwrap()
                .is_none()
        );
        assert!(store.set_job_exit_code(99, 0).is_err());
    }
}
