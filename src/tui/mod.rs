//! The terminal UI: `lode` in a project directory opens it. One [`app::App`] owns the panes;
//! this loop reads keys from crossterm's event stream, performs the effects the app asks
//! for as background tasks (every store read and write, every SQL run), feeds their results back, and draws only when something changed,
//! at most about 30 times a second, inside synchronized updates. Nothing outside this module
//! imports ratatui or crossterm.

pub mod app;
#[cfg(feature = "bench")]
pub mod bench;
pub mod chrome;
pub mod diff;
pub mod effect;
pub mod fit;
pub mod highlight;
pub mod keymap;
pub mod panes;
pub mod search;
pub mod theme;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;

use app::App;
use effect::{BgEvent, Effect};
use lode_core::project::Project;
use lode_core::store::Store;
use lode_core::tasks::model::ModelRequest;

/// Builds the app for a project (keymap and theme from config); `model` is what the global
/// flags ask for (`--profile`, `--no-cache`), used by generation and evaluation started here.
pub fn build_app(project: Arc<Project>, store: Arc<Store>, model: ModelRequest) -> Result<App> {
    let ui = &project.config.ui;
    let source = &project.config.source;
    // Only for the line of a bad setting: unreadable, the error names the file alone.
    let text = std::fs::read_to_string(source).unwrap_or_default();
    let keymap = keymap::Keymap::new(&ui.keymap).map_err(|e| {
        let names: Vec<&str> = ui.keymap.keys().map(String::as_str).collect();
        anyhow::anyhow!("{}: {e}", at_line(source, &text, "keymap:", &names, &e))
    })?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = theme::Theme::load(&ui.theme, no_color)
        .map_err(|e| anyhow::anyhow!("{}: {e}", at_line(source, &text, "theme:", &[], &e)))?;
    let mut app = App::new(project, store, keymap, theme);
    app.model = model;
    Ok(app)
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

/// Performs an effect in the background; its result comes back on `tx`. Store reads and
/// writes and SQL runs go to a blocking thread, tasks (generation, evaluation, a job cancel)
/// to the runtime.
pub fn perform(effect: Effect, app: &App, tx: &mpsc::UnboundedSender<BgEvent>) {
    if effect::is_blocking(&effect) {
        let (project, store, tx) = (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
        tokio::task::spawn_blocking(move || {
            if let Some(ev) = effect::run_blocking(effect, &project, &store) {
                // A send fails only when the app has quit; a write is in the store either way.
                let _ = tx.send(ev);
            }
        });
        return;
    }
    match effect {
        Effect::Copy(text) => {
            // OSC 52: the terminal (also over SSH and in tmux with set-clipboard) takes it.
            let b64 = base64(text.as_bytes());
            let mut out = std::io::stdout();
            if let Err(e) = write!(out, "\x1b]52;c;{b64}\x07").and_then(|()| out.flush()) {
                // A send fails only when the app has quit.
                let _ = tx.send(BgEvent::Message(format!("cannot copy: {e}")));
            }
        }
        Effect::ExternalEdit(_) | Effect::Quit => {}
        Effect::Generate => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            let input = lode_core::tasks::generate::GenerateInput {
                model: app.model.clone(),
                ..Default::default()
            };
            tokio::spawn(async move {
                let reporter = stage_reporter(&tx);
                // The outcome is reported as a Finished or Failed event through `reporter`.
                let _ = lode_core::tasks::generate::run(
                    &project,
                    &store,
                    &input,
                    &reporter,
                    lode_core::tasks::CancellationToken::new(),
                )
                .await;
            });
        }
        Effect::Analyze => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            let run = app.review.run_id;
            tokio::task::spawn_blocking(move || {
                let c = lode_core::tasks::analyze::coverage_of(&project, &store, run, 1.5)
                    .map(Box::new)
                    .map_err(|e| e.to_string());
                // A send fails only when the app has quit.
                let _ = tx.send(BgEvent::Coverage(c));
            });
        }
        Effect::Evaluate => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            let input = lode_core::tasks::evaluate::EvaluateInput {
                model: app.model.clone(),
                ..Default::default()
            };
            tokio::spawn(async move {
                let reporter = stage_reporter(&tx);
                // The outcome is reported as a Finished or Failed event through `reporter`.
                let _ = lode_core::tasks::evaluate::run(&project, &store, &input, &reporter).await;
            });
        }
        Effect::CancelJob(id) => {
            let (project, store, tx) =
                (Arc::clone(&app.project), Arc::clone(&app.store), tx.clone());
            tokio::spawn(async move {
                let msg = match lode_core::tasks::tune::cancel(&project, &store, id, "from the TUI")
                    .await
                {
                    Ok(()) => format!("job {id} cancelled"),
                    Err(e) => format!("cannot cancel job {id}: {e}"),
                };
                // A send fails only when the app has quit.
                let _ = tx.send(BgEvent::Message(msg));
            });
        }
        Effect::RunQuery { .. }
        | Effect::LoadRows { .. }
        | Effect::LoadDetail(_)
        | Effect::LoadEval
        | Effect::LoadJobs
        | Effect::LoadJobEvents(_)
        | Effect::LoadDrafts
        | Effect::Write(_) => unreachable!("run on a blocking thread above"),
    }
}

/// A reporter that sends a task's events to the app.
fn stage_reporter(tx: &mpsc::UnboundedSender<BgEvent>) -> lode_core::tasks::Reporter {
    let tx = tx.clone();
    // A send fails only when the app has quit; the task's work is in the store either way.
    lode_core::tasks::Reporter::new(move |ev| {
        let _ = tx.send(BgEvent::Stage(ev));
    })
}

/// Follows every tuning job that has not ended and is not followed yet (as `lode jobs watch`
/// does: the same watcher), so the jobs view shows its progress; each change is in the store
/// before the view is told to reload. Each job is followed once, however often this is called
/// (after every read of the jobs); a job that cannot be followed says why in the footer.
pub fn watch_jobs(app: &mut App, tx: &mpsc::UnboundedSender<BgEvent>) {
    let poll = Duration::from_secs_f64(app.project.config.tune.poll_s.max(0.05));
    for job in app.jobs.to_follow() {
        let id = job.id;
        let provider =
            match lode_core::tune::provider_for(job.provider, &app.project, Arc::clone(&app.store))
            {
                Ok(p) => p,
                Err(e) => {
                    // A send fails only when the app has quit.
                    let _ = tx.send(BgEvent::Message(format!("cannot follow job {id}: {e}")));
                    continue;
                }
            };
        let (store, tx) = (Arc::clone(&app.store), tx.clone());
        tokio::spawn(async move {
            // Sends fail only when the app has quit; the watcher's changes are in the store.
            let show = |_: &lode_core::tune::JobUpdate| {
                let _ = tx.send(BgEvent::JobsChanged);
            };
            let ev = match lode_core::tune::watch(&store, &provider, id, poll, None, &show).await {
                Ok(_) => BgEvent::JobsChanged,
                // A stopped watch says which job and how to watch it again itself.
                Err(e @ lode_core::tune::TuneError::WatchStopped { .. }) => {
                    BgEvent::Message(e.to_string())
                }
                Err(e) => BgEvent::Message(format!("stopped following job {id}: {e}")),
            };
            // A send fails only when the app has quit.
            let _ = tx.send(ev);
        });
    }
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
    // Raw mode and the alternate screen again; the loop keeps drawing on its own terminal
    // (the same stdout), so the one returned here is not needed.
    drop(ratatui::init());
    // The editor may have switched these off on its way out. Best effort: a terminal that
    // refuses them still works (pastes arrive as keys, the wheel does not scroll).
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    status.context("cannot start the editor")?;
    let edited = std::fs::read_to_string(&path)?;
    // A leftover file in the temp directory is harmless; the edit is read already.
    let _ = std::fs::remove_file(&path);
    Ok(edited)
}

/// Runs the TUI until the user quits. Decisions are in the store when shown as saved, and
/// quitting waits for the writes still under way.
pub fn run(project: Project, store: Arc<Store>, model: ModelRequest) -> Result<()> {
    let mut app = build_app(Arc::new(project), store, model)?;
    let rt = lode_core::tasks::runtime()?;
    let mut terminal = ratatui::init();
    // A paste arrives as one event (one edit), not as keys that could trigger actions. Best
    // effort: a terminal without bracketed paste sends keys, as any terminal app gets them.
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    // Mouse capture only on request (ui.mouse): over SSH users select text with the mouse.
    let mouse = app.project.config.ui.mouse;
    if mouse {
        // Best effort: without it the wheel does not scroll, nothing else changes.
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    let result = rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<BgEvent>();
        for e in app.start() {
            perform(e, &app, &tx);
        }
        let mut events = EventStream::new();
        // Reads the jobs again every 2 s: a job submitted elsewhere shows and is followed.
        let every = Duration::from_secs(2);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let frame = Duration::from_millis(33);
        let mut last_draw = Instant::now() - frame;
        loop {
            // Quitting waits for the store writes under way (a decision shown as saving).
            if app.quit && !app.saving() {
                break;
            }
            watch_jobs(&mut app, &tx);
            // A footer message goes after a few seconds (or a few keys).
            let saving = app.saving();
            if app.chrome.tick(&mut app.message, Instant::now(), saving) {
                app.dirty = true;
            }
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
                app.chrome
                    .expires_at()
                    .map_or(Duration::from_secs(3600), |t| {
                        t.saturating_duration_since(Instant::now())
                            .max(Duration::from_millis(50))
                    })
            };
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                        for effect in app.handle_key(k) {
                            match effect {
                                Effect::Quit => {}
                                Effect::ExternalEdit(text) => {
                                    let more = match external_edit(&text, mouse) {
                                        Ok(t) => app.handle_bg(BgEvent::EditedSql(t)),
                                        Err(e) => {
                                            app.message = format!("editor: {e}");
                                            Vec::new()
                                        }
                                    };
                                    for e in more {
                                        perform(e, &app, &tx);
                                    }
                                    terminal.clear()?;
                                }
                                other => perform(other, &app, &tx),
                            }
                        }
                    }
                    Some(Ok(Event::Paste(text))) => {
                        for e in app.handle_paste(&text) {
                            perform(e, &app, &tx);
                        }
                    }
                    Some(Ok(Event::Mouse(m))) => {
                        let effects = match m.kind {
                            crossterm::event::MouseEventKind::ScrollDown => app.scroll(3),
                            crossterm::event::MouseEventKind::ScrollUp => app.scroll(-3),
                            _ => Vec::new(),
                        };
                        for e in effects {
                            perform(e, &app, &tx);
                        }
                    }
                    Some(Ok(Event::Resize(..))) => app.dirty = true,
                    Some(Err(e)) => return Err(anyhow::anyhow!("terminal input: {e}")),
                    None => break,
                    _ => {}
                },
                Some(bg) = rx.recv() => {
                    for e in app.handle_bg(bg) {
                        perform(e, &app, &tx);
                    }
                }
                _ = tick.tick() => {
                    for e in app.on_tick() {
                        perform(e, &app, &tx);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        anyhow::Ok(())
    });
    // A query still running is stopped; background work does not hold the exit (every
    // decision and every generated pair is already committed; a generation run resumes).
    app.results.cancel();
    rt.shutdown_timeout(Duration::from_secs(2));
    // Restoring the terminal on the way out is best effort: there is nothing left to tell.
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
    ratatui::restore();
    result
}
