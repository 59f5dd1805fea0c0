//! The workspace store: migrations, idempotent inserts, review history with undo,
//! durability under `kill -9`, 100k pairs, and use from many threads.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use lode_core::store::{
    NewPair, NewRun, PairFilter, PairStatus, ReviewAction, Reviewer, Store, StoreError,
};

fn new_pair(key: &str) -> NewPair {
    NewPair {
        origin_key: key.to_string(),
        generator: "pattern".into(),
        question: format!("question {key}"),
        sql: format!("SELECT '{key}'"),
        ..Default::default()
    }
}

fn run(store: &Store) -> i64 {
    store
        .create_run(&NewRun {
            kind: lode_core::store::RunKind::Generate,
            profile: "rules".into(),
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn migrations_run_once_and_a_newer_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".lode/lode.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        lode_core::store::SCHEMA_VERSION
    );
    assert_eq!(store.journal_mode().unwrap(), "wal");
    let id = run(&store);
    drop(store);
    let again = Store::open(&path).unwrap();
    assert_eq!(
        again.run(id).unwrap().kind,
        lode_core::store::RunKind::Generate,
        "re-opening keeps the data"
    );
    drop(again);

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(e @ StoreError::Newer { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("lode.db"), "{msg}");
            assert!(msg.contains("upgrade lode"), "{msg}");
        }
        other => panic!("expected Newer, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lode.db");
    std::fs::write(
        &path,
        b"this is not sqlite, just text that is long enough to matter",
    )
    .unwrap();
    let err = Store::open(&path).err().expect("must fail").to_string();
    assert!(err.contains("lode.db"), "{err}");
}

#[test]
fn inserting_the_same_origin_twice_gives_the_same_ids_and_no_extra_rows() {
    let store = Store::open_in_memory().unwrap();
    let run_id = run(&store);
    let batch: Vec<NewPair> = (0..10).map(|i| new_pair(&format!("k{i}"))).collect();
    let first = store.insert_pairs(run_id, &batch).unwrap();
    let second = store.insert_pairs(run_id, &batch).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        store.count_pairs_by_status(Some(run_id)).unwrap()["pending"],
        10
    );
    assert!(store.has_origin(run_id, "k3").unwrap());
    assert!(!store.has_origin(run_id, "k10").unwrap());
    // Another run may reuse the key.
    let other = run(&store);
    let ids = store.insert_pairs(other, &batch[..1]).unwrap();
    assert!(!first.contains(&ids[0]));
}

#[test]
fn edit_and_accept_is_saved_whole() {
    let store = Store::open_in_memory().unwrap();
    let run_id = run(&store);
    let id = store.insert_pairs(run_id, &[new_pair("a")]).unwrap()[0];
    let accept = store
        .edit_and_accept(id, None, Some("SELECT 2"), Some("edited"), Reviewer::Cli)
        .unwrap();
    assert_eq!(accept.action, ReviewAction::Accept);
    assert_eq!(accept.note.as_deref(), Some("edited"));
    let pair = store.pair(id).unwrap();
    assert_eq!(
        (pair.sql.as_str(), pair.status),
        ("SELECT 2", PairStatus::Accepted)
    );
    let history = store.review_history(id).unwrap();
    let steps: Vec<(ReviewAction, PairStatus)> =
        history.iter().map(|r| (r.action, r.new_status)).collect();
    assert_eq!(
        steps,
        vec![
            (ReviewAction::Edit, PairStatus::Valid),
            (ReviewAction::Accept, PairStatus::Accepted)
        ]
    );
    // Undo steps back through the accept, then the edit.
    store.undo_last_review(id, Reviewer::Cli).unwrap();
    assert_eq!(store.pair(id).unwrap().status, PairStatus::Valid);
    store.undo_last_review(id, Reviewer::Cli).unwrap();
    let back = store.pair(id).unwrap();
    assert_eq!(
        (back.sql.as_str(), back.status),
        ("SELECT 'a'", PairStatus::Pending)
    );
}

#[test]
fn a_failed_accept_leaves_the_edit_unsaved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lode.db");
    let store = Store::open(&path).unwrap();
    let run_id = run(&store);
    let id = store.insert_pairs(run_id, &[new_pair("a")]).unwrap()[0];
    // The accept (second write of the two) fails inside the transaction.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_accept BEFORE INSERT ON reviews WHEN NEW.action = 'accept'
         BEGIN SELECT RAISE(ABORT, 'accept refused'); END;",
    )
    .unwrap();
    drop(conn);
    let err = store
        .edit_and_accept(
            id,
            Some("new question"),
            Some("SELECT 2"),
            None,
            Reviewer::Cli,
        )
        .unwrap_err();
    assert!(err.to_string().contains("accept refused"), "{err}");
    let pair = store.pair(id).unwrap();
    assert_eq!(
        (pair.question.as_str(), pair.sql.as_str(), pair.status),
        ("question a", "SELECT 'a'", PairStatus::Pending),
        "the edit is rolled back with the accept"
    );
    assert!(store.review_history(id).unwrap().is_empty());
}

#[test]
fn review_history_and_undo_restore_the_pair() {
    let store = Store::open_in_memory().unwrap();
    let run_id = run(&store);
    let id = store.insert_pairs(run_id, &[new_pair("a")]).unwrap()[0];
    store.set_pair_status(id, PairStatus::Valid).unwrap();
    store
        .review(
            id,
            ReviewAction::Accept,
            None,
            None,
            None,
            None,
            Reviewer::Tui,
        )
        .unwrap();
    assert_eq!(store.pair(id).unwrap().status, PairStatus::Accepted);
    store
        .review(
            id,
            ReviewAction::Edit,
            Some("fixed question"),
            Some("SELECT 2"),
            Some(PairStatus::Valid),
            Some("typo"),
            Reviewer::Mcp,
        )
        .unwrap();
    let edited = store.pair(id).unwrap();
    assert_eq!(
        (edited.question.as_str(), edited.sql.as_str(), edited.status),
        ("fixed question", "SELECT 2", PairStatus::Valid)
    );
    let undo = store
        .undo_last_review(id, Reviewer::Cli)
        .unwrap()
        .expect("something to undo");
    assert_eq!(undo.action, ReviewAction::Undo);
    let restored = store.pair(id).unwrap();
    assert_eq!(
        (
            restored.question.as_str(),
            restored.sql.as_str(),
            restored.status
        ),
        ("question a", "SELECT 'a'", PairStatus::Accepted)
    );
    // A second undo undoes the accept.
    store.undo_last_review(id, Reviewer::Cli).unwrap();
    assert_eq!(store.pair(id).unwrap().status, PairStatus::Valid);
    assert_eq!(store.undo_last_review(id, Reviewer::Cli).unwrap(), None);
    let history = store.review_history(id).unwrap();
    let actions: Vec<&str> = history.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, vec!["accept", "edit", "undo", "undo"]);
    assert!(history[0].undone && history[1].undone);
    assert_eq!(
        history.iter().map(|r| r.reviewer).collect::<Vec<_>>(),
        [Reviewer::Tui, Reviewer::Mcp, Reviewer::Cli, Reviewer::Cli].map(Some),
        "each decision says who made it"
    );
    assert_eq!(history[1].prev_sql, "SELECT 'a'");
    assert!(matches!(
        store.review(
            9999,
            ReviewAction::Accept,
            None,
            None,
            None,
            None,
            Reviewer::Cli
        ),
        Err(StoreError::NotFound { .. })
    ));
}

/// The child side of the kill test: writes pairs forever, one transaction each, and reports
/// every commit on stdout. Does nothing unless started by the parent.
#[test]
fn child_writer_for_kill_test() {
    let Ok(path) = std::env::var("LODE_STORE_CHILD") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&path)).unwrap();
    let run_id = run(&store);
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let id = store
            .insert_pairs(run_id, &[new_pair(&format!("c{i}"))])
            .unwrap()[0];
        use std::io::Write;
        writeln!(out, "saved {id}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_loses_nothing_that_was_reported_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lode.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer_for_kill_test",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LODE_STORE_CHILD", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut saved = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("saved ") {
            saved.push(id.trim().parse::<i64>().unwrap());
            if saved.len() >= 200 {
                child.kill().unwrap(); // SIGKILL on unix
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(saved.len(), 200, "the child stopped early");
    let store = Store::open(&path).unwrap();
    for id in &saved {
        store
            .pair(*id)
            .unwrap_or_else(|e| panic!("pair {id} reported saved is gone: {e}"));
    }
}

#[test]
fn a_hundred_thousand_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lode.db")).unwrap();
    let run_id = run(&store);
    for batch in 0..100 {
        let pairs: Vec<NewPair> = (0..1000)
            .map(|i| {
                let mut p = new_pair(&format!("{batch}-{i}"));
                if i % 10 == 0 {
                    p.status = Some(PairStatus::Invalid);
                }
                p
            })
            .collect();
        store.insert_pairs(run_id, &pairs).unwrap();
    }
    let counts = store.count_pairs_by_status(Some(run_id)).unwrap();
    assert_eq!(counts["pending"], 90_000);
    assert_eq!(counts["invalid"], 10_000);
    let page = store
        .pairs(&PairFilter {
            run_id: Some(run_id),
            statuses: vec![PairStatus::Invalid],
            limit: Some(50),
            offset: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 50);
    assert!(page.iter().all(|p| p.status == PairStatus::Invalid));
    assert_eq!(
        page[0].origin_key, "1-0",
        "the 101st invalid pair (100 per batch)"
    );
}

#[test]
fn shared_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("lode.db")).unwrap());
    let run_id = run(&store);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..250 {
                    store
                        .insert_pairs(run_id, &[new_pair(&format!("t{t}-{i}"))])
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        store.count_pairs_by_status(Some(run_id)).unwrap()["pending"],
        1000
    );
}

#[test]
fn interrupted_runs_are_marked_on_the_next_start() {
    let store = Store::open_in_memory().unwrap();
    let a = run(&store);
    let b = run(&store);
    store
        .finish_run(b, lode_core::store::RunStatus::Completed, Some("{}"), None)
        .unwrap();
    assert_eq!(store.mark_interrupted_runs().unwrap(), vec![a]);
    assert_eq!(
        store.run(a).unwrap().status,
        lode_core::store::RunStatus::Interrupted
    );
    assert_eq!(
        store
            .latest_run(lode_core::store::RunKind::Generate)
            .unwrap()
            .unwrap()
            .id,
        b
    );
}

/// A version-1 workspace as lode 1 wrote it: analysis and notes as JSON on the pair, failed
/// calls as placeholder pairs with empty SQL.
fn v1_store(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(include_str!("../core/src/store/migrations/001_initial.sql"))
        .unwrap();
    conn.execute_batch(
        r#"
        PRAGMA user_version = 1;
        INSERT INTO input_snapshots VALUES (1, '2026-01-01T00:00:00.000Z', 'c', 's', 'g', 'go', 'e');
        INSERT INTO gold_pairs VALUES (1, 'gold', 0, 'How many stores?', 'SELECT COUNT(*) FROM stores', 1);
        INSERT INTO runs (id, kind, status, created_at, snapshot_id, profile)
            VALUES (1, 'generate', 'completed', '2026-01-01T00:00:00.000Z', 1, 'rules');
        -- An analysed pair with an LLM validator's verdict and an empty result.
        INSERT INTO pairs (id, run_id, origin_key, generator, parent_gold_id, question, sql, status,
                           created_at, updated_at, concepts_json, meta_json)
            VALUES (1, 1, 'pattern:1:0:0', 'pattern', 1, 'Which stores are in the north?',
                    'SELECT s.name FROM Stores s JOIN regions r ON r.id = s.region_id',
                    'invalid', '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:01.000Z',
                    '{"concepts":{"join_inner":1,"where":2,"alias":1},"tables":["Stores","regions"],"hardness":"medium","level":"moderate"}',
                    '{"empty":true,"validator:consistent":{"is_valid":false,"explanation":"no north"}}');
        -- A pair whose SQL step failed: a real question without SQL.
        INSERT INTO pairs (id, run_id, origin_key, generator, parent_gold_id, question, sql, status,
                           created_at, updated_at, meta_json)
            VALUES (2, 1, 'variation:1:0:0', 'variation', 1, 'How many stores opened?', '',
                    'invalid', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:02.000Z',
                    '{"llm_error":"schema-to-SQL call failed (timeout): deadline"}');
        -- Failed calls, recorded as placeholder pairs.
        INSERT INTO pairs (id, run_id, origin_key, generator, parent_gold_id, question, sql, status,
                           created_at, updated_at, meta_json)
            VALUES (3, 1, 'pattern:1:1:call', 'pattern', 1, '(pattern produced no questions)', '',
                    'invalid', '2026-01-01T00:00:03.000Z', '2026-01-01T00:00:03.000Z',
                    '{"llm_error":"pattern call failed (bad_request): prompt too long"}');
        INSERT INTO pairs (id, run_id, origin_key, generator, question, sql, status,
                           created_at, updated_at, meta_json)
            VALUES (4, 1, 'sql_first:simple:0', 'sql_first', '(sql-first simple call failed)', '',
                    'invalid', '2026-01-01T00:00:04.000Z', '2026-01-01T00:00:04.000Z',
                    '{"llm_error":"rate limited","error_kind":"rate_limit"}');
        -- A placeholder someone rejected: a decision, so it stays a pair.
        INSERT INTO pairs (id, run_id, origin_key, generator, parent_gold_id, question, sql, status,
                           created_at, updated_at, meta_json)
            VALUES (5, 1, 'pattern:1:2:call', 'pattern', 1, '(pattern produced no questions)', '',
                    'rejected', '2026-01-01T00:00:05.000Z', '2026-01-01T00:00:06.000Z',
                    '{"llm_error":"pattern call failed (server): 502"}');
        INSERT INTO reviews (pair_id, action, prev_status, new_status, prev_question, prev_sql,
                             new_question, new_sql, created_at)
            VALUES (5, 'reject', 'invalid', 'rejected', '(pattern produced no questions)', '',
                    '(pattern produced no questions)', '', '2026-01-01T00:00:06.000Z');
        -- An imported pair with the original tool's validation.
        INSERT INTO runs (id, kind, status, created_at, profile)
            VALUES (2, 'import', 'completed', '2026-01-02T00:00:00.000Z', '');
        INSERT INTO pairs (id, run_id, origin_key, generator, question, sql, status, created_at,
                           updated_at, meta_json)
            VALUES (6, 2, 'import:0', 'import', 'How many regions?', 'SELECT COUNT(*) FROM regions',
                    'valid', '2026-01-02T00:00:00.000Z', '2026-01-02T00:00:00.000Z',
                    '{"original_validation":{"is_valid":true,"error":null}}');
        INSERT INTO jobs (id, provider, external_id, status, created_at, updated_at)
            VALUES (1, 'memory', 'mem-1', 'succeeded', '2026-01-03T00:00:00.000Z', '2026-01-03T00:00:00.000Z');
        INSERT INTO job_events (job_id, at, status, message)
            VALUES (1, '2026-01-03T00:00:00.000Z', 'succeeded', 'done');
        INSERT INTO eval_runs (id, created_at, model, profile, status)
            VALUES (1, '2026-01-04T00:00:00.000Z', 'rules:rules', 'rules', 'completed');
        "#,
    )
    .unwrap();
}

#[test]
fn a_version_1_workspace_is_carried_forward_typed() {
    use lode_core::store::{
        ErrorKind, JobStatus, PairAnalysis, QueueQuery, RunKind, RunStatus, SetName, TuneProvider,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lode.db");
    v1_store(&path);
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        lode_core::store::SCHEMA_VERSION
    );

    // Enums read back from the version-1 text.
    let run = store.run(1).unwrap();
    assert_eq!(
        (run.kind, run.status),
        (RunKind::Generate, RunStatus::Completed)
    );
    assert_eq!(store.run(2).unwrap().kind, RunKind::Import);
    assert_eq!(
        store.gold_set(SetName::Gold).unwrap()[0].set_name,
        SetName::Gold
    );
    let job = store.job(1).unwrap();
    assert_eq!(
        (job.provider, job.status),
        (TuneProvider::Memory, JobStatus::Succeeded)
    );
    assert_eq!(store.job_events(1).unwrap()[0].status, JobStatus::Succeeded);
    assert_eq!(store.eval_run(1).unwrap().status, RunStatus::Completed);

    // Analysis and notes, typed, in the order they were written.
    let p = store.pair(1).unwrap();
    assert_eq!(
        p.analysis,
        Some(PairAnalysis {
            concepts: vec![
                ("join_inner".into(), 1),
                ("where".into(), 2),
                ("alias".into(), 1)
            ],
            tables: vec!["Stores".into(), "regions".into()],
            hardness: "medium".into(),
            level: Some("moderate".into()),
        })
    );
    assert!(p.notes.empty_result);
    assert_eq!(p.notes.llm_error, None);
    assert_eq!(p.notes.validators.len(), 1);
    assert_eq!(p.notes.validators[0].0, "consistent");
    assert_eq!(p.notes.validators[0].1["explanation"], "no north");
    let no_sql = store.pair(2).unwrap();
    assert_eq!(no_sql.analysis, None);
    assert_eq!(
        no_sql.notes.llm_error.as_deref(),
        Some("schema-to-SQL call failed (timeout): deadline")
    );
    let imported = store.pair(6).unwrap();
    assert_eq!(
        imported.notes.original_validation.as_ref().unwrap()["is_valid"],
        true
    );

    // The queue's concept: and table: filters find the pair through the new tables.
    let ids = |q: QueueQuery| -> Vec<i64> {
        store
            .pair_summaries(&q)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(
        ids(QueueQuery {
            concept: Some("WHERE".into()),
            ..Default::default()
        }),
        vec![1]
    );
    assert_eq!(
        ids(QueueQuery {
            table: Some("stores".into()),
            ..Default::default()
        }),
        vec![1]
    );
    assert!(
        ids(QueueQuery {
            concept: Some("cte".into()),
            ..Default::default()
        })
        .is_empty()
    );

    // Placeholder pairs became failures with their kind, run, gold pair, key and time; the
    // reviewed one stays a pair.
    let failures = store.generation_failures(1).unwrap();
    type Row<'a> = (&'a str, &'a str, Option<ErrorKind>, Option<i64>, &'a str);
    let got: Vec<Row> = failures
        .iter()
        .map(|f| {
            (
                f.generator.as_str(),
                f.origin_key.as_str(),
                f.error_kind,
                f.gold_pair_id,
                f.created_at.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "pattern",
                "pattern:1:1:call",
                Some(ErrorKind::BadRequest),
                Some(1),
                "2026-01-01T00:00:03.000Z"
            ),
            (
                "sql_first",
                "sql_first:simple:0",
                Some(ErrorKind::RateLimit),
                None,
                "2026-01-01T00:00:04.000Z"
            ),
        ]
    );
    assert!(failures[0].error.contains("prompt too long"));
    let pair_ids: Vec<i64> = store
        .pairs(&PairFilter::default())
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(pair_ids, vec![1, 2, 5, 6]);
    let history = store.review_history(5).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].reviewer, None,
        "decided before reviewers were recorded"
    );
    // A resumed run still skips what it skipped before.
    let origins = store.origins(1).unwrap();
    assert!(origins.contains("sql_first:simple:0") && origins.contains("pattern:1:0:0"));

    // The JSON columns are gone, so nothing can read them any more.
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('pairs')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        !columns
            .iter()
            .any(|c| c == "concepts_json" || c == "meta_json"),
        "{columns:?}"
    );
}
