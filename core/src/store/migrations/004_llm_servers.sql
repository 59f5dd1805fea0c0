-- lode workspace store, version 4: what LLM servers support, how many requests a call took,
-- and the evaluation a call answered for.
-- How a server takes structured answers (json_schema, json_object or prompt_only), learnt
-- from its refusal of a better mode, so the next process does not ask it again. endpoint
-- is the backend kind, base URL and model.
CREATE TABLE llm_server_modes (
    endpoint   TEXT PRIMARY KEY,
    mode       TEXT NOT NULL,
    reason     TEXT,
    learned_at TEXT NOT NULL
);
-- Requests sent for a call, retries included; 0 for an answer from the cache.
ALTER TABLE llm_calls ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
-- The evaluation run a call answered for (generation and analysis calls carry run_id).
ALTER TABLE llm_calls ADD COLUMN eval_run_id INTEGER REFERENCES eval_runs(id);
