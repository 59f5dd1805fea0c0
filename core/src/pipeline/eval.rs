//! The evaluation engine: judges (gold, prediction) pairs in parallel on all cores under a
//! comparison profile. Gold results are computed once per (database, gold text) and shared;
//! every query goes through the safe executor, so a hostile prediction can neither write nor
//! run forever.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::Serialize;

use crate::sql::analyze::Hardness;
use crate::sql::compare::{Case, Outcome, Profile, Reason, Verdict};
use crate::sql::{CancelFlag, Database, ExecError, ExecLimits, QueryResult, SqlDialect};

/// Limits for evaluation: results are compared whole, so the row and cell caps are far
/// higher than for browsing; the row cap still bounds memory on a runaway cross join.
pub fn eval_limits(timeout: std::time::Duration) -> ExecLimits {
    ExecLimits {
        timeout,
        max_rows: 2_000_000,
        max_cell_bytes: 1 << 20,
        ..ExecLimits::default()
    }
}

/// One pair to judge.
#[derive(Debug, Clone)]
pub struct EvalItem {
    pub index: usize,
    pub db_id: String,
    pub gold_sql: String,
    /// `Err(message)` when the model gave no prediction: it counts as wrong, with the cause.
    pub pred_sql: Result<String, String>,
    pub question: String,
}

/// The first rows of a result, kept for reports and the TUI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<crate::sql::Value>>,
    /// Rows in the whole result.
    pub total_rows: usize,
}

impl Preview {
    fn of(r: &QueryResult, n: usize) -> Preview {
        Preview {
            columns: r.columns.clone(),
            rows: r.rows.iter().take(n).cloned().collect(),
            total_rows: r.rows.len(),
        }
    }
}

/// How to run an evaluation.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Rows of each result to keep in [`ItemResult`] (0: none, for batch scoring).
    pub preview_rows: usize,
    /// Stops the run; pairs not judged are left out of the result.
    pub cancel: Option<CancelFlag>,
    /// Neighbour databases each correct prediction is judged on again (see
    /// `pipeline::neighbours`); 0: none. Used by the project evaluation.
    pub neighbours: usize,
}

/// The judgement of one pair.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub index: usize,
    pub db_id: String,
    pub verdict: Verdict,
    /// Spider hardness of the gold query (`None` when it does not parse).
    pub hardness: Option<Hardness>,
    /// Time spent executing the gold queries (0 when the result came from the cache).
    pub gold_ms: f64,
    pub pred_ms: f64,
    /// The first rows of the gold and predicted results (see [`EvalOptions::preview_rows`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gold_preview: Option<Preview>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pred_preview: Option<Preview>,
    /// An order-insensitive hash of the whole predicted result, kept with the previews (so
    /// batch scoring does not pay for it): samples of a question that agree in it gave the
    /// same answer.
    #[serde(skip)]
    pub pred_fingerprint: Option<String>,
}

type GoldOutcome = Arc<Result<QueryResult, ExecError>>;
type GoldCache = Mutex<HashMap<(String, String), Arc<OnceLock<(GoldOutcome, f64)>>>>;

/// What an evaluation learns about its gold queries: each one's result per (database key,
/// executed text), and what depends on its text alone (hardness, the texts the profile
/// executes). One evaluation makes its own; a long-lived scorer (the reward service) keeps
/// one per profile across batches, so a gold query runs once however often it is asked
/// about. The database key must change when the database does (the reward service keys
/// by content snapshot).
#[derive(Default)]
pub struct GoldMemo {
    results: GoldCache,
    plans: GoldPlans,
}

impl GoldMemo {
    /// Gold results remembered.
    pub fn len(&self) -> usize {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cells (rows × columns) of the gold results remembered: what they weigh in memory.
    pub fn cells(&self) -> usize {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|cell| cell.get())
            .filter_map(|(outcome, _)| outcome.as_ref().as_ref().ok())
            .map(|r| r.rows.len() * r.columns.len().max(1))
            .sum()
    }

    /// Forgets everything (a bound on memory for a long-lived scorer).
    pub fn clear(&self) {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.plans.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Judges `items`; `databases` maps each db_id to its database. `progress` is called after
/// each pair with the number done.
pub fn evaluate_items(
    items: &[EvalItem],
    databases: &BTreeMap<String, Arc<Database>>,
    profile: &Profile,
    options: &EvalOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<ItemResult> {
    evaluate_items_with(
        items,
        databases,
        profile,
        options,
        progress,
        &GoldMemo::default(),
    )
}

/// [`evaluate_items`] with gold results and plans remembered in `memo` (made for one
/// `profile`: plans depend on it).
pub fn evaluate_items_with(
    items: &[EvalItem],
    databases: &BTreeMap<String, Arc<Database>>,
    profile: &Profile,
    options: &EvalOptions,
    progress: &(dyn Fn(usize) + Sync),
    memo: &GoldMemo,
) -> Vec<ItemResult> {
    let cancel = options.cancel.as_ref();
    let threads = options.threads;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let cache = &memo.results;
    let plans = &memo.plans;
    let results: Mutex<Vec<ItemResult>> = Mutex::new(Vec::with_capacity(items.len()));
    let threads = threads.clamp(1, items.len().max(1));
    // Threads claim runs of neighbouring items: the predictions of one gold query (and the
    // questions of one database) usually stand together, so a run keeps one thread on one
    // gold result and one connection instead of two threads waiting on each other for it.
    // Runs are short enough to leave every thread work to the end.
    let run = (items.len() / (threads * 16)).clamp(1, 32);
    // One consistent state of each database for the whole batch, and no lock taken and
    // released around each of its thousands of statements.
    let _snapshots: Vec<_> = databases.values().map(|db| db.snapshot()).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = Vec::new();
                'claim: loop {
                    let first = next.fetch_add(run, Ordering::Relaxed);
                    for item in items.iter().skip(first).take(run) {
                        if cancel.is_some_and(CancelFlag::is_cancelled) {
                            break 'claim;
                        }
                        local.push(judge_item(
                            item,
                            databases,
                            profile,
                            cache,
                            plans,
                            cancel,
                            options.preview_rows,
                        ));
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                    if first + run >= items.len() {
                        break;
                    }
                }
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(local);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|r| r.index);
    results
}

/// Per gold text and the dialect it is read in: its hardness and the texts the profile
/// executes for it.
type GoldPlans = Mutex<HashMap<(SqlDialect, String), Arc<(Option<Hardness>, Vec<String>)>>>;

fn gold_plan(
    plans: &GoldPlans,
    profile: &Profile,
    gold_sql: &str,
    dialect: SqlDialect,
) -> Arc<(Option<Hardness>, Vec<String>)> {
    let key = (dialect, gold_sql.to_string());
    if let Some(p) = plans.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Arc::clone(p);
    }
    // Worked out outside the lock; two threads may both do it once, harmlessly.
    let plan = Arc::new(profile.gold_plan(gold_sql, dialect));
    plans
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert(plan)
        .clone()
}

fn judge_item(
    item: &EvalItem,
    databases: &BTreeMap<String, Arc<Database>>,
    profile: &Profile,
    cache: &GoldCache,
    plans: &GoldPlans,
    cancel: Option<&CancelFlag>,
    preview_rows: usize,
) -> ItemResult {
    // The gold SQL is read in its database's dialect (SQLite's when the database is missing).
    let dialect = databases
        .get(&item.db_id)
        .map(|db| SqlDialect::from_name(db.dialect_name()))
        .unwrap_or_default();
    let plan = gold_plan(plans, profile, &item.gold_sql, dialect);
    let hardness = plan.0;
    let finish = |verdict: Verdict, gold_ms: f64, pred_ms: f64| ItemResult {
        index: item.index,
        db_id: item.db_id.clone(),
        verdict,
        hardness,
        gold_ms,
        pred_ms,
        gold_preview: None,
        pred_preview: None,
        pred_fingerprint: None,
    };
    let Some(db) = databases.get(&item.db_id) else {
        return finish(
            Verdict::wrong(Reason::GoldError {
                message: format!("no database `{}`", item.db_id),
            }),
            0.0,
            0.0,
        );
    };
    let mut gold_ms = 0.0;
    let golds: Vec<GoldOutcome> = plan
        .1
        .iter()
        .map(|q| {
            let cell = {
                let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
                map.entry((item.db_id.clone(), q.clone()))
                    .or_default()
                    .clone()
            };
            let mut ran = false;
            let (outcome, ms) = cell.get_or_init(|| {
                ran = true;
                let start = Instant::now();
                let r = db.query_with(q, db.limits(), cancel);
                (Arc::new(r), start.elapsed().as_secs_f64() * 1000.0)
            });
            if ran {
                gold_ms += ms;
            }
            outcome.clone()
        })
        .collect();
    let pred_sql = match &item.pred_sql {
        Ok(p) => p,
        Err(message) => {
            let mut r = finish(
                Verdict::wrong(Reason::NoPrediction {
                    message: message.clone(),
                }),
                gold_ms,
                0.0,
            );
            if preview_rows > 0
                && let Some(Ok(g)) = golds.first().map(|g| g.as_ref())
            {
                r.gold_preview = Some(Preview::of(g, preview_rows));
            }
            return r;
        }
    };
    let start = Instant::now();
    let pred = db.query_with(&profile.pred_query(pred_sql), db.limits(), cancel);
    let pred_ms = start.elapsed().as_secs_f64() * 1000.0;
    let case = Case {
        gold_sql: &item.gold_sql,
        pred_sql,
        question: &item.question,
        dialect,
    };
    let gold_refs: Vec<Outcome<'_>> = golds.iter().map(|g| g.as_ref().as_ref()).collect();
    let verdict = profile.judge(&case, &gold_refs, pred.as_ref());
    let mut r = finish(verdict, gold_ms, pred_ms);
    if preview_rows > 0 {
        if let Some(Ok(g)) = golds.first().map(|g| g.as_ref()) {
            r.gold_preview = Some(Preview::of(g, preview_rows));
        }
        if let Ok(p) = &pred {
            r.pred_preview = Some(Preview::of(p, preview_rows));
            r.pred_fingerprint = Some(crate::pipeline::validate::fingerprint(p));
        }
    }
    r
}

/// Accuracy per hardness and overall, and how many wrong pairs had each reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// hardness name → (pairs, correct); "unknown" for gold queries that do not parse.
    pub by_hardness: BTreeMap<String, (usize, usize)>,
    pub total: usize,
    pub correct: usize,
    pub reasons: BTreeMap<String, usize>,
    /// Mean soft F1 (bird_ex) where the profile scores.
    pub mean_score: Option<f64>,
    /// defog's "correct" (subset) count.
    pub subset_correct: Option<usize>,
}

impl Summary {
    pub fn of(results: &[ItemResult]) -> Summary {
        let mut s = Summary::default();
        let mut scores = Vec::new();
        for r in results {
            let h = r.hardness.map_or("unknown", Hardness::name).to_string();
            let e = s.by_hardness.entry(h).or_insert((0, 0));
            e.0 += 1;
            s.total += 1;
            if r.verdict.correct {
                e.1 += 1;
                s.correct += 1;
            } else if let Some(reason) = &r.verdict.reason {
                *s.reasons.entry(reason.kind().to_string()).or_insert(0) += 1;
            }
            if let Some(score) = r.verdict.score {
                scores.push(score);
            }
            if let Some(sub) = r.verdict.subset_correct {
                *s.subset_correct.get_or_insert(0) += sub as usize;
            }
        }
        if !scores.is_empty() {
            s.mean_score = Some(scores.iter().sum::<f64>() / scores.len() as f64);
        }
        s
    }

    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }

    /// The overall accuracy as a count, to be shown with its interval.
    pub fn score(&self) -> crate::pipeline::stats::Accuracy {
        crate::pipeline::stats::Accuracy::new(self.correct, self.total)
    }

    /// The per-hardness table in test-suite's layout.
    pub fn table(&self, profile: &Profile) -> String {
        let mut levels: Vec<String> = Hardness::ALL.iter().map(|h| h.name().to_string()).collect();
        if self.by_hardness.contains_key("unknown") {
            levels.push("unknown".into());
        }
        let mut out = String::new();
        out.push_str(&format!("{:<20}", ""));
        for l in levels.iter().chain(std::iter::once(&"all".to_string())) {
            out.push_str(&format!(" {l:<20}"));
        }
        out.push('\n');
        out.push_str(&format!("{:<20}", "count"));
        for l in &levels {
            let n = self.by_hardness.get(l).map_or(0, |x| x.0);
            out.push_str(&format!(" {n:<20}"));
        }
        out.push_str(&format!(" {:<20}\n", self.total));
        out.push_str(&format!(
            "=====================   EXECUTION ACCURACY ({})   =====================\n",
            profile.name()
        ));
        out.push_str(&format!("{:<20}", "execution"));
        for l in &levels {
            let (n, c) = self.by_hardness.get(l).copied().unwrap_or((0, 0));
            let acc = if n == 0 { 0.0 } else { c as f64 / n as f64 };
            out.push_str(&format!(" {acc:<20.3}"));
        }
        out.push_str(&format!(" {:<20.3}\n", self.accuracy()));
        if let Some(f1) = self.mean_score {
            out.push_str(&format!("{:<20} {f1:.3}\n", "soft F1 (BIRD)"));
        }
        if let Some(sub) = self.subset_correct {
            out.push_str(&format!(
                "{:<20} {:.3} ({} of {})\n",
                "correct (subset)",
                if self.total == 0 {
                    0.0
                } else {
                    sub as f64 / self.total as f64
                },
                sub,
                self.total
            ));
        }
        if !self.reasons.is_empty() {
            let reasons: Vec<String> = self
                .reasons
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            out.push_str(&format!(
                "{:<20} {}\n",
                "wrong, by reason",
                reasons.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_db() -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(a INTEGER, b TEXT);
             INSERT INTO t VALUES (1,'x'),(2,'y'),(3,'z');",
        )
        .unwrap();
        drop(conn);
        let db = Database::open(&path, eval_limits(std::time::Duration::from_secs(2))).unwrap();
        (dir, Arc::new(db))
    }

    #[test]
    fn judges_in_parallel_and_keeps_the_input_order() {
        let (_dir, db) = demo_db();
        let mut dbs = BTreeMap::new();
        dbs.insert("t".to_string(), db);
        let items: Vec<EvalItem> = (0..50)
            .map(|i| EvalItem {
                index: i,
                db_id: "t".into(),
                gold_sql: "SELECT a FROM t".into(),
                pred_sql: if i % 5 == 0 {
                    Err("the model timed out".into())
                } else if i % 2 == 0 {
                    Ok("SELECT a FROM t WHERE a > 1".into())
                } else {
                    Ok("SELECT a FROM t".into())
                },
                question: String::new(),
            })
            .collect();
        let calls = AtomicUsize::new(0);
        let options = EvalOptions {
            threads: 4,
            ..Default::default()
        };
        let results = evaluate_items(&items, &dbs, &Profile::default(), &options, &|_| {
            calls.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(calls.load(Ordering::Relaxed), 50);
        assert_eq!(results.len(), 50);
        assert!(results.iter().enumerate().all(|(i, r)| r.index == i));
        let summary = Summary::of(&results);
        assert_eq!(summary.total, 50);
        // Multiples of 5 have no prediction; of the rest, odd indexes are right.
        assert_eq!(summary.correct, 20);
        assert_eq!(summary.reasons["no_prediction"], 10);
        assert_eq!(summary.reasons["row_count"], 20);
        // The gold ran once: only one pair paid for it.
        assert_eq!(results.iter().filter(|r| r.gold_ms > 0.0).count(), 1);
    }

    #[test]
    fn an_unknown_database_is_a_gold_error_not_a_panic() {
        let items = vec![EvalItem {
            index: 0,
            db_id: "nowhere".into(),
            gold_sql: "SELECT 1".into(),
            pred_sql: Ok("SELECT 1".into()),
            question: String::new(),
        }];
        let r = evaluate_items(
            &items,
            &BTreeMap::new(),
            &Profile::default(),
            &EvalOptions {
                threads: 2,
                ..Default::default()
            },
            &|_| {},
        );
        assert_eq!(r[0].verdict.reason.as_ref().unwrap().kind(), "gold_error");
    }
}

// ---------------------------------------------------------------------------------------------
// Efficiency: BIRD mini-dev's reward-based valid efficiency score (R-VES)

/// The reward of one pair by `time_ratio` = gold time / predicted time (0 for a wrong
/// prediction), as BIRD mini-dev's `evaluation_ves.py` grades it.
pub fn ves_reward(time_ratio: f64) -> f64 {
    if time_ratio <= 0.0 {
        0.0
    } else if time_ratio >= 2.0 {
        1.25
    } else if time_ratio >= 1.0 {
        1.0
    } else if time_ratio >= 0.5 {
        0.75
    } else if time_ratio >= 0.25 {
        0.5
    } else {
        0.25
    }
}

/// The mean of the ratios strictly within three standard deviations of their mean (the
/// reference's `clean_abnormal`, population deviation); 0 for none. When every ratio is the
/// same (deviation 0) the reference keeps none and its division fails, scoring the pair 0;
/// lode keeps them all.
pub fn clean_mean(ratios: &[f64]) -> f64 {
    if ratios.is_empty() {
        return 0.0;
    }
    let n = ratios.len() as f64;
    let mean = ratios.iter().sum::<f64>() / n;
    let sd = (ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    let kept: Vec<f64> = ratios
        .iter()
        .copied()
        .filter(|r| (r - mean).abs() < 3.0 * sd)
        .collect();
    if kept.is_empty() {
        mean
    } else {
        kept.iter().sum::<f64>() / kept.len() as f64
    }
}

/// R-VES over evaluated pairs, as the reference computes it: 100 × the mean over all pairs of
/// √reward, where each correct pair's prediction and gold run `iterations` times in turn
/// (sequentially, so timings do not compete), the per-run ratios gold time / predicted time
/// are cleaned of outliers and averaged, and graded by [`ves_reward`]; wrong pairs score 0.
/// Gold and prediction run as the profile would run them.
pub fn r_ves(
    items: &[EvalItem],
    results: &[ItemResult],
    databases: &BTreeMap<String, Arc<Database>>,
    profile: &Profile,
    iterations: usize,
) -> f64 {
    if results.is_empty() {
        return 0.0;
    }
    let by_index: HashMap<usize, &EvalItem> = items.iter().map(|i| (i.index, i)).collect();
    let mut total = 0.0;
    for r in results.iter().filter(|r| r.verdict.correct) {
        let (Some(item), Some(db)) = (by_index.get(&r.index), databases.get(&r.db_id)) else {
            continue;
        };
        let Ok(pred) = &item.pred_sql else { continue };
        let dialect = SqlDialect::from_name(db.dialect_name());
        let Some(gold) = profile
            .gold_queries(&item.gold_sql, dialect)
            .into_iter()
            .next()
        else {
            continue;
        };
        let pred = profile.pred_query(pred);
        let mut ratios = Vec::with_capacity(iterations);
        for _ in 0..iterations.max(1) {
            let t = std::time::Instant::now();
            let p = db.query(&pred);
            let pred_t = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let g = db.query(&gold);
            let gold_t = t.elapsed().as_secs_f64();
            if g.is_ok() && p.is_ok() && pred_t > 0.0 {
                ratios.push(gold_t / pred_t);
            }
        }
        total += ves_reward(clean_mean(&ratios)).sqrt();
    }
    100.0 * total / results.len() as f64
}

#[cfg(test)]
mod ves_tests {
    use super::*;

    #[test]
    fn rewards_follow_the_mini_dev_grades() {
        // (time ratio, reward) at and around each boundary of the reference's table.
        for (ratio, reward) in [
            (0.0, 0.0),
            (0.1, 0.25),
            (0.2499, 0.25),
            (0.25, 0.5),
            (0.4999, 0.5),
            (0.5, 0.75),
            (0.9999, 0.75),
            (1.0, 1.0),
            (1.9999, 1.0),
            (2.0, 1.25),
            (50.0, 1.25),
        ] {
            assert_eq!(ves_reward(ratio), reward, "ratio {ratio}");
        }
    }

    #[test]
    fn outliers_beyond_three_deviations_are_dropped() {
        let mut ratios = vec![1.0; 20];
        ratios.push(100.0);
        // 100 is more than three deviations out: the mean of the rest is 1.
        assert!((clean_mean(&ratios) - 1.0).abs() < 1e-12);
        assert_eq!(clean_mean(&[2.0, 4.0]), 3.0);
        assert_eq!(clean_mean(&[1.5, 1.5]), 1.5);
        assert_eq!(clean_mean(&[]), 0.0);
    }
}
