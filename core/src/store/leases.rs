//! Run leases: which process is writing a run. A process that starts or resumes a generation
//! run takes its lease (pid, host, heartbeat) in the same transaction that sets the run
//! running, refreshes the heartbeat while it works, and gives the lease back when the run ends.
//! Another process refuses to resume a run whose lease is live, and takes over a stale one:
//! its pid is gone on this host, or its heartbeat is older than [`LEASE_STALE_AFTER`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{NewRun, Result, Store, StoreError, now_rfc3339};

/// How often a lease holder refreshes its heartbeat.
pub const LEASE_HEARTBEAT: Duration = Duration::from_secs(5);

/// A heartbeat older than this is a dead (or stuck) holder's, whatever its pid says. Generous:
/// a store write may wait [`super::BUSY_TIMEOUT`] behind other processes.
pub const LEASE_STALE_AFTER: Duration = Duration::from_secs(120);

/// Who takes a lease: a token unique to this process and lease, its pid and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    pub token: String,
    pub pid: u32,
    pub host: String,
}

impl LeaseOwner {
    /// This process, with a token no other lease of it shares.
    pub fn this_process() -> LeaseOwner {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let host = host_name();
        let token = format!(
            "{pid}@{host}#{}.{}",
            unix_ms(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        LeaseOwner { token, pid, host }
    }
}

/// A run's lease as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLease {
    pub run_id: i64,
    pub owner: String,
    pub pid: i64,
    pub host: String,
    pub acquired_at: String,
    pub heartbeat_ms: i64,
}

impl RunLease {
    /// How long ago its holder last said it was alive (zero for a clock running behind).
    pub fn heartbeat_age(&self, now_ms: i64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.heartbeat_ms).max(0) as u64)
    }

    /// Whether its holder still counts as writing the run.
    pub fn is_live(&self, now_ms: i64) -> bool {
        if self.heartbeat_age(now_ms) > LEASE_STALE_AFTER {
            return false;
        }
        self.host != host_name() || pid_alive(self.pid)
    }
}

/// This machine's name (`localhost` when it cannot be read).
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|v| std::env::var(v).ok()),
        )
        .map(|h| h.trim().to_string())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether a process of this machine runs: on Linux, its `/proc` entry exists and is not a
/// zombie; elsewhere it cannot be told, and the heartbeat decides.
fn pid_alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn lease_of(conn: &Connection, run_id: i64) -> Result<Option<RunLease>> {
    Ok(conn
        .query_row(
            "SELECT run_id, owner, pid, host, acquired_at, heartbeat_ms FROM run_leases
             WHERE run_id = ?1",
            [run_id],
            |r| {
                Ok(RunLease {
                    run_id: r.get(0)?,
                    owner: r.get(1)?,
                    pid: r.get(2)?,
                    host: r.get(3)?,
                    acquired_at: r.get(4)?,
                    heartbeat_ms: r.get(5)?,
                })
            },
        )
        .optional()?)
}

fn write_lease(conn: &Connection, run_id: i64, owner: &LeaseOwner) -> Result<()> {
    conn.execute(
        "INSERT INTO run_leases (run_id, owner, pid, host, acquired_at, heartbeat_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,
             host = excluded.host, acquired_at = excluded.acquired_at,
             heartbeat_ms = excluded.heartbeat_ms",
        params![
            run_id,
            owner.token,
            owner.pid,
            owner.host,
            now_rfc3339(),
            unix_ms()
        ],
    )?;
    Ok(())
}

impl Store {
    /// Creates a run, running, under `owner`'s lease (one transaction: no other process sees
    /// it running without a holder).
    pub fn create_leased_run(&self, run: &NewRun, owner: &LeaseOwner) -> Result<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let id = super::pairs::insert_run(&tx, run)?;
        write_lease(&tx, id, owner)?;
        tx.commit()?;
        Ok(id)
    }

    /// Sets a run back to running under `owner`'s lease, taking over a stale lease; refuses
    /// ([`StoreError::RunBusy`]) when another holder's lease is live.
    pub fn resume_leased_run(&self, id: i64, owner: &LeaseOwner) -> Result<()> {
        self.lease_run(id, owner, true)
    }

    /// Takes `owner`'s lease on a run without changing its status (gap filling adds pairs to
    /// a finished run); refuses like [`Store::resume_leased_run`] when another lease is live.
    pub fn lease_existing_run(&self, id: i64, owner: &LeaseOwner) -> Result<()> {
        self.lease_run(id, owner, false)
    }

    fn lease_run(&self, id: i64, owner: &LeaseOwner, reopen: bool) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let exists = tx
            .query_row("SELECT 1 FROM runs WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound { what: "run", id });
        }
        let now = unix_ms();
        if let Some(lease) = lease_of(&tx, id)?
            && lease.owner != owner.token
            && lease.is_live(now)
        {
            return Err(StoreError::RunBusy {
                run_id: id,
                pid: lease.pid,
                host: lease.host.clone(),
                heartbeat_secs: lease.heartbeat_age(now).as_secs(),
            });
        }
        write_lease(&tx, id, owner)?;
        if reopen {
            tx.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL WHERE id = ?1",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Refreshes `owner`'s heartbeat on a run; false when the lease is no longer its own
    /// (another process took it over as stale).
    pub fn heartbeat_run(&self, id: i64, owner: &LeaseOwner) -> Result<bool> {
        let n = self.lock().execute(
            "UPDATE run_leases SET heartbeat_ms = ?3 WHERE run_id = ?1 AND owner = ?2",
            params![id, owner.token, unix_ms()],
        )?;
        Ok(n == 1)
    }

    /// Gives `owner`'s lease on a run back (nothing when another holder has it).
    pub fn release_run(&self, id: i64, owner: &LeaseOwner) -> Result<()> {
        self.lock().execute(
            "DELETE FROM run_leases WHERE run_id = ?1 AND owner = ?2",
            params![id, owner.token],
        )?;
        Ok(())
    }

    /// A run's lease, live or not.
    pub fn run_lease(&self, id: i64) -> Result<Option<RunLease>> {
        lease_of(&self.lock(), id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunKind, RunStatus};

    fn new_run() -> NewRun {
        NewRun {
            kind: RunKind::Generate,
            ..Default::default()
        }
    }

    #[test]
    fn gap_filling_leases_a_finished_run_without_reopening_it() {
        let store = Store::open_in_memory().unwrap();
        let a = LeaseOwner::this_process();
        let b = LeaseOwner::this_process();
        let id = store.create_leased_run(&new_run(), &a).unwrap();
        store
            .finish_run(id, RunStatus::Completed, Some("{}"), None)
            .unwrap();
        store.release_run(id, &a).unwrap();
        store.lease_existing_run(id, &b).unwrap();
        assert_eq!(store.run(id).unwrap().status, RunStatus::Completed);
        // While b fills the run, a generation elsewhere may not resume it.
        assert!(matches!(
            store.resume_leased_run(id, &a),
            Err(StoreError::RunBusy { .. })
        ));
        store.release_run(id, &b).unwrap();
        assert!(store.run_lease(id).unwrap().is_none());
    }

    #[test]
    fn a_live_lease_is_refused_and_a_stale_one_taken_over() {
        let store = Store::open_in_memory().unwrap();
        let a = LeaseOwner::this_process();
        let b = LeaseOwner::this_process();
        assert_ne!(a.token, b.token);
        let id = store.create_leased_run(&new_run(), &a).unwrap();
        assert_eq!(store.run(id).unwrap().status, RunStatus::Running);
        // This process is alive and its heartbeat fresh: b is refused, told who holds it.
        let err = store.resume_leased_run(id, &b).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("run {id} is being written by pid {}", a.pid)),
            "{msg}"
        );
        assert!(msg.contains("pass --new"), "{msg}");
        // The holder itself may resume (a retry of its own).
        store.resume_leased_run(id, &a).unwrap();
        assert!(store.heartbeat_run(id, &a).unwrap());

        // An old heartbeat is stale whoever holds it.
        store
            .lock()
            .execute(
                "UPDATE run_leases SET heartbeat_ms = heartbeat_ms - 600000",
                [],
            )
            .unwrap();
        store.resume_leased_run(id, &b).unwrap();
        assert_eq!(store.run_lease(id).unwrap().unwrap().owner, b.token);
        // a lost it: its heartbeat and release no longer touch b's lease.
        assert!(!store.heartbeat_run(id, &a).unwrap());
        store.release_run(id, &a).unwrap();
        assert!(store.run_lease(id).unwrap().is_some());
        store.release_run(id, &b).unwrap();
        assert!(store.run_lease(id).unwrap().is_none());
    }

    #[test]
    fn a_dead_pid_on_this_host_is_stale_and_another_host_is_trusted_until_its_heartbeat_ages() {
        let now = unix_ms();
        let lease = |pid: i64, host: &str, age_ms: i64| RunLease {
            run_id: 1,
            owner: "x".into(),
            pid,
            host: host.into(),
            acquired_at: String::new(),
            heartbeat_ms: now - age_ms,
        };
        let me = std::process::id() as i64;
        assert!(lease(me, &host_name(), 1000).is_live(now));
        assert!(!lease(me, &host_name(), 600_000).is_live(now));
        if std::path::Path::new("/proc/self/stat").exists() {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let dead = child.id() as i64;
            child.wait().unwrap();
            assert!(!lease(dead, &host_name(), 1000).is_live(now));
        }
        assert!(lease(1, "some-other-host.invalid", 1000).is_live(now));
        assert!(!lease(1, "some-other-host.invalid", 600_000).is_live(now));
    }

    #[test]
    fn interrupted_runs_spare_a_live_lease() {
        let store = Store::open_in_memory().unwrap();
        let held = store
            .create_leased_run(&new_run(), &LeaseOwner::this_process())
            .unwrap();
        let orphan = store.create_run(&new_run()).unwrap();
        let stale_owner = LeaseOwner {
            token: "gone".into(),
            pid: 1,
            host: "some-other-host.invalid".into(),
        };
        let stale = store.create_leased_run(&new_run(), &stale_owner).unwrap();
        store
            .lock()
            .execute(
                "UPDATE run_leases SET heartbeat_ms = 0 WHERE run_id = ?1",
                [stale],
            )
            .unwrap();
        assert_eq!(store.mark_interrupted_runs().unwrap(), vec![orphan, stale]);
        assert_eq!(store.run(held).unwrap().status, RunStatus::Running);
        assert!(store.run_lease(stale).unwrap().is_none());
        // Nothing left to mark: no write at all.
        assert!(store.mark_interrupted_runs().unwrap().is_empty());
    }
}
