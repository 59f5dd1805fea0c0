//! `lode jobs`: list tuning jobs, watch one (resuming from the store after a restart), cancel
//! one.

use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::globals::Globals;
use super::output::EventView;
use lode_core::tasks::tune;

#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub action: Option<JobsAction>,
}

#[derive(Subcommand, Debug)]
pub enum JobsAction {
    /// List tuning jobs
    List,
    /// Follow a job until it ends (the newest by default)
    Watch { id: Option<i64> },
    /// Cancel a job
    Cancel { id: i64 },
}

pub fn run(globals: &Globals, args: &JobsArgs) -> Result<i32> {
    let project = globals.load_project()?;
    let (store, _) = project.open_store()?;
    let store = Arc::new(store);
    match args.action.as_ref().unwrap_or(&JobsAction::List) {
        JobsAction::List => {
            let jobs = store.jobs()?;
            if jobs.is_empty() {
                println!("no tuning jobs yet: `lode tune` submits one");
            }
            for j in jobs {
                let model = lode_core::tune::job_model(&store, j.id)?.unwrap_or_else(|| "-".into());
                println!(
                    "{:>4}  {:<8} {:<10} {:<24} {}  {}",
                    j.id,
                    j.provider,
                    j.status,
                    j.external_id.unwrap_or_default(),
                    j.updated_at,
                    model
                );
            }
            Ok(0)
        }
        JobsAction::Watch { id } => {
            let view = EventView::new();
            let rt = lode_core::tasks::runtime()?;
            let outcome = rt.block_on(tune::watch(&project, &store, *id, &view.reporter()));
            view.finish();
            Ok(super::tune::finish_message(&outcome?))
        }
        JobsAction::Cancel { id } => {
            let rt = lode_core::tasks::runtime()?;
            rt.block_on(tune::cancel(&project, &store, *id, "by the user"))?;
            println!("job {id} cancelled");
            Ok(0)
        }
    }
}
