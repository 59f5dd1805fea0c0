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

impl Job {
    /// The tuned model's id, once the job made one (`model_id` of the result the watcher
    /// stores); not the provider's job id, nor the base model.
    pub fn tuned_model(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(self.result_json.as_deref()?).ok()?;
        v["model_id"].as_str().map(String::from)
    }
}

/// What a job's stored event data tell of its progress. The watcher stores the provider's
/// figures with each status change (`step`, `total_steps`, `loss`, `raw_status`) and with each
/// event of its feed (`step`, `total_steps`, `loss`); the newest of each figure counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JobProgress {
    pub step: Option<u64>,
    pub total_steps: Option<u64>,
    /// The provider's own word for where the job is (its raw status: Lamini's `SCHEDULED`,
    /// OpenAI's `validating_files`), finer than lode's status.
    pub phase: Option<String>,
    /// The loss values reported, oldest first, one per step: a status polled again at the
    /// same step is not a new point. Empty when read without them.
    pub losses: Vec<f64>,
}

impl JobProgress {
    /// From a job's events, oldest first (as [`Store::job_events`] returns them), with the
    /// loss series.
    pub fn of_events(events: &[JobEvent]) -> JobProgress {
        let mut p = JobProgress::default();
        let mut points = Points::default();
        for e in events.iter().rev() {
            if let Some(v) = e.data_json.as_deref().and_then(parse_data) {
                p.take(&v);
                points.take(&v);
            }
        }
        p.losses = points.finish();
        p
    }

    /// `step / total_steps` in 0..=1, when both are known (and the total is not zero).
    pub fn ratio(&self) -> Option<f64> {
        match (self.step, self.total_steps) {
            (Some(s), Some(t)) if t > 0 => Some((s as f64 / t as f64).clamp(0.0, 1.0)),
            _ => None,
        }
    }

    /// Fills the figures still unknown from one event's data (events are taken newest first).
    fn take(&mut self, v: &serde_json::Value) {
        if self.step.is_none() {
            self.step = count(&v["step"]);
        }
        if self.total_steps.is_none() {
            self.total_steps = count(&v["total_steps"]);
        }
        if self.phase.is_none() {
            self.phase = v["raw_status"]
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from);
        }
    }

    fn complete(&self) -> bool {
        self.step.is_some() && self.total_steps.is_some() && self.phase.is_some()
    }
}

/// Event data is JSON the watcher wrote from what a provider said: what does not parse, or is
/// not an object, has no figures.
fn parse_data(d: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(d)
        .ok()
        .filter(serde_json::Value::is_object)
}

/// A count a provider reported: an integer, a whole float or a number in a string.
fn count(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.round() as u64)
        })
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The loss points, gathered newest first: one per step (or per value, without steps).
#[derive(Default)]
struct Points(Vec<(Option<u64>, f64)>);

impl Points {
    fn take(&mut self, v: &serde_json::Value) {
        let loss = v["loss"]
            .as_f64()
            .or_else(|| v["loss"].as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|l: &f64| l.is_finite());
        let Some(loss) = loss else {
            return;
        };
        let step = count(&v["step"]);
        // The newer point of a step stands; without steps, a value repeated by the next poll
        // is the same point.
        let same = self.0.last().is_some_and(|(s, l)| match (s, step) {
            (Some(a), Some(b)) => *a == b,
            (None, None) => *l == loss,
            _ => false,
        });
        if !same {
            self.0.push((step, loss));
        }
    }

    fn finish(self) -> Vec<f64> {
        self.0.into_iter().rev().map(|(_, l)| l).collect()
    }
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

    /// Each job's progress as its newest event data tell it, without the loss series (for a
    /// list of jobs: only the newest events of each job are read, until every figure is
    /// known).
    pub fn jobs_progress(&self) -> Result<std::collections::BTreeMap<i64, JobProgress>> {
        let conn = self.lock();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM jobs")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare(
            "SELECT data_json FROM job_events WHERE job_id = ?1 AND data_json IS NOT NULL
             ORDER BY id DESC",
        )?;
        let mut out = std::collections::BTreeMap::new();
        for id in ids {
            let mut p = JobProgress::default();
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                let data: String = r.get(0)?;
                if let Some(v) = parse_data(&data) {
                    p.take(&v);
                }
                if p.complete() {
                    break;
                }
            }
            out.insert(id, p);
        }
        Ok(out)
    }

    /// The id of each job's newest event: a job whose newest event is the same has nothing
    /// new to show.
    pub fn job_event_heads(&self) -> Result<std::collections::BTreeMap<i64, i64>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT job_id, max(id) FROM job_events GROUP BY job_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
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

    #[test]
    fn progress_phase_and_losses_come_from_the_newest_event_data() {
        let store = Store::open_in_memory().unwrap();
        let id = store
            .create_job(TuneProvider::Lamini, None, None, JobStatus::Queued, "{}")
            .unwrap();
        let other = store
            .create_job(TuneProvider::OpenAi, None, None, JobStatus::Queued, "{}")
            .unwrap();
        let status = |step: u64, loss: f64, raw: &str| {
            serde_json::json!({"step": step, "total_steps": 500, "loss": loss, "raw_status": raw})
                .to_string()
        };
        for (step, loss, raw) in [
            (100, 2.0, "TRAINING"),
            (100, 2.0, "TRAINING"),
            (120, 1.5, "TRAINING"),
        ] {
            store
                .update_job_status(
                    id,
                    JobStatus::Running,
                    raw,
                    Some(&status(step, loss, raw)),
                    None,
                )
                .unwrap();
        }
        // An event of a feed (no raw status, no loss) and one whose data is not JSON.
        store
            .update_job_status(
                id,
                JobStatus::Running,
                "checkpoint",
                Some(r#"{"step": null, "total_steps": null, "loss": null, "event_id": "e1"}"#),
                None,
            )
            .unwrap();
        store
            .update_job_status(id, JobStatus::Running, "?", Some("not json"), None)
            .unwrap();
        let p = JobProgress::of_events(&store.job_events(id).unwrap());
        assert_eq!((p.step, p.total_steps), (Some(120), Some(500)));
        assert_eq!(p.phase.as_deref(), Some("TRAINING"));
        // The same step polled twice is one point.
        assert_eq!(p.losses, vec![2.0, 1.5]);
        assert_eq!(p.ratio(), Some(0.24));
        let all = store.jobs_progress().unwrap();
        assert_eq!(
            all[&id],
            JobProgress {
                losses: Vec::new(),
                ..p
            }
        );
        assert_eq!(all[&other], JobProgress::default());
        let heads = store.job_event_heads().unwrap();
        let newest = store.job_events(id).unwrap().last().unwrap().id;
        assert_eq!(heads[&id], newest);
        assert!(heads[&other] < newest);
        assert_eq!(all[&other].ratio(), None);
        // Counts as floats or strings still count.
        store
            .update_job_status(
                other,
                JobStatus::Running,
                "x",
                Some(r#"{"step": "7", "total_steps": 10.0, "raw_status": " running "}"#),
                None,
            )
            .unwrap();
        let p = &store.jobs_progress().unwrap()[&other];
        assert_eq!(
            (p.step, p.total_steps, p.phase.as_deref()),
            (Some(7), Some(10), Some("running"))
        );
    }

    #[test]
    fn the_tuned_model_is_the_results_model_id() {
        let store = Store::open_in_memory().unwrap();
        let id = store
            .create_job(
                TuneProvider::Lamini,
                Some("base"),
                None,
                JobStatus::Queued,
                "{}",
            )
            .unwrap();
        store.set_job_external_id(id, "ext-1").unwrap();
        assert_eq!(store.job(id).unwrap().tuned_model(), None);
        store
            .update_job_status(
                id,
                JobStatus::Succeeded,
                "done",
                None,
                Some(r#"{"model_id": "tuned-7"}"#),
            )
            .unwrap();
        assert_eq!(
            store.job(id).unwrap().tuned_model().as_deref(),
            Some("tuned-7")
        );
    }
}
