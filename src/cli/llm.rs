//! `lode llm check`: what works with an LLM profile, in plain words, and the exact fix for
//! what does not.

use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use lode_core::config::{Config, LlmProfile, ProfileKind};
use lode_core::llm::{LlmError, LlmRequest, Usage};
use lode_core::project::Project;
use serde::Serialize;

use super::globals::Globals;

#[derive(Args, Debug)]
pub struct LlmArgs {
    #[command(subcommand)]
    pub action: LlmAction,
}

#[derive(Subcommand, Debug)]
pub enum LlmAction {
    /// List the server's models, send one small bounded structured request, report what works
    Check {
        /// The profile (default: --profile, else llm.default).
        name: Option<String>,
    },
}

/// What `lode llm check` found: printed as text, or as its JSON document.
#[derive(Debug, Serialize)]
struct Check {
    profile: String,
    /// The backend kind: `rules`, `openai`, `lamini`…
    backend: &'static str,
    model: String,
    /// The server's URL; `null` for the offline backend.
    url: Option<String>,
    /// Where the key comes from (never the key); `null` for the offline backend.
    key: Option<String>,
    models: ModelsCheck,
    request: RequestCheck,
    /// Why each retried attempt of the request failed.
    retries: Vec<String>,
    problems: usize,
    works: bool,
}

/// The server's list of models.
#[derive(Debug, Serialize)]
struct ModelsCheck {
    ok: bool,
    /// The models the server offers (empty when it lists none or cannot be asked).
    offered: Vec<String>,
    /// Whether the profile's model is among them; `null` when there is no list.
    includes_model: Option<bool>,
    error: Option<Problem>,
    fix: Option<String>,
}

/// One bounded structured request.
#[derive(Debug, Serialize)]
struct RequestCheck {
    ok: bool,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    /// The whole call, retries included.
    latency_ms: f64,
    /// The structured output mode the server took (`json_schema`, `json_object`…).
    output_mode: Option<&'static str>,
    /// Why the server refused a stricter mode, when it did.
    stricter_mode_refused: Option<String>,
    question: String,
    /// The first line of the SQL answered.
    answer: Option<String>,
    usage: Option<Usage>,
    error: Option<Problem>,
    fix: Option<String>,
}

/// A failed step: the LLM error's kind and message.
#[derive(Debug, Serialize)]
struct Problem {
    kind: lode_core::store::ErrorKind,
    message: String,
}

impl Problem {
    fn of(e: &LlmError) -> Problem {
        Problem {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// `lode llm check`: what works with a profile, in plain words.
pub fn run(globals: &Globals, args: &LlmArgs) -> Result<i32> {
    let LlmAction::Check { name } = &args.action;
    let project = globals.load_project()?;
    let name = name.as_deref().or(globals.profile.as_deref());
    let check = check(&project, name)?;
    if globals.json {
        super::json::emit("llm check", &check)?;
    } else {
        print!("{}", describe(&check));
    }
    Ok(if check.works { 0 } else { 1 })
}

/// Asks the server for its models and one bounded structured request.
fn check(project: &Project, name: Option<&str>) -> Result<Check> {
    let profile_name = project.config.profile_name(name).to_string();
    let settings = project.config.profile(name)?;
    // No store: the check asks the server itself (not the cache) and finds its output mode
    // afresh instead of starting from one remembered.
    let client = lode_core::tasks::model::profile_client(project, None, name, false, None)?;
    let backend = std::sync::Arc::clone(client.backend());
    let url = backend.server_key().map(|_| {
        settings
            .base_url
            .clone()
            .unwrap_or_else(|| project.config.api.url.clone())
    });
    let key = (settings.kind != ProfileKind::Rules).then(|| key_source(&settings, &project.config));
    let rt = lode_core::tasks::runtime()?;
    let models = match rt.block_on(backend.list_models()) {
        Ok(offered) => {
            let includes_model =
                (!offered.is_empty()).then(|| offered.iter().any(|m| m == backend.model()));
            ModelsCheck {
                ok: includes_model != Some(false),
                fix: (includes_model == Some(false)).then(|| {
                    format!(
                        "set llm.profiles.{profile_name}.model to one of them (or load {} on \
                         the server)",
                        backend.model()
                    )
                }),
                offered,
                includes_model,
                error: None,
            }
        }
        Err(e) => ModelsCheck {
            ok: false,
            offered: Vec::new(),
            includes_model: None,
            fix: Some(fix(&e, &profile_name, &settings, &[])),
            error: Some(Problem::of(&e)),
        },
    };
    let question = project
        .gold
        .first()
        .map_or("How many rows are there?".to_string(), |g| {
            g.question.clone()
        });
    let mut req: LlmRequest =
        lode_core::sqlprompt::question_request(&project.schema, &project.glossary, &question);
    req.purpose = "check".into();
    let sent = client.bounded(&req);
    let started = Instant::now();
    let (result, retries) = rt.block_on(client.call_traced(&req));
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut request = RequestCheck {
        ok: result.is_ok(),
        max_tokens: sent.sampling.max_tokens,
        temperature: sent.sampling.temperature,
        latency_ms,
        output_mode: None,
        stricter_mode_refused: None,
        question,
        answer: None,
        usage: None,
        error: None,
        fix: None,
    };
    match &result {
        Ok(resp) => {
            request.output_mode = backend.structured_mode();
            request.stricter_mode_refused = backend.structured_mode_reason();
            let sql = resp
                .json
                .as_ref()
                .and_then(|j| j["sql"].as_str())
                .unwrap_or(&resp.text);
            request.answer = Some(sql.lines().next().unwrap_or("").to_string());
            request.usage = resp.usage;
        }
        Err(e) => {
            request.error = Some(Problem::of(e));
            request.fix = Some(fix(e, &profile_name, &settings, &models.offered));
        }
    }
    let problems = usize::from(!models.ok) + usize::from(!request.ok);
    Ok(Check {
        profile: profile_name,
        backend: backend.kind(),
        model: backend.model().to_string(),
        url,
        key,
        models,
        request,
        retries,
        problems,
        works: problems == 0,
    })
}

/// The check in plain words, with the exact fix for what does not work.
fn describe(c: &Check) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let name = &c.profile;
    line(format!(
        "profile {name}: {} backend, model {}{}",
        c.backend,
        c.model,
        c.url
            .as_ref()
            .map_or(String::new(), |url| format!(" at {url}"))
    ));
    if let Some(key) = &c.key {
        line(format!("  key: {key}"));
    }
    let m = &c.models;
    match (&m.error, m.includes_model) {
        (Some(e), _) => {
            line(format!("  models: cannot list them: {}", e.message));
            line(format!("    fix: {}", m.fix.as_deref().unwrap_or("")));
        }
        (None, None) => line("  models: the server does not list them".into()),
        (None, Some(listed)) => {
            line(format!(
                "  models: {} offered{}",
                m.offered.len(),
                if listed {
                    ", including this profile's"
                } else {
                    "; this profile's model is NOT among them"
                }
            ));
            if !listed {
                line(format!("    offered: {}", first_few(&m.offered)));
                line(format!("    fix: {}", m.fix.as_deref().unwrap_or("")));
            }
        }
    }
    let r = &c.request;
    let bounds = format!(
        "max_tokens {}, temperature {}",
        r.max_tokens.map_or("unset".into(), |m| m.to_string()),
        r.temperature.map_or("unset".into(), |t| t.to_string())
    );
    match &r.error {
        None => {
            line(format!(
                "  structured request ({bounds}): ok in {:.0} ms, output mode {}",
                r.latency_ms,
                r.output_mode.unwrap_or("unknown")
            ));
            if let Some(why) = &r.stricter_mode_refused {
                line(format!("    (the server refused a stricter mode: {why})"));
            }
            line(format!(
                "    asked: {}\n    answer: {}",
                r.question,
                r.answer.as_deref().unwrap_or("")
            ));
            if let Some(u) = r.usage {
                line(format!(
                    "    tokens: {} in, {} out",
                    u.prompt_tokens, u.completion_tokens
                ));
            }
        }
        Some(e) => {
            line(format!(
                "  structured request ({bounds}): FAILED after {:.0} ms ({}): {}",
                r.latency_ms, e.kind, e.message
            ));
            line(format!("    fix: {}", r.fix.as_deref().unwrap_or("")));
        }
    }
    match c.retries.len() {
        0 => line("  retries: none".into()),
        n => {
            line(format!("  retries: {n} (the time above includes them)"));
            for (i, why) in c.retries.iter().enumerate() {
                line(format!("    attempt {}: {why}", i + 1));
            }
        }
    }
    if c.works {
        line(format!("profile {name} works"));
    } else {
        line(format!("profile {name}: {} problem(s) above", c.problems));
    }
    out
}

fn first_few(models: &[String]) -> String {
    let mut s = models
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if models.len() > 10 {
        s.push_str(&format!(", … ({} more)", models.len() - 10));
    }
    s
}

/// Where the profile's key comes from, without showing it.
fn key_source(p: &LlmProfile, config: &Config) -> String {
    let found = lode_core::llm::resolve_key(p, config).is_some();
    match (&p.api_key_env, &p.api_key, found) {
        (_, Some(_), true) => "from the profile's api_key".into(),
        (Some(var), _, true) => format!("from ${var}"),
        (Some(var), _, false) => format!("${var} is not set or empty"),
        (None, _, true) => "from api.key / LAMINI_API_KEY".into(),
        (None, _, false) => "none (the server must not need one)".into(),
    }
}

/// The exact change that fixes a failed check.
fn fix(e: &LlmError, name: &str, p: &LlmProfile, offered: &[String]) -> String {
    let key = |k: &str| format!("llm.profiles.{name}.{k}");
    match e {
        LlmError::Auth { .. } => match &p.api_key_env {
            Some(var) => format!(
                "export {var}=<a valid key> (read through {}), or set {}",
                key("api_key_env"),
                key("api_key")
            ),
            None => format!(
                "give the profile a key: {}: NAME_OF_A_VARIABLE holding it (or {})",
                key("api_key_env"),
                key("api_key")
            ),
        },
        LlmError::Network { .. } => format!(
            "start the server, or correct {} (now {})",
            key("base_url"),
            p.base_url.as_deref().unwrap_or("unset")
        ),
        LlmError::ModelUnavailable { .. } if !offered.is_empty() => format!(
            "set {} to one the server offers: {}",
            key("model"),
            first_few(offered)
        ),
        LlmError::ModelUnavailable { .. } => format!(
            "check {} and {} (the server has no such model there)",
            key("model"),
            key("base_url")
        ),
        LlmError::Timeout(_) => format!(
            "raise {} (now {} s), or lower {} (now {})",
            key("timeout_s"),
            p.timeout_s,
            key("max_tokens"),
            p.max_tokens
        ),
        LlmError::Truncated { .. } => format!("raise {} (now {})", key("max_tokens"), p.max_tokens),
        LlmError::RateLimited { .. } => format!(
            "lower {} or set {}",
            key("max_concurrency"),
            key("requests_per_minute")
        ),
        LlmError::SchemaViolation { .. } | LlmError::BadResponse { .. } => {
            "the model does not answer in the JSON shape asked for; use an instruction-tuned \
             model, or a server that enforces json_schema (vLLM, llama-server, OpenAI)"
                .into()
        }
        LlmError::BadRequest { .. } => format!(
            "the server refused the request: check {} for fields it does not take",
            key("extra_body")
        ),
        LlmError::Server { .. } => "the server failed; its own log says why".into(),
        LlmError::Config { .. } | LlmError::Unsupported { .. } => {
            format!("correct the profile in config.yml ({})", key("kind"))
        }
        LlmError::Halted { .. } | LlmError::Cancelled => "run the check again".into(),
    }
}
