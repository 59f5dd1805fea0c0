//! The `lode` binary: parses the command line and reports errors the library returns.

fn main() {
    restore_default_sigpipe();
    lode_core::sql::configure_sqlite();
    std::process::exit(run());
}

/// Parses the command line, runs it, and reports an error as text on stderr, and with
/// `--json` also as a JSON document on stdout; returns the exit code (`lode::cli::exit`).
fn run() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let matches = match lode::cli::Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            let informational = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if json && !informational {
                // clap's text starts "error: " and ends with a usage line and a pointer to
                // --help: the message is the first line, the rest the hint.
                let text = e.to_string();
                let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
                let mut message = lines
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
                    .to_string();
                // What the first line announces ("the following required arguments were
                // not provided:") is on the indented lines after it.
                let mut listed = Vec::new();
                while let Some(l) =
                    lines.next_if(|l| l.starts_with("  ") && !l.trim_start().starts_with("tip:"))
                {
                    listed.push(l.trim());
                }
                if !listed.is_empty() {
                    message = format!("{message} {}", listed.join(", "));
                }
                let tips: Vec<&str> = lines
                    .map(str::trim)
                    .filter(|l| l.starts_with("tip:"))
                    .map(|l| l.trim_start_matches("tip:").trim())
                    .collect();
                let command = lode::cli::command_path_of_args(&args);
                let hint = if !tips.is_empty() {
                    tips.join("; ")
                } else if command == "lode" {
                    "see lode --help".to_string()
                } else {
                    format!("see lode {command} --help")
                };
                let failure = lode::cli::exit::classify(&lode::cli::exit::usage(message, hint));
                let doc = lode::cli::json::error_document(&command, &failure);
                println!("{}", serde_json::to_string(&doc).unwrap_or_default());
            }
            // clap prints its message (help on stdout, errors on stderr) and exits 0 or 2.
            e.exit();
        }
    };
    let command = lode::cli::command_path(&matches);
    let cli = match lode::cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Parsed, the flag is known for sure (`lode sql -- --json` is a statement, not the flag).
    let json = cli.json;
    match lode::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let failure = lode::cli::exit::classify(&e);
            eprintln!("error: {}", lode::cli::error_message(&e));
            if json {
                let doc = lode::cli::json::error_document(&command, &failure);
                println!("{}", serde_json::to_string(&doc).unwrap_or_default());
            }
            failure.exit_code
        }
    }
}

/// Lets a closed pipe end lode quietly, as it ends `cat` or `grep`: `lode review list | head -1`
/// stops lode with SIGPIPE (the shell reports 141) instead of a panic on the next print. The
/// Rust runtime ignores SIGPIPE, which turns every later print into a panic (exit 101).
/// Sockets are unaffected: they are written with MSG_NOSIGNAL (SO_NOSIGPIPE on macOS).
#[cfg(unix)]
fn restore_default_sigpipe() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13; // the same on Linux, macOS and the BSDs
    const SIG_DFL: usize = 0;
    // SAFETY: called first thing in main, before any thread is started; SIG_DFL installs no
    // handler code.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}
