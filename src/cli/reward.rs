//! `lode reward`: the execution reward for RL trainers, from the evaluation's own executor and
//! comparator (`lode_core::pipeline::reward`). `--stdin` speaks JSON lines; `serve` is an
//! HTTP server (`POST /score`, `POST /execute`, `GET /health`), on the loopback interface
//! unless told otherwise, read-only always.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::exit::usage;
use super::globals::Globals;
use lode_core::pipeline::reward::{
    ItemError, RewardItem, Scorer, Shape, Sources, project_sources, reward_limits,
};
use lode_core::sql::{ExecError, ExecLimits};

#[derive(Args, Debug)]
pub struct RewardArgs {
    #[command(subcommand)]
    pub verb: Option<RewardVerb>,
    /// Read items as JSON lines on stdin, write one score per line on stdout.
    #[arg(long)]
    pub stdin: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Subcommand, Debug)]
pub enum RewardVerb {
    /// Serve the reward over HTTP: POST /score, POST /execute, GET /health.
    Serve(ServeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The reward shape: arctic (1 / 0.1 / 0), binary (1 / 0) or soft_f1 (partial credit).
    #[arg(long, default_value = "arctic")]
    pub shape: String,
    /// Spider-style databases: DIR/<db>/<db>.sqlite, named by an item's `db`. Without it the
    /// project's database (and its question ids) are used.
    #[arg(long, value_name = "DIR")]
    pub db_dir: Option<PathBuf>,
    /// Time limit of one query, in seconds (default: the project's, else 30).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port; the first line printed says which).
    #[arg(long, default_value_t = 8700)]
    pub port: u16,
    /// Address to listen on. The default answers only this machine; another address
    /// exposes the service (read-only, but anyone who reaches it can run queries).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = 8)]
    pub max_body_mb: usize,
    /// Most items in one /score request.
    #[arg(long, default_value_t = 65_536)]
    pub max_items: usize,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
    /// Queries one /execute episode may run.
    #[arg(long, default_value_t = 16)]
    pub max_turns: usize,
    /// Rows an /execute answer returns at most.
    #[arg(long, default_value_t = 100)]
    pub execute_rows: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(globals: &Globals, args: &RewardArgs) -> Result<i32> {
    match &args.verb {
        Some(RewardVerb::Serve(serve)) => run_serve(globals, serve),
        None if args.stdin => run_stdin(globals, &args.common),
        None => Err(usage(
            "say how items come: `lode reward --stdin` (JSON lines) or `lode reward serve --port N` (HTTP)",
            "see lode reward --help",
        )),
    }
}

/// The scorer for the project here and/or `--db-dir`.
fn scorer(globals: &Globals, common: &CommonArgs) -> Result<(Scorer, Shape)> {
    let shape = parse_shape(&common.shape)?;
    let mut base = ExecLimits::default();
    let mut sources = Sources::default();
    if globals.config.exists() {
        let project = globals.load_project()?;
        let (store, _) = project.open_store()?;
        sources = project_sources(&project, Some(&store))?;
        base = project.config.execution.limits();
    } else if common.db_dir.is_none() {
        return Err(usage(
            format!("no {} here and no --db-dir", globals.config.display()),
            "run inside a lode project (its database and question ids are used) or pass \
             --db-dir DIR with Spider-style databases (DIR/<db>/<db>.sqlite)",
        ));
    }
    if let Some(dir) = &common.db_dir {
        if !dir.is_dir() {
            return Err(usage(
                format!("--db-dir {}: no such directory", dir.display()),
                "give the directory holding <db>/<db>.sqlite",
            ));
        }
        sources.db_dir = Some(dir.clone());
    }
    if let Some(t) = common.timeout {
        if !(t > 0.0 && t <= 3600.0) {
            return Err(usage(
                format!("--timeout must be between 0 and 3600 seconds, not {t}"),
                "",
            ));
        }
        base.timeout = Duration::from_secs_f64(t);
    } else if !globals.config.exists() {
        base.timeout = Duration::from_secs(30);
    }
    let threads = common
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok((Scorer::new(sources, reward_limits(base), threads), shape))
}

fn parse_shape(name: &str) -> Result<Shape> {
    Shape::parse(name).ok_or_else(|| {
        usage(
            format!("no reward shape `{name}`"),
            format!("shapes are {}", Shape::NAMES.join(", ")),
        )
    })
}

/// One line of `lode reward --stdin`: the version of the shapes, then the item's score.
#[derive(Serialize)]
struct ScoreLine {
    version: u32,
    #[serde(flatten)]
    score: Option<lode_core::pipeline::reward::Score>,
}

/// Items read before they are scored together (a batch keeps every core busy).
const STDIN_BATCH: usize = 512;

fn run_stdin(globals: &Globals, common: &CommonArgs) -> Result<i32> {
    let (scorer, shape) = scorer(globals, common)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut pending: Vec<Result<RewardItem, Json>> = Vec::new();
    let mut failed = false;
    let mut line_no = 0usize;
    let mut lines = stdin.lock().lines();
    loop {
        let next = lines.next();
        let end = next.is_none();
        if let Some(line) = next {
            let line = line.context("cannot read stdin")?;
            line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            pending.push(serde_json::from_str::<RewardItem>(&line).map_err(|e| {
                failed = true;
                json!({"version": super::json::VERSION, "error": {
                    "kind": "bad_item",
                    "message": format!("stdin line {line_no}: {e}"),
                    "hint": "one JSON object per line: {\"question_id\": \"pair:12\", \"prediction\": \"...\"} or {\"gold_sql\": ..., \"db\": ..., \"prediction\": ...}",
                }, "score": 0.0})
            }));
        }
        // Score when a batch is full, at the end, or when nothing more is waiting (an
        // interactive caller sending one line at a time gets its answer at once).
        let waiting = !end && pending.len() < STDIN_BATCH && stdin_has_more();
        if pending.is_empty() || waiting {
            if end {
                break;
            }
            continue;
        }
        let items: Vec<RewardItem> = pending
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let mut scores = scorer.score(&items, shape).into_iter();
        for p in pending.drain(..) {
            let line = match p {
                Ok(_) => serde_json::to_string(&ScoreLine {
                    version: super::json::VERSION,
                    score: scores.next(),
                })?,
                Err(e) => e.to_string(),
            };
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        if end {
            break;
        }
    }
    Ok(i32::from(failed))
}

/// Whether more input is ready on stdin right now (a pipe with data in it), without
/// blocking. Unknown (not a Unix pipe): false, so each line is answered as it comes.
fn stdin_has_more() -> bool {
    #[cfg(unix)]
    {
        #[repr(C)]
        struct PollFd {
            fd: i32,
            events: i16,
            revents: i16,
        }
        unsafe extern "C" {
            fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
        }
        let mut fd = PollFd {
            fd: 0,
            events: 1, // POLLIN
            revents: 0,
        };
        // SAFETY: one valid pollfd for stdin, zero timeout; poll only writes `revents`.
        let ready = unsafe { poll(&mut fd, 1, 0) };
        ready > 0 && fd.revents & 1 != 0
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Shared state of the server.
struct Service {
    scorer: Scorer,
    shape: Shape,
    args: ServeArgs,
    started: Instant,
    /// Queries run per /execute episode, with when the episode was last seen.
    episodes: Mutex<HashMap<String, (usize, Instant)>>,
    /// Score batches run one or two at a time, each on every core.
    scoring: tokio::sync::Semaphore,
}

/// Episodes remembered at most; the longest unseen are forgotten first.
const EPISODES: usize = 100_000;

/// `lode reward serve --json`'s first line: where it listens.
#[derive(Serialize)]
struct Listening {
    url: String,
    address: SocketAddr,
    shape: &'static str,
    databases: Vec<String>,
}

/// `lode reward serve --json`'s last line, after ctrl-c.
#[derive(Serialize)]
struct Stopped {
    stopped: bool,
}

fn run_serve(globals: &Globals, args: &ServeArgs) -> Result<i32> {
    let json = globals.json;
    let (scorer, shape) = scorer(globals, &args.common)?;
    if args.max_body_mb == 0 || args.max_connections == 0 || args.max_items == 0 {
        return Err(usage(
            "--max-body-mb, --max-connections and --max-items must be at least 1",
            "",
        ));
    }
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(&(args.host.as_str(), args.port))
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        })
        .map_err(|()| {
            usage(
                format!("--host {}: not an address", args.host),
                "give an IP address or a host name, e.g. 127.0.0.1",
            )
        })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let service = Arc::new(Service {
        scorer,
        shape,
        args: args.clone(),
        started: Instant::now(),
        episodes: Mutex::new(HashMap::new()),
        scoring: tokio::sync::Semaphore::new(2),
    });
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        if json {
            super::json::emit_line(
                "reward serve",
                "listening",
                &Listening {
                    url: format!("http://{local}"),
                    address: local,
                    shape: shape.name(),
                    databases: service.scorer.database_ids(),
                },
            )?;
        } else {
            println!("listening on http://{local}");
        }
        if !local.ip().is_loopback() {
            eprintln!(
                "warning: {local} is reachable from other machines; anyone who reaches it can run \
                 read-only queries on the databases"
            );
        }
        eprintln!(
            "reward shape {} by default; databases: {}; ctrl-c stops",
            shape.name(),
            service.scorer.database_ids().join(", ")
        );
        std::io::stdout().flush()?;
        let slots = Arc::new(tokio::sync::Semaphore::new(service.args.max_connections));
        loop {
            let permit = Arc::clone(&slots).acquire_owned().await?;
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("accept failed: {e}");
                        continue;
                    }
                },
                _ = tokio::signal::ctrl_c() => break,
            };
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let handler = hyper::service::service_fn(move |req| {
                    let service = Arc::clone(&service);
                    async move { Ok::<_, std::convert::Infallible>(handle(service, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .max_buf_size(64 * 1024)
                    .serve_connection(io, handler);
                // A client that stops sending or reading loses its connection, not the
                // server: errors of one connection are that connection's.
                let _ = tokio::time::timeout(Duration::from_secs(600), conn).await;
                drop(permit);
            });
        }
        eprintln!("stopped");
        if json {
            super::json::emit_line("reward serve", "done", &Stopped { stopped: true })?;
        }
        anyhow::Ok(())
    })?;
    Ok(0)
}

fn reply(status: StatusCode, body: Json) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response<Full<Bytes>> {
    reply(
        status,
        json!({"error": {"kind": kind, "message": message.into()}}),
    )
}

async fn handle(service: Arc<Service>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/health") => reply(
            StatusCode::OK,
            json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "shape": service.shape.name(),
                "shapes": Shape::NAMES,
                "databases": service.scorer.database_ids(),
                "cached_golds": service.scorer.cached_golds(),
                "uptime_s": service.started.elapsed().as_secs(),
            }),
        ),
        (Method::POST, "/score") => match body_json(&service, req).await {
            Ok(body) => score(&service, body).await,
            Err(r) => r,
        },
        (Method::POST, "/execute") => match body_json(&service, req).await {
            Ok(body) => execute(&service, body).await,
            Err(r) => r,
        },
        (_, "/health" | "/score" | "/execute") => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "GET /health, POST /score, POST /execute",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {path}: GET /health, POST /score, POST /execute"),
        ),
    }
}

/// The request body as JSON, within the size limit and 30 s.
async fn body_json(
    service: &Service,
    req: Request<Incoming>,
) -> Result<Json, Response<Full<Bytes>>> {
    let limit = service.args.max_body_mb << 20;
    let body = Limited::new(req.into_body(), limit);
    let bytes = match tokio::time::timeout(Duration::from_secs(30), body.collect()).await {
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the request body did not arrive within 30 s",
            ));
        }
        Ok(Err(e)) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return Err(if too_big {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "the body is over {} MiB (send smaller batches, or start the server with a larger --max-body-mb)",
                        service.args.max_body_mb
                    ),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("cannot read the body: {e}"),
                )
            });
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not JSON: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    #[serde(default)]
    shape: Option<String>,
    items: Vec<Json>,
}

async fn score(service: &Arc<Service>, body: Json) -> Response<Full<Bytes>> {
    let request: ScoreRequest = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!(
                    "{e}; send {{\"shape\": \"arctic\", \"items\": [{{\"question_id\": \"pair:12\", \"prediction\": \"...\"}}]}}"
                ),
            );
        }
    };
    let shape = match request.shape.as_deref() {
        None => service.shape,
        Some(name) => match Shape::parse(name) {
            Some(s) => s,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_shape",
                    format!(
                        "no reward shape `{name}`; shapes are {}",
                        Shape::NAMES.join(", ")
                    ),
                );
            }
        },
    };
    if request.items.len() > service.args.max_items {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!(
                "{} items; at most {} per request (--max-items)",
                request.items.len(),
                service.args.max_items
            ),
        );
    }
    // Each item is read on its own: one malformed item is that item's error.
    let parsed: Vec<Result<RewardItem, (Json, String)>> = request
        .items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let id = v.get("id").cloned().unwrap_or(Json::Null);
            serde_json::from_value::<RewardItem>(v).map_err(|e| (id, format!("item {i}: {e}")))
        })
        .collect();
    let Ok(_permit) = service.scoring.acquire().await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the server is stopping",
        );
    };
    let svc = Arc::clone(service);
    let started = Instant::now();
    let scored = tokio::task::spawn_blocking(move || {
        let items: Vec<RewardItem> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let mut scores = svc.scorer.score(&items, shape).into_iter();
        parsed
            .iter()
            .map(|p| match p {
                Ok(_) => serde_json::to_value(scores.next()).unwrap_or(Json::Null),
                Err((id, message)) => json!({
                    "id": id, "score": 0.0,
                    "parts": {"extracted": false, "executes": false, "matches": false},
                    "reason": null, "detail": null, "sql": null,
                    "error": {"kind": "bad_item", "message": message},
                }),
            })
            .collect::<Vec<Json>>()
    })
    .await;
    match scored {
        Ok(scores) => reply(
            StatusCode::OK,
            json!({
                "version": 1,
                "shape": shape.name(),
                "scores": scores,
                "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
            }),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("scoring stopped: {e}"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteRequest {
    episode: String,
    sql: String,
    #[serde(default)]
    db: Option<String>,
}

async fn execute(service: &Arc<Service>, body: Json) -> Response<Full<Bytes>> {
    let request: ExecuteRequest = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!(
                    "{e}; send {{\"episode\": \"rollout-1\", \"sql\": \"SELECT ...\", \"db\": \"...\"}}"
                ),
            );
        }
    };
    if request.episode.is_empty() || request.episode.len() > 256 {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "episode must be 1 to 256 characters",
        );
    }
    // The database first: a request naming none, or an unknown one, uses no turn.
    let Some(db_id) = request
        .db
        .clone()
        .or_else(|| service.scorer.default_db().map(str::to_string))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown_database",
            format!(
                "give db (the database id; with --db-dir, the folder name under {})",
                service
                    .scorer
                    .db_dir()
                    .map_or_else(|| "it".into(), |d| d.display().to_string())
            ),
        );
    };
    let svc = Arc::clone(service);
    let db = match tokio::task::spawn_blocking(move || svc.scorer.database(&db_id)).await {
        Ok(Ok((_, db))) => db,
        Ok(Err(e)) => return error(StatusCode::NOT_FOUND, e.kind, e.message),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot open the database: {e}"),
            );
        }
    };
    let turn = {
        let mut episodes = service.episodes.lock().unwrap_or_else(|p| p.into_inner());
        if episodes.len() >= EPISODES && !episodes.contains_key(&request.episode) {
            // Forget the tenth least recently seen.
            let mut seen: Vec<(Instant, String)> =
                episodes.iter().map(|(k, (_, t))| (*t, k.clone())).collect();
            seen.sort();
            for (_, k) in seen.into_iter().take(EPISODES / 10) {
                episodes.remove(&k);
            }
        }
        let e = episodes
            .entry(request.episode.clone())
            .or_insert((0, Instant::now()));
        e.1 = Instant::now();
        if e.0 >= service.args.max_turns {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "turn_limit",
                format!(
                    "episode `{}` has used its {} queries (--max-turns)",
                    request.episode, service.args.max_turns
                ),
            );
        }
        e.0 += 1;
        e.0
    };
    let sql = request.sql;
    let limits = ExecLimits {
        max_rows: service.args.execute_rows,
        ..service.scorer.limits()
    };
    let answer = tokio::task::spawn_blocking(move || -> Result<Json, ItemError> {
        db.query_with(&sql, limits, None)
            .map(|r| {
                json!({
                    "columns": r.columns,
                    "rows": r.rows,
                    "truncated": r.truncated,
                    "elapsed_ms": r.elapsed.as_secs_f64() * 1000.0,
                })
            })
            .map_err(|e| ItemError {
                kind: exec_kind(&e),
                message: e.to_string(),
            })
    })
    .await;
    let left = service.args.max_turns.saturating_sub(turn);
    match answer {
        Ok(Ok(mut result)) => {
            result["turn"] = json!(turn);
            result["turns_left"] = json!(left);
            reply(StatusCode::OK, result)
        }
        Ok(Err(e)) => {
            let status = if e.kind == "unknown_database" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            reply(
                status,
                json!({"error": {"kind": e.kind, "message": e.message}, "turn": turn, "turns_left": left}),
            )
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the query stopped: {e}"),
        ),
    }
}

fn exec_kind(e: &ExecError) -> &'static str {
    match e {
        ExecError::Timeout { .. } => "timeout",
        ExecError::Rejected { .. } => "rejected",
        ExecError::Cancelled => "cancelled",
        ExecError::Open { .. } => "unknown_database",
        _ => "sql_error",
    }
}
