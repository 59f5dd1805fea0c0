//! Shell completions and manual pages come from lode's own clap definitions: every command
//! and flag is in them, the bash script is valid bash, and there is one page per command.

use std::path::Path;
use std::process::{Command, Output};

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run lode")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_name_every_command_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let bash = ok(lode(dir.path(), &["completions", "bash"]));
    for word in [
        "eval-files",
        "review",
        "generate",
        "completions",
        "--json",
        "--db-url",
        "--neighbours",
    ] {
        assert!(bash.contains(word), "bash completions lack {word}");
    }
    // The script is valid bash, where bash is there to say so.
    if let Ok(check) = Command::new("bash").arg("-n").arg("-c").arg(&bash).output() {
        assert!(
            check.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    } else {
        eprintln!("skipping the bash syntax check: no bash here");
    }
    let zsh = ok(lode(dir.path(), &["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef lode"), "{}", &zsh[..80]);
    assert!(zsh.contains("eval-files"));
    let fish = ok(lode(dir.path(), &["completions", "fish"]));
    assert!(fish.contains("complete -c lode"));
    assert!(fish.contains("review"));
    for shell in ["elvish", "powershell"] {
        assert!(!ok(lode(dir.path(), &["completions", shell])).is_empty());
    }
    let bad = lode(dir.path(), &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn manual_pages_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let page = ok(lode(dir.path(), &["man"]));
    assert!(page.contains(".TH lode 1"), "{}", &page[..200]);
    assert!(
        page.contains("eval\\-files"),
        "the main page lists the commands"
    );

    let out = dir.path().join("man1");
    let doc: serde_json::Value = serde_json::from_str(&ok(lode(
        dir.path(),
        &["--json", "man", "--out", out.to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["command"], "man");
    let pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(doc["pages"].as_array().unwrap().len(), pages.len());
    for want in [
        "lode.1",
        "lode-eval.1",
        "lode-eval-files.1",
        "lode-review-list.1",
        "lode-jobs-watch.1",
        "lode-completions.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "no {want} in {pages:?}");
    }
    let list = std::fs::read_to_string(out.join("lode-review-list.1")).unwrap();
    assert!(
        list.contains(".TH lode\\-review\\-list 1") || list.contains(".TH lode-review-list 1"),
        "{list}"
    );
    assert!(list.contains("\\-\\-status"), "{list}");
    // Rendered by man(1), where it is installed.
    match Command::new("man")
        .arg("-l")
        .arg(out.join("lode-eval.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    {
        Ok(shown) if shown.status.success() => {
            let text = String::from_utf8_lossy(&shown.stdout);
            assert!(text.contains("lode-eval"), "{text}");
        }
        _ => eprintln!("skipping the man(1) rendering check: no man here"),
    }
}
