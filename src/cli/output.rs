//! How the command line shows things: task events as progress bars and lines on stderr,
//! results as tables, CSV or JSON on stdout.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use lode_core::diag::Warning;
use lode_core::sql::QueryResult;
use lode_core::tasks::{Reporter, Stage, StageEvent};

pub fn print_warnings(warnings: &[Warning]) {
    for w in warnings {
        eprintln!("{w}");
    }
}

/// Draws a task's events: a progress bar on a terminal (nothing otherwise), and what the task
/// starts, warns about and (for jobs) each update, as lines on stderr. `Finished` summaries
/// are printed by the command itself, on stdout; a `Failed` error is returned and printed
/// once by `main`.
///
/// In JSON mode ([`EventView::json_lines`], for `--json`) the same is drawn on stderr, and
/// the events also become JSON lines of the command's stream on stdout (`started`,
/// `progress` at most [`PROGRESS_EVERY`] apart plus the end of each phase, `warning`,
/// `update`); the command then prints its `done` line.
pub struct EventView {
    bar: ProgressBar,
    json: Option<Arc<JsonLines>>,
}

/// The least time between two `progress` lines of a stream (the last one of a phase is
/// always written).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl EventView {
    pub fn new() -> EventView {
        let bar = ProgressBar::new(0);
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        EventView { bar, json: None }
    }

    /// The text view on stderr, and with it the events as JSON lines of `command`'s stream
    /// on stdout.
    pub fn json_lines(command: &str) -> EventView {
        let mut view = EventView::new();
        view.json = Some(Arc::new(JsonLines {
            command: command.to_string(),
            state: Mutex::new(Lines::default()),
            items: None,
        }));
        view
    }

    /// [`EventView::json_lines`] with `--json`, else the text view alone.
    pub fn for_stream(json: bool, command: &str) -> EventView {
        if json {
            EventView::json_lines(command)
        } else {
            EventView::new()
        }
    }

    /// In JSON mode, `write` writes the lines for what a tuning task stored (a job's new
    /// events) in place of an `update` line with the task's words; it is called again when
    /// the view finishes, for what is left. Nothing changes in text mode. Call it before
    /// [`EventView::reporter`].
    pub fn with_items(mut self, write: impl Fn() + Send + Sync + 'static) -> EventView {
        if let Some(json) = self.json.as_mut().and_then(Arc::get_mut) {
            json.items = Some(Box::new(write));
        }
        self
    }

    /// The reporter to hand to a task.
    pub fn reporter(&self) -> Reporter {
        let bar = self.bar.clone();
        let json = self.json.clone();
        Reporter::new(move |ev| {
            if let Some(json) = &json {
                json.event(&ev);
            }
            show(&bar, ev)
        })
    }

    /// Removes the bar (before the summary is printed); in JSON mode, writes the progress
    /// not written yet and what is left of the stored items.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        if let Some(json) = &self.json {
            json.finish();
        }
    }
}

impl Default for EventView {
    fn default() -> Self {
        Self::new()
    }
}

fn stage_of(ev: &StageEvent) -> Stage {
    match ev {
        StageEvent::Started { stage, .. }
        | StageEvent::Progress { stage, .. }
        | StageEvent::ItemStored { stage, .. }
        | StageEvent::Warning { stage, .. }
        | StageEvent::Finished { stage, .. }
        | StageEvent::Failed { stage, .. } => *stage,
    }
}

/// A stream's JSON lines: the newest progress, written at most every [`PROGRESS_EVERY`].
struct JsonLines {
    command: String,
    state: Mutex<Lines>,
    items: Option<Box<dyn Fn() + Send + Sync>>,
}

#[derive(Default)]
struct Lines {
    /// The newest progress: stage, unit, done, total.
    phase: Option<(Stage, &'static str, u64, u64)>,
    /// Generation's pairs stored so far, per generator.
    pairs: Option<BTreeMap<String, u64>>,
    pairs_stored: u64,
    /// Whether the newest progress is written, and when a progress line last was.
    written: bool,
    last_written: Option<Instant>,
}

/// A `progress` line: `done` of `total` units of a stage; for generation, the pairs stored
/// so far, in all and per generator (`null` for other stages).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct ProgressLine<'a> {
    stage: &'static str,
    unit: &'static str,
    done: u64,
    total: u64,
    pairs_stored: Option<u64>,
    pairs_by_generator: Option<&'a BTreeMap<String, u64>>,
}

#[derive(Serialize)]
struct StartedLine<'a> {
    stage: &'static str,
    detail: &'a str,
}

#[derive(Serialize)]
struct MessageLine<'a> {
    stage: &'static str,
    message: &'a str,
}

impl JsonLines {
    fn line(&self, event: &str, body: &impl Serialize) {
        // A closed stdout ends lode by SIGPIPE (see main); nothing else to do with an error.
        let _ = super::json::emit_line(&self.command, event, body);
    }

    fn event(&self, ev: &StageEvent) {
        let mut lines = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // What a tuning task stored comes before what it says of it (a job event is stored
        // before its progress and its words are reported).
        if let (Some(write), Stage::Tune) = (&self.items, stage_of(ev)) {
            write();
        }
        match ev {
            StageEvent::Started { stage, detail } => self.line(
                "started",
                &StartedLine {
                    stage: stage.name(),
                    detail,
                },
            ),
            StageEvent::Progress {
                stage,
                done,
                total,
                unit,
            } => {
                let new_phase = lines
                    .phase
                    .is_none_or(|(s, u, ..)| (s, u) != (*stage, *unit));
                lines.phase = Some((*stage, unit, *done, *total));
                lines.written = false;
                let phase_done = *total > 0 && done >= total;
                self.write_progress(&mut lines, new_phase || phase_done);
            }
            StageEvent::ItemStored {
                stage: Stage::Tune,
                what,
            } => match &self.items {
                Some(_) => {} // written above
                None => self.line(
                    "update",
                    &MessageLine {
                        stage: Stage::Tune.name(),
                        message: what,
                    },
                ),
            },
            StageEvent::ItemStored {
                stage: Stage::Generate,
                what,
            } => {
                // "pattern pair (12 stored)", as the generation task words it.
                lines.pairs_stored += 1;
                if let Some((generator, _)) = what.rsplit_once(" pair (") {
                    *lines
                        .pairs
                        .get_or_insert_with(BTreeMap::new)
                        .entry(generator.to_string())
                        .or_insert(0) += 1;
                }
                lines.written = false;
                self.write_progress(&mut lines, false);
            }
            StageEvent::ItemStored { .. } => {}
            StageEvent::Warning { stage, message } => self.line(
                "warning",
                &MessageLine {
                    stage: stage.name(),
                    message,
                },
            ),
            StageEvent::Finished { .. } | StageEvent::Failed { .. } => {}
        }
    }

    /// Writes the newest progress when it is not written yet and `now` or the last
    /// progress line is [`PROGRESS_EVERY`] old.
    fn write_progress(&self, lines: &mut Lines, now: bool) {
        let due = now
            || lines
                .last_written
                .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        let Some((stage, unit, done, total)) = lines.phase else {
            return;
        };
        if lines.written || !due {
            return;
        }
        let generation = stage == Stage::Generate;
        let empty = BTreeMap::new();
        self.line(
            "progress",
            &ProgressLine {
                stage: stage.name(),
                unit,
                done,
                total,
                pairs_stored: generation.then_some(lines.pairs_stored),
                pairs_by_generator: generation.then(|| lines.pairs.as_ref().unwrap_or(&empty)),
            },
        );
        lines.written = true;
        lines.last_written = Some(Instant::now());
    }

    fn finish(&self) {
        let mut lines = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.write_progress(&mut lines, true);
        drop(lines);
        if let Some(write) = &self.items {
            write();
        }
    }
}

fn line(bar: &ProgressBar, text: String) {
    if bar.is_hidden() {
        eprintln!("{text}");
    } else {
        bar.println(text);
    }
}

fn show(bar: &ProgressBar, ev: StageEvent) {
    match ev {
        StageEvent::Started { detail, .. } => line(bar, format!("{detail}…")),
        StageEvent::Progress {
            stage,
            done,
            total,
            unit,
        } => {
            bar.set_prefix(match (stage, unit) {
                (_, "dedup") => "dedup",
                (Stage::Generate, _) => "generating",
                (Stage::Evaluate, _) => "inference",
                (Stage::Tune, _) => "training",
                (Stage::Analyze, _) => "analysis",
            });
            bar.set_length(total);
            bar.set_position(done);
        }
        StageEvent::ItemStored { stage, what } => match stage {
            Stage::Tune => line(bar, format!("  {what}")),
            _ => bar.set_message(what),
        },
        StageEvent::Warning { message, .. } => line(bar, format!("warning: {message}")),
        StageEvent::Finished { .. } | StageEvent::Failed { .. } => {}
    }
}

pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

pub fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{prefix}{l}\n")
            }
        })
        .collect()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints rows as an aligned table, with the truncation and timing underneath.
pub fn write_table(out: &mut impl Write, r: &QueryResult, clip: bool) -> std::io::Result<()> {
    const MAX_WIDTH: usize = 60;
    let cell = |s: String| -> String {
        let s = s.replace(['\n', '\r', '\t'], " ");
        if clip && s.chars().count() > MAX_WIDTH {
            s.chars().take(MAX_WIDTH - 1).collect::<String>() + "…"
        } else {
            s
        }
    };
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| row.iter().map(|v| cell(v.display())).collect())
        .collect();
    let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&r.columns))?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    )?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    let mut note = format!(
        "({} row{}{}, {:.1} ms",
        r.rows.len(),
        if r.rows.len() == 1 { "" } else { "s" },
        if r.truncated {
            ", truncated at the row cap"
        } else {
            ""
        },
        ms(r.elapsed)
    );
    if r.truncated_cells > 0 {
        note.push_str(&format!(", {} long cells cut", r.truncated_cells));
    }
    note.push(')');
    writeln!(out, "{note}")
}

pub fn write_csv(out: &mut impl Write, r: &QueryResult) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(&r.columns)?;
    for row in &r.rows {
        w.write_record(row.iter().map(|v| match v {
            lode_core::sql::Value::Null => String::new(),
            other => other.display(),
        }))?;
    }
    w.flush()?;
    Ok(())
}
