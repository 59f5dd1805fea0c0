//! The `lode` binary: parses the command line and reports errors the library returns.

use clap::Parser;

fn main() {
    restore_default_sigpipe();
    lode_core::sql::configure_sqlite();
    let cli = lode::cli::Cli::parse();
    match lode::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", lode::cli::error_message(&e));
            std::process::exit(1);
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
