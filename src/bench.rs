//! `lode bench`: throughput of the safe executor and of SQL analysis on Spider's dev
//! queries, and the wall time of generating the demo project. Figures, not assertions: the
//! machines this runs on are shared and noisy, so each measurement is repeated and the best
//! and median are shown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::BenchArgs;
use crate::project::load_gold_set;
use crate::sql::{Database, ExecLimits};

/// One measured figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    pub best: f64,
    pub median: f64,
}

pub fn run(args: &BenchArgs) -> Result<i32> {
    let repeat = args.repeat.max(1);
    let mut figures = Vec::new();
    match spider_workload(&args.spider)? {
        Some(workload) => {
            let n = workload.len() as f64;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            figures.push(rate("executor, 1 thread", n, repeat, || {
                execute_all(&workload, 1)
            })?);
            figures.push(rate(
                &format!("executor, {threads} threads"),
                n,
                repeat,
                || execute_all(&workload, threads),
            )?);
            let sqls: Vec<&str> = workload.iter().map(|(_, sql)| sql.as_str()).collect();
            figures.push(rate("analysis, 1 thread", n, repeat, || {
                analyze_all(&sqls)
            })?);
        }
        None => eprintln!(
            "skipping the Spider benchmarks: {} not found (it lives in ../shared/data)",
            args.spider.display()
        ),
    }
    figures.push(wall("lode demo (write the project)", repeat, demo_once)?);
    println!("{:<40} {:>14} {:>14}", "benchmark", "best", "median");
    for f in &figures {
        println!(
            "{:<40} {:>10.1} {:<3} {:>10.1} {:<3}",
            f.name, f.best, f.unit, f.median, f.unit
        );
    }
    Ok(0)
}

type Workload = Vec<(Arc<Database>, String)>;

/// The 318 spider_dev11 gold queries, each with its database opened read-only.
fn spider_workload(dir: &Path) -> Result<Option<Workload>> {
    let dev = dir.join("dev.json");
    if !dev.exists() {
        return Ok(None);
    }
    let pairs = load_gold_set(&dev)?.items;
    let mut dbs: BTreeMap<String, Arc<Database>> = BTreeMap::new();
    let mut out = Vec::with_capacity(pairs.len());
    for p in pairs {
        let Some(db_id) = p.db_id.clone() else {
            bail!("{}: an entry has no db_id", dev.display());
        };
        let db = match dbs.get(&db_id) {
            Some(db) => db.clone(),
            None => {
                let path: PathBuf = dir
                    .join("database")
                    .join(&db_id)
                    .join(format!("{db_id}.sqlite"));
                let db = Arc::new(
                    Database::open(&path, ExecLimits::default())
                        .with_context(|| format!("opening {}", path.display()))?,
                );
                dbs.insert(db_id, db.clone());
                db
            }
        };
        out.push((db, p.sql));
    }
    Ok(Some(out))
}

/// Runs every query once, split over `threads` threads. A failing gold query would make the
/// figure meaningless, so it stops the benchmark with its error.
fn execute_all(workload: &Workload, threads: usize) -> Result<()> {
    let chunk = workload.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = workload
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || -> Result<()> {
                    for (db, sql) in part {
                        db.query(sql)
                            .with_context(|| format!("gold query failed: {sql}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
        }
        Ok(())
    })
}

fn analyze_all(sqls: &[&str]) -> Result<()> {
    for sql in sqls {
        std::hint::black_box(crate::sql::analyze::analyze(sql, None))?;
    }
    Ok(())
}

fn demo_once() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("lode-bench-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result =
        crate::project::demo::write_demo(&dir, &crate::project::demo::DemoOptions::default());
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|_| ()).map_err(Into::into)
}

fn timings(repeat: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    f()?; // warm-up: page cache, pooled connections
    let mut out = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        f()?;
        out.push(t.elapsed());
    }
    out.sort();
    Ok(out)
}

fn rate(name: &str, items: f64, repeat: usize, f: impl FnMut() -> Result<()>) -> Result<Figure> {
    let t = timings(repeat, f)?;
    Ok(Figure {
        name: name.to_string(),
        unit: "q/s".into(),
        best: items / t[0].as_secs_f64(),
        median: items / t[t.len() / 2].as_secs_f64(),
    })
}

fn wall(name: &str, repeat: usize, f: impl FnMut() -> Result<()>) -> Result<Figure> {
    let t = timings(repeat, f)?;
    Ok(Figure {
        name: name.to_string(),
        unit: "ms".into(),
        best: t[0].as_secs_f64() * 1000.0,
        median: t[t.len() / 2].as_secs_f64() * 1000.0,
    })
}
