//! How the command line shows things: task events as progress bars and lines on stderr,
//! results as tables, CSV or JSON on stdout.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
pub struct EventView {
    bar: ProgressBar,
}

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
        EventView { bar }
    }

    /// The reporter to hand to a task.
    pub fn reporter(&self) -> Reporter {
        let bar = self.bar.clone();
        Reporter::new(move |ev| show(&bar, ev))
    }

    /// Removes the bar (before the summary is printed).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for EventView {
    fn default() -> Self {
        Self::new()
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
