//! What every command shares: the global flags (config file, project directory, LLM profile,
//! cache) and loading the project they point at.

use std::path::{Path, PathBuf};

use anyhow::Result;

use lode_core::config::Config;
use lode_core::project::Project;
use lode_core::sql::{Database, ExecLimits};
use lode_core::tasks::model::ModelRequest;

/// The global options, as every handler needs them (not the whole command line).
#[derive(Debug, Clone)]
pub struct Globals {
    /// The project's config file.
    pub config: PathBuf,
    /// `--profile`: the LLM profile instead of `llm.default`.
    pub profile: Option<String>,
    /// `--no-cache`: no answers from the store's cache.
    pub no_cache: bool,
    /// `--json`: one JSON document on stdout instead of text (see [`super::json`]).
    pub json: bool,
}

impl Globals {
    /// The model the global flags ask for (`--profile`, `--no-cache`).
    pub fn model_request(&self) -> ModelRequest {
        ModelRequest {
            profile: self.profile.clone(),
            use_cache: !self.no_cache,
            ..ModelRequest::default()
        }
    }

    /// The project the config names, with its warnings printed once.
    pub fn load_project(&self) -> Result<Project> {
        let config = self.load_config()?;
        let project = Project::from_config(config)?;
        super::output::print_warnings(&project.warnings);
        Ok(project)
    }

    /// The config alone (warnings are printed with the project's, or here when no project
    /// is loaded).
    pub fn load_config(&self) -> Result<Config> {
        if !self.config.exists() {
            return Err(super::exit::usage(
                format!("no {} here", self.config.display()),
                "run lode inside a project directory, pass -C DIR or --config FILE, or create \
                 one with `lode init` (or try `lode demo`)",
            ));
        }
        Ok(Config::load(&self.config)?)
    }

    /// `db` if given, else the project's database; with the config's limits unless `limits`.
    pub fn open_db(
        &self,
        db: Option<&Path>,
        limits: Option<ExecLimits>,
    ) -> Result<(Database, Option<Config>)> {
        if let Some(path) = db {
            let limits = limits.unwrap_or_default();
            return Ok((Database::open(path, limits)?, None));
        }
        let mut config = self.load_config()?;
        super::output::print_warnings(&config.warnings);
        if let Some(l) = limits {
            let e = &mut config.execution;
            e.timeout_s = l.timeout.as_secs_f64();
            e.max_rows = l.max_rows;
            e.max_cell_bytes = l.max_cell_bytes;
            e.max_value_mb = l.max_value_bytes >> 20;
            e.max_result_mb = l.max_result_bytes >> 20;
        }
        let db = lode_core::project::open_database(&config)?;
        super::sql::warn_if_writable(&db);
        Ok((db, Some(config)))
    }
}

/// Both ends of the terminal are a terminal: the TUI can run.
pub fn terminal_attached() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// `--timeout S`: seconds above 0 and at most a day (a parse error, never a panic).
pub fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    lode_core::config::seconds(v)
}

/// `--threads N`: 1 to `MAX_THREADS`.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    parse_count(s, 1, lode_core::config::MAX_THREADS)
}

/// `--few-shot K`, `--per-gap N`: 0 to 100.
pub fn parse_small_count(s: &str) -> Result<usize, String> {
    parse_count(s, 0, 100)
}

/// `--max-rows N`: 1 to `MAX_ROWS`.
pub fn parse_rows(s: &str) -> Result<usize, String> {
    parse_count(s, 1, lode_core::config::MAX_ROWS)
}

fn parse_count(s: &str, min: usize, max: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from {min} to {max}, not `{s}`"
        )),
    }
}
