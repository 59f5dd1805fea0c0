//! Training signals beyond supervised fine-tuning: RL tasks (a prompt and the reference a
//! reward function scores a reply against) and preference pairs (a chosen and a rejected SQL
//! for one prompt) from lode's own signals.
//!
//! Every prompt is the one `lode eval` asks with ([`crate::sqlprompt::question_request`]'s
//! system and user messages), so a policy trained on these tasks is evaluated the way it
//! was trained.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use crate::llm::Message;
use crate::pipeline::validate::fingerprint;
use crate::project::Project;
use crate::project::inputs::normalize_question;
use crate::sqlprompt::{question_prompt, system_prompt};
use crate::store::{Pair, PairFilter, PairStatus, ReviewAction, Store, StoreError};

/// How a reward compares a prediction with the gold: lode's executor and comparator (what
/// `lode eval` and `lode reward` use).
pub const COMPARISON: &str = "lode";

/// The RL task file shapes.
pub const TASK_FLAVOURS: [&str; 3] = ["trl", "verl", "openai"];

/// The preference file shapes.
pub const PREFERENCE_FLAVOURS: [&str; 2] = ["openai", "trl"];

/// Why RL tasks or preference pairs could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the database {path} to identify its contents: {message}")]
    Snapshot { path: String, message: String },
    #[error("unknown flavour `{given}` for {format}; use {}", .expected.join(", "))]
    Flavour {
        given: String,
        format: &'static str,
        expected: &'static [&'static str],
    },
}

/// The shape of an RL task file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFlavour {
    /// TRL (GRPOTrainer): `prompt` as chat messages, the reference as extra columns (TRL
    /// hands extra dataset columns to reward functions as keyword arguments).
    Trl,
    /// verl's RL dataset schema (`data_source`, `prompt`, `ability`, `reward_model`,
    /// `extra_info`); verl reads parquet, converted from this JSONL.
    Verl,
    /// OpenAI reinforcement fine-tuning: `messages` plus the reference at the top level,
    /// where graders read it as `item.*`.
    OpenAi,
}

impl TaskFlavour {
    pub fn parse(s: &str) -> Result<TaskFlavour, RlError> {
        match s {
            "trl" => Ok(TaskFlavour::Trl),
            "verl" => Ok(TaskFlavour::Verl),
            "openai" => Ok(TaskFlavour::OpenAi),
            _ => Err(RlError::Flavour {
                given: s.to_string(),
                format: "rl-tasks",
                expected: &TASK_FLAVOURS,
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskFlavour::Trl => "trl",
            TaskFlavour::Verl => "verl",
            TaskFlavour::OpenAi => "openai",
        }
    }
}

/// The shape of a preference file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferenceFlavour {
    /// OpenAI preference fine-tuning (DPO): `input.messages`, `preferred_output`,
    /// `non_preferred_output`.
    OpenAi,
    /// TRL's conversational preference format: `prompt`, `chosen`, `rejected` as messages.
    Trl,
}

impl PreferenceFlavour {
    pub fn parse(s: &str) -> Result<PreferenceFlavour, RlError> {
        match s {
            "openai" => Ok(PreferenceFlavour::OpenAi),
            "trl" => Ok(PreferenceFlavour::Trl),
            _ => Err(RlError::Flavour {
                given: s.to_string(),
                format: "dpo",
                expected: &PREFERENCE_FLAVOURS,
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PreferenceFlavour::OpenAi => "openai",
            PreferenceFlavour::Trl => "trl",
        }
    }
}

/// The prompt `lode eval` asks a question with: the system and the user message.
pub fn prompt_messages(project: &Project, question: &str) -> Vec<Message> {
    vec![
        Message::system(system_prompt(&project.schema)),
        Message::user(question_prompt(
            &project.schema,
            &project.glossary,
            question,
        )),
    ]
}

/// One RL task: a question's prompt and what a reward compares a reply with.
#[derive(Debug, Clone, PartialEq)]
pub struct RlTask {
    pub pair_id: i64,
    /// `pair:<id>`: how `lode reward` finds the gold again.
    pub question_id: String,
    pub question: String,
    pub messages: Vec<Message>,
    /// The database file's stem.
    pub db_id: String,
    /// [`crate::sql::snapshot_id`] of the database file.
    pub db_snapshot: String,
    pub gold_sql: String,
    /// The fingerprint of the gold result ([`fingerprint`]); `None` when the gold does not
    /// run now.
    pub gold_fingerprint: Option<String>,
    /// The project's statement timeout (`execution.timeout_s`).
    pub timeout_s: f64,
}

/// The RL tasks of a project, with what was left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSet {
    pub tasks: Vec<RlTask>,
    /// Accepted pairs whose (normalized) question an earlier accepted pair already asks.
    pub repeats_skipped: usize,
    /// Tasks whose gold was run to fingerprint it (no stored fingerprint of this SQL).
    pub executed: usize,
    /// Pairs whose gold did not run now, with the error; their tasks have no fingerprint.
    pub gold_errors: Vec<(i64, String)>,
}

/// The database's id and snapshot (see [`RlTask::db_id`], [`RlTask::db_snapshot`]).
pub fn database_identity(project: &Project) -> Result<(String, String), RlError> {
    let path = project.db.path();
    let db_id = crate::pipeline::reward::db_id_of(path);
    let snapshot = project.db.content_key().map_err(|e| RlError::Snapshot {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((db_id, snapshot))
}

/// The SQL as the validator runs it.
fn runnable(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim()
}

/// The fingerprint of what `sql` returns now, or why it does not run.
fn run_fingerprint(project: &Project, sql: &str) -> Result<String, String> {
    project
        .db
        .query(runnable(sql))
        .map(|r| fingerprint(&r))
        .map_err(|e| e.to_string())
}

/// The pair's stored fingerprint when it belongs to its SQL as it is now: a successful
/// validation attempt ran exactly this SQL (a reviewer's edit changes the SQL without
/// storing a new fingerprint).
fn stored_fingerprint(store: &Store, pair: &Pair) -> Result<Option<String>, StoreError> {
    let Some(f) = pair.result_fingerprint.clone() else {
        return Ok(None);
    };
    let current = runnable(&pair.sql);
    let ran = store
        .validations(pair.id)?
        .iter()
        .any(|v| v.ok && runnable(&v.sql) == current);
    Ok(ran.then_some(f))
}

/// One task per accepted pair (of one run, or of all), oldest first; a pair repeating an
/// earlier one's normalized question is skipped. The gold fingerprint is the stored one
/// when it belongs to the pair's SQL, otherwise the gold is run now.
pub fn tasks(project: &Project, store: &Store, run_id: Option<i64>) -> Result<TaskSet, RlError> {
    let pairs = store.pairs(&PairFilter {
        run_id,
        statuses: vec![PairStatus::Accepted],
        ..Default::default()
    })?;
    let (db_id, db_snapshot) = database_identity(project)?;
    let timeout_s = project.config.execution.timeout_s;
    let mut set = TaskSet::default();
    let mut seen = BTreeSet::new();
    for pair in pairs {
        if runnable(&pair.sql).is_empty() {
            continue;
        }
        if !seen.insert(normalize_question(&pair.question)) {
            set.repeats_skipped += 1;
            continue;
        }
        let gold_fingerprint = match stored_fingerprint(store, &pair)? {
            Some(f) => Some(f),
            None => {
                set.executed += 1;
                match run_fingerprint(project, &pair.sql) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        set.gold_errors.push((pair.id, e));
                        None
                    }
                }
            }
        };
        set.tasks.push(RlTask {
            pair_id: pair.id,
            question_id: format!("pair:{}", pair.id),
            messages: prompt_messages(project, &pair.question),
            question: pair.question,
            db_id: db_id.clone(),
            db_snapshot: db_snapshot.clone(),
            gold_sql: pair.sql,
            gold_fingerprint,
            timeout_s,
        });
    }
    Ok(set)
}

/// One JSONL record of a task.
pub fn task_line(flavour: TaskFlavour, t: &RlTask) -> Json {
    match flavour {
        TaskFlavour::Trl => json!({
            "prompt": t.messages,
            "question_id": t.question_id,
            "db_id": t.db_id,
            "db_snapshot": t.db_snapshot,
            "gold_sql": t.gold_sql,
            "gold_fingerprint": t.gold_fingerprint,
            "comparison": COMPARISON,
            "timeout_s": t.timeout_s,
        }),
        TaskFlavour::Verl => json!({
            "data_source": "lode",
            "prompt": t.messages,
            "ability": "text-to-sql",
            "reward_model": {"style": "rule", "ground_truth": t.gold_sql},
            "extra_info": {
                "question_id": t.question_id,
                "db_id": t.db_id,
                "db_snapshot": t.db_snapshot,
                "gold_fingerprint": t.gold_fingerprint,
                "comparison": COMPARISON,
                "timeout_s": t.timeout_s,
            },
        }),
        TaskFlavour::OpenAi => json!({
            "messages": t.messages,
            "question_id": t.question_id,
            "gold_sql": t.gold_sql,
            "db_id": t.db_id,
            "db_snapshot": t.db_snapshot,
            "gold_fingerprint": t.gold_fingerprint,
            "comparison": COMPARISON,
            "timeout_s": t.timeout_s,
        }),
    }
}

/// All task records, one per line.
pub fn render_tasks(flavour: TaskFlavour, tasks: &[RlTask]) -> String {
    lines(tasks.iter().map(|t| task_line(flavour, t)))
}

fn lines(records: impl Iterator<Item = Json>) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    out
}

/// Where a preference pair comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreferenceSource {
    /// A failed validation attempt of a pair that later validated (the SQL debugger's
    /// attempts): the pair's SQL over the failed one.
    Debugger,
    /// A reviewer's edit of a pair now accepted: the pair's SQL over the SQL before the edit.
    ReviewEdit,
    /// A rejected pair whose normalized question an accepted pair asks, with another result:
    /// the accepted SQL over the rejected one.
    RejectedVsAccepted,
}

impl PreferenceSource {
    pub const ALL: [PreferenceSource; 3] = [
        PreferenceSource::Debugger,
        PreferenceSource::ReviewEdit,
        PreferenceSource::RejectedVsAccepted,
    ];

    /// The name in the export's summary.
    pub fn label(self) -> &'static str {
        match self {
            PreferenceSource::Debugger => "debugger",
            PreferenceSource::ReviewEdit => "review edits",
            PreferenceSource::RejectedVsAccepted => "rejected vs accepted",
        }
    }
}

/// One preference pair: for a question, a chosen SQL over a rejected one.
#[derive(Debug, Clone, PartialEq)]
pub struct Preference {
    /// The pair the chosen SQL belongs to.
    pub pair_id: i64,
    /// The pair the rejected SQL belongs to (the same pair but for rejected-vs-accepted).
    pub rejected_pair_id: i64,
    pub question: String,
    pub chosen: String,
    pub rejected: String,
    pub source: PreferenceSource,
}

/// The preference pairs of a project, with counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreferenceSet {
    pub pairs: Vec<Preference>,
    /// How many came from each source (after deduplication).
    pub by_source: BTreeMap<PreferenceSource, usize>,
    /// Candidates left out as a repeat of an earlier (question, chosen, rejected).
    pub duplicates: usize,
    /// Rejected pairs left out because their SQL returns what the accepted SQL returns
    /// (rejected for something else than the SQL's answer).
    pub same_result: usize,
}

/// SQL compared as text, whitespace and a final `;` aside.
fn same_sql(a: &str, b: &str) -> bool {
    let norm = |s: &str| runnable(s).split_whitespace().collect::<Vec<_>>().join(" ");
    norm(a) == norm(b)
}

/// Preference pairs from the project's own signals (of one run, or of all), in the order
/// debugger, review edits, rejected vs accepted, each oldest pair first; identical
/// (question, chosen, rejected) kept once; no pair whose chosen and rejected SQL are the same.
pub fn preferences(
    project: &Project,
    store: &Store,
    run_id: Option<i64>,
) -> Result<PreferenceSet, RlError> {
    let pairs = store.pairs(&PairFilter {
        run_id,
        ..Default::default()
    })?;
    let mut candidates: Vec<Preference> = Vec::new();
    let keep = |p: &Pair| !runnable(&p.sql).is_empty();

    // (a) The debugger: failed attempts before a successful one, of pairs that stand.
    for p in pairs.iter().filter(|p| {
        keep(p)
            && matches!(
                p.status,
                PairStatus::Valid | PairStatus::Fixed | PairStatus::Accepted
            )
    }) {
        let attempts = store.validations(p.id)?;
        let Some(last_ok) = attempts.iter().filter(|v| v.ok).map(|v| v.attempt).max() else {
            continue;
        };
        for v in attempts
            .iter()
            .filter(|v| !v.ok && v.attempt < last_ok && !runnable(&v.sql).is_empty())
        {
            candidates.push(Preference {
                pair_id: p.id,
                rejected_pair_id: p.id,
                question: p.question.clone(),
                chosen: p.sql.clone(),
                rejected: v.sql.clone(),
                source: PreferenceSource::Debugger,
            });
        }
    }

    // (b) Reviewers' edits of pairs now accepted: the SQL as accepted over each SQL an edit
    // replaced (the accepted SQL, not the edit's, so an edit later reverted gives no pair).
    for p in pairs
        .iter()
        .filter(|p| keep(p) && p.status == PairStatus::Accepted)
    {
        for r in store.review_history(p.id)? {
            if r.action != ReviewAction::Edit || r.undone || same_sql(&r.prev_sql, &r.new_sql) {
                continue;
            }
            if runnable(&r.prev_sql).is_empty() {
                continue;
            }
            candidates.push(Preference {
                pair_id: p.id,
                rejected_pair_id: p.id,
                question: p.question.clone(),
                chosen: p.sql.clone(),
                rejected: r.prev_sql.clone(),
                source: PreferenceSource::ReviewEdit,
            });
        }
    }

    // (c) Rejected pairs against the first accepted pair with the same normalized question,
    // when their results differ.
    let mut accepted: BTreeMap<String, &Pair> = BTreeMap::new();
    for p in pairs
        .iter()
        .filter(|p| keep(p) && p.status == PairStatus::Accepted)
    {
        accepted.entry(normalize_question(&p.question)).or_insert(p);
    }
    let mut same_result = 0;
    let mut results: BTreeMap<i64, Option<String>> = BTreeMap::new();
    let mut result_of = |p: &Pair| -> Option<String> {
        results
            .entry(p.id)
            .or_insert_with(|| run_fingerprint(project, &p.sql).ok())
            .clone()
    };
    for r in pairs
        .iter()
        .filter(|p| keep(p) && p.status == PairStatus::Rejected)
    {
        let Some(a) = accepted.get(&normalize_question(&r.question)) else {
            continue;
        };
        if same_sql(&a.sql, &r.sql) {
            continue;
        }
        let (ra, rr) = (result_of(a), result_of(r));
        if ra.is_some() && ra == rr {
            same_result += 1;
            continue;
        }
        candidates.push(Preference {
            pair_id: a.id,
            rejected_pair_id: r.id,
            question: a.question.clone(),
            chosen: a.sql.clone(),
            rejected: r.sql.clone(),
            source: PreferenceSource::RejectedVsAccepted,
        });
    }

    let mut set = PreferenceSet {
        same_result,
        ..Default::default()
    };
    let mut seen = BTreeSet::new();
    for c in candidates {
        if same_sql(&c.chosen, &c.rejected) {
            continue;
        }
        if !seen.insert((c.question.clone(), c.chosen.clone(), c.rejected.clone())) {
            set.duplicates += 1;
            continue;
        }
        *set.by_source.entry(c.source).or_default() += 1;
        set.pairs.push(c);
    }
    Ok(set)
}

/// The per-source counts in words: `debugger 3, review edits 2, rejected vs accepted 1`.
pub fn source_summary(set: &PreferenceSet) -> String {
    PreferenceSource::ALL
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.label(),
                set.by_source.get(s).copied().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One JSONL record of a preference pair.
pub fn preference_line(flavour: PreferenceFlavour, project: &Project, p: &Preference) -> Json {
    let prompt = prompt_messages(project, &p.question);
    let chosen = [Message::assistant(p.chosen.clone())];
    let rejected = [Message::assistant(p.rejected.clone())];
    match flavour {
        PreferenceFlavour::OpenAi => json!({
            "input": {"messages": prompt},
            "preferred_output": chosen,
            "non_preferred_output": rejected,
        }),
        PreferenceFlavour::Trl => json!({
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
        }),
    }
}

/// All preference records, one per line.
pub fn render_preferences(
    flavour: PreferenceFlavour,
    project: &Project,
    prefs: &[Preference],
) -> String {
    lines(prefs.iter().map(|p| preference_line(flavour, project, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavours_parse_and_name_themselves() {
        for f in TASK_FLAVOURS {
            assert_eq!(TaskFlavour::parse(f).unwrap().as_str(), f);
        }
        for f in PREFERENCE_FLAVOURS {
            assert_eq!(PreferenceFlavour::parse(f).unwrap().as_str(), f);
        }
        let e = TaskFlavour::parse("axolotl").unwrap_err().to_string();
        assert!(e.contains("trl, verl, openai"), "{e}");
        let e = PreferenceFlavour::parse("verl").unwrap_err().to_string();
        assert!(e.contains("for dpo"), "{e}");
    }

    #[test]
    fn sql_compares_without_whitespace_or_final_semicolon() {
        assert!(same_sql("SELECT  1;", " SELECT 1"));
        assert!(same_sql("SELECT\n a FROM t", "SELECT a FROM t;"));
        assert!(!same_sql("SELECT a FROM t", "SELECT b FROM t"));
    }

    fn task() -> RlTask {
        RlTask {
            pair_id: 7,
            question_id: "pair:7".into(),
            question: "How many?".into(),
            messages: vec![
                Message::system(crate::sqlprompt::SYSTEM),
                Message::user("Q"),
            ],
            db_id: "bakery".into(),
            db_snapshot: "0123456789abcdef".into(),
            gold_sql: "SELECT 1".into(),
            gold_fingerprint: Some("abc".into()),
            timeout_s: 10.0,
        }
    }

    #[test]
    fn task_records_carry_the_reference_where_each_trainer_reads_it() {
        let t = task();
        let trl = task_line(TaskFlavour::Trl, &t);
        assert_eq!(trl["prompt"][0]["role"], "system");
        assert_eq!(trl["prompt"][1]["content"], "Q");
        assert_eq!(trl["question_id"], "pair:7");
        assert_eq!(trl["gold_fingerprint"], "abc");
        assert_eq!(trl["comparison"], "lode");
        let verl = task_line(TaskFlavour::Verl, &t);
        assert_eq!(verl["data_source"], "lode");
        assert_eq!(verl["ability"], "text-to-sql");
        assert_eq!(verl["reward_model"]["style"], "rule");
        assert_eq!(verl["reward_model"]["ground_truth"], "SELECT 1");
        assert_eq!(verl["extra_info"]["db_snapshot"], "0123456789abcdef");
        assert_eq!(verl["extra_info"]["timeout_s"], 10.0);
        let openai = task_line(TaskFlavour::OpenAi, &t);
        assert_eq!(openai["messages"].as_array().unwrap().len(), 2);
        assert_eq!(openai["gold_sql"], "SELECT 1");
        assert_eq!(openai["db_id"], "bakery");
        let text = render_tasks(TaskFlavour::Trl, &[t.clone(), t]);
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn the_summary_names_every_source() {
        let mut set = PreferenceSet::default();
        set.by_source.insert(PreferenceSource::ReviewEdit, 2);
        assert_eq!(
            source_summary(&set),
            "debugger 0, review edits 2, rejected vs accepted 0"
        );
    }
}
