//! The OpenAI-compatible chat client: `POST {base_url}/chat/completions` with a strict
//! `json_schema` response format; when a server says it does not support that, the
//! `json_object` format, then prompt-only JSON with tolerant extraction, and one repair
//! request for an answer that does not fit. Serves OpenAI, Lamini's `/inf`, vLLM, SGLang,
//! Ollama, llama-server, LM Studio and Together.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};

use super::output_schema::extract_json;
use super::{Backend, BoxFuture, LlmError, LlmRequest, LlmResponse, Message, Usage};
use crate::config::{Secret, redact};

const MODE_UNKNOWN: u8 = 0;
const MODE_SCHEMA: u8 = 1;
const MODE_OBJECT: u8 = 2;
const MODE_PROMPT: u8 = 3;

fn mode_name(mode: u8) -> Option<&'static str> {
    match mode {
        MODE_SCHEMA => Some("json_schema"),
        MODE_OBJECT => Some("json_object"),
        MODE_PROMPT => Some("prompt_only"),
        _ => None,
    }
}

/// Whether a refusal says the server does not take the `response_format` asked for (and
/// not that something else about the request is wrong, which another format would not fix).
pub fn refuses_response_format(status: u16, message: &str) -> bool {
    if !matches!(status, 400 | 415 | 422 | 501) {
        return false;
    }
    let m = message.to_ascii_lowercase();
    [
        "response_format",
        "response format",
        "json_schema",
        "json schema",
        "json_object",
        "structured output",
        "structured_output",
        "guided_json",
        "guided decoding",
        "grammar",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

pub struct OpenAiBackend {
    http: reqwest::Client,
    base_url: String,
    model: String,
    key: Option<Secret>,
    /// Redacted from every error text: the key and the other keys the configuration knows.
    secrets: Vec<Secret>,
    extra_body: Json,
    timeout: Duration,
    /// How the server takes structured answers (learnt from its refusals).
    mode: AtomicU8,
    /// The server's refusal that made lode ask it in the current mode.
    mode_reason: Mutex<Option<String>>,
}

impl OpenAiBackend {
    pub fn new(
        base_url: &str,
        model: &str,
        key: Option<Secret>,
        extra_body: Json,
        timeout: Duration,
    ) -> Result<OpenAiBackend, LlmError> {
        for key in ["model", "messages"] {
            if let Some(v) = extra_body.get(key)
                && (key != "model" || v.as_str() != Some(model))
            {
                return Err(LlmError::Config {
                    message: format!(
                        "extra_body sets `{key}`, which would silently replace what lode sends \
                         (model {model}); set the profile's `model:` instead and take `{key}` \
                         out of extra_body"
                    ),
                });
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .user_agent(crate::USER_AGENT)
            .build()
            .map_err(|e| LlmError::Config {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(OpenAiBackend {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            secrets: key.iter().cloned().collect(),
            key,
            extra_body,
            timeout,
            mode: AtomicU8::new(MODE_UNKNOWN),
            mode_reason: Mutex::new(None),
        })
    }

    /// Also redacts these keys (every key of the configuration) from error texts; the
    /// backend's own key always is.
    pub fn with_known_secrets(mut self, known: Vec<Secret>) -> Self {
        self.secrets.extend(known);
        self
    }

    /// A server's text, as it may appear in an error: without keys or credentials.
    fn scrub(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// The JSON body sent for a request in a structured-output mode: with `json_schema` the
    /// schema goes in `response_format`; with `json_object` that format is asked for and
    /// the schema's instruction appended to the last user message; with `prompt_only` only
    /// the instruction. `extra_body` is merged last (it cannot carry `model` or `messages`).
    fn body(&self, request: &LlmRequest, mode: u8) -> Json {
        let mut messages = request.messages.clone();
        if let Some(schema) = &request.schema
            && mode != MODE_SCHEMA
        {
            match messages.iter_mut().rev().find(|m| m.role == "user") {
                Some(m) => {
                    m.content.push_str("\n\n");
                    m.content.push_str(&schema.prompt_instruction());
                }
                None => messages.push(Message::user(schema.prompt_instruction())),
            }
        }
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        body.insert("messages".into(), json!(messages));
        if let Some(t) = request.sampling.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(m) = request.sampling.max_tokens {
            body.insert("max_tokens".into(), json!(m));
        }
        if let Some(s) = request.sampling.seed {
            body.insert("seed".into(), json!(s));
        }
        if let Some(schema) = &request.schema {
            match mode {
                MODE_SCHEMA => {
                    body.insert(
                        "response_format".into(),
                        json!({
                            "type": "json_schema",
                            "json_schema": {
                                "name": schema.name,
                                "schema": schema.json_schema(),
                                "strict": true,
                            }
                        }),
                    );
                }
                MODE_OBJECT => {
                    body.insert("response_format".into(), json!({"type": "json_object"}));
                }
                _ => {}
            }
        }
        if let Json::Object(extra) = &self.extra_body {
            for (k, v) in extra {
                if k != "model" && k != "messages" {
                    body.insert(k.clone(), v.clone());
                }
            }
        }
        Json::Object(body)
    }

    /// The JSON body sent for a request: `structured` asks for `json_schema`, else the
    /// shape is asked for in the prompt only.
    pub fn request_body(&self, request: &LlmRequest, structured: bool) -> Json {
        self.body(request, if structured { MODE_SCHEMA } else { MODE_PROMPT })
    }

    /// Where requests go, for messages: `model M at URL`.
    fn endpoint(&self) -> String {
        format!("model {} at {}", self.model, self.base_url)
    }

    /// Sends a request with the key and the timeout; the body of a 2xx reply, else the
    /// typed error for the status (Retry-After honoured).
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, LlmError> {
        let mut req = req.timeout(self.timeout);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key.expose());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(e, self.timeout))?;
        let status = resp.status().as_u16();
        let retry = retry_after(resp.headers());
        let text = resp
            .text()
            .await
            .map_err(|e| transport_error(e, self.timeout))?;
        if !(200..300).contains(&status) {
            // Redacted before the message is picked and clipped, so no part of a key is left.
            return Err(http_error(
                status,
                &self.scrub(&text),
                retry,
                &self.endpoint(),
            ));
        }
        Ok(text)
    }

    /// One chat request: the answer's text, its token counts, and whether it was cut at
    /// the token limit (`finish_reason: length`).
    async fn post(&self, body: &Json) -> Result<(String, Option<Usage>, bool), LlmError> {
        let text = self
            .send(
                self.http
                    .post(format!("{}/chat/completions", self.base_url))
                    .json(body),
            )
            .await?;
        let v: Json = serde_json::from_str(&text).map_err(|e| LlmError::BadResponse {
            message: format!(
                "the server's reply is not JSON ({e}): {}",
                clip(&self.scrub(&text))
            ),
        })?;
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| LlmError::BadResponse {
                message: format!(
                    "no choices[0].message.content in {}",
                    clip(&self.scrub(&text))
                ),
            })?
            .to_string();
        let usage = v.get("usage").and_then(|u| {
            Some(Usage {
                prompt_tokens: u.get("prompt_tokens")?.as_u64()?,
                completion_tokens: u.get("completion_tokens")?.as_u64().unwrap_or(0),
            })
        });
        let cut = v["choices"][0]["finish_reason"].as_str() == Some("length");
        Ok((content, usage, cut))
    }

    /// The error for an answer cut at the token limit.
    fn truncated(&self, request: &LlmRequest) -> LlmError {
        LlmError::Truncated {
            message: format!(
                "{} stopped at max_tokens {} (finish_reason: length); raise `max_tokens` in \
                 the profile, or ask for a shorter answer",
                self.endpoint(),
                request
                    .sampling
                    .max_tokens
                    .map_or_else(|| "(the server's default)".to_string(), |m| m.to_string())
            ),
        }
    }

    /// Sends the request in the current mode, stepping down (json_schema → json_object →
    /// prompt-only) when, and only when, the server says it does not take the format.
    async fn post_structured(
        &self,
        request: &LlmRequest,
    ) -> Result<(String, Option<Usage>, bool, u8), LlmError> {
        let mut mode = match (request.schema.is_some(), self.mode.load(Ordering::Relaxed)) {
            (false, _) => MODE_PROMPT,
            (true, MODE_UNKNOWN) => MODE_SCHEMA,
            (true, m) => m,
        };
        loop {
            match self.post(&self.body(request, mode)).await {
                Err(LlmError::BadRequest { status, message })
                    if mode != MODE_PROMPT && refuses_response_format(status, &message) =>
                {
                    mode += 1;
                    self.mode.store(mode, Ordering::Relaxed);
                    *self.mode_reason.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format!("HTTP {status}: {}", clip(&message)));
                }
                Err(e) => return Err(e),
                Ok((text, usage, cut)) => {
                    if request.schema.is_some() {
                        self.mode.store(mode, Ordering::Relaxed);
                    }
                    return Ok((text, usage, cut, mode));
                }
            }
        }
    }

    async fn complete_inner(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let start = Instant::now();
        let (text, usage, cut, mode) = self.post_structured(request).await?;
        let Some(schema) = &request.schema else {
            if cut {
                return Err(self.truncated(request));
            }
            return Ok(LlmResponse {
                json: None,
                text,
                usage,
                latency: start.elapsed(),
                ..LlmResponse::default()
            });
        };
        let parsed = extract_json(&text)
            .ok_or_else(|| "no JSON object in the answer".to_string())
            .and_then(|v| schema.check(v));
        match parsed {
            Ok(json) => Ok(LlmResponse {
                json: Some(json),
                text,
                usage,
                latency: start.elapsed(),
                ..LlmResponse::default()
            }),
            // Cut at the token limit: asking again would be cut again.
            Err(_) if cut => Err(self.truncated(request)),
            Err(problem) => {
                // One repair request: show the model its answer and the problem.
                let mut repair = request.clone();
                repair.messages.push(Message::assistant(text.clone()));
                repair.messages.push(Message::user(format!(
                    "That answer cannot be used ({problem}). {}",
                    schema.prompt_instruction()
                )));
                let (text2, usage2, cut2) = self.post(&self.body(&repair, mode)).await?;
                let json = extract_json(&text2)
                    .ok_or_else(|| "no JSON object in the answer".to_string())
                    .and_then(|v| schema.check(v))
                    .map_err(|message| {
                        if cut2 {
                            self.truncated(request)
                        } else {
                            LlmError::SchemaViolation {
                                message,
                                text: clip(&self.scrub(&text2)),
                            }
                        }
                    })?;
                let usage = match (usage, usage2) {
                    (Some(a), Some(b)) => Some(Usage {
                        prompt_tokens: a.prompt_tokens + b.prompt_tokens,
                        completion_tokens: a.completion_tokens + b.completion_tokens,
                    }),
                    (a, b) => a.or(b),
                };
                Ok(LlmResponse {
                    json: Some(json),
                    text: text2,
                    usage,
                    latency: start.elapsed(),
                    ..LlmResponse::default()
                })
            }
        }
    }
}

impl Backend for OpenAiBackend {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn complete<'a>(
        &'a self,
        request: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<LlmResponse, LlmError>> {
        Box::pin(async move {
            self.complete_inner(request)
                .await
                .map_err(|e| e.redacted(&self.secrets))
        })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async move {
            let text = self
                .send(self.http.get(format!("{}/models", self.base_url)))
                .await
                .map_err(|e| e.redacted(&self.secrets))?;
            let v: Json = serde_json::from_str(&text).map_err(|e| LlmError::BadResponse {
                message: format!("the model list is not JSON ({e})"),
            })?;
            Ok(v["data"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["id"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn structured_mode(&self) -> Option<&'static str> {
        mode_name(self.mode.load(Ordering::Relaxed))
    }

    fn structured_mode_reason(&self) -> Option<String> {
        self.mode_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn restore_structured_mode(&self, mode: &str) -> Option<&'static str> {
        let m = [MODE_SCHEMA, MODE_OBJECT, MODE_PROMPT]
            .into_iter()
            .find(|&m| mode_name(m) == Some(mode))?;
        self.mode.store(m, Ordering::Relaxed);
        mode_name(m)
    }

    fn server_key(&self) -> Option<String> {
        Some(format!("openai {} {}", self.base_url, self.model))
    }

    fn cache_identity(&self, request: &LlmRequest) -> String {
        // The body as the first request of the call sends it (after extra_body), whatever
        // mode the server was found to need: the answer is checked against the schema
        // either way.
        format!(
            "openai\u{1f}{}\u{1f}{}",
            self.base_url,
            self.body(request, MODE_SCHEMA)
        )
    }
}

pub(super) fn transport_error(e: reqwest::Error, timeout: Duration) -> LlmError {
    if e.is_timeout() {
        LlmError::Timeout(timeout)
    } else if e.is_connect() {
        LlmError::Network {
            message: format!("cannot connect: {}", root_cause(&e)),
        }
    } else {
        LlmError::Network {
            message: root_cause(&e),
        }
    }
}

/// The innermost cause of an error: "Connection refused (os error 111)" rather than
/// "error sending request for url (…)". Shared with the tuning providers.
pub(crate) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

/// The wait a server asks for, at most `cap`: `retry-after-ms` (OpenAI's), else
/// `Retry-After` in seconds (HTTP dates are rare from these servers and ignored). Shared by
/// the LLM clients and the tuning providers.
pub(crate) fn retry_after_capped(
    headers: &reqwest::header::HeaderMap,
    cap: Duration,
) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| number("retry-after"))
        .map(|s| Duration::from_secs_f64(s.min(cap.as_secs_f64())))
}

/// The wait an LLM server asks for; more than a day is capped there (and never crashes lode).
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after_capped(headers, Duration::from_secs_f64(crate::config::MAX_SECONDS))
}

/// The provider's message from an error body of any usual shape.
pub(super) fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Json>(body) {
        for path in [
            &["error", "message"][..],
            &["error"],
            &["detail"],
            &["message"],
        ] {
            let mut cur = &v;
            for k in path {
                cur = &cur[*k];
            }
            if let Some(s) = cur.as_str() {
                return s.to_string();
            }
            if path == ["detail"] && !cur.is_null() {
                return cur.to_string();
            }
        }
    }
    clip(body.trim())
}

/// The typed error of an HTTP status; `endpoint` (`model M at URL`) is named where it helps
/// to find the mistake.
fn http_error(status: u16, body: &str, retry_after: Option<Duration>, endpoint: &str) -> LlmError {
    let message = error_message(body);
    match status {
        401 | 403 => LlmError::Auth {
            message: format!(
                "{message} ({endpoint} refused the key: check the profile's api_key or api_key_env)"
            ),
        },
        429 => LlmError::RateLimited {
            message,
            retry_after,
        },
        404 => LlmError::ModelUnavailable {
            message: format!("{message} ({endpoint}: check base_url and model)"),
            retryable: false,
        },
        500..=599 => LlmError::Server {
            status,
            message: format!("{message} ({endpoint})"),
        },
        _ => LlmError::BadRequest { status, message },
    }
}

pub(super) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(300).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
