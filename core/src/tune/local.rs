//! The local trainer: runs the trainer command from config (LLaMA-Factory, axolotl or TRL)
//! as a child in its own process group, keeps its stdout/stderr in `trainer.log`, follows
//! `trainer_log.jsonl` or the newest `trainer_state.json` for step, loss and learning rate,
//! and cancels with SIGINT, then SIGTERM after a grace period.
//!
//! Its state lives on the job in the store (pid, cancel requested, exit code), so a restarted
//! lode picks the watch up again. The exit code is recorded by the lode process that spawned
//! the trainer: a thread of it reaps the child and writes the code. The trade-off: when that
//! lode exits first (`lode tune` without watching, a crash, `kill -9`), the trainer runs on
//! but nobody is left to reap it, so no code is recorded; a later lode that finds the pid
//! gone and no code reports the job failed ("gone without an exit code") and points at
//! `trainer.log`, where the trainer's own last lines tell whether it finished. (A wrapper
//! shell writing the code to a file kept it in that case, but put state outside the store.)
//! Jobs started by a lode before the store held this state are read from their files once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::{JobStatus, JobUpdate, Provider, TuneError, dataset};
use crate::config::Config;
use crate::llm::BoxFuture;
use crate::project::Project;
use crate::store::{Job, Store, TuneProvider};

pub struct LocalTrainer {
    command: String,
    output_dir: PathBuf,
    grace: Duration,
    store: Arc<Store>,
}

impl LocalTrainer {
    pub fn from_config(config: &Config, store: Arc<Store>) -> Result<LocalTrainer, TuneError> {
        let command = config.tune.local.command.clone().ok_or_else(|| {
            TuneError::Refused(
                "the local trainer needs tune.local.command in config.yml (for example `llamafactory-cli train lode.yaml`)".into(),
            )
        })?;
        Ok(LocalTrainer {
            command,
            output_dir: config.tune.local.output_dir.clone(),
            grace: Duration::from_secs_f64(config.tune.local.grace_s.max(0.0)),
            store,
        })
    }

    fn job_dir(&self, external_id: &str) -> PathBuf {
        self.output_dir.join(external_id)
    }

    /// The job behind `external_id`, with the state files of a job started by an older lode
    /// (`pid`, `cancelled`, `exit_code` beside it) taken into the store first.
    fn job(&self, external_id: &str) -> Result<Job, TuneError> {
        let job = self
            .store
            .job_by_external_id(TuneProvider::Local, external_id)?
            .ok_or_else(|| {
                TuneError::Refused(format!("no local tuning job `{external_id}` in the store"))
            })?;
        if job.pid.is_some() {
            return Ok(job);
        }
        let dir = self.job_dir(external_id);
        let Some(pid) = read_number(&dir.join("pid")) else {
            return Ok(job);
        };
        self.store.set_job_pid(job.id, pid)?;
        if dir.join("cancelled").exists() {
            self.store.request_job_cancel(job.id)?;
        }
        if let Some(code) = read_number(&dir.join("exit_code")) {
            self.store.set_job_exit_code(job.id, code)?;
        }
        Ok(self.store.job(job.id)?)
    }
}

fn read_number(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn signal_group(pgid: i32, sig: &str) {
    // A group that is already gone is the outcome wanted; the caller checks liveness after.
    let _ = std::process::Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The exit code as a shell reports it: the code, or 128 + the signal that ended it.
fn exit_code(status: &std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
    }
}

/// Progress from LLaMA-Factory's `trainer_log.jsonl` (last line) or the newest
/// `trainer_state.json` under the job directory.
pub fn read_progress(dir: &Path) -> Option<JobUpdate> {
    if let Ok(text) = std::fs::read_to_string(dir.join("trainer_log.jsonl"))
        && let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty())
        && let Ok(v) = serde_json::from_str::<Json>(last)
    {
        return Some(JobUpdate {
            step: v["current_steps"].as_u64(),
            total_steps: v["total_steps"].as_u64(),
            loss: v["loss"].as_f64(),
            learning_rate: v["lr"].as_f64().or(v["learning_rate"].as_f64()),
            message: v["remaining_time"]
                .as_str()
                .map(|r| format!("{r} left"))
                .unwrap_or_default(),
            ..Default::default()
        });
    }
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "trainer_state.json")
                && let Ok(m) = p.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(t, _)| m > *t)
            {
                newest = Some((m, p));
            }
        }
    }
    let (_, path) = newest?;
    let v: Json = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let last = v["log_history"]
        .as_array()
        .and_then(|h| h.iter().rev().find(|e| e.get("loss").is_some()));
    Some(JobUpdate {
        step: v["global_step"].as_u64(),
        total_steps: v["max_steps"].as_u64(),
        loss: last.and_then(|e| e["loss"].as_f64()),
        learning_rate: last.and_then(|e| e["learning_rate"].as_f64()),
        ..Default::default()
    })
}

impl Provider for LocalTrainer {
    fn name(&self) -> TuneProvider {
        TuneProvider::Local
    }

    fn submit<'a>(
        &'a self,
        job_id: i64,
        data: &'a dataset::TrainingSet,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<String, TuneError>> {
        Box::pin(async move {
            let external = format!("job-{job_id}");
            let dir = self.job_dir(&external);
            std::fs::create_dir_all(&dir)?;
            let train = dir.join("train.jsonl");
            let validation = dir.join("validation.jsonl");
            std::fs::write(&train, dataset::render("sharegpt", project, &data.train))?;
            std::fs::write(
                &validation,
                dataset::render("sharegpt", project, &data.validation),
            )?;
            std::fs::write(
                dir.join("dataset_info.json"),
                serde_json::to_string_pretty(&dataset::llama_factory_entry(
                    "lode",
                    "train.jsonl",
                    "sharegpt",
                ))
                .unwrap_or_default(),
            )?;
            let cmd = self
                .command
                .replace("{train}", &train.display().to_string())
                .replace("{validation}", &validation.display().to_string())
                .replace("{output_dir}", &dir.display().to_string());
            let log_path = dir.join("trainer.log");
            let log = std::fs::File::create(&log_path)?;
            let err = log.try_clone()?;
            use std::os::unix::process::CommandExt;
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .current_dir(&dir)
                .stdout(log)
                .stderr(err)
                .stdin(std::process::Stdio::null())
                .process_group(0)
                .spawn()?;
            if let Err(e) = self.store.set_job_pid(job_id, i64::from(child.id())) {
                // A trainer nobody can watch or cancel must not run on.
                signal_group(child.id() as i32, "TERM");
                let _ = child.wait();
                return Err(e.into());
            }
            // Reap the child in the background (no zombie) and record how it ended.
            let store = Arc::clone(&self.store);
            std::thread::spawn(move || {
                let outcome = child
                    .wait()
                    .map_err(|e| e.to_string())
                    .map(|status| exit_code(&status))
                    .and_then(|code| {
                        store
                            .set_job_exit_code(job_id, code)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = outcome {
                    // Where the user looks when the job reports no exit code.
                    use std::io::Write;
                    if let Ok(mut log) = std::fs::OpenOptions::new().append(true).open(&log_path) {
                        let _ = writeln!(log, "lode could not record the exit code: {e}");
                    }
                }
            });
            Ok(external)
        })
    }

    fn status<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<JobUpdate, TuneError>> {
        Box::pin(async move {
            let dir = self.job_dir(external_id);
            let job = self.job(external_id)?;
            let mut u = read_progress(&dir).unwrap_or_default();
            if job.cancel_requested {
                u.status = Some(JobStatus::Cancelled);
                u.raw_status = "cancelled".into();
                return Ok(u);
            }
            if let Some(code) = job.exit_code {
                if code == 0 {
                    u.status = Some(JobStatus::Succeeded);
                    u.raw_status = "exited 0".into();
                    u.model_id = Some(dir.display().to_string());
                } else {
                    // The log only adds context to the exit code; a missing log leaves it out.
                    let log = std::fs::read_to_string(dir.join("trainer.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    u.status = Some(JobStatus::Failed);
                    u.raw_status = format!("exited {code}");
                    u.error = Some(format!(
                        "the trainer exited with code {code}; last lines of {}:\n{}",
                        dir.join("trainer.log").display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ));
                }
                return Ok(u);
            }
            match job.pid.map(|p| p as i32) {
                Some(pid) if alive(pid) => {
                    u.status = Some(if u.step.is_some() {
                        JobStatus::Running
                    } else {
                        JobStatus::Queued
                    });
                    u.raw_status = format!("pid {pid}");
                }
                _ => {
                    // Give the reaping thread a moment to record the exit code.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if self.job(external_id)?.exit_code.is_some() {
                        return self.status(external_id).await;
                    }
                    u.status = Some(JobStatus::Failed);
                    u.raw_status = "gone".into();
                    u.error = Some(format!(
                        "the trainer process is gone without an exit code (killed, or the lode \
                         that started it exited first); see {}",
                        dir.join("trainer.log").display()
                    ));
                }
            }
            Ok(u)
        })
    }

    fn cancel<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<(), TuneError>> {
        Box::pin(async move {
            let job = self.job(external_id)?;
            self.store.request_job_cancel(job.id)?;
            let Some(pid) = job.pid.map(|p| p as i32) else {
                return Ok(());
            };
            signal_group(pid, "INT");
            let deadline = std::time::Instant::now() + self.grace;
            while alive(pid) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if alive(pid) {
                signal_group(pid, "TERM");
            }
            Ok(())
        })
    }
}
