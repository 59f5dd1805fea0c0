//! The TUI in process: snapshots of every pane on a generated fixture project (ratatui's
//! TestBackend + insta), the colours that carry meaning, and scripted key flows asserting
//! both the store and the screen.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

#[path = "common/tui_driver.rs"]
mod tui_driver;
use tui_driver::{code, draw, key, perform_all, run_keys};

use lode::tui::app::{App, BgEvent, Effect, Mode, Tab};
use lode::tui::keymap::Keymap;
use lode::tui::panes::results::Results;
use lode::tui::theme::Theme;
use lode_core::pipeline::model_eval::{Prediction, evaluate_model};
use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::{NewPair, NewRun, NewValidation, PairStatus, Store};
use lode_core::tasks::StageEvent;

/// (generator, question, sql, status, failed attempts before the last)
const PAIRS: &[(&str, &str, &str, PairStatus, &[&str])] = &[
    (
        "pattern",
        "How many stores are there?",
        "SELECT COUNT(*) FROM stores",
        PairStatus::Valid,
        &[],
    ),
    (
        "variation",
        "List the stores in the North region.",
        "SELECT name FROM stores WHERE region = 'North' ORDER BY name",
        PairStatus::Valid,
        &[],
    ),
    (
        "pattern",
        "How many orders did each store take?",
        "SELECT s.name, COUNT(*) AS orders FROM stores s JOIN orders o ON o.store_id = s.id GROUP BY s.name ORDER BY orders DESC",
        PairStatus::Valid,
        &[],
    ),
    (
        "decomposer",
        "Which employees earn more than 15 an hour?",
        "SELECT first_name, last_name, hourly_wage FROM employees WHERE hourly_wage > 15 ORDER BY hourly_wage DESC",
        PairStatus::Fixed,
        &["no such column: wage"],
    ),
    (
        "variation",
        "What is the average tip per order?",
        "SELECT AVG(tip) FROM orders",
        PairStatus::Invalid,
        &["no such column: tip", "no such column: tip"],
    ),
    (
        "paraphrase",
        "Count the stores.",
        "SELECT COUNT(*) FROM stores",
        PairStatus::Duplicate,
        &[],
    ),
    (
        "sql_first",
        "Which products cost more than 4?",
        "SELECT name, category, unit_price FROM products WHERE unit_price > 4 ORDER BY unit_price DESC, name",
        PairStatus::Valid,
        &[],
    ),
];

struct Fixture {
    _dir: tempfile::TempDir,
    project: Arc<Project>,
    store: Arc<Store>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let (store, snapshot) = project.open_store().unwrap();
    let run = store
        .create_run(&NewRun {
            kind: lode_core::store::RunKind::Generate,
            snapshot_id: Some(snapshot),
            profile: "rules".into(),
            config_json: "{}".into(),
        })
        .unwrap();
    for (i, (generator, question, sql, status, failures)) in PAIRS.iter().enumerate() {
        let a = lode_core::sql::analyze::analyze(sql, Some(&project.schema)).unwrap();
        let pair = NewPair {
            origin_key: format!("{generator}:{i}"),
            generator: generator.to_string(),
            parent_gold_id: (i == 2).then_some(1),
            parent_pair_id: None,
            question: question.to_string(),
            sql: sql.to_string(),
            status: Some(*status),
            notes: Default::default(),
            template: None,
            result_fingerprint: None,
            analysis: Some(lode_core::store::PairAnalysis {
                concepts: a
                    .concepts
                    .iter()
                    .map(|(k, n)| (k.name().to_string(), *n))
                    .collect(),
                tables: a.tables,
                hardness: a.hardness.name().to_string(),
                level: None,
            }),
        };
        let mut attempts: Vec<NewValidation> = failures
            .iter()
            .enumerate()
            .map(|(k, e)| NewValidation {
                pair_id: 0,
                attempt: k as i64 + 1,
                sql: sql.replace("hourly_wage > 15", "wage > 15"),
                ok: false,
                error_kind: Some("unknown_column".into()),
                error: Some(e.to_string()),
                row_count: None,
                elapsed_ms: Some(0.1),
                flags_json: None,
                result_preview_json: None,
            })
            .collect();
        if *status != PairStatus::Invalid {
            let rows = project.db.query(sql).unwrap().rows.len() as i64;
            attempts.push(NewValidation {
                pair_id: 0,
                attempt: attempts.len() as i64 + 1,
                sql: sql.to_string(),
                ok: true,
                error_kind: None,
                error: None,
                row_count: Some(rows),
                elapsed_ms: Some(0.1),
                flags_json: None,
                result_preview_json: None,
            });
        }
        store
            .insert_pair_with_validations(run, &pair, &attempts)
            .unwrap();
    }
    store
        .finish_run(run, lode_core::store::RunStatus::Completed, None, None)
        .unwrap();
    // An evaluation: right on even positions, a wrong query on odd ones, no SQL on the last.
    let preds: Vec<Prediction> = project
        .eval
        .iter()
        .enumerate()
        .map(|(i, p)| Prediction {
            sql: if i + 1 == project.eval.len() {
                Err("no SQL in the reply".into())
            } else if i % 2 == 0 {
                Ok(p.sql.clone())
            } else {
                Ok("SELECT name FROM stores ORDER BY name".into())
            },
            raw: None,
        })
        .collect();
    evaluate_model(
        &project,
        &store,
        "fixture-model",
        &preds,
        &Default::default(),
        &lode_core::pipeline::eval::EvalOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    // A tuning job part-way, with losses.
    let job = store
        .create_job(
            lode_core::store::TuneProvider::Lamini,
            Some("llama-3"),
            None,
            lode_core::store::JobStatus::Queued,
            "{}",
        )
        .unwrap();
    store.set_job_external_id(job, "ext-42").unwrap();
    for (step, loss) in [(10, 2.4), (20, 1.7), (30, 1.1), (40, 0.8)] {
        let data = serde_json::json!({"step": step, "total_steps": 100, "loss": loss});
        store
            .update_job_status(
                job,
                lode_core::store::JobStatus::Running,
                &format!("step {step}"),
                Some(&data.to_string()),
                None,
            )
            .unwrap();
    }
    Fixture {
        _dir: dir,
        project: Arc::new(project),
        store: Arc::new(store),
    }
}

fn app(f: &Fixture) -> App {
    let keymap = Keymap::new(&Default::default()).unwrap();
    let theme = Theme::load("ansi16", false).unwrap();
    started(App::new(
        Arc::clone(&f.project),
        Arc::clone(&f.store),
        keymap,
        theme,
    ))
}

/// The app after its first reads (the queue, the evaluations, the jobs), as the loop starts it.
fn started(mut app: App) -> App {
    let effects = app.start();
    perform_all(&mut app, effects);
    app
}

/// Reads the queue again for the filter and search set on the review pane.
fn reload(app: &mut App) {
    let effects = app.request_rows();
    perform_all(app, effects);
}

/// The screen as text, with times and timings (which change run to run) masked.
fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    mask(&out)
}

fn mask(s: &str) -> String {
    // 2026-11-25T03:36:09.392Z → <time>; "0.2 ms" → "<t> ms"
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let is_time = i + 24 <= chars.len()
            && chars[i..i + 4].iter().all(|c| c.is_ascii_digit())
            && chars[i + 4] == '-'
            && chars[i + 10] == 'T'
            && chars[i + 23] == 'Z';
        if is_time {
            out.push_str("<time>                  ");
            i += 24;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    let mut masked = String::new();
    for line in out.lines() {
        let mut l = line.to_string();
        if let Some(p) = l.find(" ms ") {
            let start = l[..p]
                .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
                .map_or(0, |i| i + 1);
            let width = p - start;
            l.replace_range(start..p, &format!("{:>width$}", "<t>"));
        }
        masked.push_str(&l);
        masked.push('\n');
    }
    masked
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Empties the editor with keys: to the end of the text, then backspace.
fn clear_editor(a: &mut App) {
    for _ in 0..200 {
        a.handle_key(code(KeyCode::Down));
    }
    a.handle_key(code(KeyCode::End));
    for _ in 0..20_000 {
        if a.editor.lines().join("").is_empty() && a.editor.lines().len() == 1 {
            return;
        }
        a.handle_key(code(KeyCode::Backspace));
    }
    panic!("the editor did not empty: {:?}", a.editor.lines());
}

fn press(app: &mut App, keys: &[KeyEvent]) -> Vec<Effect> {
    keys.iter().flat_map(|k| app.handle_key(*k)).collect()
}

fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..buf.area.height {
        let line: Vec<String> = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        let joined: String = line.concat();
        if let Some(byte) = joined.find(needle) {
            // Cells hold one character each here (the fixture is ASCII where searched).
            let col = joined[..byte].chars().count() as u16;
            return Some((col, y));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Snapshots

#[test]
fn every_pane_snapshot() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('1')]);
    insta::assert_snapshot!("review", text(&draw(&mut a, 110, 30)));
    // Run the selected pair's SQL: the results table.
    run_keys(&mut a, &[key('j'), key('j')]);
    let cmds = press(&mut a, &[code(KeyCode::F(5))]);
    perform_all(&mut a, cmds);
    insta::assert_snapshot!("review_results", text(&draw(&mut a, 110, 30)));
    // The failed pair with its debugger attempts.
    a.review.search = "status:invalid".into();
    reload(&mut a);
    insta::assert_snapshot!("review_failed", text(&draw(&mut a, 110, 30)));

    run_keys(&mut a, &[key('2')]);
    insta::assert_snapshot!("schema", text(&draw(&mut a, 110, 30)));
    let cmds = a.handle_key(key('3'));
    assert!(matches!(cmds.as_slice(), [Effect::Analyze]));
    perform_all(&mut a, cmds);
    insta::assert_snapshot!("coverage", text(&draw(&mut a, 110, 36)));
    run_keys(&mut a, &[key('4')]);
    insta::assert_snapshot!("evaluation", text(&draw(&mut a, 110, 36)));
    run_keys(&mut a, &[key('5')]);
    insta::assert_snapshot!("jobs", text(&draw(&mut a, 110, 30)));
    run_keys(&mut a, &[key('?')]);
    insta::assert_snapshot!("help", text(&draw(&mut a, 110, 30)));
    run_keys(&mut a, &[key('x')]);
    assert_eq!(a.mode, Mode::Normal);
    insta::assert_snapshot!("too_small", text(&draw(&mut a, 50, 12)));
}

#[test]
fn colours_carry_meaning() {
    let f = fixture();
    let mut a = app(&f);
    a.review.filter = 0; // all statuses
    reload(&mut a);
    // Accept the first pair, reject the second: their status cells take the theme colours.
    run_keys(&mut a, &[key('a')]);
    run_keys(&mut a, &[key('r'), code(KeyCode::Enter)]);
    let buf = draw(&mut a, 110, 30);
    // Status cells start right after the queue's left border.
    let (x, y) = find(&buf, "│accepted").expect("accepted shown");
    let x = x + 1;
    assert_eq!(buf[(x, y)].fg, Color::Green, "accepted is green");
    let (x, y) = find(&buf, "│rejected").expect("rejected shown");
    let x = x + 1;
    assert_eq!(buf[(x, y)].fg, Color::Red, "rejected is red");
    let (x, y) = find(&buf, "│duplicate").expect("duplicate shown");
    let x = x + 1;
    assert_eq!(buf[(x, y)].fg, Color::DarkGray);
    // The selected row (the third pair now) is reversed out in the selection colours.
    // (the queue row: its id, then the question; the detail pane shows the question too)
    let (x, y) = find(&buf, "3 How many orders did each store").expect("selected row");
    let x = x + 2;
    assert_eq!(buf[(x, y)].bg, Color::Cyan, "selection background");
    assert_eq!(buf[(x, y)].fg, Color::Black, "selection foreground");
    let (x, y) = find(&buf, "List the stores in the North").unwrap();
    assert_ne!(
        buf[(x, y)].bg,
        Color::Cyan,
        "unselected rows are not highlighted"
    );
    // SQL keywords in the editor: blue and bold; a string literal green; a number magenta.
    a.review.cursor = 1;
    a.review.search = "North".into();
    reload(&mut a);
    let buf = draw(&mut a, 110, 30);
    let (x, y) = find(&buf, "WHERE region").expect("SQL shown");
    assert_eq!(buf[(x, y)].fg, Color::Blue);
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    let (x, y) = find(&buf, "'North'").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Green);
    let (x, y) = find(&buf, "region =").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Reset, "identifiers are not coloured");

    // NO_COLOR: no colour anywhere, the selection still shows (reversed).
    let keymap = Keymap::new(&Default::default()).unwrap();
    let theme = Theme::load("ansi16", true).unwrap();
    let mut plain = started(App::new(
        Arc::clone(&f.project),
        Arc::clone(&f.store),
        keymap,
        theme,
    ));
    let buf = draw(&mut plain, 110, 30);
    for cell in buf.content() {
        assert!(
            matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
            "a colour under NO_COLOR: {cell:?}"
        );
    }
    let first = &plain.review.rows[0];
    let (x, y) = find(&buf, &format!("{} {}", first.id, &first.question[..20])).unwrap();
    assert!(buf[(x + 2, y)].modifier.contains(Modifier::REVERSED));
}

// ---------------------------------------------------------------------------------------------
// Key flows

#[test]
fn accept_reject_with_reason_and_undo() {
    let f = fixture();
    let mut a = app(&f);
    let first = a.review.rows[0].id;
    run_keys(&mut a, &[key('a')]);
    assert_eq!(f.store.pair(first).unwrap().status, PairStatus::Accepted);
    assert!(text(&draw(&mut a, 110, 30)).contains(&format!("pair {first} accepted (saved)")));

    // Reject the next with a typed reason; the reason is in the review history.
    let second = a.review.rows[a.review.cursor].id;
    let mut keys = vec![key('r')];
    keys.extend("wrong table".chars().map(key));
    run_keys(&mut a, &keys);
    assert!(
        text(&draw(&mut a, 110, 30))
            .contains("reason (Enter to reject, Esc to cancel): wrong table")
    );
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    let p = f.store.pair(second).unwrap();
    assert_eq!(p.status, PairStatus::Rejected);
    let history = f.store.review_history(second).unwrap();
    assert_eq!(history.last().unwrap().note.as_deref(), Some("wrong table"));
    assert_eq!(
        history.last().unwrap().reviewer,
        Some(lode_core::store::Reviewer::Tui),
        "the TUI's decisions are recorded as the TUI's"
    );
    assert!(text(&draw(&mut a, 110, 30)).contains(&format!("pair {second} rejected (saved)")));

    // Esc cancels a reject: nothing written.
    let third = a.review.rows[a.review.cursor].id;
    run_keys(&mut a, &[key('r'), key('x'), code(KeyCode::Esc)]);
    assert_eq!(f.store.pair(third).unwrap().status, PairStatus::Valid);

    // Undo takes back the last decision wherever the cursor is, and goes to its pair: the
    // reject of the second pair, then the accept of the first.
    run_keys(&mut a, &[key('G')]);
    assert_ne!(a.review.rows[a.review.cursor].id, second);
    run_keys(&mut a, &[key('u')]);
    assert_eq!(f.store.pair(second).unwrap().status, PairStatus::Valid);
    assert_eq!(
        a.review.rows[a.review.cursor].id, second,
        "the cursor follows the undo"
    );
    assert!(text(&draw(&mut a, 110, 30)).contains(&format!("pair {second} back to valid")));
    run_keys(&mut a, &[key('u')]);
    assert_eq!(f.store.pair(first).unwrap().status, PairStatus::Valid);
    assert_eq!(a.review.rows[a.review.cursor].id, first);
    // Nothing more to undo.
    run_keys(&mut a, &[key('u')]);
    assert!(a.message.contains("no decision to undo"), "{}", a.message);
}

#[test]
fn edit_then_accept_validates_before_saving() {
    let f = fixture();
    let mut a = app(&f);
    let id = a.review.rows[0].id;
    run_keys(&mut a, &[key('e')]);
    assert_eq!(a.mode, Mode::Editing);
    // Break the SQL: ctrl-s refuses to save it and says why.
    run_keys(&mut a, &[code(KeyCode::End)]);
    run_keys(
        &mut a,
        &" WHERE nope = 1".chars().map(key).collect::<Vec<_>>(),
    );
    run_keys(&mut a, &[ctrl('s')]);
    assert!(a.message.starts_with("not saved"), "{}", a.message);
    assert_eq!(f.store.pair(id).unwrap().status, PairStatus::Valid);
    assert_eq!(f.store.pair(id).unwrap().sql, "SELECT COUNT(*) FROM stores");
    // Fix it: clear the editor, type a new query, save: edited and accepted in the store.
    let new_sql = "SELECT COUNT(*) FROM stores WHERE region = 'North'";
    clear_editor(&mut a);
    run_keys(&mut a, &new_sql.chars().map(key).collect::<Vec<_>>());
    assert!(text(&draw(&mut a, 110, 30)).contains("SQL · draft, not saved"));
    run_keys(&mut a, &[ctrl('s')]);
    assert_eq!(a.mode, Mode::Normal);
    let p = f.store.pair(id).unwrap();
    assert_eq!(p.status, PairStatus::Accepted);
    assert_eq!(p.sql, new_sql);
    let actions: Vec<String> = f
        .store
        .review_history(id)
        .unwrap()
        .iter()
        .map(|r| r.action.as_str().to_string())
        .collect();
    assert_eq!(actions, ["edit", "accept"]);
    assert!(
        text(&draw(&mut a, 110, 30)).contains(&format!("pair {id} edited and accepted (saved)"))
    );

    // The question is editable too (on the next pair, still valid).
    run_keys(&mut a, &[key('j')]);
    let id2 = a.review.rows[a.review.cursor].id;
    run_keys(&mut a, &[key('E')]);
    for _ in 0..200 {
        run_keys(&mut a, &[code(KeyCode::Backspace)]);
    }
    run_keys(
        &mut a,
        &"Which stores are in the North?"
            .chars()
            .map(key)
            .collect::<Vec<_>>(),
    );
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    let p2 = f.store.pair(id2).unwrap();
    assert_eq!(p2.question, "Which stores are in the North?");
    assert_eq!(
        p2.status,
        PairStatus::Valid,
        "a question edit keeps the status"
    );
}

#[test]
fn run_a_query_and_see_rows_then_page_and_scroll() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('j')]); // North stores
    let cmds = a.handle_key(ctrl('r'));
    assert!(matches!(a.results.state, Results::Running { .. }));
    assert!(text(&draw(&mut a, 110, 30)).contains("running…"));
    perform_all(&mut a, cmds);
    let screen = text(&draw(&mut a, 110, 30));
    let north: Vec<String> = f
        .project
        .db
        .query("SELECT name FROM stores WHERE region = 'North' ORDER BY name")
        .unwrap()
        .rows
        .iter()
        .map(|r| r[0].display())
        .collect();
    assert!(!north.is_empty());
    for n in &north {
        assert!(screen.contains(n.as_str()), "{n} missing:\n{screen}");
    }
    assert!(screen.contains(&format!("rows 1-{} of {}", north.len(), north.len())));

    // A long result pages with ] and [, a wide one scrolls sideways.
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    run_keys(
        &mut a,
        &"SELECT id, name, city, region, opened_on FROM customers ORDER BY id"
            .replace("name", "first_name")
            .replace("region", "loyalty_tier")
            .replace("opened_on", "joined_on")
            .chars()
            .map(key)
            .collect::<Vec<_>>(),
    );
    let cmds = a.handle_key(code(KeyCode::F(5)));
    perform_all(&mut a, cmds);
    run_keys(&mut a, &[code(KeyCode::Esc)]);
    // A page is what the pane shows: `]` starts the next one right after it.
    let first = text(&draw(&mut a, 110, 30));
    let shown: usize = first
        .split("rows 1-")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no first page:\n{first}"));
    assert!(shown > 1);
    run_keys(&mut a, &[key(']')]);
    let paged = text(&draw(&mut a, 110, 30));
    assert!(paged.contains(&format!("rows {}-", shown + 1)), "{paged}");
    run_keys(&mut a, &[key('l')]);
    let scrolled = text(&draw(&mut a, 110, 30));
    assert!(scrolled.contains("columns 2-"), "{scrolled}");

    // An error shows in place.
    run_keys(&mut a, &[key('e')]);
    run_keys(&mut a, &" nonsense".chars().map(key).collect::<Vec<_>>());
    let cmds = a.handle_key(code(KeyCode::F(5)));
    perform_all(&mut a, cmds);
    assert!(matches!(a.results.state, Results::Error(_)));
    assert!(
        text(&draw(&mut a, 110, 30))
            .to_lowercase()
            .contains("syntax")
    );
}

#[test]
fn an_endless_query_is_cancelled() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    let endless =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT MAX(i) FROM n";
    run_keys(&mut a, &endless.chars().map(key).collect::<Vec<_>>());
    let cmds = a.handle_key(code(KeyCode::F(5)));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _guard = rt.enter();
    for c in cmds {
        lode::tui::perform(c, &a, &tx);
    }
    // The UI keeps answering while the query runs.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "the endless query finished?");
    assert!(text(&draw(&mut a, 110, 30)).contains("running…"));
    a.handle_key(ctrl('c'));
    let ev = rt
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv()).await
        })
        .expect("cancel answered")
        .unwrap();
    a.handle_bg(ev);
    match &a.results.state {
        Results::Error(e) => assert!(e.contains("cancel"), "{e}"),
        other => panic!("expected a cancelled query, got {other:?}"),
    }
    assert!(text(&draw(&mut a, 110, 30)).contains("cancel"));
}

#[test]
fn filters_search_sort_and_bulk_accept() {
    let f = fixture();
    let mut a = app(&f);
    // "to review" by default: valid, fixed and failed (a hand fix), not the duplicate.
    assert_eq!(a.review.rows.len(), 6);
    let title = text(&draw(&mut a, 110, 30));
    assert!(title.contains("Queue run 1: to review"), "{title}");
    // f cycles: accepted (none yet), rejected, failed, suspect (none), duplicate, all.
    run_keys(&mut a, &[key('f')]);
    assert_eq!(a.review.rows.len(), 0);
    assert!(text(&draw(&mut a, 110, 30)).contains("No pair matches this filter."));
    run_keys(&mut a, &[key('f'), key('f')]);
    assert_eq!(a.review.rows.len(), 1);
    assert_eq!(a.review.rows[0].status, PairStatus::Invalid);
    run_keys(&mut a, &[key('f')]);
    assert!(text(&draw(&mut a, 110, 30)).contains("Queue run 1: suspect"));
    assert_eq!(a.review.rows.len(), 0);
    run_keys(&mut a, &[key('f')]);
    assert_eq!(a.review.rows[0].status, PairStatus::Duplicate);
    run_keys(&mut a, &[key('f')]);
    assert_eq!(a.review.rows.len(), PAIRS.len());

    // Search words, then field filters.
    let mut keys = vec![key('/')];
    keys.extend("stores".chars().map(key));
    let cmds = press(&mut a, &keys);
    // The frame comes at once; the queue is read in the background.
    assert_eq!(cmds.len(), "stores".len(), "{cmds:?}");
    let screen = text(&draw(&mut a, 110, 30));
    assert!(screen.contains("search: stores"), "{screen}");
    assert!(screen.contains("loading…"), "{screen}");
    perform_all(&mut a, cmds);
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    assert!(!a.review.loading);
    assert_eq!(a.review.rows.len(), 4, "{:?}", a.review.rows);
    let search = |a: &mut App, s: &str| {
        a.review.search = s.into();
        reload(a);
        a.review
            .rows
            .iter()
            .map(|r| r.question.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(search(&mut a, "gen:pattern").len(), 2);
    assert_eq!(
        search(&mut a, "concept:join_inner"),
        ["How many orders did each store take?"]
    );
    assert_eq!(search(&mut a, "table:products").len(), 1);
    assert_eq!(
        search(&mut a, "valid:no"),
        ["What is the average tip per order?"]
    );
    assert_eq!(search(&mut a, "gen:variation North").len(), 1);
    assert_eq!(search(&mut a, "status:duplicate"), ["Count the stores."]);
    assert!(
        search(&mut a, "status:nonsense").is_empty(),
        "an unknown status shows nothing"
    );

    // Sort by question.
    search(&mut a, "");
    run_keys(&mut a, &[key('o'), key('o'), key('o')]);
    let qs: Vec<String> = a
        .review
        .rows
        .iter()
        .map(|r| r.question.to_lowercase())
        .collect();
    let mut sorted = qs.clone();
    sorted.sort();
    assert_eq!(qs, sorted);
    assert!(text(&draw(&mut a, 110, 30)).contains("by question"));

    // Bulk accept the valid pairs of the current filter, with confirmation.
    a.review.search = "gen:pattern".into();
    reload(&mut a);
    run_keys(&mut a, &[key('A')]);
    assert!(matches!(a.mode, Mode::Confirm(_)));
    assert!(text(&draw(&mut a, 110, 30)).contains("Accept the 2 valid pairs shown? y/n"));
    run_keys(&mut a, &[key('n')]);
    assert!(
        !f.store
            .count_pairs_by_status(None)
            .unwrap()
            .contains_key("accepted")
    );
    run_keys(&mut a, &[key('A')]);
    run_keys(&mut a, &[key('y')]);
    assert_eq!(f.store.count_pairs_by_status(None).unwrap()["accepted"], 2);
    assert!(a.message.contains("accepted 2 pairs (saved)"));
}

#[test]
fn schema_search_inserts_a_name_into_the_editor() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('2')]);
    assert_eq!(a.tab, Tab::Schema);
    let mut keys = vec![key('/')];
    keys.extend("wage".chars().map(key));
    keys.push(code(KeyCode::Enter));
    run_keys(&mut a, &keys);
    let screen = text(&draw(&mut a, 110, 30));
    assert!(screen.contains("matching \"wage\""));
    assert!(screen.contains("hourly_wage"));
    assert!(!screen.contains("customers"), "{screen}");
    run_keys(&mut a, &[key('j')]);
    run_keys(&mut a, &[key('i')]);
    assert_eq!(a.tab, Tab::Review);
    assert_eq!(a.mode, Mode::Editing);
    assert!(a.editor.lines().join("\n").contains("hourly_wage"));
}

#[test]
fn keymap_overrides_and_conflicts() {
    let mut m = std::collections::BTreeMap::new();
    m.insert("accept".to_string(), "y".to_string());
    let err = Keymap::new(&m).unwrap_err();
    assert!(err.contains("copy") && err.contains("accept"), "{err}");
    m.insert("copy".to_string(), "Y".to_string());
    let k = Keymap::new(&m).unwrap();
    let f = fixture();
    let theme = Theme::load("ansi16", false).unwrap();
    let mut a = started(App::new(
        Arc::clone(&f.project),
        Arc::clone(&f.store),
        k,
        theme,
    ));
    let id = a.review.rows[0].id;
    run_keys(&mut a, &[key('a')]);
    assert_eq!(
        f.store.pair(id).unwrap().status,
        PairStatus::Valid,
        "a is unbound now"
    );
    run_keys(&mut a, &[key('y')]);
    assert_eq!(f.store.pair(id).unwrap().status, PairStatus::Accepted);
    // The help overlay follows the keymap.
    run_keys(&mut a, &[key('?')]);
    let help = text(&draw(&mut a, 110, 30)).replace('│', " ");
    assert!(
        help.lines().any(|l| l
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(4)
            .any(|w| w == ["y", "accept", "the", "pair"])),
        "{help}"
    );
}

#[test]
fn sql_layout_keeps_every_query_meaning() {
    // Every gold and eval query of the demo, laid out for the editor, returns what it did.
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let mut n = 0;
    for p in project.gold.iter().chain(project.eval.iter()) {
        let dialect = lode_core::sql::SqlDialect::of(&project.schema);
        let laid = lode::tui::highlight::layout(&p.sql, dialect);
        let a = project.db.query(&p.sql).unwrap();
        let b = project.db.query(&laid).unwrap();
        assert_eq!(a.rows, b.rows, "{laid}");
        n += 1;
    }
    assert!(n >= 35);
}

#[test]
fn background_stages_report_progress_and_results() {
    let f = fixture();
    let mut a = app(&f);
    // Evaluation from the UI (the rules backend, offline) lands as a new run in the view.
    let before = f.store.eval_runs().unwrap().len();
    let cmds = a.handle_key(ctrl('e'));
    assert!(text(&draw(&mut a, 110, 30)).contains("evaluation starting"));
    perform_all(&mut a, cmds);
    assert_eq!(f.store.eval_runs().unwrap().len(), before + 1);
    assert!(a.message.contains("evaluation run"), "{}", a.message);
    assert!(a.background.is_none());
    run_keys(&mut a, &[key('4')]);
    let newest = f.store.eval_runs().unwrap()[0].id;
    let screen = text(&draw(&mut a, 110, 36));
    assert!(screen.contains(&format!("run {newest})")), "{screen}");
    // The two runs are compared: the fixture's run had right answers the rules model lacks.
    assert!(!a.eval.view.flips.is_empty());
    // Job watch events reload the jobs list.
    let job = f.store.jobs().unwrap()[0].id;
    f.store
        .update_job_status(
            job,
            lode_core::store::JobStatus::Succeeded,
            "done",
            None,
            None,
        )
        .unwrap();
    let reads = a.handle_bg(BgEvent::JobsChanged);
    perform_all(&mut a, reads);
    assert_eq!(
        a.jobs.list[0].status,
        lode_core::store::JobStatus::Succeeded
    );
}

#[test]
fn a_paste_is_one_edit_and_never_a_decision() {
    let f = fixture();
    let mut a = app(&f);
    let id = a.review.rows[0].id;
    // Pasted outside the editor: no key of it acts ("a" would accept).
    let effects = a.handle_paste("aaaa rrrr");
    perform_all(&mut a, effects);
    assert_eq!(f.store.pair(id).unwrap().status, PairStatus::Valid);
    assert!(a.message.contains("paste into the editor"));
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    let effects = a.handle_paste("SELECT name\r\nFROM stores");
    perform_all(&mut a, effects);
    assert_eq!(a.editor.lines(), ["SELECT name", "FROM stores"]);
    assert!(a.editor.dirty);
    run_keys(&mut a, &[code(KeyCode::Esc)]);
    run_keys(&mut a, &[key('r')]);
    let effects = a.handle_paste("duplicate of\nanother pair");
    perform_all(&mut a, effects);
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    let h = f.store.review_history(id).unwrap();
    assert_eq!(
        h.last().unwrap().note.as_deref(),
        Some("duplicate of another pair")
    );
}

#[test]
fn an_unsaved_edit_stays_with_its_pair_and_survives_quitting() {
    let f = fixture();
    let mut a = app(&f);
    let (first, second) = (a.review.rows[0].id, a.review.rows[1].id);
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    run_keys(&mut a, &"SELECT 42".chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::Esc)]);
    // Moving on: the next pair shows its own SQL, not the draft.
    run_keys(&mut a, &[key('j')]);
    assert_eq!(a.review.rows[a.review.cursor].id, second);
    assert!(a.editor.lines().join(" ").contains("region = 'North'"));
    assert!(!a.editor.dirty);
    assert!(
        a.message
            .contains(&format!("pair {first} is kept as a draft"))
    );
    // Saving on the second pair saves its SQL, never the first pair's draft.
    run_keys(&mut a, &[key('e')]);
    run_keys(&mut a, &[ctrl('s')]);
    assert!(f.store.pair(second).unwrap().sql.contains("North"));
    // Back on the first pair: the draft returns, still unsaved in the store.
    run_keys(&mut a, &[key('k')]);
    assert_eq!(a.editor.lines(), ["SELECT 42"]);
    assert!(a.editor.dirty);
    assert!(text(&draw(&mut a, 110, 30)).contains("SQL · draft, not saved"));
    assert_eq!(
        f.store.pair(first).unwrap().sql,
        "SELECT COUNT(*) FROM stores"
    );
    // q keeps the draft in the store and quits; the next session has it back.
    let cmds = a.handle_key(key('q'));
    assert!(a.quit);
    assert!(matches!(cmds.last(), Some(Effect::Quit)), "{cmds:?}");
    perform_all(&mut a, cmds);
    assert_eq!(
        f.store.drafts().unwrap(),
        vec![(first, "SELECT 42".to_string())]
    );
    let mut b = app(&f);
    assert_eq!(b.review.rows[0].id, first);
    assert_eq!(b.editor.lines(), ["SELECT 42"]);
    assert!(b.editor.dirty);
    // D discards it: the stored SQL is back, the store forgets the draft.
    run_keys(&mut b, &[key('D')]);
    assert!(b.editor.lines().join(" ").contains("FROM stores"));
    assert!(!b.editor.dirty);
    assert!(f.store.drafts().unwrap().is_empty());
}

#[test]
fn generation_from_the_ui_shows_progress_and_a_new_queue() {
    let f = fixture();
    let mut a = app(&f);
    let before = a.review.run_id;
    let cmds = a.handle_key(ctrl('g'));
    assert!(matches!(cmds.as_slice(), [Effect::Generate]));
    assert!(text(&draw(&mut a, 110, 30)).contains("generation starting"));
    // Run it the way the loop does, drawing each progress report while it runs.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _guard = rt.enter();
    for c in cmds {
        lode::tui::perform(c, &a, &tx);
    }
    let mut progress_seen = false;
    let reads = loop {
        let ev = rt
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(300), rx.recv()).await
            })
            .expect("generation finished")
            .unwrap();
        let done = matches!(
            ev,
            BgEvent::Stage(StageEvent::Finished { .. } | StageEvent::Failed { .. })
        );
        if let BgEvent::Stage(StageEvent::Progress { done, total, .. }) = &ev {
            progress_seen = true;
            let shown = format!("generating {done}/{total}");
            a.handle_bg(ev.clone());
            assert!(text(&draw(&mut a, 110, 30)).contains(&shown), "{shown}");
            continue;
        }
        let reads = a.handle_bg(ev);
        if done {
            break reads;
        }
    };
    // The new queue, evaluations and jobs are read the way the loop reads them.
    drop(_guard);
    perform_all(&mut a, reads);
    assert!(progress_seen, "no progress reported");
    assert!(
        a.message.contains("finished with profile") && a.message.contains("valid pairs"),
        "{}",
        a.message
    );
    // The reviewer keeps their place; the new run is one key away.
    assert_eq!(a.review.run_id, before, "the queue stays on its run");
    assert!(
        a.message.contains("R shows the newest run"),
        "{}",
        a.message
    );
    assert!(a.background.is_none());
    run_keys(&mut a, &[key('R')]);
    assert_ne!(a.review.run_id, before);
    assert!(!a.review.rows.is_empty());
}

#[test]
fn cancelling_a_job_asks_first() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('5')]);
    let job = a.jobs.list[0].id;
    assert!(a.handle_key(key('c')).is_empty());
    assert!(text(&draw(&mut a, 110, 30)).contains(&format!("Cancel tuning job {job}? y/n")));
    assert!(a.handle_key(key('n')).is_empty());
    assert_eq!(a.mode, Mode::Normal);
    run_keys(&mut a, &[key('c')]);
    let cmds = a.handle_key(key('y'));
    assert!(matches!(cmds.as_slice(), [Effect::CancelJob(id)] if *id == job));
}

#[test]
fn a_bad_keymap_or_theme_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let path = dir.path().join("config.yml");
    let original = std::fs::read_to_string(&path).unwrap();
    // The error and the line number of `needle` in the config written.
    let with = |ui: &str, needle: &str| {
        let text = format!("{original}\nui:\n{ui}");
        std::fs::write(&path, &text).unwrap();
        let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let project = Project::load(&path).unwrap();
        let (store, _) = project.open_store().unwrap();
        let err = lode::tui::build_app(
            Arc::new(project),
            Arc::new(store),
            lode_core::tasks::model::ModelRequest::default_model(),
        )
        .err()
        .expect("refused")
        .to_string();
        (err, line)
    };
    let (err, line) = with("  keymap:\n    run: f5\n    accept: \"y\"\n", "accept:");
    assert!(
        err.contains(&format!("config.yml:{line}:")),
        "the accept line: {err}"
    );
    assert!(
        err.contains("`accept` and `copy`") && err.contains("another key"),
        "{err}"
    );
    let (err, line) = with("  theme: solarized\n", "theme: solarized");
    assert!(err.contains(&format!("config.yml:{line}:")), "{err}");
    assert!(err.contains("use ansi16 or truecolor"), "{err}");
}

#[test]
fn the_queue_switches_between_runs() {
    let f = fixture();
    let run2 = f
        .store
        .create_run(&NewRun {
            kind: lode_core::store::RunKind::Import,
            snapshot_id: None,
            profile: "rules".into(),
            config_json: "{}".into(),
        })
        .unwrap();
    f.store
        .insert_pairs(
            run2,
            &[NewPair {
                origin_key: "import:0".into(),
                generator: "import".into(),
                parent_gold_id: None,
                parent_pair_id: None,
                question: "How many products are active?".into(),
                sql: "SELECT COUNT(*) FROM products WHERE active = 1".into(),
                status: Some(PairStatus::Valid),
                notes: Default::default(),
                template: None,
                result_fingerprint: None,
                analysis: None,
            }],
        )
        .unwrap();
    let mut a = app(&f);
    // The newest run first.
    assert_eq!(a.review.run_id, Some(run2));
    assert_eq!(a.review.rows.len(), 1);
    run_keys(&mut a, &[key('R')]);
    assert_eq!(a.review.run_id, Some(run2 - 1));
    assert_eq!(a.review.rows.len(), 6);
    assert!(text(&draw(&mut a, 110, 30)).contains(&format!("Queue run {}:", run2 - 1)));
    run_keys(&mut a, &[key('R')]);
    assert_eq!(a.review.run_id, None);
    assert_eq!(a.review.rows.len(), 7);
    assert!(text(&draw(&mut a, 110, 30)).contains("Queue (all runs):"));
    run_keys(&mut a, &[key('R')]);
    assert_eq!(a.review.run_id, Some(run2));
}

#[test]
fn a_decision_says_saving_until_the_store_has_it() {
    let f = fixture();
    let mut a = app(&f);
    let id = a.review.rows[0].id;
    let effects = a.handle_key(key('a'));
    // Asked for, not yet written: the footer must not claim it is saved.
    assert_eq!(f.store.pair(id).unwrap().status, PairStatus::Valid);
    let screen = text(&draw(&mut a, 110, 30));
    assert!(screen.contains(&format!("pair {id} saving…")), "{screen}");
    assert!(!screen.contains("(saved)"), "{screen}");
    assert!(a.saving());
    perform_all(&mut a, effects);
    assert_eq!(f.store.pair(id).unwrap().status, PairStatus::Accepted);
    assert!(text(&draw(&mut a, 110, 30)).contains(&format!("pair {id} accepted (saved)")));
    assert!(!a.saving());
}

#[test]
fn writes_go_to_the_store_one_at_a_time_in_key_order() {
    let f = fixture();
    let mut a = app(&f);
    let id = a.review.rows[0].id;
    // Accept, back up, undo, all before the store has answered.
    let effects = press(&mut a, &[key('a'), key('k'), key('u')]);
    let writes = effects
        .iter()
        .filter(|e| matches!(e, Effect::Write(_)))
        .count();
    assert_eq!(writes, 1, "the undo waits for the accept: {effects:?}");
    perform_all(&mut a, effects);
    let actions: Vec<String> = f
        .store
        .review_history(id)
        .unwrap()
        .iter()
        .map(|r| r.action.as_str().to_string())
        .collect();
    assert_eq!(actions, ["accept", "undo"]);
    assert_eq!(f.store.pair(id).unwrap().status, PairStatus::Valid);
    assert!(
        a.message.contains(&format!("pair {id} back to valid")),
        "{}",
        a.message
    );
}

#[test]
fn quitting_waits_for_a_write_under_way() {
    let f = fixture();
    let mut a = app(&f);
    let id = a.review.rows[0].id;
    let mut effects = a.handle_key(key('a'));
    effects.extend(a.handle_key(key('q')));
    assert!(
        a.quit && a.saving(),
        "the loop keeps going until the write is back"
    );
    assert!(a.message.contains("saving"), "{}", a.message);
    perform_all(&mut a, effects);
    assert!(!a.saving());
    assert_eq!(f.store.pair(id).unwrap().status, PairStatus::Accepted);
}

#[test]
fn a_failed_store_read_is_shown_not_an_empty_view() {
    let f = fixture();
    let mut a = app(&f);
    let id = a.review.rows[0].id;
    a.handle_bg(BgEvent::Detail {
        id,
        detail: Err(format!("cannot read pair {id}: database is locked")),
    });
    let screen = text(&draw(&mut a, 110, 30));
    assert!(
        screen.contains(&format!("cannot read pair {id}: database is locked")),
        "{screen}"
    );
    a.handle_bg(BgEvent::Jobs(Err("disk I/O error".into())));
    assert!(text(&draw(&mut a, 110, 30)).contains("cannot read the tuning jobs: disk I/O error"));
}

#[test]
fn the_footer_offers_the_focused_panes_keys_as_bound() {
    let mut m = std::collections::BTreeMap::new();
    m.insert("accept".to_string(), "y".to_string());
    m.insert("copy".to_string(), "Y".to_string());
    let f = fixture();
    let theme = Theme::load("ansi16", false).unwrap();
    let mut a = started(App::new(
        Arc::clone(&f.project),
        Arc::clone(&f.store),
        Keymap::new(&m).unwrap(),
        theme,
    ));
    let screen = text(&draw(&mut a, 110, 30));
    assert!(screen.contains("y accept  r reject"), "{screen}");
    // In the editor the footer offers the editor's keys.
    run_keys(&mut a, &[key('e')]);
    let screen = text(&draw(&mut a, 110, 30));
    assert!(screen.contains("ctrl-s save"), "{screen}");
    assert!(!screen.contains("r reject"), "{screen}");
    // The jobs view offers its own.
    run_keys(&mut a, &[code(KeyCode::Esc), key('5')]);
    let hints: Vec<String> = a.hints().iter().map(|h| h.label.clone()).collect();
    assert_eq!(hints, ["cancel job", "refresh", "help", "quit"]);
}

// ---------------------------------------------------------------------------------------------
// What misled a reviewer (issue 16): each flow failed before its fix.

/// A long statement is shown whole: wrapped and laid out by clause, with a marker and a scroll
/// when the pane is too short, never cut silently.
#[test]
fn a_long_sql_is_shown_whole_or_says_there_is_more() {
    let f = fixture();
    // Pair 3 joins, groups and orders: 5 lines laid out. At 80×24 they all show; at the
    // smallest window (60×16) the pane is shorter than the statement and says so.
    let mut a = app(&f);
    run_keys(&mut a, &[key('j'), key('j')]);
    let last_clause = "ORDER BY orders DESC";
    let full = text(&draw(&mut a, 80, 24));
    assert!(full.contains(last_clause), "{full}");
    let small = text(&draw(&mut a, 60, 16));
    assert!(!small.contains(last_clause), "{small}");
    assert!(small.contains("more line"), "no marker:\n{small}");
    // Scrolling brings the rest into view, and says what is above.
    run_keys(&mut a, &[key('J'), key('J'), key('J')]);
    let scrolled = text(&draw(&mut a, 60, 16));
    assert!(scrolled.contains(last_clause), "{scrolled}");
    assert!(scrolled.contains("above"), "{scrolled}");
    // A line longer than the pane wraps instead of being cut: every word of it shows.
    let long = "SELECT first_name, last_name, hourly_wage FROM employees WHERE hourly_wage > 15 \
                AND last_name NOT IN ('Someone', 'Else', 'Entirely', 'Different') ORDER BY hourly_wage DESC";
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    // One line as typed (no layout): the read view must wrap it.
    run_keys(&mut a, &long.chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::Esc)]);
    let mut seen = String::new();
    for _ in 0..6 {
        seen.push_str(&text(&draw(&mut a, 80, 24)));
        run_keys(&mut a, &[key('J')]);
    }
    for word in ["'Different')", "hourly_wage", "DESC"] {
        assert!(seen.contains(word), "{word} never shown:\n{seen}");
    }
}

/// The results are always those of the selected pair: run automatically (after the keys
/// settle), titled with the pair, and marked stale while they are another's.
#[test]
fn results_belong_to_the_selected_pair() {
    let f = fixture();
    let mut a = app(&f);
    let first = a.review.rows[0].id;
    // The first pair's results are there without F5.
    let screen = text(&draw(&mut a, 110, 30));
    assert!(
        screen.contains(&format!("pair #{first} · stored SQL")),
        "{screen}"
    );
    // Moving on: until the new pair's SQL has run, the old rows are marked stale.
    let cmds = press(&mut a, &[key('j')]);
    let second = a.review.rows[a.review.cursor].id;
    let moving = text(&draw(&mut a, 110, 30));
    assert!(moving.contains("STALE"), "{moving}");
    perform_all(&mut a, cmds);
    let shown = text(&draw(&mut a, 110, 30));
    assert!(
        shown.contains(&format!("pair #{second} · stored SQL")),
        "{shown}"
    );
    assert!(!shown.contains("STALE"), "{shown}");
    // `j j j F5 a` on pair 5: the rows are pair 5's, never those of the pair before.
    run_keys(&mut a, &[key('j'), key('j'), key('j')]);
    let id = a.review.rows[a.review.cursor].id;
    run_keys(&mut a, &[code(KeyCode::F(5))]);
    let screen = text(&draw(&mut a, 110, 30));
    assert!(screen.contains(&format!("pair #{id}")), "{screen}");
    // Coming back to a pair shows its cached results at once (no query waits).
    let cmds = press(&mut a, &[key('g')]);
    assert!(
        !cmds.iter().any(|c| matches!(c, Effect::RunQuery { .. })),
        "{cmds:?}"
    );
    perform_all(&mut a, cmds);
    assert!(matches!(a.results.state, Results::Done(_)));
    assert!(text(&draw(&mut a, 110, 30)).contains(&format!("pair #{first}")));
    // An edit on screen makes the results stale until it runs.
    run_keys(&mut a, &[key('e'), code(KeyCode::End), key(' ')]);
    assert!(text(&draw(&mut a, 110, 30)).contains("STALE"));
}

/// `a` on a pair with a draft asks which SQL to accept; `s` saves the draft and accepts.
#[test]
fn accepting_a_pair_with_a_draft_asks_which_sql() {
    let f = fixture();
    let mut a = app(&f);
    let first = a.review.rows[0].id;
    let draft = "SELECT COUNT(*) FROM stores WHERE region = 'South'";
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    run_keys(&mut a, &draft.chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::Esc), key('j'), key('k')]);
    assert_eq!(a.review.rows[a.review.cursor].id, first);
    // a asks; Esc cancels and nothing is written.
    run_keys(&mut a, &[key('a')]);
    let asked = text(&draw(&mut a, 110, 30));
    assert!(asked.contains("unsaved SQL draft"), "{asked}");
    run_keys(&mut a, &[code(KeyCode::Esc)]);
    assert_eq!(f.store.pair(first).unwrap().status, PairStatus::Valid);
    // a, s: the draft is validated, saved and accepted.
    run_keys(&mut a, &[key('a'), key('s')]);
    let p = f.store.pair(first).unwrap();
    assert_eq!(p.status, PairStatus::Accepted);
    assert_eq!(p.sql, draft);
    assert!(
        f.store.drafts().unwrap().is_empty(),
        "a saved draft is forgotten"
    );

    // a, a on another pair's draft accepts the stored SQL and keeps the draft.
    run_keys(&mut a, &[key('j')]);
    let next = a.review.rows[a.review.cursor].id;
    let stored = f.store.pair(next).unwrap().sql;
    run_keys(
        &mut a,
        &[key('e'), code(KeyCode::End), key(' '), code(KeyCode::Esc)],
    );
    run_keys(&mut a, &[key('a'), key('a')]);
    let p = f.store.pair(next).unwrap();
    assert_eq!(p.status, PairStatus::Accepted);
    assert_eq!(p.sql, stored);
}

/// A rejected pair shows why, and its history; a canned reason is one number key away.
#[test]
fn reject_reasons_and_history_show_in_the_pair_pane() {
    let f = fixture();
    let mut a = app(&f);
    let first = a.review.rows[0].id;
    // r then 2: the second canned reason (ui.reject_reasons), no typing.
    run_keys(&mut a, &[key('r')]);
    let asked = text(&draw(&mut a, 200, 40));
    assert!(asked.contains("2 wrong filter or value"), "{asked}");
    run_keys(&mut a, &[key('2')]);
    let history = f.store.review_history(first).unwrap();
    assert_eq!(
        history.last().unwrap().note.as_deref(),
        Some("wrong filter or value")
    );
    run_keys(&mut a, &[key('k')]);
    assert_eq!(a.review.rows[a.review.cursor].id, first);
    let screen = text(&draw(&mut a, 110, 30));
    assert!(
        screen.contains("rejected: wrong filter or value"),
        "{screen}"
    );
    assert!(screen.contains("reject (valid → rejected)"), "{screen}");
    // Undone, the decision stays in the history, marked.
    run_keys(&mut a, &[key('u')]);
    let screen = text(&draw(&mut a, 110, 30));
    assert!(screen.contains("· undone"), "{screen}");
    assert!(!screen.contains("rejected: wrong"), "{screen}");
}

/// A duplicate says what it repeats, `p` goes there, and `a` on it warns once.
#[test]
fn a_duplicate_says_what_it_repeats_and_accepting_it_warns_once() {
    let f = fixture();
    let first = f.store.pair_summaries(&Default::default()).unwrap()[0].id;
    let dup = f
        .store
        .pair_summaries(&Default::default())
        .unwrap()
        .into_iter()
        .find(|p| p.status == PairStatus::Duplicate)
        .unwrap()
        .id;
    f.store
        .mark_repeat(
            dup,
            PairStatus::Duplicate,
            &serde_json::json!({"pair": first, "question": "How many stores are there?"}),
        )
        .unwrap();
    let mut a = app(&f);
    // The "all" filter shows it.
    run_keys(&mut a, &[key('f'); 6]);
    let i = a.review.rows.iter().position(|r| r.id == dup).unwrap();
    a.review.cursor = i;
    run_keys(&mut a, &[key('s'), key('k')]);
    assert_eq!(a.review.rows[a.review.cursor].id, dup);
    let screen = text(&draw(&mut a, 110, 30));
    assert!(
        screen.contains(&format!("duplicate of pair #{first}: How many stores")),
        "{screen}"
    );
    run_keys(&mut a, &[key('a')]);
    assert_eq!(f.store.pair(dup).unwrap().status, PairStatus::Duplicate);
    assert!(
        a.message.contains("again accepts it anyway"),
        "{}",
        a.message
    );
    run_keys(&mut a, &[key('a')]);
    assert_eq!(f.store.pair(dup).unwrap().status, PairStatus::Accepted);
    // p jumps to the pair it repeats.
    run_keys(&mut a, &[key('k')]);
    while a.review.rows[a.review.cursor].id != dup {
        run_keys(&mut a, &[key('j')]);
    }
    run_keys(&mut a, &[key('p')]);
    assert_eq!(a.review.rows[a.review.cursor].id, first);
}

/// The pair's SQL against its gold parent's: only what the generator changed is marked.
#[test]
fn the_gold_parent_diff_marks_only_what_changed() {
    let f = fixture();
    // Pair 3 came from the gold "online orders" pair; make it differ by one literal.
    let id = f.store.pair_summaries(&Default::default()).unwrap()[2].id;
    let gold = "SELECT COUNT(*) AS online_orders FROM orders WHERE channel = 'online'";
    let db = rusqlite::Connection::open(f.project.dir().join(".lode/lode.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute(
        "UPDATE pairs SET sql = ?1 WHERE id = ?2",
        rusqlite::params![gold.replace("'online'", "'store'"), id],
    )
    .unwrap();
    let mut a = app(&f);
    run_keys(&mut a, &[key('j'), key('j')]);
    assert_eq!(a.review.rows[a.review.cursor].id, id);
    let screen = text(&draw(&mut a, 200, 60));
    assert!(screen.contains("from gold:"), "{screen}");
    assert!(
        screen.contains(
            "SELECT COUNT(*) AS online_orders FROM orders WHERE channel = [-'online'-] {+'store'+}"
        ),
        "{screen}"
    );
    // Exactly one token removed and one added.
    assert_eq!(screen.matches("[-").count(), 1, "{screen}");
    assert_eq!(screen.matches("{+").count(), 1, "{screen}");
}

/// Results: numbers right-aligned, long cells cut with `…`, and one row as a record (`v`).
#[test]
fn results_align_numbers_cut_long_cells_and_show_a_record() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    let sql = "SELECT 'a very long text value that is much wider than any column may be shown at \
               this width of the results pane' AS note, 7 AS n, 12345 AS big";
    run_keys(&mut a, &sql.chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::F(5)), code(KeyCode::Esc)]);
    let buf = draw(&mut a, 110, 30);
    let screen = text(&buf);
    assert!(screen.contains('…'), "{screen}");
    // Numbers right-aligned: in a column 5 wide (12345), the 7 sits in its last cell.
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    let numbers = "SELECT 7 AS num UNION ALL SELECT 12345";
    run_keys(&mut a, &numbers.chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::F(5)), code(KeyCode::Esc)]);
    let buf = draw(&mut a, 110, 30);
    let (bx, hy) = find(&buf, "│num").expect("the header");
    let hx = bx + 1;
    assert_eq!(buf[(hx + 4, hy + 1)].symbol(), "7", "{}", text(&buf));
    assert_eq!(buf[(hx, hy + 1)].symbol(), " ", "{}", text(&buf));
    // Back to the wide row for the record view.
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    run_keys(&mut a, &sql.chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::F(5)), code(KeyCode::Esc)]);
    run_keys(&mut a, &[key('v')]);
    let record = text(&draw(&mut a, 110, 30));
    assert!(record.contains("note: a very long"), "{record}");
    assert!(record.contains("n: 7"), "{record}");
    assert!(record.contains("row 1 of 1"), "{record}");
}

/// The question is a real text field (a cursor that moves); a search with an unknown status
/// says so; pasted CR line breaks are new lines in the editor.
#[test]
fn the_question_field_has_a_cursor_and_searches_say_what_they_cannot_match() {
    let f = fixture();
    let mut a = app(&f);
    let id = a.review.rows[0].id;
    run_keys(&mut a, &[key('E'), code(KeyCode::Home)]);
    run_keys(&mut a, &"Exactly: ".chars().map(key).collect::<Vec<_>>());
    // Delete the last character from the end.
    run_keys(&mut a, &[code(KeyCode::End), code(KeyCode::Backspace)]);
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    assert_eq!(
        f.store.pair(id).unwrap().question,
        "Exactly: How many stores are there"
    );

    let mut keys = vec![key('/')];
    keys.extend("status:bogus".chars().map(key));
    keys.push(code(KeyCode::Enter));
    run_keys(&mut a, &keys);
    assert!(
        a.message.contains("status:bogus matches no known status"),
        "{}",
        a.message
    );
    assert!(a.review.rows.is_empty());

    run_keys(&mut a, &[code(KeyCode::Esc)]);
    let mut a = app(&f);
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    a.handle_paste("SELECT 1\rFROM stores\r\nWHERE 1");
    assert_eq!(a.editor.lines(), ["SELECT 1", "FROM stores", "WHERE 1"]);
}

/// Tab completes names from the schema; an error says where it is.
#[test]
fn the_editor_completes_names_and_locates_errors() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('e')]);
    clear_editor(&mut a);
    run_keys(
        &mut a,
        &"SELECT hourly_w".chars().map(key).collect::<Vec<_>>(),
    );
    run_keys(&mut a, &[code(KeyCode::Tab)]);
    assert_eq!(a.editor.lines(), ["SELECT hourly_wage"]);
    run_keys(&mut a, &" FROM emp".chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::Tab)]);
    // Several names start so: their common start, and the candidates listed.
    assert_eq!(a.editor.lines(), ["SELECT hourly_wage FROM employee"]);
    assert!(a.message.contains("employees"), "{}", a.message);
    run_keys(&mut a, &[key('s')]);
    // A second line with a misspelt keyword: the error names line 2.
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    run_keys(
        &mut a,
        &"WHERE hourly_wage > 1 ORDR BY 1"
            .chars()
            .map(key)
            .collect::<Vec<_>>(),
    );
    run_keys(&mut a, &[code(KeyCode::F(5))]);
    match &a.results.state {
        Results::Error(e) => assert!(e.contains("(at line 2, column"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The review view at the smallest usual terminal and a large one: every pane fits, nothing
/// is cut into a wrong number.
#[test]
fn review_snapshots_at_80x24_and_200x60() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('j'), key('j')]);
    insta::assert_snapshot!("review_80x24", text(&draw(&mut a, 80, 24)));
    insta::assert_snapshot!("review_200x60", text(&draw(&mut a, 200, 60)));
}

/// `y` with nothing to copy says so; the search in effect stays visible at 80×24.
#[test]
fn copy_with_nothing_says_so_and_the_search_stays_in_sight() {
    let f = fixture();
    let mut a = app(&f);
    let mut keys = vec![key('/')];
    keys.extend("nothing-matches-this-word".chars().map(key));
    keys.push(code(KeyCode::Enter));
    run_keys(&mut a, &keys);
    assert!(a.review.rows.is_empty());
    let cmds = a.handle_key(key('y'));
    assert!(
        !cmds.iter().any(|c| matches!(c, Effect::Copy(_))),
        "{cmds:?}"
    );
    assert!(a.message.starts_with("nothing to copy"), "{}", a.message);
    let screen = text(&draw(&mut a, 80, 24));
    assert!(screen.contains("/nothing-matches"), "{screen}");
}

#[test]
fn enter_on_an_audit_finding_opens_its_gold_sql_in_the_editor_with_the_question() {
    use lode_core::pipeline::audit::{AuditSet, Finding, FindingKind};
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('4')]);
    assert_eq!(a.tab, Tab::Eval);
    a.eval.view.audit = vec![Finding {
        set: AuditSet::Eval,
        position: 3,
        file: Some("gold.jsonl".into()),
        line: Some(3),
        question: "Which three stores opened first?".into(),
        sql: "SELECT name FROM stores LIMIT 3".into(),
        kind: FindingKind::OrderDependent,
        reason: "LIMIT 3 without ORDER BY".into(),
        fix: "add ORDER BY <key> so the rows LIMIT keeps are defined".into(),
    }];
    a.eval.cursor = 0;
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    assert_eq!(a.tab, Tab::Review);
    assert_eq!(a.mode, Mode::Editing);
    assert!(a.editor.text().contains("LIMIT 3"), "{}", a.editor.text());
    let screen = text(&draw(&mut a, 120, 40));
    assert!(
        screen.contains("Which three stores opened first?"),
        "{screen}"
    );
    assert!(screen.contains("gold.jsonl:3"), "{screen}");
    // Saving says where the fix goes instead of writing a pair.
    run_keys(
        &mut a,
        &[KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)],
    );
    assert!(a.message.contains("gold.jsonl:3"), "{}", a.message);
}
