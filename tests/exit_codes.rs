//! The exit codes README and src/cli/JSON.md document, the same for every command: 0 ok,
//! 1 the work failed, 2 usage or configuration, 3 cannot reach a database or server, 4
//! timeout or limit, 5 refused as unsafe, 130 interrupted; with `--json`, the error document
//! on stdout says the same kind and code.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lode_core::project::demo::{DemoOptions, write_demo};

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .args(args)
        .output()
        .expect("run lode")
}

fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_demo(dir.path(), &DemoOptions::default()).unwrap();
    dir
}

/// Runs `args` with `--json` too and checks both runs exit `code`, and the JSON run's
/// stdout is one error document of `kind` with that code.
fn expect(dir: &Path, args: &[&str], code: i32, kind: &str) {
    let out = lode(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error"),
        "{args:?}: no error on stderr"
    );
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let out = lode(dir, &with_json);
    assert_eq!(out.status.code(), Some(code), "{with_json:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{with_json:?}: stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(doc["version"], 1, "{doc}");
    assert_eq!(doc["error"]["kind"], kind, "{doc}");
    assert_eq!(doc["error"]["exit_code"], code, "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
}

#[test]
fn ok_is_0() {
    let dir = demo();
    let out = lode(dir.path(), &["sql", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(0));
    let out = lode(dir.path(), &["--json", "sql", "SELECT name FROM stores"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    assert!(doc.get("error").is_none(), "{doc}");
}

#[test]
fn a_failed_query_is_1() {
    let dir = demo();
    expect(
        dir.path(),
        &["sql", "SELECT no_such_column FROM stores"],
        1,
        "query_error",
    );
    expect(dir.path(), &["review", "show", "999999"], 1, "not_found");
}

#[test]
fn usage_and_configuration_errors_are_2() {
    let dir = demo();
    expect(
        dir.path(),
        &["sql", "--no-such-flag", "SELECT 1"],
        2,
        "usage",
    );
    expect(dir.path(), &["no-such-command"], 2, "usage");
    let empty = tempfile::tempdir().unwrap();
    expect(empty.path(), &["schema"], 2, "usage");
    std::fs::write(
        empty.path().join("config.yml"),
        "database:\n  path: x.sqlite\nexecution:\n  max_rows: many\n",
    )
    .unwrap();
    let out = lode(empty.path(), &["--json", "schema"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "input", "{doc}");
    assert_eq!(doc["error"]["location"]["line"], 4, "{doc}");
    assert!(
        doc["error"]["location"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("config.yml")),
        "{doc}"
    );
    assert!(doc["error"]["hint"].is_string(), "{doc}");
}

#[test]
fn an_unreachable_database_is_3() {
    let dir = demo();
    expect(
        dir.path(),
        &["sql", "--db", "missing.sqlite", "SELECT 1"],
        3,
        "database_unreachable",
    );
    // A port nothing listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://lode@127.0.0.1:{port}/none?connect_timeout=2");
    expect(
        dir.path(),
        &["sql", "--db-url", &url, "SELECT 1"],
        3,
        "database_unreachable",
    );
}

#[test]
fn a_timeout_is_4() {
    let dir = demo();
    expect(
        dir.path(),
        &[
            "sql",
            "--timeout",
            "0.3",
            "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
        ],
        4,
        "timeout",
    );
}

#[test]
fn unsafe_statements_are_5_and_change_nothing() {
    let dir = demo();
    let db = dir.path().join("bakery.sqlite");
    let before = std::fs::read(&db).unwrap();
    for sql in [
        "DELETE FROM stores",
        "DROP TABLE orders",
        "SELECT 1; DELETE FROM stores",
        "ATTACH DATABASE 'x.sqlite' AS x",
    ] {
        expect(dir.path(), &["sql", sql], 5, "refused");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// ctrl-c during a generation run whose LLM server never answers: lode stops, keeps what
/// it stored, and exits 130.
#[cfg(unix)]
#[test]
fn an_interrupted_run_is_130() {
    let dir = demo();
    // A server that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            let mut c = conn;
            let mut buf = [0u8; 1024];
            let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
            let _ = c.read(&mut buf);
            held.push(c);
        }
    });
    let config = dir.path().join("config.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    let base = text.split("\nllm:").next().unwrap().to_string();
    std::fs::write(
        &config,
        format!(
            "{base}\nllm:\n  default: slow\n  profiles:\n    slow:\n      kind: openai\n      \
             base_url: {url}/v1\n      api_key_env: LODE_TEST_KEY\n      model: fake\n      \
             timeout_s: 60\n"
        ),
    )
    .unwrap();
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lode"));
        cmd.current_dir(dir.path())
            .env("LODE_TEST_KEY", "sk-test")
            .args(if json {
                &["--json", "generate", "--new", "--gold", "1"][..]
            } else {
                &["generate", "--new", "--gold", "1"][..]
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: kill(2) with the child's pid and SIGINT; the child is ours and alive.
        unsafe extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        assert_eq!(unsafe { kill(child.id() as i32, 2) }, 0);
        let started = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "lode took {:?} to stop after ctrl-c",
            started.elapsed()
        );
        assert_eq!(
            out.status.code(),
            Some(130),
            "json {json}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if json {
            let last = String::from_utf8_lossy(&out.stdout)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
                .unwrap_or_default();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            // A stream's last document, or the one pretty error document.
            let doc: serde_json::Value = serde_json::from_str(&last)
                .or_else(|_| serde_json::from_str(&stdout))
                .unwrap_or_else(|e| panic!("no JSON error ({e}):\n{stdout}"));
            assert_eq!(doc["error"]["kind"], "interrupted", "{doc}");
        }
    }
}
