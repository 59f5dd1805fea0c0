//! `lode sql --analyze`: analysis of one query or a file of queries, as JSON.

use anyhow::{Result, bail};

use crate::cli::{Cli, SqlArgs};

pub fn run(_cli: &Cli, _args: &SqlArgs) -> Result<i32> {
    bail!("analysis is not wired in yet")
}
