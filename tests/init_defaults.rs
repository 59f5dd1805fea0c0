//! `lode init` on a stranger's database: generator counts scaled to the gold set, no custom
//! generator copied in, and a generator that makes nothing says why in the run summary.

use std::path::Path;
use std::process::Command;

fn lode(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .args(["-C", dir.to_str().unwrap()])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn init_scales_generation_and_a_generator_with_nothing_to_do_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, colour TEXT,
                             price REAL NOT NULL, stock INTEGER NOT NULL);",
    )
    .unwrap();
    for i in 0..40 {
        conn.execute(
            "INSERT INTO items (name, colour, price, stock) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                format!("item {i}"),
                ["red", "blue", "green"][i % 3],
                1.5 + i as f64,
                ((i * 7) % 13) as i64
            ],
        )
        .unwrap();
    }
    drop(conn);
    // Five single-table questions: nothing for the decomposer to split.
    let gold = dir.path().join("gold.jsonl");
    std::fs::write(
        &gold,
        [
            ("How many items are there?", "SELECT COUNT(*) FROM items"),
            (
                "Which items are red?",
                "SELECT name FROM items WHERE colour = 'red'",
            ),
            ("What is the average price?", "SELECT AVG(price) FROM items"),
            (
                "Which five items cost the most?",
                "SELECT name, price FROM items ORDER BY price DESC LIMIT 5",
            ),
            (
                "How many items of each colour are there?",
                "SELECT colour, COUNT(*) FROM items GROUP BY colour",
            ),
        ]
        .iter()
        .map(|(q, s)| serde_json::json!({"question": q, "sql": s}).to_string() + "\n")
        .collect::<String>(),
    )
    .unwrap();
    let project = dir.path().join("project");
    let out = Command::new(env!("CARGO_BIN_EXE_lode"))
        .args(["init", project.to_str().unwrap()])
        .args([
            "--db",
            db.to_str().unwrap(),
            "--gold",
            gold.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(project.join("config.yml")).unwrap();
    // Five gold pairs: four calls per pair of every built-in generator.
    for name in [
        "pattern",
        "variation",
        "decomposer",
        "comparative",
        "edge_case",
        "granular",
        "paraphrase",
    ] {
        assert!(
            config.contains(&format!("    {name}: 4 ")),
            "{name}:\n{config}"
        );
    }
    // The example's custom generator stays a comment.
    assert!(!config.contains("\n    - name: seasonal"), "{config}");
    assert!(config.contains("generators: []"), "{config}");

    let out = lode(&project, &["generate"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .contains("decomposer made no question: no gold query has a subquery or join to split"),
        "{stdout}"
    );
    // The example's LLM validator needs an LLM: said once, not failed for every pair.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("answers_the_question needs an LLM profile"),
        "{stderr}"
    );
    assert!(stdout.contains(", 0 failed)"), "{stdout}");
}
