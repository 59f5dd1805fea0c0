//! `lode check`: load the project and check its inputs against the database: every gold and
//! eval query must run read-only and return rows; questions and glossary terms must not repeat.
//! Exits 1 when something is wrong, naming the file and line of each problem. `--json`: the
//! same report as one document (exit 1 all the same).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::globals::Globals;
use super::output::print_warnings;
use lode_core::diag::Warning;
use lode_core::project::Project;
use lode_core::project::check::{CheckReport, check};

#[derive(Args, Debug)]
pub struct CheckArgs {}

pub fn run(globals: &Globals, _args: &CheckArgs) -> Result<i32> {
    let config = globals.load_config()?;
    let project = Project::from_config(config)?;
    let report = check(&project);
    if globals.json {
        print_warnings(&other_warnings(&project, &report));
        super::json::emit("check", &CheckDocument::new(&project, &report))?;
    } else {
        print_report(&project, &report);
    }
    Ok(if report.ok() { 0 } else { 1 })
}

/// The size of a project's inputs.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectInputs {
    pub tables: usize,
    pub glossary_entries: usize,
    pub gold_pairs: usize,
    pub eval_pairs: usize,
    /// No eval set of its own: the gold set doubles as the eval set.
    pub eval_is_gold: bool,
}

impl ProjectInputs {
    pub fn of(project: &Project) -> ProjectInputs {
        ProjectInputs {
            tables: project.schema.tables.len(),
            glossary_entries: project.glossary.len(),
            gold_pairs: project.gold.len(),
            eval_pairs: project.eval.len(),
            eval_is_gold: project.eval_is_gold,
        }
    }
}

/// A problem or a warning about an input file, at a line when known.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl From<&Warning> for Problem {
    fn from(w: &Warning) -> Problem {
        Problem {
            file: w.path.clone(),
            line: w.line,
            message: w.message.clone(),
        }
    }
}

/// `lode check --json` (and the `check` of `lode init --json`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckDocument {
    /// No problems.
    pub ok: bool,
    /// Gold queries run.
    pub gold_checked: usize,
    /// Eval queries run (0 when the gold set doubles as the eval set).
    pub eval_checked: usize,
    #[serde(flatten)]
    pub inputs: ProjectInputs,
    /// Each problem, in file order: a query that fails, returns no rows or is not read-only,
    /// a question or glossary term given twice.
    pub problems: Vec<Problem>,
    /// The project's other warnings (also printed on stderr).
    pub warnings: Vec<Problem>,
}

impl CheckDocument {
    pub fn new(project: &Project, report: &CheckReport) -> CheckDocument {
        CheckDocument {
            ok: report.ok(),
            gold_checked: report.gold_checked,
            eval_checked: report.eval_checked,
            inputs: ProjectInputs::of(project),
            problems: report.problems.iter().map(Problem::from).collect(),
            warnings: other_warnings(project, report)
                .iter()
                .map(Problem::from)
                .collect(),
        }
    }
}

/// The project's warnings that are not among the report's problems.
pub fn other_warnings(project: &Project, report: &CheckReport) -> Vec<Warning> {
    project
        .warnings
        .iter()
        .filter(|w| !report.problems.contains(w))
        .cloned()
        .collect()
}

/// Prints the project's other warnings (on stderr), then each problem as `file:line: message`
/// and a summary (on stdout). Shared with `lode init`.
pub fn print_report(project: &Project, report: &CheckReport) {
    print_warnings(&other_warnings(project, report));
    for p in &report.problems {
        match p.line {
            Some(line) => println!("{}:{line}: {}", p.path.display(), p.message),
            None => println!("{}: {}", p.path.display(), p.message),
        }
    }
    let eval = if project.eval_is_gold {
        "the gold set doubles as the eval set".to_string()
    } else {
        format!("{} eval queries", report.eval_checked)
    };
    println!(
        "checked {} gold queries, {eval}, {} glossary entries, {} tables: {}",
        report.gold_checked,
        report.glossary_entries,
        project.schema.tables.len(),
        match report.problems.len() {
            0 => "no problems".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    );
}
