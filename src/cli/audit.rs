//! `lode audit`: question the gold SQL itself. Every gold and eval pair runs on the database
//! and is looked at for what makes it unfit to score against (it fails, answers nothing,
//! keeps rows the engine chooses, changes between runs, or filters on nothing); findings are
//! printed by kind with the file and line, the reason and a fix. `--json`: the findings in
//! one document (exit 1 on findings all the same).

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::globals::Globals;
use super::output::{indent, plural};
use lode_core::pipeline::audit::{Finding, FindingKind, audit_project};

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 when no pair has a finding, 1 when some do, 2 on an \
                        error (the project cannot be loaded).\n\n\
                        Kinds: fails, empty, all_null (only NULLs, or a lone COUNT of 0), \
                        order_dependent (LIMIT without ORDER BY), limit_ties (LIMIT cuts \
                        through a tie on the ORDER BY keys), nondeterministic (random(), \
                        'now'), filter_not_needed (a WHERE condition on a value the question \
                        names changes nothing on this database).\n\n\
                        `lode eval` runs the audit on the eval set and lists its findings in \
                        the report."
)]
pub struct AuditArgs {}

/// `lode audit --json`.
#[derive(Serialize)]
struct AuditDocument<'a> {
    /// No findings.
    ok: bool,
    gold_pairs: usize,
    eval_pairs: usize,
    /// No eval set of its own: the gold set doubles as the eval set (audited once).
    eval_is_gold: bool,
    /// Findings by kind (only kinds found).
    by_kind: BTreeMap<FindingKind, usize>,
    findings: &'a [Finding],
}

pub fn run(globals: &Globals, _args: &AuditArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let found = audit_project(&project);
    if globals.json {
        let mut by_kind = BTreeMap::new();
        for f in &found {
            *by_kind.entry(f.kind).or_insert(0) += 1;
        }
        let doc = AuditDocument {
            ok: found.is_empty(),
            gold_pairs: project.gold.len(),
            eval_pairs: project.eval.len(),
            eval_is_gold: project.eval_is_gold,
            by_kind,
            findings: &found,
        };
        super::json::emit("audit", &doc)?;
    } else {
        print!("{}", describe(&found));
        let eval = if project.eval_is_gold {
            "the gold set doubles as the eval set".to_string()
        } else {
            plural(project.eval.len(), "eval pair")
        };
        println!(
            "audited {}, {eval}: {}",
            plural(project.gold.len(), "gold pair"),
            match found.len() {
                0 => "no findings".to_string(),
                n => plural(n, "finding"),
            }
        );
    }
    Ok(if found.is_empty() { 0 } else { 1 })
}

/// The findings grouped by kind: each with where it is, its question, SQL, reason and fix.
pub fn describe(found: &[Finding]) -> String {
    let mut by_kind: BTreeMap<FindingKind, Vec<&Finding>> = BTreeMap::new();
    for f in found {
        by_kind.entry(f.kind).or_default().push(f);
    }
    let mut out = String::new();
    for (kind, fs) in by_kind {
        out.push_str(&format!("{} ({})\n", kind.name(), fs.len()));
        for f in fs {
            out.push_str(&format!(
                "  {} ({} #{}): {}\n",
                f.location(),
                f.set.name(),
                f.position,
                f.question
            ));
            out.push_str(&indent(&f.sql, "      "));
            out.push_str(&format!("    why: {}\n    fix: {}\n", f.reason, f.fix));
        }
        out.push('\n');
    }
    out
}
