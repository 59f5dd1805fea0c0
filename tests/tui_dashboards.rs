//! The jobs and coverage views of the TUI in process (ratatui's TestBackend + insta): their
//! snapshots at 80×24 and 200×60, jobs that show and are followed by themselves on a tick,
//! their progress, phase, loss and tuned model, and the coverage view's numbers, text markers
//! (also under NO_COLOR) and Enter into the review queue. Ticks are driven by calling the
//! app's tick method: nothing here waits on a clock.

use std::sync::Arc;

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

#[path = "common/tui_driver.rs"]
mod tui_driver;
use tui_driver::{code, draw, key, perform_all, run_keys};

use lode::tui::app::{App, BgEvent, Effect, Tab};
use lode::tui::keymap::Keymap;
use lode::tui::panes::coverage::{Kind, Mark};
use lode::tui::panes::jobs::epoch_secs;
use lode::tui::theme::Theme;
use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::{
    JobStatus, NewPair, NewRun, NewValidation, PairStatus, Store, TuneProvider,
};

/// (generator, question, sql, status)
const PAIRS: &[(&str, &str, &str, PairStatus)] = &[
    (
        "pattern",
        "How many stores are there?",
        "SELECT COUNT(*) FROM stores",
        PairStatus::Valid,
    ),
    (
        "variation",
        "List the stores in the North region.",
        "SELECT name FROM stores WHERE region = 'North' ORDER BY name",
        PairStatus::Valid,
    ),
    (
        "pattern",
        "How many orders did each store take?",
        "SELECT s.name, COUNT(*) AS orders FROM stores s JOIN orders o ON o.store_id = s.id GROUP BY s.name ORDER BY orders DESC",
        PairStatus::Valid,
    ),
    (
        "decomposer",
        "Which employees earn more than 15 an hour?",
        "SELECT first_name, last_name, hourly_wage FROM employees WHERE hourly_wage > 15 ORDER BY hourly_wage DESC",
        PairStatus::Fixed,
    ),
    (
        "sql_first",
        "Which products cost more than 4?",
        "SELECT name, category, unit_price FROM products WHERE unit_price > 4 ORDER BY unit_price DESC, name",
        PairStatus::Valid,
    ),
];

/// The tuned model of the fixture's finished job, and the provider's id of that job.
const TUNED: &str = "ft:gpt-4o-mini-2024-07-18:acme:lode:9xYz";
const OPENAI_JOB: &str = "ftjob-abc123";

struct Fixture {
    _dir: tempfile::TempDir,
    project: Arc<Project>,
    store: Arc<Store>,
    /// The Lamini job part-way (progress, phase, losses) and the OpenAI job that ended.
    lamini: i64,
    openai: i64,
}

/// The demo project with a run of generated pairs; with `jobs`, a Lamini job part-way with
/// losses and a finished OpenAI job with a tuned model and no loss.
fn fixture(jobs: bool) -> Fixture {
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
    for (i, (generator, question, sql, status)) in PAIRS.iter().enumerate() {
        let a = lode_core::sql::analyze::analyze(sql, Some(&project.schema)).unwrap();
        let pair = NewPair {
            origin_key: format!("{generator}:{i}"),
            generator: generator.to_string(),
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
        let rows = project.db.query(sql).unwrap().rows.len() as i64;
        let attempt = NewValidation {
            pair_id: 0,
            attempt: 1,
            sql: sql.to_string(),
            ok: true,
            error_kind: None,
            error: None,
            row_count: Some(rows),
            elapsed_ms: Some(0.1),
            flags_json: None,
            result_preview_json: None,
        };
        store
            .insert_pair_with_validations(run, &pair, &[attempt])
            .unwrap();
    }
    store
        .finish_run(run, lode_core::store::RunStatus::Completed, None, None)
        .unwrap();
    let (mut lamini, mut openai) = (0, 0);
    if jobs {
        openai = store
            .create_job(
                TuneProvider::OpenAi,
                Some("gpt-4o-mini-2024-07-18"),
                None,
                JobStatus::Queued,
                "{}",
            )
            .unwrap();
        store.set_job_external_id(openai, OPENAI_JOB).unwrap();
        // The watcher's status data: the provider's raw status, no step, no loss.
        let data = serde_json::json!({"step": null, "total_steps": null, "loss": null, "raw_status": "succeeded"});
        store
            .update_job_status(
                openai,
                JobStatus::Succeeded,
                "succeeded",
                Some(&data.to_string()),
                Some(&serde_json::json!({ "model_id": TUNED }).to_string()),
            )
            .unwrap();
        lamini = store
            .create_job(
                TuneProvider::Lamini,
                Some("meta-llama/Llama-3.1-8B-Instruct"),
                None,
                JobStatus::Queued,
                "{}",
            )
            .unwrap();
        store.set_job_external_id(lamini, "48213").unwrap();
        for (step, loss) in [(40, 2.4), (80, 1.9), (80, 1.9), (120, 1.5)] {
            training(&store, lamini, step, loss);
        }
    }
    Fixture {
        _dir: dir,
        project: Arc::new(project),
        store: Arc::new(store),
        lamini,
        openai,
    }
}

/// What the watcher stores of a Lamini status poll at `step` of 500.
fn training(store: &Store, job: i64, step: u64, loss: f64) {
    let data = serde_json::json!({"step": step, "total_steps": 500, "loss": loss, "raw_status": "TRAINING"});
    store
        .update_job_status(
            job,
            JobStatus::Running,
            "TRAINING",
            Some(&data.to_string()),
            None,
        )
        .unwrap();
}

fn app_with(f: &Fixture, no_color: bool) -> App {
    let keymap = Keymap::new(&Default::default()).unwrap();
    let theme = Theme::load("ansi16", no_color).unwrap();
    let mut app = App::new(Arc::clone(&f.project), Arc::clone(&f.store), keymap, theme);
    let effects = app.start();
    perform_all(&mut app, effects);
    // Ages are counted to a pinned time: 3 minutes after the newest job was created.
    let newest = f
        .store
        .jobs()
        .unwrap()
        .iter()
        .filter_map(|j| epoch_secs(&j.created_at))
        .max()
        .unwrap_or(0);
    app.jobs.now = Some(newest + 180);
    app
}

fn app(f: &Fixture) -> App {
    app_with(f, false)
}

/// The screen as text, with the stored times (which change run to run) masked.
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

/// `2026-11-25T03:36:09.392Z` → `<time>` padded to the same width.
fn mask(s: &str) -> String {
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
    out
}

/// The line of the screen holding `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

/// The row of job `id` in the jobs table: the line whose first words are its id and provider.
fn job_row<'a>(screen: &'a str, id: i64, provider: &str) -> &'a str {
    screen
        .lines()
        .find(|l| {
            let mut words = l.trim_start_matches('│').split_whitespace();
            words.next() == Some(&id.to_string()) && words.next() == Some(provider)
        })
        .unwrap_or_else(|| panic!("no row of job {id} in\n{screen}"))
}

/// What the coverage list shows of the line of `name`: the line inside the list's borders.
fn list_row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .filter_map(|l| l.split('│').nth(1))
        .find(|l| {
            let mut words = l.split_whitespace();
            let first = words.next();
            first == Some(name)
                || (first.is_some_and(|m| m.len() == 1) && words.next() == Some(name))
        })
}

/// Selects the job `id` in the jobs view (and reads its events).
fn select_job(a: &mut App, id: i64) {
    run_keys(a, &[key('5'), key('g')]);
    while a.jobs.selected_id() != Some(id) {
        let before = a.jobs.cursor;
        run_keys(a, &[key('j')]);
        assert_ne!(a.jobs.cursor, before, "job {id} not in the list");
    }
}

/// The coverage view, computed.
fn coverage(a: &mut App) {
    run_keys(a, &[key('3')]);
    assert!(a.coverage.coverage.is_some(), "{}", a.message);
}

/// Moves the coverage cursor to the row of `kind` named `name`.
fn select_row(a: &mut App, kind: Kind, name: &str) {
    let rows = lode::tui::panes::coverage::rows(a.coverage.coverage.as_ref().unwrap());
    let i = rows
        .iter()
        .position(|r| r.kind == kind && r.name == name)
        .unwrap_or_else(|| panic!("no row {name}"));
    run_keys(a, &[key('g')]);
    for _ in 0..i {
        run_keys(a, &[key('j')]);
    }
    assert_eq!(a.coverage.selected().unwrap().name, name);
}

// ---------------------------------------------------------------------------------------------
// Snapshots

#[test]
fn jobs_view_snapshots() {
    let f = fixture(true);
    let mut a = app(&f);
    select_job(&mut a, f.lamini);
    insta::assert_snapshot!("jobs_80x24", text(&draw(&mut a, 80, 24)));
    insta::assert_snapshot!("jobs_200x60", text(&draw(&mut a, 200, 60)));
    select_job(&mut a, f.openai);
    insta::assert_snapshot!("jobs_ended_80x24", text(&draw(&mut a, 80, 24)));
}

#[test]
fn coverage_view_snapshots() {
    let f = fixture(false);
    let mut a = app(&f);
    coverage(&mut a);
    insta::assert_snapshot!("coverage_80x24", text(&draw(&mut a, 80, 24)));
    insta::assert_snapshot!("coverage_200x60", text(&draw(&mut a, 200, 60)));
}

// ---------------------------------------------------------------------------------------------
// Jobs

#[test]
fn a_job_submitted_after_start_shows_on_a_tick_and_is_followed_once() {
    let f = fixture(true);
    let mut a = app(&f);
    run_keys(&mut a, &[key('5')]);
    // What the loop follows at first: the Lamini job (the OpenAI one has ended).
    let first: Vec<i64> = a.jobs.to_follow().iter().map(|j| j.id).collect();
    assert_eq!(first, vec![f.lamini]);
    // A job submitted by `lode tune` in another terminal, after the UI opened.
    let late = f
        .store
        .create_job(
            TuneProvider::Lamini,
            Some("llama"),
            None,
            JobStatus::Queued,
            "{}",
        )
        .unwrap();
    f.store.set_job_external_id(late, "99001").unwrap();
    assert!(!a.jobs.list.iter().any(|j| j.id == late));
    let before = text(&draw(&mut a, 80, 24));
    assert!(before.contains("Jobs (2"), "{before}");
    // The tick reads the jobs (one read at a time), and the new job shows: no ctrl-l.
    let effects = a.on_tick();
    assert!(
        matches!(effects.as_slice(), [Effect::LoadJobs]),
        "{effects:?}"
    );
    assert!(
        a.on_tick().is_empty(),
        "a second read while one is under way"
    );
    perform_all(&mut a, effects);
    assert!(a.jobs.list.iter().any(|j| j.id == late));
    let screen = text(&draw(&mut a, 80, 24));
    assert!(screen.contains("Jobs (3"), "{screen}");
    let row = job_row(&screen, late, "lamini");
    assert!(row.contains("queued"), "{row}");
    // The selection stayed on the job it was on, though the new one came first.
    assert_eq!(a.jobs.list[0].id, late);
    assert_eq!(a.jobs.selected_id(), Some(f.lamini));
    // It is followed, once: the job followed already is not followed again.
    let next: Vec<i64> = a.jobs.to_follow().iter().map(|j| j.id).collect();
    assert_eq!(next, vec![late]);
    let effects = a.on_tick();
    perform_all(&mut a, effects);
    assert!(a.jobs.to_follow().is_empty());
    // A job not submitted yet (no provider id) is followed once it is.
    let pending = f
        .store
        .create_job(TuneProvider::Lamini, None, None, JobStatus::Queued, "{}")
        .unwrap();
    let effects = a.on_tick();
    perform_all(&mut a, effects);
    assert!(a.jobs.to_follow().is_empty());
    f.store.set_job_external_id(pending, "99002").unwrap();
    let effects = a.on_tick();
    perform_all(&mut a, effects);
    let next: Vec<i64> = a.jobs.to_follow().iter().map(|j| j.id).collect();
    assert_eq!(next, vec![pending]);
}

#[test]
fn the_loop_follows_a_new_job_with_the_watcher_to_its_end() {
    let f = fixture(false);
    let mut a = app(&f);
    run_keys(&mut a, &[key('5')]);
    // A memory job (the offline provider) submitted after the UI opened.
    let ids: Vec<i64> = f
        .store
        .pair_summaries(&Default::default())
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    let ds = f
        .store
        .create_dataset("d", "messages", None, None, &ids, None)
        .unwrap();
    let job = f
        .store
        .create_job(
            TuneProvider::Memory,
            None,
            Some(ds),
            JobStatus::Queued,
            "{}",
        )
        .unwrap();
    f.store
        .set_job_external_id(job, &format!("memory-{ds}"))
        .unwrap();
    let effects = a.on_tick();
    perform_all(&mut a, effects);
    let screen = text(&draw(&mut a, 80, 24));
    assert!(line_with(&screen, "memory").contains("queued"), "{screen}");
    // The loop's follow: the same watcher as `lode jobs watch`, its changes fed back.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    {
        let _guard = rt.enter();
        lode::tui::watch_jobs(&mut a, &tx);
        // Called again (as the loop does after every read): the job is not followed twice.
        lode::tui::watch_jobs(&mut a, &tx);
    }
    while a.jobs.list.iter().find(|j| j.id == job).unwrap().status != JobStatus::Succeeded {
        let ev = rt
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(300), rx.recv()).await
            })
            .expect("the watcher reported within 5 minutes")
            .unwrap();
        assert!(matches!(ev, BgEvent::JobsChanged), "{ev:?}");
        let effects = a.handle_bg(ev);
        perform_all(&mut a, effects);
    }
    let screen = text(&draw(&mut a, 80, 24));
    let row = line_with(&screen, "memory");
    for shown in ["succeeded", "indexed", "1/1 100%", &format!("memory:{ds}")] {
        assert!(row.contains(shown), "{shown:?} not in {row:?}");
    }
    // Only one watcher stored the job's end.
    let ends = f
        .store
        .job_events(job)
        .unwrap()
        .iter()
        .filter(|e| e.status == JobStatus::Succeeded)
        .count();
    assert_eq!(ends, 1);
}

#[test]
fn a_followed_jobs_progress_and_phase_show_from_its_status_data() {
    let f = fixture(true);
    let mut a = app(&f);
    select_job(&mut a, f.lamini);
    let screen = text(&draw(&mut a, 80, 24));
    let row = job_row(&screen, 2, "lamini");
    assert!(row.contains("running"), "{row}");
    assert!(row.contains("TRAINING"), "{row}");
    assert!(row.contains("120/500 24%"), "{row}");
    // The gauge of the selected job says the same.
    let gauge = line_with(&screen, "job 2 · lamini");
    assert!(gauge.contains("TRAINING · 120/500 24%"), "{gauge}");
    // The watcher stores a newer poll: the view follows it on the change it is told of.
    training(&f.store, f.lamini, 250, 0.9);
    let data = serde_json::json!({"step": 250, "total_steps": 500, "raw_status": "EVALUATING"});
    f.store
        .update_job_status(
            f.lamini,
            JobStatus::Running,
            "EVALUATING",
            Some(&data.to_string()),
            None,
        )
        .unwrap();
    let effects = a.handle_bg(BgEvent::JobsChanged);
    perform_all(&mut a, effects);
    let screen = text(&draw(&mut a, 80, 24));
    let row = job_row(&screen, 2, "lamini");
    assert!(row.contains("EVALUATING"), "{row}");
    assert!(row.contains("250/500 50%"), "{row}");
    assert!(line_with(&screen, "job 2 · lamini").contains("EVALUATING · 250/500 50%"));
    assert!(screen.contains("Loss: 4 points, last 0.9000"), "{screen}");
}

#[test]
fn the_loss_chart_shows_only_with_loss_data() {
    let f = fixture(true);
    let mut a = app(&f);
    select_job(&mut a, f.lamini);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = text(&draw(&mut a, w, h));
        // Four polls, two of them at the same step: three points.
        let title = line_with(&screen, "Loss:");
        assert!(title.contains("Loss: 3 points, last 1.5000"), "{title}");
        assert!(title.contains("min 1.5000 · max 2.4000"), "{title}");
        assert!(!screen.contains("no loss reported"), "{screen}");
    }
    select_job(&mut a, f.openai);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = text(&draw(&mut a, w, h));
        assert!(
            screen.contains("no loss reported by this provider"),
            "{screen}"
        );
        assert!(!screen.contains("points"), "{screen}");
    }
}

#[test]
fn the_table_has_headers_and_the_tuned_models_name() {
    let f = fixture(true);
    let mut a = app(&f);
    run_keys(&mut a, &[key('5')]);
    for (w, h) in [(80, 24), (200, 60)] {
        let screen = text(&draw(&mut a, w, h));
        let head = line_with(&screen, "provider");
        let at = |word: &str| {
            head.find(word)
                .unwrap_or_else(|| panic!("no {word} in {head}"))
        };
        let order = [
            "id", "provider", "status", "phase", "progress", "age", "model",
        ]
        .map(at);
        assert!(order.is_sorted(), "{head}");
        // The tuned model, not the provider's id of the job (nor the base model).
        let row = job_row(&screen, 1, "openai");
        assert!(row.contains("succeeded"), "{row}");
        assert!(row.contains("3m"), "{row}");
        if w >= 200 {
            assert!(row.contains(TUNED), "{row}");
        } else {
            // Elided where it does not fit, never cut without a sign.
            let shown = row.trim_end_matches('│').split_whitespace().last().unwrap();
            assert!(shown.ends_with('…'), "{row}");
            assert!(TUNED.starts_with(shown.trim_end_matches('…')), "{row}");
        }
        assert!(!screen.contains(OPENAI_JOB), "{screen}");
        assert!(!screen.contains("48213"), "{screen}");
        // A job without a tuned model yet shows a dash.
        let row = job_row(&screen, 2, "lamini");
        assert!(row.trim_end_matches('│').trim_end().ends_with('—'), "{row}");
    }
}

// ---------------------------------------------------------------------------------------------
// Coverage

#[test]
fn coverage_rows_have_numbers_beside_bars_scaled_to_the_width() {
    let f = fixture(false);
    let mut a = app(&f);
    coverage(&mut a);
    let c = a.coverage.coverage.clone().unwrap();
    let rows = lode::tui::panes::coverage::rows(&c);
    let order_by = rows.iter().find(|r| r.name == "order_by").unwrap();
    select_row(&mut a, Kind::Concept, "order_by");
    let narrow = text(&draw(&mut a, 80, 24));
    let wide = text(&draw(&mut a, 200, 60));
    for screen in [&narrow, &wide] {
        // The counts of the three sets stand beside their bars.
        let line = list_row(screen, "order_by").unwrap();
        let numbers: Vec<usize> = line
            .split(|ch: char| !ch.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            numbers,
            vec![order_by.gold, order_by.generated, order_by.accepted],
            "{line}"
        );
        assert!(screen.contains("gold (25 pairs)"), "{screen}");
        assert!(
            screen.contains("! missing: in gold, never generated"),
            "{screen}"
        );
        assert!(screen.contains("Enter: these pairs in Review"), "{screen}");
    }
    // The bar of the same share is longer in a wider window.
    let cells = |screen: &str| {
        let line = list_row(screen, "order_by").unwrap();
        line.chars().filter(|ch| *ch == '█').count()
    };
    assert!(cells(&wide) > 2 * cells(&narrow), "{narrow}\n{wide}");
    assert!(cells(&narrow) > 12, "{narrow}");
    // One pair of many still shows: a table the generated set uses once has a bar.
    let once = rows
        .iter()
        .find(|r| r.kind == Kind::Table && r.generated == 1)
        .expect("a table used once");
    let line = list_row(&wide, &once.name).unwrap();
    assert!(
        line.contains(" 1 ▏") || line.contains(" 1 ▎") || line.contains(" 1 █"),
        "{line}"
    );
}

#[test]
fn enter_on_a_concept_or_a_table_filters_the_review_queue() {
    let f = fixture(false);
    let mut a = app(&f);
    let all = a.review.rows.len();
    coverage(&mut a);
    select_row(&mut a, Kind::Concept, "group_by");
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    assert_eq!(a.tab, Tab::Review);
    assert_eq!(a.review.search, "concept:group_by");
    // Only the pair that groups is in the queue.
    let questions: Vec<&str> = a.review.rows.iter().map(|r| r.question.as_str()).collect();
    assert_eq!(questions, vec!["How many orders did each store take?"]);
    assert!(all > 1);
    let screen = text(&draw(&mut a, 80, 24));
    assert!(
        screen.contains("review queue: concept:group_by"),
        "{screen}"
    );
    // A table the same way.
    coverage(&mut a);
    select_row(&mut a, Kind::Table, "stores");
    run_keys(&mut a, &[code(KeyCode::Enter)]);
    assert_eq!(
        (a.tab, a.review.search.as_str()),
        (Tab::Review, "table:stores")
    );
    assert_eq!(a.review.rows.len(), 3, "{:?}", a.review.rows);
}

#[test]
fn coverage_markers_are_text_and_survive_no_color() {
    let f = fixture(false);
    let mut a = app_with(&f, true);
    coverage(&mut a);
    let c = a.coverage.coverage.clone().unwrap();
    let rows = lode::tui::panes::coverage::rows(&c);
    let missing = rows
        .iter()
        .find(|r| r.mark == Mark::Missing && r.kind == Kind::Concept)
        .expect("a missing concept");
    let low = rows
        .iter()
        .find(|r| r.mark == Mark::Low)
        .expect("an under-represented concept");
    assert_eq!(missing.generated, 0);
    let buf = draw(&mut a, 200, 60);
    for cell in buf.content() {
        assert!(
            matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
            "a colour under NO_COLOR: {cell:?}"
        );
    }
    let screen = text(&buf);
    let line = list_row(&screen, &missing.name).unwrap();
    assert!(line.starts_with(&format!("! {} ", missing.name)), "{line}");
    let line = list_row(&screen, &low.name).unwrap();
    assert!(line.starts_with(&format!("~ {} ", low.name)), "{line}");
    // Every row carries its marker, and only those marked do.
    for r in &rows {
        let line = list_row(&screen, &r.name).unwrap_or_else(|| panic!("{} not shown", r.name));
        assert_eq!(&line[..1], r.mark.text(), "{line}");
    }
    assert!(
        screen.contains("! missing: in gold, never generated"),
        "{screen}"
    );
    assert!(screen.contains("~ low: under-represented"), "{screen}");
}
