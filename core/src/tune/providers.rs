//! Hosted fine-tuning: Lamini memory tuning (`POST /v1/train`, job status, cancel) and
//! OpenAI fine-tuning (file upload, job create, retrieve, events paged with `after`,
//! cancel). Statuses map onto [`JobStatus`], raw status kept.
//!
//! Every request sends `User-Agent: lode/<version>`. A failed request is a
//! [`TuneError::Provider`] naming the provider, the endpoint and the job or model it was
//! about, with the HTTP status, whether it is worth trying again (the server could not be
//! reached, timed out, was rate limited or failed with a 5xx) and the server's `Retry-After`.
//! Keys are redacted from every message.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::{JobStatus, JobUpdate, Provider, TuneError, dataset};
use crate::config::{Config, Secret, redact};
use crate::llm::BoxFuture;
use crate::project::Project;
use crate::store::TuneProvider;

fn http() -> Result<reqwest::Client, TuneError> {
    reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| TuneError::Refused(format!("cannot build the HTTP client: {e}")))
}

/// The longest `Retry-After` honoured (a server asking for more is waited on this long).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Who makes a call and about what, for its error messages.
struct Call<'a> {
    provider: &'static str,
    /// The job or model the call is about: `job ftjob-1`, `model gpt-4o-mini`.
    subject: String,
    /// What to check when the server refuses the key.
    key_hint: &'a str,
    /// Redacted from every error text: the key and the other keys the configuration knows.
    secrets: &'a [Secret],
}

impl Call<'_> {
    fn fail(
        &self,
        endpoint: &str,
        detail: &str,
        transient: bool,
        status: Option<u16>,
        retry_after: Option<Duration>,
    ) -> TuneError {
        TuneError::Provider {
            provider: self.provider.to_string(),
            message: redact(
                &format!("{endpoint} ({}): {detail}", self.subject),
                self.secrets,
            ),
            transient,
            status,
            retry_after,
        }
    }

    /// The error for a reply with a status outside 2xx.
    fn http_error(
        &self,
        endpoint: &str,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
    ) -> TuneError {
        // Redacted before the message is picked and clipped, so no part of a key is left.
        let body = &redact(body, self.secrets);
        let v: Json = serde_json::from_str(body).unwrap_or(Json::Null);
        let msg = v["error"]["message"]
            .as_str()
            .or(v["detail"].as_str())
            .or(v["error"].as_str())
            .or(v["message"].as_str())
            .map(String::from)
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let transient = is_transient_status(status);
        let hint = match status {
            401 | 403 => format!("the API key was refused: {}", self.key_hint),
            404 => format!(
                "{} knows no {} here: check it and the base URL",
                self.provider, self.subject
            ),
            400 | 422 => "the request was refused as invalid".into(),
            408 => "the server timed out".into(),
            429 => "rate limited".into(),
            _ if transient => format!("a server error at {}", self.provider),
            _ => String::new(),
        };
        let detail = match (msg.is_empty(), hint.is_empty()) {
            (true, true) => format!("HTTP {status}"),
            (true, false) => format!("HTTP {status} ({hint})"),
            (false, true) => format!("HTTP {status}: {msg}"),
            (false, false) => format!("HTTP {status}: {msg} ({hint})"),
        };
        self.fail(endpoint, &detail, transient, Some(status), retry_after)
    }

    /// Sends a request and reads its JSON reply.
    async fn send_json(&self, req: reqwest::RequestBuilder) -> Result<Json, TuneError> {
        let (client, req) = req.build_split();
        let req = req.map_err(|e| {
            self.fail(
                "a request",
                &format!("cannot build it: {}", crate::llm::root_cause(&e)),
                false,
                None,
                None,
            )
        })?;
        let endpoint = format!("{} {}", req.method(), req.url().path());
        let resp = client.execute(req).await.map_err(|e| {
            let detail = if e.is_timeout() {
                "no answer: timed out".to_string()
            } else {
                format!("no answer: {}", crate::llm::root_cause(&e))
            };
            // A request that could not be built or followed (a bad URL, a redirect loop)
            // fails the same way every time; the rest is the network.
            let transient = !(e.is_builder() || e.is_redirect());
            self.fail(&endpoint, &detail, transient, None, None)
        })?;
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers());
        let text = resp.text().await;
        if !(200..300).contains(&status) {
            // A body that cannot be read leaves the status alone to explain the failure.
            return Err(self.http_error(&endpoint, status, &text.unwrap_or_default(), wait));
        }
        let text = text.map_err(|e| {
            self.fail(
                &endpoint,
                &format!("the reply was cut off: {}", crate::llm::root_cause(&e)),
                true,
                Some(status),
                None,
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            self.fail(
                &endpoint,
                &format!("the reply is not JSON ({e}); is the base URL right?"),
                false,
                Some(status),
                None,
            )
        })
    }

    /// An error about a reply that lacks what it should hold.
    fn bad_reply(&self, endpoint: &str, detail: String) -> TuneError {
        self.fail(endpoint, &detail, false, None, None)
    }
}

/// Statuses worth trying again later: timeouts, rate limits and server errors.
fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// The wait a provider asks for, at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    crate::llm::retry_after_capped(headers, MAX_RETRY_AFTER)
}

/// Lamini memory tuning.
pub struct LaminiTuner {
    http: reqwest::Client,
    base: String,
    key: Secret,
    /// Redacted from every error text: the key and the other keys the configuration knows.
    secrets: Vec<Secret>,
    model: String,
    finetune_args: Json,
    gpu_config: Json,
}

impl LaminiTuner {
    pub fn from_config(config: &Config) -> Result<LaminiTuner, TuneError> {
        let key = config.api.key.clone().ok_or_else(|| {
            TuneError::Refused(
                "Lamini tuning needs an API key: set LAMINI_API_KEY or api.key in config.yml"
                    .into(),
            )
        })?;
        let m = &config.memory_tuning;
        let mut secrets = vec![key.clone()];
        secrets.extend(crate::llm::known_secrets(config));
        Ok(LaminiTuner {
            http: http()?,
            base: config.api.url.trim_end_matches('/').to_string(),
            secrets,
            key,
            model: config.model.memory_tuning.clone(),
            finetune_args: json!({"max_steps": m.max_steps, "learning_rate": m.learning_rate}),
            // The API documents `gpus` and `nodes`; the original's max_gpus/max_nodes map onto them.
            gpu_config: json!({"gpus": m.max_gpus, "nodes": m.max_nodes}),
        })
    }

    /// The body of `POST /v1/train`.
    pub fn train_body(&self, rows: &[Json]) -> Json {
        json!({
            "model_name": self.model,
            "data": rows,
            "finetune_args": self.finetune_args,
            "gpu_config": self.gpu_config,
            "train_type": "memory_tuning",
        })
    }

    fn call(&self, subject: String) -> Call<'_> {
        Call {
            provider: "lamini",
            subject,
            key_hint: "check LAMINI_API_KEY / api.key in config.yml",
            secrets: &self.secrets,
        }
    }
}

fn lamini_status(raw: &str) -> JobStatus {
    match raw.to_uppercase().as_str() {
        "COMPLETED" | "PARTIALLY COMPLETED" => JobStatus::Succeeded,
        "FAILED" | "TIMED OUT" => JobStatus::Failed,
        "CANCELLED" => JobStatus::Cancelled,
        "CREATED" | "QUEUED" | "SCHEDULED" => JobStatus::Queued,
        _ => JobStatus::Running,
    }
}

impl Provider for LaminiTuner {
    fn name(&self) -> TuneProvider {
        TuneProvider::Lamini
    }

    fn submit<'a>(
        &'a self,
        job_id: i64,
        data: &'a dataset::TrainingSet,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<String, TuneError>> {
        Box::pin(async move {
            let rows: Vec<Json> = data
                .train
                .iter()
                .filter_map(|e| dataset::render_line("lamini-templated", project, e))
                .collect();
            let call = self.call(format!("lode job {job_id}, model {}", self.model));
            let v = call
                .send_json(
                    self.http
                        .post(format!("{}/v1/train", self.base))
                        .bearer_auth(self.key.expose())
                        .json(&self.train_body(&rows)),
                )
                .await?;
            v["job_id"]
                .as_i64()
                .map(|i| i.to_string())
                .or_else(|| v["job_id"].as_str().map(String::from))
                .ok_or_else(|| {
                    call.bad_reply("POST /v1/train", format!("no job_id in the reply: {v}"))
                })
        })
    }

    fn status<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<JobUpdate, TuneError>> {
        Box::pin(async move {
            let v = self
                .call(format!("job {external_id}"))
                .send_json(
                    self.http
                        .get(format!("{}/v1/train/jobs/{external_id}", self.base))
                        .bearer_auth(self.key.expose()),
                )
                .await?;
            let raw = v["status"].as_str().unwrap_or("").to_string();
            let status = lamini_status(&raw);
            Ok(JobUpdate {
                status: Some(status),
                raw_status: raw.clone(),
                message: raw,
                step: v["step"].as_u64(),
                total_steps: v["max_steps"].as_u64(),
                loss: v["loss"].as_f64(),
                model_id: (status == JobStatus::Succeeded)
                    .then(|| v["model_name"].as_str().map(String::from))
                    .flatten(),
                error: (status == JobStatus::Failed).then(|| {
                    redact(
                        &format!(
                            "Lamini reports job {external_id} failed: {}",
                            v["error"]
                                .as_str()
                                .or(v["message"].as_str())
                                .unwrap_or("no reason given; see the Lamini dashboard")
                        ),
                        &self.secrets,
                    )
                }),
                ..Default::default()
            })
        })
    }

    fn cancel<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<(), TuneError>> {
        Box::pin(async move {
            self.call(format!("job {external_id}"))
                .send_json(
                    self.http
                        .post(format!("{}/v1/train/jobs/{external_id}/cancel", self.base))
                        .bearer_auth(self.key.expose()),
                )
                .await?;
            Ok(())
        })
    }
}

/// Events asked for per page (OpenAI's largest page is 100).
const EVENTS_PAGE: usize = 100;

/// The events of one job already shown: the newest one's id (a poll pages back from the
/// newest event until it meets this one) and every id (no event is shown twice).
#[derive(Debug, Default)]
struct EventsSeen {
    newest: Option<String>,
    ids: HashSet<String>,
}

/// OpenAI fine-tuning.
pub struct OpenAiTuner {
    http: reqwest::Client,
    base: String,
    key: Option<Secret>,
    /// What to check when the key is refused (or missing).
    key_hint: String,
    /// Redacted from every error text: the key and the other keys the configuration knows.
    secrets: Vec<Secret>,
    model: String,
    n_epochs: Option<u32>,
    seed: u64,
    /// The events shown so far, per job.
    seen: Mutex<std::collections::HashMap<String, EventsSeen>>,
}

impl OpenAiTuner {
    pub fn from_config(config: &Config) -> Result<OpenAiTuner, TuneError> {
        let o = &config.tune.openai;
        let key = std::env::var(&o.api_key_env)
            .ok()
            .filter(|k| !k.is_empty())
            .map(Secret::new);
        let key_hint = match &key {
            Some(_) => format!("check {} / tune.openai.api_key_env", o.api_key_env),
            None => format!(
                "no key was sent because {} is not set; set it, or name the variable holding \
                 the key in tune.openai.api_key_env",
                o.api_key_env
            ),
        };
        let mut secrets: Vec<Secret> = key.iter().cloned().collect();
        secrets.extend(crate::llm::known_secrets(config));
        Ok(OpenAiTuner {
            http: http()?,
            base: o.base_url.trim_end_matches('/').to_string(),
            secrets,
            key,
            key_hint,
            model: o.model.clone(),
            n_epochs: o.n_epochs,
            seed: config.tune.seed,
            seen: Mutex::new(Default::default()),
        })
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => r.bearer_auth(k.expose()),
            None => r,
        }
    }

    fn call(&self, subject: String) -> Call<'_> {
        Call {
            provider: "openai",
            subject,
            key_hint: &self.key_hint,
            secrets: &self.secrets,
        }
    }

    fn seen<T>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<String, EventsSeen>) -> T,
    ) -> T {
        f(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn upload(&self, name: &str, text: String) -> Result<String, TuneError> {
        let call = self.call(format!("file {name} for model {}", self.model));
        let part = reqwest::multipart::Part::bytes(text.into_bytes())
            .file_name(name.to_string())
            .mime_str("application/jsonl")
            .map_err(|e| TuneError::Refused(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("purpose", "fine-tune")
            .part("file", part);
        let v = call
            .send_json(
                self.auth(self.http.post(format!("{}/files", self.base)))
                    .multipart(form),
            )
            .await?;
        v["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| call.bad_reply("POST /files", format!("no file id in the reply: {v}")))
    }
}

fn openai_status(raw: &str) -> JobStatus {
    match raw {
        "succeeded" => JobStatus::Succeeded,
        "failed" => JobStatus::Failed,
        "cancelled" => JobStatus::Cancelled,
        "validating_files" | "queued" => JobStatus::Queued,
        _ => JobStatus::Running,
    }
}

impl Provider for OpenAiTuner {
    fn name(&self) -> TuneProvider {
        TuneProvider::OpenAi
    }

    fn submit<'a>(
        &'a self,
        job_id: i64,
        data: &'a dataset::TrainingSet,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<String, TuneError>> {
        Box::pin(async move {
            let train = self
                .upload(
                    &format!("lode-{job_id}-train.jsonl"),
                    dataset::render("messages", project, &data.train),
                )
                .await?;
            let validation = if data.validation.is_empty() {
                None
            } else {
                Some(
                    self.upload(
                        &format!("lode-{job_id}-validation.jsonl"),
                        dataset::render("messages", project, &data.validation),
                    )
                    .await?,
                )
            };
            let mut hyper = serde_json::Map::new();
            if let Some(n) = self.n_epochs {
                hyper.insert("n_epochs".into(), json!(n));
            }
            let mut body = json!({
                "model": self.model,
                "training_file": train,
                "seed": self.seed,
                "suffix": "lode",
                "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            });
            if let Some(v) = validation {
                body["validation_file"] = json!(v);
            }
            let call = self.call(format!("lode job {job_id}, model {}", self.model));
            let v = call
                .send_json(
                    self.auth(self.http.post(format!("{}/fine_tuning/jobs", self.base)))
                        .json(&body),
                )
                .await?;
            v["id"].as_str().map(String::from).ok_or_else(|| {
                call.bad_reply(
                    "POST /fine_tuning/jobs",
                    format!("no job id in the reply: {v}"),
                )
            })
        })
    }

    fn status<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<JobUpdate, TuneError>> {
        Box::pin(async move {
            let v = self
                .call(format!("job {external_id}"))
                .send_json(
                    self.auth(
                        self.http
                            .get(format!("{}/fine_tuning/jobs/{external_id}", self.base)),
                    ),
                )
                .await?;
            let raw = v["status"].as_str().unwrap_or("").to_string();
            let status = openai_status(&raw);
            Ok(JobUpdate {
                status: Some(status),
                raw_status: raw.clone(),
                message: raw,
                model_id: v["fine_tuned_model"].as_str().map(String::from),
                error: (status == JobStatus::Failed).then(|| {
                    redact(
                        &format!(
                            "OpenAI reports job {external_id} failed: {}",
                            v["error"]["message"].as_str().unwrap_or("no reason given")
                        ),
                        &self.secrets,
                    )
                }),
                ..Default::default()
            })
        })
    }

    /// The job's events not shown yet, oldest first. OpenAI lists a job's events newest
    /// first, a page at a time; `after=ID` gives the page of events older than event ID. So a
    /// poll reads from the newest event back, page after page while `has_more`, until it meets
    /// the newest event a previous poll showed (or the job's first event), and replays what it
    /// read in reverse. Nothing is marked shown unless every page was read, so a failed poll
    /// loses nothing: the next one reads the same events again.
    fn events<'a>(
        &'a self,
        external_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JobUpdate>, TuneError>> {
        Box::pin(async move {
            let call = self.call(format!("job {external_id}"));
            let known = self.seen(|s| s.get(external_id).and_then(|e| e.newest.clone()));
            // The unseen events, newest first.
            let mut fresh: Vec<Json> = Vec::new();
            let mut newest: Option<String> = None;
            let mut after: Option<String> = None;
            'pages: loop {
                let mut url = format!(
                    "{}/fine_tuning/jobs/{external_id}/events?limit={EVENTS_PAGE}",
                    self.base
                );
                if let Some(a) = &after {
                    url.push_str("&after=");
                    url.push_str(a);
                }
                let v = call.send_json(self.auth(self.http.get(url))).await?;
                let page = v["data"].as_array().cloned().unwrap_or_default();
                let mut last: Option<String> = None;
                for e in page {
                    let id = e["id"].as_str().map(String::from);
                    if id.is_some() && id == known {
                        break 'pages;
                    }
                    if newest.is_none() {
                        newest.clone_from(&id);
                    }
                    last = id.or(last);
                    fresh.push(e);
                }
                match last {
                    // The next (older) page starts after the last event of this one. A server
                    // that answers the same cursor again would loop: stop there.
                    Some(l)
                        if v["has_more"].as_bool() == Some(true) && after.as_ref() != Some(&l) =>
                    {
                        after = Some(l);
                    }
                    _ => break,
                }
            }
            let out = self.seen(|s| {
                let seen = s.entry(external_id.to_string()).or_default();
                if newest.is_some() {
                    seen.newest = newest;
                }
                let mut out = Vec::new();
                for e in fresh.iter().rev() {
                    let id = e["id"].as_str().map(String::from);
                    if let Some(id) = &id
                        && !seen.ids.insert(id.clone())
                    {
                        continue;
                    }
                    out.push(JobUpdate {
                        message: e["message"].as_str().unwrap_or("").to_string(),
                        step: e["data"]["step"].as_u64(),
                        total_steps: e["data"]["total_steps"].as_u64(),
                        loss: e["data"]["train_loss"].as_f64(),
                        event_id: id,
                        ..Default::default()
                    });
                }
                out
            });
            Ok(out)
        })
    }

    fn resume_events(&self, external_id: &str, last_event_id: &str) {
        self.seen(|s| {
            let seen = s.entry(external_id.to_string()).or_default();
            if seen.newest.is_none() {
                seen.newest = Some(last_event_id.to_string());
            }
            seen.ids.insert(last_event_id.to_string());
        });
    }

    fn cancel<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<(), TuneError>> {
        Box::pin(async move {
            self.call(format!("job {external_id}"))
                .send_json(self.auth(self.http.post(format!(
                    "{}/fine_tuning/jobs/{external_id}/cancel",
                    self.base
                ))))
                .await?;
            Ok(())
        })
    }
}
