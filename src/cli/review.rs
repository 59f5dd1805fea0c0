//! `lode review`: the review verbs the TUI offers, for scripts and CI (each writes the same
//! history the TUI writes).

use std::io::Write;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};

use super::globals::Globals;
use lode_core::pipeline::validate::validate;
use lode_core::store::{PairFilter, PairStatus, ReviewAction};

#[derive(Args, Debug)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub action: ReviewVerb,
}

#[derive(Subcommand, Debug)]
pub enum ReviewVerb {
    /// List pairs (newest run by default)
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        run: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a pair with its validation attempts and review history
    Show { id: i64 },
    /// Accept pairs (or every valid pair with --all-valid)
    Accept {
        ids: Vec<i64>,
        #[arg(long)]
        all_valid: bool,
        /// With --all-valid, accept suspect pairs too (question and SQL disagree)
        #[arg(long, requires = "all_valid")]
        include_suspect: bool,
        #[arg(long)]
        run: Option<i64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject pairs
    Reject {
        ids: Vec<i64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change a pair's SQL and/or question; the SQL is validated before it is saved
    Edit {
        id: i64,
        #[arg(long)]
        sql: Option<String>,
        #[arg(long)]
        question: Option<String>,
        /// Accept the pair too (the edit and the accept are saved together or not at all)
        #[arg(long)]
        accept: bool,
    },
    /// Undo the latest decision on a pair
    Undo { id: i64 },
}

fn clip(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n - 1).collect::<String>())
    } else {
        one_line
    }
}

pub fn run(globals: &Globals, args: &ReviewArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let mut out = std::io::stdout().lock();
    match &args.action {
        ReviewVerb::List { status, run, limit } => {
            let statuses = match status {
                Some(s) => vec![s.parse::<PairStatus>().map_err(|_| {
                    anyhow!(
                        "unknown status `{s}`; use one of {}",
                        PairStatus::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?],
                None => Vec::new(),
            };
            let run = match run {
                Some(r) => Some(*r),
                None => lode_core::tasks::analyze::default_run(&store)?,
            };
            let pairs = store.pairs(&PairFilter {
                run_id: run,
                statuses,
                limit: Some(*limit),
                ..Default::default()
            })?;
            writeln!(
                out,
                "{:>6}  {:<10} {:<12} {:<50} sql",
                "id", "status", "generator", "question"
            )?;
            for p in &pairs {
                writeln!(
                    out,
                    "{:>6}  {:<10} {:<12} {:<50} {}",
                    p.id,
                    p.status.as_str(),
                    clip(&p.generator, 12),
                    clip(&p.question, 50),
                    clip(&p.sql, 60)
                )?;
            }
            let counts = store.count_pairs_by_status(run)?;
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                out,
                "run {}: {}",
                run.map_or("all".into(), |r| r.to_string()),
                parts.join(", ")
            )?;
        }
        ReviewVerb::Show { id } => {
            let p = store.pair(*id)?;
            writeln!(
                out,
                "pair {} ({}, {}, run {})",
                p.id, p.status, p.generator, p.run_id
            )?;
            writeln!(out, "question: {}", p.question)?;
            writeln!(out, "sql:      {}", p.sql)?;
            let history = store.review_history(p.id)?;
            if p.status == lode_core::store::PairStatus::Rejected {
                let reason = history
                    .iter()
                    .rev()
                    .find(|r| r.action == lode_core::store::ReviewAction::Reject && !r.undone)
                    .and_then(|r| r.note.clone());
                writeln!(
                    out,
                    "rejected: {}",
                    reason.as_deref().unwrap_or("(no reason given)")
                )?;
            }
            if let Some(repeats) = p.notes.duplicate_text() {
                writeln!(out, "repeats:  {repeats}")?;
            }
            for reason in &p.notes.disagreement {
                writeln!(out, "disagrees: {reason}")?;
            }
            for v in store.validations(p.id)? {
                writeln!(
                    out,
                    "  attempt {}: {}{}",
                    v.attempt,
                    if v.ok {
                        "ok".to_string()
                    } else {
                        format!("failed ({})", v.error_kind.unwrap_or_default())
                    },
                    v.error.map(|e| format!(": {e}")).unwrap_or_default()
                )?;
            }
            for r in history {
                writeln!(
                    out,
                    "  {} {} {} → {}{}{}",
                    r.created_at,
                    r.action,
                    r.prev_status,
                    r.new_status,
                    r.note.map(|n| format!(": {n}")).unwrap_or_default(),
                    if r.undone { " (undone)" } else { "" }
                )?;
            }
        }
        ReviewVerb::Accept {
            ids,
            all_valid,
            include_suspect,
            run,
            reason,
        } => {
            let mut targets = ids.clone();
            let mut left_out = 0;
            if *all_valid {
                let run = match run {
                    Some(r) => Some(*r),
                    None => lode_core::tasks::analyze::default_run(&store)?,
                };
                let valid = store.pairs(&PairFilter {
                    run_id: run,
                    statuses: vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Suspect],
                    ..Default::default()
                })?;
                for p in valid {
                    if p.status == PairStatus::Suspect && !include_suspect {
                        left_out += 1;
                    } else {
                        targets.push(p.id);
                    }
                }
            }
            if targets.is_empty() && left_out > 0 {
                writeln!(
                    out,
                    "accepted 0 pairs; left out {left_out} suspect pair{} (question and SQL \
                     disagree: `lode review list --status suspect` shows them, \
                     --include-suspect accepts them too)",
                    if left_out == 1 { "" } else { "s" }
                )?;
                return Ok(0);
            }
            if targets.is_empty() {
                bail!("give pair ids to accept, or --all-valid");
            }
            for id in &targets {
                store.review(
                    *id,
                    ReviewAction::Accept,
                    None,
                    None,
                    None,
                    reason.as_deref(),
                )?;
            }
            writeln!(out, "accepted {} pairs", targets.len())?;
            if left_out > 0 {
                writeln!(
                    out,
                    "left out {left_out} suspect pair{} (question and SQL disagree): \
                     `lode review list --status suspect` shows them, --include-suspect \
                     accepts them too",
                    if left_out == 1 { "" } else { "s" }
                )?;
            }
        }
        ReviewVerb::Reject { ids, reason } => {
            if ids.is_empty() {
                bail!("give the ids of the pairs to reject");
            }
            for id in ids {
                store.review(
                    *id,
                    ReviewAction::Reject,
                    None,
                    None,
                    None,
                    reason.as_deref(),
                )?;
            }
            writeln!(out, "rejected {} pairs", ids.len())?;
        }
        ReviewVerb::Edit {
            id,
            sql,
            question,
            accept,
        } => {
            if sql.is_none() && question.is_none() {
                bail!("give --sql and/or --question");
            }
            let current = store.pair(*id)?;
            let new_sql = sql.clone().unwrap_or(current.sql.clone());
            let v = validate(
                &project.db,
                &project.schema,
                &new_sql,
                &project.config.generate.validators,
            );
            if !v.ok {
                eprintln!(
                    "not saved: the SQL does not validate ({}): {}",
                    v.error_kind.unwrap_or_default(),
                    v.error.unwrap_or_default()
                );
                return Ok(1);
            }
            if *accept {
                store.edit_and_accept(*id, question.as_deref(), sql.as_deref(), None)?;
                writeln!(
                    out,
                    "pair {id} saved and accepted ({} rows)",
                    v.row_count.unwrap_or(0)
                )?;
                return Ok(0);
            }
            store.review(
                *id,
                ReviewAction::Edit,
                question.as_deref(),
                sql.as_deref(),
                Some(PairStatus::Valid),
                None,
            )?;
            writeln!(
                out,
                "pair {id} saved ({} rows); accept it with `lode review accept {id}`",
                v.row_count.unwrap_or(0)
            )?;
        }
        ReviewVerb::Undo { id } => match store.undo_last_review(*id)? {
            Some(r) => writeln!(
                out,
                "pair {id} is back to {} ({})",
                r.new_status,
                r.note.unwrap_or_default()
            )?,
            None => writeln!(out, "pair {id} has no decision to undo")?,
        },
    }
    Ok(0)
}
