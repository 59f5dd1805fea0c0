//! `lode bench`: throughput of the safe executor and of SQL analysis on Spider's dev
//! queries, and the wall time of generating the demo project.

use anyhow::Result;

use crate::cli::BenchArgs;

pub fn run(_args: &BenchArgs) -> Result<i32> {
    anyhow::bail!("not wired yet")
}
