//! `lode eval` through an LLM profile served by an in-process fake OpenAI server: questions
//! are answered concurrently, replies are parsed, inference failures count, every call is
//! logged, a re-run is served from the cache, and the API key is stored nowhere.

use std::path::Path;
use std::process::Command;

use lode_core::project::Project;
use lode_core::project::demo::{DemoOptions, write_demo};
use lode_core::store::Store;
use lode_testkit::{FakeResponse, FakeServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_through_an_openai_profile() {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let eval = project.eval.clone();
    let n = eval.len();
    // Right SQL for even questions, a wrong query for odd ones, a 500 for the last.
    let answers = eval.clone();
    let server = FakeServer::start(move |r| {
        let body = r.json();
        let prompt = body["messages"][1]["content"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let Some(i) = answers.iter().position(|p| prompt.ends_with(&p.question)) else {
            return FakeResponse::json(400, serde_json::json!({"error": "unknown question"}));
        };
        if i == answers.len() - 1 {
            return FakeResponse::json(500, serde_json::json!({"error": "boom"}));
        }
        let sql = if i % 2 == 0 {
            answers[i].sql.clone()
        } else {
            "SELECT 42".to_string()
        };
        FakeResponse::chat(&serde_json::json!({ "sql": sql }).to_string())
    })
    .await
    .unwrap();
    let config = std::fs::read_to_string(dir.path().join("config.yml")).unwrap();
    let config = config.split("\nllm:").next().unwrap().to_string();
    let config = format!(
        "{config}\nllm:\n  default: fake\n  profiles:\n    fake:\n      kind: openai\n      base_url: {}/v1\n      api_key_env: LODE_TEST_KEY\n      model: fake-model\n      max_concurrency: 4\n",
        server.url()
    );
    std::fs::write(dir.path().join("config.yml"), config).unwrap();

    let run = |dir: &Path| {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_lode"))
                .current_dir(&dir)
                .env("LODE_TEST_KEY", "sk-very-secret-1234")
                .args(["eval", "--model", "fake"])
                .output()
                .unwrap()
        })
    };
    let out = run(dir.path()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let right = (n - 1).div_ceil(2);
    let want = format!("{:.3}", right as f64 / n as f64);
    assert!(
        stdout.contains(&want),
        "accuracy {want} expected:\n{stdout}"
    );
    assert!(stdout.contains("no_prediction 1"), "{stdout}");
    // Each question once, plus the retries of the failing one (4 attempts).
    let first = server.count();
    assert_eq!(first, n - 1 + 4);
    assert!(server.max_in_flight() <= 4);
    for r in server.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer sk-very-secret-1234")
        );
    }

    // A second run answers from the cache: only the failed question is asked again.
    let out = run(dir.path()).await.unwrap();
    assert!(out.status.success());
    assert_eq!(server.count(), first + 4);

    let store_path = project.store_path();
    let store = Store::open(&store_path).unwrap();
    let stats = store.llm_call_stats(None).unwrap();
    assert_eq!(stats.calls as usize, 2 * n);
    assert_eq!(stats.cached as usize, n - 1);
    assert_eq!(stats.failed, 2);
    drop(store);
    for f in std::fs::read_dir(store_path.parent().unwrap()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("sk-very-secret-1234"),
            "the API key was stored"
        );
    }
}

/// `lode eval --samples 3` against a server whose answers depend on the sample's seed:
/// sample 1 gets questions 0-4 right, sample 2 questions 0-9, sample 3 questions 5-11. So
/// the first sample scores 5, the majority 10 (two of three right on 0-9; on 10-11 the two
/// wrong answers agree), and pass@3 12 of 15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_report_single_majority_and_pass_at_k() {
    use lode_core::pipeline::stats::Accuracy;
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let project = Project::load(&dir.path().join("config.yml")).unwrap();
    let eval = project.eval.clone();
    let n = eval.len();
    assert_eq!(n, 15);
    let server = FakeServer::start(move |r| {
        let body = r.json();
        let prompt = body["messages"][1]["content"].as_str().unwrap_or("");
        let Some(i) = eval.iter().position(|p| prompt.ends_with(&p.question)) else {
            return FakeResponse::json(400, serde_json::json!({"error": "unknown question"}));
        };
        let right = match body["seed"].as_u64() {
            None => i < 5,
            Some(1) => i < 10,
            Some(2) => (5..12).contains(&i),
            Some(_) => false,
        };
        let sql = if right {
            eval[i].sql.as_str()
        } else {
            "SELECT 42"
        };
        FakeResponse::chat(&serde_json::json!({ "sql": sql }).to_string())
    })
    .await
    .unwrap();
    let config = std::fs::read_to_string(dir.path().join("config.yml")).unwrap();
    let config = config.split("\nllm:").next().unwrap().to_string();
    let config = format!(
        "{config}\nllm:\n  default: fake\n  profiles:\n    fake:\n      kind: openai\n      base_url: {}/v1\n      api_key_env: LODE_TEST_KEY\n      model: fake-model\n",
        server.url()
    );
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let cwd = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_lode"))
            .current_dir(&cwd)
            .env("LODE_TEST_KEY", "sk-test")
            .args(["eval", "--model", "fake", "--samples", "3"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.count(), 3 * n, "each question asked once per sample");
    // Sample 1 is asked as a single answer is; later samples are warmer draws.
    for r in server.requests() {
        let body = r.json();
        match body["seed"].as_u64() {
            None => assert_eq!(body["temperature"].as_f64(), Some(0.0)),
            Some(_) => assert_eq!(body["temperature"].as_f64(), Some(0.7)),
        }
    }
    // Labels are padded to a column; compare with the padding collapsed.
    let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for (label, score) in [
        ("single sample (sample 1):", Accuracy::new(5, 15)),
        ("majority vote of 3:", Accuracy::new(10, 15)),
        ("pass@3 (any sample right):", Accuracy::new(12, 15)),
    ] {
        assert!(words.contains(&format!("{label} {score}")), "{stdout}");
    }
    assert!(
        words.contains("pass@1 (mean over samples): 48.9%"),
        "{stdout}"
    );
    // The stored run is sample 1's.
    assert!(
        stdout.contains(&format!("execution accuracy: {}", Accuracy::new(5, 15))),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("reports/eval-1/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["samples"]["k"], 3);
    assert_eq!(report["samples"]["majority"]["correct"], 10);
    assert_eq!(report["samples"]["pass_at_k"]["correct"], 12);
    assert!(report["samples"]["pass_at_k"]["accuracy_ci"].is_array());
}
