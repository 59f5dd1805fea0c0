//! `lode bench`: throughput of the safe executor and of SQL analysis on Spider's dev
//! queries, and the wall time of generating the demo project. Figures, not assertions: the
//! machines this runs on are shared and noisy, so each measurement is repeated and the best
//! and median are shown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use clap::Args;
use lode_core::project::load_gold_set;
use lode_core::sql::{Database, ExecLimits};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Spider data directory (with dev.json and database/).
    #[arg(long, default_value = "../shared/data/spider_dev11")]
    pub spider: PathBuf,
    /// Repetitions of each measurement (the best and the median are reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Keep the generated evaluation files (gold and prediction variants) in DIR.
    #[arg(long, value_name = "DIR")]
    pub keep_files: Option<PathBuf>,
    /// Run only these groups (comma-separated): spider, eval, demo, llm, generate, tui,
    /// limits, reward.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    pub only: Vec<String>,
    /// Pairs in the store for the TUI benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub tui_pairs: usize,
    /// The TUI benchmark's child process: open DIR, draw one frame, report (the benchmark
    /// starts it; only in builds with the bench feature).
    #[arg(long, value_name = "DIR", hide = true)]
    pub tui_child: Option<PathBuf>,
}

/// One measured figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    pub best: f64,
    pub median: f64,
}

/// `lode bench`'s document: the figures and the reference they are read against.
#[derive(Debug, serde::Serialize)]
struct BenchDoc<'a> {
    figures: &'a [Figure],
    reference: &'a str,
    reference_source: &'a str,
}

/// The reference evaluators' figures the evaluation ones are read against, and where they
/// were measured.
const REFERENCE: &str = "test-suite ≈ 3.5 ms/pair, BIRD ≈ 0.45 ms/pair (2 processes)";
const REFERENCE_SOURCE: &str = "research/evaluation.md §1.9, this machine";

pub fn run(globals: &super::Globals, args: &BenchArgs) -> Result<i32> {
    if let Some(dir) = &args.tui_child {
        crate::tui::bench::child(dir)?;
        return Ok(0);
    }
    const GROUPS: [&str; 8] = [
        "spider", "eval", "demo", "llm", "generate", "tui", "limits", "reward",
    ];
    if let Some(bad) = args.only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
        return Err(super::exit::usage(
            format!("--only: no benchmark group `{bad}`"),
            format!("groups are {}", GROUPS.join(", ")),
        ));
    }
    let want = |g: &str| args.only.is_empty() || args.only.iter().any(|o| o == g);
    let repeat = args.repeat.max(1);
    let mut figures = Vec::new();
    let workload = if want("spider") {
        spider_workload(&args.spider)?
    } else {
        None
    };
    match workload {
        _ if !want("spider") => {}
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
            figures.extend(eval_files_figures(args, repeat)?);
        }
        None => eprintln!(
            "skipping the Spider benchmarks: {} not found (it lives in ../shared/data)",
            args.spider.display()
        ),
    }
    if want("eval") {
        if args.spider.join("gold.sql").exists() {
            figures.extend(eval_floor_figures(args, repeat)?);
        } else {
            eprintln!(
                "skipping the evaluation floor: {} not found (it lives in ../shared/data)",
                args.spider.join("gold.sql").display()
            );
        }
    }
    if want("demo") {
        figures.push(wall("lode demo (write the project)", repeat, demo_once)?);
    }
    if want("llm") {
        figures.extend(llm_client_figures()?);
    }
    if want("generate") {
        figures.extend(generation_figures()?);
        figures.push(offline_generation_figure()?);
    }
    if want("tui") {
        figures.extend(tui_figures(args.tui_pairs, repeat)?);
    }
    if want("limits") {
        figures.extend(limits_figures(repeat)?);
    }
    if want("reward") {
        if args.spider.join("gold.sql").exists() {
            figures.extend(reward_figures(args, repeat)?);
        } else {
            eprintln!(
                "skipping the reward service: {} not found (it lives in ../shared/data)",
                args.spider.join("gold.sql").display()
            );
        }
    }
    if globals.json {
        super::json::emit(
            "bench",
            &BenchDoc {
                figures: &figures,
                reference: REFERENCE,
                reference_source: REFERENCE_SOURCE,
            },
        )?;
        return Ok(0);
    }
    println!("{:<72} {:>18} {:>18}", "benchmark", "best", "median");
    for f in &figures {
        println!(
            "{:<72} {:>10.3} {:<7} {:>10.3} {:<7}",
            f.name, f.best, f.unit, f.median, f.unit
        );
    }
    println!("reference ({REFERENCE_SOURCE}): {REFERENCE}");
    Ok(0)
}

type Workload = Vec<(Arc<Database>, String)>;

/// Predictions of our own making for a gold query, right and wrong: the gold itself, DISTINCT
/// toggled, ORDER BY direction flipped (or added), LIMIT changed (or added), a syntax error,
/// and the gold followed by a hostile second statement.
pub fn prediction_variants(gold: &str) -> Vec<String> {
    let upper = gold.to_uppercase();
    let distinct = match upper.find("SELECT DISTINCT ") {
        Some(i) => format!(
            "{}SELECT {}",
            &gold[..i],
            &gold[i + "SELECT DISTINCT ".len()..]
        ),
        None => gold.replacen("SELECT ", "SELECT DISTINCT ", 1).replacen(
            "select ",
            "select DISTINCT ",
            1,
        ),
    };
    let direction = if let Some(i) = upper.rfind(" DESC") {
        format!("{} ASC{}", &gold[..i], &gold[i + 5..])
    } else if let Some(i) = upper.rfind(" ASC") {
        format!("{} DESC{}", &gold[..i], &gold[i + 4..])
    } else if !upper.contains("ORDER BY") && !upper.contains("LIMIT") {
        format!("{gold} ORDER BY 1 DESC")
    } else {
        gold.to_string()
    };
    let limit = match upper.rfind("LIMIT ") {
        Some(i) => {
            let rest = &gold[i + 6..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            match digits.parse::<u64>() {
                Ok(n) => format!("{}LIMIT {}{}", &gold[..i], n + 1, &rest[digits.len()..]),
                Err(_) => gold.to_string(),
            }
        }
        None => format!("{gold} LIMIT 1"),
    };
    vec![
        gold.to_string(),
        distinct,
        direction,
        limit,
        format!("SELEC{}", gold.get(6..).unwrap_or("")),
        format!("{gold}; DROP TABLE IF EXISTS sqlite_master"),
    ]
}

/// A gold file and a prediction file to evaluate, and how many pairs they hold.
struct EvalSet {
    name: &'static str,
    gold: PathBuf,
    pred: PathBuf,
    pairs: usize,
}

/// Writes gold-vs-gold files and own-prediction files (6 variants per question) into `dir`.
fn write_eval_files(spider: &Path, dir: &Path) -> Result<Vec<EvalSet>> {
    let gold_path = spider.join("gold.sql");
    let gold = std::fs::read_to_string(&gold_path)
        .with_context(|| format!("cannot read {}", gold_path.display()))?;
    let lines: Vec<&str> = gold.lines().filter(|l| !l.trim().is_empty()).collect();
    std::fs::create_dir_all(dir)?;
    let mut gold_all = String::new();
    let mut pred_all = String::new();
    let mut pred_gold = String::new();
    for line in &lines {
        let sql = line.split('\t').next().unwrap_or("");
        pred_gold.push_str(sql);
        pred_gold.push('\n');
        for v in prediction_variants(sql) {
            gold_all.push_str(line);
            gold_all.push('\n');
            pred_all.push_str(&v.replace('\n', " "));
            pred_all.push('\n');
        }
    }
    let set = |name, gold: PathBuf, pred: PathBuf, text: &str, pairs| -> Result<EvalSet> {
        std::fs::write(&pred, text)?;
        Ok(EvalSet {
            name,
            gold,
            pred,
            pairs,
        })
    };
    std::fs::write(dir.join("gold_all.sql"), gold_all)?;
    Ok(vec![
        set(
            "gold-vs-gold",
            gold_path.clone(),
            dir.join("pred_gold.sql"),
            &pred_gold,
            lines.len(),
        )?,
        set(
            "own predictions (6 per question)",
            dir.join("gold_all.sql"),
            dir.join("pred_all.sql"),
            &pred_all,
            lines.len() * 6,
        )?,
    ])
}

/// Wall time per pair of whole `lode eval-files` processes, per profile, on gold-vs-gold and
/// on our own predictions.
fn eval_files_figures(args: &BenchArgs, repeat: usize) -> Result<Vec<Figure>> {
    let exe = std::env::current_exe().context("cannot find the lode executable")?;
    let dir = match &args.keep_files {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("lode-bench-eval-{}", std::process::id())),
    };
    let sets = write_eval_files(&args.spider, &dir)?;
    let mut figures = Vec::new();
    for profile in lode_core::sql::compare::PROFILE_NAMES {
        for set in &sets {
            let run = || -> Result<()> {
                let status = std::process::Command::new(&exe)
                    .arg("eval-files")
                    .arg("--gold")
                    .arg(&set.gold)
                    .arg("--pred")
                    .arg(&set.pred)
                    .arg("--db-dir")
                    .arg(args.spider.join("database"))
                    .args(["--profile", profile])
                    .stdout(std::process::Stdio::null())
                    .status()?;
                if !status.success() {
                    bail!("lode eval-files failed ({status})");
                }
                Ok(())
            };
            let t = timings(repeat, run)?;
            figures.push(Figure {
                name: format!("eval-files {profile}, {}", set.name),
                unit: "ms/pair".into(),
                best: t[0].as_secs_f64() * 1000.0 / set.pairs as f64,
                median: t[t.len() / 2].as_secs_f64() * 1000.0 / set.pairs as f64,
            });
        }
    }
    if args.keep_files.is_none() {
        // Scratch space of the benchmark: a leftover is harmless.
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("evaluation files kept in {}", dir.display());
    }
    Ok(figures)
}

/// `lode eval-files` beside the floor it cannot beat, over the same pairs in the same run.
///
/// The floor is SQLite executing each pair's prediction, and each distinct gold query once
/// (its result cached), with every row fetched into owned values, as the issue's reference
/// floor (Python's `sqlite3`, `execute` then `fetchall`) does; nothing is compared. It is
/// measured on one thread and on every core (each thread takes a contiguous share of the
/// pairs). Beside it: the same work reading each cell in place without copying it (a
/// floor below any evaluator that compares results), lode's executor alone (limits,
/// authorizer, progress checks), and the whole `lode eval-files` process (lode profile,
/// default threads), whose ratio to the parallel floor is the target.
fn eval_floor_figures(args: &BenchArgs, repeat: usize) -> Result<Vec<Figure>> {
    let dir = std::env::temp_dir().join(format!("lode-bench-floor-{}", std::process::id()));
    let sets = write_eval_files(&args.spider, &dir)?;
    let set = sets
        .iter()
        .find(|s| s.pairs > 1000)
        .context("no prediction set was written")?;
    let gold = std::fs::read_to_string(&set.gold)?;
    let pred = std::fs::read_to_string(&set.pred)?;
    let pairs: Vec<(String, String, String)> = gold
        .lines()
        .zip(pred.lines())
        .filter_map(|(g, p)| {
            let (sql, db) = g.rsplit_once('\t')?;
            Some((db.trim().to_string(), sql.to_string(), p.to_string()))
        })
        .collect();
    let n = pairs.len() as f64;
    let db_dir = args.spider.join("database");
    let db_dir = db_dir.as_path();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let floor = |chunks: usize, fetch: Fetch| -> Result<()> {
        let per = pairs.len().div_ceil(chunks);
        std::thread::scope(|scope| -> Result<()> {
            let handles: Vec<_> = pairs
                .chunks(per.max(1))
                .map(|chunk| scope.spawn(move || floor_run(db_dir, chunk, fetch)))
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a floor thread panicked"))??;
            }
            Ok(())
        })
    };
    let seq = timings(repeat, || floor(1, Fetch::Owned))?;
    let par = timings(repeat, || floor(threads, Fetch::Owned))?;
    let raw = timings(repeat, || floor(threads, Fetch::InPlace))?;
    let exec1 = timings(repeat, || executor_run(db_dir, &pairs))?;
    let python = python_floor(&set.gold, &set.pred, db_dir, threads, repeat);
    let exe = std::env::current_exe().context("cannot find the lode executable")?;
    let lode = timings(repeat, || {
        let status = std::process::Command::new(&exe)
            .arg("eval-files")
            .arg("--gold")
            .arg(&set.gold)
            .arg("--pred")
            .arg(&set.pred)
            .arg("--db-dir")
            .arg(db_dir)
            .args(["--profile", "lode"])
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("lode eval-files failed ({status})");
        }
        Ok(())
    })?;
    // Scratch space of the benchmark: a leftover is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / n;
    let median = |t: &[Duration]| t[t.len() / 2];
    let figure = |name: String, t: &[Duration]| Figure {
        name,
        unit: "ms/pair".into(),
        best: ms(t[0]),
        median: ms(median(t)),
    };
    let mut figures = vec![
        figure(
            format!(
                "floor: SQLite executes and fetches, {} pairs, 1 thread",
                pairs.len()
            ),
            &seq,
        ),
        figure(
            format!("floor: SQLite executes and fetches, {threads} threads"),
            &par,
        ),
        figure(
            format!("  (below it: cells read in place, never copied, {threads} threads)"),
            &raw,
        ),
        figure("lode's executor alone, 1 thread".into(), &exec1),
        figure(
            "lode eval-files (lode profile, whole process)".into(),
            &lode,
        ),
        Figure {
            name: format!("  ratio to the {threads}-thread floor (target ≤ 1.2)"),
            unit: "x".into(),
            best: lode[0].as_secs_f64() / par[0].as_secs_f64(),
            median: median(&lode).as_secs_f64() / median(&par).as_secs_f64(),
        },
    ];
    match python {
        Ok(py) => {
            figures.push(figure(
                format!("floor as the issue measured it: Python sqlite3, {threads} processes"),
                &py,
            ));
            figures.push(Figure {
                name: "  ratio of lode eval-files to it".into(),
                unit: "x".into(),
                best: lode[0].as_secs_f64() / py[0].as_secs_f64(),
                median: median(&lode).as_secs_f64() / median(&py).as_secs_f64(),
            });
        }
        Err(e) => eprintln!("skipping the Python sqlite3 floor: {e:#}"),
    }
    Ok(figures)
}

/// The floor as the issue first measured it: Python's `sqlite3` executing each pair's
/// prediction and each distinct gold query once, `fetchall` each, the pairs split into
/// contiguous shares over `processes` processes; the loop's own time (interpreter start-up
/// left out), as reported by the script, `repeat` times. Needs `python3` on the PATH.
fn python_floor(
    gold: &Path,
    pred: &Path,
    db_dir: &Path,
    processes: usize,
    repeat: usize,
) -> Result<Vec<Duration>> {
    const SCRIPT: &str = r#"
import sqlite3, sys, time
from multiprocessing import Pool

def share(args):
    pairs, db_dir = args
    conns, golds = {}, {}
    def run(conn, sql):
        try:
            return conn.execute(sql).fetchall()
        except Exception:
            return None
    start = time.perf_counter()
    for db, gold, pred in pairs:
        conn = conns.get(db)
        if conn is None:
            conn = sqlite3.connect(f"file:{db_dir}/{db}/{db}.sqlite?mode=ro", uri=True)
            conns[db] = conn
        if (db, gold) not in golds:
            golds[(db, gold)] = run(conn, gold)
        run(conn, pred)
    return start, time.perf_counter()

if __name__ == "__main__":
    gold_file, pred_file, db_dir, processes, repeat = sys.argv[1:6]
    processes, repeat = int(processes), int(repeat)
    pairs = []
    with open(gold_file) as g, open(pred_file) as p:
        for gl, pl in zip(g, p):
            sql, _, db = gl.rstrip("\n").rpartition("\t")
            pairs.append((db.strip(), sql, pl.rstrip("\n")))
    per = -(-len(pairs) // processes)
    shares = [(pairs[i:i + per], db_dir) for i in range(0, len(pairs), per)]
    with Pool(processes) as pool:
        pool.map(share, shares)  # warm-up: page cache, worker start
        for _ in range(repeat):
            spans = pool.map(share, shares)
            print(max(e for _, e in spans) - min(s for s, _ in spans))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(gold)
        .arg(pred)
        .arg(db_dir)
        .arg(processes.to_string())
        .arg(repeat.to_string())
        .output()
        .context("cannot run python3")?;
    if !out.status.success() {
        bail!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut times: Vec<Duration> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .collect();
    if times.is_empty() {
        bail!("python3 printed no timings");
    }
    times.sort();
    Ok(times)
}

/// How the floor reads a result.
#[derive(Clone, Copy)]
enum Fetch {
    /// Every cell copied into an owned value, rows kept (as `fetchall`).
    Owned,
    /// Every cell looked at where SQLite holds it; nothing kept.
    InPlace,
}

/// The floor's work for some pairs: each database opened once, read-only; each distinct
/// gold query executed once; every prediction executed and its rows read.
fn floor_run(db_dir: &Path, pairs: &[(String, String, String)], fetch: Fetch) -> Result<()> {
    use rusqlite::types::Value as Cell;
    use std::collections::HashMap;
    let mut conns: HashMap<&str, rusqlite::Connection> = HashMap::new();
    let mut gold_rows: HashMap<(&str, &str), Vec<Vec<Cell>>> = HashMap::new();
    let run = |conn: &rusqlite::Connection, sql: &str| -> Vec<Vec<Cell>> {
        let Ok(mut stmt) = conn.prepare(sql) else {
            return Vec::new();
        };
        let cols = stmt.column_count();
        let Ok(mut rows) = stmt.query([]) else {
            return Vec::new();
        };
        let mut kept = Vec::new();
        while let Ok(Some(row)) = rows.next() {
            match fetch {
                Fetch::Owned => kept.push(
                    (0..cols)
                        .map(|i| row.get::<_, Cell>(i).unwrap_or(Cell::Null))
                        .collect(),
                ),
                Fetch::InPlace => {
                    for i in 0..cols {
                        let _ = std::hint::black_box(row.get_ref(i));
                    }
                }
            }
        }
        kept
    };
    for (db, gold, pred) in pairs {
        if !conns.contains_key(db.as_str()) {
            let path = db_dir.join(db).join(format!("{db}.sqlite"));
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("cannot open {}", path.display()))?;
            conns.insert(db.as_str(), conn);
        }
        let conn = &conns[db.as_str()];
        gold_rows
            .entry((db.as_str(), gold.as_str()))
            .or_insert_with(|| run(conn, gold));
        std::hint::black_box(run(conn, pred));
    }
    Ok(())
}

/// The floor's work through lode's executor (limits, authorizer, owned rows, its own
/// connection pool, a snapshot held per database), on one thread.
fn executor_run(db_dir: &Path, pairs: &[(String, String, String)]) -> Result<()> {
    use std::collections::HashMap;
    let mut dbs: HashMap<&str, Database> = HashMap::new();
    for (db, _, _) in pairs {
        if !dbs.contains_key(db.as_str()) {
            let path = db_dir.join(db).join(format!("{db}.sqlite"));
            dbs.insert(db.as_str(), Database::open(&path, ExecLimits::default())?);
        }
    }
    // As an evaluation holds them (see `evaluate_items`).
    let _snapshots: Vec<_> = dbs.values().map(Database::snapshot).collect();
    let mut gold_rows: HashMap<(&str, &str), usize> = HashMap::new();
    for (db, gold, pred) in pairs {
        let d = &dbs[db.as_str()];
        gold_rows
            .entry((db.as_str(), gold.as_str()))
            .or_insert_with(|| d.query(gold).map_or(0, |r| r.rows.len()));
        std::hint::black_box(d.query(pred).map_or(0, |r| r.rows.len()));
    }
    Ok(())
}

/// The TUI with `pairs` pairs in the store: start → first frame and peak memory of fresh
/// processes, and key press → finished frame (median and worst) per kind of key.
fn tui_figures(pairs: usize, repeat: usize) -> Result<Vec<Figure>> {
    let r = crate::tui::bench::run(pairs, repeat)?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let k = pairs / 1000;
    let mut figures = vec![
        Figure {
            name: format!("tui start → first frame, {k}k pairs (< 300)"),
            unit: "ms".into(),
            best: ms(r.first_frame[0]),
            median: ms(r.first_frame[r.first_frame.len() / 2]),
        },
        Figure {
            name: format!("tui peak resident memory, {k}k pairs (< 200)"),
            unit: "MB".into(),
            best: r.peak_rss_mb[0],
            median: r.peak_rss_mb[r.peak_rss_mb.len() / 2],
        },
    ];
    for key in &r.keys {
        let t = &key.times;
        figures.push(Figure {
            name: format!("tui key → frame: {} (median)", key.name),
            unit: "ms".into(),
            best: ms(t[0]),
            median: ms(t[t.len() / 2]),
        });
        figures.push(Figure {
            name: format!("tui key → frame: {} (worst)", key.name),
            unit: "ms".into(),
            best: ms(t[t.len() - 1]),
            median: ms(t[t.len() - 1]),
        });
    }
    Ok(figures)
}

/// CPU time (user + system) of this process so far, from /proc (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
}

/// 400 calls through the LLM client at concurrency 8 against a fake provider answering in
/// 200 ms: wall time against the ideal 400 × 0.2 s / 8 = 10 s, and CPU time per call (the
/// fake server's share included, so the client's own is lower).
fn llm_client_figures() -> Result<Vec<Figure>> {
    use lode_core::llm::{
        ClientOptions, LlmClient, LlmRequest, Message, OpenAiBackend, OutputSchema,
    };
    use lode_testkit::{FakeResponse, FakeServer};
    let rt = lode_core::tasks::runtime()?;
    let (wall, cpu) = rt.block_on(async {
        let server = FakeServer::start(|_| {
            FakeResponse::chat("{\"sql\": \"SELECT 1\"}").with_delay(Duration::from_millis(200))
        })
        .await?;
        let backend = Arc::new(
            OpenAiBackend::new(
                &server.url(),
                "bench",
                None,
                serde_json::json!({}),
                Duration::from_secs(30),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let client = Arc::new(LlmClient::new(
            backend,
            ClientOptions {
                max_concurrency: 8,
                use_cache: false,
                ..ClientOptions::default()
            },
            None,
        ));
        let cpu0 = cpu_time();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..400 {
            let c = Arc::clone(&client);
            tasks.push(tokio::spawn(async move {
                let req = LlmRequest::new("bench", vec![Message::user(format!("question {i}"))])
                    .with_schema(OutputSchema::new("a", &[("sql", "str")]));
                c.call(&req).await
            }));
        }
        for t in tasks {
            t.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let wall = start.elapsed();
        let cpu = match (cpu0, cpu_time()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        anyhow::Ok((wall, cpu))
    })?;
    let mut figures = vec![Figure {
        name: "llm client, 400 calls, 200 ms, conc. 8 (ideal 10 s)".into(),
        unit: "s".into(),
        best: wall.as_secs_f64(),
        median: wall.as_secs_f64(),
    }];
    if let Some(cpu) = cpu {
        figures.push(Figure {
            name: "llm client CPU per call (incl. fake server)".into(),
            unit: "ms".into(),
            best: cpu.as_secs_f64() * 1000.0 / 400.0,
            median: cpu.as_secs_f64() * 1000.0 / 400.0,
        });
    }
    Ok(figures)
}

/// A generation run over the demo's 25 gold pairs (pattern, variation and decomposer: about
/// 10 calls per gold pair) against a fake provider answering in 200 ms, at concurrency 8,
/// against the ideal calls × 0.2 s / 8.
fn generation_figures() -> Result<Vec<Figure>> {
    use lode_testkit::{FakeResponse, FakeServer};
    let dir = std::env::temp_dir().join(format!("lode-bench-gen-{}", std::process::id()));
    // Scratch space of the benchmark: a leftover is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    lode_core::project::demo::write_demo(&dir, &lode_core::project::demo::DemoOptions::default())?;
    let rt = lode_core::tasks::runtime()?;
    let result = rt.block_on(async {
        let server = FakeServer::start(|r| {
            let body = r.json();
            let system = body["messages"][0]["content"].as_str().unwrap_or("").to_string();
            let user = body["messages"][1]["content"].as_str().unwrap_or("").to_string();
            let tag = user.len() * 131 + user.bytes().map(|b| b as usize).sum::<usize>();
            // The tag in letters, so the agreement check sees no number the SQL lacks.
            let tag: String = tag
                .to_string()
                .bytes()
                .map(|d| char::from(b'a' + (d - b'0')))
                .collect();
            let delay = Duration::from_millis(200);
            if system.contains("precise SQL queries") {
                return FakeResponse::chat(
                    &serde_json::json!({"sql_query": format!("SELECT name AS n_{tag} FROM stores")}).to_string(),
                )
                .with_delay(delay);
            }
            FakeResponse::chat(
                &serde_json::json!({"q1": format!("Which stores are there ({tag})?"), "q2": format!("Name the stores ({tag} too)."), "q3": format!("List the stores ({tag} again).")})
                    .to_string(),
            )
            .with_delay(delay)
        })
        .await?;
        let path = dir.join("config.yml");
        let text = std::fs::read_to_string(&path)?;
        let base = text.split("\nllm:").next().unwrap_or("").to_string();
        std::fs::write(
            &path,
            format!(
                "{base}\nllm:\n  default: fake\n  profiles:\n    fake:\n      kind: openai\n      base_url: {}/v1\n      model: fake\n      max_concurrency: 8\n      timeout_s: 30\ngenerate:\n  per_gold:\n    pattern: 1\n    variation: 1\n    decomposer: 1\n",
                server.url()
            ),
        )?;
        let project = lode_core::project::Project::load(&path)?;
        let (store, snapshot) = project.open_store()?;
        let store = Arc::new(store);
        let client = lode_core::tasks::model::profile_client(&project, Some(Arc::clone(&store)), None, true, None)?;
        let start = Instant::now();
        let summary = lode_core::pipeline::generate::run(
            &project,
            Arc::clone(&store),
            client,
            snapshot,
            &lode_core::pipeline::generate::GenerateOptions::default(),
            Arc::new(|_| {}),
        )
        .await?;
        let wall = start.elapsed();
        let calls = server.count();
        anyhow::Ok((wall, calls, summary.totals().valid))
    });
    // Scratch space of the benchmark: a leftover is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    let (wall, calls, valid) = result?;
    let ideal = calls as f64 * 0.2 / 8.0;
    Ok(vec![
        Figure {
            name: format!("generate, 25 gold, {calls} calls, 200 ms, conc. 8"),
            unit: "s".into(),
            best: wall.as_secs_f64(),
            median: wall.as_secs_f64(),
        },
        Figure {
            name: format!("  ratio to the ideal {ideal:.2} s ({valid} valid pairs)"),
            unit: "x".into(),
            best: wall.as_secs_f64() / ideal,
            median: wall.as_secs_f64() / ideal,
        },
    ])
}

/// Offline generation (the rules backend) on the demo project, asked for over 500 pairs:
/// every built-in generator at 3 calls per gold pair and 40 SQL-first pairs per level.
fn offline_generation_figure() -> Result<Figure> {
    let dir = std::env::temp_dir().join(format!("lode-bench-offline-{}", std::process::id()));
    // Scratch space of the benchmark: a leftover is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    lode_core::project::demo::write_demo(&dir, &lode_core::project::demo::DemoOptions::default())?;
    let path = dir.join("config.yml");
    let text = std::fs::read_to_string(&path)?;
    let base = text.split("\ngenerate:").next().unwrap_or("").to_string();
    std::fs::write(
        &path,
        format!(
            "{base}\ngenerate:\n  per_gold:\n    pattern: 3\n    variation: 3\n    decomposer: 3\n    comparative: 3\n    edge_case: 3\n    granular: 3\n    paraphrase: 3\n  sql_first: 40\n"
        ),
    )?;
    let project = lode_core::project::Project::load(&path)?;
    let (store, snapshot) = project.open_store()?;
    let store = Arc::new(store);
    let rt = lode_core::tasks::runtime()?;
    let start = Instant::now();
    let summary = rt.block_on(async {
        let client = lode_core::tasks::model::profile_client(
            &project,
            Some(Arc::clone(&store)),
            Some("rules"),
            true,
            None,
        )?;
        anyhow::Ok(
            lode_core::pipeline::generate::run(
                &project,
                Arc::clone(&store),
                client,
                snapshot,
                &lode_core::pipeline::generate::GenerateOptions::default(),
                Arc::new(|_| {}),
            )
            .await?,
        )
    })?;
    let wall = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let t = summary.totals();
    let made = t.valid + t.fixed + t.failed + t.duplicate + t.leakage;
    Ok(Figure {
        name: format!(
            "offline generation, {made} pairs ({} valid, {} templates; target < 30 s for 500)",
            t.valid, summary.diversity.templates
        ),
        unit: "s".into(),
        best: wall,
        median: wall,
    })
}

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
        std::hint::black_box(lode_core::sql::analyze::analyze(sql, None))?;
    }
    Ok(())
}

fn demo_once() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("lode-bench-demo-{}", std::process::id()));
    // Scratch space of the benchmark: a leftover is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    let result = lode_core::project::demo::write_demo(
        &dir,
        &lode_core::project::demo::DemoOptions::default(),
    );
    // Scratch space of the benchmark: a leftover is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|_| ()).map_err(Into::into)
}

/// How far past its deadline, and how long after a cancel, a query someone waits for answers
/// when SQLite is inside one step it cannot interrupt (a 20-deep `replace()` chain over a
/// 100 MB string). Targets: deadline + 0.5 s, cancel 0.5 s.
fn limits_figures(repeat: usize) -> Result<Vec<Figure>> {
    let dir = std::env::temp_dir().join(format!("lode-bench-limits-{}", std::process::id()));
    lode_core::project::demo::write_demo(&dir, &lode_core::project::demo::DemoOptions::default())?;
    let path = dir.join("bakery.sqlite");
    let limits = ExecLimits {
        timeout: Duration::from_millis(500),
        ..ExecLimits::default()
    };
    let db = Arc::new(Database::open(&path, limits)?);
    let mut chain = "printf('%.*c', 100000000, 'x')".to_string();
    for i in 0..20 {
        let (a, b) = if i % 2 == 0 { ("x", "y") } else { ("y", "x") };
        chain = format!("replace({chain}, '{a}', '{b}')");
    }
    let sql = format!("SELECT length({chain})");
    let mut past_deadline = Vec::new();
    let mut after_cancel = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let r = db.query_detached(&sql, limits, None);
        if !matches!(r, Err(lode_core::sql::ExecError::Timeout { .. })) {
            bail!("the replace chain was not stopped at its deadline: {r:?}");
        }
        past_deadline.push(t.elapsed().saturating_sub(limits.timeout));
        let cancel = lode_core::sql::CancelFlag::new();
        let c = cancel.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let at = Instant::now();
            c.cancel();
            at
        });
        let long = ExecLimits {
            timeout: Duration::from_secs(3600),
            ..limits
        };
        let r = db.query_detached(&sql, long, Some(&cancel));
        let answered = Instant::now();
        let cancelled_at = canceller
            .join()
            .map_err(|_| anyhow::anyhow!("the cancelling thread panicked"))?;
        if !matches!(r, Err(lode_core::sql::ExecError::Cancelled)) {
            bail!("the replace chain was not cancelled: {r:?}");
        }
        after_cancel.push(answered.saturating_duration_since(cancelled_at));
    }
    // Scratch space of the benchmark: a leftover is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    let ms = |mut v: Vec<Duration>, name: &str| {
        v.sort();
        Figure {
            name: name.to_string(),
            unit: "ms".into(),
            best: v[0].as_secs_f64() * 1000.0,
            median: v[v.len() / 2].as_secs_f64() * 1000.0,
        }
    };
    Ok(vec![
        ms(
            past_deadline,
            "uninterruptible step: answer after the deadline (target < 500)",
        ),
        ms(
            after_cancel,
            "uninterruptible step: answer after ctrl-c (target < 500)",
        ),
    ])
}

/// `lode reward serve` scoring one GRPO step: 256 questions × 16 samples = 4,096
/// predictions, each drawn (a fixed pseudo-random choice) from the 6 prediction variants of
/// a Spider gold query (the 256 first, cycled if fewer), POSTed as one batch to a server of
/// this executable started on a free port. Cold: each measurement on a freshly started
/// server (no gold result remembered, databases not yet opened); warm: the same batch again
/// on one server. The whole request is timed: sending, scoring, the answer read and parsed.
fn reward_figures(args: &BenchArgs, repeat: usize) -> Result<Vec<Figure>> {
    use std::io::{BufRead, Read, Write};
    const QUESTIONS: usize = 256;
    const SAMPLES: usize = 16;
    let gold_path = args.spider.join("gold.sql");
    let gold = std::fs::read_to_string(&gold_path)
        .with_context(|| format!("cannot read {}", gold_path.display()))?;
    let lines: Vec<(&str, &str)> = gold
        .lines()
        .filter_map(|l| l.rsplit_once('\t'))
        .map(|(sql, db)| (sql.trim(), db.trim()))
        .collect();
    if lines.is_empty() {
        bail!("{}: no `SQL<TAB>db` lines", gold_path.display());
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut items = Vec::with_capacity(QUESTIONS * SAMPLES);
    for q in 0..QUESTIONS {
        let (sql, db) = lines[q % lines.len()];
        let variants = prediction_variants(sql);
        for s in 0..SAMPLES {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let prediction = &variants[(seed % variants.len() as u64) as usize];
            items.push(serde_json::json!({
                "id": q * SAMPLES + s, "gold_sql": sql, "db": db, "prediction": prediction,
            }));
        }
    }
    let n = items.len();
    let body = serde_json::json!({"shape": "arctic", "items": items}).to_string();
    let request = format!(
        "POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );

    /// The server process, stopped when dropped.
    struct Served(std::process::Child, u16);
    impl Drop for Served {
        fn drop(&mut self) {
            // Our own child; it may have exited already.
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let exe = std::env::current_exe().context("cannot find the lode executable")?;
    // Absolute: the server runs outside any project here (so it uses --db-dir alone).
    let db_dir = std::path::absolute(args.spider.join("database"))?;
    let serve = || -> Result<Served> {
        let mut child = std::process::Command::new(&exe)
            .args(["reward", "serve", "--port", "0", "--db-dir"])
            .arg(&db_dir)
            .current_dir(std::env::temp_dir())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start lode reward serve")?;
        let mut first = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        let mut served = Served(child, 0);
        std::io::BufReader::new(stdout).read_line(&mut first)?;
        let port = first
            .trim()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok());
        served.1 = port.with_context(|| {
            format!("lode reward serve did not say where it listens: {first:?}")
        })?;
        Ok(served)
    };
    let mut mean = None;
    let mut post = |port: u16| -> Result<()> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no end of headers in the answer")?;
        if !answer.starts_with(b"HTTP/1.1 200") {
            bail!(
                "POST /score: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(500)])
            );
        }
        let reply: serde_json::Value = serde_json::from_slice(&answer[split + 4..])?;
        let scores = reply["scores"].as_array().context("no scores")?;
        if scores.len() != n {
            bail!("{} scores for {n} items", scores.len());
        }
        if let Some(bad) = scores.iter().find(|s| s.get("error").is_some()) {
            bail!("an item was not scored: {bad}");
        }
        let total: f64 = scores.iter().filter_map(|s| s["score"].as_f64()).sum();
        mean = Some(total / n as f64);
        Ok(())
    };
    let mut cold = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let server = serve()?;
        let t = Instant::now();
        post(server.1)?;
        cold.push(t.elapsed());
    }
    cold.sort();
    let server = serve()?;
    let warm = timings(repeat, || post(server.1))?;
    drop(server);
    if let Some(mean) = mean {
        eprintln!("reward: {n} predictions, mean arctic reward {mean:.3}");
    }
    let ms = |t: &[Duration], name: String, per: f64| Figure {
        name,
        unit: if per > 1.0 { "ms/pred" } else { "ms" }.into(),
        best: t[0].as_secs_f64() * 1000.0 / per,
        median: t[t.len() / 2].as_secs_f64() * 1000.0 / per,
    };
    let step = format!("{QUESTIONS}×{SAMPLES} = {n} predictions");
    Ok(vec![
        ms(
            &cold,
            format!("reward serve: GRPO step {step}, cold (target < 5000)"),
            1.0,
        ),
        ms(
            &warm,
            format!("reward serve: GRPO step {step}, warm (target < 5000)"),
            1.0,
        ),
        ms(&cold, "reward serve: cold, per prediction".into(), n as f64),
        ms(&warm, "reward serve: warm, per prediction".into(), n as f64),
    ])
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
