//! `lode export --format rl-tasks` and `--format dpo` end to end on the demo database, and the
//! Python reward client written beside the tasks, against a fake reward service.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use lode_core::pipeline::validate::fingerprint;
use lode_core::project::Project;
use lode_core::project::inputs::normalize_question;
use lode_core::sqlprompt::{SYSTEM, question_prompt};
use lode_core::store::{
    NewPair, NewRun, NewValidation, Pair, PairFilter, PairStatus, RunKind, Store,
};
use serde_json::{Value as Json, json};

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .args(args)
        .output()
        .expect("run lode")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = lode(dir, args);
    assert!(
        out.status.success(),
        "lode {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn jsonl(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// What the test did to the project, to find again in the exports.
struct Setup {
    _dir: tempfile::TempDir,
    proj: PathBuf,
    /// The pair a reviewer edited and accepted: (id, SQL before, SQL after).
    edited: (i64, String, String),
    /// The pair the debugger fixed: (id, failed SQL, fixed SQL).
    debugged: (i64, String, String),
    /// The rejected pair and the accepted pair with its question: (rejected id, its SQL,
    /// accepted SQL).
    rejected: (i64, String, String),
}

fn all_pairs(store: &Store) -> Vec<Pair> {
    store.pairs(&PairFilter::default()).unwrap()
}

/// The demo project generated from three gold pairs, with no pair accepted yet.
fn generated_project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["demo", "proj", "--no-run"]);
    let proj = dir.path().join("proj");
    ok(&proj, &["generate", "--gold", "1,2,3"]);
    (dir, proj)
}

/// Accepts three pairs, edits and accepts a fourth, records a pair fixed by the debugger
/// (through the store: the offline backend's SQL never needs the debugger) and accepts it,
/// and rejects a repeat of an accepted pair's question after changing its SQL.
fn reviewed(dir: tempfile::TempDir, proj: PathBuf) -> Setup {
    let store = Store::open(&proj.join(".lode/lode.db")).unwrap();
    let pairs = all_pairs(&store);
    // A question asked by a valid pair and by a duplicate of it.
    let (keeper, repeat) = pairs
        .iter()
        .filter(|d| d.status == PairStatus::Duplicate)
        .find_map(|d| {
            pairs
                .iter()
                .find(|v| {
                    v.status == PairStatus::Valid
                        && normalize_question(&v.question) == normalize_question(&d.question)
                })
                .map(|v| (v.clone(), d.clone()))
        })
        .expect("the demo generation has a duplicate of a valid pair's question");
    let mut valid = pairs
        .iter()
        .filter(|p| p.status == PairStatus::Valid && p.id != keeper.id)
        .filter(|p| normalize_question(&p.question) != normalize_question(&keeper.question));
    let mut accepted: Vec<String> = Vec::new();
    let mut questions = BTreeSet::from([normalize_question(&keeper.question)]);
    for p in valid.by_ref() {
        if accepted.len() == 3 {
            break;
        }
        if questions.insert(normalize_question(&p.question)) {
            accepted.push(p.id.to_string());
        }
    }
    accepted.push(keeper.id.to_string());
    let mut args = vec!["review", "accept"];
    args.extend(accepted.iter().map(String::as_str));
    ok(&proj, &args);

    let to_edit = valid
        .find(|p| questions.insert(normalize_question(&p.question)))
        .expect("a fourth valid pair")
        .clone();
    let new_sql = "SELECT name, city FROM stores ORDER BY name";
    ok(
        &proj,
        &[
            "review",
            "edit",
            &to_edit.id.to_string(),
            "--sql",
            new_sql,
            "--accept",
        ],
    );

    let other_sql = "SELECT name FROM products ORDER BY name";
    ok(
        &proj,
        &["review", "edit", &repeat.id.to_string(), "--sql", other_sql],
    );
    ok(&proj, &["review", "reject", &repeat.id.to_string()]);

    let run = store
        .create_run(&NewRun {
            kind: RunKind::Generate,
            ..Default::default()
        })
        .unwrap();
    let bad = "SELECT nme FROM employees";
    let good = "SELECT first_name FROM employees WHERE role = 'baker'";
    let (fixed_id, _) = store
        .insert_pair_with_validations(
            run,
            &NewPair {
                origin_key: "test:debugger".into(),
                generator: "pattern".into(),
                question: "Which employees are bakers? Give their first names.".into(),
                sql: good.into(),
                status: Some(PairStatus::Fixed),
                ..Default::default()
            },
            &[
                NewValidation {
                    attempt: 1,
                    sql: bad.into(),
                    ok: false,
                    error_kind: Some("no_such_column".into()),
                    error: Some("no such column: nme".into()),
                    ..Default::default()
                },
                NewValidation {
                    attempt: 2,
                    sql: good.into(),
                    ok: true,
                    row_count: Some(3),
                    ..Default::default()
                },
            ],
        )
        .unwrap();
    ok(&proj, &["review", "accept", &fixed_id.to_string()]);
    Setup {
        _dir: dir,
        proj,
        edited: (to_edit.id, to_edit.sql, new_sql.to_string()),
        debugged: (fixed_id, bad.to_string(), good.to_string()),
        rejected: (repeat.id, other_sql.to_string(), keeper.sql),
    }
}

#[test]
fn rl_tasks_and_preferences_from_a_reviewed_project() {
    let (dir, proj) = generated_project();

    // Nothing accepted or edited yet: both exports say what to do, and fail.
    let none = lode(&proj, &["export", "--format", "rl-tasks"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("lode review accept"),
        "{}",
        text(&none.stderr)
    );
    let none = lode(&proj, &["export", "--format", "dpo"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("lode review edit"),
        "{}",
        text(&none.stderr)
    );
    let bad = lode(
        &proj,
        &["export", "--format", "rl-tasks", "--flavour", "axolotl"],
    );
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("trl, verl, openai"));

    let setup = reviewed(dir, proj);
    let proj = &setup.proj;
    let project = Project::load(&proj.join("config.yml")).unwrap();
    let store = Store::open(&proj.join(".lode/lode.db")).unwrap();
    let accepted: Vec<Pair> = all_pairs(&store)
        .into_iter()
        .filter(|p| p.status == PairStatus::Accepted)
        .collect();
    assert_eq!(accepted.len(), 6);
    let snapshot = lode_core::sql::snapshot_id(&proj.join("bakery.sqlite")).unwrap();
    let out = proj.join("out");
    std::fs::create_dir(&out).unwrap();

    for flavour in ["trl", "verl", "openai"] {
        let file = out.join(format!("{flavour}.jsonl"));
        let said = ok(
            proj,
            &[
                "export",
                "--format",
                "rl-tasks",
                "--flavour",
                flavour,
                "--out",
                file.to_str().unwrap(),
            ],
        );
        assert!(said.contains("6 RL tasks"), "{said}");
        assert!(said.contains("lode_reward.py"), "{said}");
        let records = jsonl(&file);
        assert_eq!(records.len(), accepted.len(), "{flavour}");
        for (r, pair) in records.iter().zip(&accepted) {
            let (messages, reference) = match flavour {
                "trl" => (&r["prompt"], r),
                "verl" => {
                    assert_eq!(r["data_source"], "lode");
                    assert_eq!(r["ability"], "text-to-sql");
                    assert_eq!(r["reward_model"]["style"], "rule");
                    assert_eq!(r["reward_model"]["ground_truth"], pair.sql.as_str());
                    (&r["prompt"], &r["extra_info"])
                }
                _ => (&r["messages"], r),
            };
            assert_eq!(
                messages,
                &json!([
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question_prompt(&project.schema, &project.glossary, &pair.question)},
                ]),
                "{flavour}"
            );
            assert_eq!(reference["question_id"], format!("pair:{}", pair.id));
            assert_eq!(reference["db_id"], "bakery");
            assert_eq!(reference["db_snapshot"], snapshot.as_str());
            assert_eq!(reference["comparison"], "lode");
            assert_eq!(reference["timeout_s"], 10.0);
            if flavour != "verl" {
                assert_eq!(reference["gold_sql"], pair.sql.as_str());
            }
            let result = project.db.query(&pair.sql).unwrap();
            assert_eq!(
                reference["gold_fingerprint"],
                fingerprint(&result).as_str(),
                "{flavour}: pair {}",
                pair.id
            );
        }
    }
    let shim = std::fs::read_to_string(out.join("lode_reward.py")).unwrap();
    assert_eq!(shim, include_str!("../src/integrations/lode_reward.py"));

    let (edited_id, before, after) = &setup.edited;
    let (_, failed, fixed) = &setup.debugged;
    let (_, rejected_sql, keeper_sql) = &setup.rejected;
    for flavour in ["openai", "trl"] {
        let file = out.join(format!("dpo-{flavour}.jsonl"));
        let said = ok(
            proj,
            &[
                "export",
                "--format",
                "dpo",
                "--flavour",
                flavour,
                "--out",
                file.to_str().unwrap(),
            ],
        );
        assert!(
            said.contains("debugger 1, review edits 1, rejected vs accepted 1"),
            "{said}"
        );
        let records = jsonl(&file);
        let triples: Vec<(Json, String, String)> = records
            .iter()
            .map(|r| {
                let (prompt, chosen, rejected) = if flavour == "openai" {
                    assert_eq!(r.as_object().unwrap().len(), 3, "{r}");
                    (
                        r["input"]["messages"].clone(),
                        &r["preferred_output"],
                        &r["non_preferred_output"],
                    )
                } else {
                    (r["prompt"].clone(), &r["chosen"], &r["rejected"])
                };
                for side in [chosen, rejected] {
                    assert_eq!(side.as_array().unwrap().len(), 1);
                    assert_eq!(side[0]["role"], "assistant");
                }
                (
                    prompt,
                    chosen[0]["content"].as_str().unwrap().to_string(),
                    rejected[0]["content"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(triples.len(), 3, "{flavour}");
        assert!(triples.iter().all(|(_, c, r)| c != r));
        let find = |chosen: &str, rejected: &str| {
            triples
                .iter()
                .find(|(_, c, r)| c == chosen && r == rejected)
                .unwrap_or_else(|| panic!("{flavour}: no pair {chosen} over {rejected}"))
        };
        let (prompt, ..) = find(after, before);
        let question = store.pair(*edited_id).unwrap().question;
        assert_eq!(
            prompt[1]["content"],
            question_prompt(&project.schema, &project.glossary, &question)
        );
        assert_eq!(prompt[0]["content"], SYSTEM);
        find(fixed, failed);
        find(keeper_sql, rejected_sql);
    }
}

/// The requests a fake service saw: (path, JSON body).
type Requests = Arc<Mutex<Vec<(String, Json)>>>;

/// Answers `/score` like the reward service: score 1.0 when the prediction contains the
/// item's gold SQL; keeps every request body.
fn fake_reward_service() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let body: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
            let answer = if path == "/score" {
                let scores: Vec<Json> = body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|item| {
                        let gold = item["gold_sql"].as_str().unwrap_or("\u{0}");
                        let hit = item["prediction"].as_str().unwrap().contains(gold);
                        json!({
                            "id": item["id"],
                            "score": if hit { 1.0 } else { 0.0 },
                            "parts": {"extracted": true, "executes": true, "matches": hit},
                            "reason": if hit { Json::Null } else { json!("different_result") },
                            "detail": null,
                            "sql": gold,
                        })
                    })
                    .collect();
                json!({"version": 1, "scores": scores})
            } else {
                json!({"status": "ok"})
            };
            log.lock().unwrap().push((path, body));
            let answer = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, seen)
}

fn python() -> Option<&'static str> {
    Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3")
}

#[test]
fn the_python_client_speaks_the_reward_service_contract() {
    let Some(python) = python() else {
        println!("skipped: python3 is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lode_reward.py"),
        include_str!("../src/integrations/lode_reward.py"),
    )
    .unwrap();
    let (url, seen) = fake_reward_service();
    // A closed port, for the connection error.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // A stand-in for `lode reward --stdin`: one score line per item line, its argv echoed.
    std::fs::write(
        dir.path().join("fake_stdin.py"),
        "import json, sys\n\
         for line in sys.stdin:\n\
         \x20   item = json.loads(line)\n\
         \x20   hit = item.get('gold_sql', '\\0') in item['prediction']\n\
         \x20   print(json.dumps({'id': item['id'], 'score': 1.0 if hit else 0.0, 'argv': sys.argv[1:]}), flush=True)\n",
    )
    .unwrap();
    let script = r#"
import json, os, sys
sys.path.insert(0, sys.argv[1])
import lode_reward as lr
url, closed = sys.argv[2], sys.argv[3]
out = {}
reward = lr.trl_reward(lr.LodeReward(url=url))
out["trl"] = reward(
    prompts=[[{"role": "user", "content": "q"}]] * 3,
    completions=[
        [{"role": "assistant", "content": "```sql\nSELECT 1\n```"}],
        [{"role": "assistant", "content": "SELECT 2"}],
        "The answer: SELECT 3",
    ],
    question_id=["pair:1", "pair:2", "pair:3"],
    gold_sql=["SELECT 1", "SELECT 1", "SELECT 3"],
    db_id=["bakery"] * 3,
    trainer_state=None,
)
os.environ["LODE_REWARD_URL"] = url
out["verl"] = lr.compute_score("lode", "SELECT 7", "SELECT 7", {"question_id": "pair:7", "db_id": "bakery"})
out["health"] = lr.LodeReward(url=url).health()
try:
    lr.LodeReward(url=closed).score([{"prediction": "x", "gold_sql": "y"}])
    out["closed"] = None
except lr.LodeRewardError as e:
    out["closed"] = str(e)
with lr.LodeReward(command=[sys.executable, os.path.join(sys.argv[1], "fake_stdin.py")], shape="binary") as c:
    out["stdin"] = c.score([{"prediction": "SELECT %d" % i, "gold_sql": "SELECT 1"} for i in range(40)])
print(json.dumps(out))
"#;
    let run = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .arg(&url)
        .arg(&closed)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out: Json = serde_json::from_str(text(&run.stdout).trim()).unwrap();
    assert_eq!(out["trl"], json!([1.0, 0.0, 1.0]));
    assert_eq!(out["verl"], 1.0);
    assert_eq!(out["health"]["status"], "ok");
    let closed_error = out["closed"].as_str().unwrap();
    assert!(closed_error.contains(&closed), "{closed_error}");
    assert!(closed_error.contains("lode reward serve"), "{closed_error}");
    let stdin = out["stdin"].as_array().unwrap();
    assert_eq!(stdin.len(), 40);
    assert_eq!(stdin[1]["score"], 1.0);
    assert_eq!(stdin[2]["score"], 0.0);
    assert_eq!(stdin[39]["id"], 39);
    assert_eq!(stdin[0]["argv"], json!(["--shape", "binary"]));

    let seen = seen.lock().unwrap();
    let scores: Vec<&Json> = seen
        .iter()
        .filter(|(p, _)| p == "/score")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(scores.len(), 2);
    let trl = scores[0];
    assert_eq!(trl["shape"], "arctic");
    assert_eq!(
        trl["items"][0],
        json!({"id": 0, "prediction": "```sql\nSELECT 1\n```", "question_id": "pair:1", "gold_sql": "SELECT 1", "db": "bakery"})
    );
    assert_eq!(trl["items"][2]["prediction"], "The answer: SELECT 3");
    assert_eq!(
        scores[1]["items"][0],
        json!({"id": 0, "prediction": "SELECT 7", "gold_sql": "SELECT 7", "question_id": "pair:7", "db": "bakery"})
    );
    assert!(seen.iter().any(|(p, _)| p == "/health"));
    drop(seen);

    // The smoke mode prints the score object; an unreachable service is exit 1 with the fix.
    let shim = dir.path().join("lode_reward.py");
    let smoke = |url: &str| {
        Command::new(python)
            .arg(&shim)
            .args(["--url", url, "--gold-sql", "SELECT 1", "--prediction"])
            .arg("SELECT 1")
            .args(["--db", "bakery"])
            .output()
            .unwrap()
    };
    let out = smoke(&url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let score: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(score["score"], 1.0);
    assert_eq!(score["parts"]["matches"], true);
    let out = smoke(&closed);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("lode reward serve"));
}
