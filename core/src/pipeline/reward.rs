//! The execution reward: a model's reply to a question scored against the gold query with the
//! evaluation's own executor and comparator (`evaluate_items_with`, profile `lode`), so
//! training on the reward and scoring with `lode eval` can never disagree. Used by
//! `lode reward --stdin` and by `lode reward serve`.
//!
//! An item names its gold by question id (`pair:ID` for a pair in the store, `gold:N` and
//! `eval:N` for the project's sets, 1-based) or gives the gold SQL and the database. Gold
//! results are remembered per (database content snapshot, gold text) across batches; a
//! database whose file changes gets a new snapshot id, so a stale result is never used.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::pipeline::eval::{EvalItem, EvalOptions, GoldMemo, ItemResult, evaluate_items_with};
use crate::pipeline::model_eval::Prediction;
use crate::sql::compare::{Profile, Reason, Side};
use crate::sql::{Database, ExecLimits, snapshot_id};

/// How a judgement becomes a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// 1 for a matching result, 0.1 for SQL that runs, 0 otherwise (Arctic-Text2SQL-R1).
    Arctic,
    /// 1 for a matching result, else 0.
    Binary,
    /// Partial credit: BIRD mini-dev's soft F1 of the result rows (1 for a match).
    SoftF1,
}

impl Shape {
    pub const NAMES: [&'static str; 3] = ["arctic", "binary", "soft_f1"];

    pub fn parse(name: &str) -> Option<Shape> {
        match name {
            "arctic" => Some(Shape::Arctic),
            "binary" => Some(Shape::Binary),
            "soft_f1" | "soft-f1" => Some(Shape::SoftF1),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Arctic => "arctic",
            Shape::Binary => "binary",
            Shape::SoftF1 => "soft_f1",
        }
    }
}

/// One prediction to score.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardItem {
    /// Echoed back unchanged.
    #[serde(default)]
    pub id: Json,
    /// `pair:ID`, `gold:N` or `eval:N`.
    #[serde(default)]
    pub question_id: Option<String>,
    /// The gold query, when no question id is given.
    #[serde(default)]
    pub gold_sql: Option<String>,
    /// The database id (with `--db-dir`: the folder name; in a project: its file stem).
    #[serde(default)]
    pub db: Option<String>,
    /// The model's reply as it came: the SQL is extracted as `lode eval` extracts it.
    pub prediction: String,
}

/// What the score is made of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Parts {
    /// SQL was found in the reply.
    pub extracted: bool,
    /// It ran (read-only, within the limits).
    pub executes: bool,
    /// Its result matches the gold's (the `lode` profile's verdict).
    pub matches: bool,
}

/// Why an item could not be scored (its score is 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemError {
    /// `unknown_question`, `unknown_database`, `no_gold`, `gold_error`.
    pub kind: &'static str,
    pub message: String,
}

/// The reward for one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub id: Json,
    pub score: f64,
    pub parts: Parts,
    /// The verdict's reason when it is not a match (`row_count`, `pred_error`, ...).
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// The SQL taken from the reply.
    pub sql: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

impl Score {
    fn failed(id: Json, sql: Option<String>, error: ItemError) -> Score {
        Score {
            id,
            score: 0.0,
            parts: Parts {
                extracted: sql.is_some(),
                ..Parts::default()
            },
            reason: None,
            detail: None,
            sql,
            error: Some(error),
        }
    }
}

/// Where golds and databases come from.
#[derive(Clone, Default)]
pub struct Sources {
    /// Databases by id (a project's database under its file stem).
    pub databases: BTreeMap<String, PathBuf>,
    /// Spider-style folder: `DIR/<db>/<db>.sqlite`, opened when first named.
    pub db_dir: Option<PathBuf>,
    /// The database an item without `db` uses (a project's own).
    pub default_db: Option<String>,
    /// Question id → (database id, gold SQL).
    pub questions: HashMap<String, (String, String)>,
    /// Databases already open, by id (a project's PostgreSQL database): used as they are,
    /// their content key read through them.
    pub opened: BTreeMap<String, Arc<Database>>,
}

/// Gold results kept before the memo is emptied, and the cells they may hold in all (a
/// bound on memory: gold SQL can come with a request, and a large result is kept).
const MEMO_LIMIT: usize = 20_000;
const MEMO_CELLS: usize = 4_000_000;

/// A database as the scorer holds it: opened once per content snapshot.
struct Held {
    snapshot: String,
    db: Arc<Database>,
}

/// Scores batches of predictions; holds databases and gold results across batches.
pub struct Scorer {
    sources: Sources,
    limits: ExecLimits,
    threads: usize,
    held: Mutex<HashMap<String, Held>>,
    exact: GoldMemo,
    soft: GoldMemo,
}

impl Scorer {
    pub fn new(sources: Sources, limits: ExecLimits, threads: usize) -> Scorer {
        Scorer {
            sources,
            limits,
            threads: threads.max(1),
            held: Mutex::new(HashMap::new()),
            exact: GoldMemo::default(),
            soft: GoldMemo::default(),
        }
    }

    pub fn limits(&self) -> ExecLimits {
        self.limits
    }

    /// The Spider-style folder databases are looked up in, if any.
    pub fn db_dir(&self) -> Option<&Path> {
        self.sources.db_dir.as_deref()
    }

    /// The database an item without `db` uses: a project's own; none with `--db-dir` alone.
    pub fn default_db(&self) -> Option<&str> {
        self.sources.default_db.as_deref()
    }

    /// Database ids known without a folder scan (a project's, those opened so far).
    pub fn database_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sources
            .databases
            .keys()
            .chain(self.sources.opened.keys())
            .cloned()
            .collect();
        ids.extend(
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .cloned(),
        );
        ids.sort();
        ids.dedup();
        ids
    }

    /// Gold results remembered now.
    pub fn cached_golds(&self) -> usize {
        self.exact.len() + self.soft.len()
    }

    /// The file of database `id`, if there is one.
    fn path_of(&self, id: &str) -> Option<PathBuf> {
        if let Some(p) = self.sources.databases.get(id) {
            return Some(p.clone());
        }
        let dir = self.sources.db_dir.as_ref()?;
        // A db id is a folder name: never a path.
        if id.is_empty() || id.contains(['/', '\\']) || id == "." || id == ".." {
            return None;
        }
        let path = dir.join(id).join(format!("{id}.sqlite"));
        path.is_file().then_some(path)
    }

    /// Database `id` as it is now: the key gold results are remembered under
    /// (`id@snapshot`) and the opened database.
    pub fn database(&self, id: &str) -> Result<(String, Arc<Database>), ItemError> {
        if let Some(db) = self.sources.opened.get(id) {
            let key = db.content_key().map_err(|e| ItemError {
                kind: "unknown_database",
                message: e.to_string(),
            })?;
            return Ok((format!("{id}@{key}"), Arc::clone(db)));
        }
        let path = self.path_of(id).ok_or_else(|| ItemError {
            kind: "unknown_database",
            message: match &self.sources.db_dir {
                Some(dir) => format!(
                    "no database `{id}` (looked for {}/{id}/{id}.sqlite)",
                    dir.display()
                ),
                None => format!(
                    "no database `{id}`; this service knows {}",
                    self.database_ids().join(", ")
                ),
            },
        })?;
        let snapshot = snapshot_id(&path).map_err(|e| ItemError {
            kind: "unknown_database",
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = held.get(id)
            && h.snapshot == snapshot
        {
            return Ok((format!("{id}@{snapshot}"), Arc::clone(&h.db)));
        }
        let db = Arc::new(Database::open(&path, self.limits).map_err(|e| ItemError {
            kind: "unknown_database",
            message: e.to_string(),
        })?);
        held.insert(
            id.to_string(),
            Held {
                snapshot: snapshot.clone(),
                db: Arc::clone(&db),
            },
        );
        Ok((format!("{id}@{snapshot}"), db))
    }

    /// The (database id, gold SQL) of an item.
    fn gold_of(&self, item: &RewardItem) -> Result<(String, String), ItemError> {
        if let Some(q) = &item.question_id {
            let (db, sql) = self
                .sources
                .questions
                .get(q.trim())
                .ok_or_else(|| ItemError {
                    kind: "unknown_question",
                    message: format!(
                        "no question `{q}` (ids are pair:ID for an accepted pair, gold:N or eval:N)"
                    ),
                })?;
            return Ok((db.clone(), sql.clone()));
        }
        let sql = item
            .gold_sql
            .as_ref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ItemError {
                kind: "no_gold",
                message: "give question_id or gold_sql".into(),
            })?;
        let db = item
            .db
            .clone()
            .or_else(|| self.sources.default_db.clone())
            .ok_or_else(|| ItemError {
                kind: "unknown_database",
                message: "give db (the database id) with gold_sql".into(),
            })?;
        Ok((db, sql.trim().to_string()))
    }

    /// Scores `items` in order.
    pub fn score(&self, items: &[RewardItem], shape: Shape) -> Vec<Score> {
        let mut out: Vec<Option<Score>> = vec![None; items.len()];
        let mut eval_items = Vec::new();
        let mut databases: BTreeMap<String, Arc<Database>> = BTreeMap::new();
        let mut extracted: Vec<Option<String>> = vec![None; items.len()];
        for (i, item) in items.iter().enumerate() {
            let prediction = Prediction::from_reply(&item.prediction);
            extracted[i] = prediction.sql.as_ref().ok().cloned();
            let resolved = self.gold_of(item).and_then(|(db, gold)| {
                let (key, opened) = self.database(&db)?;
                Ok((key, opened, gold))
            });
            match resolved {
                Ok((key, opened, gold)) => {
                    databases.entry(key.clone()).or_insert(opened);
                    eval_items.push(EvalItem {
                        index: i,
                        db_id: key,
                        gold_sql: gold,
                        pred_sql: prediction.sql,
                        question: String::new(),
                    });
                }
                Err(e) => out[i] = Some(Score::failed(item.id.clone(), extracted[i].clone(), e)),
            }
        }
        let options = EvalOptions {
            threads: self.threads,
            ..EvalOptions::default()
        };
        // Judged in chunks of a bounded number of distinct gold queries, the memory weight
        // of the remembered gold results checked between chunks: what one batch can make
        // lode hold is bounded by CHUNK_GOLDS results of at most `max_result_bytes` each.
        for chunk in chunks(&eval_items) {
            if self.exact.len() + self.soft.len() > MEMO_LIMIT
                || self.exact.cells() + self.soft.cells() > MEMO_CELLS
            {
                self.exact.clear();
                self.soft.clear();
            }
            let exact = evaluate_items_with(
                chunk,
                &databases,
                &Profile::default(),
                &options,
                &|_| {},
                &self.exact,
            );
            // Soft F1 for the wrong ones only: a match scores 1 whatever the shape.
            let soft: HashMap<usize, f64> = if shape == Shape::SoftF1 {
                let wrong: Vec<EvalItem> = exact
                    .iter()
                    .filter(|r| !r.verdict.correct && executed(r))
                    .map(|r| chunk[position(chunk, r.index)].clone())
                    .collect();
                evaluate_items_with(
                    &wrong,
                    &databases,
                    &Profile::BirdEx,
                    &options,
                    &|_| {},
                    &self.soft,
                )
                .into_iter()
                .map(|r| (r.index, r.verdict.score.unwrap_or(0.0)))
                .collect()
            } else {
                HashMap::new()
            };
            for r in exact {
                let i = r.index;
                out[i] = Some(to_score(
                    items[i].id.clone(),
                    extracted[i].clone(),
                    &r,
                    shape,
                    soft.get(&i).copied(),
                ));
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.unwrap_or_else(|| {
                    // Only a cancelled evaluation leaves an item out; none is cancelled here.
                    Score::failed(
                        items[i].id.clone(),
                        extracted[i].clone(),
                        ItemError {
                            kind: "not_scored",
                            message: "the item was not scored".into(),
                        },
                    )
                })
            })
            .collect()
    }
}

/// Distinct gold queries judged together at most.
const CHUNK_GOLDS: usize = 64;

/// Runs of `items` with at most [`CHUNK_GOLDS`] distinct (database, gold) each.
fn chunks(items: &[EvalItem]) -> Vec<&[EvalItem]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut golds: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let key = (item.db_id.as_str(), item.gold_sql.as_str());
        if !golds.contains(&key) && golds.len() == CHUNK_GOLDS {
            out.push(&items[start..i]);
            start = i;
            golds.clear();
        }
        golds.insert(key);
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

fn position(items: &[EvalItem], index: usize) -> usize {
    items
        .binary_search_by_key(&index, |e| e.index)
        .unwrap_or_default()
}

/// The prediction ran (it may still be wrong).
fn executed(r: &ItemResult) -> bool {
    !matches!(
        &r.verdict.reason,
        Some(
            Reason::PredError { .. }
                | Reason::Rejected { .. }
                | Reason::NoPrediction { .. }
                | Reason::Timeout { side: Side::Pred }
                | Reason::TooLarge { side: Side::Pred }
                | Reason::GoldError { .. }
                | Reason::Timeout { side: Side::Gold }
                | Reason::TooLarge { side: Side::Gold }
        )
    )
}

fn to_score(
    id: Json,
    sql: Option<String>,
    r: &ItemResult,
    shape: Shape,
    soft: Option<f64>,
) -> Score {
    let gold_broken = matches!(
        &r.verdict.reason,
        Some(
            Reason::GoldError { .. }
                | Reason::Timeout { side: Side::Gold }
                | Reason::TooLarge { side: Side::Gold }
        )
    );
    if gold_broken {
        let detail = r.verdict.reason.as_ref().map(Reason::describe);
        return Score::failed(
            id,
            sql,
            ItemError {
                kind: "gold_error",
                message: format!(
                    "the gold query cannot be judged against: {}",
                    detail.unwrap_or_default()
                ),
            },
        );
    }
    let parts = Parts {
        extracted: sql.is_some(),
        executes: executed(r),
        matches: r.verdict.correct,
    };
    let score = if parts.matches {
        1.0
    } else {
        match shape {
            Shape::Binary => 0.0,
            Shape::Arctic if parts.executes => 0.1,
            Shape::Arctic => 0.0,
            Shape::SoftF1 => soft.unwrap_or(0.0),
        }
    };
    Score {
        id,
        score,
        parts,
        reason: r.verdict.reason.as_ref().map(|x| x.kind().to_string()),
        detail: r.verdict.reason.as_ref().map(Reason::describe),
        sql,
        error: None,
    }
}

/// The sources of a project: its database (under its file stem, also the default), its
/// gold and eval sets (`gold:N`, `eval:N`) and its accepted pairs (`pair:ID`).
pub fn project_sources(
    project: &crate::project::Project,
    store: Option<&crate::store::Store>,
) -> Result<Sources, crate::store::StoreError> {
    let path = project.db.path().to_path_buf();
    let id = db_id_of(&path);
    let mut questions = HashMap::new();
    for (set, pairs) in [("gold", &project.gold), ("eval", &project.eval)] {
        for (n, p) in pairs.iter().enumerate() {
            questions.insert(format!("{set}:{}", n + 1), (id.clone(), p.sql.clone()));
        }
    }
    if let Some(store) = store {
        let accepted = store.pairs(&crate::store::PairFilter {
            statuses: vec![crate::store::PairStatus::Accepted],
            ..Default::default()
        })?;
        for p in accepted {
            questions.insert(format!("pair:{}", p.id), (id.clone(), p.sql));
        }
    }
    let postgres = project.db.is_postgres();
    Ok(Sources {
        databases: if postgres {
            BTreeMap::new()
        } else {
            BTreeMap::from([(id.clone(), path)])
        },
        opened: if postgres {
            BTreeMap::from([(id.clone(), Arc::clone(&project.db))])
        } else {
            BTreeMap::new()
        },
        db_dir: None,
        default_db: Some(id),
        questions,
    })
}

/// The id a database file is known by: its file stem.
pub fn db_id_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into())
}

/// Limits for scoring: the project's statement timeout and value limit, with result caps
/// that bound what one batch can hold (at most 200,000 rows and 8 MiB of kept values per
/// result; a bigger result is too large, a wrong answer).
pub fn reward_limits(base: ExecLimits) -> ExecLimits {
    ExecLimits {
        max_rows: 200_000,
        max_cell_bytes: 1 << 20,
        max_result_bytes: base.max_result_bytes.min(8 << 20),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scorer() -> (tempfile::TempDir, Scorer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL);
             INSERT INTO item VALUES (1, 'tea', 3.0), (2, 'cake', 5.5), (3, 'bun', 2.0);",
        )
        .unwrap();
        drop(conn);
        let sources = Sources {
            databases: BTreeMap::from([("shop".to_string(), path)]),
            default_db: Some("shop".into()),
            questions: HashMap::from([(
                "gold:1".to_string(),
                (
                    "shop".to_string(),
                    "SELECT name FROM item WHERE price > 2.5".to_string(),
                ),
            )]),
            ..Sources::default()
        };
        (dir, Scorer::new(sources, ExecLimits::default(), 2))
    }

    fn item(q: &str, prediction: &str) -> RewardItem {
        RewardItem {
            id: Json::from(prediction),
            question_id: Some(q.into()),
            prediction: prediction.into(),
            ..RewardItem::default()
        }
    }

    #[test]
    fn shapes_give_one_a_tenth_or_nothing() {
        let (_d, s) = scorer();
        let items = [
            item(
                "gold:1",
                "```sql\nSELECT name FROM item WHERE price >= 3\n```",
            ),
            item("gold:1", "SELECT name FROM item"),
            item("gold:1", "SELECT nope FROM item"),
            item("gold:1", "I do not know."),
            item(
                "gold:1",
                "WITH x AS (SELECT 1) DELETE FROM item WHERE id IN (SELECT * FROM x)",
            ),
        ];
        let arctic: Vec<f64> = s
            .score(&items, Shape::Arctic)
            .iter()
            .map(|x| x.score)
            .collect();
        assert_eq!(arctic, [1.0, 0.1, 0.0, 0.0, 0.0]);
        let binary: Vec<f64> = s
            .score(&items, Shape::Binary)
            .iter()
            .map(|x| x.score)
            .collect();
        assert_eq!(binary, [1.0, 0.0, 0.0, 0.0, 0.0]);
        let scored = s.score(&items, Shape::SoftF1);
        assert_eq!(scored[0].score, 1.0);
        // Two of the gold's rows among three predicted: soft F1 = 2·(2/3·1)/(2/3+1) = 0.8.
        assert!((scored[1].score - 0.8).abs() < 1e-9, "{:?}", scored[1]);
        assert_eq!(scored[2].score, 0.0);
        let parts: Vec<Parts> = scored.iter().map(|x| x.parts).collect();
        assert_eq!(
            parts[1],
            Parts {
                extracted: true,
                executes: true,
                matches: false
            }
        );
        assert!(!parts[2].executes && parts[2].extracted);
        assert!(!parts[3].extracted);
        assert_eq!(scored[4].reason.as_deref(), Some("rejected"));
        assert_eq!(scored[1].reason.as_deref(), Some("row_count"));
        assert_eq!(
            scored[0].sql.as_deref(),
            Some("SELECT name FROM item WHERE price >= 3")
        );
    }

    #[test]
    fn unknown_questions_and_databases_are_errors_with_zero() {
        let (_d, s) = scorer();
        let mut bad_db = item("x", "SELECT 1");
        bad_db.question_id = None;
        bad_db.gold_sql = Some("SELECT 1".into());
        bad_db.db = Some("../etc".into());
        let scored = s.score(&[item("pair:99", "SELECT 1"), bad_db], Shape::Arctic);
        assert_eq!(scored[0].error.as_ref().unwrap().kind, "unknown_question");
        assert_eq!(scored[1].error.as_ref().unwrap().kind, "unknown_database");
        assert!(scored.iter().all(|x| x.score == 0.0));
    }

    #[test]
    fn batches_are_judged_in_chunks_of_few_distinct_golds() {
        let items: Vec<EvalItem> = (0..300)
            .map(|i| EvalItem {
                index: i,
                db_id: "d".into(),
                gold_sql: format!("SELECT {}", i / 3),
                pred_sql: Ok("SELECT 1".into()),
                question: String::new(),
            })
            .collect();
        let parts = chunks(&items);
        assert_eq!(parts.iter().map(|c| c.len()).sum::<usize>(), 300);
        assert_eq!(parts.len(), 2, "100 golds: 64 + 36");
        for c in &parts {
            let golds: std::collections::HashSet<&str> =
                c.iter().map(|i| i.gold_sql.as_str()).collect();
            assert!(golds.len() <= CHUNK_GOLDS);
        }
        assert_eq!(parts[1][0].index, 192, "samples of one gold stay together");
    }

    #[test]
    fn a_changed_database_is_judged_afresh() {
        let (d, s) = scorer();
        let first = s.score(
            &[item("gold:1", "SELECT 'tea' UNION SELECT 'cake'")],
            Shape::Binary,
        );
        assert_eq!(first[0].score, 1.0);
        let conn = rusqlite::Connection::open(d.path().join("shop.sqlite")).unwrap();
        conn.execute_batch("INSERT INTO item VALUES (4, 'pie', 4.0);")
            .unwrap();
        drop(conn);
        let after = s.score(
            &[item("gold:1", "SELECT 'tea' UNION SELECT 'cake'")],
            Shape::Binary,
        );
        assert_eq!(
            after[0].score, 0.0,
            "the gold result was recomputed on the new rows"
        );
    }
}
