//! What makes a backend dependable: the response cache, a concurrency limit and an optional
//! requests-per-minute limit per profile, retries with exponential backoff and jitter on
//! rate limits, server errors and timeouts (honouring `Retry-After`), cancellation, and a
//! log of every call with its cause of failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Backend, LlmError, LlmRequest, LlmResponse};
use crate::store::{NewLlmCall, Store, cache_key};

/// Limits and policies of one profile's client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The profile's name, recorded with calls and cache entries.
    pub profile: String,
    pub max_concurrency: usize,
    /// 0 means no limit.
    pub requests_per_minute: u32,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Serve repeated requests from the store's cache (and fill it).
    pub use_cache: bool,
    /// The run the calls belong to, for the call log.
    pub run_id: Option<i64>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            profile: "default".into(),
            max_concurrency: 8,
            requests_per_minute: 0,
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            use_cache: true,
            run_id: None,
        }
    }
}

/// A backend with limits, retries, cache and log. Cheap to share in an `Arc`.
pub struct LlmClient {
    backend: Arc<dyn Backend>,
    options: ClientOptions,
    permits: Semaphore,
    next_slot: Mutex<Instant>,
    store: Option<Arc<Store>>,
    cancel: CancellationToken,
    /// Cache writes and call-log writes that failed. A call's answer does not depend on them,
    /// so the call goes on; the task that owns the client reports them as warnings.
    store_errors: std::sync::Mutex<Vec<String>>,
}

impl LlmClient {
    pub fn new(
        backend: Arc<dyn Backend>,
        options: ClientOptions,
        store: Option<Arc<Store>>,
    ) -> LlmClient {
        LlmClient {
            permits: Semaphore::new(options.max_concurrency.max(1)),
            backend,
            options,
            next_slot: Mutex::new(Instant::now()),
            store,
            cancel: CancellationToken::new(),
            store_errors: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Cancelling it stops every call in flight and every call to come.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The cache key of a request: backend, model, messages, schema and sampling. API keys are
    /// never part of a request, so never part of the cache.
    pub fn cache_key(&self, request: &LlmRequest) -> String {
        // Plain data (strings, numbers, maps with string keys): serializing cannot fail.
        let messages = serde_json::to_string(&request.messages).unwrap_or_default();
        let schema = serde_json::to_string(&request.schema).unwrap_or_default();
        let sampling = serde_json::to_string(&request.sampling).unwrap_or_default();
        let task = serde_json::to_string(&request.task).unwrap_or_default();
        cache_key(&[
            self.backend.kind(),
            self.backend.model(),
            &messages,
            &schema,
            &sampling,
            &task,
        ])
    }

    /// Sends a request: from the cache when it has the answer, else to the backend under the
    /// limits, retrying what is worth retrying. Every call is logged in the store.
    pub async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let started = Instant::now();
        // The rules backend answers instantly and deterministically: nothing to cache.
        let cacheable = self.options.use_cache && self.backend.kind() != "rules";
        let key = cacheable.then(|| self.cache_key(request));
        if let (Some(store), Some(key)) = (&self.store, &key)
            && let Ok(Some(hit)) = store.cache_get(key)
            && let Ok(mut response) = serde_json::from_str::<LlmResponse>(&hit)
        {
            response.cached = true;
            response.latency = started.elapsed();
            self.log(request, &Ok(response.clone()), started.elapsed());
            return Ok(response);
        }
        // The backends redact their keys at the source; credential-looking tokens from any
        // backend are taken out here too, before the error is logged, shown or reported.
        let result = self
            .call_with_retries(request)
            .await
            .map_err(|e| e.redacted(&[]));
        if let (Ok(response), Some(store), Some(key)) = (&result, &self.store, &key) {
            let request_json = json!({
                "messages": request.messages,
                "schema": request.schema,
                "sampling": request.sampling,
            })
            .to_string();
            // A response is plain data: serializing it cannot fail.
            if let Ok(response_json) = serde_json::to_string(response)
                && let Err(e) = store.cache_put(
                    key,
                    &self.options.profile,
                    self.backend.model(),
                    &request_json,
                    &response_json,
                )
            {
                self.store_error(format!("an answer was not cached: {e}"));
            }
        }
        self.log(request, &result, started.elapsed());
        result
    }

    async fn call_with_retries(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.cancel.is_cancelled() {
                return Err(LlmError::Cancelled);
            }
            let outcome = {
                let _permit = tokio::select! {
                    p = self.permits.acquire() => p.map_err(|_| LlmError::Cancelled)?,
                    _ = self.cancel.cancelled() => return Err(LlmError::Cancelled),
                };
                self.wait_for_rate_slot().await?;
                tokio::select! {
                    r = self.backend.complete(request) => r,
                    _ = self.cancel.cancelled() => return Err(LlmError::Cancelled),
                }
            };
            match outcome {
                Ok(r) => return Ok(r),
                Err(e) if e.is_retryable() && attempt < self.options.max_attempts => {
                    let delay = e.retry_after().unwrap_or_else(|| self.backoff(attempt));
                    tokio::select! {
                        _ = tokio::time::sleep(delay.min(self.options.max_backoff)) => {}
                        _ = self.cancel.cancelled() => return Err(LlmError::Cancelled),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Exponential backoff with ±50% jitter, so parallel retries spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.options.base_backoff.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
        let nanos = Instant::now().elapsed().subsec_nanos() as u64
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos() as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let jitter = 0.5 + (nanos % 1000) as f64 / 1000.0;
        Duration::from_secs_f64((base * jitter).min(self.options.max_backoff.as_secs_f64()))
    }

    /// Spaces request starts evenly when a requests-per-minute limit is set.
    async fn wait_for_rate_slot(&self) -> Result<(), LlmError> {
        let rpm = self.options.requests_per_minute;
        if rpm == 0 {
            return Ok(());
        }
        let interval = Duration::from_secs_f64(60.0 / rpm as f64);
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        tokio::select! {
            _ = tokio::time::sleep_until(slot.into()) => Ok(()),
            _ = self.cancel.cancelled() => Err(LlmError::Cancelled),
        }
    }

    fn log(&self, request: &LlmRequest, result: &Result<LlmResponse, LlmError>, elapsed: Duration) {
        let Some(store) = &self.store else { return };
        let (ok, cached, usage, error_kind, error) = match result {
            Ok(r) => (true, r.cached, r.usage, None, None),
            Err(e) => (false, false, None, Some(e.kind()), Some(e.to_string())),
        };
        let logged = store.record_llm_call(&NewLlmCall {
            run_id: self.options.run_id,
            profile: self.options.profile.clone(),
            model: self.backend.model().to_string(),
            purpose: request.purpose.clone(),
            latency_ms: elapsed.as_secs_f64() * 1000.0,
            prompt_tokens: usage.map(|u| u.prompt_tokens as i64),
            completion_tokens: usage.map(|u| u.completion_tokens as i64),
            cached,
            ok,
            error_kind,
            error,
        });
        if let Err(e) = logged {
            self.store_error(format!("an LLM call was not logged: {e}"));
        }
    }

    fn store_error(&self, message: String) {
        self.store_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }

    /// The store writes that failed since the last call of this (cache and call log), so the
    /// task that owns the client can report them.
    pub fn take_store_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.store_errors.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
