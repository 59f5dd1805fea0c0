//! Hosted fine-tuning: Lamini memory tuning (`POST /v1/train`, job status, cancel) and
//! OpenAI fine-tuning (file upload, job create, retrieve, events paged with `after`,
//! cancel). Statuses map onto [`JobStatus`], raw status kept.

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
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| TuneError::Refused(format!("cannot build the HTTP client: {e}")))
}

fn provider_error(provider: &str, status: u16, body: &str, secrets: &[Secret]) -> TuneError {
    // Redacted before the message is picked and clipped, so no part of a key is left.
    let body = &redact(body, secrets);
    let v: Json = serde_json::from_str(body).unwrap_or(Json::Null);
    let msg = v["error"]["message"]
        .as_str()
        .or(v["detail"].as_str())
        .or(v["error"].as_str())
        .map(String::from)
        .unwrap_or_else(|| body.chars().take(300).collect());
    let hint = match status {
        401 | 403 => " (check the API key)",
        404 => " (unknown job or model)",
        429 => " (rate limited; try again later)",
        _ => "",
    };
    TuneError::Provider {
        provider: provider.to_string(),
        message: redact(&format!("HTTP {status}: {msg}{hint}"), secrets),
    }
}

/// A provider's error with the keys (`secrets`) and credential-looking tokens redacted.
fn provider_failure(provider: &str, message: String, secrets: &[Secret]) -> TuneError {
    TuneError::Provider {
        provider: provider.to_string(),
        message: redact(&message, secrets),
    }
}

async fn send_json(
    provider: &str,
    secrets: &[Secret],
    req: reqwest::RequestBuilder,
) -> Result<Json, TuneError> {
    let resp = req.send().await.map_err(|e| {
        provider_failure(provider, format!("cannot reach the server: {e}"), secrets)
    })?;
    let status = resp.status().as_u16();
    // A body that cannot be read leaves the status alone to explain the failure.
    let text = resp.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(provider_error(provider, status, &text, secrets));
    }
    serde_json::from_str(&text)
        .map_err(|e| provider_failure(provider, format!("the reply is not JSON ({e})"), secrets))
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
        _job_id: i64,
        data: &'a dataset::TrainingSet,
        project: &'a Project,
    ) -> BoxFuture<'a, Result<String, TuneError>> {
        Box::pin(async move {
            let rows: Vec<Json> = data
                .train
                .iter()
                .filter_map(|e| dataset::render_line("lamini-templated", project, e))
                .collect();
            let v = send_json(
                "lamini",
                &self.secrets,
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
                    provider_failure(
                        "lamini",
                        format!("no job_id in the reply: {v}"),
                        &self.secrets,
                    )
                })
        })
    }

    fn status<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<JobUpdate, TuneError>> {
        Box::pin(async move {
            let v = send_json(
                "lamini",
                &self.secrets,
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
                            "Lamini reports the job failed: {}",
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
            send_json(
                "lamini",
                &self.secrets,
                self.http
                    .post(format!("{}/v1/train/jobs/{external_id}/cancel", self.base))
                    .bearer_auth(self.key.expose()),
            )
            .await?;
            Ok(())
        })
    }
}

/// OpenAI fine-tuning.
pub struct OpenAiTuner {
    http: reqwest::Client,
    base: String,
    key: Option<Secret>,
    /// Redacted from every error text: the key and the other keys the configuration knows.
    secrets: Vec<Secret>,
    model: String,
    n_epochs: Option<u32>,
    seed: u64,
    /// The last event id seen, for `after` paging.
    after: Mutex<Option<String>>,
}

impl OpenAiTuner {
    pub fn from_config(config: &Config) -> Result<OpenAiTuner, TuneError> {
        let o = &config.tune.openai;
        let key = std::env::var(&o.api_key_env)
            .ok()
            .filter(|k| !k.is_empty())
            .map(Secret::new);
        let mut secrets: Vec<Secret> = key.iter().cloned().collect();
        secrets.extend(crate::llm::known_secrets(config));
        Ok(OpenAiTuner {
            http: http()?,
            base: o.base_url.trim_end_matches('/').to_string(),
            secrets,
            key,
            model: o.model.clone(),
            n_epochs: o.n_epochs,
            seed: config.tune.seed,
            after: Mutex::new(None),
        })
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => r.bearer_auth(k.expose()),
            None => r,
        }
    }

    async fn upload(&self, name: &str, text: String) -> Result<String, TuneError> {
        let part = reqwest::multipart::Part::bytes(text.into_bytes())
            .file_name(name.to_string())
            .mime_str("application/jsonl")
            .map_err(|e| TuneError::Refused(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("purpose", "fine-tune")
            .part("file", part);
        let v = send_json(
            "openai",
            &self.secrets,
            self.auth(self.http.post(format!("{}/files", self.base)))
                .multipart(form),
        )
        .await?;
        v["id"].as_str().map(String::from).ok_or_else(|| {
            provider_failure(
                "openai",
                format!("no file id in the reply: {v}"),
                &self.secrets,
            )
        })
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
            let v = send_json(
                "openai",
                &self.secrets,
                self.auth(self.http.post(format!("{}/fine_tuning/jobs", self.base)))
                    .json(&body),
            )
            .await?;
            v["id"].as_str().map(String::from).ok_or_else(|| {
                provider_failure(
                    "openai",
                    format!("no job id in the reply: {v}"),
                    &self.secrets,
                )
            })
        })
    }

    fn status<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<JobUpdate, TuneError>> {
        Box::pin(async move {
            let v = send_json(
                "openai",
                &self.secrets,
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
                            "OpenAI reports the job failed: {}",
                            v["error"]["message"].as_str().unwrap_or("no reason given")
                        ),
                        &self.secrets,
                    )
                }),
                ..Default::default()
            })
        })
    }

    fn events<'a>(
        &'a self,
        external_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JobUpdate>, TuneError>> {
        Box::pin(async move {
            let after = self.after.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut url = format!(
                "{}/fine_tuning/jobs/{external_id}/events?limit=100",
                self.base
            );
            if let Some(a) = &after {
                url.push_str(&format!("&after={a}"));
            }
            let v = send_json("openai", &self.secrets, self.auth(self.http.get(url))).await?;
            let mut events: Vec<&Json> = v["data"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            // OpenAI lists newest first; replay in order.
            events.reverse();
            let mut out = Vec::new();
            for e in events {
                if let Some(id) = e["id"].as_str() {
                    *self.after.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.to_string());
                }
                out.push(JobUpdate {
                    message: e["message"].as_str().unwrap_or("").to_string(),
                    step: e["data"]["step"].as_u64(),
                    total_steps: e["data"]["total_steps"].as_u64(),
                    loss: e["data"]["train_loss"].as_f64(),
                    ..Default::default()
                });
            }
            Ok(out)
        })
    }

    fn cancel<'a>(&'a self, external_id: &'a str) -> BoxFuture<'a, Result<(), TuneError>> {
        Box::pin(async move {
            send_json(
                "openai",
                &self.secrets,
                self.auth(self.http.post(format!(
                    "{}/fine_tuning/jobs/{external_id}/cancel",
                    self.base
                ))),
            )
            .await?;
            Ok(())
        })
    }
}
