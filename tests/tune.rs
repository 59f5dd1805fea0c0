//! Tuning against in-process fake Lamini and OpenAI servers and a fake trainer script: full
//! lifecycles, failures with their reasons, cancellation, resumed watching, and the exported
//! files pinned for a small fixture. Watching: a refusal ends a watch at once, an unreachable
//! provider is retried on a bounded schedule told retry by retry (`lode jobs watch` too), a
//! long OpenAI job's events are shown once each and in order, and every request carries
//! lode's User-Agent.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lode_core::project::Project;
use lode_core::store::{NewPair, NewRun, PairStatus, Store, TuneProvider};
use lode_core::tune::{
    self, JobStatus, JobUpdate, RetrySchedule, TuneError, WatchEvent, WatchOptions, dataset,
};
use lode_testkit::{FakeRequest, FakeResponse, FakeServer};
use serde_json::json;

/// A one-table project with `n` accepted pairs; `extra` is appended to config.yml.
fn fixture(dir: &Path, n: usize, extra: &str) -> (Project, Arc<Store>) {
    let c = rusqlite::Connection::open(dir.join("t.sqlite")).unwrap();
    c.execute_batch("CREATE TABLE shop(id INTEGER PRIMARY KEY, city TEXT); INSERT INTO shop(city) VALUES ('Lyon'), ('Nantes');")
        .unwrap();
    drop(c);
    std::fs::write(
        dir.join("gold.jsonl"),
        "{\"input\": \"How many shops are there?\", \"output\": \"SELECT COUNT(*) FROM shop\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.yml"),
        format!("database:\n  path: t.sqlite\npaths:\n  gold_test_set: gold.jsonl\n{extra}"),
    )
    .unwrap();
    let project = Project::load(&dir.join("config.yml")).unwrap();
    let (store, _) = project.open_store().unwrap();
    let run = store
        .create_run(&NewRun {
            kind: lode_core::store::RunKind::Generate,
            ..Default::default()
        })
        .unwrap();
    let pairs: Vec<NewPair> = (0..n)
        .map(|i| NewPair {
            origin_key: format!("k{i}"),
            generator: "pattern".into(),
            question: format!("Which shops are in city number {i}?"),
            sql: format!("SELECT id FROM shop WHERE id > {i}"),
            status: Some(PairStatus::Accepted),
            ..Default::default()
        })
        .collect();
    store.insert_pairs(run, &pairs).unwrap();
    (project, Arc::new(store))
}

fn fast(project: &Project) -> Duration {
    let _ = project;
    Duration::from_millis(20)
}

#[test]
fn exports_are_pinned_for_a_small_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = fixture(dir.path(), 0, "");
    let e = dataset::Example {
        pair_id: 1,
        question: "How many shops are in Lyon?".into(),
        sql: "SELECT COUNT(*) FROM shop WHERE city = 'Lyon'".into(),
    };
    let user = "Database schema:\nCREATE TABLE shop (\n  id INTEGER,\n  city TEXT\n);\nOutput only SQL - How many shops are in Lyon?";
    let system =
        "You are an expert SQLite analyst. Answer the question with one read-only SQLite query.";
    let sql = "SELECT COUNT(*) FROM shop WHERE city = 'Lyon'";
    let line = |f: &str| dataset::render_line(f, &project, &e).unwrap();
    assert_eq!(
        line("messages"),
        json!({"messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": sql}]})
    );
    assert_eq!(
        line("alpaca"),
        json!({"instruction": system, "input": user, "output": sql})
    );
    assert_eq!(
        line("sharegpt"),
        json!({"conversations": [
        {"from": "system", "value": system}, {"from": "human", "value": user}, {"from": "gpt", "value": sql}]})
    );
    assert_eq!(
        line("prompt-completion"),
        json!({"prompt": format!("{system}\n\n{user}\nSQL:"), "completion": format!(" {sql}")})
    );
    assert_eq!(
        line("lamini-templated"),
        json!({
        "input": format!("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
        "output": format!("{sql}<|eot_id|>")})
    );
    assert_eq!(
        line("lamini"),
        json!({"input": "How many shops are in Lyon?", "output": sql})
    );
    let batch: serde_json::Value =
        serde_json::from_str(dataset::openai_batch(&project, "m").lines().next().unwrap()).unwrap();
    assert_eq!(batch["url"], "/v1/chat/completions");
    assert_eq!(
        batch["body"]["messages"][1]["content"].as_str().unwrap(),
        user.replace("How many shops are in Lyon?", "How many shops are there?")
    );
}

#[test]
fn too_few_examples_are_refused_before_submitting() {
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = fixture(dir.path(), 3, "");
    let p = tune::provider_for(
        lode_core::store::TuneProvider::Memory,
        &project,
        Arc::clone(&store),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(tune::submit(&project, &store, &p, None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only 3 training examples (at least 10 needed)"),
        "{err}"
    );
    assert!(err.contains("lode review accept"), "{err}");
}

#[test]
fn memory_tuning_answers_its_training_questions() {
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = fixture(dir.path(), 12, "");
    let p = tune::provider_for(
        lode_core::store::TuneProvider::Memory,
        &project,
        Arc::clone(&store),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let job = rt
        .block_on(tune::submit(&project, &store, &p, None))
        .unwrap();
    let status = rt
        .block_on(tune::watch(&store, &p, job, fast(&project), None, &|_| {}))
        .unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    let model = tune::job_model(&store, job).unwrap().unwrap();
    assert!(model.starts_with("memory:"));
    let request = lode_core::tasks::model::ModelRequest {
        job: Some(job),
        ..lode_core::tasks::model::ModelRequest::default_model()
    };
    let client = lode_core::tasks::model::choose(
        &project,
        &store,
        &request,
        lode_core::tasks::model::Purpose::Evaluate,
        None,
    )
    .unwrap()
    .client;
    let req = lode_core::sqlprompt::question_request(
        &project.schema,
        &project.glossary,
        "Which shops are in city number 7?",
    );
    let resp = rt.block_on(client.call(&req)).unwrap();
    assert_eq!(
        resp.json.unwrap()["sql"],
        "SELECT id FROM shop WHERE id > 7"
    );
    // The dataset holds the training and validation examples.
    let ds = store.job(job).unwrap().dataset_id.unwrap();
    assert_eq!(store.dataset_pair_ids(ds).unwrap().len(), 12);
}

fn lamini_server(r: &FakeRequest, fail: bool) -> FakeResponse {
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/train") => {
            FakeResponse::json(200, json!({"job_id": 42, "status": "SCHEDULED"}))
        }
        ("POST", "/v1/train/jobs/42/cancel") => {
            FakeResponse::json(200, json!({"status": "CANCELLED"}))
        }
        ("GET", "/v1/train/jobs/42") => {
            let n = r.index;
            let body = match n {
                1 => json!({"status": "QUEUED"}),
                2 => {
                    json!({"status": "TRAINING MODEL", "step": 60, "max_steps": 120, "loss": 0.42})
                }
                _ if fail => {
                    json!({"status": "FAILED", "error": "dataset has too few rows for memory tuning"})
                }
                _ => json!({"status": "COMPLETED", "model_name": "tuned-abc123"}),
            };
            FakeResponse::json(200, body)
        }
        _ => FakeResponse::json(404, json!({"detail": "not found"})),
    }
}

#[test]
fn lamini_lifecycle_failure_and_cancel() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for fail in [false, true] {
        let server = rt
            .block_on(FakeServer::start(move |r| lamini_server(r, fail)))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "api:\n  url: {}\n  key: lamini-test-key\nmodel:\n  memory_tuning: meta-llama/Llama-3.1-8B-Instruct\nmemory_tuning:\n  max_steps: 120\n  learning_rate: 0.0003\n  max_gpus: 2\n  max_nodes: 1\ntune:\n  provider: lamini\n",
            server.url()
        );
        let (project, store) = fixture(dir.path(), 20, &extra);
        let p = tune::provider_for(
            lode_core::store::TuneProvider::Lamini,
            &project,
            Arc::clone(&store),
        )
        .unwrap();
        let job = rt
            .block_on(tune::submit(&project, &store, &p, None))
            .unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let status = rt
            .block_on(tune::watch(
                &store,
                &p,
                job,
                Duration::from_millis(10),
                None,
                &|u| seen.lock().unwrap().push(u.clone()),
            ))
            .unwrap();
        let train = server.requests()[0].json();
        assert_eq!(
            server.requests()[0].header("authorization"),
            Some("Bearer lamini-test-key")
        );
        assert_user_agent(&server);
        assert_eq!(train["model_name"], "meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!(
            train["finetune_args"],
            json!({"max_steps": 120, "learning_rate": 0.0003})
        );
        assert_eq!(train["gpu_config"], json!({"gpus": 2, "nodes": 1}));
        assert_eq!(
            train["data"].as_array().unwrap().len(),
            18,
            "20 pairs minus the validation split"
        );
        assert!(
            train["data"][0]["output"]
                .as_str()
                .unwrap()
                .ends_with("<|eot_id|>")
        );
        let events = store.job_events(job).unwrap();
        let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
        assert!(statuses.contains(&"running"), "{statuses:?}");
        assert!(
            events
                .iter()
                .any(|e| e.data_json.as_deref().is_some_and(|d| d.contains("0.42"))),
            "the loss is kept"
        );
        if fail {
            assert_eq!(status, JobStatus::Failed);
            assert!(
                events.last().unwrap().message.contains("too few rows"),
                "{:?}",
                events.last()
            );
        } else {
            assert_eq!(status, JobStatus::Succeeded);
            assert_eq!(
                tune::job_model(&store, job).unwrap().as_deref(),
                Some("tuned-abc123")
            );
            rt.block_on(p.cancel("42")).unwrap();
            assert!(
                server
                    .requests()
                    .iter()
                    .any(|r| r.path == "/v1/train/jobs/42/cancel")
            );
        }
    }
}

fn openai_server(r: &FakeRequest) -> FakeResponse {
    let path = r.path.split('?').next().unwrap_or("");
    match (r.method.as_str(), path) {
        ("POST", "/v1/files") => FakeResponse::json(
            200,
            json!({"id": format!("file-{}", r.index), "object": "file"}),
        ),
        ("POST", "/v1/fine_tuning/jobs") => {
            FakeResponse::json(200, json!({"id": "ftjob-1", "status": "validating_files"}))
        }
        ("GET", "/v1/fine_tuning/jobs/ftjob-1/events") => {
            if r.path.contains("after=") {
                FakeResponse::json(200, json!({"data": [], "has_more": false}))
            } else {
                FakeResponse::json(
                    200,
                    json!({"data": [
                    {"id": "ev-2", "message": "Step 2/4: training loss=0.50", "type": "metrics", "data": {"step": 2, "total_steps": 4, "train_loss": 0.5}},
                    {"id": "ev-1", "message": "Step 1/4: training loss=0.90", "type": "metrics", "data": {"step": 1, "total_steps": 4, "train_loss": 0.9}}
                ], "has_more": false}),
                )
            }
        }
        ("GET", "/v1/fine_tuning/jobs/ftjob-1") => {
            let gets = r.index;
            if gets < 8 {
                FakeResponse::json(200, json!({"id": "ftjob-1", "status": "running"}))
            } else {
                FakeResponse::json(
                    200,
                    json!({"id": "ftjob-1", "status": "succeeded", "fine_tuned_model": "ft:gpt-4o-mini:lode:abc"}),
                )
            }
        }
        ("POST", "/v1/fine_tuning/jobs/ftjob-1/cancel") => {
            FakeResponse::json(200, json!({"status": "cancelled"}))
        }
        _ => FakeResponse::json(404, json!({"error": {"message": "not found"}})),
    }
}

#[test]
fn openai_lifecycle_with_paged_events_and_resumed_watching() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(FakeServer::start(openai_server)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "tune:\n  openai:\n    base_url: {}/v1\n    api_key_env: LODE_TEST_OPENAI_KEY\n    model: gpt-4o-mini-2024-07-18\n",
        server.url()
    );
    let (project, store) = fixture(dir.path(), 20, &extra);
    let p = tune::provider_for(
        lode_core::store::TuneProvider::OpenAi,
        &project,
        Arc::clone(&store),
    )
    .unwrap();
    let job = rt
        .block_on(tune::submit(&project, &store, &p, None))
        .unwrap();
    assert_eq!(
        store.job(job).unwrap().external_id.as_deref(),
        Some("ftjob-1")
    );
    let reqs = server.requests();
    assert_eq!(
        reqs.iter().filter(|r| r.path == "/v1/files").count(),
        2,
        "training and validation files"
    );
    assert!(reqs[0].body.contains("name=\"purpose\"") && reqs[0].body.contains("fine-tune"));
    let create = reqs
        .iter()
        .find(|r| r.path == "/v1/fine_tuning/jobs")
        .unwrap()
        .json();
    assert_eq!(create["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(create["method"]["type"], "supervised");
    assert!(create["validation_file"].is_string());

    // lode stops watching after one poll (as if it were closed) ...
    let s = rt
        .block_on(tune::watch(
            &store,
            &p,
            job,
            Duration::from_millis(10),
            Some(1),
            &|_| {},
        ))
        .unwrap();
    assert_eq!(s, JobStatus::Running);
    drop(store);
    // ... and a new lode picks the watch up from the store.
    let store = Arc::new(Store::open(&project.store_path()).unwrap());
    let p2 = tune::provider_for(
        lode_core::store::TuneProvider::OpenAi,
        &project,
        Arc::clone(&store),
    )
    .unwrap();
    let s = rt
        .block_on(tune::watch(
            &store,
            &p2,
            job,
            Duration::from_millis(10),
            None,
            &|_| {},
        ))
        .unwrap();
    assert_eq!(s, JobStatus::Succeeded);
    assert_eq!(
        tune::job_model(&store, job).unwrap().as_deref(),
        Some("ft:gpt-4o-mini:lode:abc")
    );
    let events = store.job_events(job).unwrap();
    let losses: Vec<String> = events
        .iter()
        .filter_map(|e| e.data_json.clone())
        .filter(|d| d.contains("\"loss\":0."))
        .collect();
    assert!(
        losses.iter().any(|d| d.contains("0.9")) && losses.iter().any(|d| d.contains("0.5")),
        "{losses:?}"
    );
    // Every poll read the same two events (newest first): each is stored once, oldest first,
    // across the restart too.
    let steps: Vec<&str> = events
        .iter()
        .map(|e| e.message.as_str())
        .filter(|m| m.starts_with("Step "))
        .collect();
    assert_eq!(
        steps,
        [
            "Step 1/4: training loss=0.90",
            "Step 2/4: training loss=0.50"
        ]
    );
    rt.block_on(p2.cancel("ftjob-1")).unwrap();
    assert_user_agent(&server);
}

/// Every request the fake server saw came with lode's User-Agent.
fn assert_user_agent(server: &FakeServer) {
    let requests = server.requests();
    assert!(!requests.is_empty());
    for r in requests {
        assert_eq!(
            r.header("user-agent"),
            Some(lode_core::USER_AGENT),
            "{} {}",
            r.method,
            r.path
        );
    }
    assert!(lode_core::USER_AGENT.starts_with("lode/"));
}

#[test]
fn local_trainer_is_watched_to_completion_and_cancelled_midway() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("train.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor i in 1 2 3 4 5; do\n  echo \"{\\\"current_steps\\\": $i, \\\"total_steps\\\": 5, \\\"loss\\\": 0.$((9 - i)), \\\"lr\\\": 0.0001}\" >> trainer_log.jsonl\n  echo step $i\n  sleep 0.3\ndone\n",
    )
    .unwrap();
    let extra = format!(
        "tune:\n  local:\n    command: sh {} {{train}}\n    output_dir: out\n    grace_s: 1\n",
        script.display()
    );
    let (project, store) = fixture(dir.path(), 20, &extra);
    let p = tune::provider_for(
        lode_core::store::TuneProvider::Local,
        &project,
        Arc::clone(&store),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let job = rt
        .block_on(tune::submit(&project, &store, &p, None))
        .unwrap();
    let status = rt
        .block_on(tune::watch(
            &store,
            &p,
            job,
            Duration::from_millis(100),
            None,
            &|_| {},
        ))
        .unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    let job_dir = dir.path().join("out").join(format!("job-{job}"));
    assert!(
        std::fs::read_to_string(job_dir.join("trainer.log"))
            .unwrap()
            .contains("step 5")
    );
    assert!(job_dir.join("train.jsonl").exists() && job_dir.join("dataset_info.json").exists());
    let events = store.job_events(job).unwrap();
    assert!(events.iter().any(|e| {
        e.data_json
            .as_deref()
            .is_some_and(|d| d.contains("\"step\":"))
    }));

    // A second run, cancelled midway: the whole process group is gone afterwards.
    let job2 = rt
        .block_on(tune::submit(&project, &store, &p, None))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let ext = store.job(job2).unwrap().external_id.unwrap();
    let pid = store.job(job2).unwrap().pid.expect("the pid is on the job") as i32;
    rt.block_on(p.cancel(&ext)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let group_alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .is_some_and(|s| {
                let fields: Vec<&str> = s
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                fields.get(2) == Some(&pid.to_string().as_str()) && fields.first() != Some(&"Z")
            })
    });
    assert!(!group_alive, "processes of group {pid} survived the cancel");
    let s = rt
        .block_on(tune::watch(
            &store,
            &p,
            job2,
            Duration::from_millis(50),
            None,
            &|_| {},
        ))
        .unwrap();
    assert_eq!(s, JobStatus::Cancelled);
    assert!(store.job(job2).unwrap().cancel_requested);

    // A restarted lode (a new provider over the same store) learns how the first job ended
    // from the exit code its reaper recorded.
    assert_eq!(store.job(job).unwrap().exit_code, Some(0));
    let restarted = tune::provider_for(
        lode_core::store::TuneProvider::Local,
        &project,
        Arc::clone(&store),
    )
    .unwrap();
    let ext1 = store.job(job).unwrap().external_id.unwrap();
    let u = rt.block_on(restarted.status(&ext1)).unwrap();
    assert_eq!(u.status, Some(JobStatus::Succeeded));

    // A trainer whose pid is gone with no exit code recorded (the lode that started it exited
    // first) is reported failed, with where to look.
    let orphan = store
        .create_job(
            lode_core::store::TuneProvider::Local,
            None,
            None,
            JobStatus::Queued,
            "{}",
        )
        .unwrap();
    store.set_job_external_id(orphan, "job-orphan").unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    store.set_job_pid(orphan, i64::from(gone_pid)).unwrap();
    let u = rt.block_on(restarted.status("job-orphan")).unwrap();
    assert_eq!(u.status, Some(JobStatus::Failed));
    assert!(
        u.error.as_deref().unwrap().contains("without an exit code"),
        "{u:?}"
    );
}

#[test]
fn retrieval_gives_any_model_the_closest_pairs_as_examples() {
    use lode_core::sqlprompt::MemoryIndex;
    let index = MemoryIndex::new(vec![
        (
            "How many shops are in Lyon?".into(),
            "SELECT COUNT(*) FROM shop WHERE city = 'Lyon'".into(),
        ),
        (
            "List every shop city.".into(),
            "SELECT DISTINCT city FROM shop".into(),
        ),
        ("What is the revenue per month?".into(), "SELECT 1".into()),
    ]);
    let top = index.top_k("How many shops are in Nantes?", 2);
    assert_eq!(top[0].0, "How many shops are in Lyon?");
    assert_eq!(top.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = fixture(dir.path(), 0, "");
    let req = lode_core::sqlprompt::question_request(
        &project.schema,
        &project.glossary,
        "How many shops are in Nantes?",
    );
    let req = lode_core::sqlprompt::with_examples(req, &top);
    let user = &req.messages[1].content;
    assert!(user.starts_with("Examples of questions about this database and their SQL:\nQuestion: How many shops are in Lyon?"), "{user}");
    assert!(
        user.ends_with("Output only SQL - How many shops are in Nantes?"),
        "{user}"
    );
}

// Watching: refusals end a watch at once, an unreachable provider is retried on a bounded
// schedule, the OpenAI event feed shows every event once and in order, and the errors name
// the provider, the endpoint and the job or model.

/// A job already submitted to `provider` as `external`, running.
fn running_job(store: &Store, provider: TuneProvider, external: &str) -> i64 {
    let job = store
        .create_job(provider, None, None, JobStatus::Running, "{}")
        .unwrap();
    store.set_job_external_id(job, external).unwrap();
    job
}

/// Polls and retries a few milliseconds apart, at most `retries` retries in a row.
fn quick(retries: usize) -> WatchOptions {
    WatchOptions {
        poll: Duration::from_millis(1),
        max_polls: None,
        retry: RetrySchedule {
            first: Duration::from_millis(1),
            longest: Duration::from_millis(4),
            retries,
        },
    }
}

/// What a watch told: its warnings and its updates.
#[derive(Default)]
struct Told {
    warnings: Mutex<Vec<String>>,
    updates: Mutex<Vec<JobUpdate>>,
}

impl Told {
    fn show(&self) -> impl Fn(WatchEvent<'_>) + Sync + '_ {
        move |ev| match ev {
            WatchEvent::Update(u) => self.updates.lock().unwrap().push(u.clone()),
            WatchEvent::Warning(w) => self.warnings.lock().unwrap().push(w.to_string()),
        }
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.lock().unwrap().clone()
    }

    /// The messages of the events told (updates with a provider's event id).
    fn events(&self) -> Vec<String> {
        self.updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.event_id.is_some())
            .map(|u| u.message.clone())
            .collect()
    }
}

fn lamini_project(dir: &Path, url: &str, pairs: usize) -> (Project, Arc<Store>) {
    fixture(
        dir,
        pairs,
        &format!(
            "api:\n  url: {url}\n  key: lamini-test-key-123\nmodel:\n  memory_tuning: meta-llama/Llama-3.1-8B-Instruct\ntune:\n  provider: lamini\n"
        ),
    )
}

/// An OpenAI project whose key is in `key_env` (unset in this process).
fn openai_project(dir: &Path, url: &str, key_env: &str, pairs: usize) -> (Project, Arc<Store>) {
    fixture(
        dir,
        pairs,
        &format!(
            "tune:\n  provider: openai\n  poll_s: 0.05\n  openai:\n    base_url: {url}/v1\n    api_key_env: {key_env}\n    model: gpt-4o-mini-2024-07-18\n"
        ),
    )
}

fn provider(project: &Project, store: &Arc<Store>, kind: TuneProvider) -> Arc<dyn tune::Provider> {
    tune::provider_for(kind, project, Arc::clone(store)).unwrap()
}

/// The watch stopped: the job's status is what it was, and the reason is its last event.
fn assert_stopped_but_job_untouched(store: &Store, job: i64, message: &str) {
    assert_eq!(store.job(job).unwrap().status, JobStatus::Running);
    let events = store.job_events(job).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.status, JobStatus::Running);
    assert_eq!(last.message, message);
    assert!(events.iter().all(|e| e.status != JobStatus::Failed));
}

#[test]
fn a_refusal_ends_the_watch_at_once_with_the_reason_and_the_fix() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for status in [401u16, 403, 404, 400, 422] {
        let server = rt
            .block_on(FakeServer::start(move |r| {
                FakeResponse::echo_headers(status, r)
            }))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (project, store) = lamini_project(dir.path(), &server.url(), 0);
        let p = provider(&project, &store, TuneProvider::Lamini);
        let job = running_job(&store, TuneProvider::Lamini, "42");
        let told = Told::default();
        let err = rt
            .block_on(tune::watch_with(&store, &p, job, &quick(5), &told.show()))
            .unwrap_err();
        assert!(
            matches!(
                err,
                TuneError::WatchStopped {
                    transient: false,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_transient());
        let msg = err.to_string();
        assert_eq!(server.count(), 1, "HTTP {status} is not retried: {msg}");
        assert!(told.warnings().is_empty(), "{:?}", told.warnings());
        for part in [
            "stopped watching job",
            "lamini: GET /v1/train/jobs/42 (job 42)",
            &format!("HTTP {status}: Incorrect API key provided"),
            &format!("watch it again with `lode jobs watch {job}`"),
        ] {
            assert!(msg.contains(part), "`{part}` missing from: {msg}");
        }
        let fix = match status {
            401 | 403 => "the API key was refused: check LAMINI_API_KEY / api.key in config.yml",
            404 => "lamini knows no job 42 here: check it and the base URL",
            _ => "the request was refused as invalid",
        };
        assert!(msg.contains(fix), "`{fix}` missing from: {msg}");
        assert!(
            !msg.contains("lamini-test-key-123"),
            "the key leaked: {msg}"
        );
        assert_stopped_but_job_untouched(&store, job, &msg);
    }
}

#[test]
fn an_unreachable_provider_is_retried_on_a_bounded_visible_schedule() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A server that is overloaded at every request.
    let server = rt
        .block_on(FakeServer::start(|_| {
            FakeResponse::json(503, json!({"error": {"message": "overloaded"}}))
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(dir.path(), &server.url(), "LODE_TEST_UNSET_KEY", 0);
    let p = provider(&project, &store, TuneProvider::OpenAi);
    let job = running_job(&store, TuneProvider::OpenAi, "ftjob-9");
    let told = Told::default();
    let err = rt
        .block_on(tune::watch_with(&store, &p, job, &quick(3), &told.show()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            TuneError::WatchStopped {
                transient: true,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert_eq!(server.count(), 4, "the first try and 3 retries: {msg}");
    let warnings = told.warnings();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for (i, w) in warnings.iter().enumerate() {
        assert!(
            w.starts_with(
                "cannot reach openai: GET /v1/fine_tuning/jobs/ftjob-9 (job ftjob-9): HTTP 503: \
                 overloaded (a server error at openai); "
            ),
            "{w}"
        );
        assert!(w.contains(&format!("; retry {} of 3 in ", i + 1)), "{w}");
    }
    for part in [
        &format!("stopped watching job {job}: cannot reach openai after 3 retries"),
        "HTTP 503",
        "the job goes on at openai",
        &format!("watch it again with `lode jobs watch {job}`"),
    ] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
    assert_stopped_but_job_untouched(&store, job, &msg);

    // Nothing listening at all: the same schedule, saying why.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        "LODE_TEST_UNSET_KEY",
        0,
    );
    let p = provider(&project, &store, TuneProvider::OpenAi);
    let job = running_job(&store, TuneProvider::OpenAi, "ftjob-9");
    let told = Told::default();
    let err = rt
        .block_on(tune::watch_with(&store, &p, job, &quick(2), &told.show()))
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let warnings = told.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[1].starts_with(
            "cannot reach openai: GET /v1/fine_tuning/jobs/ftjob-9 (job ftjob-9): no answer: "
        ) && warnings[1].contains("; retry 2 of 2 in "),
        "{warnings:?}"
    );
    assert_stopped_but_job_untouched(&store, job, &err.to_string());
}

/// An OpenAI job whose status requests are answered, in turn, by `script` (`running`,
/// `succeeded`, or an HTTP error status), with no events.
fn scripted_openai(script: Vec<FakeResponse>) -> impl Fn(&FakeRequest) -> FakeResponse {
    let polls = AtomicUsize::new(0);
    move |r| {
        if r.path.contains("/events") {
            return FakeResponse::json(200, json!({"data": [], "has_more": false}));
        }
        let n = polls.fetch_add(1, Ordering::SeqCst);
        script[n.min(script.len() - 1)].clone()
    }
}

fn job_status(status: &str) -> FakeResponse {
    FakeResponse::json(
        200,
        json!({"id": "ftjob-5", "status": status, "fine_tuned_model": (status == "succeeded").then_some("ft:lode:5")}),
    )
}

#[test]
fn a_successful_poll_starts_the_retry_schedule_over() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let down = || FakeResponse::json(502, json!({"error": {"message": "bad gateway"}}));
    let server = rt
        .block_on(FakeServer::start(scripted_openai(vec![
            down(),
            down(),
            job_status("running"),
            down(),
            down(),
            job_status("succeeded"),
        ])))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(dir.path(), &server.url(), "LODE_TEST_UNSET_KEY", 0);
    let p = provider(&project, &store, TuneProvider::OpenAi);
    let job = running_job(&store, TuneProvider::OpenAi, "ftjob-5");
    let told = Told::default();
    // Two retries in a row at most: four failures in all are survived because a success
    // came between them.
    let status = rt
        .block_on(tune::watch_with(&store, &p, job, &quick(2), &told.show()))
        .unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    let retries: Vec<String> = told
        .warnings()
        .iter()
        .map(|w| {
            w.split("; ")
                .last()
                .unwrap()
                .split(" in ")
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        retries,
        [
            "retry 1 of 2",
            "retry 2 of 2",
            "retry 1 of 2",
            "retry 2 of 2"
        ]
    );
    assert_eq!(
        tune::job_model(&store, job).unwrap().as_deref(),
        Some("ft:lode:5")
    );
}

#[test]
fn retry_after_is_honoured() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(scripted_openai(vec![
            FakeResponse::json(429, json!({"error": {"message": "slow down"}}))
                .with_header("Retry-After", "0.05"),
            FakeResponse::json(503, json!({"error": {"message": "busy"}}))
                .with_header("retry-after-ms", "30"),
            job_status("succeeded"),
        ])))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(dir.path(), &server.url(), "LODE_TEST_UNSET_KEY", 0);
    let p = provider(&project, &store, TuneProvider::OpenAi);
    let job = running_job(&store, TuneProvider::OpenAi, "ftjob-5");
    let told = Told::default();
    let status = rt
        .block_on(tune::watch_with(&store, &p, job, &quick(5), &told.show()))
        .unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    let warnings = told.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains(
            "HTTP 429: slow down (rate limited); retry 1 of 5 in 50 ms as the server asked"
        ),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains(
            "HTTP 503: busy (a server error at openai); retry 2 of 5 in 30 ms as the server asked"
        ),
        "{warnings:?}"
    );
}

/// A long OpenAI job: each status request makes the next burst of events happen (the last
/// burst with the final status), the event list answers as OpenAI's does: newest first,
/// `limit` per page, `after=ID` for the page of events older than ID, `has_more`.
fn long_openai_job(bursts: &'static [usize]) -> impl Fn(&FakeRequest) -> FakeResponse {
    let state = Mutex::new((0usize, 0usize)); // (status polls, events so far)
    move |r| {
        let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        let mut st = state.lock().unwrap();
        match path {
            "/v1/fine_tuning/jobs/ftjob-long" => {
                st.0 += 1;
                if let Some(n) = bursts.get(st.0 - 1) {
                    st.1 += n;
                }
                let status = if st.0 >= bursts.len() {
                    "succeeded"
                } else {
                    "running"
                };
                job_status(status)
            }
            "/v1/fine_tuning/jobs/ftjob-long/events" => {
                let param = |k: &str| {
                    query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                        .map(String::from)
                };
                let limit: usize = param("limit").unwrap().parse().unwrap();
                let older_than = param("after")
                    .map(|a| a.trim_start_matches("ftevent-").parse::<usize>().unwrap())
                    .unwrap_or(st.1 + 1);
                let older: Vec<usize> = (1..older_than).rev().collect();
                let page: Vec<serde_json::Value> = older
                    .iter()
                    .take(limit)
                    .map(|n| {
                        json!({
                            "object": "fine_tuning.job.event",
                            "id": format!("ftevent-{n:04}"),
                            "created_at": 1_700_000_000 + n,
                            "level": "info",
                            "message": format!("event {n}"),
                            "type": "metrics",
                            "data": {"step": n, "total_steps": 430, "train_loss": 1.0 / *n as f64},
                        })
                    })
                    .collect();
                FakeResponse::json(
                    200,
                    json!({"object": "list", "data": page, "has_more": older.len() > limit}),
                )
            }
            _ => FakeResponse::json(404, json!({"error": {"message": "not found"}})),
        }
    }
}

#[test]
fn a_long_job_shows_every_event_once_and_in_order_across_polls_pages_and_restarts() {
    // 430 events over 7 polls; bursts of 150 and 230 take two and three pages.
    const BURSTS: &[usize] = &[3, 0, 150, 1, 0, 230, 46];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(long_openai_job(BURSTS)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(dir.path(), &server.url(), "LODE_TEST_UNSET_KEY", 0);
    let job = running_job(&store, TuneProvider::OpenAi, "ftjob-long");

    // Three polls, then lode stops ...
    let p = provider(&project, &store, TuneProvider::OpenAi);
    let first = Told::default();
    let options = WatchOptions {
        max_polls: Some(3),
        ..quick(3)
    };
    let s = rt
        .block_on(tune::watch_with(&store, &p, job, &options, &first.show()))
        .unwrap();
    assert_eq!(s, JobStatus::Running);
    let expected = |to: usize| (1..=to).map(|n| format!("event {n}")).collect::<Vec<_>>();
    assert_eq!(first.events(), expected(153));
    drop((p, store));

    // ... and a new lode (a new provider, the store reopened) watches the job to its end.
    let store = Arc::new(Store::open(&project.store_path()).unwrap());
    let p = provider(&project, &store, TuneProvider::OpenAi);
    let rest = Told::default();
    let s = rt
        .block_on(tune::watch_with(&store, &p, job, &quick(3), &rest.show()))
        .unwrap();
    assert_eq!(s, JobStatus::Succeeded);
    let mut shown = first.events();
    shown.extend(rest.events());
    assert_eq!(shown, expected(430), "every event once, oldest first");

    // The store holds each event once, in order, with its loss.
    let stored: Vec<String> = store
        .job_events(job)
        .unwrap()
        .into_iter()
        .filter(|e| e.message.starts_with("event "))
        .map(|e| e.message)
        .collect();
    assert_eq!(stored, expected(430));
    // The bursts larger than a page were read page after page.
    let paged = server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/events?") && r.path.contains("&after=ftevent-"))
        .count();
    assert!(paged >= 3, "{paged} pages after the first");
}

#[test]
fn provider_errors_name_the_provider_the_endpoint_and_the_job_or_model() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(|r| {
            let path = r.path.split('?').next().unwrap_or("");
            match (r.method.as_str(), path) {
                ("POST", "/v1/files") => FakeResponse::json(200, json!({"id": "file-1"})),
                ("POST", "/v1/fine_tuning/jobs") => FakeResponse::json(
                    400,
                    json!({"error": {"message": "model gpt-4o-mini-2024-07-18 cannot be fine-tuned"}}),
                ),
                ("POST", "/v1/train") => {
                    FakeResponse::json(500, json!({"detail": "the trainer is down"}))
                }
                _ => FakeResponse::json(404, json!({"error": {"message": "no such job"}})),
            }
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(dir.path(), &server.url(), "LODE_TEST_UNSET_KEY", 20);
    let p = provider(&project, &store, TuneProvider::OpenAi);
    let err = rt
        .block_on(tune::submit(&project, &store, &p, None))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("openai: POST /v1/fine_tuning/jobs (lode job 1, model gpt-4o-mini-2024-07-18): HTTP 400: model gpt-4o-mini-2024-07-18 cannot be fine-tuned (the request was refused as invalid)"),
        "{msg}"
    );
    assert_eq!(err.http_status(), Some(400));
    assert!(!err.is_transient());
    let msg = rt.block_on(p.cancel("ftjob-x")).unwrap_err().to_string();
    assert!(
        msg.starts_with("openai: POST /v1/fine_tuning/jobs/ftjob-x/cancel (job ftjob-x): HTTP 404: no such job (openai knows no job ftjob-x here"),
        "{msg}"
    );
    // Without a key, a refusal says which variable is not set.
    let msg = rt.block_on(p.status("ftjob-x")).unwrap_err().to_string();
    assert!(
        msg.contains("GET /v1/fine_tuning/jobs/ftjob-x (job ftjob-x): HTTP 404"),
        "{msg}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (project, store) = lamini_project(dir.path(), &server.url(), 20);
    let p = provider(&project, &store, TuneProvider::Lamini);
    let err = rt
        .block_on(tune::submit(&project, &store, &p, None))
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "lamini: POST /v1/train (lode job 1, model meta-llama/Llama-3.1-8B-Instruct): HTTP 500: the trainer is down (a server error at lamini)"
    );
    assert_user_agent(&server);
}

/// Runs `lode` in `dir` with `env` set, off the runtime that serves the fake provider.
fn lode_cli(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lode"));
    cmd.current_dir(dir).env_remove("LAMINI_API_KEY").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run lode")
}

#[test]
fn lode_jobs_watch_ends_non_zero_on_a_refused_key_with_the_fix() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(|r| FakeResponse::echo_headers(401, r)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(dir.path(), &server.url(), "LODE_WATCH_TEST_KEY", 0);
    let job = running_job(&store, TuneProvider::OpenAi, "ftjob-7");
    drop(store);
    let key = "sk-watch-test-secret-0123456789";
    let out = lode_cli(
        dir.path(),
        &[("LODE_WATCH_TEST_KEY", key)],
        &["jobs", "watch", &job.to_string()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for part in [
        "error: stopped watching job",
        "openai: GET /v1/fine_tuning/jobs/ftjob-7 (job ftjob-7): HTTP 401",
        "the API key was refused: check LODE_WATCH_TEST_KEY / tune.openai.api_key_env",
        &format!("`lode jobs watch {job}`"),
    ] {
        assert!(stderr.contains(part), "`{part}` missing from:\n{stderr}");
    }
    assert!(!stderr.contains(key), "the key leaked:\n{stderr}");
    assert!(!stderr.contains("retry"), "{stderr}");
    assert_eq!(server.count(), 1);
    let store = Store::open(&project.store_path()).unwrap();
    assert_eq!(store.job(job).unwrap().status, JobStatus::Running);
}

#[test]
fn lode_jobs_watch_shows_each_retry_and_follows_the_job_to_its_end() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(scripted_openai(vec![
            FakeResponse::json(503, json!({"error": {"message": "overloaded"}})),
            job_status("succeeded"),
        ])))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (project, store) = openai_project(dir.path(), &server.url(), "LODE_WATCH_TEST_KEY", 0);
    let job = running_job(&store, TuneProvider::OpenAi, "ftjob-5");
    drop(store);
    let out = lode_cli(dir.path(), &[], &["jobs", "watch", &job.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning: cannot reach openai: GET /v1/fine_tuning/jobs/ftjob-5 (job ftjob-5): HTTP 503: overloaded (a server error at openai); retry 1 of 8 in "
        ),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("succeeded: tuned model ft:lode:5"),
        "{stdout}"
    );
    let store = Store::open(&project.store_path()).unwrap();
    assert_eq!(store.job(job).unwrap().status, JobStatus::Succeeded);
}
