//! Lamini's completions API for tuned Lamini models: `POST {api_url}/v1/completions` with
//! `model_name`, `prompt` (the Llama 3 chat template the original uses) and `output_type`,
//! Bearer auth, and Lamini's error codes turned into messages a user can act on.

use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};

use super::openai::{clip, error_message, retry_after, transport_error};
use super::{Backend, BoxFuture, LlmError, LlmRequest, LlmResponse, Message};
use crate::config::{Secret, redact};

pub struct LaminiBackend {
    http: reqwest::Client,
    base_url: String,
    model: String,
    key: Secret,
    /// Redacted from every error text: the key and the other keys the configuration knows.
    secrets: Vec<Secret>,
    timeout: Duration,
}

/// The messages in the Llama 3 instruct template, as the original's inference prompt.
pub fn llama3_prompt(messages: &[Message]) -> String {
    let mut s = String::from("<|begin_of_text|>");
    for m in messages {
        s.push_str(&format!(
            "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
            m.role, m.content
        ));
    }
    s.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
    s
}

impl LaminiBackend {
    pub fn new(
        base_url: &str,
        model: &str,
        key: Secret,
        timeout: Duration,
    ) -> Result<LaminiBackend, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(crate::USER_AGENT)
            .build()
            .map_err(|e| LlmError::Config {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        // The path is `/v1/completions` under the API's root: a root given with its `/v1`
        // (as Lamini's docs sometimes write it) is taken as the root.
        let root = base_url.trim_end_matches('/');
        let root = root.strip_suffix("/v1").unwrap_or(root);
        Ok(LaminiBackend {
            http,
            base_url: root.to_string(),
            model: model.to_string(),
            secrets: vec![key.clone()],
            key,
            timeout,
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

    /// The JSON body sent for a request.
    pub fn request_body(&self, request: &LlmRequest) -> Json {
        let output_type = request.schema.as_ref().map(|s| {
            let mut m = Map::new();
            for (k, t) in &s.fields {
                let lamini_type = match t.as_str() {
                    "int" | "integer" => "int",
                    "float" | "number" => "float",
                    "bool" | "boolean" => "bool",
                    _ => "str",
                };
                m.insert(k.clone(), json!(lamini_type));
            }
            Json::Object(m)
        });
        let mut body = json!({
            "model_name": self.model,
            "prompt": llama3_prompt(&request.messages),
            "output_type": output_type,
        });
        if let Some(max) = request.sampling.max_tokens {
            body["max_new_tokens"] = json!(max);
        }
        body
    }

    async fn complete_inner(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let start = Instant::now();
        let resp = self
            .http
            .post(format!("{}/v1/completions", self.base_url))
            .timeout(self.timeout)
            .bearer_auth(self.key.expose())
            .json(&self.request_body(request))
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
            return Err(lamini_error(
                status,
                &self.scrub(&text),
                retry,
                &self.model,
                &self.base_url,
            ));
        }
        let v: Json = serde_json::from_str(&text).map_err(|e| LlmError::BadResponse {
            message: format!(
                "Lamini's reply is not JSON ({e}): {}",
                clip(&self.scrub(&text))
            ),
        })?;
        let (json, text) = match &request.schema {
            Some(schema) => {
                let checked =
                    schema
                        .check(v.clone())
                        .map_err(|message| LlmError::SchemaViolation {
                            message,
                            text: clip(&self.scrub(&text)),
                        })?;
                (Some(checked), text)
            }
            None => {
                let out = v["output"]
                    .as_str()
                    .ok_or_else(|| LlmError::BadResponse {
                        message: format!(
                            "no `output` in Lamini's reply: {}",
                            clip(&self.scrub(&text))
                        ),
                    })?
                    .to_string();
                (None, out)
            }
        };
        Ok(LlmResponse {
            json,
            text,
            usage: None,
            latency: start.elapsed(),
            ..LlmResponse::default()
        })
    }
}

fn lamini_error(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    model: &str,
    url: &str,
) -> LlmError {
    let message = error_message(body);
    match status {
        401 | 403 => LlmError::Auth {
            message: format!(
                "Lamini at {url} refused the API key ({message}); set LAMINI_API_KEY or api.key \
                 in config.yml"
            ),
        },
        429 => LlmError::RateLimited {
            message: format!("Lamini rate limit: {message}"),
            retry_after,
        },
        513 => LlmError::ModelUnavailable {
            message: format!("Lamini is still downloading model {model}; lode retries ({message})"),
            retryable: true,
        },
        594 => LlmError::ModelUnavailable {
            message: format!(
                "Lamini at {url} has no model {model} (HTTP 594: {message}); check the name, or \
                 that the tuning job finished (`lode jobs`)"
            ),
            retryable: false,
        },
        422 => LlmError::BadRequest {
            status,
            message: format!("{message} (Lamini at {url} rejected the request for model {model})"),
        },
        524 => LlmError::Timeout(Duration::ZERO),
        500..=599 => LlmError::Server {
            status,
            message: format!("{message} (model {model} at {url})"),
        },
        _ => LlmError::BadRequest {
            status,
            message: format!("{message} (model {model} at {url})"),
        },
    }
}

impl Backend for LaminiBackend {
    fn kind(&self) -> &'static str {
        "lamini"
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

    fn structured_mode(&self) -> Option<&'static str> {
        Some("output_type")
    }

    fn server_key(&self) -> Option<String> {
        Some(format!("lamini {} {}", self.base_url, self.model))
    }

    fn cache_identity(&self, request: &LlmRequest) -> String {
        format!(
            "lamini\u{1f}{}\u{1f}{}",
            self.base_url,
            self.request_body(request)
        )
    }
}
