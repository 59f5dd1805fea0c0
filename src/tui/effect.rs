//! Side effects the app asks for ([`Effect`]) and their results ([`BgEvent`]). Every store
//! read, store write and SQL run is an effect: the loop runs it off the UI thread and sends
//! its result, or its error, back. [`run_blocking`] is the one place such effects are carried
//! out (the loop calls it on a blocking thread, the benchmark inline).

use lode_core::pipeline::coverage::Coverage;
use lode_core::pipeline::review::{self, Decision, Edit, Reviewer};
use lode_core::project::Project;
use lode_core::sql::{CancelFlag, ExecError, QueryResult};
use lode_core::store::{JobEvent, PairSummary, QueueQuery, Review, ReviewAction, RunKind, Store};
use lode_core::tasks::StageEvent;

use super::panes::eval::EvalView;
use super::panes::jobs::JobsRead;
use super::panes::pair::Detail;

/// Which run a queue read shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunChoice {
    /// The query's own run.
    Keep,
    /// The newest generation or import run.
    Latest,
    /// The run after this one: newest first, then every run (`None`), then round again.
    After(Option<i64>),
}

/// A change to the store asked for by a review key. The app sends one at a time, in the order
/// the keys came, so an undo never overtakes the decision it undoes.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Decide {
        id: i64,
        action: ReviewAction,
        note: Option<String>,
    },
    Undo(i64),
    /// Validate the SQL against the database, then record it as an edit and accept it.
    SaveEdit {
        id: i64,
        sql: String,
    },
    /// Record a new question; the pair keeps its status (nothing runs for a question).
    SaveQuestion {
        id: i64,
        question: String,
    },
    BulkAccept(Vec<i64>),
    /// Keep the pair's unsaved SQL edit as a draft (it survives quitting).
    SaveDraft {
        id: i64,
        sql: String,
    },
    /// Forget the pair's draft (saved or discarded).
    DropDraft(i64),
}

/// Side effects the loop performs.
#[derive(Debug, Clone)]
pub enum Effect {
    RunQuery {
        ticket: u64,
        sql: String,
        cancel: CancelFlag,
        /// Wait this long first (a run that follows the selection waits for the keys to
        /// settle; moving on cancels it before it starts).
        delay: std::time::Duration,
    },
    /// Reads the queue for a filter, search, order or run.
    LoadRows {
        generation: u64,
        query: QueueQuery,
        run: RunChoice,
    },
    /// Reads one pair with its validation attempts and gold parent.
    LoadDetail(i64),
    /// Reads the newest evaluation, its cases and what flipped since the one before.
    LoadEval,
    LoadJobs,
    LoadJobEvents(i64),
    /// Reads the SQL drafts kept in the store.
    LoadDrafts,
    Write(Write),
    Copy(String),
    ExternalEdit(String),
    Generate,
    Analyze,
    Evaluate,
    CancelJob(i64),
    Quit,
}

/// The outcome of a [`Write`], committed (or not) when it arrives.
#[derive(Debug, Clone)]
pub enum Written {
    Decided {
        id: i64,
        result: Result<Review, String>,
    },
    Undone {
        id: i64,
        result: Result<Option<Review>, String>,
    },
    EditSaved {
        id: i64,
        sql: String,
        result: Result<(), String>,
    },
    QuestionSaved {
        id: i64,
        question: String,
        result: Result<(), String>,
    },
    BulkAccepted {
        accepted: usize,
        failed: Vec<(i64, String)>,
    },
    /// A draft was kept (`saved`) or forgotten.
    Draft {
        id: i64,
        saved: bool,
        result: Result<(), String>,
    },
}

/// Results of background work.
#[derive(Debug, Clone)]
pub enum BgEvent {
    QueryDone {
        ticket: u64,
        result: Result<QueryResult, ExecError>,
    },
    /// The queue read for [`Effect::LoadRows`] (older generations are dropped), with the run
    /// it shows.
    Rows {
        generation: u64,
        choice: RunChoice,
        run: Option<i64>,
        rows: Result<Vec<PairSummary>, String>,
    },
    Detail {
        id: i64,
        detail: Result<Box<Detail>, String>,
    },
    Eval(Result<Box<EvalView>, String>),
    /// The tuning jobs with their progress.
    Jobs(Result<Box<JobsRead>, String>),
    JobEvents {
        id: i64,
        events: Result<Vec<JobEvent>, String>,
    },
    Written(Written),
    /// An event of a task started here (generation, evaluation).
    Stage(StageEvent),
    /// A one-line outcome of a small action (a job cancelled).
    Message(String),
    /// A tuning job's status or events changed in the store.
    JobsChanged,
    /// The coverage of the run shown, or why it could not be computed.
    Coverage(Result<Box<Coverage>, String>),
    EditedSql(String),
    /// The SQL drafts kept in the store.
    Drafts(Result<Vec<(i64, String)>, String>),
}

impl Effect {
    /// Whether the effect answers with a result event ([`BgEvent::ends_an_effect`]); copying,
    /// handing over to `$EDITOR` and quitting do not.
    pub fn answers(&self) -> bool {
        !matches!(
            self,
            Effect::Copy(_) | Effect::ExternalEdit(_) | Effect::Quit
        )
    }
}

impl BgEvent {
    /// Whether the event is the result that ends an effect, not a progress report.
    pub fn ends_an_effect(&self) -> bool {
        matches!(
            self,
            BgEvent::QueryDone { .. }
                | BgEvent::Stage(StageEvent::Finished { .. } | StageEvent::Failed { .. })
                | BgEvent::Message(_)
                | BgEvent::Coverage(_)
                | BgEvent::Rows { .. }
                | BgEvent::Detail { .. }
                | BgEvent::Eval(_)
                | BgEvent::Jobs(_)
                | BgEvent::JobEvents { .. }
                | BgEvent::Written(_)
                | BgEvent::Drafts(_)
        )
    }
}

/// Whether an effect is carried out by [`run_blocking`].
pub fn is_blocking(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::RunQuery { .. }
            | Effect::LoadRows { .. }
            | Effect::LoadDetail(_)
            | Effect::LoadEval
            | Effect::LoadJobs
            | Effect::LoadJobEvents(_)
            | Effect::LoadDrafts
            | Effect::Write(_)
    )
}

/// Carries out a store read, a store write or an SQL run on this thread, and returns its
/// result; `None` for the effects that are not of these kinds (see [`is_blocking`]).
pub fn run_blocking(effect: Effect, project: &Project, store: &Store) -> Option<BgEvent> {
    let text = |e: lode_core::store::StoreError| e.to_string();
    Some(match effect {
        Effect::RunQuery {
            ticket,
            sql,
            cancel,
            delay,
        } => {
            // The wait is cut short when the run is cancelled (the selection moved on); the
            // query then answers `cancelled` at once.
            let until = std::time::Instant::now() + delay;
            while !cancel.is_cancelled() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(5).min(delay));
            }
            let db = &project.db;
            let result = db.query_detached(&sql, db.limits(), Some(&cancel));
            BgEvent::QueryDone { ticket, result }
        }
        Effect::LoadRows {
            generation,
            mut query,
            run: choice,
        } => {
            let rows = resolve_run(store, choice, query.run_id).and_then(|run| {
                query.run_id = run;
                store.pair_summaries(&query).map(|rows| (run, rows))
            });
            match rows {
                Ok((run, rows)) => BgEvent::Rows {
                    generation,
                    choice,
                    run,
                    rows: Ok(rows),
                },
                Err(e) => BgEvent::Rows {
                    generation,
                    choice,
                    run: query.run_id,
                    rows: Err(e.to_string()),
                },
            }
        }
        Effect::LoadDetail(id) => BgEvent::Detail {
            id,
            detail: load_detail(store, id)
                .map(Box::new)
                .map_err(|e| format!("cannot read pair {id}: {e}")),
        },
        Effect::LoadEval => BgEvent::Eval(load_eval(project, store).map(Box::new).map_err(text)),
        Effect::LoadJobs => BgEvent::Jobs(JobsRead::load(store).map(Box::new).map_err(text)),
        Effect::LoadJobEvents(id) => BgEvent::JobEvents {
            id,
            events: store
                .job_events(id)
                .map_err(|e| format!("cannot read the events of job {id}: {e}")),
        },
        Effect::LoadDrafts => BgEvent::Drafts(store.drafts().map_err(text)),
        Effect::Write(w) => BgEvent::Written(write(w, project, store)),
        Effect::Copy(_)
        | Effect::ExternalEdit(_)
        | Effect::Generate
        | Effect::Analyze
        | Effect::Evaluate
        | Effect::CancelJob(_)
        | Effect::Quit => return None,
    })
}

fn resolve_run(
    store: &Store,
    choice: RunChoice,
    current: Option<i64>,
) -> lode_core::store::Result<Option<i64>> {
    if choice == RunChoice::Keep {
        return Ok(current);
    }
    let runs: Vec<Option<i64>> = store
        .runs()?
        .into_iter()
        .filter(|r| matches!(r.kind, RunKind::Generate | RunKind::Import))
        .map(|r| Some(r.id))
        .collect();
    Ok(match choice {
        RunChoice::Keep => current,
        RunChoice::Latest => runs.first().copied().flatten(),
        RunChoice::After(current) => {
            let mut cycle = runs;
            cycle.push(None);
            let i = cycle.iter().position(|r| *r == current).unwrap_or(0);
            cycle[(i + 1) % cycle.len()]
        }
    })
}

fn load_detail(store: &Store, id: i64) -> lode_core::store::Result<Detail> {
    let pair = store.pair(id)?;
    let attempts = store.validations(id)?;
    let gold = match pair.parent_gold_id {
        Some(g) => store.gold_pair(g)?,
        None => None,
    };
    let reviews = store.review_history(id)?;
    Ok(Detail {
        pair,
        attempts,
        gold,
        reviews,
    })
}

/// The newest evaluation, the one before it, and the gold audit of the eval set (the gold
/// SQL as it is in the file now, run on the database).
fn load_eval(project: &Project, store: &Store) -> lode_core::store::Result<EvalView> {
    let runs = store.eval_runs()?;
    let run = runs.first().cloned();
    let cases = match &run {
        Some(r) => store.eval_cases(r.id)?,
        None => Vec::new(),
    };
    let flips = match (runs.first(), runs.get(1)) {
        (Some(a), Some(b)) => lode_core::pipeline::model_eval::diff_runs(store, b.id, a.id)?,
        _ => Vec::new(),
    };
    let audit =
        lode_core::pipeline::audit::audit(project, lode_core::pipeline::audit::AuditSet::Eval);
    Ok(EvalView {
        run,
        cases,
        flips,
        audit,
    })
}

/// Carries out a write; every decision goes through [`review::decide`], as the TUI's.
fn write(w: Write, project: &Project, store: &Store) -> Written {
    let text = |e: lode_core::store::StoreError| e.to_string();
    let decide = |id, decision| review::decide(project, store, id, decision, Reviewer::Tui);
    match w {
        Write::Decide { id, action, note } => Written::Decided {
            id,
            result: match Decision::of_action(action, note) {
                Some(decision) => decide(id, decision).map_err(text).and_then(|d| {
                    d.review
                        .ok_or_else(|| format!("pair {id}: the {action} was not saved"))
                }),
                None => Err(format!("{action} is not a decision of its own")),
            },
        },
        Write::SaveDraft { id, sql } => Written::Draft {
            id,
            saved: true,
            result: store.save_draft(id, &sql).map_err(text),
        },
        Write::DropDraft(id) => Written::Draft {
            id,
            saved: false,
            result: store.drop_draft(id).map(|_| ()).map_err(text),
        },
        Write::Undo(id) => Written::Undone {
            id,
            result: decide(id, Decision::Undo).map(|d| d.review).map_err(text),
        },
        Write::SaveEdit { id, sql } => {
            let edit = Edit {
                sql: Some(sql.clone()),
                accept: true,
                accept_note: Some("edited".into()),
                ..Edit::default()
            };
            let result = match decide(id, Decision::Edit(edit)) {
                Ok(d) => d.refusal().map_or(Ok(()), Err),
                Err(e) => Err(text(e)),
            };
            Written::EditSaved { id, sql, result }
        }
        Write::SaveQuestion { id, question } => {
            let edit = Edit {
                question: Some(question.clone()),
                note: Some("question edited".into()),
                ..Edit::default()
            };
            let result = decide(id, Decision::Edit(edit)).map(|_| ()).map_err(text);
            Written::QuestionSaved {
                id,
                question,
                result,
            }
        }
        Write::BulkAccept(ids) => {
            let mut accepted = 0;
            let mut failed = Vec::new();
            for id in ids {
                match decide(id, Decision::accept(Some("bulk"))) {
                    Ok(_) => accepted += 1,
                    Err(e) => failed.push((id, e.to_string())),
                }
            }
            Written::BulkAccepted { accepted, failed }
        }
    }
}
