//! What makes a backend dependable: the response cache, a concurrency limit and an optional
//! requests-per-minute limit per profile, retries with exponential backoff and jitter on
//! rate limits, server errors and timeouts (honouring `Retry-After`), bounded answers,
//! a circuit breaker that stops a run on errors that will not go away, cancellation, and a
//! log of every call with its cause of failure, its attempts and its run.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Backend, LlmError, LlmRequest, LlmResponse};
use crate::store::{NewLlmCall, Store, cache_key};

/// Purposes whose answers are judged right or wrong (evaluation, the judge, `lode llm
/// check`): they get the profile's answer temperature (0 unless set) when they set none.
pub const ANSWER_PURPOSES: &[&str] = &["eval", "judge", "check"];

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
    /// Answer repeated requests from the store's cache. Answers received are stored either
    /// way, so a `--no-cache` run refreshes the cache.
    pub use_cache: bool,
    /// The run the calls belong to, for the call log (see [`LlmClient::set_run`]).
    pub run_id: Option<i64>,
    /// After this many calls in a row fail with an error that will not go away (a refused
    /// key, an unknown model, a server that cannot be reached even after retries), the
    /// client stops sending and every later call fails at once with [`LlmError::Halted`].
    /// 0 never stops.
    pub breaker_after: u32,
    /// `max_tokens` of requests that set none, so no answer runs until the timeout.
    pub max_tokens: Option<u32>,
    /// Temperature of [`ANSWER_PURPOSES`] requests that set none.
    pub answer_temperature: Option<f64>,
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
            breaker_after: 3,
            max_tokens: Some(DEFAULT_MAX_TOKENS),
            answer_temperature: Some(0.0),
        }
    }
}

/// `max_tokens` when a profile sets none: room for a long SQL query and its JSON wrapper.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The circuit breaker's state.
#[derive(Default)]
struct Breaker {
    /// Calls in a row that failed with an error that will not go away.
    consecutive: u32,
    /// Why the client stopped sending, once it has.
    open: Option<String>,
}

/// A backend with limits, retries, cache and log. Cheap to share in an `Arc`.
pub struct LlmClient {
    backend: Arc<dyn Backend>,
    options: ClientOptions,
    permits: Semaphore,
    limiter: Option<governor::DefaultDirectRateLimiter>,
    store: Option<Arc<Store>>,
    cancel: CancellationToken,
    run_id: Mutex<Option<i64>>,
    breaker: Mutex<Breaker>,
    /// The structured-output mode last written to the store for this server.
    remembered_mode: Mutex<Option<&'static str>>,
    /// The call-log rows this client wrote, for attributing them to a run made later.
    call_ids: Mutex<Vec<i64>>,
    /// Cache writes and call-log writes that failed. A call's answer does not depend on them,
    /// so the call goes on; the task that owns the client reports them as warnings.
    store_errors: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LlmClient {
    pub fn new(
        backend: Arc<dyn Backend>,
        options: ClientOptions,
        store: Option<Arc<Store>>,
    ) -> LlmClient {
        // Evenly spaced starts: one request per period, no burst.
        let limiter = NonZeroU32::new(options.requests_per_minute).and_then(|rpm| {
            let period = Duration::from_secs_f64(60.0 / f64::from(rpm.get()));
            governor::Quota::with_period(period).map(governor::RateLimiter::direct)
        });
        // What this server was found to support, in an earlier process.
        let mut remembered = None;
        if let (Some(store), Some(key)) = (&store, backend.server_key())
            && let Ok(Some(mode)) = store.server_mode(&key)
        {
            remembered = backend.restore_structured_mode(&mode);
        }
        LlmClient {
            permits: Semaphore::new(options.max_concurrency.max(1)),
            limiter,
            backend,
            run_id: Mutex::new(options.run_id),
            options,
            store,
            cancel: CancellationToken::new(),
            breaker: Mutex::new(Breaker::default()),
            remembered_mode: Mutex::new(remembered),
            call_ids: Mutex::new(Vec::new()),
            store_errors: Mutex::new(Vec::new()),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Tags the calls from now on with this run, once the run is known.
    pub fn set_run(&self, run_id: i64) {
        *lock(&self.run_id) = Some(run_id);
    }

    /// Cancelling it stops every call in flight and every call to come.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Why the client stopped sending (the circuit breaker opened), if it has.
    pub fn halted(&self) -> Option<String> {
        lock(&self.breaker).open.clone()
    }

    /// The request as sent: `max_tokens` and, for answers, the temperature filled in where
    /// the request leaves them to the server.
    pub fn bounded(&self, request: &LlmRequest) -> LlmRequest {
        let mut r = request.clone();
        if r.sampling.max_tokens.is_none() {
            r.sampling.max_tokens = self.options.max_tokens;
        }
        if r.sampling.temperature.is_none() && ANSWER_PURPOSES.contains(&r.purpose.as_str()) {
            r.sampling.temperature = self.options.answer_temperature;
        }
        r
    }

    /// The cache key of a request as sent: the backend's identity of it (for a server: its
    /// address, the body after `extra_body` is merged) and the task. API keys are never
    /// part of a request, so never part of the cache.
    pub fn cache_key(&self, request: &LlmRequest) -> String {
        let request = self.bounded(request);
        // Plain data (strings, numbers, maps with string keys): serializing cannot fail.
        let task = serde_json::to_string(&request.task).unwrap_or_default();
        cache_key(&[&self.backend.cache_identity(&request), &task])
    }

    /// Sends a request: from the cache when it has the answer (and the cache is on), else to
    /// the backend under the limits, retrying what is worth retrying. Every call is logged in
    /// the store; answers received are stored in the cache.
    pub async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.call_traced(request).await.0
    }

    /// [`LlmClient::call`], with why each retried attempt was retried (for the answer and
    /// for a failure alike), for `lode llm check`.
    pub async fn call_traced(
        &self,
        request: &LlmRequest,
    ) -> (Result<LlmResponse, LlmError>, Vec<String>) {
        let started = Instant::now();
        if let Some(message) = self.halted() {
            // Nothing is sent, so nothing is logged: the call that opened the breaker was.
            return (Err(LlmError::Halted { message }), Vec::new());
        }
        let request = self.bounded(request);
        // The rules backend answers instantly and deterministically: nothing to cache.
        let cacheable = self.store.is_some() && self.backend.kind() != "rules";
        let key = cacheable.then(|| self.cache_key(&request));
        if self.options.use_cache
            && let (Some(store), Some(key)) = (&self.store, &key)
            && let Ok(Some(hit)) = store.cache_get(key)
            && let Ok(mut response) = serde_json::from_str::<LlmResponse>(&hit)
        {
            response.cached = true;
            response.latency = started.elapsed();
            response.attempts = 0;
            self.log(&request, &Ok(response.clone()), 0, started.elapsed());
            return (Ok(response), Vec::new());
        }
        // The backends redact their keys at the source; credential-looking tokens from any
        // backend are taken out here too, before the error is logged, shown or reported.
        let mut retries = Vec::new();
        let result = self
            .call_with_retries(&request, &mut retries)
            .await
            .map(|mut r| {
                r.attempts = retries.len() as u32 + 1;
                r.retries = retries.clone();
                r
            })
            .map_err(|e| e.redacted(&[]));
        if let (Ok(response), Some(store), Some(key)) = (&result, &self.store, &key) {
            let request_json = json!({
                "endpoint": self.backend.server_key(),
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
        self.remember_mode();
        let attempts = match &result {
            Ok(r) => r.attempts,
            Err(LlmError::Halted { .. } | LlmError::Cancelled) => retries.len() as u32,
            Err(_) => retries.len() as u32 + 1,
        };
        if !matches!(result, Err(LlmError::Halted { .. })) {
            self.log(&request, &result, attempts, started.elapsed());
        }
        (result, retries)
    }

    /// Counts failures that will not go away, and opens the breaker after
    /// `breaker_after` of them in a row; an answer closes the count.
    fn observe(&self, result: &Result<LlmResponse, LlmError>) {
        let mut b = lock(&self.breaker);
        match result {
            Err(e) if e.is_permanent() => {
                b.consecutive += 1;
                if self.options.breaker_after > 0
                    && b.consecutive >= self.options.breaker_after
                    && b.open.is_none()
                {
                    // Credential-looking tokens out, as for every error the client returns.
                    b.open = Some(crate::config::redact(
                        &format!(
                            "lode stopped calling profile `{}` ({} model {}) after {} calls in a row \
                         failed with errors that retrying will not fix; the last: {e}",
                            self.options.profile,
                            self.backend.kind(),
                            self.backend.model(),
                            b.consecutive
                        ),
                        &[],
                    ));
                }
            }
            // The server answered: it is reachable and takes the key and the model.
            Ok(_)
            | Err(
                LlmError::SchemaViolation { .. }
                | LlmError::BadResponse { .. }
                | LlmError::Truncated { .. },
            ) => b.consecutive = 0,
            Err(_) => {}
        }
    }

    async fn call_with_retries(
        &self,
        request: &LlmRequest,
        retries: &mut Vec<String>,
    ) -> Result<LlmResponse, LlmError> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.options.base_backoff)
            .with_max_delay(self.options.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.options.max_attempts.saturating_sub(1) as usize)
            .build();
        loop {
            if self.cancel.is_cancelled() {
                return Err(LlmError::Cancelled);
            }
            let (outcome, retry_in) = {
                let _permit = tokio::select! {
                    p = self.permits.acquire() => p.map_err(|_| LlmError::Cancelled)?,
                    _ = self.cancel.cancelled() => return Err(LlmError::Cancelled),
                };
                // Calls queued behind the one that opened the breaker are not sent.
                if let Some(message) = self.halted() {
                    return Err(LlmError::Halted { message });
                }
                self.wait_for_rate_slot().await?;
                let outcome = tokio::select! {
                    r = self.backend.complete(request) => r,
                    _ = self.cancel.cancelled() => return Err(LlmError::Cancelled),
                };
                let retry_in = match &outcome {
                    Err(e) if e.is_retryable() => delays
                        .next()
                        .map(|d| e.retry_after().unwrap_or(d).min(self.options.max_backoff)),
                    _ => None,
                };
                // A final outcome is counted before the permit is given back, so a call
                // waiting for it sees the breaker open and is not sent.
                if retry_in.is_none() {
                    self.observe(&outcome);
                }
                (outcome, retry_in)
            };
            match (outcome, retry_in) {
                (Ok(r), _) => return Ok(r),
                (Err(e), Some(delay)) => {
                    retries.push(e.to_string());
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.cancelled() => return Err(LlmError::Cancelled),
                    }
                }
                (Err(e), None) => return Err(e),
            }
        }
    }

    /// Spaces request starts evenly when a requests-per-minute limit is set.
    async fn wait_for_rate_slot(&self) -> Result<(), LlmError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        tokio::select! {
            _ = limiter.until_ready() => Ok(()),
            _ = self.cancel.cancelled() => Err(LlmError::Cancelled),
        }
    }

    /// Writes the structured-output mode the server was found to support to the store, when
    /// it changed, so the next process starts with it.
    fn remember_mode(&self) {
        let (Some(store), Some(key), Some(mode)) = (
            &self.store,
            self.backend.server_key(),
            self.backend.structured_mode(),
        ) else {
            return;
        };
        let mut remembered = lock(&self.remembered_mode);
        if *remembered == Some(mode) {
            return;
        }
        match store.put_server_mode(&key, mode, self.backend.structured_mode_reason().as_deref()) {
            Ok(()) => *remembered = Some(mode),
            Err(e) => {
                drop(remembered);
                self.store_error(format!("the server's output mode was not remembered: {e}"));
            }
        }
    }

    fn log(
        &self,
        request: &LlmRequest,
        result: &Result<LlmResponse, LlmError>,
        attempts: u32,
        elapsed: Duration,
    ) {
        let Some(store) = &self.store else { return };
        let (ok, cached, usage, error_kind, error) = match result {
            Ok(r) => (true, r.cached, r.usage, None, None),
            Err(e) => (false, false, None, Some(e.kind()), Some(e.to_string())),
        };
        let logged = store.record_llm_call(&NewLlmCall {
            run_id: *lock(&self.run_id),
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
            attempts,
        });
        match logged {
            Ok(id) => lock(&self.call_ids).push(id),
            Err(e) => self.store_error(format!("an LLM call was not logged: {e}")),
        }
    }

    /// The ids of the call-log rows written since the last call of this.
    pub fn take_call_ids(&self) -> Vec<i64> {
        std::mem::take(&mut *lock(&self.call_ids))
    }

    fn store_error(&self, message: String) {
        lock(&self.store_errors).push(message);
    }

    /// The store writes that failed since the last call of this (cache and call log), so the
    /// task that owns the client can report them.
    pub fn take_store_errors(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.store_errors))
    }
}
