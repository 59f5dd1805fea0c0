//! `lode llm check`: what works with an LLM profile, in plain words, and the exact fix for
//! what does not.

use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use lode_core::config::{Config, LlmProfile, ProfileKind};
use lode_core::llm::{LlmError, LlmRequest};

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

/// `lode llm check`: what works with a profile, in plain words.
pub fn run(globals: &Globals, args: &LlmArgs) -> Result<i32> {
    let LlmAction::Check { name } = &args.action;
    let project = globals.load_project()?;
    let name = name.as_deref().or(globals.profile.as_deref());
    let profile_name = project.config.profile_name(name).to_string();
    let settings = project.config.profile(name)?;
    // No store: the check asks the server itself (not the cache) and finds its output mode
    // afresh instead of starting from one remembered.
    let client = lode_core::tasks::model::profile_client(&project, None, name, false, None)?;
    let backend = std::sync::Arc::clone(client.backend());
    println!(
        "profile {profile_name}: {} backend, model {}{}",
        backend.kind(),
        backend.model(),
        match backend.server_key() {
            Some(_) => format!(
                " at {}",
                settings
                    .base_url
                    .as_deref()
                    .unwrap_or(&project.config.api.url)
            ),
            None => String::new(),
        }
    );
    if settings.kind != ProfileKind::Rules {
        println!("  key: {}", key_source(&settings, &project.config));
    }
    let rt = lode_core::tasks::runtime()?;
    let mut problems = 0;
    let mut offered = Vec::new();
    match rt.block_on(backend.list_models()) {
        Ok(models) if models.is_empty() => println!("  models: the server does not list them"),
        Ok(models) => {
            let listed = models.iter().any(|m| m == backend.model());
            println!(
                "  models: {} offered{}",
                models.len(),
                if listed {
                    ", including this profile's"
                } else {
                    "; this profile's model is NOT among them"
                }
            );
            if !listed {
                problems += 1;
                println!("    offered: {}", first_few(&models));
                println!(
                    "    fix: set llm.profiles.{profile_name}.model to one of them (or load {} \
                     on the server)",
                    backend.model()
                );
            }
            offered = models;
        }
        Err(e) => {
            problems += 1;
            println!("  models: cannot list them: {e}");
            println!("    fix: {}", fix(&e, &profile_name, &settings, &offered));
        }
    }
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
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let bounds = format!(
        "max_tokens {}, temperature {}",
        sent.sampling
            .max_tokens
            .map_or("unset".into(), |m| m.to_string()),
        sent.sampling
            .temperature
            .map_or("unset".into(), |t| t.to_string())
    );
    match &result {
        Ok(resp) => {
            println!(
                "  structured request ({bounds}): ok in {elapsed_ms:.0} ms, output mode {}",
                backend.structured_mode().unwrap_or("unknown")
            );
            if let Some(why) = backend.structured_mode_reason() {
                println!("    (the server refused a stricter mode: {why})");
            }
            let sql = resp
                .json
                .as_ref()
                .and_then(|j| j["sql"].as_str())
                .unwrap_or(&resp.text);
            println!(
                "    asked: {question}\n    answer: {}",
                sql.lines().next().unwrap_or("")
            );
            if let Some(u) = resp.usage {
                println!(
                    "    tokens: {} in, {} out",
                    u.prompt_tokens, u.completion_tokens
                );
            }
        }
        Err(e) => {
            problems += 1;
            println!(
                "  structured request ({bounds}): FAILED after {elapsed_ms:.0} ms ({}): {e}",
                e.kind()
            );
            println!("    fix: {}", fix(e, &profile_name, &settings, &offered));
        }
    }
    match retries.len() {
        0 => println!("  retries: none"),
        n => {
            println!("  retries: {n} (the time above includes them)");
            for (i, why) in retries.iter().enumerate() {
                println!("    attempt {}: {why}", i + 1);
            }
        }
    }
    if problems == 0 {
        println!("profile {profile_name} works");
        Ok(0)
    } else {
        println!("profile {profile_name}: {problems} problem(s) above");
        Ok(1)
    }
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
