//! The LLM client under real-server behaviour (issue 15), against scripted servers: the cache
//! keyed on the server and the body sent, `--no-cache` still filling the cache, the circuit
//! breaker on errors that will not go away, bounded answers and `finish_reason: length`, the
//! structured-output ladder (json_schema → json_object → prompt-only) taken only on a format
//! refusal and remembered per server, Lamini URLs and messages, and the User-Agent.

use std::sync::Arc;
use std::time::Duration;

use lode_core::config::Secret;
use lode_core::llm::{
    Backend, ClientOptions, LaminiBackend, LlmClient, LlmError, LlmRequest, Message, OpenAiBackend,
    OutputSchema,
};
use lode_core::store::Store;
use lode_testkit::{FakeResponse, FakeServer};
use serde_json::json;

const GOOD: &str =
    "{\"q1\": \"How many customers are there?\", \"q2\": \"How many products are there?\"}";

fn request(purpose: &str) -> LlmRequest {
    LlmRequest::new(
        purpose,
        vec![
            Message::system("You write questions."),
            Message::user("Write two questions like: How many stores are there?"),
        ],
    )
    .with_schema(OutputSchema::new(
        "questions",
        &[("q1", "str"), ("q2", "str")],
    ))
}

fn backend(server: &FakeServer, extra: serde_json::Value) -> Arc<OpenAiBackend> {
    Arc::new(
        OpenAiBackend::new(
            &format!("{}/v1", server.url()),
            "same-model",
            Some(Secret::new("sk-servers-test")),
            extra,
            Duration::from_secs(5),
        )
        .unwrap(),
    )
}

fn options(max_concurrency: usize) -> ClientOptions {
    ClientOptions {
        profile: "p".into(),
        max_concurrency,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..ClientOptions::default()
    }
}

fn client(b: Arc<OpenAiBackend>, store: &Arc<Store>) -> LlmClient {
    LlmClient::new(b, options(2), Some(Arc::clone(store)))
}

#[tokio::test]
async fn the_cache_tells_servers_and_extra_bodies_apart() {
    let one = FakeServer::start(|_| FakeResponse::chat(GOOD))
        .await
        .unwrap();
    let two = FakeServer::start(|_| FakeResponse::chat(GOOD))
        .await
        .unwrap();
    let store = Arc::new(Store::open_in_memory().unwrap());
    client(backend(&one, json!({})), &store)
        .call(&request("pattern"))
        .await
        .unwrap();
    // Same model, same messages, another server: asked, not answered from one's cache.
    let answer = client(backend(&two, json!({})), &store)
        .call(&request("pattern"))
        .await
        .unwrap();
    assert!(!answer.cached);
    assert_eq!(two.count(), 1);
    // Same server, another extra_body: the body sent differs, so does the answer's key.
    let answer = client(backend(&one, json!({"top_p": 0.5})), &store)
        .call(&request("pattern"))
        .await
        .unwrap();
    assert!(!answer.cached);
    assert_eq!(one.count(), 2);
    // The very same request again is served from the cache.
    let answer = client(backend(&one, json!({"top_p": 0.5})), &store)
        .call(&request("pattern"))
        .await
        .unwrap();
    assert!(answer.cached);
    assert_eq!(one.count(), 2);
    // Tokens of the cached answer were not spent again.
    let stats = store.llm_call_stats(None).unwrap();
    assert_eq!((stats.calls, stats.cached), (4, 1));
    assert_eq!(stats.prompt_tokens, 3 * 12);
}

#[tokio::test]
async fn no_cache_asks_the_server_and_still_stores_the_answer() {
    let server = FakeServer::start(|_| FakeResponse::chat(GOOD))
        .await
        .unwrap();
    let store = Arc::new(Store::open_in_memory().unwrap());
    let fresh = LlmClient::new(
        backend(&server, json!({})),
        ClientOptions {
            use_cache: false,
            ..options(2)
        },
        Some(Arc::clone(&store)),
    );
    fresh.call(&request("pattern")).await.unwrap();
    fresh.call(&request("pattern")).await.unwrap();
    assert_eq!(server.count(), 2, "--no-cache never answers from the cache");
    let cached = client(backend(&server, json!({})), &store)
        .call(&request("pattern"))
        .await
        .unwrap();
    assert!(cached.cached, "what --no-cache received was stored");
    assert_eq!(server.count(), 2);
}

#[test]
fn extra_body_cannot_replace_the_model_or_the_messages() {
    for extra in [json!({"model": "other"}), json!({"messages": []})] {
        let err = OpenAiBackend::new(
            "http://127.0.0.1:9/v1",
            "same-model",
            None,
            extra.clone(),
            Duration::from_secs(1),
        )
        .err()
        .unwrap_or_else(|| panic!("{extra} was accepted"));
        assert!(matches!(err, LlmError::Config { .. }), "{err}");
        assert!(err.to_string().contains("extra_body"), "{err}");
    }
    // Naming the profile's own model is harmless.
    OpenAiBackend::new(
        "http://127.0.0.1:9/v1",
        "same-model",
        None,
        json!({"model": "same-model"}),
        Duration::from_secs(1),
    )
    .unwrap();
}

#[tokio::test]
async fn refused_keys_open_the_breaker_and_later_calls_are_not_sent() {
    let server = FakeServer::start(|_| {
        FakeResponse::json(
            401,
            json!({"error": {"message": "Incorrect API key provided"}}),
        )
    })
    .await
    .unwrap();
    let store = Arc::new(Store::open_in_memory().unwrap());
    let c = Arc::new(LlmClient::new(
        backend(&server, json!({})),
        options(1),
        Some(Arc::clone(&store)),
    ));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = Arc::clone(&c);
        tasks.push(tokio::spawn(async move {
            let mut r = request("pattern");
            r.sampling.seed = Some(i);
            c.call(&r).await
        }));
    }
    let mut halted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(LlmError::Halted { message }) => {
                halted += 1;
                assert!(message.contains("Incorrect API key provided"), "{message}");
                assert!(message.contains("profile `p`"), "{message}");
            }
            Err(LlmError::Auth { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        server.count(),
        3,
        "the breaker opens after 3 refusals in a row"
    );
    assert_eq!(halted, 17);
    assert!(c.halted().is_some());
    // Only calls that were sent are in the call log.
    assert_eq!(store.llm_call_stats(None).unwrap().calls, 3);
}

#[tokio::test]
async fn transient_failures_and_answers_do_not_open_the_breaker() {
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&n);
    // Every third request is refused for good, the others are answered: never 3 in a row.
    let server = FakeServer::start(move |_| {
        let i = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if i.is_multiple_of(3) {
            FakeResponse::json(404, json!({"error": {"message": "no such model"}}))
        } else {
            FakeResponse::chat(GOOD)
        }
    })
    .await
    .unwrap();
    let c = LlmClient::new(backend(&server, json!({})), options(1), None);
    for i in 0..9 {
        let mut r = request("pattern");
        r.sampling.seed = Some(i);
        let _ = c.call(&r).await;
    }
    assert!(c.halted().is_none());
    assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 9);
    // 500s are retried, then reported, but say nothing about the key or the model.
    let down = FakeServer::start(|_| FakeResponse::json(503, json!({"error": "overloaded"})))
        .await
        .unwrap();
    let c = LlmClient::new(
        backend(&down, json!({})),
        ClientOptions {
            max_attempts: 2,
            ..options(1)
        },
        None,
    );
    for _ in 0..4 {
        assert!(matches!(
            c.call(&request("pattern")).await,
            Err(LlmError::Server { status: 503, .. })
        ));
    }
    assert!(c.halted().is_none());
    assert_eq!(down.count(), 8, "each call tried twice");
}

#[tokio::test]
async fn answers_are_bounded_and_evaluation_is_at_temperature_zero() {
    let server = FakeServer::start(|_| FakeResponse::chat(GOOD))
        .await
        .unwrap();
    let c = LlmClient::new(
        backend(&server, json!({})),
        ClientOptions {
            max_tokens: Some(300),
            ..options(1)
        },
        None,
    );
    c.call(&request("eval")).await.unwrap();
    c.call(&request("pattern")).await.unwrap();
    let mut own = request("judge");
    own.sampling.max_tokens = Some(50);
    own.sampling.temperature = Some(0.3);
    c.call(&own).await.unwrap();
    let sent = server.requests();
    assert_eq!(sent[0].json()["max_tokens"], 300);
    assert_eq!(sent[0].json()["temperature"], 0.0);
    // A generator keeps the server's temperature (or its own), but is bounded too.
    assert_eq!(sent[1].json()["max_tokens"], 300);
    assert!(sent[1].json().get("temperature").is_none());
    // What a request sets itself is kept.
    assert_eq!(sent[2].json()["max_tokens"], 50);
    assert_eq!(sent[2].json()["temperature"], 0.3);
}

fn cut(content: &str) -> FakeResponse {
    FakeResponse::json(
        200,
        json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 300}
        }),
    )
}

#[tokio::test]
async fn an_answer_cut_at_the_token_limit_is_reported_as_such_and_not_retried() {
    let server = FakeServer::start(|_| cut("{\"q1\": \"How many customers are th"))
        .await
        .unwrap();
    let c = LlmClient::new(backend(&server, json!({})), options(1), None);
    let err = c.call(&request("eval")).await.unwrap_err();
    assert!(matches!(err, LlmError::Truncated { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("finish_reason: length"), "{msg}");
    assert!(msg.contains("max_tokens 1024"), "{msg}");
    assert!(msg.contains("same-model"), "{msg}");
    assert_eq!(server.count(), 1, "no repair request, no retry");
    // Free text cut short is not an answer either.
    let free = LlmRequest::new("eval", vec![Message::user("SQL please")]);
    assert!(matches!(
        c.call(&free).await,
        Err(LlmError::Truncated { .. })
    ));
    // An answer that is whole although the limit was reached is used.
    let whole = FakeServer::start(|_| cut(GOOD)).await.unwrap();
    let c = LlmClient::new(backend(&whole, json!({})), options(1), None);
    assert!(c.call(&request("eval")).await.is_ok());
}

#[tokio::test]
async fn a_bad_request_that_is_not_about_the_format_keeps_json_schema() {
    let server = FakeServer::start(|_| {
        FakeResponse::json(
            400,
            json!({"error": {"message": "This model's maximum context length is 4096 tokens"}}),
        )
    })
    .await
    .unwrap();
    let b = backend(&server, json!({}));
    let err = b.complete(&request("pattern")).await.unwrap_err();
    assert!(
        matches!(err, LlmError::BadRequest { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(server.count(), 1, "no fallback on an unrelated refusal");
    assert_ne!(b.structured_mode(), Some("prompt_only"));
    assert_ne!(b.structured_mode(), Some("json_object"));
}

#[tokio::test]
async fn json_object_is_used_when_json_schema_is_refused_and_remembered_per_server() {
    let server = FakeServer::start(|r| match r.json()["response_format"]["type"].as_str() {
        Some("json_schema") => FakeResponse::json(
            400,
            json!({"error": {"message": "response_format type json_schema is not supported"}}),
        ),
        _ => FakeResponse::chat(GOOD),
    })
    .await
    .unwrap();
    let store = Arc::new(Store::open_in_memory().unwrap());
    let first = client(backend(&server, json!({})), &store);
    let answer = first.call(&request("pattern")).await.unwrap();
    assert_eq!(answer.json.unwrap()["q2"], "How many products are there?");
    assert_eq!(first.backend().structured_mode(), Some("json_object"));
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    let body = sent[1].json();
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    // The prompt asks for every key, with a whole example object.
    let asked = body["messages"][1]["content"].as_str().unwrap().to_string();
    assert!(
        asked.contains("\"q1\" (string), \"q2\" (string)"),
        "{asked}"
    );
    assert!(asked.contains(r#"{"q1":"...","q2":"..."}"#), "{asked}");
    let modes = store.server_modes().unwrap();
    assert_eq!(modes.len(), 1, "{modes:?}");
    assert_eq!(modes[0].1, "json_object");
    assert!(modes[0].2.as_deref().unwrap().contains("not supported"));
    // A new client (the next process) starts in the mode learnt: one request, no refusal.
    let mut other = request("pattern");
    other.sampling.seed = Some(9);
    let next = client(backend(&server, json!({})), &store);
    next.call(&other).await.unwrap();
    assert_eq!(server.count(), 3);
    assert_eq!(
        server.requests()[2].json()["response_format"]["type"],
        "json_object"
    );
}

#[tokio::test]
async fn every_request_names_lode_in_its_user_agent() {
    let server = FakeServer::start(|r| {
        if r.path.ends_with("/models") {
            FakeResponse::json(200, json!({"data": [{"id": "same-model"}]}))
        } else if r.path.ends_with("/completions") && !r.path.contains("chat") {
            FakeResponse::json(200, json!({"q1": "a", "q2": "b"}))
        } else {
            FakeResponse::chat(GOOD)
        }
    })
    .await
    .unwrap();
    let b = backend(&server, json!({}));
    b.list_models().await.unwrap();
    b.complete(&request("pattern")).await.unwrap();
    LaminiBackend::new(
        &server.url(),
        "m",
        Secret::new("lamini-key-1234"),
        Duration::from_secs(5),
    )
    .unwrap()
    .complete(&request("pattern"))
    .await
    .unwrap();
    let want = format!("lode/{}", env!("CARGO_PKG_VERSION"));
    let sent = server.requests();
    assert_eq!(sent.len(), 3);
    for r in sent {
        assert_eq!(r.header("user-agent"), Some(want.as_str()), "{}", r.path);
    }
}

#[tokio::test]
async fn a_lamini_url_given_with_v1_is_not_doubled_and_errors_name_model_and_server() {
    let server =
        FakeServer::start(|_| FakeResponse::json(594, json!({"detail": "Model not found"})))
            .await
            .unwrap();
    let b = LaminiBackend::new(
        &format!("{}/v1/", server.url()),
        "my-tuned-model",
        Secret::new("lamini-key-1234"),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = b.complete(&request("eval")).await.unwrap_err().to_string();
    assert_eq!(server.requests()[0].path, "/v1/completions");
    assert!(err.contains("my-tuned-model"), "{err}");
    assert!(err.contains(&server.url()), "{err}");
    assert!(err.contains("594"), "{err}");
}

#[tokio::test]
async fn retries_are_counted_on_the_answer() {
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&n);
    let server = FakeServer::start(move |_| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            FakeResponse::json(500, json!({"error": "busy"}))
        } else {
            FakeResponse::chat(GOOD)
        }
    })
    .await
    .unwrap();
    let store = Arc::new(Store::open_in_memory().unwrap());
    let c = client(backend(&server, json!({})), &store);
    let (answer, retries) = c.call_traced(&request("pattern")).await;
    let answer = answer.unwrap();
    assert_eq!(answer.attempts, 3);
    assert_eq!(retries.len(), 2);
    assert!(retries[0].contains("busy"), "{retries:?}");
}
