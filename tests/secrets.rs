//! No leaked secrets: servers that echo the request's `Authorization` header (and the bare
//! key) in their error bodies never put a key on screen, in the workspace store, in report
//! files or in a job's error. Redaction itself, the backends and tuners with their echoing
//! errors, and `lode llm check`, `lode eval` and `lode generate` run as processes.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use lode_core::config::{Config, Secret, redact};
use lode_core::llm::{
    Backend, ClientOptions, LaminiBackend, LlmClient, LlmRequest, Message, OpenAiBackend,
    OutputSchema,
};
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::Store;
use lode_core::tune::Provider;
use lode_core::tune::providers::LaminiTuner;
use lode_testkit::{FakeRequest, FakeResponse, FakeServer};
use serde_json::json;

const KEY: &str = "sk-lode-Zq7vX2mK9pR4tW8yB3nC";
const LAMINI_KEY: &str = "lam-Hq4Ue6Jd1Ls8Nf3Gw5Tz";

/// The first piece of a key (10 characters or more) found in `text`: a clipped key leaks too.
fn leak<'a>(text: &str, key: &'a str) -> Option<&'a str> {
    (0..=key.len() - 10)
        .map(|i| &key[i..i + 10])
        .find(|w| text.contains(w))
}

fn assert_clean(what: &str, text: &str) {
    for key in [KEY, LAMINI_KEY] {
        if let Some(w) = leak(text, key) {
            panic!("{what} leaks the key ({w}):\n{text}");
        }
    }
}

/// Every file under `dir` (the workspace store, reports, logs), byte for byte.
fn assert_dir_clean(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_dir_clean(&path);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert_clean(
                &path.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
        }
    }
}

#[test]
fn redact_takes_out_known_keys_and_credential_tokens() {
    let known = [Secret::new(KEY)];
    let cases = [
        (format!("bad key {KEY}."), "bad key [redacted]."),
        (
            "Authorization: Bearer abc.def-ghi".into(),
            "Authorization: [redacted]",
        ),
        (
            "sent authorization=Basic dXNlcjpwYXNz, then".into(),
            "sent authorization=[redacted], then",
        ),
        (
            "token was bearer xyz123 ok".into(),
            "token was bearer [redacted] ok",
        ),
        (
            "GET /v1/models?api_key=abc123&x=1".into(),
            "GET /v1/models?api_key=[redacted]&x=1",
        ),
        (
            r#"{"api_key": "abc", "x-api-key":"def", "password" : 'ghi'}"#.into(),
            r#"{"api_key": "[redacted]", "x-api-key":"[redacted]", "password" : '[redacted]'}"#,
        ),
        (
            r#"{"e": "{\"api_key\": \"abc\"}"}"#.into(),
            r#"{"e": "{\"api_key\": \"[redacted]\"}"}"#,
        ),
        (
            format!(r#"{{"authorization": "Bearer {KEY}"}}"#),
            r#"{"authorization": "[redacted]"}"#,
        ),
        (
            format!("ACCESS_TOKEN: {KEY} é"),
            "ACCESS_TOKEN: [redacted] é",
        ),
        // Words that merely mention keys, and lookalikes, stay.
        (
            "check the profile's api_key or api_key_env; set LAMINI_API_KEY".into(),
            "check the profile's api_key or api_key_env; set LAMINI_API_KEY",
        ),
        (
            "\"prompt_tokens\": 12, my_api_key_env: X, secrets: none".into(),
            "\"prompt_tokens\": 12, my_api_key_env: X, secrets: none",
        ),
        (
            "unicode ünïcödé api_key=ü".into(),
            "unicode ünïcödé api_key=[redacted]",
        ),
    ];
    for (input, want) in cases {
        let got = redact(&input, &known);
        assert_eq!(got, want, "redacting {input:?}");
        assert_eq!(redact(&got, &known), got, "redaction is idempotent");
    }
    // A key too short to search for is left to the patterns.
    assert_eq!(redact("a b c", &[Secret::new("b")]), "a b c");
}

fn request() -> LlmRequest {
    LlmRequest::new(
        "pattern",
        vec![Message::user("Write two questions like: How many?")],
    )
    .with_schema(OutputSchema::new("questions", &[("q1", "str")]))
}

fn fast(profile: &str) -> ClientOptions {
    ClientOptions {
        profile: profile.into(),
        max_attempts: 2,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..ClientOptions::default()
    }
}

/// 401 with JSON for the first request of each pair, 500 with plain text for the second.
fn echo(r: &FakeRequest) -> FakeResponse {
    if r.index.is_multiple_of(2) {
        FakeResponse::echo_headers(401, r)
    } else {
        FakeResponse::echo_headers_text(500, r)
    }
}

#[tokio::test]
async fn backend_errors_from_echoing_servers_carry_no_key() {
    let server = FakeServer::start(echo).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("lode.db");
    let store = Arc::new(Store::open(&store_path).unwrap());
    let openai: Arc<dyn Backend> = Arc::new(
        OpenAiBackend::new(
            &format!("{}/v1", server.url()),
            "m",
            Some(Secret::new(KEY)),
            json!({}),
            Duration::from_secs(5),
        )
        .unwrap()
        .with_known_secrets(vec![Secret::new(LAMINI_KEY)]),
    );
    let lamini: Arc<dyn Backend> = Arc::new(
        LaminiBackend::new(
            &server.url(),
            "m",
            Secret::new(LAMINI_KEY),
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let mut shown = Vec::new();
    for (name, backend) in [("openai", &openai), ("lamini", &lamini)] {
        // Directly: the JSON 401 and the plain-text 500.
        for _ in 0..2 {
            let e = backend.complete(&request()).await.unwrap_err();
            shown.push(format!("{name}: {e} / {e:?}"));
        }
        // Through the client, which logs the failures in the store.
        let client = LlmClient::new(Arc::clone(backend), fast(name), Some(Arc::clone(&store)));
        for _ in 0..3 {
            let e = client.call(&request()).await.unwrap_err();
            shown.push(format!("{name} via client: {e} / {e:?}"));
        }
    }
    let e = openai.list_models().await.unwrap_err();
    shown.push(format!("models: {e}"));
    let e = openai.list_models().await.unwrap_err();
    shown.push(format!("models: {e}"));

    // The server did get the keys (so it could echo them) ...
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {KEY}")))
    );
    // ... and the errors still say what happened.
    let all = shown.join("\n");
    assert!(
        all.contains("Incorrect API key provided: [redacted]"),
        "{all}"
    );
    assert!(all.contains("authentication failed"), "{all}");
    assert!(all.contains("server error 500"), "{all}");
    assert_clean("the errors", &all);
    let stats = store.llm_call_stats(None).unwrap();
    assert!(stats.failed >= 6, "{stats:?}");
    drop(store);
    assert_dir_clean(dir.path());
}

#[tokio::test]
async fn tuning_provider_errors_carry_no_key() {
    let server = FakeServer::start(echo).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "api:\n  url: {}\n  key: ${{LAMINI_API_KEY}}\ndatabase:\n  path: shop.sqlite\npaths:\n  gold_test_set: gold.jsonl\n",
        server.url()
    );
    let config = Config::parse(&dir.path().join("config.yml"), &text, &|name| {
        (name == "LAMINI_API_KEY").then(|| LAMINI_KEY.to_string())
    })
    .unwrap();
    let tuner = LaminiTuner::from_config(&config).unwrap();
    let mut shown = Vec::new();
    for _ in 0..2 {
        let e = tuner.status("job-1").await.unwrap_err();
        shown.push(format!("{e} / {e:?}"));
        let e = tuner.cancel("job-1").await.unwrap_err();
        shown.push(format!("{e} / {e:?}"));
    }
    let all = shown.join("\n");
    assert!(all.contains("HTTP 401"), "{all}");
    assert!(all.contains("HTTP 500"), "{all}");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {LAMINI_KEY}")))
    );
    assert_clean("the tuning errors", &all);
}

/// The demo project with the LLM profiles `fake` (OpenAI-compatible, key from
/// `LODE_SECRET_KEY`) and `lam` (Lamini, key from `LAMINI_API_KEY`) at `url`.
fn project(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let path = dir.path().join("config.yml");
    let config = std::fs::read_to_string(&path).unwrap();
    let base = config.split("\nllm:").next().unwrap().to_string();
    std::fs::write(
        &path,
        format!(
            "{base}\nllm:\n  default: fake\n  profiles:\n    fake:\n      kind: openai\n      base_url: {url}/v1\n      api_key_env: LODE_SECRET_KEY\n      model: fake-model\n      max_concurrency: 4\n      timeout_s: 5\n    lam:\n      kind: lamini\n      base_url: {url}\n      model: lam-model\n      timeout_s: 5\n"
        ),
    )
    .unwrap();
    dir
}

async fn lode(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_lode"))
            .current_dir(&dir)
            .env("LODE_SECRET_KEY", KEY)
            .env("LAMINI_API_KEY", LAMINI_KEY)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lode_commands_against_an_echoing_server_leak_no_key() {
    // Mostly 401s (not retried); every fifth request a 500 in plain text (retried).
    let server = FakeServer::start(|r| {
        if r.index % 5 == 4 {
            FakeResponse::echo_headers_text(500, r)
        } else {
            FakeResponse::echo_headers(401, r)
        }
    })
    .await
    .unwrap();
    let dir = project(&server.url());
    let runs: [&[&str]; 5] = [
        &["llm", "check"],
        &["llm", "check", "lam"],
        &["eval", "--model", "fake"],
        &["--profile", "lam", "eval"],
        &["generate", "--gold", "1,2"],
    ];
    let mut outputs = String::new();
    for args in runs {
        let out = lode(dir.path(), args).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_clean(&format!("lode {args:?} stdout"), &stdout);
        assert_clean(&format!("lode {args:?} stderr"), &stderr);
        outputs.push_str(&format!("$ lode {args:?}\n{stdout}{stderr}\n"));
    }
    // The servers were asked with the keys, and said they were wrong: shown, redacted.
    let requests = server.requests();
    for key in [KEY, LAMINI_KEY] {
        assert!(
            requests
                .iter()
                .any(|r| r.header("authorization") == Some(&format!("Bearer {key}"))),
            "no request carried {key}"
        );
    }
    assert!(outputs.contains("[redacted]"), "{outputs}");
    // The workspace (store, reports) and everything else written in the project.
    let store = Store::open(&dir.path().join(".lode").join("lode.db")).unwrap();
    let stats = store.llm_call_stats(None).unwrap();
    assert!(stats.failed > 0, "{stats:?}\n{outputs}");
    drop(store);
    assert_dir_clean(dir.path());
}

#[test]
fn the_call_log_redacts_whatever_error_text_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lode.db");
    let store = Store::open(&path).unwrap();
    store
        .record_llm_call(&lode_core::store::NewLlmCall {
            run_id: None,
            profile: "p".into(),
            model: "m".into(),
            purpose: "eval".into(),
            latency_ms: 1.0,
            prompt_tokens: None,
            completion_tokens: None,
            cached: false,
            ok: false,
            error_kind: Some(lode_core::store::ErrorKind::Auth),
            error: Some(format!(
                "refused: Authorization: Bearer {KEY}; {{\"api_key\": \"{LAMINI_KEY}\"}}"
            )),
            attempts: 1,
        })
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let error: String = conn
        .query_row("SELECT error FROM llm_calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        error,
        "refused: Authorization: [redacted]; {\"api_key\": \"[redacted]\"}"
    );
    drop(conn);
    assert_dir_clean(dir.path());
}
