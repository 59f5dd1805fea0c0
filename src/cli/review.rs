//! `lode review`: the review verbs the TUI offers, for scripts, CI and agents. Every decision
//! goes through [`lode_core::pipeline::review::decide`], the function the TUI and the MCP
//! server use, and is recorded as made by `cli`. Each verb computes a typed document once
//! ([`PairList`], [`PairShown`], [`Decisions`], [`Edited`], [`Undone`]) and renders it as
//! text or, with `--json`, as JSON (`lode mcp` returns the same documents).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value as Json;

use super::exit;
use super::globals::Globals;
use super::json;
use lode_core::pipeline::review::{self, Decision, Edit, Reviewer};
use lode_core::pipeline::validate::Validation;
use lode_core::project::Project;
use lode_core::store::{
    Pair, PairFilter, PairStatus, Review, ReviewAction, Store, ValidationAttempt,
};

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
        /// Skip this many pairs first (with --limit, pages through a run).
        #[arg(long, default_value_t = 0)]
        offset: usize,
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

// --- the documents ------------------------------------------------------------------------

/// `review list`: a page of a run's pairs, and the run's pairs by status.
#[derive(Debug, Serialize)]
pub struct PairList {
    /// The run listed (the newest generation or import run unless one is named); `null`
    /// lists every run (a store with no runs yet).
    pub run_id: Option<i64>,
    /// The status filter, or `null` for every status.
    pub status: Option<PairStatus>,
    pub limit: usize,
    pub offset: usize,
    /// The run's pairs by status (every status, whatever the filter).
    pub counts: BTreeMap<String, u64>,
    pub pairs: Vec<ListedPair>,
}

/// One pair of a list.
#[derive(Debug, Serialize)]
pub struct ListedPair {
    pub id: i64,
    pub run_id: i64,
    pub status: PairStatus,
    pub generator: String,
    pub question: String,
    pub sql: String,
    pub updated_at: String,
}

/// `review show`: a pair with its validation attempts and review history.
#[derive(Debug, Serialize)]
pub struct PairShown {
    pub pair: Pair,
    /// The note of the reject that stands, when the pair is rejected (`null` otherwise, or
    /// when none was given).
    pub rejected_reason: Option<String>,
    pub validations: Vec<Attempt>,
    /// Every decision, oldest first, undos included, each with its `reviewer`.
    pub reviews: Vec<Review>,
}

/// One validation attempt of a pair.
#[derive(Debug, Serialize)]
pub struct Attempt {
    pub attempt: i64,
    pub sql: String,
    pub ok: bool,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub row_count: Option<i64>,
    pub elapsed_ms: Option<f64>,
    /// Remarks that are not failures (`["truncated"]`).
    pub flags: Json,
    /// The first rows: `{"columns", "rows", "total_rows"}`, or `null`.
    pub result_preview: Json,
    pub created_at: String,
}

impl From<ValidationAttempt> for Attempt {
    fn from(v: ValidationAttempt) -> Attempt {
        let parsed = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Json::Null)
        };
        Attempt {
            attempt: v.attempt,
            sql: v.sql,
            ok: v.ok,
            error_kind: v.error_kind,
            error: v.error,
            row_count: v.row_count,
            elapsed_ms: v.elapsed_ms,
            flags: match parsed(v.flags_json) {
                Json::Null => Json::Array(Vec::new()),
                other => other,
            },
            result_preview: parsed(v.result_preview_json),
            created_at: v.created_at,
        }
    }
}

/// `review accept` and `review reject`: the decisions made, in order.
#[derive(Debug, Serialize)]
pub struct Decisions {
    pub action: ReviewAction,
    pub decided: Vec<DecidedPair>,
    /// With `--all-valid`: the suspect pairs left out (no `--include-suspect`).
    pub left_out_suspect: Vec<i64>,
}

/// One decision of [`Decisions`].
#[derive(Debug, Serialize)]
pub struct DecidedPair {
    pub pair_id: i64,
    pub review_id: i64,
    pub prev_status: PairStatus,
    pub new_status: PairStatus,
    pub note: Option<String>,
    pub reviewer: Option<Reviewer>,
}

impl From<&Review> for DecidedPair {
    fn from(r: &Review) -> DecidedPair {
        DecidedPair {
            pair_id: r.pair_id,
            review_id: r.id,
            prev_status: r.prev_status,
            new_status: r.new_status,
            note: r.note.clone(),
            reviewer: r.reviewer,
        }
    }
}

/// `review edit`: whether the edit was saved, with the validation that decided it.
#[derive(Debug, Serialize)]
pub struct Edited {
    pub pair_id: i64,
    /// `false`: the SQL does not validate and nothing changed (exit 1).
    pub saved: bool,
    pub accepted: bool,
    /// The pair's status now.
    pub status: PairStatus,
    /// The run of the pair's SQL (the new SQL, or its own when only the question changed).
    pub validation: Option<Validation>,
    /// The decision stored (the accept, with `--accept`), or `null`.
    pub review: Option<Review>,
}

/// `review undo`: what the undo restored.
#[derive(Debug, Serialize)]
pub struct Undone {
    pub pair_id: i64,
    /// `false`: there was no decision to undo.
    pub undone: bool,
    /// The pair's status now.
    pub status: PairStatus,
    /// The undo's own record (its `note` names the review undone), or `null`.
    pub review: Option<Review>,
}

// --- the operations (shared with `lode mcp`) ------------------------------------------------

/// A status named on the command line or by a tool; a usage error naming the choices.
pub fn parse_status(s: &str) -> Result<PairStatus> {
    s.parse::<PairStatus>().map_err(|_| {
        exit::usage(
            format!("unknown status `{s}`"),
            format!(
                "use one of {}",
                PairStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// The run a verb works on: the one named (which must exist), else the newest generation or
/// import run.
fn run_or_newest(store: &Store, run: Option<i64>) -> Result<Option<i64>> {
    match run {
        Some(r) => {
            store.run(r)?;
            Ok(Some(r))
        }
        None => Ok(lode_core::tasks::analyze::default_run(store)?),
    }
}

/// `review list`.
pub fn list(
    store: &Store,
    status: Option<&str>,
    run: Option<i64>,
    limit: usize,
    offset: usize,
) -> Result<PairList> {
    let status = status.map(parse_status).transpose()?;
    let run = run_or_newest(store, run)?;
    let pairs = store.pairs(&PairFilter {
        run_id: run,
        statuses: status.into_iter().collect(),
        limit: Some(limit),
        offset,
        ..Default::default()
    })?;
    Ok(PairList {
        run_id: run,
        status,
        limit,
        offset,
        counts: store.count_pairs_by_status(run)?,
        pairs: pairs
            .into_iter()
            .map(|p| ListedPair {
                id: p.id,
                run_id: p.run_id,
                status: p.status,
                generator: p.generator,
                question: p.question,
                sql: p.sql,
                updated_at: p.updated_at,
            })
            .collect(),
    })
}

/// `review show`.
pub fn show(store: &Store, id: i64) -> Result<PairShown> {
    let pair = store.pair(id)?;
    let reviews = store.review_history(id)?;
    let rejected_reason = if pair.status == PairStatus::Rejected {
        reviews
            .iter()
            .rev()
            .find(|r| r.action == ReviewAction::Reject && !r.undone)
            .and_then(|r| r.note.clone())
    } else {
        None
    };
    Ok(PairShown {
        pair,
        rejected_reason,
        validations: store
            .validations(id)?
            .into_iter()
            .map(Attempt::from)
            .collect(),
        reviews,
    })
}

/// Every id must name a pair before any is decided: a typo decides nothing.
fn check_ids(store: &Store, ids: &[i64]) -> Result<()> {
    for id in ids {
        store.pair(*id)?;
    }
    Ok(())
}

/// `ids` in order, each once.
fn unique(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut seen = std::collections::BTreeSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// `review accept`: the pairs named, and with `all_valid` every valid or fixed pair of the
/// run (suspect ones too with `include_suspect`).
#[allow(clippy::too_many_arguments)]
pub fn accept(
    project: &Project,
    store: &Store,
    ids: &[i64],
    all_valid: bool,
    include_suspect: bool,
    run: Option<i64>,
    reason: Option<&str>,
    by: Reviewer,
) -> Result<Decisions> {
    if ids.is_empty() && !all_valid {
        return Err(exit::usage(
            "give pair ids to accept, or --all-valid",
            "e.g. `lode review accept 12 14`, or `lode review accept --all-valid` for every \
             valid pair of the newest run",
        ));
    }
    check_ids(store, ids)?;
    let mut targets = ids.to_vec();
    let mut left_out_suspect = Vec::new();
    if all_valid {
        let run = run_or_newest(store, run)?;
        let valid = store.pairs(&PairFilter {
            run_id: run,
            statuses: vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Suspect],
            ..Default::default()
        })?;
        for p in valid {
            if p.status == PairStatus::Suspect && !include_suspect {
                left_out_suspect.push(p.id);
            } else {
                targets.push(p.id);
            }
        }
    }
    let mut decided = Vec::new();
    for id in unique(targets) {
        let d = review::decide(project, store, id, Decision::accept(reason), by)?;
        decided.extend(d.review.as_ref().map(DecidedPair::from));
    }
    Ok(Decisions {
        action: ReviewAction::Accept,
        decided,
        left_out_suspect,
    })
}

/// `review reject`.
pub fn reject(
    project: &Project,
    store: &Store,
    ids: &[i64],
    reason: Option<&str>,
    by: Reviewer,
) -> Result<Decisions> {
    if ids.is_empty() {
        return Err(exit::usage(
            "give the ids of the pairs to reject",
            "e.g. `lode review reject 12 --reason \"wrong join\"`",
        ));
    }
    check_ids(store, ids)?;
    let mut decided = Vec::new();
    for id in unique(ids.iter().copied()) {
        let d = review::decide(project, store, id, Decision::reject(reason), by)?;
        decided.extend(d.review.as_ref().map(DecidedPair::from));
    }
    Ok(Decisions {
        action: ReviewAction::Reject,
        decided,
        left_out_suspect: Vec::new(),
    })
}

/// `review edit`: the SQL the pair will have (the new one, or its own when only the
/// question changes) is validated first; nothing is saved unless it validates.
pub fn edit(
    project: &Project,
    store: &Store,
    id: i64,
    sql: Option<&str>,
    question: Option<&str>,
    accept: bool,
    by: Reviewer,
) -> Result<Edited> {
    if sql.is_none() && question.is_none() {
        return Err(exit::usage(
            "give --sql and/or --question",
            "e.g. `lode review edit 12 --sql \"SELECT …\" --accept`",
        ));
    }
    let d = review::decide(
        project,
        store,
        id,
        Decision::Edit(Edit {
            question: question.map(str::to_string),
            sql: sql.map(str::to_string),
            accept,
            check_unchanged_sql: true,
            ..Edit::default()
        }),
        by,
    )?;
    let saved = d.saved();
    Ok(Edited {
        pair_id: id,
        saved,
        accepted: saved && accept,
        status: store.pair(id)?.status,
        validation: d.validation,
        review: d.review,
    })
}

/// `review undo`.
pub fn undo(project: &Project, store: &Store, id: i64, by: Reviewer) -> Result<Undone> {
    let d = review::decide(project, store, id, Decision::Undo, by)?;
    Ok(Undone {
        pair_id: id,
        undone: d.saved(),
        status: store.pair(id)?.status,
        review: d.review,
    })
}

// --- the command --------------------------------------------------------------------------

pub fn run(globals: &Globals, args: &ReviewArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let by = Reviewer::Cli;
    let mut out = std::io::stdout().lock();
    match &args.action {
        ReviewVerb::List {
            status,
            run,
            limit,
            offset,
        } => {
            let list = list(&store, status.as_deref(), *run, *limit, *offset)?;
            if globals.json {
                json::emit("review list", &list)?;
            } else {
                write_list(&mut out, &list)?;
            }
            Ok(0)
        }
        ReviewVerb::Show { id } => {
            let shown = show(&store, *id)?;
            if globals.json {
                json::emit("review show", &shown)?;
            } else {
                write_shown(&mut out, &shown)?;
            }
            Ok(0)
        }
        ReviewVerb::Accept {
            ids,
            all_valid,
            include_suspect,
            run,
            reason,
        } => {
            let decisions = accept(
                &project,
                &store,
                ids,
                *all_valid,
                *include_suspect,
                *run,
                reason.as_deref(),
                by,
            )?;
            if globals.json {
                json::emit("review accept", &decisions)?;
            } else {
                write_accepted(&mut out, &decisions)?;
            }
            Ok(0)
        }
        ReviewVerb::Reject { ids, reason } => {
            let decisions = reject(&project, &store, ids, reason.as_deref(), by)?;
            if globals.json {
                json::emit("review reject", &decisions)?;
            } else {
                writeln!(out, "rejected {} pairs", decisions.decided.len())?;
            }
            Ok(0)
        }
        ReviewVerb::Edit {
            id,
            sql,
            question,
            accept,
        } => {
            let edited = edit(
                &project,
                &store,
                *id,
                sql.as_deref(),
                question.as_deref(),
                *accept,
                by,
            )?;
            let rows = edited
                .validation
                .as_ref()
                .and_then(|v| v.row_count)
                .unwrap_or(0);
            if !edited.saved {
                let v = edited.validation.as_ref();
                eprintln!(
                    "not saved: the SQL does not validate ({}): {}",
                    v.and_then(|v| v.error_kind.as_deref()).unwrap_or_default(),
                    v.and_then(|v| v.error.as_deref()).unwrap_or_default()
                );
            } else if !globals.json {
                if edited.accepted {
                    writeln!(out, "pair {id} saved and accepted ({rows} rows)")?;
                } else {
                    writeln!(
                        out,
                        "pair {id} saved ({rows} rows); accept it with `lode review accept {id}`"
                    )?;
                }
            }
            if globals.json {
                json::emit("review edit", &edited)?;
            }
            Ok(if edited.saved { 0 } else { 1 })
        }
        ReviewVerb::Undo { id } => {
            let undone = undo(&project, &store, *id, by)?;
            if globals.json {
                json::emit("review undo", &undone)?;
            } else {
                match &undone.review {
                    Some(r) => writeln!(
                        out,
                        "pair {id} is back to {} ({})",
                        r.new_status,
                        r.note.as_deref().unwrap_or_default()
                    )?,
                    None => writeln!(out, "pair {id} has no decision to undo")?,
                }
            }
            Ok(0)
        }
    }
}

fn write_list(out: &mut impl Write, list: &PairList) -> Result<()> {
    writeln!(
        out,
        "{:>6}  {:<10} {:<12} {:<50} sql",
        "id", "status", "generator", "question"
    )?;
    for p in &list.pairs {
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
    let parts: Vec<String> = list
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    writeln!(
        out,
        "run {}: {}",
        list.run_id.map_or("all".into(), |r| r.to_string()),
        parts.join(", ")
    )?;
    Ok(())
}

fn write_shown(out: &mut impl Write, shown: &PairShown) -> Result<()> {
    let p = &shown.pair;
    writeln!(
        out,
        "pair {} ({}, {}, run {})",
        p.id, p.status, p.generator, p.run_id
    )?;
    writeln!(out, "question: {}", p.question)?;
    writeln!(out, "sql:      {}", p.sql)?;
    if p.status == PairStatus::Rejected {
        writeln!(
            out,
            "rejected: {}",
            shown
                .rejected_reason
                .as_deref()
                .unwrap_or("(no reason given)")
        )?;
    }
    if let Some(repeats) = p.notes.duplicate_text() {
        writeln!(out, "repeats:  {repeats}")?;
    }
    for reason in &p.notes.disagreement {
        writeln!(out, "disagrees: {reason}")?;
    }
    for v in &shown.validations {
        writeln!(
            out,
            "  attempt {}: {}{}",
            v.attempt,
            if v.ok {
                "ok".to_string()
            } else {
                format!("failed ({})", v.error_kind.as_deref().unwrap_or_default())
            },
            v.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )?;
    }
    for r in &shown.reviews {
        writeln!(
            out,
            "  {} {}{} {} → {}{}{}",
            r.created_at,
            r.action,
            r.reviewer.map(|by| format!(" by {by}")).unwrap_or_default(),
            r.prev_status,
            r.new_status,
            r.note
                .as_ref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default(),
            if r.undone { " (undone)" } else { "" }
        )?;
    }
    Ok(())
}

fn write_accepted(out: &mut impl Write, d: &Decisions) -> Result<()> {
    let left_out = d.left_out_suspect.len();
    let s = if left_out == 1 { "" } else { "s" };
    if d.decided.is_empty() && left_out > 0 {
        writeln!(
            out,
            "accepted 0 pairs; left out {left_out} suspect pair{s} (question and SQL \
             disagree: `lode review list --status suspect` shows them, \
             --include-suspect accepts them too)",
        )?;
        return Ok(());
    }
    writeln!(out, "accepted {} pairs", d.decided.len())?;
    if left_out > 0 {
        writeln!(
            out,
            "left out {left_out} suspect pair{s} (question and SQL disagree): \
             `lode review list --status suspect` shows them, --include-suspect \
             accepts them too",
        )?;
    }
    Ok(())
}
