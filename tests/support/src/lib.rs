//! A small in-process HTTP/1.1 server that plays an LLM provider, for tests and benchmarks:
//! a handler decides each reply (status, headers, body, delay), and the server counts
//! requests and the most that were ever in flight at once. No network is involved beyond
//! 127.0.0.1.

/// A real PostgreSQL server for the PostgreSQL tests.
pub mod pg;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    /// 0-based arrival order.
    pub index: usize,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What the fake server answers.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl FakeResponse {
    pub fn json(status: u16, body: serde_json::Value) -> FakeResponse {
        FakeResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// An OpenAI chat completion whose message content is `content`.
    pub fn chat(content: &str) -> FakeResponse {
        FakeResponse::json(
            200,
            json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
            }),
        )
    }

    /// An error that echoes the request's credentials, as careless servers and proxies do: a
    /// JSON body naming the bare token of the `Authorization` header (or `x-api-key`) in its
    /// message and listing every request header.
    pub fn echo_headers(status: u16, request: &FakeRequest) -> FakeResponse {
        let token = request
            .header("authorization")
            .map(|a| a.trim_start_matches("Bearer ").to_string())
            .or_else(|| request.header("x-api-key").map(String::from))
            .unwrap_or_default();
        let headers: serde_json::Map<String, serde_json::Value> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let listed: Vec<String> = request
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        FakeResponse::json(
            status,
            json!({
                "error": {
                    "message": format!(
                        "Incorrect API key provided: {token}. You sent {}",
                        listed.join("; ")
                    ),
                    "type": "invalid_request_error",
                },
                "headers": headers,
            }),
        )
    }

    /// The same as plain text: a long line first (so a message clipped to a few hundred
    /// characters would cut the key in half), then the request's head as it arrived.
    pub fn echo_headers_text(status: u16, request: &FakeRequest) -> FakeResponse {
        let token = request
            .header("authorization")
            .map(|a| a.trim_start_matches("Bearer ").to_string())
            .unwrap_or_default();
        let mut body = format!(
            "{} the request was refused {}key {token}\n{} {}\n",
            status,
            ".".repeat(256),
            request.method,
            request.path
        );
        for (k, v) in &request.headers {
            body.push_str(&format!("{k}: {v}\n"));
        }
        FakeResponse {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Handler = dyn Fn(&FakeRequest) -> FakeResponse + Send + Sync;

#[derive(Default)]
struct Stats {
    count: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: Mutex<Vec<FakeRequest>>,
}

/// A running fake provider; stops when dropped.
pub struct FakeServer {
    port: u16,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// Starts on a free port of 127.0.0.1 inside the current tokio runtime.
    pub async fn start(
        handler: impl Fn(&FakeRequest) -> FakeResponse + Send + Sync + 'static,
    ) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let stats = Arc::new(Stats::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let s = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = Arc::clone(&s);
                let h = Arc::clone(&handler);
                tokio::spawn(async move {
                    let _ = serve(stream, s, h).await;
                });
            }
        });
        Ok(FakeServer { port, stats, task })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn count(&self) -> usize {
        self.stats.count.load(Ordering::SeqCst)
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.stats.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<FakeRequest> {
        self.stats
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    stats: Arc<Stats>,
    handler: Arc<Handler>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // Read the head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split_whitespace();
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while buf.len() < body_start + len {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[body_start..body_start + len]).into_owned();
        buf.drain(..body_start + len);

        let index = stats.count.fetch_add(1, Ordering::SeqCst);
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let request = FakeRequest {
            index,
            method,
            path,
            headers,
            body,
        };
        let response = handler(&request);
        stats
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request);
        if !response.delay.is_zero() {
            tokio::time::sleep(response.delay).await;
        }
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
            response.status,
            reason(response.status),
            response.body.len()
        );
        for (k, v) in &response.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&response.body);
        stream.write_all(out.as_bytes()).await?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
