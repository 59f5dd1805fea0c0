//! The `lode` binary: parses the command line and reports errors the library returns.

use clap::Parser;

fn main() {
    let cli = lode::cli::Cli::parse();
    match lode::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
