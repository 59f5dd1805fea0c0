//! `lode init`: write config.yml for the user's database, glossary and gold set, and check
//! what can be checked at once. `--json`: what was written and what the check found, as one
//! document.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::check::{CheckDocument, ProjectInputs, other_warnings, print_report};
use super::exit::{self, Location};
use super::globals::Globals;
use super::output::print_warnings;
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

/// `lode init --json`: what was written, and what loading and checking the project found.
#[derive(Serialize)]
struct InitDocument {
    /// The config file written.
    config: PathBuf,
    database: DatabaseWritten,
    /// The gold set as config.yml names it (`gold.jsonl`, the template's, without --gold).
    gold_set: String,
    /// The eval set and the glossary as config.yml names them (`null`: not given, their keys
    /// stay commented out).
    eval_set: Option<String>,
    glossary: Option<String>,
    /// Calls per gold pair written for each built-in generator, scaled to the gold set
    /// (`null`: the gold set could not be read, the template's counts stay).
    calls_per_gold: Option<usize>,
    /// The project loaded: its inputs (`null` when it did not, see `not_loaded`).
    inputs: Option<ProjectInputs>,
    /// What `lode check` finds now (`null` when the project did not load).
    check: Option<CheckDocument>,
    /// The workspace store, created now.
    store: Option<PathBuf>,
    /// Why the project does not load yet (edit config.yml, then `lode check`).
    not_loaded: Option<NotLoaded>,
}

/// The database config.yml points at.
#[derive(Serialize)]
struct DatabaseWritten {
    /// `sqlite` or `postgresql`.
    kind: &'static str,
    /// The SQLite file (`data.sqlite`, the template's, without --db), or `null`.
    path: Option<String>,
    /// The PostgreSQL URL (never with a password), or `null`.
    url: Option<String>,
}

/// An error loading the project, classified as `lode` errors are.
#[derive(Serialize)]
struct NotLoaded {
    kind: &'static str,
    message: String,
    location: Option<Location>,
    hint: Option<String>,
}

pub fn run(globals: &Globals, args: &InitArgs) -> Result<i32> {
    let json = globals.json;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let config_path = args.dir.join("config.yml");
    if config_path.exists() && !args.force {
        return Err(exit::usage(
            format!("{} already exists", config_path.display()),
            "edit it, or pass --force to overwrite it",
        ));
    }
    let rel = |p: &Option<PathBuf>, default: &str| -> Result<String> {
        match p {
            None => Ok(default.to_string()),
            Some(p) => {
                let abs =
                    std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))?;
                if !abs.exists() {
                    return Err(exit::usage(
                        format!("{} does not exist", p.display()),
                        "give the path of an existing file",
                    ));
                }
                Ok(abs.to_string_lossy().into_owned())
            }
        }
    };
    let mut text = CONFIG_TEMPLATE.to_string();
    let database = match args.db.as_ref().map(|p| p.to_string_lossy().into_owned()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            if lode_core::project::url_has_password(&url) {
                return Err(exit::usage(
                    "--db: the URL holds a password",
                    "give it without one and put the password in the PGPASSWORD environment \
                     variable (config.yml never holds it)",
                ));
            }
            DatabaseWritten {
                kind: "postgresql",
                path: None,
                url: Some(url),
            }
        }
        _ => DatabaseWritten {
            kind: "sqlite",
            path: Some(rel(&args.db, "data.sqlite")?),
            url: None,
        },
    };
    let db_line = match (&database.url, &database.path) {
        (Some(url), _) => format!("url: {}", yaml_str(url)),
        (None, path) => format!("path: {}", yaml_str(path.as_deref().unwrap_or_default())),
    };
    let gold_set = rel(&args.gold, "gold.jsonl")?;
    for (key, value) in [
        ("path: data.sqlite", db_line),
        (
            "gold_test_set: gold.jsonl",
            format!("gold_test_set: {}", yaml_str(&gold_set)),
        ),
    ] {
        text = text.replacen(key, &value, 1);
    }
    // The eval set and the glossary are optional: their keys stay commented out unless given,
    // so a project without them loads.
    let mut optional = Vec::new();
    for (key, given) in [
        ("eval_set: eval.jsonl", &args.eval),
        ("glossary: glossary.jsonl", &args.glossary),
    ] {
        let value = match given {
            Some(_) => Some(rel(given, "")?),
            None => None,
        };
        if let Some(value) = &value {
            let name = key.split(':').next().unwrap_or(key);
            text = text.replacen(
                &format!("# {key}"),
                &format!("{name}: {}", yaml_str(value)),
                1,
            );
        }
        optional.push(value);
    }
    // Generator counts scaled to the gold set: a small set gets more calls per pair.
    let gold_pairs = gold_count(&args.gold);
    if let Some(n) = gold_pairs {
        text = scale_generation(&text, n);
    }
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let mut optional = optional.into_iter();
    let mut doc = InitDocument {
        config: config_path.clone(),
        database,
        gold_set,
        eval_set: optional.next().flatten(),
        glossary: optional.next().flatten(),
        calls_per_gold: gold_pairs.map(calls_per_gold),
        inputs: None,
        check: None,
        store: None,
        not_loaded: None,
    };
    if !json {
        println!("wrote {}", config_path.display());
    }
    // Check what we can now, so mistakes surface at init rather than mid-run.
    match Project::load(&config_path) {
        Ok(p) => {
            // Every gold (and eval) query runs now, so a broken one surfaces here, not mid-run.
            let report = check(&p);
            if json {
                print_warnings(&other_warnings(&p, &report));
                doc.inputs = Some(ProjectInputs::of(&p));
                doc.check = Some(CheckDocument::new(&p, &report));
            } else {
                println!(
                    "project ok: {} tables, {} glossary entries, {} gold pairs, {} eval pairs",
                    p.schema.tables.len(),
                    p.glossary.len(),
                    p.gold.len(),
                    p.eval.len()
                );
                print_report(&p, &report);
                if !report.ok() {
                    println!(
                        "fix the lines above, then run `lode check` (from {}) to check again",
                        args.dir.display()
                    );
                }
            }
            p.open_store()?;
            if json {
                doc.store = Some(p.store_path());
            } else {
                println!("workspace store: {}", p.store_path().display());
            }
        }
        Err(e) if json => {
            let f = exit::classify(&anyhow::Error::new(e));
            doc.not_loaded = Some(NotLoaded {
                kind: f.kind,
                message: f.message,
                location: f.location,
                hint: f.hint,
            });
        }
        Err(e) => {
            println!("the project is not complete yet:\n{e}");
            println!(
                "edit {} and run `lode check` to check it",
                config_path.display()
            );
        }
    }
    if json {
        super::json::emit("init", &doc)?;
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
