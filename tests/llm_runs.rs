//! LLM runs end to end, with the `lode` binary against scripted fake servers: a generation
//! run whose every call is refused fails (and stops calling), then resumes once the cause is
//! fixed; a run cut off by a revoked key keeps its pairs, does not keep as failed the pairs
//! the key was at fault for, and resumes after a fix in config.yml; calls carry their run;
//! `--no-cache` still stores answers; the cache tells servers and request bodies apart;
//! `lode llm check` reports what works and the exact fix; and the configuration's LLM
//! profiles are checked when loaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lode_core::project::demo::{DemoOptions, write_demo};
use lode_testkit::{FakeRequest, FakeResponse, FakeServer};
use serde_json::json;

/// The key the profiles read from [`KEY_VAR`]: distinctive, so a leak is found.
const KEY: &str = "sk-llmruns-7Qx2Vb9KfZp4Lw8NcR3TyH6JdU1mEa5S";
const KEY_VAR: &str = "LODE_LLM_RUNS_KEY";
/// A second key, in [`NEW_KEY_VAR`] (a key replaced by a new one).
const NEW_KEY: &str = "sk-llmruns-newkey-9Hd3Wq7RxT2mLp5VbN8cJ4Fz";
const NEW_KEY_VAR: &str = "LODE_LLM_RUNS_NEW_KEY";

/// The demo project with `llm_yaml` and `generate_yaml` in place of its `llm:` and later
/// sections.
fn demo_with(generate_yaml: &str, llm_yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    let path = dir.path().join("config.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let base = text.split("\nllm:").next().unwrap().to_string();
    std::fs::write(&path, format!("{base}\n{llm_yaml}\n{generate_yaml}\n")).unwrap();
    (dir, path)
}

/// One OpenAI-compatible profile section (under `profiles:`), its key from [`KEY_VAR`].
fn openai_profile(name: &str, url: &str, extra: &str) -> String {
    format!(
        "    {name}:\n      kind: openai\n      base_url: {url}/v1\n      api_key_env: {KEY_VAR}\n      model: fake\n      max_concurrency: 2\n      timeout_s: 5\n{extra}"
    )
}

/// `llm:` with the profile `fake` at `url`, the default.
fn llm_fake(url: &str) -> String {
    format!(
        "llm:\n  default: fake\n  profiles:\n{}",
        openai_profile("fake", url, "")
    )
}

/// Pattern questions only: one call per gold pair and two questions per call.
const PATTERN_ONLY: &str =
    "generate:\n  per_gold:\n    pattern: 1\n    variation: 0\n    decomposer: 0\n  sql_first: 0\n";

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env(KEY_VAR, KEY)
        .env(NEW_KEY_VAR, NEW_KEY)
        .env_remove("LAMINI_API_KEY")
        .output()
        .expect("run lode")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The output of a run that must have succeeded.
fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    (stdout, stderr)
}

fn store(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(".lode").join("lode.db")).unwrap()
}

fn count(conn: &rusqlite::Connection, sql: &str, params: impl rusqlite::Params) -> i64 {
    conn.query_row(sql, params, |r| r.get(0)).unwrap()
}

/// A short deterministic tag of a prompt, so each question and query is distinct.
fn tag(s: &str) -> String {
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", h & 0xffff_ffff)
}

fn messages(r: &FakeRequest) -> (String, String) {
    let body = r.json();
    let get = |i: usize| {
        body["messages"][i]["content"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    (get(0), get(1))
}

fn is_chat(r: &FakeRequest) -> bool {
    r.method == "POST" && r.path == "/v1/chat/completions"
}

/// A provider that answers every step well: two questions per generator call, and a
/// query that runs for each question (distinct per question).
fn good(r: &FakeRequest) -> FakeResponse {
    if r.method == "GET" && r.path == "/v1/models" {
        return FakeResponse::json(200, json!({"data": [{"id": "fake"}]}));
    }
    if !is_chat(r) {
        return FakeResponse::json(404, json!({"error": {"message": "no such route"}}));
    }
    let (system, user) = messages(r);
    let t = tag(&user);
    let answer = if system.contains("precise SQL queries") {
        json!({"sql_query": format!("SELECT name AS n_{t} FROM stores")})
    } else if system.contains("debugging expert") {
        json!({"corrected_sql": "SELECT name FROM stores"})
    } else {
        json!({"q1": format!("Which stores are there ({t} one)?"), "q2": format!("Name the stores ({t} two)?")})
    };
    FakeResponse::chat(&answer.to_string())
}

fn refused(r: &FakeRequest) -> FakeResponse {
    // As a careless server does, the refusal echoes the key it was sent.
    let sent = r.header("authorization").unwrap_or("");
    FakeResponse::json(
        401,
        json!({"error": {"message": format!("Incorrect API key provided: {}", sent.trim_start_matches("Bearer "))}}),
    )
}

/// No file of the workspace (the store and whatever else lode wrote) holds the key.
fn assert_no_key_in(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_key_in(&path);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            for key in [KEY, NEW_KEY] {
                assert!(
                    !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                    "{} holds an API key",
                    path.display()
                );
            }
        }
    }
}

/// Gold pairs 1 to 20: 20 generator calls (the demo has 25 gold pairs).
const GOLD: &str = "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20";
const GOLD_CALLS: usize = 20;
/// The most requests a run whose every call is refused sends: the breaker opens on the
/// third refusal in a row; requests already sent by then (max_concurrency, 2) and one
/// refused while the third was being counted may have gone out too.
const MOST_REFUSED: usize = 3 + 2 + 1;

#[test]
fn a_run_whose_calls_are_all_refused_fails_then_resumes_once_the_key_is_taken() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixed = Arc::new(AtomicBool::new(false));
    let server = {
        let fixed = Arc::clone(&fixed);
        rt.block_on(FakeServer::start(move |r| {
            if fixed.load(Ordering::SeqCst) {
                good(r)
            } else {
                refused(r)
            }
        }))
        .unwrap()
    };
    let (dir, _) = demo_with(PATTERN_ONLY, &llm_fake(&server.url()));

    // Every call refused: the run fails, says why and how to go on, and stops calling.
    let out = lode(dir.path(), &["generate", "--gold", GOLD]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("generation run 1 failed"), "{stderr}");
    assert!(
        stderr.contains("errors that retrying will not fix"),
        "{stderr}"
    );
    assert!(stderr.contains("Incorrect API key provided"), "{stderr}");
    assert!(
        stderr.contains("`lode generate` to resume run 1"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "{stdout}\n{stderr}"
    );
    let sent = server.requests().iter().filter(|r| is_chat(r)).count();
    assert!(
        (3..=MOST_REFUSED).contains(&sent),
        "{sent} requests for {GOLD_CALLS} generator calls"
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {KEY}")))
    );
    {
        let db = store(dir.path());
        let (status, error): (String, String) = db
            .query_row("SELECT status, error FROM runs WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(status, "failed");
        assert!(
            error.contains("errors that retrying will not fix"),
            "{error}"
        );
        assert!(error.contains("Incorrect API key provided"), "{error}");
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 1", []),
            0
        );
        // Each request sent is in the call log, tagged with the run; nothing was cached.
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM llm_calls WHERE run_id = 1 AND ok = 0 AND error_kind = 'auth' AND attempts = 1",
                []
            ),
            sent as i64
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM llm_calls WHERE run_id IS NOT 1",
                []
            ),
            0
        );
        assert_eq!(count(&db, "SELECT COUNT(*) FROM llm_cache", []), 0);
    }
    assert_no_key_in(dir.path());

    // The server takes the key now: a plain `lode generate` (no terminal, so nothing is
    // asked) resumes run 1.
    fixed.store(true, Ordering::SeqCst);
    let before = server.count();
    let (stdout, stderr) = ok(lode(dir.path(), &["generate", "--gold", GOLD]));
    assert!(
        stderr.contains("resuming generation run 1 (it failed:"),
        "{stderr}"
    );
    assert!(
        stdout.contains("review them with `lode review list --run 1`"),
        "{stdout}"
    );
    let resent = server.count() - before;
    // Every generator call asked, then a query written for each of its two questions.
    assert_eq!(resent, GOLD_CALLS * 3, "{stdout}");
    let db = store(dir.path());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM runs", []),
        1,
        "the same run went on"
    );
    let (status, error): (String, Option<String>) = db
        .query_row("SELECT status, error FROM runs WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), error), ("completed", None));
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 1", []),
        (GOLD_CALLS * 2) as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM generation_failures WHERE run_id = 1",
            []
        ),
        0,
        "the refused calls were asked again, their failures cleared"
    );
    // Every call of the run carries its id; each one sent took at least one request.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM llm_calls WHERE run_id IS NOT 1",
            []
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM llm_calls WHERE run_id = 1 AND ok = 1 AND cached = 0 AND attempts >= 1",
            []
        ),
        resent as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM llm_calls WHERE cached = 0 AND attempts < 1",
            []
        ),
        0
    );
    drop(db);
    assert_no_key_in(dir.path());
}

#[test]
fn a_run_cut_off_by_a_revoked_key_keeps_its_pairs_and_resumes_with_a_new_key_in_the_config() {
    // The old key works for the first GOOD requests, then is refused; the new one works.
    const GOOD: usize = GOLD_CALLS + 4;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(move |r| {
            let key = r.header("authorization").unwrap_or("");
            if key == format!("Bearer {NEW_KEY}")
                || (key == format!("Bearer {KEY}") && r.index < GOOD)
            {
                good(r)
            } else {
                refused(r)
            }
        }))
        .unwrap();
    let (dir, config) = demo_with(PATTERN_ONLY, &llm_fake(&server.url()));

    let out = lode(dir.path(), &["generate", "--gold", GOLD]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("generation run 1 failed"), "{stderr}");
    let first = server.count();
    assert!(
        first > GOOD && first <= GOOD + MOST_REFUSED,
        "{first} requests"
    );
    let kept: Vec<(i64, String, String)> = {
        let db = store(dir.path());
        let mut stmt = db
            .prepare("SELECT id, origin_key, status FROM pairs WHERE run_id = 1 ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(kept.len() < GOLD_CALLS * 2, "{kept:?}");
    // A pair whose query was refused is not kept as failed: the key was at fault, not it.
    assert!(
        kept.iter().all(|(_, _, status)| status == "valid"),
        "{kept:?}"
    );

    // The fix is in config.yml (a new snapshot of the inputs): the profile reads the new key.
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_before.replace(
            &format!("api_key_env: {KEY_VAR}"),
            &format!("api_key_env: {NEW_KEY_VAR}"),
        ),
    )
    .unwrap();
    let (stdout, stderr) = ok(lode(dir.path(), &["generate", "--gold", GOLD]));
    assert!(stderr.contains("resuming generation run 1"), "{stderr}");
    // The answers received before the refusals come from the cache: only the rest is asked.
    let second = server.count() - first;
    assert_eq!(GOOD + second, GOLD_CALLS * 3, "{stdout}");
    let db = store(dir.path());
    assert_eq!(
        count(
            &db,
            "SELECT status = 'completed' FROM runs WHERE id = 1",
            []
        ),
        1
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 1", []),
        (GOLD_CALLS * 2) as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM pairs WHERE run_id = 1 AND status = 'valid'",
            []
        ),
        (GOLD_CALLS * 2) as i64,
        "{stdout}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM generation_failures WHERE run_id = 1",
            []
        ),
        0,
        "{stdout}"
    );
    assert!(
        server.requests()[first..]
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {NEW_KEY}")))
    );
    for (id, origin, _) in &kept {
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM pairs WHERE id = ?1 AND origin_key = ?2",
                rusqlite::params![id, origin]
            ),
            1,
            "pair {id} ({origin}) of the failed run was not kept as it was"
        );
    }
    // Every answer received before is used: the kept pairs' queries are not asked for again,
    // the rest come from the cache.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM llm_calls WHERE run_id = 1 AND cached = 1",
            []
        ),
        (GOOD - kept.len()) as i64
    );
}

#[test]
fn a_pair_whose_debugger_call_is_refused_is_made_again_on_resume_not_kept_as_failed() {
    // Every query written needs the debugger; the key is revoked when the first debugger
    // request arrives (every request refused from then on) until it is fixed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let revoked = Arc::new(AtomicBool::new(false));
    let fixed = Arc::new(AtomicBool::new(false));
    let server = {
        let (revoked, fixed) = (Arc::clone(&revoked), Arc::clone(&fixed));
        rt.block_on(FakeServer::start(move |r| {
            let (system, user) = messages(r);
            let t = tag(&user);
            if system.contains("debugging expert") && !fixed.load(Ordering::SeqCst) {
                revoked.store(true, Ordering::SeqCst);
            }
            if revoked.load(Ordering::SeqCst) && !fixed.load(Ordering::SeqCst) {
                return refused(r);
            }
            if system.contains("precise SQL queries") {
                let sql = format!("SELECT nme, '{t}' AS tag FROM stores");
                FakeResponse::chat(&json!({ "sql_query": sql }).to_string())
            } else if system.contains("debugging expert") {
                let sql = format!("SELECT name AS n_{t} FROM stores");
                FakeResponse::chat(&json!({ "corrected_sql": sql }).to_string())
            } else {
                good(r)
            }
        }))
        .unwrap()
    };
    // One debugger attempt: a pair is finished as soon as its debugger call is refused (not
    // only once the client has stopped sending).
    let (dir, _) = demo_with(
        &format!("{PATTERN_ONLY}  debugger_attempts: 1\n"),
        &llm_fake(&server.url()),
    );
    let out = lode(dir.path(), &["generate", "--gold", "1,2,3"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Incorrect API key provided"), "{stderr}");
    {
        let db = store(dir.path());
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 1", []),
            0,
            "a pair whose debugger was refused was kept"
        );
    }

    fixed.store(true, Ordering::SeqCst);
    let (stdout, _) = ok(lode(dir.path(), &["generate", "--gold", "1,2,3"]));
    let db = store(dir.path());
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM pairs WHERE run_id = 1 AND status = 'fixed'",
            []
        ),
        6,
        "{stdout}"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 1", []),
        6,
        "{stdout}"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM generation_failures", []),
        0,
        "{stdout}"
    );
}

#[test]
fn a_run_whose_every_call_is_a_bad_request_fails_and_resumes_once_the_body_is_fixed() {
    // A server that does not take `top_k` (a 400: retrying does not help, but the server is
    // reachable, so the breaker stays closed and every call is made).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(|r| {
            if r.json().get("top_k").is_some() {
                FakeResponse::json(
                    400,
                    json!({"error": {"message": "Unsupported parameter: 'top_k'"}}),
                )
            } else {
                good(r)
            }
        }))
        .unwrap();
    let with_top_k = format!(
        "llm:\n  default: fake\n  profiles:\n{}",
        openai_profile(
            "fake",
            &server.url(),
            "      extra_body:\n        top_k: 5\n"
        )
    );
    let (dir, config) = demo_with(PATTERN_ONLY, &with_top_k);
    let out = lode(dir.path(), &["generate", "--gold", GOLD]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "generation run 1 failed: every one of its {GOLD_CALLS} generator calls failed"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("Unsupported parameter: 'top_k'"),
        "{stderr}"
    );
    assert_eq!(server.count(), GOLD_CALLS);
    {
        let db = store(dir.path());
        assert_eq!(
            count(&db, "SELECT status = 'failed' FROM runs WHERE id = 1", []),
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM generation_failures WHERE run_id = 1",
                []
            ),
            GOLD_CALLS as i64
        );
    }

    // extra_body fixed: the resumed run asks again and completes, with no failure left.
    std::fs::write(&config, demo_with_text(&config, &llm_fake(&server.url()))).unwrap();
    let (stdout, stderr) = ok(lode(dir.path(), &["generate", "--gold", GOLD]));
    assert!(stderr.contains("resuming generation run 1"), "{stderr}");
    let db = store(dir.path());
    assert_eq!(
        count(
            &db,
            "SELECT status = 'completed' FROM runs WHERE id = 1",
            []
        ),
        1
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 1", []),
        (GOLD_CALLS * 2) as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM generation_failures WHERE run_id = 1",
            []
        ),
        0,
        "{stdout}\n{stderr}\n{:?}",
        db.prepare("SELECT origin_key, error_kind, error FROM generation_failures")
            .unwrap()
            .query_map([], |r| Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?
            )))
            .unwrap()
            .collect::<Vec<_>>()
    );
    assert!(!stdout.contains("LLM calls failed"), "{stdout}");
}

/// The config at `path` with its `llm:` section replaced by `llm_yaml`.
fn demo_with_text(path: &Path, llm_yaml: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let base = text.split("\nllm:").next().unwrap().to_string();
    format!("{base}\n{llm_yaml}\n{PATTERN_ONLY}\n")
}

#[test]
fn no_cache_runs_still_store_their_answers_for_the_next_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(FakeServer::start(good)).unwrap();
    let (dir, _) = demo_with(PATTERN_ONLY, &llm_fake(&server.url()));

    ok(lode(
        dir.path(),
        &["--no-cache", "generate", "--gold", "1,2"],
    ));
    let sent = server.count();
    assert_eq!(sent, 2 * 3, "two generator calls, two queries each");
    let db = store(dir.path());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM llm_cache", []),
        sent as i64,
        "every answer of the --no-cache run is stored"
    );
    let pairs = count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 1", []);
    assert_eq!(pairs, 4);
    drop(db);

    // The same prompts again (the gold pairs, then the same answers): all from the cache.
    ok(lode(dir.path(), &["generate", "--new", "--gold", "1,2"]));
    assert_eq!(
        server.count(),
        sent,
        "a new run with the cache on asked the server again"
    );
    let db = store(dir.path());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pairs WHERE run_id = 2", []),
        pairs
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM llm_calls WHERE run_id = 2 AND cached = 1 AND attempts = 0",
            []
        ),
        sent as i64
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM llm_calls WHERE run_id = 2", []),
        sent as i64
    );
    drop(db);

    // --no-cache asks the server again.
    ok(lode(
        dir.path(),
        &["--no-cache", "generate", "--new", "--gold", "1,2"],
    ));
    assert_eq!(server.count(), 2 * sent);
}

#[test]
fn the_cache_tells_servers_and_request_bodies_apart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let one = rt.block_on(FakeServer::start(good)).unwrap();
    let two = rt.block_on(FakeServer::start(good)).unwrap();
    let three = rt.block_on(FakeServer::start(good)).unwrap();
    let llm = |a_url: &str, a_extra: &str| {
        format!(
            "llm:\n  default: a\n  profiles:\n{}{}",
            openai_profile("a", a_url, a_extra),
            openai_profile("b", &two.url(), "")
        )
    };
    let (dir, config) = demo_with(PATTERN_ONLY, &llm(&one.url(), ""));
    let gen_new = ["generate", "--new", "--gold", "1"];
    let chats = |s: &FakeServer| s.requests().iter().filter(|r| is_chat(r)).count();

    ok(lode(dir.path(), &["generate", "--gold", "1"]));
    let n = chats(&one);
    assert_eq!(n, 3);
    // Again: from the cache.
    ok(lode(dir.path(), &gen_new));
    assert_eq!(chats(&one), n);

    // Profile b: another server, the same model and settings: asked, not A's answers.
    ok(lode(
        dir.path(),
        &["--profile", "b", "generate", "--new", "--gold", "1"],
    ));
    assert_eq!(
        chats(&two),
        n,
        "profile b was answered from profile a's cache"
    );

    // The same profile moved to another server: asked there.
    let rewrite = |a_url: &str, a_extra: &str| {
        let text = std::fs::read_to_string(&config).unwrap();
        let base = text.split("\nllm:").next().unwrap().to_string();
        std::fs::write(
            &config,
            format!("{base}\n{}\n{PATTERN_ONLY}\n", llm(a_url, a_extra)),
        )
        .unwrap();
    };
    rewrite(&three.url(), "");
    ok(lode(dir.path(), &gen_new));
    assert_eq!(
        chats(&three),
        n,
        "a server was answered from another's cache"
    );

    // Back on the first server with another body (extra_body's top_p): asked again.
    rewrite(&one.url(), "      extra_body:\n        top_p: 0.5\n");
    ok(lode(dir.path(), &gen_new));
    assert_eq!(
        chats(&one),
        2 * n,
        "another top_p was answered from the cache"
    );
    assert!(
        one.requests()[n..]
            .iter()
            .all(|r| r.json()["top_p"] == json!(0.5))
    );
    assert!(
        one.requests()[..n]
            .iter()
            .all(|r| r.json()["top_p"].is_null())
    );
}

/// `lode llm check` of the project's default profile, `fake`, at `server`.
fn llm_check(server: &FakeServer) -> (Option<i32>, String, Vec<FakeRequest>) {
    let (dir, _) = demo_with("", &llm_fake(&server.url()));
    let out = lode(dir.path(), &["llm", "check"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(KEY), "{all}");
    (out.status.code(), all, server.requests())
}

/// A server that lists `models` and answers the check's question.
fn check_server(models: &'static [&'static str]) -> impl Fn(&FakeRequest) -> FakeResponse {
    move |r| {
        if r.method == "GET" && r.path == "/v1/models" {
            let data: Vec<_> = models.iter().map(|m| json!({"id": m})).collect();
            return FakeResponse::json(200, json!({ "data": data }));
        }
        if is_chat(r) {
            return FakeResponse::chat(&json!({"sql": "SELECT 1"}).to_string());
        }
        FakeResponse::json(404, json!({"error": {"message": "no such route"}}))
    }
}

#[test]
fn llm_check_reports_mode_bounds_and_no_retries_on_a_good_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(check_server(&["other", "fake"])))
        .unwrap();
    let (code, out, requests) = llm_check(&server);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("models: 2 offered, including this profile's"),
        "{out}"
    );
    assert!(out.contains("output mode json_schema"), "{out}");
    assert!(out.contains("max_tokens 1024"), "{out}");
    assert!(out.contains("temperature 0"), "{out}");
    assert!(out.contains("retries: none"), "{out}");
    assert!(out.contains("answer: SELECT 1"), "{out}");
    assert!(out.contains("profile fake works"), "{out}");
    assert!(!out.contains("fix:"), "{out}");
    // What the check says it sent is what it sent.
    let chat: Vec<_> = requests.iter().filter(|r| is_chat(r)).collect();
    assert_eq!(chat.len(), 1);
    let body = chat[0].json();
    assert_eq!(body["max_tokens"], json!(1024));
    assert_eq!(body["temperature"], json!(0.0));
    assert_eq!(body["response_format"]["type"], json!("json_schema"));
}

#[test]
fn llm_check_shows_a_retried_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let failed_once = AtomicBool::new(false);
    let answer = check_server(&["fake"]);
    let server = rt
        .block_on(FakeServer::start(move |r| {
            if is_chat(r) && !failed_once.swap(true, Ordering::SeqCst) {
                return FakeResponse::json(500, json!({"error": {"message": "the GPU fell over"}}));
            }
            answer(r)
        }))
        .unwrap();
    let (code, out, requests) = llm_check(&server);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("retries: 1"), "{out}");
    assert!(out.contains("attempt 1:"), "{out}");
    assert!(out.contains("the GPU fell over"), "{out}");
    assert_eq!(requests.iter().filter(|r| is_chat(r)).count(), 2);
}

#[test]
fn llm_check_steps_down_to_json_object_when_json_schema_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer = check_server(&["fake"]);
    let server = rt
        .block_on(FakeServer::start(move |r| {
            if is_chat(r) && r.json()["response_format"]["type"] == json!("json_schema") {
                return FakeResponse::json(
                    400,
                    json!({"error": {"message": "response_format json_schema is not supported"}}),
                );
            }
            answer(r)
        }))
        .unwrap();
    let (code, out, requests) = llm_check(&server);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("output mode json_object"), "{out}");
    assert!(out.contains("the server refused a stricter mode"), "{out}");
    assert!(
        out.contains("response_format json_schema is not supported"),
        "{out}"
    );
    let formats: Vec<_> = requests
        .iter()
        .filter(|r| is_chat(r))
        .map(|r| r.json()["response_format"]["type"].clone())
        .collect();
    assert_eq!(formats, [json!("json_schema"), json!("json_object")]);
}

#[test]
fn llm_check_names_the_fix_for_a_refused_key() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(FakeServer::start(refused)).unwrap();
    let (code, out, requests) = llm_check(&server);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("(auth)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("fix:")
                && l.contains("llm.profiles.fake.api_key_env")),
        "{out}"
    );
    assert!(out.contains(&format!("export {KEY_VAR}=")), "{out}");
    assert!(out.contains("problem(s) above"), "{out}");
    // A refused key is not retried.
    assert_eq!(requests.iter().filter(|r| is_chat(r)).count(), 1);
}

#[test]
fn llm_check_says_when_the_model_is_not_offered() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(check_server(&[
            "llama-3-8b",
            "qwen2.5-7b",
        ])))
        .unwrap();
    let (code, out, _) = llm_check(&server);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("this profile's model is NOT among them"),
        "{out}"
    );
    assert!(out.contains("offered: llama-3-8b, qwen2.5-7b"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("fix:") && l.contains("llm.profiles.fake.model")),
        "{out}"
    );
}

#[test]
fn extra_body_that_sets_the_model_is_refused_where_it_is_written() {
    let llm = format!(
        "llm:\n  default: fake\n  profiles:\n{}",
        openai_profile(
            "fake",
            "http://127.0.0.1:9",
            "      extra_body:\n        top_p: 0.9\n        model: gpt-other\n"
        )
    );
    let (dir, config) = demo_with(PATTERN_ONLY, &llm);
    let written = std::fs::read_to_string(&config).unwrap();
    let line = written
        .lines()
        .position(|l| l.trim() == "model: gpt-other")
        .unwrap()
        + 1;
    for args in [&["check"][..], &["llm", "check"], &["generate"]] {
        let out = lode(dir.path(), args);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "lode {args:?} accepted it:\n{stderr}"
        );
        assert!(stderr.contains("config.yml"), "{stderr}");
        assert!(
            stderr.contains(&format!("config.yml:{line}:")),
            "line {line}:\n{stderr}"
        );
        assert!(stderr.contains("extra_body"), "{stderr}");
        assert!(stderr.contains("`model`"), "{stderr}");
    }
}

#[test]
fn a_lamini_profile_without_base_url_talks_to_the_api_url() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(FakeServer::start(|r| {
            if r.method == "POST" && r.path == "/v1/completions" {
                FakeResponse::json(200, json!({"sql": "SELECT 1"}))
            } else {
                FakeResponse::json(404, json!({"error": "no such route"}))
            }
        }))
        .unwrap();
    let (dir, config) = demo_with(
        "",
        "llm:\n  default: lam\n  profiles:\n    lam:\n      kind: lamini\n      model: lam-model\n      timeout_s: 5\n",
    );
    // The API's root given with its /v1, as Lamini's docs sometimes write it.
    let text_before = std::fs::read_to_string(&config).unwrap();
    assert!(text_before.contains("url: https://app.lamini.ai\n"));
    std::fs::write(
        &config,
        text_before.replace(
            "url: https://app.lamini.ai\n",
            &format!("url: {}/v1\n", server.url()),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lode"))
        .arg("-C")
        .arg(dir.path())
        .args(["llm", "check"])
        .env("LAMINI_API_KEY", KEY)
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("needs a base_url"), "{all}");
    assert!(all.contains("lamini backend, model lam-model"), "{all}");
    assert!(all.contains("answer: SELECT 1"), "{all}");
    assert!(!all.contains(KEY), "{all}");
    let requests = server.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v1/completions")
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(r.json()["model_name"], json!("lam-model"));
    }
}
