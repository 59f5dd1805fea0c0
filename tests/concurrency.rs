//! Several lode processes on one project: the TUI open while scripts review and generate, new
//! stores opened by several processes at once, and a second `lode generate` meeting a run
//! another process holds. No assertion is about speed: loops are bounded, limits generous.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[path = "common/tui_driver.rs"]
mod tui_driver;
use tui_driver::perform_all;

use lode_core::project::Project;
use lode_core::store::{
    LeaseOwner, PairFilter, PairStatus, ReviewAction, RunKind, RunStatus, SetName, Store, host_name,
};

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .args(args)
        .output()
        .expect("run lode")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A process that succeeded and said nothing about an error (a locked store above all).
fn assert_clean(args: &[&str], o: &Output) {
    let out = text(o);
    let lower = out.to_lowercase();
    assert!(
        o.status.success() && !lower.contains("error") && !lower.contains("locked"),
        "lode {} ({}):\n{out}",
        args.join(" "),
        o.status
    );
}

/// A demo project written and taken through every stage by `lode demo`.
fn demo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let args = ["demo", "proj", "--no-tui"];
    let out = lode(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    let proj = dir.path().join("proj");
    (dir, proj)
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn count(store_path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(store_path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn the_tui_four_scripts_and_a_generate_run_share_one_project() {
    let (_dir, proj) = demo();
    let db = proj.join(".lode/lode.db");
    let project = Arc::new(Project::load(&proj.join("config.yml")).unwrap());
    let (store, _) = project.open_store().unwrap();
    let store = Arc::new(store);
    let snapshots = count(&db, "SELECT count(*) FROM input_snapshots");
    let gold_rows = count(&db, "SELECT count(*) FROM gold_pairs");
    let runs_before = store.runs().unwrap().len();
    let demo_run = store.latest_run(RunKind::Generate).unwrap().unwrap().id;

    // The TUI, open on the demo's run.
    let mut app =
        lode::tui::build_app(Arc::clone(&project), Arc::clone(&store), Default::default()).unwrap();
    let effects = app.start();
    perform_all(&mut app, effects);

    // Pairs nobody decided yet, split: the first ones the TUI shows go to the TUI, the rest
    // to four scripts, none shared.
    let undecided: Vec<i64> = store
        .pairs(&PairFilter {
            run_id: Some(demo_run),
            statuses: vec![PairStatus::Valid, PairStatus::Fixed],
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|p| store.review_history(p.id).unwrap().is_empty())
        .map(|p| p.id)
        .collect();
    let tui_ids: Vec<i64> = app
        .review
        .rows
        .iter()
        .map(|r| r.id)
        .filter(|id| undecided.contains(id))
        .take(16)
        .collect();
    let script_ids: Vec<i64> = undecided
        .iter()
        .copied()
        .filter(|id| !tui_ids.contains(id))
        .take(4 * 12)
        .collect();
    assert!(
        tui_ids.len() == 16 && script_ids.len() == 48,
        "the demo has enough undecided pairs ({} in all)",
        undecided.len()
    );
    let mut expected: BTreeMap<i64, ReviewAction> = tui_ids
        .iter()
        .map(|&id| (id, ReviewAction::Accept))
        .collect();

    // A new generation run writing, and four scripts accepting, rejecting and listing, each
    // decision its own process.
    let generate = {
        let proj = proj.clone();
        std::thread::spawn(move || {
            let args = ["generate", "--new"];
            (args.join(" "), lode(&proj, &args))
        })
    };
    let mut scripts = Vec::new();
    for (w, chunk) in script_ids.chunks(12).enumerate() {
        let proj = proj.clone();
        let chunk = chunk.to_vec();
        for (i, id) in chunk.iter().enumerate() {
            let action = if (w + i) % 3 == 0 {
                ReviewAction::Reject
            } else {
                ReviewAction::Accept
            };
            expected.insert(*id, action);
        }
        scripts.push(std::thread::spawn(move || {
            let mut outputs = Vec::new();
            for (i, id) in chunk.iter().enumerate() {
                let id = id.to_string();
                let args: Vec<&str> = if (w + i) % 3 == 0 {
                    vec!["review", "reject", &id, "--reason", "script says no"]
                } else if i % 2 == 0 {
                    vec!["review", "accept", &id]
                } else {
                    vec!["review", "accept", &id, "--reason", "script says yes"]
                };
                outputs.push((args.join(" "), lode(&proj, &args)));
                if i % 4 == 3 {
                    let args = ["review", "list", "--limit", "5"];
                    outputs.push((args.join(" "), lode(&proj, &args)));
                }
            }
            outputs
        }));
    }

    // Meanwhile the reviewer accepts theirs, one key at a time, each saved before the next.
    for &id in &tui_ids {
        let at = app
            .review
            .rows
            .iter()
            .position(|r| r.id == id)
            .unwrap_or_else(|| panic!("pair {id} left the TUI's queue"));
        app.review.cursor = at;
        let effects = app.handle_key(key('a'));
        perform_all(&mut app, effects);
        assert!(
            app.message.contains(&format!("pair {id} accepted (saved)")),
            "pair {id}: {}",
            app.message
        );
    }

    let mut outputs: Vec<(String, Output)> = Vec::new();
    for s in scripts {
        outputs.extend(s.join().unwrap());
    }
    outputs.push(generate.join().unwrap());
    for (args, out) in &outputs {
        assert_clean(&args.split(' ').collect::<Vec<_>>(), out);
    }

    // Every decision is in the history, once, and applied.
    for (&id, &action) in &expected {
        let history = store.review_history(id).unwrap();
        assert_eq!(
            history.iter().map(|r| r.action).collect::<Vec<_>>(),
            [action],
            "pair {id}"
        );
        assert!(!history[0].undone);
        let want = match action {
            ReviewAction::Accept => PairStatus::Accepted,
            _ => PairStatus::Rejected,
        };
        assert_eq!(store.pair(id).unwrap().status, want, "pair {id}");
    }
    // No duplicates: the same inputs are one snapshot and one gold set, and the scripts'
    // generation made one run, finished, whose lease is gone.
    assert_eq!(
        count(&db, "SELECT count(*) FROM input_snapshots"),
        snapshots
    );
    assert_eq!(count(&db, "SELECT count(*) FROM gold_pairs"), gold_rows);
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), runs_before + 1);
    assert_eq!(runs[0].kind, RunKind::Generate);
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert!(store.run_lease(runs[0].id).unwrap().is_none());
    assert_eq!(count(&db, "SELECT count(*) FROM run_leases"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM (SELECT 1 FROM reviews GROUP BY pair_id HAVING count(*) > 1)"
        ),
        0
    );
}

#[test]
fn threads_opening_a_new_store_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..8 {
        let path = dir.path().join(format!("r{round}/.lode/lode.db"));
        let n = 6;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = Store::open(&path)?;
                    let snap = store.record_snapshot("c", "s", "g", "go", "e")?;
                    let pairs = vec![("q".to_string(), "SELECT 1".to_string())];
                    store.replace_gold_set(SetName::Gold, snap, &pairs)?;
                    store.mark_interrupted_runs()?;
                    Ok::<_, lode_core::store::StoreError>(snap)
                })
            })
            .collect();
        let snaps: Vec<i64> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"))
            })
            .collect();
        assert!(snaps.iter().all(|&s| s == snaps[0]), "{snaps:?}");
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            lode_core::store::SCHEMA_VERSION
        );
        assert_eq!(store.journal_mode().unwrap(), "wal");
        assert_eq!(count(&path, "SELECT count(*) FROM input_snapshots"), 1);
        assert_eq!(count(&path, "SELECT count(*) FROM gold_pairs"), 1);
    }
}

#[test]
fn processes_opening_a_new_store_at_once_both_succeed() {
    let (_dir, proj) = demo();
    let db = proj.join(".lode/lode.db");
    for round in 0..4 {
        for suffix in ["", "-wal", "-shm"] {
            let f = PathBuf::from(format!("{}{suffix}", db.display()));
            if f.exists() {
                std::fs::remove_file(&f).unwrap();
            }
        }
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let proj = proj.clone();
                std::thread::spawn(move || lode(&proj, &["review", "list"]))
            })
            .collect();
        for h in handles {
            let out = h.join().unwrap();
            assert!(out.status.success(), "round {round}: {}", text(&out));
            assert_clean(&["review", "list"], &out);
        }
        let store = Store::open(&db).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            lode_core::store::SCHEMA_VERSION
        );
        assert_eq!(count(&db, "SELECT count(*) FROM input_snapshots"), 1);
        let project = Project::load(&proj.join("config.yml")).unwrap();
        assert_eq!(
            count(&db, "SELECT count(*) FROM gold_pairs") as usize,
            project.gold.len() + project.eval.len()
        );
    }
}

#[test]
fn a_second_generate_refuses_a_live_run_and_takes_over_a_stale_one() {
    let (_dir, proj) = demo();
    let db = proj.join(".lode/lode.db");
    let project = Project::load(&proj.join("config.yml")).unwrap();
    let (store, snapshot) = project.open_store().unwrap();
    let new_run = lode_core::store::NewRun {
        kind: RunKind::Generate,
        snapshot_id: Some(snapshot),
        profile: "rules".into(),
        config_json: "{}".into(),
    };

    // This test process writes a run (as a first `lode generate` would): alive, fresh
    // heartbeat. A second generate, resuming by default or by id, is refused and told who.
    let me = LeaseOwner::this_process();
    let run = store.create_leased_run(&new_run, &me).unwrap();
    for args in [
        vec!["generate"],
        vec!["generate", "--resume", &run.to_string()],
    ] {
        let out = lode(&proj, &args);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains(&format!(
                "run {run} is being written by pid {} on host {}",
                me.pid, me.host
            )) && said.contains("wait for it or pass --new"),
            "{said}"
        );
    }
    assert_eq!(store.run(run).unwrap().status, RunStatus::Running);
    assert_eq!(
        store
            .pairs(&PairFilter {
                run_id: Some(run),
                ..Default::default()
            })
            .unwrap()
            .len(),
        0,
        "nothing was written into the held run"
    );
    // Other commands leave the held run alone (they used to mark it interrupted).
    assert_clean(&["review", "list"], &lode(&proj, &["review", "list"]));
    assert_eq!(store.run(run).unwrap().status, RunStatus::Running);

    // Its holder died on this host: the next generate takes the run over and finishes it.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = LeaseOwner {
        token: "dead".into(),
        pid: child.id(),
        host: host_name(),
    };
    child.wait().unwrap();
    store.release_run(run, &me).unwrap();
    store.resume_leased_run(run, &dead).unwrap();
    let out = lode(&proj, &["generate"]);
    assert_clean(&["generate"], &out);
    assert!(
        text(&out).contains(&format!("run {run} resumed and finished")),
        "{}",
        text(&out)
    );
    assert_eq!(store.run(run).unwrap().status, RunStatus::Completed);
    assert!(store.run_lease(run).unwrap().is_none());

    // A holder on another machine whose heartbeat stopped long ago is stale too.
    let far = LeaseOwner {
        token: "far".into(),
        pid: 1,
        host: "another-host.invalid".into(),
    };
    let run = store.create_leased_run(&new_run, &far).unwrap();
    let out = lode(&proj, &["generate"]);
    assert!(!out.status.success(), "a fresh heartbeat is trusted");
    assert!(text(&out).contains("on host another-host.invalid"));
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE run_leases SET heartbeat_ms = heartbeat_ms - 3600000 WHERE run_id = ?1",
            [run],
        )
        .unwrap();
    let out = lode(&proj, &["generate"]);
    assert_clean(&["generate"], &out);
    assert!(text(&out).contains(&format!("run {run} resumed and finished")));
    assert_eq!(store.run(run).unwrap().status, RunStatus::Completed);
    assert_eq!(count(&db, "SELECT count(*) FROM run_leases"), 0);
}
