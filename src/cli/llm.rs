//! `lode llm check`: what works with an LLM profile, in plain words.

use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::globals::Globals;

#[derive(Args, Debug)]
pub struct LlmArgs {
    #[command(subcommand)]
    pub action: LlmAction,
}

#[derive(Subcommand, Debug)]
pub enum LlmAction {
    /// List the server's models, send one tiny structured request, report what works
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
    let client = lode_core::tasks::model::profile_client(&project, None, name, false, None)?;
    let backend = std::sync::Arc::clone(client.backend());
    println!(
        "profile {profile_name}: {} backend, model {}",
        backend.kind(),
        backend.model()
    );
    let rt = lode_core::tasks::runtime()?;
    let mut problems = 0;
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
                println!(
                    "    offered: {}",
                    models
                        .iter()
                        .take(10)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Err(e) => {
            problems += 1;
            println!("  models: cannot list them: {e}");
        }
    }
    let question = project
        .gold
        .first()
        .map_or("How many rows are there?".to_string(), |g| {
            g.question.clone()
        });
    let req = lode_core::sqlprompt::question_request(&project.schema, &project.glossary, &question);
    let started = Instant::now();
    match rt.block_on(client.call(&req)) {
        Ok(resp) => {
            println!(
                "  structured request: ok in {:.0} ms ({})",
                started.elapsed().as_secs_f64() * 1000.0,
                backend.structured_mode().unwrap_or("unknown mode")
            );
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
            println!("  structured request: FAILED ({}): {e}", e.kind());
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
