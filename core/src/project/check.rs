//! Checking a project's inputs against its database (`lode check`, and `lode init` at once):
//! every gold and eval query runs through the safe executor and must be read-only, succeed
//! and return at least one row; duplicate questions and glossary terms found at load count
//! too. Each problem names the file and the line of its pair.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{GoldPair, Project};
use crate::diag::Warning;
use crate::sql::{Database, ExecError};

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// Gold queries run.
    pub gold_checked: usize,
    /// Eval queries run (0 when the gold set doubles as the eval set: they are the same).
    pub eval_checked: usize,
    pub glossary_entries: usize,
    /// Every problem, in file order: a query that fails, returns no rows or is not read-only,
    /// a question or glossary term given twice.
    pub problems: Vec<Warning>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the gold set, the eval set (when it is its own file) and the glossary of `project`.
pub fn check(project: &Project) -> CheckReport {
    let threads = project.config.execution.thread_count();
    let mut problems = Vec::new();
    // What the loaders already noticed about these files (duplicates) is a problem here.
    let input_files: Vec<&Path> = [
        project.config.paths.gold_test_set.as_deref(),
        project.config.paths.eval_set.as_deref(),
        project.config.paths.glossary.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    problems.extend(
        project
            .warnings
            .iter()
            .filter(|w| input_files.contains(&w.path.as_path()))
            .cloned(),
    );
    let mut gold_checked = 0;
    if let Some(path) = project.config.paths.gold_test_set.as_deref() {
        problems.extend(check_queries(&project.db, path, &project.gold, threads));
        gold_checked = project.gold.len();
    }
    let mut eval_checked = 0;
    if let (false, Some(path)) = (
        project.eval_is_gold,
        project.config.paths.eval_set.as_deref(),
    ) {
        problems.extend(check_queries(&project.db, path, &project.eval, threads));
        eval_checked = project.eval.len();
    }
    // Keep each file's problems in line order.
    problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    problems.dedup();
    CheckReport {
        gold_checked,
        eval_checked,
        glossary_entries: project.glossary.len(),
        problems,
    }
}

/// Runs every query of `pairs` (read from `path`) on `threads` threads and returns one problem
/// per query that is refused (not read-only), fails, or returns no rows, in the pairs' order.
pub fn check_queries(
    db: &Database,
    path: &Path,
    pairs: &[GoldPair],
    threads: usize,
) -> Vec<Warning> {
    // One row is enough to know the query answers something.
    let limits = crate::sql::ExecLimits {
        max_rows: 1,
        max_cell_bytes: 64,
        ..db.limits()
    };
    let found = scan_parallel(pairs, threads, |pair| {
        query_problem(db.query_with(&pair.sql, limits, None))
    });
    found
        .into_iter()
        .map(|(i, problem)| Warning {
            path: path.to_path_buf(),
            line: pairs[i].line,
            message: format!("{problem} (question: {})", clip(&pairs[i].question, 70)),
        })
        .collect()
}

fn query_problem(result: Result<crate::sql::QueryResult, ExecError>) -> Option<String> {
    match result {
        Ok(r) if r.rows.is_empty() => Some(
            "the SQL returns no rows, so it cannot tell a right answer from a wrong one: \
             fix the SQL or remove the pair"
                .to_string(),
        ),
        Ok(_) => None,
        Err(ExecError::Rejected { reason }) => Some(format!(
            "the SQL is not one read-only query ({reason}): lode runs only SELECT or WITH"
        )),
        Err(e) => Some(format!("the SQL fails: {}", one_line(&e.to_string()))),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(s: &str, max: usize) -> String {
    let s = one_line(s);
    if s.chars().count() <= max {
        s
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// `f` over `items` on `threads` workers taking the next item as they go; the items it says
/// something about, with their index, in the items' order.
pub(crate) fn scan_parallel<T: Sync, P: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Option<P> + Sync,
) -> Vec<(usize, P)> {
    let next = AtomicUsize::new(0);
    let mut found: Vec<(usize, P)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.clamp(1, items.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        if let Some(p) = f(item) {
                            out.push((i, p));
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    found.sort_by_key(|(i, _)| *i);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ExecLimits;

    #[test]
    fn reports_failing_empty_and_writing_queries_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
            .unwrap();
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        let pair = |q: &str, sql: &str, line| GoldPair {
            question: q.into(),
            sql: sql.into(),
            db_id: None,
            line,
        };
        let pairs = vec![
            pair("fine", "SELECT x FROM t", Some(1)),
            pair("no column", "SELECT y FROM t", Some(2)),
            pair("nothing", "SELECT x FROM t WHERE x > 5", Some(3)),
            pair("writes", "DELETE FROM t", Some(4)),
            pair("made in code", "SELECT nope", None),
        ];
        let gold = dir.path().join("gold.jsonl");
        for threads in [1, 3] {
            let found = check_queries(&db, &gold, &pairs, threads);
            let lines: Vec<_> = found.iter().map(|w| w.line).collect();
            assert_eq!(lines, vec![Some(2), Some(3), Some(4), None]);
            assert!(found[0].message.contains("the SQL fails"), "{}", found[0]);
            assert!(found[0].message.contains("no column"), "{}", found[0]);
            assert!(found[1].message.contains("returns no rows"), "{}", found[1]);
            assert!(found[2].message.contains("read-only"), "{}", found[2]);
            assert!(!found.iter().any(|w| w.message.contains('\n')));
        }
        assert!(check_queries(&db, &gold, &[], 4).is_empty());
    }
}
