//! `lode completions SHELL` and `lode man`: shell completions and manual pages generated
//! from the clap definitions, so they never drift from the flags lode actually takes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, ValueEnum};

use super::Cli;
use super::globals::Globals;

/// The shells completions are written for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Args, Debug)]
#[command(after_help = "Install, for example:\n  \
    bash: lode completions bash > ~/.local/share/bash-completion/completions/lode\n  \
    zsh:  lode completions zsh > ~/.zfunc/_lode   (with fpath+=~/.zfunc before compinit)\n  \
    fish: lode completions fish > ~/.config/fish/completions/lode.fish")]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
#[command(after_help = "Read one without installing: lode man | man -l -\n\
    Install: lode man --out ~/.local/share/man/man1 (then `man lode-eval`)")]
pub struct ManArgs {
    /// Write lode.1 and one page per command (lode-eval.1, lode-review-list.1, …) into this
    /// directory instead of printing lode.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `lode completions SHELL`: the script on stdout.
pub fn run_completions(args: &CompletionsArgs) -> Result<i32> {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "lode", &mut out);
    out.flush()?;
    Ok(0)
}

/// `lode man [--out DIR]`: lode.1 on stdout, or every page into DIR.
pub fn run_man(globals: &Globals, args: &ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    match &args.out {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.flush()?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let written = write_pages(cmd, dir)?;
            if globals.json {
                super::json::emit("man", &serde_json::json!({ "dir": dir, "pages": written }))?;
            } else {
                eprintln!("wrote {} manual pages to {}", written.len(), dir.display());
            }
        }
    }
    Ok(0)
}

/// Writes the page of `cmd` and of each of its subcommands, depth first (`lode-review-list.1`);
/// returns the file names.
fn write_pages(cmd: clap::Command, dir: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let mut todo = vec![(cmd.get_name().to_string(), cmd)];
    while let Some((name, cmd)) = todo.pop() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() == "help" {
                continue;
            }
            let sub_name = format!("{name}-{}", sub.get_name());
            todo.push((sub_name.clone(), sub.clone().name(sub_name)));
        }
        let file = format!("{name}.1");
        let path = dir.join(&file);
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(file);
    }
    written.sort();
    Ok(written)
}
