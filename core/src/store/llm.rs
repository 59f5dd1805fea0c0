//! The LLM call cache and the call log. Cached requests never contain API keys: backends
//! hash and store the request body only, and keys travel in headers.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ErrorKind, Result, Store, now_rfc3339};

/// The cache key of a request: sha256 over its parts separated by 0x1f (unit separator), so
/// `("ab", "c")` and `("a", "bc")` differ.
pub fn cache_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One LLM call to log.
#[derive(Debug, Clone, Default)]
pub struct NewLlmCall {
    pub run_id: Option<i64>,
    pub profile: String,
    pub model: String,
    pub purpose: String,
    pub latency_ms: f64,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cached: bool,
    pub ok: bool,
    pub error_kind: Option<ErrorKind>,
    pub error: Option<String>,
    /// Requests sent, retries included; 0 for an answer from the cache.
    pub attempts: u32,
}

/// Totals over logged calls. Tokens are those spent: answers from the cache cost none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmCallStats {
    pub calls: u64,
    pub cached: u64,
    pub failed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_latency_ms: f64,
}

impl Store {
    /// The cached response for a key, counting the hit.
    pub fn cache_get(&self, key: &str) -> Result<Option<String>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let hit: Option<String> = tx
            .query_row(
                "SELECT response_json FROM llm_cache WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        if hit.is_some() {
            tx.execute("UPDATE llm_cache SET hits = hits + 1 WHERE key = ?1", [key])?;
        }
        tx.commit()?;
        Ok(hit)
    }

    pub fn cache_put(
        &self,
        key: &str,
        profile: &str,
        model: &str,
        request_json: &str,
        response_json: &str,
    ) -> Result<()> {
        self.lock().execute(
            "INSERT OR REPLACE INTO llm_cache (key, profile, model, request_json, response_json,
                                               created_at, hits)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            params![
                key,
                profile,
                model,
                request_json,
                response_json,
                now_rfc3339()
            ],
        )?;
        Ok(())
    }

    pub fn record_llm_call(&self, c: &NewLlmCall) -> Result<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO llm_calls (run_id, profile, model, purpose, started_at, latency_ms,
                                    prompt_tokens, completion_tokens, cached, ok, error_kind, error,
                                    attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                c.run_id,
                c.profile,
                c.model,
                c.purpose,
                now_rfc3339(),
                c.latency_ms,
                c.prompt_tokens,
                c.completion_tokens,
                c.cached,
                c.ok,
                c.error_kind,
                // A safety net: error texts are redacted where they arise, but no credential
                // reaches the store whatever the caller passed.
                c.error.as_deref().map(|e| crate::config::redact(e, &[])),
                c.attempts
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Totals for one run, or for every call.
    pub fn llm_call_stats(&self, run_id: Option<i64>) -> Result<LlmCallStats> {
        Ok(self.lock().query_row(
            "SELECT count(*), coalesce(sum(cached), 0), coalesce(sum(1 - ok), 0),
                    coalesce(sum(prompt_tokens) FILTER (WHERE NOT cached), 0),
                    coalesce(sum(completion_tokens) FILTER (WHERE NOT cached), 0),
                    coalesce(sum(latency_ms), 0.0)
             FROM llm_calls WHERE ?1 IS NULL OR run_id = ?1",
            [run_id],
            |r| {
                Ok(LlmCallStats {
                    calls: r.get::<_, i64>(0)? as u64,
                    cached: r.get::<_, i64>(1)? as u64,
                    failed: r.get::<_, i64>(2)? as u64,
                    prompt_tokens: r.get::<_, i64>(3)? as u64,
                    completion_tokens: r.get::<_, i64>(4)? as u64,
                    total_latency_ms: r.get(5)?,
                })
            },
        )?)
    }
}

impl Store {
    /// How the server at `endpoint` takes structured answers, as learnt earlier.
    pub fn server_mode(&self, endpoint: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT mode FROM llm_server_modes WHERE endpoint = ?1",
                [endpoint],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Remembers how the server at `endpoint` takes structured answers, and why.
    pub fn put_server_mode(&self, endpoint: &str, mode: &str, reason: Option<&str>) -> Result<()> {
        self.lock().execute(
            "INSERT OR REPLACE INTO llm_server_modes (endpoint, mode, reason, learned_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                endpoint,
                mode,
                reason.map(|r| crate::config::redact(r, &[])),
                now_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// Marks these logged calls as made for an evaluation run (which is created after its
    /// model has answered).
    pub fn attribute_calls_to_eval(&self, call_ids: &[i64], eval_run_id: i64) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare("UPDATE llm_calls SET eval_run_id = ?1 WHERE id = ?2")?;
            for id in call_ids {
                stmt.execute(params![eval_run_id, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every server mode learnt: (endpoint, mode, reason).
    pub fn server_modes(&self) -> Result<Vec<(String, String, Option<String>)>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT endpoint, mode, reason FROM llm_server_modes ORDER BY endpoint")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trip_counts_hits() {
        let store = Store::open_in_memory().unwrap();
        let key = cache_key(&["openai", "m", "{\"messages\":[]}"]);
        assert_ne!(key, cache_key(&["openaim", "", "{\"messages\":[]}"]));
        assert_eq!(store.cache_get(&key).unwrap(), None);
        store
            .cache_put(&key, "local", "m", "{}", "{\"a\":1}")
            .unwrap();
        assert_eq!(store.cache_get(&key).unwrap().as_deref(), Some("{\"a\":1}"));
        let hits: i64 = store
            .lock()
            .query_row("SELECT hits FROM llm_cache", [], |r| r.get(0))
            .unwrap();
        assert_eq!(hits, 1);
    }

    #[test]
    fn call_stats_add_up() {
        let store = Store::open_in_memory().unwrap();
        for i in 0..3 {
            store
                .record_llm_call(&NewLlmCall {
                    profile: "p".into(),
                    model: "m".into(),
                    purpose: "pattern".into(),
                    latency_ms: 10.0,
                    prompt_tokens: Some(100),
                    completion_tokens: Some(20),
                    cached: i == 0,
                    ok: i != 2,
                    ..Default::default()
                })
                .unwrap();
        }
        let s = store.llm_call_stats(None).unwrap();
        assert_eq!((s.calls, s.cached, s.failed), (3, 1, 1));
        // The cached call's tokens were not spent.
        assert_eq!(s.prompt_tokens, 200);
        assert_eq!(s.total_latency_ms, 30.0);
    }
}
