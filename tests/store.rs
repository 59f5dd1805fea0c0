//! The workspace store: migrations, idempotent inserts, review history with undo,
//! durability under `kill -9`, 100k pairs, and use from many threads.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use lode_core::store::{NewPair, NewRun, PairFilter, PairStatus, ReviewAction, Store, StoreError};

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
    assert_eq!(store.schema_version().unwrap(), 1);
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
        .edit_and_accept(id, None, Some("SELECT 2"), Some("edited"))
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
    store.undo_last_review(id).unwrap();
    assert_eq!(store.pair(id).unwrap().status, PairStatus::Valid);
    store.undo_last_review(id).unwrap();
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
        .edit_and_accept(id, Some("new question"), Some("SELECT 2"), None)
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
        .review(id, ReviewAction::Accept, None, None, None, None)
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
        )
        .unwrap();
    let edited = store.pair(id).unwrap();
    assert_eq!(
        (edited.question.as_str(), edited.sql.as_str(), edited.status),
        ("fixed question", "SELECT 2", PairStatus::Valid)
    );
    let undo = store
        .undo_last_review(id)
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
    store.undo_last_review(id).unwrap();
    assert_eq!(store.pair(id).unwrap().status, PairStatus::Valid);
    assert_eq!(store.undo_last_review(id).unwrap(), None);
    let history = store.review_history(id).unwrap();
    let actions: Vec<&str> = history.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, vec!["accept", "edit", "undo", "undo"]);
    assert!(history[0].undone && history[1].undone);
    assert_eq!(history[1].prev_sql, "SELECT 'a'");
    assert!(matches!(
        store.review(9999, ReviewAction::Accept, None, None, None, None),
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
