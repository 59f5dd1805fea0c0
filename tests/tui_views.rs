//! The TUI's views at the sizes people run it in (80×24, the smallest 60×16, and 200×60): the
//! evaluation, the schema, the help overlay and the footer fit, elide with `…` what does not,
//! and never cut a number; the 16-colour theme emits only the 16 ANSI colours; the schema
//! shows a column that is both a primary and a foreign key as both; footer messages expire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

#[path = "common/tui_driver.rs"]
mod tui_driver;
use tui_driver::{code, draw, key, perform_all, run_keys};

use lode::tui::app::{App, Mode};
use lode::tui::chrome::{Chrome, MESSAGE_KEYS, MESSAGE_TTL};
use lode::tui::keymap::{Action, Keymap};
use lode::tui::theme::Theme;
use lode_core::pipeline::model_eval::{Prediction, evaluate_model};
use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::{NewPair, NewRun, NewValidation, PairStatus, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    project: Arc<Project>,
    store: Arc<Store>,
}

/// (question, sql, status, a failed attempt before the last)
const PAIRS: &[(&str, &str, PairStatus, Option<&str>)] = &[
    (
        "How many stores are there?",
        "SELECT COUNT(*) FROM stores",
        PairStatus::Valid,
        None,
    ),
    (
        "Which employees earn more than 15 an hour?",
        "SELECT first_name, last_name, hourly_wage FROM employees WHERE hourly_wage > 15",
        PairStatus::Fixed,
        Some("no such column: wage"),
    ),
    (
        "What is the average tip per order?",
        "SELECT AVG(tip) FROM orders",
        PairStatus::Invalid,
        Some("no such column: tip"),
    ),
    (
        "Count the stores.",
        "SELECT COUNT(*) FROM stores",
        PairStatus::Duplicate,
        None,
    ),
];

/// The demo project with a generation run of a few pairs, an evaluation (right on even
/// positions, a wrong query on odd ones, no SQL on the last) and a tuning job with losses.
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
    for (i, (question, sql, status, failure)) in PAIRS.iter().enumerate() {
        let a = lode_core::sql::analyze::analyze(sql, Some(&project.schema)).unwrap();
        let pair = NewPair {
            origin_key: format!("pattern:{i}"),
            generator: "pattern".into(),
            parent_gold_id: None,
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
        let mut attempts: Vec<NewValidation> = failure
            .iter()
            .map(|e| NewValidation {
                pair_id: 0,
                attempt: 1,
                sql: sql.to_string(),
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
            attempts.push(NewValidation {
                pair_id: 0,
                attempt: attempts.len() as i64 + 1,
                sql: sql.to_string(),
                ok: true,
                error_kind: None,
                error: None,
                row_count: Some(1),
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

/// The app after its first reads, with the 16-colour theme.
fn app(f: &Fixture) -> App {
    let mut a = App::new(
        Arc::clone(&f.project),
        Arc::clone(&f.store),
        Keymap::new(&Default::default()).unwrap(),
        Theme::load("ansi16", false).unwrap(),
    );
    let effects = a.start();
    perform_all(&mut a, effects);
    a
}

/// The screen's lines, right spaces trimmed, times (which change run to run) masked.
fn lines(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
            mask(line.trim_end())
        })
        .collect()
}

fn text(buf: &Buffer) -> String {
    lines(buf).join("\n") + "\n"
}

/// 2026-11-25T03:36:09.392Z → <time>
fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 24 <= chars.len()
            && chars[i..i + 4].iter().all(char::is_ascii_digit)
            && chars[i + 4] == '-'
            && chars[i + 10] == 'T'
            && chars[i + 23] == 'Z'
        {
            out.push_str("<time>                  ");
            i += 24;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The footer: the screen's last two lines.
fn footer(buf: &Buffer) -> String {
    let l = lines(buf);
    l[l.len() - 2..].join("\n")
}

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];

// ---------------------------------------------------------------------------------------------
// Snapshots

#[test]
fn evaluation_view_snapshots() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('4')]);
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("evaluation_{w}x{h}"), text(&draw(&mut a, w, h)));
    }
}

#[test]
fn schema_view_snapshots() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('2')]);
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("schema_{w}x{h}"), text(&draw(&mut a, w, h)));
    }
}

#[test]
fn help_overlay_snapshots() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('2'), key('?')]);
    assert_eq!(a.mode, Mode::Help);
    insta::assert_snapshot!("help_200x60", text(&draw(&mut a, 200, 60)));
    assert_eq!(a.chrome.help_pages(), 1, "200×60 shows every key at once");
    // 80×24 takes pages: the movement keys turn them, another key closes.
    insta::assert_snapshot!("help_80x24_page1", text(&draw(&mut a, 80, 24)));
    let pages = a.chrome.help_pages();
    assert!(pages > 1, "80×24 cannot show every key at once");
    run_keys(&mut a, &[key('j')]);
    assert_eq!(a.mode, Mode::Help, "j turns the page, it does not close");
    insta::assert_snapshot!("help_80x24_page2", text(&draw(&mut a, 80, 24)));
    run_keys(&mut a, &[key('x')]);
    assert_eq!(a.mode, Mode::Normal);
}

#[test]
fn footer_snapshots() {
    let f = fixture();
    let mut a = app(&f);
    let mut out = String::new();
    for (w, h) in SIZES {
        for (k, view) in [('1', "review"), ('2', "schema"), ('4', "evaluation")] {
            run_keys(&mut a, &[key(k)]);
            a.message =
                format!("{view}: pair 1234 accepted (saved) and 56789 more words to say here");
            a.background = Some("evaluating 12/345 pairs".into());
            out += &format!("--- {view} {w}×{h}\n{}\n", footer(&draw(&mut a, w, h)));
        }
    }
    insta::assert_snapshot!("footers", out);
}

// ---------------------------------------------------------------------------------------------
// Fitting

/// The accuracy rows of the evaluation view: each count shows whole (never `1/1` for
/// `1/11`), beside its name or the name elided.
#[test]
fn evaluation_counts_are_whole_at_every_size() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('4')]);
    let run = a.eval.view.run.clone().expect("an evaluation is shown");
    let summary: serde_json::Value =
        serde_json::from_str(run.summary_json.as_deref().unwrap()).unwrap();
    let mut expected: Vec<(String, String)> = Vec::new();
    for src in [&summary["summary"]["by_hardness"], &summary["by_concept"]] {
        for (k, v) in src.as_object().unwrap() {
            expected.push((k.clone(), format!("{}/{}", v[1], v[0])));
        }
    }
    assert!(
        expected
            .iter()
            .any(|(_, c)| c.split('/').nth(1).unwrap().len() > 1),
        "the fixture has a count of two digits"
    );
    for (w, h) in [(80, 24), (60, 16), (200, 60)] {
        let screen = lines(&draw(&mut a, w, h));
        let mut checked = 0;
        let mut two_digits = 0;
        for line in &screen {
            // The accuracy pane is the first box of the line.
            let Some(left) = line.split('│').nth(1) else {
                continue;
            };
            let words: Vec<&str> = left.split_whitespace().collect();
            let [name, count, ..] = words.as_slice() else {
                continue;
            };
            if !count.contains('/') || !count.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            let stem = name.trim_end_matches('…');
            let candidates: Vec<&(String, String)> = expected
                .iter()
                .filter(|(k, _)| {
                    if name.ends_with('…') {
                        k.starts_with(stem)
                    } else {
                        k == name
                    }
                })
                .collect();
            assert!(
                !candidates.is_empty(),
                "{w}×{h}: no row named {name}:\n{}",
                screen.join("\n")
            );
            assert!(
                candidates.iter().any(|(_, c)| c == count),
                "{w}×{h}: {name} shows {count}, the evaluation has {:?}\n{}",
                candidates,
                screen.join("\n")
            );
            checked += 1;
            if count.split('/').nth(1).unwrap().len() > 1 {
                two_digits += 1;
            }
        }
        assert!(
            checked >= 5,
            "{w}×{h}: {checked} rows\n{}",
            screen.join("\n")
        );
        assert!(
            two_digits >= 1,
            "{w}×{h}: a two-digit count is shown\n{}",
            screen.join("\n")
        );
        // Rows that do not fit are counted, not cut off silently.
        if expected.len() + 6 > h as usize {
            assert!(
                screen.iter().any(|l| l.contains("more lines")),
                "{w}×{h}\n{}",
                screen.join("\n")
            );
        }
    }
}

#[test]
fn the_footer_keeps_help_and_quit_and_elides_the_rest() {
    let f = fixture();
    let mut a = app(&f);
    for (w, h) in [(80, 24), (60, 16)] {
        for k in ['1', '2', '3', '4', '5'] {
            run_keys(&mut a, &[key(k)]);
            let buf = draw(&mut a, w, h);
            let l = lines(&buf);
            let hints = &l[l.len() - 2];
            assert!(hints.contains("? help"), "{w}×{h} view {k}: {hints}");
            assert!(hints.contains("q quit"), "{w}×{h} view {k}: {hints}");
            // Hints left out are said with `…`, never cut off at the edge.
            let all: Vec<String> = a
                .hints()
                .iter()
                .map(|h| format!("{} {}", h.keys, h.label))
                .collect();
            let shown = all.iter().filter(|h| hints.contains(h.as_str())).count();
            if shown < all.len() {
                assert!(hints.contains('…'), "{w}×{h} view {k}: {hints}");
            }
            assert!(hints.chars().count() <= w as usize);
        }
    }
    // A long message gives way before a number would be cut; the background task stays.
    run_keys(&mut a, &[key('2')]);
    a.message = format!("{} 1234567890 pairs", "x".repeat(60));
    a.background = Some("generating 12/345 pairs".into());
    let l = lines(&draw(&mut a, 80, 24));
    let status = &l[l.len() - 1];
    assert!(status.contains("⟳ generating 12/345 pairs"), "{status}");
    assert!(status.contains('…'), "{status}");
    assert!(!status.contains("123"), "a number cut short: {status}");
}

#[test]
fn the_help_lists_every_key_whole_grouped_by_pane() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('?')]);
    for (w, h) in [(80, 24), (60, 16), (200, 60)] {
        a.chrome.help_page = 0;
        let mut seen = String::new();
        draw(&mut a, w, h);
        let pages = a.chrome.help_pages();
        for p in 0..pages {
            a.chrome.help_page = p;
            seen += &text(&draw(&mut a, w, h));
        }
        // Every description, whole; every heading.
        for (action, _, description, _, _) in Action::TABLE {
            assert!(
                seen.contains(description),
                "{w}×{h}: {action:?} `{description}` not shown whole in {pages} pages:\n{seen}"
            );
        }
        for heading in [
            "App",
            "Queue",
            "Pair",
            "Editor",
            "Results",
            "Schema",
            "Coverage",
            "Evaluation",
            "Jobs",
        ] {
            assert!(seen.contains(heading), "{w}×{h}: {heading}\n{seen}");
        }
        if pages > 1 {
            assert!(seen.contains(&format!("page {pages}/{pages}")), "{w}×{h}");
        }
    }
    // The groups follow the panes: each pane's keys under its heading, the editor's
    // bindings under Editor, the keys of every view under App.
    let groups = lode::tui::chrome::help_groups(&a);
    let under = |title: &str, description: &str| {
        groups
            .iter()
            .find(|g| g.title == title)
            .is_some_and(|g| g.entries.iter().any(|e| e.description == description))
    };
    assert!(under("Jobs", Action::CancelJob.description()));
    assert!(under("Editor", Action::SaveEdit.description()));
    assert!(under("Editor", Action::LeaveEditor.description()));
    assert!(under("Queue", Action::Accept.description()));
    assert!(under("Schema", Action::InsertName.description()));
    assert!(under("App", Action::Quit.description()));
    assert!(under("App", Action::PageDown.description()));
    assert!(!under("App", Action::CancelJob.description()));
}

/// A queue search that cannot match as meant says so in the footer as it is typed, and
/// while it holds; the schema's search (plain words) does not.
#[test]
fn a_search_for_an_unknown_status_says_it_matches_none() {
    let f = fixture();
    let mut a = app(&f);
    let typed = |a: &mut App, s: &str| {
        run_keys(a, &[key('/')]);
        run_keys(a, &s.chars().map(key).collect::<Vec<_>>());
    };
    typed(&mut a, "status:bogus");
    let l = lines(&draw(&mut a, 200, 60));
    assert!(l[59].starts_with("search: status:bogus"), "{}", l[59]);
    assert!(
        l[59].contains("status:bogus matches no known status"),
        "{}",
        l[59]
    );
    let l = lines(&draw(&mut a, 80, 24));
    assert!(
        l[23].contains("status:bogus matches no known status"),
        "{}",
        l[23]
    );
    assert!(l[23].chars().count() <= 80);
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    a.message.clear();
    let l = lines(&draw(&mut a, 200, 60));
    assert!(
        l[59].contains("status:bogus matches no known status"),
        "{}",
        l[59]
    );
    // A known status: no warning.
    run_keys(&mut a, &[key('/'), code(KeyCode::Esc)]);
    typed(&mut a, "status:valid");
    assert!(!text(&draw(&mut a, 200, 60)).contains("no known status"));
    run_keys(&mut a, &[code(KeyCode::Esc), key('2')]);
    typed(&mut a, "status:bogus");
    assert!(!text(&draw(&mut a, 200, 60)).contains("no known status"));
}

// ---------------------------------------------------------------------------------------------
// Colours

fn named16(c: Color) -> bool {
    matches!(
        c,
        Color::Reset
            | Color::Black
            | Color::Red
            | Color::Green
            | Color::Yellow
            | Color::Blue
            | Color::Magenta
            | Color::Cyan
            | Color::Gray
            | Color::DarkGray
            | Color::LightRed
            | Color::LightGreen
            | Color::LightYellow
            | Color::LightBlue
            | Color::LightMagenta
            | Color::LightCyan
            | Color::White
    )
}

fn assert_16(buf: &Buffer, what: &str) {
    for (i, cell) in buf.content().iter().enumerate() {
        assert!(
            named16(cell.fg) && named16(cell.bg),
            "{what}: cell {i} ({:?}) has fg {:?} bg {:?}",
            cell.symbol(),
            cell.fg,
            cell.bg
        );
    }
}

/// Every view, the editor, a query's results, the help and a confirmation drawn with the
/// 16-colour theme: every cell's colours are one of the 16 named colours or the terminal's
/// default.
#[test]
fn the_16_colour_theme_draws_only_the_16_colours() {
    let f = fixture();
    let mut a = app(&f);
    for (w, h) in SIZES {
        for k in ['1', '2', '4', '5'] {
            run_keys(&mut a, &[key(k)]);
            assert_16(&draw(&mut a, w, h), &format!("view {k} at {w}×{h}"));
        }
    }
    // Coverage computed, a query run, the editor, the help, a confirmation.
    run_keys(&mut a, &[key('3')]);
    assert!(a.coverage.coverage.is_some());
    assert_16(&draw(&mut a, 80, 24), "coverage");
    run_keys(&mut a, &[key('1'), code(KeyCode::F(5))]);
    assert_16(&draw(&mut a, 200, 60), "results");
    run_keys(&mut a, &[key('e')]);
    assert_eq!(a.mode, Mode::Editing);
    assert_16(&draw(&mut a, 80, 24), "editor");
    run_keys(&mut a, &[code(KeyCode::Esc), key('?')]);
    assert_16(&draw(&mut a, 80, 24), "help");
    run_keys(&mut a, &[key('x'), key('5'), key('c')]);
    assert!(matches!(a.mode, Mode::Confirm(_)));
    assert_16(&draw(&mut a, 80, 24), "confirmation");
}

/// The selected row reads: the selection's own colours over the whole row, none of the
/// row's colours (a green or yellow span on the cyan selection).
#[test]
fn the_selected_row_is_one_contrasting_pair() {
    let f = fixture();
    let mut a = app(&f);
    let theme = Theme::load("ansi16", false).unwrap();
    let (fg, bg) = (theme.ui.selection_fg.0, theme.ui.selection_bg.0);
    assert_ne!(fg, bg);
    for (k, needle) in [('2', "stores  6 rows"), ('4', "#2 ")] {
        run_keys(&mut a, &[key(k)]);
        let buf = draw(&mut a, 80, 24);
        let l = lines(&buf);
        let y = l
            .iter()
            .position(|line| line.contains(needle))
            .expect(needle) as u16;
        let cells: Vec<_> = (0..buf.area.width)
            .map(|x| &buf[(x, y)])
            .filter(|c| c.bg == bg)
            .collect();
        assert!(
            cells.len() >= needle.len(),
            "view {k}: the row is highlighted"
        );
        for c in cells {
            assert_eq!(c.fg, fg, "view {k}: {:?} on the selection", c.symbol());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schema keys

#[test]
fn a_primary_key_column_that_is_a_foreign_key_shows_both() {
    let f = fixture();
    let t = f
        .project
        .schema
        .tables
        .iter()
        .find(|t| t.name == "order_items")
        .unwrap();
    assert!(t.primary_key.contains(&"order_id".to_string()));
    assert_eq!(
        lode::tui::panes::schema::key_marker(t, "order_id", true),
        "PK → orders"
    );
    assert_eq!(lode::tui::panes::schema::key_marker(t, "line", true), "PK");
    assert_eq!(
        lode::tui::panes::schema::key_marker(t, "product_id", false),
        "→ products"
    );
    let mut a = app(&f);
    run_keys(&mut a, &[key('2'), key('/')]);
    run_keys(&mut a, &"order_items".chars().map(key).collect::<Vec<_>>());
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    for (w, h) in [(80, 24), (60, 16)] {
        let screen = lines(&draw(&mut a, w, h));
        let row = |col: &str| {
            screen
                .iter()
                .find(|l| l.split_whitespace().nth(1) == Some(col))
                .unwrap_or_else(|| panic!("{col} at {w}×{h}:\n{}", screen.join("\n")))
                .clone()
        };
        assert!(
            row("order_id").contains("PK → orders"),
            "{}",
            row("order_id")
        );
        assert!(row("line").contains(" PK "), "{}", row("line"));
        assert!(!row("line").contains('→'), "{}", row("line"));
        assert!(
            row("product_id").contains("→ products"),
            "{}",
            row("product_id")
        );
        assert!(!row("product_id").contains("PK"), "{}", row("product_id"));
    }
}

// ---------------------------------------------------------------------------------------------
// Footer messages

#[test]
fn a_footer_message_expires_after_a_few_keys() {
    let f = fixture();
    let mut a = app(&f);
    run_keys(&mut a, &[key('2')]);
    a.message = "coverage computed".into();
    for i in 0..MESSAGE_KEYS {
        run_keys(&mut a, &[key('j')]);
        assert_eq!(a.message, "coverage computed", "after {} keys", i + 1);
    }
    let l = lines(&draw(&mut a, 80, 24));
    assert_eq!(l[23], "coverage computed");
    run_keys(&mut a, &[key('j')]);
    assert_eq!(a.message, "", "gone on key {}", MESSAGE_KEYS + 1);
    assert_eq!(lines(&draw(&mut a, 80, 24))[23], "");
    // A message set by a key counts its keys from there.
    run_keys(&mut a, &[key('/'), key('x'), code(KeyCode::Esc)]);
    a.message = "another".into();
    run_keys(&mut a, &[key('k')]);
    assert_eq!(a.message, "another");
}

#[test]
fn a_footer_message_expires_after_a_few_seconds_when_ticked() {
    let t0 = Instant::now();
    let mut chrome = Chrome::default();
    let mut message = "pair 3 accepted (saved)".to_string();
    assert!(!chrome.tick(&mut message, t0, false));
    assert_eq!(chrome.expires_at(), Some(t0 + MESSAGE_TTL));
    assert!(!chrome.tick(
        &mut message,
        t0 + MESSAGE_TTL - Duration::from_millis(1),
        false
    ));
    assert_eq!(message, "pair 3 accepted (saved)");
    // Held while a write is saving.
    assert!(!chrome.tick(&mut message, t0 + MESSAGE_TTL, true));
    assert!(chrome.tick(&mut message, t0 + MESSAGE_TTL, false));
    assert_eq!(message, "");
    assert_eq!(chrome.expires_at(), None);
    // A new message starts its time again.
    message = "showing valid".into();
    let t1 = t0 + Duration::from_secs(60);
    assert!(!chrome.tick(&mut message, t1, false));
    assert!(!chrome.tick(&mut message, t1 + Duration::from_secs(1), false));
    assert_eq!(message, "showing valid");
}
