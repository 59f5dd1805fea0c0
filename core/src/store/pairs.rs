//! Runs, pairs with their provenance, validation attempts, and review decisions with history.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{
    PairStatus, Result, ReviewAction, Reviewer, RunKind, RunStatus, Store, StoreError, now_rfc3339,
};

/// A run to create.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub kind: RunKind,
    pub snapshot_id: Option<i64>,
    pub profile: String,
    pub config_json: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    pub kind: RunKind,
    pub status: RunStatus,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub snapshot_id: Option<i64>,
    pub profile: String,
    pub config_json: String,
    pub summary_json: Option<String>,
    pub error: Option<String>,
}

/// A pair to insert.
#[derive(Debug, Clone, Default)]
pub struct NewPair {
    /// The deterministic identity of the step that made it (resumed runs skip known keys).
    pub origin_key: String,
    pub generator: String,
    pub parent_gold_id: Option<i64>,
    pub parent_pair_id: Option<i64>,
    pub question: String,
    pub sql: String,
    pub status: Option<PairStatus>,
    pub notes: PairNotes,
    pub template: Option<String>,
    pub result_fingerprint: Option<String>,
    /// `None` when the SQL could not be analyzed (no SQL, a parse error).
    pub analysis: Option<PairAnalysis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub id: i64,
    pub run_id: i64,
    pub origin_key: String,
    pub generator: String,
    pub parent_gold_id: Option<i64>,
    pub parent_pair_id: Option<i64>,
    pub question: String,
    pub sql: String,
    pub status: PairStatus,
    pub created_at: String,
    pub updated_at: String,
    pub template: Option<String>,
    pub result_fingerprint: Option<String>,
    pub analysis: Option<PairAnalysis>,
    pub notes: PairNotes,
}

/// What the SQL analysis found in a pair's query; its concepts and tables are indexed, so the
/// queue filters `concept:` and `table:` are queries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairAnalysis {
    /// Concept names with how often each occurs, in the analyzer's order.
    pub concepts: Vec<(String, u32)>,
    /// Tables the query reads, in the analyzer's order.
    pub tables: Vec<String>,
    /// The hardness name (`easy` .. `extra`).
    pub hardness: String,
    /// The level name (`simple` .. `highly_complex`), where it was recorded.
    pub level: Option<String>,
}

/// What generation noted about a pair beside its validation attempts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairNotes {
    /// Why the schema-to-SQL step gave no SQL.
    pub llm_error: Option<String>,
    /// The last attempt failed with an empty, all-NULL or zero-count result.
    pub empty_result: bool,
    /// Each LLM validator's answer (or its error), by validator name; free-form JSON.
    pub validators: Vec<(String, Json)>,
    /// An imported pair's validation in the original tool's shape; free-form JSON.
    pub original_validation: Option<Json>,
    /// What a duplicate or leaking pair repeats: `{"pair": id, "question": …}`,
    /// `{"gold": position, "question": …}` or `{"eval": position, "question": …}`.
    pub duplicate_of: Option<Json>,
    /// Why the question and the SQL disagree (the agreement check's reasons, an LLM
    /// validator's explanation); a pair with any is `suspect`. Absent from older notes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disagreement: Vec<String>,
}

impl PairNotes {
    pub fn is_empty(&self) -> bool {
        *self == PairNotes::default()
    }

    /// The notes as `(label, text)`, in the order they were made, for display.
    pub fn lines(&self) -> Vec<(String, String)> {
        let text = |v: &Json| match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut out = Vec::new();
        if let Some(e) = &self.llm_error {
            out.push(("llm_error".to_string(), e.clone()));
        }
        if self.empty_result {
            out.push(("empty".to_string(), "true".to_string()));
        }
        for (name, v) in &self.validators {
            out.push((format!("validator:{name}"), text(v)));
        }
        if let Some(v) = &self.original_validation {
            out.push(("original_validation".to_string(), text(v)));
        }
        if let Some(d) = self.duplicate_text() {
            out.push(("repeats".to_string(), d));
        }
        for reason in &self.disagreement {
            out.push(("disagrees".to_string(), reason.clone()));
        }
        out
    }

    /// What a duplicate repeats, in words: `duplicate of pair #12: How many …`.
    pub fn duplicate_text(&self) -> Option<String> {
        let d = self.duplicate_of.as_ref()?;
        let q = d["question"].as_str().unwrap_or("");
        if let Some(id) = d["pair"].as_i64() {
            Some(format!("duplicate of pair #{id}: {q}"))
        } else if let Some(n) = d["gold"].as_i64() {
            Some(format!("same as gold pair {n}: {q}"))
        } else {
            d["eval"]
                .as_i64()
                .map(|n| format!("leaks eval question {n}: {q}"))
        }
    }

    /// The pair a duplicate repeats, to jump to.
    pub fn duplicate_pair(&self) -> Option<i64> {
        self.duplicate_of.as_ref()?["pair"].as_i64()
    }

    /// The free-form part as stored in `pairs.notes_json` (an object keyed `validator:NAME`,
    /// `original_validation`, `duplicate_of` and `disagreement`); `None` when there is none.
    fn free_form_json(&self) -> Option<String> {
        let mut m = serde_json::Map::new();
        for (name, v) in &self.validators {
            m.insert(format!("validator:{name}"), v.clone());
        }
        if let Some(v) = &self.original_validation {
            m.insert("original_validation".into(), v.clone());
        }
        if let Some(v) = &self.duplicate_of {
            m.insert("duplicate_of".into(), v.clone());
        }
        if !self.disagreement.is_empty() {
            m.insert("disagreement".into(), serde_json::json!(self.disagreement));
        }
        (!m.is_empty()).then(|| Json::Object(m).to_string())
    }

    fn from_columns(
        llm_error: Option<String>,
        empty_result: bool,
        notes_json: Option<String>,
    ) -> rusqlite::Result<PairNotes> {
        let mut notes = PairNotes {
            llm_error,
            empty_result,
            ..PairNotes::default()
        };
        let Some(text) = notes_json else {
            return Ok(notes);
        };
        let Json::Object(m) = json_column(&text)? else {
            return Err(bad_column("pairs.notes_json is not a JSON object"));
        };
        for (k, v) in m {
            match k.strip_prefix("validator:") {
                Some(name) => notes.validators.push((name.to_string(), v)),
                None if k == "original_validation" => notes.original_validation = Some(v),
                None if k == "duplicate_of" => notes.duplicate_of = Some(v),
                None if k == "disagreement" => {
                    notes.disagreement = serde_json::from_value(v)
                        .map_err(|e| bad_column(&format!("pairs.notes_json disagreement: {e}")))?;
                }
                None => {
                    return Err(bad_column(&format!(
                        "unknown note `{k}` in pairs.notes_json"
                    )));
                }
            }
        }
        Ok(notes)
    }
}

fn bad_column(message: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(StoreError::Invalid(message.to_string())),
    )
}

fn json_column<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The few fields of a pair a list shows (cheap to load by the hundred thousand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSummary {
    pub id: i64,
    pub status: PairStatus,
    pub generator: String,
    pub question: String,
}

/// The TUI queue's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueSort {
    #[default]
    Id,
    Status,
    Generator,
    Question,
    Newest,
}

impl QueueSort {
    pub const ALL: [QueueSort; 5] = [
        QueueSort::Id,
        QueueSort::Status,
        QueueSort::Generator,
        QueueSort::Question,
        QueueSort::Newest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueSort::Id => "id",
            QueueSort::Status => "status",
            QueueSort::Generator => "generator",
            QueueSort::Question => "question",
            QueueSort::Newest => "recently changed",
        }
    }
}

/// What the TUI queue shows: a run's pairs by status, generator, concept, table and words
/// (every word must occur in the question or the SQL).
#[derive(Debug, Clone, Default)]
pub struct QueueQuery {
    pub run_id: Option<i64>,
    pub statuses: Vec<PairStatus>,
    pub generator: Option<String>,
    pub concept: Option<String>,
    pub table: Option<String>,
    pub text: Vec<String>,
    pub sort: QueueSort,
}

/// Which pairs to list.
#[derive(Debug, Clone, Default)]
pub struct PairFilter {
    pub run_id: Option<i64>,
    pub statuses: Vec<PairStatus>,
    pub generator: Option<String>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// One validation attempt to record.
#[derive(Debug, Clone, Default)]
pub struct NewValidation {
    pub pair_id: i64,
    pub attempt: i64,
    pub sql: String,
    pub ok: bool,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub row_count: Option<i64>,
    pub elapsed_ms: Option<f64>,
    pub flags_json: Option<String>,
    pub result_preview_json: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationAttempt {
    pub id: i64,
    pub pair_id: i64,
    pub attempt: i64,
    pub sql: String,
    pub ok: bool,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub row_count: Option<i64>,
    pub elapsed_ms: Option<f64>,
    pub flags_json: Option<String>,
    pub result_preview_json: Option<String>,
    pub created_at: String,
}

/// One review decision, with what it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: i64,
    pub pair_id: i64,
    pub action: ReviewAction,
    pub prev_status: PairStatus,
    pub new_status: PairStatus,
    pub prev_question: String,
    pub prev_sql: String,
    pub new_question: String,
    pub new_sql: String,
    pub note: Option<String>,
    pub created_at: String,
    pub undone: bool,
    /// Who decided (`cli`, `tui`, `mcp`); `None` for decisions recorded before the store
    /// kept it (version 7).
    pub reviewer: Option<Reviewer>,
}

const RUN_COLUMNS: &str = "id, kind, status, created_at, finished_at, snapshot_id, profile, \
                           config_json, summary_json, error";

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        kind: r.get(1)?,
        status: r.get(2)?,
        created_at: r.get(3)?,
        finished_at: r.get(4)?,
        snapshot_id: r.get(5)?,
        profile: r.get(6)?,
        config_json: r.get(7)?,
        summary_json: r.get(8)?,
        error: r.get(9)?,
    })
}

/// A pair's columns; its concepts and tables come along as JSON arrays built by SQLite (in
/// insertion order), read only here.
const PAIR_COLUMNS: &str = "id, run_id, origin_key, generator, parent_gold_id, parent_pair_id, \
    question, sql, status, created_at, updated_at, template, result_fingerprint, hardness, level, \
    (SELECT json_group_array(json_array(concept, uses) ORDER BY rowid) FROM pair_concepts \
     WHERE pair_id = pairs.id), \
    (SELECT json_group_array(table_name ORDER BY rowid) FROM pair_tables \
     WHERE pair_id = pairs.id), \
    llm_error, empty_result, notes_json";

fn pair_from_row(r: &Row<'_>) -> rusqlite::Result<Pair> {
    let hardness: Option<String> = r.get(13)?;
    let analysis = match hardness {
        Some(hardness) => Some(PairAnalysis {
            concepts: json_column(&r.get::<_, String>(15)?)?,
            tables: json_column(&r.get::<_, String>(16)?)?,
            hardness,
            level: r.get(14)?,
        }),
        None => None,
    };
    Ok(Pair {
        id: r.get(0)?,
        run_id: r.get(1)?,
        origin_key: r.get(2)?,
        generator: r.get(3)?,
        parent_gold_id: r.get(4)?,
        parent_pair_id: r.get(5)?,
        question: r.get(6)?,
        sql: r.get(7)?,
        status: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        template: r.get(11)?,
        result_fingerprint: r.get(12)?,
        analysis,
        notes: PairNotes::from_columns(r.get(17)?, r.get(18)?, r.get(19)?)?,
    })
}

/// Inserts a pair (nothing when its run and origin key exist); returns its id and whether it
/// is new. Its analysis and notes go in with it.
fn insert_pair(tx: &Transaction<'_>, run_id: i64, p: &NewPair, now: &str) -> Result<(i64, bool)> {
    let n = tx
        .prepare_cached(
            "INSERT INTO pairs (run_id, origin_key, generator, parent_gold_id, parent_pair_id,
                question, sql, status, created_at, updated_at, template, result_fingerprint,
                hardness, level, llm_error, empty_result, notes_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (run_id, origin_key) DO NOTHING",
        )?
        .execute(params![
            run_id,
            p.origin_key,
            p.generator,
            p.parent_gold_id,
            p.parent_pair_id,
            p.question,
            p.sql,
            p.status.unwrap_or(PairStatus::Pending),
            now,
            p.template,
            p.result_fingerprint,
            p.analysis.as_ref().map(|a| &a.hardness),
            p.analysis.as_ref().and_then(|a| a.level.as_ref()),
            p.notes.llm_error,
            p.notes.empty_result,
            p.notes.free_form_json(),
        ])?;
    if n == 0 {
        let id = tx
            .prepare_cached("SELECT id FROM pairs WHERE run_id = ?1 AND origin_key = ?2")?
            .query_row(params![run_id, p.origin_key], |r| r.get(0))?;
        return Ok((id, false));
    }
    let id = tx.last_insert_rowid();
    if let Some(a) = &p.analysis {
        let mut concept = tx.prepare_cached(
            "INSERT OR IGNORE INTO pair_concepts (pair_id, concept, uses) VALUES (?1, ?2, ?3)",
        )?;
        for (name, uses) in &a.concepts {
            concept.execute(params![id, name, uses])?;
        }
        let mut table = tx.prepare_cached(
            "INSERT OR IGNORE INTO pair_tables (pair_id, table_name) VALUES (?1, ?2)",
        )?;
        for t in &a.tables {
            table.execute(params![id, t])?;
        }
    }
    Ok((id, true))
}

/// Inserts a run, running; returns its id.
pub(super) fn insert_run(conn: &Connection, run: &NewRun) -> Result<i64> {
    conn.execute(
        "INSERT INTO runs (kind, status, created_at, snapshot_id, profile, config_json)
         VALUES (?1, 'running', ?2, ?3, ?4, ?5)",
        params![
            run.kind,
            now_rfc3339(),
            run.snapshot_id,
            run.profile,
            if run.config_json.is_empty() {
                "{}"
            } else {
                &run.config_json
            }
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Running runs without a live lease, oldest first.
fn orphaned_runs(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare(
        "SELECT r.id, l.run_id, l.owner, l.pid, l.host, l.acquired_at, l.heartbeat_ms
         FROM runs r LEFT JOIN run_leases l ON l.run_id = r.id
         WHERE r.status = 'running' ORDER BY r.id",
    )?;
    let now = super::unix_ms();
    let rows = stmt.query_map([], |r| {
        let lease = match r.get::<_, Option<i64>>(1)? {
            Some(run_id) => Some(super::RunLease {
                run_id,
                owner: r.get(2)?,
                pid: r.get(3)?,
                host: r.get(4)?,
                acquired_at: r.get(5)?,
                heartbeat_ms: r.get(6)?,
            }),
            None => None,
        };
        Ok((r.get::<_, i64>(0)?, lease))
    })?;
    let mut ids = Vec::new();
    for row in rows {
        let (id, lease) = row?;
        if !lease.is_some_and(|l| l.is_live(now)) {
            ids.push(id);
        }
    }
    Ok(ids)
}

const REVIEW_COLUMNS: &str = "id, pair_id, action, prev_status, new_status, prev_question, \
                              prev_sql, new_question, new_sql, note, created_at, undone, reviewer";

fn review_from_row(r: &Row<'_>) -> rusqlite::Result<Review> {
    Ok(Review {
        id: r.get(0)?,
        pair_id: r.get(1)?,
        action: r.get(2)?,
        prev_status: r.get(3)?,
        new_status: r.get(4)?,
        prev_question: r.get(5)?,
        prev_sql: r.get(6)?,
        new_question: r.get(7)?,
        new_sql: r.get(8)?,
        note: r.get(9)?,
        created_at: r.get(10)?,
        undone: r.get(11)?,
        reviewer: r.get(12)?,
    })
}

impl Store {
    // --- runs -----------------------------------------------------------------------------

    /// Creates a run, running, with no lease (see [`Store::create_leased_run`] for a run
    /// other processes must not resume while this one writes it).
    pub fn create_run(&self, run: &NewRun) -> Result<i64> {
        insert_run(&self.lock(), run)
    }

    /// Marks a run finished (completed, failed, cancelled) with its summary or error.
    pub fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        summary_json: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, summary_json = coalesce(?4, summary_json),
             error = ?5 WHERE id = ?1",
            params![id, status.as_str(), now_rfc3339(), summary_json, error],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "run", id });
        }
        Ok(())
    }

    /// Sets a run back to running (a resumed run).
    pub fn resume_run(&self, id: i64) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL WHERE id = ?1",
            [id],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "run", id });
        }
        Ok(())
    }

    pub fn run(&self, id: i64) -> Result<Run> {
        self.lock()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                run_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound { what: "run", id })
    }

    /// All runs, newest first.
    pub fn runs(&self) -> Result<Vec<Run>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC"))?;
        let rows = stmt.query_map([], run_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest run of a kind.
    pub fn latest_run(&self, kind: RunKind) -> Result<Option<Run>> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE kind = ?1 ORDER BY id DESC LIMIT 1"),
                [kind],
                run_from_row,
            )
            .optional()?)
    }

    /// After a crash: runs still marked running that no live process holds (no lease, or a
    /// stale one, which goes) become interrupted. Returns their ids. A run another process is
    /// writing stays running; when there is nothing to mark, nothing is written.
    pub fn mark_interrupted_runs(&self) -> Result<Vec<i64>> {
        let mut conn = self.lock();
        if orphaned_runs(&conn)?.is_empty() {
            return Ok(Vec::new());
        }
        let tx = conn.transaction()?;
        let ids = orphaned_runs(&tx)?;
        for id in &ids {
            tx.execute("DELETE FROM run_leases WHERE run_id = ?1", [id])?;
            tx.execute(
                "UPDATE runs SET status = 'interrupted' WHERE id = ?1 AND status = 'running'",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    // --- pairs ----------------------------------------------------------------------------

    /// Inserts pairs in one transaction. A pair whose (run, origin_key) exists is not
    /// inserted again; the existing id is returned in its place, in input order.
    pub fn insert_pairs(&self, run_id: i64, pairs: &[NewPair]) -> Result<Vec<i64>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let now = now_rfc3339();
        let mut ids = Vec::with_capacity(pairs.len());
        for p in pairs {
            ids.push(insert_pair(&tx, run_id, p, &now)?.0);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Inserts one finished pair and its validation attempts in one transaction, so a pair is
    /// never stored without its history. Returns the id and whether it was new (a resumed run
    /// may meet a pair it already stored).
    pub fn insert_pair_with_validations(
        &self,
        run_id: i64,
        pair: &NewPair,
        validations: &[NewValidation],
    ) -> Result<(i64, bool)> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let now = now_rfc3339();
        let (id, new) = insert_pair(&tx, run_id, pair, &now)?;
        if !new {
            return Ok((id, false));
        }
        for v in validations {
            tx.execute(
                "INSERT INTO validations (pair_id, attempt, sql, ok, error_kind, error, row_count,
                                          elapsed_ms, flags_json, result_preview_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    v.attempt,
                    v.sql,
                    v.ok,
                    v.error_kind,
                    v.error,
                    v.row_count,
                    v.elapsed_ms,
                    v.flags_json,
                    v.result_preview_json,
                    now
                ],
            )?;
        }
        tx.commit()?;
        Ok((id, true))
    }

    /// The origin keys already stored for a run, of pairs and of failed calls (a resumed run
    /// skips them; a generator call's failure has its own key, `…:call`, that no step looks
    /// for, so that call is retried, while a failed sql-first call keeps its step's key).
    pub fn origins(&self, run_id: i64) -> Result<std::collections::BTreeSet<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT origin_key FROM pairs WHERE run_id = ?1
             UNION SELECT origin_key FROM generation_failures WHERE run_id = ?1",
        )?;
        let rows = stmt.query_map([run_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The queue of the TUI: id, status, generator and question of the pairs matching
    /// `q`, in its order, in one query (the SQL and concepts are read only to filter).
    pub fn pair_summaries(&self, q: &QueueQuery) -> Result<Vec<PairSummary>> {
        let mut sql = String::from("SELECT id, status, generator, question FROM pairs WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(r) = q.run_id {
            sql.push_str(" AND run_id = ?");
            args.push(r.into());
        }
        if !q.statuses.is_empty() {
            sql.push_str(&format!(
                " AND status IN ({})",
                vec!["?"; q.statuses.len()].join(", ")
            ));
            args.extend(q.statuses.iter().map(|s| s.as_str().to_string().into()));
        }
        if let Some(g) = &q.generator {
            sql.push_str(" AND generator = ?");
            args.push(g.clone().into());
        }
        if let Some(c) = &q.concept {
            sql.push_str(" AND id IN (SELECT pair_id FROM pair_concepts WHERE concept = lower(?))");
            args.push(c.clone().into());
        }
        if let Some(t) = &q.table {
            // table_name compares without case (COLLATE NOCASE), through its index.
            sql.push_str(" AND id IN (SELECT pair_id FROM pair_tables WHERE table_name = ?)");
            args.push(t.clone().into());
        }
        for word in &q.text {
            // LIKE matches without case (ASCII, as lower() does) and without building a
            // lowered copy of every question and query: several times faster at 100k pairs.
            sql.push_str(" AND (question LIKE ? ESCAPE '\\' OR sql LIKE ? ESCAPE '\\')");
            let escaped = word
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            args.push(pattern.clone().into());
            args.push(pattern.into());
        }
        sql.push_str(match q.sort {
            QueueSort::Id => " ORDER BY id",
            QueueSort::Status => " ORDER BY status, id",
            QueueSort::Generator => " ORDER BY generator, id",
            QueueSort::Question => " ORDER BY question COLLATE NOCASE, id",
            QueueSort::Newest => " ORDER BY updated_at DESC, id DESC",
        });
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok(PairSummary {
                id: r.get(0)?,
                status: r.get(1)?,
                generator: r.get(2)?,
                question: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A stored gold pair by id.
    pub fn gold_pair(&self, id: i64) -> Result<Option<(String, String)>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT question, sql FROM gold_pairs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn has_origin(&self, run_id: i64, origin_key: &str) -> Result<bool> {
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM pairs WHERE run_id = ?1 AND origin_key = ?2",
                params![run_id, origin_key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn pair(&self, id: i64) -> Result<Pair> {
        self.lock()
            .query_row(
                &format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE id = ?1"),
                [id],
                pair_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound { what: "pair", id })
    }

    /// Pairs matching the filter, oldest first.
    pub fn pairs(&self, filter: &PairFilter) -> Result<Vec<Pair>> {
        let mut sql = format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(run) = filter.run_id {
            sql.push_str(" AND run_id = ?");
            args.push(run.into());
        }
        if !filter.statuses.is_empty() {
            sql.push_str(" AND status IN (");
            sql.push_str(&vec!["?"; filter.statuses.len()].join(", "));
            sql.push(')');
            args.extend(
                filter
                    .statuses
                    .iter()
                    .map(|s| s.as_str().to_string().into()),
            );
        }
        if let Some(g) = &filter.generator {
            sql.push_str(" AND generator = ?");
            args.push(g.clone().into());
        }
        sql.push_str(" ORDER BY id LIMIT ? OFFSET ?");
        args.push(filter.limit.map_or(-1, |l| l as i64).into());
        args.push((filter.offset as i64).into());
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), pair_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// status → count, for one run or all.
    pub fn count_pairs_by_status(&self, run_id: Option<i64>) -> Result<BTreeMap<String, u64>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT status, count(*) FROM pairs WHERE ?1 IS NULL OR run_id = ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (status, n) = row?;
            out.insert(status, n as u64);
        }
        Ok(out)
    }

    /// Marks a pair duplicate or leakage and records what it repeats (see
    /// [`PairNotes::duplicate_of`]), in one statement.
    pub fn mark_repeat(&self, id: i64, status: PairStatus, of: &Json) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE pairs SET status = ?2, updated_at = ?3,
                 notes_json = json_set(coalesce(notes_json, '{}'), '$.duplicate_of', json(?4))
             WHERE id = ?1",
            params![id, status.as_str(), now_rfc3339(), of.to_string()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "pair", id });
        }
        Ok(())
    }

    pub fn set_pair_status(&self, id: i64, status: PairStatus) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE pairs SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, status.as_str(), now_rfc3339()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "pair", id });
        }
        Ok(())
    }

    // --- validations ----------------------------------------------------------------------

    pub fn validations(&self, pair_id: i64) -> Result<Vec<ValidationAttempt>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, pair_id, attempt, sql, ok, error_kind, error, row_count, elapsed_ms,
                    flags_json, result_preview_json, created_at
             FROM validations WHERE pair_id = ?1 ORDER BY attempt, id",
        )?;
        let rows = stmt.query_map([pair_id], |r| {
            Ok(ValidationAttempt {
                id: r.get(0)?,
                pair_id: r.get(1)?,
                attempt: r.get(2)?,
                sql: r.get(3)?,
                ok: r.get(4)?,
                error_kind: r.get(5)?,
                error: r.get(6)?,
                row_count: r.get(7)?,
                elapsed_ms: r.get(8)?,
                flags_json: r.get(9)?,
                result_preview_json: r.get(10)?,
                created_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // --- reviews --------------------------------------------------------------------------

    /// Records a review decision by `by` and applies it to the pair, in one transaction:
    /// accept and reject set the status; edit replaces the question and/or SQL and sets the
    /// status to `status_after_edit` (the caller re-validates); reset returns the pair to
    /// pending. The faces decide through [`crate::pipeline::review::decide`], which validates
    /// an edit first.
    #[allow(clippy::too_many_arguments)]
    pub fn review(
        &self,
        pair_id: i64,
        action: ReviewAction,
        new_question: Option<&str>,
        new_sql: Option<&str>,
        status_after_edit: Option<PairStatus>,
        note: Option<&str>,
        by: Reviewer,
    ) -> Result<Review> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let review = apply_review(
            &tx,
            pair_id,
            action,
            new_question,
            new_sql,
            status_after_edit,
            note,
            by,
        )?;
        tx.commit()?;
        Ok(review)
    }

    /// Saves an edit of a pair (whose new SQL the caller validated) and accepts it, in one
    /// transaction: either both decisions are stored or neither. The history holds the edit
    /// (status valid) and then the accept, so undo steps back through them one at a time.
    /// Returns the accept.
    pub fn edit_and_accept(
        &self,
        pair_id: i64,
        new_question: Option<&str>,
        new_sql: Option<&str>,
        accept_note: Option<&str>,
        by: Reviewer,
    ) -> Result<Review> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        apply_review(
            &tx,
            pair_id,
            ReviewAction::Edit,
            new_question,
            new_sql,
            Some(PairStatus::Valid),
            None,
            by,
        )?;
        let accept = apply_review(
            &tx,
            pair_id,
            ReviewAction::Accept,
            None,
            None,
            None,
            accept_note,
            by,
        )?;
        tx.commit()?;
        Ok(accept)
    }

    /// Undoes the latest decision on a pair that is not undone yet: restores its previous
    /// question, SQL and status, marks it undone and records the undo (by `by`). `None` when
    /// there is nothing to undo.
    pub fn undo_last_review(&self, pair_id: i64, by: Reviewer) -> Result<Option<Review>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let last = tx
            .query_row(
                &format!(
                    "SELECT {REVIEW_COLUMNS} FROM reviews
                     WHERE pair_id = ?1 AND undone = 0 AND action != 'undo'
                     ORDER BY id DESC LIMIT 1"
                ),
                [pair_id],
                review_from_row,
            )
            .optional()?;
        let Some(last) = last else {
            return Ok(None);
        };
        let (question, sql, status): (String, String, String) = tx.query_row(
            "SELECT question, sql, status FROM pairs WHERE id = ?1",
            [pair_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let now = now_rfc3339();
        tx.execute("UPDATE reviews SET undone = 1 WHERE id = ?1", [last.id])?;
        tx.execute(
            "INSERT INTO reviews (pair_id, action, prev_status, new_status, prev_question,
                                  prev_sql, new_question, new_sql, note, created_at, reviewer)
             VALUES (?1, 'undo', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                pair_id,
                status,
                last.prev_status.as_str(),
                question,
                sql,
                last.prev_question,
                last.prev_sql,
                format!("undo of review {}", last.id),
                now,
                by
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE pairs SET question = ?2, sql = ?3, status = ?4, updated_at = ?5 WHERE id = ?1",
            params![
                pair_id,
                last.prev_question,
                last.prev_sql,
                last.prev_status.as_str(),
                now
            ],
        )?;
        let undo = tx.query_row(
            &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ?1"),
            [id],
            review_from_row,
        )?;
        tx.commit()?;
        Ok(Some(undo))
    }

    /// Every decision on a pair, oldest first, undos included.
    pub fn review_history(&self, pair_id: i64) -> Result<Vec<Review>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {REVIEW_COLUMNS} FROM reviews WHERE pair_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([pair_id], review_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// One review decision inside the caller's transaction (see [`Store::review`]).
#[allow(clippy::too_many_arguments)]
fn apply_review(
    tx: &rusqlite::Transaction<'_>,
    pair_id: i64,
    action: ReviewAction,
    new_question: Option<&str>,
    new_sql: Option<&str>,
    status_after_edit: Option<PairStatus>,
    note: Option<&str>,
    by: Reviewer,
) -> Result<Review> {
    if action == ReviewAction::Undo {
        return Err(StoreError::Invalid(
            "use undo_last_review to undo a decision".into(),
        ));
    }
    let (question, sql, prev_status): (String, String, PairStatus) = tx
        .query_row(
            "SELECT question, sql, status FROM pairs WHERE id = ?1",
            [pair_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "pair",
            id: pair_id,
        })?;
    let (new_status, q, s) = match action {
        ReviewAction::Accept => (PairStatus::Accepted, question.clone(), sql.clone()),
        ReviewAction::Reject => (PairStatus::Rejected, question.clone(), sql.clone()),
        ReviewAction::Reset => (PairStatus::Pending, question.clone(), sql.clone()),
        ReviewAction::Edit => (
            status_after_edit.unwrap_or(PairStatus::Pending),
            new_question.unwrap_or(&question).to_string(),
            new_sql.unwrap_or(&sql).to_string(),
        ),
        ReviewAction::Undo => unreachable!("refused above"),
    };
    let now = now_rfc3339();
    tx.execute(
        "INSERT INTO reviews (pair_id, action, prev_status, new_status, prev_question,
                              prev_sql, new_question, new_sql, note, created_at, reviewer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            pair_id,
            action,
            prev_status,
            new_status,
            question,
            sql,
            q,
            s,
            note,
            now,
            by
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "UPDATE pairs SET question = ?2, sql = ?3, status = ?4, updated_at = ?5 WHERE id = ?1",
        params![pair_id, q, s, new_status, now],
    )?;
    Ok(tx.query_row(
        &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ?1"),
        [id],
        review_from_row,
    )?)
}
