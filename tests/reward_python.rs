//! The Python reward client `lode export --format rl-tasks` writes, against a real
//! `lode reward serve` (and a real `lode reward --stdin`) on the demo project: a TRL reward
//! function, verl's `compute_score` and the subprocess mode all score the exported tasks the
//! way the service does. Skips, saying so, without python3.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value as Json;

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run lode")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = lode(dir, args);
    assert!(
        out.status.success(),
        "lode {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `lode reward serve`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(proj: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(proj)
        .args(["reward", "serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lode reward serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_string();
    Server { child, url }
}

fn python_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

const SCRIPT: &str = r#"
import json, os, sys
sys.path.insert(0, sys.argv[1])
import lode_reward
from lode_reward import LodeReward, trl_reward

tasks = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
url, lode_exe, proj = sys.argv[3], sys.argv[4], sys.argv[5]
out = {}

# TRL: one call per batch, extra dataset columns as lists, completions as chat messages.
reward = trl_reward(LodeReward(url=url, shape="arctic"))
completions, qids = [], []
for t in tasks:
    completions.append([{"role": "assistant", "content": "```sql\n" + t["gold_sql"] + "\n```"}])
    qids.append(t["question_id"])
    completions.append([{"role": "assistant", "content": "SELECT 'no such answer' AS x"}])
    qids.append(t["question_id"])
    completions.append("I cannot answer that.")
    qids.append(t["question_id"])
out["trl"] = reward(prompts=[t["prompt"] for t in tasks for _ in range(3)],
                    completions=completions, question_id=qids,
                    gold_sql=[t["gold_sql"] for t in tasks for _ in range(3)],
                    db_id=[t["db_id"] for t in tasks for _ in range(3)])

# verl: one reply at a time, the server from the environment.
os.environ["LODE_REWARD_URL"] = url
out["verl"] = [lode_reward.compute_score("lode", "<think>count</think>" + t["gold_sql"], t["gold_sql"],
                                         {"question_id": t["question_id"], "db_id": t["db_id"]})
               for t in tasks]

# The subprocess mode: lode reward --stdin, started once.
with LodeReward(command=[lode_exe, "-C", proj, "reward", "--stdin"], shape="binary") as client:
    scores = client.score([{"id": i, "question_id": t["question_id"], "prediction": t["gold_sql"]}
                           for i, t in enumerate(tasks)])
out["stdin"] = [s["score"] for s in scores]
out["health"] = LodeReward(url=url).health()
print(json.dumps(out))
"#;

#[test]
fn the_python_client_scores_exported_tasks_through_a_real_server() {
    if !python_available() {
        eprintln!("skipping: python3 is not on the PATH (the Python reward client needs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["demo", "proj", "--no-run"]);
    let proj = dir.path().join("proj");
    ok(&proj, &["generate", "--gold", "1,2,3,4,5,6"]);
    ok(&proj, &["review", "accept", "--all-valid"]);
    let out_dir = dir.path().join("rl");
    std::fs::create_dir_all(&out_dir).unwrap();
    let tasks = out_dir.join("rl_tasks.jsonl");
    ok(
        &proj,
        &[
            "export",
            "--format",
            "rl-tasks",
            "--flavour",
            "trl",
            "--out",
            tasks.to_str().unwrap(),
        ],
    );
    assert!(
        out_dir.join("lode_reward.py").exists(),
        "the client is written beside the tasks"
    );
    let n = std::fs::read_to_string(&tasks).unwrap().lines().count();
    assert!(n >= 5, "only {n} tasks exported");

    let server = serve(&proj);
    let run = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&out_dir)
        .arg(&tasks)
        .arg(&server.url)
        .arg(env!("CARGO_BIN_EXE_lode"))
        .arg(&proj)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out: Json = serde_json::from_slice(&run.stdout).unwrap();
    let trl: Vec<f64> = serde_json::from_value(out["trl"].clone()).unwrap();
    assert_eq!(trl.len(), 3 * n);
    for chunk in trl.chunks(3) {
        // The gold itself matches; a query that runs but answers something else earns the
        // arctic 0.1; no SQL earns nothing.
        assert_eq!(chunk, [1.0, 0.1, 0.0], "{trl:?}");
    }
    let verl: Vec<f64> = serde_json::from_value(out["verl"].clone()).unwrap();
    assert_eq!(
        verl,
        vec![1.0; n],
        "a reasoning model's thinking is left out"
    );
    let stdin: Vec<f64> = serde_json::from_value(out["stdin"].clone()).unwrap();
    assert_eq!(stdin, vec![1.0; n]);
    assert_eq!(out["health"]["status"], "ok");
    assert!(
        out["health"]["cached_golds"].as_u64().unwrap() >= 1,
        "gold results are kept between requests: {}",
        out["health"]
    );
}
