//! `lode check`: load the project and check its inputs against the database: every gold and
//! eval query must run read-only and return rows; questions and glossary terms must not repeat.
//! Exits 1 when something is wrong, naming the file and line of each problem.

use anyhow::Result;
use clap::Args;

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
    print_report(&project, &report);
    Ok(if report.ok() { 0 } else { 1 })
}

/// Prints the project's other warnings (on stderr), then each problem as `file:line: message`
/// and a summary (on stdout). Shared with `lode init`.
pub fn print_report(project: &Project, report: &CheckReport) {
    let others: Vec<Warning> = project
        .warnings
        .iter()
        .filter(|w| !report.problems.contains(w))
        .cloned()
        .collect();
    print_warnings(&others);
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
