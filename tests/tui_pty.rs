//! The real binary in a pseudo-terminal (portable-pty + vt100): `lode` starts on the demo
//! project, shows the queue, accepts a pair, quits cleanly (the alternate screen is left),
//! and the decision is in the store.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lode_core::store::{PairStatus, Store};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

fn wait_for(parser: &Arc<Mutex<vt100::Parser>>, what: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let screen = parser.lock().unwrap().screen().contents();
        if screen.contains(what) {
            return screen;
        }
        if start.elapsed() > within {
            panic!("`{what}` not on the screen after {within:?}:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_binary_reviews_a_pair_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lode"))
        .arg("demo")
        .arg(&demo)
        .arg("--no-tui")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The pair the queue selects first: the lowest id still to review in the newest run.
    let store_path = demo.join(".lode/lode.db");
    let expected = {
        let store = Store::open(&store_path).unwrap();
        let run = store
            .latest_run(lode_core::store::RunKind::Generate)
            .unwrap()
            .unwrap()
            .id;
        let rows = store
            .pair_summaries(&lode_core::store::QueueQuery {
                run_id: Some(run),
                statuses: vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Pending],
                ..Default::default()
            })
            .unwrap();
        rows[0].id
    };

    let pty = native_pty_system();
    let pair = match pty.openpty(PtySize {
        rows: 30,
        cols: 110,
        pixel_width: 0,
        pixel_height: 0,
    }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipping: this machine cannot open a pseudo-terminal ({e})");
            return;
        }
    };
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_lode"));
    cmd.arg("-C");
    cmd.arg(&demo);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(30, 110, 0)));
    let mut reader = pair.master.try_clone_reader().unwrap();
    let sink = Arc::clone(&parser);
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut writer = pair.master.take_writer().unwrap();

    // "N shown" once the queue is read ("loading…" before).
    let screen = wait_for(&parser, " shown · by id", Duration::from_secs(60));
    assert!(screen.contains("1 Review"), "{screen}");
    assert!(parser.lock().unwrap().screen().alternate_screen());
    writer.write_all(b"a").unwrap();
    writer.flush().unwrap();
    wait_for(
        &parser,
        &format!("pair {expected} accepted (saved)"),
        Duration::from_secs(30),
    );
    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();

    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("lode did not quit on q");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    drop(writer);
    drop(pair.master);
    let _ = reading.join();
    assert!(
        !parser.lock().unwrap().screen().alternate_screen(),
        "the terminal was not restored"
    );

    let store = Store::open(&store_path).unwrap();
    assert_eq!(store.pair(expected).unwrap().status, PairStatus::Accepted);
    let history = store.review_history(expected).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action.as_str(), "accept");
}

#[cfg(feature = "bench")]
#[test]
fn the_tui_benchmark_runs_and_reports_its_figures() {
    // Figures only (no timing is asserted): the benchmark itself works end to end.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lode"))
        .args([
            "bench",
            "--only",
            "tui",
            "--tui-pairs",
            "3000",
            "--repeat",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for figure in [
        "tui start → first frame, 3k pairs",
        "tui peak resident memory, 3k pairs",
        "tui key → frame: j (next pair) (median)",
        "tui key → frame: a (accept, written to the store) (worst)",
        "queue read → frame with the rows",
    ] {
        assert!(stdout.contains(figure), "{figure} missing:\n{stdout}");
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_lode"))
        .args(["bench", "--only", "tuii"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("groups are spider, eval, demo, llm, generate, tui")
    );
}
