//! `lode init`: write config.yml for the user's database, glossary and gold set, and check
//! what can be checked at once.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::check::print_report;
use lode_core::project::Project;
use lode_core::project::check::check;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The project directory (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Your SQLite database, or a PostgreSQL database's URL (postgres://user@host:port/db;
    /// the password goes in PGPASSWORD, never in the URL).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Your gold question/SQL set (JSONL, JSON array or Spider dev.json).
    #[arg(long)]
    pub gold: Option<PathBuf>,
    /// A held-out evaluation set (same formats as the gold set).
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Your glossary (JSONL, JSON object or CSV).
    #[arg(long)]
    pub glossary: Option<PathBuf>,
    /// Overwrite an existing config.yml.
    #[arg(long)]
    pub force: bool,
}

const CONFIG_TEMPLATE: &str = include_str!("../../config.example.yml");

pub fn run(args: &InitArgs) -> Result<i32> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let config_path = args.dir.join("config.yml");
    if config_path.exists() && !args.force {
        bail!(
            "{} already exists; edit it, or pass --force to overwrite it",
            config_path.display()
        );
    }
    let rel = |p: &Option<PathBuf>, default: &str| -> Result<String> {
        match p {
            None => Ok(default.to_string()),
            Some(p) => {
                let abs =
                    std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))?;
                if !abs.exists() {
                    bail!("{} does not exist", p.display());
                }
                Ok(abs.to_string_lossy().into_owned())
            }
        }
    };
    let mut text = CONFIG_TEMPLATE.to_string();
    let db_line = match args.db.as_ref().map(|p| p.to_string_lossy().into_owned()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            if lode_core::project::url_has_password(&url) {
                bail!(
                    "--db: the URL holds a password; give it without one and put the password in \
                     the PGPASSWORD environment variable (config.yml never holds it)"
                );
            }
            format!("url: {}", yaml_str(&url))
        }
        _ => format!("path: {}", yaml_str(&rel(&args.db, "data.sqlite")?)),
    };
    for (key, value) in [
        ("path: data.sqlite", db_line),
        (
            "gold_test_set: gold.jsonl",
            format!(
                "gold_test_set: {}",
                yaml_str(&rel(&args.gold, "gold.jsonl")?)
            ),
        ),
    ] {
        text = text.replacen(key, &value, 1);
    }
    // The eval set and the glossary are optional: their keys stay commented out unless given,
    // so a project without them loads.
    for (key, given) in [
        ("eval_set: eval.jsonl", &args.eval),
        ("glossary: glossary.jsonl", &args.glossary),
    ] {
        if given.is_some() {
            let name = key.split(':').next().unwrap_or(key);
            text = text.replacen(
                &format!("# {key}"),
                &format!("{name}: {}", yaml_str(&rel(given, "")?)),
                1,
            );
        }
    }
    // Generator counts scaled to the gold set: a small set gets more calls per pair.
    if let Some(n) = gold_count(&args.gold) {
        text = scale_generation(&text, n);
    }
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!("wrote {}", config_path.display());
    // Check what we can now, so mistakes surface at init rather than mid-run.
    match Project::load(&config_path) {
        Ok(p) => {
            println!(
                "project ok: {} tables, {} glossary entries, {} gold pairs, {} eval pairs",
                p.schema.tables.len(),
                p.glossary.len(),
                p.gold.len(),
                p.eval.len()
            );
            // Every gold (and eval) query runs now, so a broken one surfaces here, not mid-run.
            let report = check(&p);
            print_report(&p, &report);
            if !report.ok() {
                println!(
                    "fix the lines above, then run `lode check` (from {}) to check again",
                    args.dir.display()
                );
            }
            p.open_store()?;
            println!("workspace store: {}", p.store_path().display());
        }
        Err(e) => {
            println!("the project is not complete yet:\n{e}");
            println!(
                "edit {} and run `lode check` to check it",
                config_path.display()
            );
        }
    }
    Ok(0)
}

/// A YAML scalar for a path: quoted when it holds anything YAML would read specially.
fn yaml_str(s: &str) -> String {
    if s.chars().all(|c| c.is_alphanumeric() || "/._-".contains(c)) && !s.contains("://") {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// How many gold pairs the given file holds, if it can be read (else the template's counts
/// stay; `lode check` reports a bad file).
fn gold_count(gold: &Option<PathBuf>) -> Option<usize> {
    let path = gold.as_ref()?;
    lode_core::project::inputs::load_gold_set(path)
        .ok()
        .map(|loaded| loaded.items.len())
}

/// Calls per gold pair of each built-in generator for a gold set of `n` pairs: about 20 gold
/// pairs' worth of calls, so 5 pairs get 4 calls each and 20 or more get 1.
pub fn calls_per_gold(n: usize) -> usize {
    (20usize.div_ceil(n.max(1))).clamp(1, 4)
}

/// The template's `generate.per_gold` counts (each 1) multiplied for a gold set of `n`.
fn scale_generation(text: &str, n: usize) -> String {
    let m = calls_per_gold(n);
    let mut in_per_gold = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if line.starts_with("  per_gold:") {
            in_per_gold = true;
        } else if in_per_gold && !line.starts_with("    ") {
            in_per_gold = false;
        }
        if in_per_gold
            && let Some((name, rest)) = trimmed.split_once(": 1")
            && !name.contains(' ')
        {
            out.push_str(&format!("    {name}: {m}{rest}"));
            continue;
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_counts_scale_with_the_gold_set() {
        assert_eq!(calls_per_gold(5), 4);
        assert_eq!(calls_per_gold(10), 2);
        assert_eq!(calls_per_gold(15), 2);
        assert_eq!(calls_per_gold(20), 1);
        assert_eq!(calls_per_gold(300), 1);
        let scaled = scale_generation(CONFIG_TEMPLATE, 5);
        assert!(scaled.contains("    pattern: 4           #"), "{scaled}");
        assert!(scaled.contains("    paraphrase: 4        #"), "{scaled}");
        // Only the per_gold block changes.
        assert_eq!(
            scaled.lines().count(),
            CONFIG_TEMPLATE.lines().count(),
            "{scaled}"
        );
    }
}
