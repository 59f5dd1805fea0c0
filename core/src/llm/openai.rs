//! The OpenAI-compatible chat client: `POST {base_url}/chat/completions` with a strict
//! `json_schema` response format; when a server refuses that (400), prompt-only JSON with
//! tolerant extraction, then one repair request. Serves OpenAI, Lamini's `/inf`, vLLM,
//! SGLang, Ollama, llama-server, LM Studio and Together.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};

use super::output_schema::extract_json;
use super::{Backend, BoxFuture, LlmError, LlmRequest, LlmResponse, Message, Usage};
use crate::config::{Secret, redact};

const MODE_UNKNOWN: u8 = 0;
const MODE_SCHEMA: u8 = 1;
const MODE_PROMPT: u8 = 2;

pub struct OpenAiBackend {
    http: reqwest::Client,
    base_url: String,
    model: String,
    key: Option<Secret>,
    /// Redacted from every error text: the key and the other keys the configuration knows.
    secrets: Vec<Secret>,
    extra_body: Json,
    timeout: Duration,
    /// Whether the server enforces json_schema (learned from its first refusal).
    mode: AtomicU8,
}

impl OpenAiBackend {
    pub fn new(
        base_url: &str,
        model: &str,
        key: Option<Secret>,
        extra_body: Json,
        timeout: Duration,
    ) -> Result<OpenAiBackend, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
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

    /// The JSON body sent for a request. With `structured`, the schema goes in
    /// `response_format`; without, its instruction is appended to the last user message.
    pub fn request_body(&self, request: &LlmRequest, structured: bool) -> Json {
        let mut messages = request.messages.clone();
        if let Some(schema) = &request.schema
            && !structured
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
        if let Some(schema) = &request.schema
            && structured
        {
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
        if let Json::Object(extra) = &self.extra_body {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        Json::Object(body)
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
            return Err(http_error(status, &self.scrub(&text), retry));
        }
        Ok(text)
    }

    async fn post(&self, body: &Json) -> Result<(String, Option<Usage>), LlmError> {
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
        Ok((content, usage))
    }

    async fn complete_inner(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let start = Instant::now();
        let mut structured =
            request.schema.is_some() && self.mode.load(Ordering::Relaxed) != MODE_PROMPT;
        let first = self.post(&self.request_body(request, structured)).await;
        let (text, usage) = match first {
            Err(LlmError::BadRequest { .. }) if structured => {
                // The server refused json_schema: ask in the prompt from now on.
                self.mode.store(MODE_PROMPT, Ordering::Relaxed);
                structured = false;
                self.post(&self.request_body(request, false)).await?
            }
            other => other?,
        };
        if structured {
            self.mode.store(MODE_SCHEMA, Ordering::Relaxed);
        }
        let Some(schema) = &request.schema else {
            return Ok(LlmResponse {
                json: None,
                text,
                usage,
                latency: start.elapsed(),
                cached: false,
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
                cached: false,
            }),
            Err(problem) => {
                // One repair request: show the model its answer and the problem.
                let mut repair = request.clone();
                repair.messages.push(Message::assistant(text.clone()));
                repair.messages.push(Message::user(format!(
                    "That answer cannot be used ({problem}). {}",
                    schema.prompt_instruction()
                )));
                let (text2, usage2) = self.post(&self.request_body(&repair, structured)).await?;
                let json = extract_json(&text2)
                    .ok_or_else(|| "no JSON object in the answer".to_string())
                    .and_then(|v| schema.check(v))
                    .map_err(|message| LlmError::SchemaViolation {
                        message,
                        text: clip(&self.scrub(&text2)),
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
                    cached: false,
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
        match self.mode.load(Ordering::Relaxed) {
            MODE_SCHEMA => Some("json_schema"),
            MODE_PROMPT => Some("prompt_only"),
            _ => None,
        }
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

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

/// `Retry-After` in seconds (HTTP dates are rare from LLM servers and ignored).
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        // A server asking for more than a day is capped there (and never crashes lode).
        .map(|s| Duration::from_secs_f64(s.min(crate::config::MAX_SECONDS)))
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

fn http_error(status: u16, body: &str, retry_after: Option<Duration>) -> LlmError {
    let message = error_message(body);
    match status {
        401 | 403 => LlmError::Auth {
            message: format!("{message} (check the profile's api_key or api_key_env)"),
        },
        429 => LlmError::RateLimited {
            message,
            retry_after,
        },
        404 => LlmError::ModelUnavailable {
            message: format!("{message} (check base_url and model)"),
            retryable: false,
        },
        500..=599 => LlmError::Server { status, message },
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
