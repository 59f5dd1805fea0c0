-- lode workspace store, version 1. Every stage writes here; every face reads here.

-- Hashes of the inputs a run was made from, so later changes are noticed.
CREATE TABLE input_snapshots (
    id            INTEGER PRIMARY KEY,
    created_at    TEXT NOT NULL,
    config_hash   TEXT NOT NULL,
    schema_hash   TEXT NOT NULL,
    glossary_hash TEXT NOT NULL,
    gold_hash     TEXT NOT NULL,
    eval_hash     TEXT NOT NULL
);

-- The gold and eval sets as loaded for a snapshot.
CREATE TABLE gold_pairs (
    id          INTEGER PRIMARY KEY,
    set_name    TEXT NOT NULL CHECK (set_name IN ('gold', 'eval')),
    position    INTEGER NOT NULL,
    question    TEXT NOT NULL,
    sql         TEXT NOT NULL,
    snapshot_id INTEGER NOT NULL REFERENCES input_snapshots(id),
    UNIQUE (set_name, snapshot_id, position)
);

-- A generation, gap-filling, import or evaluation run.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    finished_at  TEXT,
    snapshot_id  INTEGER REFERENCES input_snapshots(id),
    profile      TEXT NOT NULL DEFAULT '',
    config_json  TEXT NOT NULL DEFAULT '{}',
    summary_json TEXT,
    error        TEXT
);

-- Generated pairs. origin_key is the deterministic identity of the generation step that made
-- the pair, so a resumed run never inserts it twice.
CREATE TABLE pairs (
    id                 INTEGER PRIMARY KEY,
    run_id             INTEGER NOT NULL REFERENCES runs(id),
    origin_key         TEXT NOT NULL,
    generator          TEXT NOT NULL,
    parent_gold_id     INTEGER REFERENCES gold_pairs(id),
    parent_pair_id     INTEGER REFERENCES pairs(id),
    question           TEXT NOT NULL,
    sql                TEXT NOT NULL,
    status             TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    template           TEXT,
    result_fingerprint TEXT,
    concepts_json      TEXT,
    meta_json          TEXT,
    UNIQUE (run_id, origin_key)
);
CREATE INDEX pairs_by_run_status ON pairs(run_id, status);
CREATE INDEX pairs_by_status ON pairs(status);

-- Every validation attempt of a pair (the debugger's attempts included).
CREATE TABLE validations (
    id                  INTEGER PRIMARY KEY,
    pair_id             INTEGER NOT NULL REFERENCES pairs(id),
    attempt             INTEGER NOT NULL,
    sql                 TEXT NOT NULL,
    ok                  INTEGER NOT NULL,
    error_kind          TEXT,
    error               TEXT,
    row_count           INTEGER,
    elapsed_ms          REAL,
    flags_json          TEXT,
    result_preview_json TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX validations_by_pair ON validations(pair_id, attempt);

-- Review decisions with full history; undo marks a decision undone and records itself.
CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY,
    pair_id       INTEGER NOT NULL REFERENCES pairs(id),
    action        TEXT NOT NULL,
    prev_status   TEXT NOT NULL,
    new_status    TEXT NOT NULL,
    prev_question TEXT NOT NULL,
    prev_sql      TEXT NOT NULL,
    new_question  TEXT NOT NULL,
    new_sql       TEXT NOT NULL,
    note          TEXT,
    created_at    TEXT NOT NULL,
    undone        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reviews_by_pair ON reviews(pair_id, id);

-- LLM answers by request hash: a re-run reuses them. Requests never contain API keys.
CREATE TABLE llm_cache (
    key           TEXT PRIMARY KEY,
    profile       TEXT NOT NULL,
    model         TEXT NOT NULL,
    request_json  TEXT NOT NULL,
    response_json TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    hits          INTEGER NOT NULL DEFAULT 0
);

-- Every LLM call, with its cost and its failure cause.
CREATE TABLE llm_calls (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER REFERENCES runs(id),
    profile           TEXT NOT NULL,
    model             TEXT NOT NULL,
    purpose           TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    latency_ms        REAL NOT NULL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cached            INTEGER NOT NULL,
    ok                INTEGER NOT NULL,
    error_kind        TEXT,
    error             TEXT
);
CREATE INDEX llm_calls_by_run ON llm_calls(run_id);

-- Exported training sets.
CREATE TABLE datasets (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    format     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    run_id     INTEGER REFERENCES runs(id),
    path       TEXT,
    item_count INTEGER NOT NULL,
    sha256     TEXT
);
CREATE TABLE dataset_items (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    pair_id    INTEGER NOT NULL REFERENCES pairs(id),
    PRIMARY KEY (dataset_id, pair_id)
);

-- Tuning jobs and their status history.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    provider    TEXT NOT NULL,
    external_id TEXT,
    model       TEXT,
    dataset_id  INTEGER REFERENCES datasets(id),
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    config_json TEXT NOT NULL DEFAULT '{}',
    result_json TEXT
);
CREATE TABLE job_events (
    id        INTEGER PRIMARY KEY,
    job_id    INTEGER NOT NULL REFERENCES jobs(id),
    at        TEXT NOT NULL,
    status    TEXT NOT NULL,
    message   TEXT NOT NULL,
    data_json TEXT
);
CREATE INDEX job_events_by_job ON job_events(job_id, id);

-- Evaluation runs and their per-case verdicts.
CREATE TABLE eval_runs (
    id            INTEGER PRIMARY KEY,
    created_at    TEXT NOT NULL,
    finished_at   TEXT,
    model         TEXT NOT NULL,
    profile       TEXT NOT NULL,
    status        TEXT NOT NULL,
    eval_set_hash TEXT,
    config_json   TEXT NOT NULL DEFAULT '{}',
    summary_json  TEXT
);
CREATE TABLE eval_cases (
    id          INTEGER PRIMARY KEY,
    eval_run_id INTEGER NOT NULL REFERENCES eval_runs(id),
    position    INTEGER NOT NULL,
    question    TEXT NOT NULL,
    gold_sql    TEXT NOT NULL,
    pred_sql    TEXT,
    raw_reply   TEXT,
    correct     INTEGER NOT NULL,
    reason      TEXT,
    hardness    TEXT,
    detail_json TEXT,
    UNIQUE (eval_run_id, position)
);

-- Coverage and error analyses, for the dashboards.
CREATE TABLE analyses (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER REFERENCES runs(id),
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    report_json TEXT NOT NULL
);
CREATE INDEX analyses_by_kind ON analyses(kind, run_id, id);
