//! The command line: one subcommand per stage, each in its own file with its clap arguments
//! beside its handler. Handlers get the global options ([`Globals`]), call `lode_core::tasks`
//! and render what comes back; none of them knows how a stage works inside.

pub mod analyze;
pub mod audit;
#[cfg(feature = "bench")]
pub mod bench;
pub mod check;
pub mod completions;
pub mod demo;
pub mod eval;
pub mod exit;
pub mod export;
pub mod generate;
pub mod globals;
pub mod init;
pub mod jobs;
pub mod json;
pub mod llm;
pub mod mcp;
pub mod output;
pub mod review;
pub mod reward;
pub mod schema;
pub mod sql;
pub mod tune;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

pub use globals::Globals;

#[derive(Parser, Debug)]
#[command(
    name = "lode",
    version,
    about = "Build domain-specific text-to-SQL models: generate, validate, review, analyze, tune and evaluate",
    long_about = None,
)]
pub struct Cli {
    /// The project's config file.
    #[arg(long, global = true, default_value = "config.yml")]
    pub config: PathBuf,
    /// Run as if started in DIR (the project directory).
    #[arg(short = 'C', long = "project", global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// The LLM profile to use instead of llm.default (`rules` is the offline backend).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Do not answer LLM calls from the cache (answers are still stored).
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Print one JSON document on stdout (JSON lines for streams), errors included, in the
    /// shapes src/cli/JSON.md documents; warnings and progress stay on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Without a command, `lode` opens the terminal UI on the project here.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The global options every handler gets.
    pub fn globals(&self) -> Globals {
        Globals {
            config: self.config.clone(),
            profile: self.profile.clone(),
            no_cache: self.no_cache,
            json: self.json,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the demo project (a bakery chain) and run every stage on it offline
    Demo(demo::DemoArgs),
    /// Start a project: write config.yml for your database, glossary and gold set
    Init(init::InitArgs),
    /// Check the project: every gold and eval query runs read-only and returns rows (exit 1 if not)
    Check(check::CheckArgs),
    /// Audit the gold and eval SQL: failing, empty, order-dependent, nondeterministic queries
    /// and filters that change nothing (exit 1 on findings)
    Audit(audit::AuditArgs),
    /// Print the database schema: tables, columns, keys, row counts, sample values
    Schema(schema::SchemaArgs),
    /// Run one read-only query safely, or analyze queries (concepts, hardness, template)
    Sql(sql::SqlArgs),
    /// Generate training pairs from the gold set, validate them by execution, dedup them
    Generate(generate::GenerateArgs),
    /// Coverage of SQL concepts, tables and topics, failed-pair analysis, and gap filling
    Analyze(analyze::AnalyzeArgs),
    /// Review generated pairs from the command line: list, accept, reject, edit, undo
    Review(review::ReviewArgs),
    /// Write pairs as datasets: the original's shapes, SFT formats, RL tasks (rl-tasks) and
    /// preference pairs (dpo)
    Export(export::ExportArgs),
    /// Bring the original's nested or flattened files into the store as a run
    Import(export::ImportArgs),
    /// Tune a model on the accepted pairs (memory offline, Lamini, OpenAI or a local trainer)
    Tune(tune::TuneArgs),
    /// List tuning jobs, watch one, or cancel one
    Jobs(jobs::JobsArgs),
    /// Evaluate a model on the eval set by execution accuracy, store the run, write reports
    Eval(eval::EvalArgs),
    /// Check an LLM profile: models offered, one structured request, latency
    Llm(llm::LlmArgs),
    /// Judge prediction files against gold files like the reference evaluators (Spider, BIRD, defog)
    EvalFiles(eval::EvalFilesArgs),
    /// Score model replies for RL with the evaluation's executor and comparator: JSON lines
    /// on stdin, or an HTTP server (`serve`)
    Reward(reward::RewardArgs),
    /// Serve the project to agents over the Model Context Protocol (stdio): schema, read-only
    /// SQL, review, coverage, evaluation
    Mcp(mcp::McpArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) generated from lode's
    /// own flags
    Completions(completions::CompletionsArgs),
    /// Print lode's manual page, or write one page per command into a directory
    Man(completions::ManArgs),
    /// Measure executor, analysis, evaluation, generation and TUI speed (built with
    /// `--features bench`)
    #[cfg(feature = "bench")]
    Bench(bench::BenchArgs),
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    if let Some(dir) = &cli.project {
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot enter project directory {}", dir.display()))?;
    }
    let globals = cli.globals();
    let Some(command) = &cli.command else {
        return open_tui(&globals);
    };
    match command {
        Command::Demo(args) => demo::run(args, &globals),
        Command::Init(args) => init::run(&globals, args),
        Command::Check(args) => check::run(&globals, args),
        Command::Audit(args) => audit::run(&globals, args),
        Command::Schema(args) => schema::run(&globals, args),
        Command::Sql(args) => sql::run(&globals, args),
        Command::Generate(args) => generate::run(&globals, args),
        Command::Analyze(args) => analyze::run(&globals, args),
        Command::Tune(args) => tune::run(&globals, args),
        Command::Jobs(args) => jobs::run(&globals, args),
        Command::Review(args) => review::run(&globals, args),
        Command::Export(args) => export::run(&globals, args),
        Command::Import(args) => export::run_import(&globals, args),
        Command::Eval(args) => eval::run(&globals, args),
        Command::Llm(args) => llm::run(&globals, args),
        Command::EvalFiles(args) => eval::run_files(&globals, args),
        Command::Reward(args) => reward::run(&globals, args),
        Command::Mcp(args) => mcp::run(&globals, args),
        Command::Completions(args) => completions::run_completions(args),
        Command::Man(args) => completions::run_man(&globals, args),
        #[cfg(feature = "bench")]
        Command::Bench(args) => bench::run(&globals, args),
    }
}

/// The command's name as JSON documents give it: the subcommands the user typed, joined by
/// spaces (`review list`, `eval diff`); `lode` alone is `lode`.
pub fn command_path(matches: &clap::ArgMatches) -> String {
    let mut names = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        names.push(name.to_string());
        m = sub;
    }
    if names.is_empty() {
        "lode".into()
    } else {
        names.join(" ")
    }
}

/// The command's name from the raw arguments, for an error before they parse: each word
/// that names a subcommand of the command before it (`lode --json eval-files --gold …` is
/// `eval-files`), `lode` when none does.
pub fn command_path_of_args(args: &[String]) -> String {
    use clap::CommandFactory;
    let root = Cli::command();
    let mut node = &root;
    let mut names: Vec<String> = Vec::new();
    for arg in args.iter().skip(1).filter(|a| !a.starts_with('-')) {
        if let Some(sub) = node.find_subcommand(arg) {
            names.push(sub.get_name().to_string());
            node = sub;
        }
    }
    if names.is_empty() {
        "lode".into()
    } else {
        names.join(" ")
    }
}

/// An error and its causes for one `error:` line, each said once. lode-core's errors already
/// carry their cause in their own text (so the TUI can show one string); a cause is added
/// only when the text so far does not say it.
pub fn error_message(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

/// `lode` alone: the TUI on the project here, or what to do instead.
fn open_tui(globals: &Globals) -> Result<i32> {
    if globals.json {
        return Err(exit::usage(
            "--json needs a command: `lode` alone opens the terminal UI",
            "give a command, e.g. `lode --json schema` (see `lode --help`)",
        ));
    }
    if !globals.config.exists() {
        use clap::CommandFactory;
        let mut help = Cli::command();
        eprintln!(
            "no {} here, so there is no project to open: pass -C DIR, create one with \
             `lode init`, or try `lode demo`.\n",
            globals.config.display()
        );
        help.print_help()?;
        return Ok(2);
    }
    if !globals::terminal_attached() {
        return Err(exit::usage(
            "the TUI needs a terminal (stdin and stdout are not one)",
            "use the commands instead, e.g. `lode review list` (see `lode --help`)",
        ));
    }
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    crate::tui::run(project, std::sync::Arc::new(store), globals.model_request())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn an_error_says_each_cause_once() {
        /// Like lode-core's errors: the cause in the text and as the source.
        #[derive(Debug)]
        struct Io {
            path: String,
            source: std::io::Error,
        }
        impl std::fmt::Display for Io {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot write {}: {}", self.path, self.source)
            }
        }
        impl std::error::Error for Io {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Io {
            path: "x".into(),
            source: io(),
        });
        assert_eq!(error_message(&e), "cannot write x: no such file");
        let e = anyhow::Error::new(io()).context("cannot read gold.jsonl");
        assert_eq!(error_message(&e), "cannot read gold.jsonl: no such file");
    }
}
