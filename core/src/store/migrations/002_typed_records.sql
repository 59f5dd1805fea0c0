-- lode workspace store, version 2: typed records instead of JSON handed between stages.
-- (The Rust step after this file moves failed-call placeholder pairs to generation_failures;
-- then concepts_json and meta_json are dropped.)

-- What the SQL analysis found in a pair, indexed for the queue's concept: and table: filters.
-- Rows keep the analyzer's order (rowid).
CREATE TABLE pair_concepts (
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    concept TEXT NOT NULL,
    uses    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (pair_id, concept)
);
CREATE INDEX pair_concepts_by_concept ON pair_concepts(concept, pair_id);
CREATE TABLE pair_tables (
    pair_id    INTEGER NOT NULL REFERENCES pairs(id),
    table_name TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (pair_id, table_name)
);
CREATE INDEX pair_tables_by_table ON pair_tables(table_name, pair_id);

-- hardness is set exactly when the pair's SQL was analyzed.
ALTER TABLE pairs ADD COLUMN hardness TEXT;
ALTER TABLE pairs ADD COLUMN level TEXT;
-- Generation notes: why the SQL step gave no SQL; whether the last attempt's result was
-- empty; and free-form JSON (an object keyed `validator:NAME` with each LLM validator's
-- answer, and `original_validation` for an imported pair).
ALTER TABLE pairs ADD COLUMN llm_error TEXT;
ALTER TABLE pairs ADD COLUMN empty_result INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pairs ADD COLUMN notes_json TEXT;

INSERT INTO pair_concepts (pair_id, concept, uses)
    SELECT p.id, c.key, c.value
    FROM pairs p, json_each(p.concepts_json, '$.concepts') c
    WHERE p.concepts_json IS NOT NULL
    ORDER BY p.id, c.id;
INSERT OR IGNORE INTO pair_tables (pair_id, table_name)
    SELECT p.id, t.value
    FROM pairs p, json_each(p.concepts_json, '$.tables') t
    WHERE p.concepts_json IS NOT NULL
    ORDER BY p.id, t.id;
UPDATE pairs SET
    hardness = coalesce(json_extract(concepts_json, '$.hardness'), ''),
    level = json_extract(concepts_json, '$.level')
    WHERE concepts_json IS NOT NULL;
UPDATE pairs SET
    llm_error = json_extract(meta_json, '$.llm_error'),
    empty_result = coalesce(json_extract(meta_json, '$.empty'), 0),
    notes_json = nullif(json_remove(meta_json, '$.llm_error', '$.empty', '$.error_kind'), '{}')
    WHERE meta_json IS NOT NULL;

-- A generator (or sql-first, or gap-filling) call that produced no pair, with its cause.
-- origin_key is the call's identity in the run, as for pairs. error_kind is NULL only for a
-- failure carried over from version 1 whose kind was not recorded.
CREATE TABLE generation_failures (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    generator    TEXT NOT NULL,
    gold_pair_id INTEGER REFERENCES gold_pairs(id),
    origin_key   TEXT NOT NULL,
    error_kind   TEXT,
    error        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (run_id, origin_key)
);

-- The local trainer's process: its pid (also its process group), whether a cancel was asked
-- for, and its exit code once the lode that spawned it reaped it.
ALTER TABLE jobs ADD COLUMN pid INTEGER;
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN exit_code INTEGER;
