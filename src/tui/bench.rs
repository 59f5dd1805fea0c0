//! The TUI benchmark (`lode bench --only tui`): a demo project whose store holds 100,000
//! pairs; the time from a fresh process's start to its first frame and its peak resident
//! memory (measured in a child process, so nothing of the set-up counts), and the time from
//! each key press to the finished frame on ratatui's TestBackend.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::App;
use super::effect::{Effect, run_blocking};
use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::{NewPair, NewRun, PairStatus};

/// One measured key: its name, and the key → frame times, sorted.
pub struct KeyTimes {
    pub name: String,
    pub times: Vec<Duration>,
}

/// What the benchmark measured.
pub struct TuiFigures {
    pub pairs: usize,
    /// Start of a fresh process → first frame drawn, per repetition (sorted).
    pub first_frame: Vec<Duration>,
    /// Peak resident memory of those processes, in MB (sorted).
    pub peak_rss_mb: Vec<f64>,
    pub keys: Vec<KeyTimes>,
}

const QUESTIONS: &[(&str, &str, &str)] = &[
    (
        "pattern",
        "How many orders did each store take in {}?",
        "SELECT s.name, COUNT(*) FROM stores s JOIN orders o ON o.store_id = s.id WHERE strftime('%Y', o.order_date) = '{}' GROUP BY s.name",
    ),
    (
        "variation",
        "Which products in category {} cost more than 3?",
        "SELECT name, unit_price FROM products WHERE category = '{}' AND unit_price > 3 ORDER BY unit_price DESC",
    ),
    (
        "sql_first",
        "List the customers of tier {} who joined after 2023.",
        "SELECT first_name, last_name FROM customers WHERE loyalty_tier = '{}' AND joined_on > '2023-12-31'",
    ),
    (
        "paraphrase",
        "What is the average hourly wage of the {} staff?",
        "SELECT AVG(hourly_wage) FROM employees WHERE role = '{}'",
    ),
];

/// Writes the demo project into `dir` and fills its store with `n` pairs of one run.
pub fn prepare(dir: &Path, n: usize) -> Result<()> {
    write_demo(
        dir,
        &DemoOptions {
            force: true,
            ..Default::default()
        },
    )?;
    let project = Project::load(&dir.join("config.yml"))?;
    let (store, snapshot) = project.open_store()?;
    let run = store.create_run(&NewRun {
        kind: lode_core::store::RunKind::Generate,
        snapshot_id: Some(snapshot),
        profile: "rules".into(),
        config_json: "{}".into(),
    })?;
    let statuses = [
        PairStatus::Valid,
        PairStatus::Valid,
        PairStatus::Valid,
        PairStatus::Fixed,
        PairStatus::Invalid,
        PairStatus::Duplicate,
    ];
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let (generator, q, sql) = QUESTIONS[i % QUESTIONS.len()];
        let v = format!("v{i}");
        batch.push(NewPair {
            origin_key: format!("bench:{i}"),
            generator: generator.into(),
            parent_gold_id: None,
            parent_pair_id: None,
            question: q.replace("{}", &v),
            sql: sql.replace("{}", &v),
            status: Some(statuses[i % statuses.len()]),
            notes: Default::default(),
            template: None,
            result_fingerprint: None,
            analysis: Some(lode_core::store::PairAnalysis {
                concepts: vec![("where".into(), 1), ("single_table".into(), 1)],
                tables: vec!["products".into()],
                hardness: "medium".into(),
                level: None,
            }),
        });
        if batch.len() == 10_000 || i + 1 == n {
            store.insert_pairs(run, &batch)?;
            batch.clear();
        }
    }
    Ok(())
}

/// Opens the project the way `lode` does and draws the first frame on a TestBackend of the
/// given size; the time it took since `started`.
pub fn first_frame(dir: &Path, started: Instant) -> Result<(Duration, App)> {
    let project = Project::load(&dir.join("config.yml"))?;
    let (store, _) = project.open_store()?;
    let mut app = super::build_app(
        Arc::new(project),
        Arc::new(store),
        lode_core::tasks::model::ModelRequest::default_model(),
    )?;
    // The first frame shows the queue: the start's reads are part of it.
    // The pair's query (run after the keys settle, in the background) is not part of it.
    let effects = app.start();
    settle_without_queries(&mut app, effects);
    let mut terminal = Terminal::new(TestBackend::new(120, 40))?;
    terminal.draw(|f| app.render(f))?;
    Ok((started.elapsed(), app))
}

/// Carries out `effects`, and those their results ask for, on this thread (the loop runs them
/// on blocking threads). Queue reads go to `deferred` when it is given, to be timed apart.
fn settle(app: &mut App, effects: Vec<Effect>, mut deferred: Option<&mut Vec<Effect>>) {
    let mut queue: VecDeque<Effect> = effects.into();
    while let Some(effect) = queue.pop_front() {
        // Queue reads and the run that follows the selection are background work in the
        // TUI: the key's frame does not wait for them.
        if let (Effect::LoadRows { .. } | Effect::RunQuery { .. }, Some(d)) =
            (&effect, deferred.as_deref_mut())
        {
            d.push(effect);
            continue;
        }
        let (project, store) = (Arc::clone(&app.project), Arc::clone(&app.store));
        if let Some(ev) = run_blocking(effect, &project, &store) {
            queue.extend(app.handle_bg(ev));
        }
    }
}

/// Carries out `effects` like [`settle`], but drops the queries that follow the selection
/// (background work that the frame does not wait for).
fn settle_without_queries(app: &mut App, effects: Vec<Effect>) {
    let mut queue: VecDeque<Effect> = effects.into();
    while let Some(effect) = queue.pop_front() {
        if matches!(effect, Effect::RunQuery { .. }) {
            continue;
        }
        let (project, store) = (Arc::clone(&app.project), Arc::clone(&app.store));
        if let Some(ev) = run_blocking(effect, &project, &store) {
            queue.extend(app.handle_bg(ev));
        }
    }
}

/// Peak resident memory of this process (VmHWM), in MB; `None` where `/proc` does not tell
/// (the figure then reads NaN rather than a made-up number).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The child process's part: open, draw, print "first_frame_ms peak_rss_mb".
pub fn child(dir: &Path) -> Result<()> {
    let started = Instant::now();
    let (t, app) = first_frame(dir, started)?;
    if app.review.rows.is_empty() {
        bail!("the benchmark store shows no pairs");
    }
    println!(
        "{:.3} {:.1}",
        t.as_secs_f64() * 1000.0,
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Runs the benchmark: `n` pairs, `repeat` fresh processes, key timings in process.
pub fn run(n: usize, repeat: usize) -> Result<TuiFigures> {
    let dir = std::env::temp_dir().join(format!("lode-bench-tui-{}", std::process::id()));
    // A leftover from an earlier run may or may not be there; `prepare` rewrites it anyway.
    let _ = std::fs::remove_dir_all(&dir);
    prepare(&dir, n)?;
    let exe = std::env::current_exe().context("cannot find the lode executable")?;
    let mut first = Vec::new();
    let mut rss = Vec::new();
    for i in 0..=repeat {
        let out = std::process::Command::new(&exe)
            .args(["bench", "--tui-child"])
            .arg(&dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "the TUI benchmark child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        // A figure the child could not print shows as NaN in the report, not as zero.
        let ms: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        let mb: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        if i > 0 {
            // The first run only warms the page cache.
            first.push(Duration::from_secs_f64(ms / 1000.0));
            rss.push(mb);
        }
    }
    first.sort();
    rss.sort_by(f64::total_cmp);

    // Key → finished frame, in process.
    let (_, mut app) = first_frame(&dir, Instant::now())?;
    let mut terminal = Terminal::new(TestBackend::new(120, 40))?;
    // Queue reads that a key asks for run in the background in the TUI; here they run after
    // the key's frame, and their time to the frame with the rows is kept apart.
    let mut loads: Vec<Duration> = Vec::new();
    let mut measure = |app: &mut App, ev: KeyEvent| -> Result<Duration> {
        let t = Instant::now();
        let effects = app.handle_key(ev);
        let mut reads = Vec::new();
        settle(app, effects, Some(&mut reads));
        terminal.draw(|f| app.render(f))?;
        let key_time = t.elapsed();
        for read in reads {
            if let Effect::RunQuery {
                ticket,
                sql,
                cancel,
                ..
            } = read
            {
                // The pair's query, without the wait for the keys to settle; not timed.
                let query = Effect::RunQuery {
                    ticket,
                    sql,
                    cancel,
                    delay: Duration::ZERO,
                };
                settle(app, vec![query], None);
                continue;
            }
            // The rows, the selected pair's detail, the frame; the pair's own query follows
            // in the background after the keys settle and is not part of it.
            let t = Instant::now();
            settle_without_queries(app, vec![read]);
            terminal.draw(|f| app.render(f))?;
            loads.push(t.elapsed());
        }
        Ok(key_time)
    };
    // Keys pressed between measured ones: what they ask for is done, not timed.
    let press = |app: &mut App, ev: KeyEvent| {
        let effects = app.handle_key(ev);
        settle(app, effects, None);
    };
    let mut keys = Vec::new();
    let mut series = |name: &str, times: Vec<Duration>| {
        let mut times = times;
        times.sort();
        keys.push(KeyTimes {
            name: name.into(),
            times,
        });
    };
    let mut t = Vec::new();
    for _ in 0..300 {
        t.push(measure(&mut app, key(KeyCode::Char('j')))?);
    }
    series("j (next pair)", t);
    let mut t = Vec::new();
    for _ in 0..50 {
        t.push(measure(&mut app, key(KeyCode::PageDown))?);
    }
    series("PageDown", t);
    let (mut acc, mut undo) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        acc.push(measure(&mut app, key(KeyCode::Char('a')))?);
        press(&mut app, key(KeyCode::Char('k')));
        undo.push(measure(&mut app, key(KeyCode::Char('u')))?);
    }
    series("a (accept, written to the store)", acc);
    series("u (undo, written to the store)", undo);
    let mut t = Vec::new();
    for c in ['2', '1', '4', '1', '5', '1'].repeat(10) {
        t.push(measure(&mut app, key(KeyCode::Char(c)))?);
    }
    series("1/2/4/5 (switch view)", t);
    let mut t = Vec::new();
    press(&mut app, key(KeyCode::Char('e')));
    for c in " AND 1 = 1".chars().cycle().take(100) {
        t.push(measure(&mut app, key(KeyCode::Char(c)))?);
    }
    press(&mut app, key(KeyCode::Esc));
    series("typing in the SQL editor", t);
    let mut t = Vec::new();
    for _ in 0..10 {
        t.push(measure(&mut app, key(KeyCode::Char('f')))?);
    }
    series("f (status filter)", t);
    let mut t = Vec::new();
    press(&mut app, key(KeyCode::Char('/')));
    for c in "tier v12".chars() {
        t.push(measure(&mut app, key(KeyCode::Char(c)))?);
    }
    press(&mut app, key(KeyCode::Enter));
    series("typing a search", t);
    series("(background) queue read → frame with the rows", loads);
    // The figures are taken; a temp directory left behind is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(TuiFigures {
        pairs: n,
        first_frame: first,
        peak_rss_mb: rss,
        keys,
    })
}
