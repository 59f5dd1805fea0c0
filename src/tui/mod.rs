//! The terminal UI: `lode` in a project directory opens it. One [`app::App`] owns the state;
//! this loop reads keys from crossterm's event stream, performs the commands the app asks
//! for as background tasks, feeds their results back, and draws only when something changed,
//! at most about 30 times a second, inside synchronized updates. Nothing outside this module
//! imports ratatui or crossterm.

pub mod app;
pub mod bench;
pub mod highlight;
pub mod keymap;
pub mod theme;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::project::Project;
use crate::store::Store;
use app::{App, BgEvent, Command};

/// Builds the app for a project (keymap and theme from config).
pub fn build_app(project: Arc<Project>, store: Arc<Store>) -> Result<App> {
    let ui = &project.config.ui;
    let source = &project.config.source;
    let text = std::fs::read_to_string(source).unwrap_or_default();
    let keymap = keymap::Keymap::new(&ui.keymap).map_err(|e| {
        let names: Vec<&str> = ui.keymap.keys().map(String::as_str).collect();
        anyhow::anyhow!("{}: {e}", at_line(source, &text, "keymap:", &names, &e))
    })?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = theme::Theme::load(&ui.theme, no_color)
        .map_err(|e| anyhow::anyhow!("{}: {e}", at_line(source, &text, "theme:", &[], &e)))?;
    Ok(App::new(project, store, keymap, theme))
}

/// `file:line` of a `ui` setting: the line of the first of `names` (keys under `section`)
/// that the error mentions, else the section's own line, else the file alone.
fn at_line(
    source: &std::path::Path,
    text: &str,
    section: &str,
    names: &[&str],
    err: &str,
) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_start().starts_with(section))
    else {
        return source.display().to_string();
    };
    let named = lines.iter().enumerate().skip(start + 1).find(|(_, l)| {
        names.iter().any(|n| {
            l.trim_start().starts_with(&format!("{n}:")) && err.contains(&format!("`{n}`"))
        })
    });
    let line = named.map_or(start, |(i, _)| i) + 1;
    format!("{}:{line}", source.display())
}

/// Performs a command in the background; its result comes back on `tx`.
pub fn perform(cmd: Command, app: &App, tx: &mpsc::UnboundedSender<BgEvent>) {
    match cmd {
        Command::RunQuery {
            ticket,
            sql,
            cancel,
        } => {
            let db = Arc::clone(&app.project.db);
            let tx = tx.clone();
            tokio::task::spawn_blocking(move || {
                let result = db.query_with(&sql, db.limits(), Some(&cancel));
                let _ = tx.send(BgEvent::QueryDone { ticket, result });
            });
        }
        Command::LoadRows { generation, query } => {
            let store = Arc::clone(&app.store);
            let tx = tx.clone();
            tokio::task::spawn_blocking(move || {
                let rows = store.pair_summaries(&query).map_err(|e| e.to_string());
                let _ = tx.send(BgEvent::Rows { generation, rows });
            });
        }
        Command::Copy(text) => {
            // OSC 52: the terminal (also over SSH and in tmux with set-clipboard) takes it.
            let b64 = base64(text.as_bytes());
            let mut out = std::io::stdout();
            let _ = write!(out, "\x1b]52;c;{b64}\x07");
            let _ = out.flush();
        }
        Command::ExternalEdit(_) | Command::Quit => {}
        Command::Generate => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            tokio::spawn(async move {
                let msg = match generate_in_background(&project, &store, &tx).await {
                    Ok(m) => m,
                    Err(e) => format!("generation failed: {e}"),
                };
                let _ = tx.send(BgEvent::StageDone(msg));
            });
        }
        Command::Analyze => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            let run = app.run_id;
            tokio::task::spawn_blocking(move || {
                let pairs = crate::pipeline::coverage::run_pairs(&store, run).unwrap_or_default();
                let c = crate::pipeline::coverage::coverage(&project, &pairs, 1.5);
                let _ = tx.send(BgEvent::Coverage(Box::new(c)));
            });
        }
        Command::Evaluate => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            tokio::spawn(async move {
                let msg = match evaluate_in_background(&project, &store).await {
                    Ok(m) => m,
                    Err(e) => format!("evaluation failed: {e}"),
                };
                let _ = tx.send(BgEvent::StageDone(msg));
            });
        }
        Command::CancelJob(id) => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            tokio::spawn(async move {
                let msg = match cancel_job(&project, &store, id).await {
                    Ok(()) => format!("job {id} cancelled"),
                    Err(e) => format!("cannot cancel job {id}: {e}"),
                };
                let _ = tx.send(BgEvent::StageDone(msg));
            });
        }
    }
}

/// Watches every tuning job that has not ended (as `lode jobs watch` does), so the jobs view
/// follows them; each change is in the store before the view is told to reload.
pub fn watch_jobs(app: &App, tx: &mpsc::UnboundedSender<BgEvent>) {
    let poll = Duration::from_secs_f64(app.project.config.tune.poll_s.max(0.05));
    for job in &app.jobs {
        let ended = crate::tune::JobStatus::parse(&job.status).is_some_and(|s| s.is_terminal());
        if ended || job.external_id.is_none() {
            continue;
        }
        let Ok(provider) =
            crate::tune::provider_for(&job.provider, &app.project, Arc::clone(&app.store))
        else {
            continue;
        };
        let (store, tx, id) = (Arc::clone(&app.store), tx.clone(), job.id);
        tokio::spawn(async move {
            let show = |_: &crate::tune::JobUpdate| {
                let _ = tx.send(BgEvent::JobsChanged);
            };
            let _ = crate::tune::watch(&store, &provider, id, poll, None, &show).await;
            let _ = tx.send(BgEvent::JobsChanged);
        });
    }
}

async fn generate_in_background(
    project: &Project,
    store: &Arc<Store>,
    tx: &mpsc::UnboundedSender<BgEvent>,
) -> Result<String> {
    let snapshot = store.latest_snapshot()?.map_or(0, |s| s.id);
    let client = crate::pipeline::llm_client(project, Some(Arc::clone(store)), None, true, None)?;
    let ptx = tx.clone();
    let progress: crate::pipeline::generate::Progress = Arc::new(move |stage, done, total| {
        if stage == "questions" {
            let _ = ptx.send(BgEvent::Progress(format!("generating {done}/{total}")));
        }
    });
    let s = crate::pipeline::generate::run(
        project,
        Arc::clone(store),
        client,
        snapshot,
        &Default::default(),
        progress,
    )
    .await?;
    let t = s.totals();
    Ok(format!(
        "run {} done: {} valid, {} fixed, {} failed, {} duplicates",
        s.run_id, t.valid, t.fixed, t.failed, t.duplicate
    ))
}

async fn evaluate_in_background(project: &Project, store: &Arc<Store>) -> Result<String> {
    let job = store
        .jobs()?
        .into_iter()
        .find(|j| j.status == "succeeded")
        .map(|j| j.id);
    let client = match job {
        Some(j) => crate::pipeline::tuned_model_client(project, store, Some(j), None)?,
        None => crate::pipeline::llm_client(project, Some(Arc::clone(store)), None, true, None)?,
    };
    let label = format!("{}:{}", client.backend().kind(), client.backend().model());
    let questions: Vec<String> = project.eval.iter().map(|p| p.question.clone()).collect();
    let preds = crate::pipeline::inference::predict(
        client,
        &project.schema,
        &project.glossary,
        &questions,
        Arc::new(|_, _| {}),
    )
    .await;
    let options = crate::pipeline::eval::EvalOptions {
        threads: 2,
        ..Default::default()
    };
    let r = crate::pipeline::model_eval::evaluate_model(
        project,
        store,
        &label,
        &preds,
        &crate::sql::compare::Profile::default(),
        &options,
    )?;
    Ok(format!(
        "evaluation run {}: {:.1}% on {} questions",
        r.eval_run_id,
        r.summary.accuracy() * 100.0,
        r.summary.total
    ))
}

async fn cancel_job(project: &Project, store: &Arc<Store>, id: i64) -> Result<()> {
    let job = store.job(id)?;
    let external = job
        .external_id
        .clone()
        .context("the job was never submitted")?;
    let p = crate::tune::provider_for(&job.provider, project, Arc::clone(store))?;
    p.cancel(&external).await?;
    store.update_job_status(id, "cancelled", "cancelled from the TUI", None, None)?;
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Opens `text` in `$EDITOR` (the terminal is handed over meanwhile); the edited text.
fn external_edit(text: &str, mouse: bool) -> Result<String> {
    let path = std::env::temp_dir().join(format!("lode-{}.sql", std::process::id()));
    std::fs::write(&path, text)?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    ratatui::restore();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status();
    let _ = ratatui::init();
    // The editor may have switched these off on its way out.
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    status.context("cannot start the editor")?;
    let edited = std::fs::read_to_string(&path)?;
    let _ = std::fs::remove_file(&path);
    Ok(edited)
}

/// Runs the TUI until the user quits. Decisions are already in the store when shown.
pub fn run(project: Project, store: Arc<Store>) -> Result<()> {
    let mut app = build_app(Arc::new(project), store)?;
    let rt = crate::pipeline::runtime()?;
    let mut terminal = ratatui::init();
    // A paste arrives as one event (one edit), not as keys that could trigger actions.
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    // Mouse capture only on request (ui.mouse): over SSH users select text with the mouse.
    let mouse = app.project.config.ui.mouse;
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    let result = rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<BgEvent>();
        watch_jobs(&app, &tx);
        let mut events = EventStream::new();
        let frame = Duration::from_millis(33);
        let mut last_draw = Instant::now() - frame;
        loop {
            if app.dirty && last_draw.elapsed() >= frame {
                crossterm::execute!(
                    std::io::stdout(),
                    crossterm::terminal::BeginSynchronizedUpdate
                )?;
                terminal.draw(|f| app.render(f))?;
                crossterm::execute!(
                    std::io::stdout(),
                    crossterm::terminal::EndSynchronizedUpdate
                )?;
                app.dirty = false;
                last_draw = Instant::now();
            }
            let wait = if app.dirty {
                frame.saturating_sub(last_draw.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                        for cmd in app.handle_key(k) {
                            match cmd {
                                Command::Quit => {}
                                Command::ExternalEdit(text) => {
                                    match external_edit(&text, mouse) {
                                        Ok(t) => app.handle_bg(BgEvent::EditedSql(t)),
                                        Err(e) => app.message = format!("editor: {e}"),
                                    }
                                    terminal.clear()?;
                                }
                                other => perform(other, &app, &tx),
                            }
                        }
                        if app.quit {
                            break;
                        }
                    }
                    Some(Ok(Event::Paste(text))) => {
                        for cmd in app.handle_paste(&text) {
                            perform(cmd, &app, &tx);
                        }
                    }
                    Some(Ok(Event::Mouse(m))) => match m.kind {
                        crossterm::event::MouseEventKind::ScrollDown => app.scroll(3),
                        crossterm::event::MouseEventKind::ScrollUp => app.scroll(-3),
                        _ => {}
                    },
                    Some(Ok(Event::Resize(..))) => app.dirty = true,
                    Some(Err(e)) => return Err(anyhow::anyhow!("terminal input: {e}")),
                    None => break,
                    _ => {}
                },
                Some(bg) = rx.recv() => app.handle_bg(bg),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        anyhow::Ok(())
    });
    // A query still running is stopped; background work does not hold the exit (every
    // decision and every generated pair is already committed; a generation run resumes).
    if let app::Results::Running { cancel, .. } = &app.results {
        cancel.cancel();
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
    ratatui::restore();
    result
}
