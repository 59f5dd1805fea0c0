-- lode workspace store, version 3: who is writing a run.
-- A process generating into a run holds its lease: its pid and host, and a heartbeat it
-- refreshes every few seconds. Another process refuses to resume a run whose lease is live,
-- and takes over one that is stale (the pid is gone on this host, or the heartbeat is old).
-- owner is unique per process and lease, so one process's two runs, or a lease it lost, are
-- told apart. The row goes when the run finishes or is cancelled.
CREATE TABLE run_leases (
    run_id       INTEGER PRIMARY KEY REFERENCES runs(id),
    owner        TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    -- milliseconds since the Unix epoch, UTC
    heartbeat_ms INTEGER NOT NULL
);
