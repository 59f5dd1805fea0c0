//! The LLM clients against an in-process fake provider: the exact request JSON per backend,
//! retries (429 with Retry-After, 500), timeouts, truncated and off-schema answers, the
//! json_schema fallback, auth errors, the concurrency limit, the cache and cancellation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lode_core::config::Secret;
use lode_core::llm::{
    Backend, ClientOptions, LaminiBackend, LlmClient, LlmError, LlmRequest, Message, OpenAiBackend,
    OutputSchema, Sampling,
};
use lode_core::store::Store;
use lode_testkit::{FakeResponse, FakeServer};
use serde_json::json;

fn request() -> LlmRequest {
    let mut r = LlmRequest::new(
        "pattern",
        vec![
            Message::system("You are an expert at identifying and replicating question patterns."),
            Message::user("Write two questions like: How many stores are there?"),
        ],
    )
    .with_schema(OutputSchema::new(
        "questions",
        &[("q1", "str"), ("q2", "str")],
    ));
    r.sampling = Sampling {
        temperature: Some(0.7),
        max_tokens: Some(256),
        seed: Some(42),
    };
    r
}

fn openai(server: &FakeServer, timeout: Duration) -> Arc<OpenAiBackend> {
    Arc::new(
        OpenAiBackend::new(
            &format!("{}/v1", server.url()),
            "qwen2.5-coder-7b-instruct",
            Some(Secret::new("sk-test")),
            json!({"top_p": 0.9}),
            timeout,
        )
        .unwrap(),
    )
}

fn fast_retries(max_concurrency: usize) -> ClientOptions {
    ClientOptions {
        profile: "local".into(),
        max_concurrency,
        base_backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    }
}

const GOOD: &str =
    "{\"q1\": \"How many customers are there?\", \"q2\": \"How many products are there?\"}";

#[tokio::test]
async fn openai_request_is_exactly_this() {
    let server = FakeServer::start(|_| FakeResponse::chat(GOOD))
        .await
        .unwrap();
    let backend = openai(&server, Duration::from_secs(5));
    let resp = backend.complete(&request()).await.unwrap();
    assert_eq!(
        resp.json.unwrap(),
        json!({"q1": "How many customers are there?", "q2": "How many products are there?"})
    );
    assert_eq!(resp.usage.unwrap().prompt_tokens, 12);
    let sent = &server.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        sent.json(),
        json!({
            "model": "qwen2.5-coder-7b-instruct",
            "messages": [
                {"role": "system", "content": "You are an expert at identifying and replicating question patterns."},
                {"role": "user", "content": "Write two questions like: How many stores are there?"}
            ],
            "temperature": 0.7,
            "max_tokens": 256,
            "seed": 42,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "questions",
                    "schema": {
                        "type": "object",
                        "properties": {"q1": {"type": "string"}, "q2": {"type": "string"}},
                        "required": ["q1", "q2"],
                        "additionalProperties": false
                    },
                    "strict": true
                }
            },
            "top_p": 0.9
        })
    );
    assert_eq!(backend.structured_mode(), Some("json_schema"));
}

#[tokio::test]
async fn lamini_request_is_exactly_this() {
    let server = FakeServer::start(|_| {
        FakeResponse::json(
            200,
            json!({"q1": "How many customers are there?", "q2": "Which store is largest?"}),
        )
    })
    .await
    .unwrap();
    let backend = LaminiBackend::new(
        &server.url(),
        "meta-llama/Llama-3.1-8B-Instruct",
        Secret::new("lamini-key"),
        Duration::from_secs(5),
    )
    .unwrap();
    let resp = backend.complete(&request()).await.unwrap();
    assert_eq!(resp.json.unwrap()["q2"], "Which store is largest?");
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer lamini-key"));
    assert_eq!(
        sent.json(),
        json!({
            "model_name": "meta-llama/Llama-3.1-8B-Instruct",
            "prompt": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are an expert at identifying and replicating question patterns.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWrite two questions like: How many stores are there?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            "output_type": {"q1": "str", "q2": "str"},
            "max_new_tokens": 256
        })
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_then_success() {
    let server = FakeServer::start(|r| {
        if r.index == 0 {
            FakeResponse::json(429, json!({"error": {"message": "slow down"}}))
                .with_header("Retry-After", "0.3")
        } else {
            FakeResponse::chat(GOOD)
        }
    })
    .await
    .unwrap();
    let client = LlmClient::new(
        openai(&server, Duration::from_secs(5)),
        fast_retries(2),
        None,
    );
    let start = Instant::now();
    let resp = client.call(&request()).await.unwrap();
    assert!(resp.json.is_some());
    assert_eq!(server.count(), 2);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "Retry-After was not honoured"
    );
}

#[tokio::test]
async fn server_error_then_success() {
    let server = FakeServer::start(|r| {
        if r.index == 0 {
            FakeResponse::json(500, json!({"error": "overloaded"}))
        } else {
            FakeResponse::chat(GOOD)
        }
    })
    .await
    .unwrap();
    let client = LlmClient::new(
        openai(&server, Duration::from_secs(5)),
        fast_retries(2),
        None,
    );
    assert!(client.call(&request()).await.is_ok());
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_reply_slower_than_the_timeout_is_a_timeout() {
    let server = FakeServer::start(|_| FakeResponse::chat(GOOD).with_delay(Duration::from_secs(3)))
        .await
        .unwrap();
    let options = ClientOptions {
        max_attempts: 2,
        ..fast_retries(2)
    };
    let client = LlmClient::new(openai(&server, Duration::from_millis(200)), options, None);
    let err = client.call(&request()).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout(_)), "{err:?}");
    assert_eq!(server.count(), 2, "a timeout is retried once");
}

#[tokio::test]
async fn truncated_json_gets_one_repair_request() {
    let server = FakeServer::start(|r| {
        if r.index == 0 {
            FakeResponse::chat("{\"q1\": \"How many customers are there?\", \"q2")
        } else {
            FakeResponse::chat(GOOD)
        }
    })
    .await
    .unwrap();
    let backend = openai(&server, Duration::from_secs(5));
    let resp = backend.complete(&request()).await.unwrap();
    assert_eq!(resp.json.unwrap()["q2"], "How many products are there?");
    let repair = server.requests()[1].json();
    let msgs = repair["messages"].as_array().unwrap();
    assert_eq!(msgs[2]["role"], "assistant");
    assert!(
        msgs[3]["content"]
            .as_str()
            .unwrap()
            .contains("cannot be used")
    );
}

#[tokio::test]
async fn an_answer_that_violates_the_schema_twice_is_a_schema_violation() {
    let server = FakeServer::start(|_| FakeResponse::chat("{\"q1\": \"only one\"}"))
        .await
        .unwrap();
    let backend = openai(&server, Duration::from_secs(5));
    let err = backend.complete(&request()).await.unwrap_err();
    match err {
        LlmError::SchemaViolation { message, .. } => assert!(message.contains("q2"), "{message}"),
        other => panic!("expected a schema violation, got {other:?}"),
    }
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_server_refusing_every_response_format_gets_prompt_only_json() {
    let server = FakeServer::start(|r| {
        if r.json().get("response_format").is_some() {
            FakeResponse::json(
                400,
                json!({"error": {"message": "'response_format.type' must be 'text'"}}),
            )
        } else {
            FakeResponse::chat(&format!("Here you go:\n```json\n{GOOD}\n```"))
        }
    })
    .await
    .unwrap();
    let backend = openai(&server, Duration::from_secs(5));
    let resp = backend.complete(&request()).await.unwrap();
    assert_eq!(resp.json.unwrap()["q1"], "How many customers are there?");
    // json_schema, then json_object, then the shape asked for in the prompt only.
    let sent = server.requests();
    assert_eq!(sent[0].json()["response_format"]["type"], "json_schema");
    assert_eq!(sent[1].json()["response_format"]["type"], "json_object");
    let third = sent[2].json();
    assert!(third.get("response_format").is_none());
    let last = third["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(last.contains("Answer with only a JSON object"), "{last}");
    assert_eq!(backend.structured_mode(), Some("prompt_only"));
    // Later calls go straight to prompt-only.
    backend.complete(&request()).await.unwrap();
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn a_bad_key_is_a_clear_auth_error_and_not_retried() {
    let server = FakeServer::start(|_| {
        FakeResponse::json(
            401,
            json!({"error": {"message": "Incorrect API key provided"}}),
        )
    })
    .await
    .unwrap();
    let client = LlmClient::new(
        openai(&server, Duration::from_secs(5)),
        fast_retries(2),
        None,
    );
    let err = client.call(&request()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("Incorrect API key provided"), "{msg}");
    assert!(msg.contains("api_key"), "{msg}");
    assert!(
        !msg.contains("sk-test"),
        "the key must never be printed: {msg}"
    );
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn concurrency_never_exceeds_the_limit() {
    let server =
        FakeServer::start(|_| FakeResponse::chat(GOOD).with_delay(Duration::from_millis(40)))
            .await
            .unwrap();
    let client = Arc::new(LlmClient::new(
        openai(&server, Duration::from_secs(5)),
        ClientOptions {
            use_cache: false,
            ..fast_retries(4)
        },
        None,
    ));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let c = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let mut r = request();
            r.messages.push(Message::user(format!("variant {i}")));
            c.call(&r).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(server.count(), 40);
    assert!(
        server.max_in_flight() <= 4,
        "{} in flight",
        server.max_in_flight()
    );
    assert!(
        server.max_in_flight() >= 2,
        "the limit should still allow parallel calls"
    );
}

#[tokio::test]
async fn the_cache_serves_a_repeated_call_without_a_request() {
    let server = FakeServer::start(|_| FakeResponse::chat(GOOD))
        .await
        .unwrap();
    let store = Arc::new(Store::open_in_memory().unwrap());
    let client = LlmClient::new(
        openai(&server, Duration::from_secs(5)),
        fast_retries(2),
        Some(Arc::clone(&store)),
    );
    let a = client.call(&request()).await.unwrap();
    let b = client.call(&request()).await.unwrap();
    assert_eq!(server.count(), 1);
    assert!(!a.cached && b.cached);
    assert_eq!(a.json, b.json);
    let stats = store.llm_call_stats(None).unwrap();
    assert_eq!((stats.calls, stats.cached, stats.failed), (2, 1, 0));
    // A different request is not served from the cache; --no-cache bypasses it.
    let mut other = request();
    other.sampling.seed = Some(7);
    client.call(&other).await.unwrap();
    assert_eq!(server.count(), 2);
    let uncached = LlmClient::new(
        openai(&server, Duration::from_secs(5)),
        ClientOptions {
            use_cache: false,
            ..fast_retries(2)
        },
        Some(store),
    );
    uncached.call(&request()).await.unwrap();
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn cancellation_stops_a_call_in_flight() {
    let server =
        FakeServer::start(|_| FakeResponse::chat(GOOD).with_delay(Duration::from_secs(10)))
            .await
            .unwrap();
    let client = Arc::new(LlmClient::new(
        openai(&server, Duration::from_secs(30)),
        fast_retries(2),
        None,
    ));
    let token = client.cancel_token();
    let c = Arc::clone(&client);
    let call = tokio::spawn(async move { c.call(&request()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    token.cancel();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err, LlmError::Cancelled);
}

#[tokio::test]
async fn lamini_error_codes_become_actionable_messages() {
    let server = FakeServer::start(|r| match r.index {
        0 => FakeResponse::json(594, json!({"detail": "model not found"})),
        1 => FakeResponse::json(513, json!({"detail": "downloading"})),
        _ => FakeResponse::json(200, json!({"q1": "a", "q2": "b"})),
    })
    .await
    .unwrap();
    let backend = Arc::new(
        LaminiBackend::new(
            &server.url(),
            "my-tuned-model",
            Secret::new("k"),
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let err = backend.complete(&request()).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("no model my-tuned-model"), "{err}");
    // 513 (downloading) is retried by the client, then succeeds.
    let client = LlmClient::new(backend, fast_retries(1), None);
    assert!(client.call(&request()).await.is_ok());
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn requests_per_minute_spaces_the_calls() {
    let server = FakeServer::start(|_| FakeResponse::chat(GOOD))
        .await
        .unwrap();
    let client = Arc::new(LlmClient::new(
        openai(&server, Duration::from_secs(5)),
        ClientOptions {
            requests_per_minute: 600, // one every 100 ms
            use_cache: false,
            ..fast_retries(8)
        },
        None,
    ));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let c = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let mut r = request();
            r.messages.push(Message::user(format!("{i}")));
            c.call(&r).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(server.count(), 5);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "5 starts need 4 intervals"
    );
}
