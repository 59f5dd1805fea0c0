//! The generation pipeline: from the gold pairs, generators ask for new questions, a
//! schema-to-SQL step writes their SQL, every query is validated by execution, failures go
//! through the debugger loop (each attempt re-validated and recorded), and the run ends with
//! dedup and leakage marking. Work runs concurrently across gold pairs up to the profile's
//! limit. A run is resumable: each pair has a deterministic origin key, stored with its whole
//! history in one transaction, and LLM answers come from the cache on a rerun.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::config::{CustomGenerator, CustomValidator};
use crate::llm::{LlmClient, LlmError, LlmRequest, Message, OutputSchema, Sampling, Task};
use crate::pipeline::prompts::{self, PromptError, Template};
use crate::pipeline::validate::{Validation, validate};
use crate::project::inputs::normalize_question;
use crate::project::{GoldPair, Project, format_glossary};
use crate::sql::Database;
use crate::sql::SqlDialect;
use crate::sql::analyze::{analyze, template, template_in};
use crate::sql::extract::extract_sql;
use crate::sql::schema::Schema;
use crate::store::{
    ErrorKind, LEASE_HEARTBEAT, LeaseOwner, NewGenerationFailure, NewPair, NewRun, NewValidation,
    PairAnalysis, PairFilter, PairNotes, PairStatus, RunKind, RunStatus, SetName, Store,
    StoredGold,
};
use crate::synth::agree;
use crate::synth::names::Names;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Config(String),
    /// The run stopped because its LLM calls failed in a way retrying will not fix, or every
    /// call failed; the run is marked failed with this reason and can be resumed.
    #[error("generation run {run_id} failed: {reason}")]
    RunFailed { run_id: i64, reason: String },
}

/// A generator of new questions.
#[derive(Debug, Clone)]
pub struct GeneratorSpec {
    pub name: String,
    pub template: Template,
    pub output: OutputSchema,
    /// Fields of the answer that hold new questions.
    pub fan_out: Vec<String>,
    /// Calls per gold pair.
    pub calls: usize,
    /// Paraphrases keep the gold SQL; the others get SQL written for them.
    pub keeps_sql: bool,
    pub builtin: bool,
}

/// The built-in generators and their output fields.
const BUILTIN_OUTPUTS: &[(&str, usize)] = &[
    ("pattern", 2),
    ("variation", 2),
    ("decomposer", 3),
    ("comparative", 2),
    ("edge_case", 2),
    ("granular", 2),
    ("paraphrase", 2),
];

/// The generators a project's config turns on, built-in and custom.
pub fn generator_specs(project: &Project) -> Result<Vec<GeneratorSpec>, GenerateError> {
    let g = &project.config.generate;
    let mut out = Vec::new();
    for (name, n) in BUILTIN_OUTPUTS {
        let calls = g.per_gold.get(*name).copied().unwrap_or(0);
        if calls == 0 {
            continue;
        }
        let fields: Vec<String> = (1..=*n).map(|i| format!("q{i}")).collect();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|f| (f.as_str(), "str")).collect();
        out.push(GeneratorSpec {
            name: name.to_string(),
            template: prompts::load_in(name, &g.prompts, &project.schema.dialect)?,
            output: OutputSchema::new(name, &pairs),
            fan_out: fields.clone(),
            calls,
            keeps_sql: *name == "paraphrase",
            builtin: true,
        });
    }
    for name in g.per_gold.keys() {
        if !BUILTIN_OUTPUTS.iter().any(|(b, _)| b == name)
            && !g.generators.iter().any(|c| &c.name == name)
        {
            return Err(GenerateError::Config(format!(
                "generate.per_gold names `{name}`, which is no generator; built-in ones are {}",
                BUILTIN_OUTPUTS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    for c in &g.generators {
        out.push(custom_spec(c)?);
    }
    Ok(out)
}

fn custom_spec(c: &CustomGenerator) -> Result<GeneratorSpec, GenerateError> {
    for f in &c.fan_out {
        if !c.output.contains_key(f) {
            return Err(GenerateError::Config(format!(
                "custom generator `{}`: fan_out field `{f}` is not among its output fields ({})",
                c.name,
                c.output.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let fields: Vec<(&str, &str)> = c
        .output
        .iter()
        .map(|(k, t)| (k.as_str(), t.as_str()))
        .collect();
    Ok(GeneratorSpec {
        name: c.name.clone(),
        template: Template {
            name: c.name.clone(),
            role: if c.role.is_empty() {
                "You are an expert at writing business questions about a database.".into()
            } else {
                c.role.clone()
            },
            text: c.instruction.clone(),
        },
        output: OutputSchema::new(&c.name, &fields),
        fan_out: c.fan_out.clone(),
        calls: c.count,
        keeps_sql: false,
        builtin: false,
    })
}

/// Counts per generator, for the summary table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GeneratorStats {
    /// Questions asked for.
    pub asked: usize,
    /// Questions received.
    pub generated: usize,
    pub valid: usize,
    /// Valid only after the debugger.
    pub fixed: usize,
    /// Valid or fixed, but the question and the SQL disagree.
    pub suspect: usize,
    /// Invalid after every attempt (empty results included).
    pub failed: usize,
    /// Failed with an empty, all-NULL or zero-count result.
    pub empty: usize,
    pub duplicate: usize,
    pub leakage: usize,
    /// LLM calls that failed (the run went on).
    pub call_failures: usize,
    /// Why a generator that was asked made no question at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_none: Option<String>,
}

/// What a run produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenerateSummary {
    pub run_id: i64,
    pub resumed: bool,
    pub by_generator: BTreeMap<String, GeneratorStats>,
    /// Pairs that were already stored when the run resumed.
    pub skipped_existing: usize,
    /// How varied the run's kept pairs are.
    pub diversity: Diversity,
}

/// Distinct SQL templates (the query with its literals blanked) and distinct result
/// fingerprints among a run's valid and fixed pairs, overall and per gold pair they came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diversity {
    pub pairs: usize,
    pub templates: usize,
    pub results: usize,
    /// Per gold position (1-based): (pairs, templates, results).
    pub per_gold: BTreeMap<i64, (usize, usize, usize)>,
    /// Pairs from no gold pair (SQL-first, gap filling).
    pub unanchored: (usize, usize, usize),
}

impl Diversity {
    /// "175 pairs: 137 distinct SQL templates, 160 distinct results; per gold pair 2-9
    /// templates (median 5)".
    pub fn line(&self) -> String {
        let mut s = format!(
            "diversity: {} pairs, {} distinct SQL templates, {} distinct results",
            self.pairs, self.templates, self.results
        );
        let mut per: Vec<usize> = self.per_gold.values().map(|v| v.1).collect();
        per.sort_unstable();
        if let (Some(lo), Some(hi)) = (per.first(), per.last()) {
            s.push_str(&format!(
                "; per gold pair {lo}-{hi} templates (median {})",
                per[per.len() / 2]
            ));
        }
        if self.unanchored.0 > 0 {
            s.push_str(&format!(
                "; {} pairs from no gold pair, {} templates",
                self.unanchored.0, self.unanchored.1
            ));
        }
        s
    }
}

/// The diversity of a run's kept pairs.
pub fn diversity(store: &Store, run_id: i64) -> Result<Diversity, GenerateError> {
    let pairs = store.pairs(&PairFilter {
        run_id: Some(run_id),
        statuses: vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Accepted],
        ..Default::default()
    })?;
    let gold_pos: HashMap<i64, i64> = store
        .gold_set(SetName::Gold)?
        .into_iter()
        .map(|g| (g.id, g.position))
        .collect();
    type Sets = (usize, BTreeSet<String>, BTreeSet<String>);
    let mut all: Sets = Default::default();
    let mut by: BTreeMap<Option<i64>, Sets> = BTreeMap::new();
    for p in &pairs {
        let t = p.template.clone().unwrap_or_else(|| template(&p.sql));
        let f = p.result_fingerprint.clone().unwrap_or_default();
        let key = p
            .parent_gold_id
            .map(|g| gold_pos.get(&g).copied().unwrap_or(g));
        for sets in [&mut all, by.entry(key).or_default()] {
            sets.0 += 1;
            sets.1.insert(t.clone());
            sets.2.insert(f.clone());
        }
    }
    let count = |s: &Sets| (s.0, s.1.len(), s.2.len());
    Ok(Diversity {
        pairs: all.0,
        templates: all.1.len(),
        results: all.2.len(),
        unanchored: by.get(&None).map(count).unwrap_or_default(),
        per_gold: by
            .iter()
            .filter_map(|(k, v)| k.map(|k| (k, count(v))))
            .collect(),
    })
}

impl GenerateSummary {
    pub fn totals(&self) -> GeneratorStats {
        let mut t = GeneratorStats::default();
        for s in self.by_generator.values() {
            t.asked += s.asked;
            t.generated += s.generated;
            t.valid += s.valid;
            t.fixed += s.fixed;
            t.suspect += s.suspect;
            t.failed += s.failed;
            t.empty += s.empty;
            t.duplicate += s.duplicate;
            t.leakage += s.leakage;
            t.call_failures += s.call_failures;
        }
        t
    }

    /// The summary table per generator.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:>6} {:>9} {:>6} {:>6} {:>7} {:>7} {:>6} {:>9} {:>8}\n",
            "generator",
            "asked",
            "generated",
            "valid",
            "fixed",
            "suspect",
            "failed",
            "empty",
            "duplicate",
            "leakage"
        );
        let mut row = |name: &str, g: &GeneratorStats| {
            s.push_str(&format!(
                "{:<14} {:>6} {:>9} {:>6} {:>6} {:>7} {:>7} {:>6} {:>9} {:>8}\n",
                name,
                g.asked,
                g.generated,
                g.valid,
                g.fixed,
                g.suspect,
                g.failed,
                g.empty,
                g.duplicate,
                g.leakage
            ));
        };
        for (name, g) in &self.by_generator {
            row(name, g);
        }
        row("all", &self.totals());
        for (name, g) in &self.by_generator {
            if let Some(why) = &g.why_none {
                s.push_str(&format!("{name} made no question: {why}\n"));
            }
        }
        s
    }
}

/// What a run reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerateEvent {
    /// Generator calls answered so far, of those started.
    Questions { done: usize, total: usize },
    /// A pair (with every validation attempt) was committed to the store.
    PairStored { generator: String },
    /// Duplicate and leakage marking started.
    Dedup,
    /// Something went wrong that did not stop the run (a pair that could not be stored).
    Warning(String),
}

/// Where a run sends its [`GenerateEvent`]s.
pub type Progress = Arc<dyn Fn(GenerateEvent) + Send + Sync>;

/// What every task of a run shares.
struct Ctx {
    db: Arc<Database>,
    schema: Arc<Schema>,
    schema_text: String,
    glossary_text: String,
    store: Arc<Store>,
    client: Arc<LlmClient>,
    run_id: i64,
    debugger_attempts: usize,
    rules: Arc<Vec<CustomValidator>>,
    llm_validators: Vec<(CustomValidator, Template)>,
    /// The schema's words and the project's house rules for the agreement check; `None`
    /// when `generate.agreement_check` is off.
    agreement: Option<(Names, agree::Conventions)>,
    sql_template: Template,
    debug_template: Template,
    existing: BTreeSet<String>,
    stats: Mutex<BTreeMap<String, GeneratorStats>>,
    done: AtomicUsize,
    total: AtomicUsize,
    progress: Progress,
    /// Prompts that could not be used, already reported (each is said once per run).
    prompt_failures: Mutex<BTreeSet<String>>,
    /// The first failed call of this process, for the reason of a run where every call failed.
    first_failure: Mutex<Option<String>>,
}

impl Ctx {
    /// Says (once per prompt and run) that a prompt could not be loaded or filled in, so the
    /// step it drives was skipped: a custom template with a misspelt placeholder shows up.
    fn prompt_failed(&self, prompt: &str, error: &dyn std::fmt::Display) {
        let first = self
            .prompt_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(prompt.to_string());
        if first {
            (self.progress)(GenerateEvent::Warning(format!(
                "the {prompt} prompt cannot be used, so its step is skipped: {error}"
            )));
        }
    }

    /// A generator call that failed in an earlier process of the run was asked again (a
    /// resumed run asks every generator call) and answered: its failure no longer holds.
    fn forget_failure(&self, origin: &str) {
        if !self.existing.contains(origin) {
            return;
        }
        if let Err(e) = self.store.forget_generation_failure(self.run_id, origin) {
            (self.progress)(GenerateEvent::Warning(format!(
                "could not clear the earlier failure of {origin}, answered now: {e}"
            )));
        }
    }

    fn stat(&self, generator: &str, f: impl FnOnce(&mut GeneratorStats)) {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(s.entry(generator.to_string()).or_default());
    }

    fn vars(&self, question: &str, sql: &str) -> BTreeMap<&'static str, String> {
        let mut v = BTreeMap::new();
        v.insert("question", question.to_string());
        v.insert("sql", sql.to_string());
        v.insert("schema", self.schema_text.clone());
        v.insert("glossary", self.glossary_text.clone());
        v
    }
}

/// Options of one `lode generate`.
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// Continue this run instead of the latest unfinished one.
    pub resume: Option<i64>,
    /// Start a new run even if one is unfinished.
    pub new_run: bool,
    /// Only these gold positions (0-based); all when empty.
    pub only_gold: Vec<usize>,
}

/// The run to work on: the one asked for, else the latest unfinished or failed generate run
/// (a run that failed on a wrong key goes on once the key is fixed), else a new one, held
/// under this process's lease. A run another live process holds is refused
/// (with who holds it), not resumed under its feet; a stale holder's run is taken over.
/// Returns (id, resumed, owner).
fn pick_run(
    project: &Project,
    store: &Store,
    client: &LlmClient,
    opts: &GenerateOptions,
    snapshot: i64,
) -> Result<(i64, bool, LeaseOwner), GenerateError> {
    let owner = LeaseOwner::this_process();
    if let Some(id) = opts.resume {
        store.resume_leased_run(id, &owner)?;
        return Ok((id, true, owner));
    }
    if !opts.new_run
        && let Some(last) = store.latest_run(RunKind::Generate)?
        && matches!(
            last.status,
            RunStatus::Running | RunStatus::Interrupted | RunStatus::Failed
        )
    {
        store.resume_leased_run(last.id, &owner)?;
        return Ok((last.id, true, owner));
    }
    let config = json!({
        "per_gold": project.config.generate.per_gold,
        "sql_first": project.config.generate.sql_first,
        "debugger_attempts": project.config.generate.debugger_attempts,
        "model": client.backend().model(),
    });
    let id = store.create_leased_run(
        &NewRun {
            kind: RunKind::Generate,
            snapshot_id: Some(snapshot),
            profile: client.options().profile.clone(),
            config_json: config.to_string(),
        },
        &owner,
    )?;
    Ok((id, false, owner))
}

/// This process's hold on the run it writes: a heartbeat every [`LEASE_HEARTBEAT`] while it
/// lives, and the lease given back when it goes (the run ended, failed, or its task was
/// cancelled and dropped).
struct HeldRun {
    store: Arc<Store>,
    run_id: i64,
    owner: LeaseOwner,
    heartbeat: tokio::task::JoinHandle<()>,
    released: bool,
}

impl HeldRun {
    fn hold(store: &Arc<Store>, run_id: i64, owner: LeaseOwner, progress: Progress) -> HeldRun {
        let heartbeat = tokio::spawn({
            let store = Arc::clone(store);
            let owner = owner.clone();
            async move {
                let mut tick = tokio::time::interval(LEASE_HEARTBEAT);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let (store, owner) = (Arc::clone(&store), owner.clone());
                    let beat =
                        tokio::task::spawn_blocking(move || store.heartbeat_run(run_id, &owner))
                            .await;
                    match beat {
                        Ok(Ok(true)) => {}
                        Ok(Ok(false)) => {
                            (progress)(GenerateEvent::Warning(format!(
                                "run {run_id} was taken over by another process (this one's \
                                 heartbeat was too old); this process stops refreshing it"
                            )));
                            return;
                        }
                        Ok(Err(e)) => (progress)(GenerateEvent::Warning(format!(
                            "could not refresh the lease on run {run_id}: {e}"
                        ))),
                        Err(e) => (progress)(GenerateEvent::Warning(format!(
                            "could not refresh the lease on run {run_id}: {e}"
                        ))),
                    }
                }
            }
        });
        HeldRun {
            store: Arc::clone(store),
            run_id,
            owner,
            heartbeat,
            released: false,
        }
    }

    /// Gives the lease back, saying why when it cannot.
    fn release(mut self) -> Result<(), GenerateError> {
        self.heartbeat.abort();
        self.released = true;
        self.store.release_run(self.run_id, &self.owner)?;
        Ok(())
    }
}

impl Drop for HeldRun {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if self.released {
            return;
        }
        // On the way out of a cancelled or failed run there is no one to tell; a lease left
        // behind is stale as soon as this process ends (or its heartbeat ages), and the next
        // process takes it over. `release` reports the error on the normal path.
        let _ = self.store.release_run(self.run_id, &self.owner);
    }
}

/// The shared state of a run's tasks.
fn make_ctx(
    project: &Project,
    store: &Arc<Store>,
    client: Arc<LlmClient>,
    run_id: i64,
    progress: Progress,
) -> Result<Arc<Ctx>, GenerateError> {
    let g = &project.config.generate;
    let existing = store.origins(run_id)?;
    let mut llm_validators = g
        .validators
        .iter()
        .filter(|v| v.kind == "llm")
        .map(|v| {
            Ok((
                v.clone(),
                prompts::load_in("llm_validator", &g.prompts, &project.schema.dialect)?,
            ))
        })
        .collect::<Result<Vec<_>, PromptError>>()?;
    // The offline rules backend answers lode's own tasks, not a validator's free-form prompt:
    // asking it for every pair only fills the call log with failures. Said once, skipped.
    if client.backend().kind() == "rules" && !llm_validators.is_empty() {
        let names: Vec<&str> = llm_validators
            .iter()
            .map(|(v, _)| v.name.as_str())
            .collect();
        progress(GenerateEvent::Warning(format!(
            "the LLM validator{} {} need{} an LLM profile (--profile or llm.default); skipped \
             with the offline rules backend",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 { "s" } else { "" }
        )));
        // A template that cannot be filled in is still said (once), so a typo in a custom
        // prompt shows before the profile that would use it is set up.
        for (v, t) in &llm_validators {
            let mut vars: BTreeMap<&'static str, String> =
                ["question", "sql", "schema", "glossary"]
                    .into_iter()
                    .map(|k| (k, String::new()))
                    .collect();
            vars.insert("instruction", v.instruction.clone().unwrap_or_default());
            if let Err(e) = t.render(&vars) {
                progress(GenerateEvent::Warning(format!(
                    "the validator {} prompt cannot be used, so its step is skipped: {e}",
                    v.name
                )));
            }
        }
        llm_validators.clear();
    }
    for v in &g.validators {
        if v.kind != "rule" && v.kind != "llm" {
            return Err(GenerateError::Config(format!(
                "validator `{}` has kind `{}`; use `rule` or `llm`",
                v.name, v.kind
            )));
        }
        if v.kind == "llm" && v.instruction.is_none() {
            return Err(GenerateError::Config(format!(
                "llm validator `{}` needs an instruction",
                v.name
            )));
        }
    }
    Ok(Arc::new(Ctx {
        db: Arc::clone(&project.db),
        schema: Arc::new(project.schema.clone()),
        schema_text: project.schema.to_create_sql(),
        glossary_text: format_glossary(&project.glossary),
        store: Arc::clone(store),
        client,
        run_id,
        debugger_attempts: g.debugger_attempts,
        rules: Arc::new(
            g.validators
                .iter()
                .filter(|v| v.kind == "rule")
                .cloned()
                .collect(),
        ),
        llm_validators,
        agreement: g.agreement_check.then(|| {
            agree::setup(
                &project.schema,
                &project.glossary,
                project
                    .gold
                    .iter()
                    .map(|p| (p.question.as_str(), p.sql.as_str())),
            )
        }),
        sql_template: prompts::load_in("schema_to_sql", &g.prompts, &project.schema.dialect)?,
        debug_template: prompts::load_in("debugger", &g.prompts, &project.schema.dialect)?,
        existing,
        stats: Mutex::new(BTreeMap::new()),
        done: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
        progress,
        prompt_failures: Mutex::new(BTreeSet::new()),
        first_failure: Mutex::new(None),
    }))
}

/// Failures of generator calls that a resumed run asks again: the server's, not the
/// answer's (an answer that did not fit would come back the same from the cache).
const RETRIED_ON_RESUME: &[ErrorKind] = &[
    ErrorKind::Auth,
    ErrorKind::RateLimit,
    ErrorKind::Timeout,
    ErrorKind::Server,
    ErrorKind::ModelUnavailable,
    ErrorKind::Network,
    ErrorKind::Cancelled,
    ErrorKind::Config,
    ErrorKind::Unsupported,
    ErrorKind::Halted,
];

/// A question to add to a run (gap filling): its SQL is written by schema-to-SQL when not
/// given; either way it is validated, debugged and stored like any generated pair.
#[derive(Debug, Clone)]
pub struct NewQuestion {
    pub generator: String,
    pub question: String,
    pub sql: Option<String>,
    /// Deterministic identity within the run (a rerun skips what is stored).
    pub origin: String,
}

/// Adds questions to a run through validation, the debugger loop and the dedup pass;
/// returns how many were stored.
pub async fn add_questions(
    project: &Project,
    store: Arc<Store>,
    client: Arc<LlmClient>,
    run_id: i64,
    items: Vec<NewQuestion>,
) -> Result<usize, GenerateError> {
    // The run is leased (with heartbeats) while pairs are added, so a generation resuming it
    // elsewhere waits its turn, and this refuses a run another process is writing.
    let owner = LeaseOwner::this_process();
    store.lease_existing_run(run_id, &owner)?;
    // Gap filling has no progress stream: a lost lease shows when another process takes the
    // run over (it says so), not here.
    let held = HeldRun::hold(&store, run_id, owner, Arc::new(|_| {}));
    let n = add_questions_leased(project, &store, client, run_id, items).await?;
    held.release()?;
    Ok(n)
}

async fn add_questions_leased(
    project: &Project,
    store: &Arc<Store>,
    client: Arc<LlmClient>,
    run_id: i64,
    items: Vec<NewQuestion>,
) -> Result<usize, GenerateError> {
    let ctx = make_ctx(project, store, client, run_id, Arc::new(|_| {}))?;
    let mut tasks = Vec::new();
    for item in items {
        if ctx.existing.contains(&item.origin) {
            continue;
        }
        let ctx = Arc::clone(&ctx);
        tasks.push(tokio::spawn(async move {
            let sql = match item.sql {
                Some(s) => Ok(s),
                None => write_sql(&ctx, &item.question, &item.question, "").await,
            };
            finish_pair(
                &ctx,
                &item.generator,
                None,
                &item.question,
                sql,
                &item.origin,
            )
            .await;
        }));
    }
    let n = tasks.len();
    for t in tasks {
        t.await
            .map_err(|e| GenerateError::Config(format!("a gap-filling task failed: {e}")))?;
    }
    mark_duplicates_and_leakage(project, store, run_id)?;
    Ok(n)
}

/// Runs (or resumes) a generation run over the project's gold set.
pub async fn run(
    project: &Project,
    store: Arc<Store>,
    client: Arc<LlmClient>,
    snapshot: i64,
    opts: &GenerateOptions,
    progress: Progress,
) -> Result<GenerateSummary, GenerateError> {
    let specs = generator_specs(project)?;
    let g = &project.config.generate;
    let (run_id, resumed, owner) = pick_run(project, &store, &client, opts, snapshot)?;
    client.set_run(run_id);
    let held = HeldRun::hold(&store, run_id, owner, Arc::clone(&progress));
    if resumed {
        // Calls that failed because of the server (a refused key, an outage) are asked again;
        // answers that did not fit stay failed (asking again would get the cached answer).
        store.clear_generation_failures(run_id, RETRIED_ON_RESUME)?;
    }
    // A resumed run goes on with the gold pairs it started with: its pairs' origins name
    // their ids, which a new snapshot of the inputs (the cause of a failure fixed in
    // config.yml) numbers afresh.
    let mut gold = match (resumed, store.run(run_id)?.snapshot_id) {
        (true, Some(snapshot)) => store.gold_set_of(SetName::Gold, snapshot)?,
        _ => Vec::new(),
    };
    if gold.is_empty() {
        gold = store.gold_set(SetName::Gold)?;
    }
    let gold: Vec<StoredGold> = gold
        .into_iter()
        .filter(|p| opts.only_gold.is_empty() || opts.only_gold.contains(&(p.position as usize)))
        .collect();
    let ctx = make_ctx(project, &store, client, run_id, Arc::clone(&progress))?;
    // Pairs only: the run's recorded failures are origins too, but nothing was stored by them.
    let skipped_existing = store
        .count_pairs_by_status(Some(run_id))?
        .values()
        .sum::<u64>() as usize;

    let mut tasks = Vec::new();
    for spec in &specs {
        for gp in &gold {
            for call in 0..spec.calls {
                ctx.total.fetch_add(1, Ordering::Relaxed);
                let ctx = Arc::clone(&ctx);
                let spec = spec.clone();
                let gp = gp.clone();
                tasks.push(tokio::spawn(async move {
                    generator_call(&ctx, &spec, &gp, call).await;
                    let done = ctx.done.fetch_add(1, Ordering::Relaxed) + 1;
                    (ctx.progress)(GenerateEvent::Questions {
                        done,
                        total: ctx.total.load(Ordering::Relaxed),
                    });
                }));
            }
        }
    }
    if opts.only_gold.is_empty() {
        for (level, n) in sql_first_mix(&project.gold, g.sql_first, SqlDialect::of(&project.schema))
        {
            for k in 0..n {
                ctx.total.fetch_add(1, Ordering::Relaxed);
                let ctx = Arc::clone(&ctx);
                tasks.push(tokio::spawn(async move {
                    sql_first_call(&ctx, level, k).await;
                    let done = ctx.done.fetch_add(1, Ordering::Relaxed) + 1;
                    (ctx.progress)(GenerateEvent::Questions {
                        done,
                        total: ctx.total.load(Ordering::Relaxed),
                    });
                }));
            }
        }
    }
    for t in tasks {
        if let Err(e) = t.await {
            store.finish_run(
                run_id,
                RunStatus::Failed,
                None,
                Some(&format!("a task failed: {e}")),
            )?;
            return Err(GenerateError::Config(format!(
                "a generation task failed: {e}"
            )));
        }
    }
    if ctx.client.cancel_token().is_cancelled() {
        store.finish_run(
            run_id,
            RunStatus::Cancelled,
            None,
            Some("cancelled by the user"),
        )?;
    }
    let calls = ctx.total.load(Ordering::Relaxed);
    let failed_calls: usize = ctx
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .map(|s| s.call_failures)
        .sum();
    let failure = match ctx.client.halted() {
        Some(reason) => Some(reason),
        None if calls > 0 && failed_calls >= calls => Some(format!(
            "every one of its {calls} generator calls failed; the first: {}",
            ctx.first_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default()
        )),
        None => None,
    };
    if let Some(reason) = failure
        && !ctx.client.cancel_token().is_cancelled()
    {
        // Pairs made before the failure are kept, and dedup marks them as usual.
        mark_duplicates_and_leakage(project, &store, run_id)?;
        store.finish_run(run_id, RunStatus::Failed, None, Some(&reason))?;
        held.release()?;
        return Err(GenerateError::RunFailed { run_id, reason });
    }

    (progress)(GenerateEvent::Dedup);
    mark_duplicates_and_leakage(project, &store, run_id)?;
    let mut by_generator = ctx.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Recount from the store, so a resumed run reports the whole run.
    recount(&store, run_id, &mut by_generator)?;
    explain_empty_generators(project, &specs, &mut by_generator);
    let summary = GenerateSummary {
        run_id,
        resumed,
        by_generator,
        skipped_existing,
        diversity: diversity(&store, run_id)?,
    };
    if !ctx.client.cancel_token().is_cancelled() {
        store.finish_run(
            run_id,
            RunStatus::Completed,
            Some(&serde_json::to_string(&summary).unwrap_or_default()),
            None,
        )?;
    }
    held.release()?;
    Ok(summary)
}

/// The literals of a query in order (strings unquoted, numbers as written), read in the
/// target's dialect (on PostgreSQL `E'x'` and `$$x$$` are strings).
fn literals(sql: &str, dialect: SqlDialect) -> Vec<String> {
    use sqlparser::tokenizer::Token;
    dialect
        .tokenize(sql)
        .map(|toks| {
            toks.into_iter()
                .filter_map(|t| match t {
                    Token::Number(n, _) => Some(n),
                    Token::SingleQuotedString(s)
                    | Token::EscapedStringLiteral(s)
                    | Token::UnicodeStringLiteral(s) => Some(s),
                    Token::DollarQuotedString(s) => Some(s.value),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a question names a literal: the value (without LIKE's `%`) as words.
fn names_literal(question: &str, literal: &str) -> bool {
    let v = literal.trim_matches('%').to_lowercase();
    !v.is_empty() && question.to_lowercase().contains(&v)
}

/// How many SQL-first pairs to ask per level: `per_level` × 4 in all, shared out like the
/// Spider hardness mix of the gold set (easy → simple, medium → moderate, hard → complex,
/// extra → highly complex), by largest remainder; evenly when no gold query parses (in
/// `dialect`, the target's).
pub fn sql_first_mix(
    gold: &[GoldPair],
    per_level: usize,
    dialect: SqlDialect,
) -> Vec<(&'static str, usize)> {
    const LEVELS: [&str; 4] = ["simple", "moderate", "complex", "highly_complex"];
    let total = per_level * 4;
    let mut counts = [0usize; 4];
    for g in gold {
        if let Ok(h) = crate::sql::analyze::hardness_in(&g.sql, dialect) {
            counts[h as usize] += 1;
        }
    }
    let seen: usize = counts.iter().sum();
    if seen == 0 {
        return LEVELS.iter().map(|l| (*l, per_level)).collect();
    }
    let mut share: Vec<(usize, usize, usize)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (i, total * c / seen, total * c % seen))
        .collect();
    let mut left = total - share.iter().map(|s| s.1).sum::<usize>();
    share.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    for s in share.iter_mut() {
        if left == 0 {
            break;
        }
        s.1 += 1;
        left -= 1;
    }
    share.sort_by_key(|s| s.0);
    share.into_iter().map(|(i, n, _)| (LEVELS[i], n)).collect()
}

/// Says why each generator that was asked made no question: every call failed, nothing in
/// the gold set it can work on, or the model gave nothing usable.
fn explain_empty_generators(
    project: &Project,
    specs: &[GeneratorSpec],
    stats: &mut BTreeMap<String, GeneratorStats>,
) {
    let splittable = project.gold.iter().any(|g| {
        let upper = g.sql.to_uppercase();
        upper.contains(" JOIN ") || upper.matches("SELECT").count() > 1
    });
    for (name, g) in stats.iter_mut() {
        if g.asked == 0 || g.generated > 0 {
            continue;
        }
        let calls = specs
            .iter()
            .find(|s| &s.name == name)
            .map_or(0, |s| s.calls * project.gold.len());
        g.why_none = Some(if calls > 0 && g.call_failures >= calls {
            format!(
                "every one of its {} calls failed (the run's failures say why)",
                g.call_failures
            )
        } else if name == "decomposer" && !splittable {
            "no gold query has a subquery or join to split".to_string()
        } else if g.call_failures > 0 {
            format!(
                "{} of its calls failed and the others gave no usable question",
                g.call_failures
            )
        } else {
            "the model gave no usable question for any gold pair".to_string()
        });
    }
}

/// Status counts from the store into the per-generator stats (asked/generated/call
/// failures stay as counted by this process).
fn recount(
    store: &Store,
    run_id: i64,
    stats: &mut BTreeMap<String, GeneratorStats>,
) -> Result<(), GenerateError> {
    for s in stats.values_mut() {
        s.valid = 0;
        s.fixed = 0;
        s.suspect = 0;
        s.failed = 0;
        s.empty = 0;
        s.duplicate = 0;
        s.leakage = 0;
    }
    let pairs = store.pairs(&PairFilter {
        run_id: Some(run_id),
        ..Default::default()
    })?;
    for p in pairs {
        let s = stats.entry(p.generator.clone()).or_default();
        let empty = p.notes.empty_result;
        match p.status {
            PairStatus::Valid | PairStatus::Accepted => s.valid += 1,
            PairStatus::Fixed => s.fixed += 1,
            PairStatus::Suspect => s.suspect += 1,
            PairStatus::Invalid | PairStatus::Rejected | PairStatus::Pending => {
                s.failed += 1;
                s.empty += empty as usize;
            }
            PairStatus::Duplicate => s.duplicate += 1,
            PairStatus::Leakage => s.leakage += 1,
        }
    }
    // A failed call counts as a failed question, as it did when it was a placeholder pair.
    for f in store.generation_failures(run_id)? {
        stats.entry(f.generator).or_default().failed += 1;
    }
    Ok(())
}

/// Questions out of an answer: the fan-out fields, strings or lists; a plain-text answer is
/// split into lines.
fn questions_from(resp_json: Option<&Json>, text: &str, fan_out: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(j) = resp_json {
        for f in fan_out {
            match &j[f.as_str()] {
                Json::String(s) => out.push(s.clone()),
                Json::Array(items) => {
                    out.extend(items.iter().filter_map(|i| i.as_str().map(String::from)))
                }
                _ => {}
            }
        }
    } else {
        out.extend(text.lines().map(|l| {
            l.trim_start_matches(['-', '*', ' ', '1', '2', '3', '.', ')'])
                .to_string()
        }));
    }
    let mut seen = BTreeSet::new();
    out.into_iter()
        .map(|q| q.trim().to_string())
        .filter(|q| q.len() > 3 && seen.insert(normalize_question(q)))
        .collect()
}

async fn generator_call(ctx: &Ctx, spec: &GeneratorSpec, gold: &StoredGold, call: usize) {
    let n_fields = spec.fan_out.len().max(1);
    ctx.stat(&spec.name, |s| s.asked += n_fields);
    // On resume, a call whose every question is stored is skipped (its answer is cached
    // anyway, but this spares the SQL steps).
    let prefix = format!("{}:{}:{}:", spec.name, gold.id, call);
    let vars = ctx.vars(&gold.question, &gold.sql);
    let prompt = match spec.template.render(&vars) {
        Ok(p) => p,
        Err(e) => {
            ctx.stat(&spec.name, |s| s.call_failures += 1);
            record_failure(
                ctx,
                &spec.name,
                Some(gold.id),
                &format!("{prefix}prompt"),
                ErrorKind::Prompt,
                e.to_string(),
            );
            return;
        }
    };
    let mut req = LlmRequest::new(
        &spec.name,
        vec![Message::system(&spec.template.role), Message::user(prompt)],
    )
    .with_schema(spec.output.clone());
    req.sampling = Sampling {
        temperature: Some(0.7),
        max_tokens: Some(512),
        seed: Some(call as u64),
    };
    if spec.builtin {
        req = req.with_task(Task::SimilarQuestions {
            generator: spec.name.clone(),
            question: gold.question.clone(),
            sql: gold.sql.clone(),
            count: n_fields,
            offset: call,
        });
    }
    ctx.forget_failure(&format!("{prefix}prompt"));
    let resp = match ctx.client.call(&req).await {
        Ok(r) => {
            ctx.forget_failure(&format!("{prefix}call"));
            r
        }
        // Not sent: the run fails and a resumed run asks again.
        Err(LlmError::Halted { .. }) => return,
        Err(e) => {
            ctx.stat(&spec.name, |s| s.call_failures += 1);
            record_failure(
                ctx,
                &spec.name,
                Some(gold.id),
                &format!("{prefix}call"),
                e.kind(),
                format!("{} call failed ({}): {e}", spec.name, e.kind()),
            );
            return;
        }
    };
    let questions = questions_from(resp.json.as_ref(), &resp.text, &spec.fan_out);
    ctx.stat(&spec.name, |s| s.generated += questions.len());
    for (j, q) in questions.iter().enumerate() {
        let origin = format!("{prefix}{j}");
        if ctx.existing.contains(&origin) {
            continue;
        }
        let sql = if spec.keeps_sql {
            Ok(gold.sql.clone())
        } else {
            write_sql(ctx, q, &gold.question, &gold.sql).await
        };
        finish_pair(ctx, &spec.name, Some(gold.id), q, sql, &origin).await;
    }
}

async fn sql_first_call(ctx: &Ctx, level: &str, k: usize) {
    let name = "sql_first";
    ctx.stat(name, |s| s.asked += 1);
    let origin = format!("sql_first:{level}:{k}");
    if ctx.existing.contains(&origin) {
        return;
    }
    let g = match prompts::load_in("sql_first", &BTreeMap::new(), &ctx.schema.dialect) {
        Ok(t) => t,
        Err(e) => return ctx.prompt_failed("sql_first", &e),
    };
    let mut vars = ctx.vars("", "");
    vars.insert("level", level.replace('_', " "));
    let prompt = match g.render(&vars) {
        Ok(p) => p,
        Err(e) => return ctx.prompt_failed("sql_first", &e),
    };
    let mut req = LlmRequest::new(name, vec![Message::system(&g.role), Message::user(prompt)])
        .with_schema(OutputSchema::new(
            "sql_first",
            &[("sql", "str"), ("question", "str")],
        ))
        .with_task(Task::SqlFirst {
            level: level.to_string(),
            offset: k,
        });
    req.sampling = Sampling {
        temperature: Some(0.8),
        max_tokens: Some(512),
        seed: Some(k as u64),
    };
    match ctx.client.call(&req).await {
        Ok(resp) => {
            let j = resp.json.unwrap_or(Json::Null);
            let question = j["question"].as_str().unwrap_or("").trim().to_string();
            let sql = j["sql"].as_str().unwrap_or("").to_string();
            if question.is_empty() || sql.is_empty() {
                return;
            }
            ctx.stat(name, |s| s.generated += 1);
            finish_pair(ctx, name, None, &question, Ok(sql), &origin).await;
        }
        Err(LlmError::Halted { .. }) => {}
        Err(e) => {
            ctx.stat(name, |s| s.call_failures += 1);
            // Its origin is the step's own key, so a resumed run does not ask again unless
            // the failure was the server's (see RETRIED_ON_RESUME).
            record_failure(ctx, name, None, &origin, e.kind(), e.to_string());
        }
    }
}

/// A failed generator call, kept visible in the run (not silently dropped); when even that
/// cannot be stored, the run says so and goes on.
fn record_failure(
    ctx: &Ctx,
    generator: &str,
    gold_pair_id: Option<i64>,
    origin: &str,
    error_kind: ErrorKind,
    error: String,
) {
    ctx.first_failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(|| error.clone());
    let failure = NewGenerationFailure {
        generator: generator.to_string(),
        gold_pair_id,
        origin_key: origin.to_string(),
        error_kind,
        error,
    };
    if let Err(e) = ctx.store.record_generation_failure(ctx.run_id, &failure) {
        (ctx.progress)(GenerateEvent::Warning(format!(
            "could not record a failed {generator} call ({}): {e}",
            failure.error
        )));
    }
}

/// The schema-to-SQL step.
async fn write_sql(
    ctx: &Ctx,
    question: &str,
    original_question: &str,
    original_sql: &str,
) -> Result<String, StepError> {
    let mut vars = ctx.vars(question, "");
    vars.insert("original_question", original_question.to_string());
    vars.insert("original_sql", original_sql.to_string());
    let prompt = ctx
        .sql_template
        .render(&vars)
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let req = LlmRequest::new(
        "schema_to_sql",
        vec![
            Message::system(&ctx.sql_template.role),
            Message::user(prompt),
        ],
    )
    .with_schema(OutputSchema::new("sql_query", &[("sql_query", "str")]))
    .with_task(Task::QuestionToSql {
        question: question.to_string(),
    });
    let resp = ctx
        .client
        .call(&req)
        .await
        .map_err(|e| match e.is_permanent() {
            true => StepError::Blocked(e),
            false => StepError::Failed(format!("schema-to-SQL call failed ({}): {e}", e.kind())),
        })?;
    let raw = resp
        .json
        .as_ref()
        .and_then(|j| j["sql_query"].as_str())
        .map(String::from)
        .unwrap_or(resp.text);
    extract_sql(&raw)
        .ok_or_else(|| StepError::Failed("the schema-to-SQL answer holds no SQL".to_string()))
}

/// Why a step of a pair was not done.
enum StepError {
    /// An LLM call failed with an error retrying will not fix (a refused key, a server that
    /// cannot be reached, the client stopped sending): the pair is not at fault, so it is not
    /// stored as failed; a resumed run makes it once the cause is fixed.
    Blocked(LlmError),
    /// The pair's own failure, stored with it.
    Failed(String),
}

/// A pair whose calls were blocked (see [`StepError::Blocked`]): recorded as a failed step
/// of the run, of the error's kind, which a resumed run asks again (RETRIED_ON_RESUME); a
/// call that was not sent at all is not recorded (the run fails, and a resumed run makes it).
fn blocked(ctx: &Ctx, generator: &str, gold_id: Option<i64>, origin: &str, e: &LlmError) {
    if !matches!(e, LlmError::Halted { .. }) {
        record_failure(
            ctx,
            generator,
            gold_id,
            origin,
            e.kind(),
            format!("a {generator} pair was not made ({}): {e}", e.kind()),
        );
    }
}

async fn run_validation(ctx: &Ctx, sql: &str) -> Validation {
    let (db, schema, rules, sql) = (
        Arc::clone(&ctx.db),
        Arc::clone(&ctx.schema),
        Arc::clone(&ctx.rules),
        sql.to_string(),
    );
    tokio::task::spawn_blocking(move || validate(&db, &schema, &sql, &rules))
        .await
        .unwrap_or_else(|e| Validation {
            ok: false,
            error_kind: Some("error".into()),
            error: Some(format!("validation failed: {e}")),
            row_count: None,
            elapsed_ms: None,
            flags: Vec::new(),
            fingerprint: None,
            preview: None,
        })
}

fn to_new_validation(attempt: i64, sql: &str, v: &Validation) -> NewValidation {
    NewValidation {
        pair_id: 0,
        attempt,
        sql: sql.to_string(),
        ok: v.ok,
        error_kind: v.error_kind.clone(),
        error: v.error.clone(),
        row_count: v.row_count.map(|r| r as i64),
        elapsed_ms: v.elapsed_ms,
        flags_json: (!v.flags.is_empty()).then(|| json!(v.flags).to_string()),
        result_preview_json: v.preview.as_ref().map(|p| json!(p).to_string()),
    }
}

/// Validates, runs the debugger loop, asks the LLM validators, and stores the pair with its
/// whole history in one transaction.
async fn finish_pair(
    ctx: &Ctx,
    generator: &str,
    gold_id: Option<i64>,
    question: &str,
    sql: Result<String, StepError>,
    origin: &str,
) {
    let mut attempts: Vec<NewValidation> = Vec::new();
    let mut notes = PairNotes::default();
    let (final_sql, status, last) = match sql {
        Err(StepError::Blocked(e)) => return blocked(ctx, generator, gold_id, origin, &e),
        Err(StepError::Failed(message)) => {
            notes.llm_error = Some(message.clone());
            attempts.push(NewValidation {
                attempt: 1,
                ok: false,
                error_kind: Some("no_sql".into()),
                error: Some(message),
                ..Default::default()
            });
            (String::new(), PairStatus::Invalid, None)
        }
        Ok(mut sql) => {
            let mut v = run_validation(ctx, &sql).await;
            attempts.push(to_new_validation(1, &sql, &v));
            let mut attempt = 1;
            while !v.ok && attempt <= ctx.debugger_attempts {
                attempt += 1;
                let fixed = match debug_sql(ctx, question, &sql, &v).await {
                    Ok(fixed) => fixed,
                    Err(e) => return blocked(ctx, generator, gold_id, origin, &e),
                };
                let Some(fixed) = fixed else {
                    attempts.push(NewValidation {
                        attempt: attempt as i64,
                        sql: sql.clone(),
                        ok: false,
                        error_kind: Some("debugger".into()),
                        error: Some("the debugger gave no corrected SQL".into()),
                        ..Default::default()
                    });
                    continue;
                };
                sql = fixed;
                v = run_validation(ctx, &sql).await;
                attempts.push(to_new_validation(attempt as i64, &sql, &v));
            }
            let status = match (v.ok, attempt) {
                (true, 1) => PairStatus::Valid,
                (true, _) => PairStatus::Fixed,
                (false, _) => PairStatus::Invalid,
            };
            if !v.ok
                && matches!(
                    v.error_kind.as_deref(),
                    Some("empty_result" | "all_null" | "zero_count")
                )
            {
                notes.empty_result = true;
            }
            (sql, status, Some(v))
        }
    };
    let mut status = status;
    // LLM validators: question-to-SQL consistency.
    if matches!(status, PairStatus::Valid | PairStatus::Fixed) {
        for (v, t) in &ctx.llm_validators {
            let mut vars = ctx.vars(question, &final_sql);
            vars.insert("instruction", v.instruction.clone().unwrap_or_default());
            let prompt = match t.render(&vars) {
                Ok(p) => p,
                Err(e) => {
                    ctx.prompt_failed(&format!("validator {}", v.name), &e);
                    continue;
                }
            };
            let req = LlmRequest::new(
                &format!("validator:{}", v.name),
                vec![Message::system(&t.role), Message::user(prompt)],
            )
            .with_schema(OutputSchema::new(
                "validation",
                &[("is_valid", "bool"), ("explanation", "str")],
            ));
            match ctx.client.call(&req).await {
                Ok(resp) => {
                    let ok = resp
                        .json
                        .as_ref()
                        .and_then(|j| j["is_valid"].as_bool())
                        .unwrap_or(false);
                    if !ok {
                        notes
                            .disagreement
                            .push(validator_reason(&v.name, &resp.json));
                    }
                    notes
                        .validators
                        .push((v.name.clone(), resp.json.unwrap_or(Json::Null)));
                }
                Err(e) if e.is_permanent() => {
                    return blocked(ctx, generator, gold_id, origin, &e);
                }
                Err(e) => {
                    notes
                        .validators
                        .push((v.name.clone(), json!({"error": e.to_string()})));
                }
            }
        }
    }
    // The agreement check: the SQL runs, but does it do what the question asks?
    if matches!(status, PairStatus::Valid | PairStatus::Fixed)
        && let Some((names, conventions)) = &ctx.agreement
    {
        notes.disagreement.extend(agree::check_with(
            question,
            &final_sql,
            &ctx.schema,
            names,
            conventions,
        ));
    }
    if matches!(status, PairStatus::Valid | PairStatus::Fixed) && !notes.disagreement.is_empty() {
        status = PairStatus::Suspect;
    }
    // The client stopped sending (a refused key, a server gone): this pair's SQL, debugger
    // or validator calls were not all made, so it is not stored; a resumed run makes it
    // again, its question coming from the cache.
    if ctx.client.halted().is_some() {
        return;
    }
    let analysis = analyze(&final_sql, Some(&ctx.schema)).ok();
    let pair = NewPair {
        origin_key: origin.to_string(),
        generator: generator.to_string(),
        parent_gold_id: gold_id,
        parent_pair_id: None,
        question: question.to_string(),
        sql: final_sql.clone(),
        status: Some(status),
        notes,
        template: (!final_sql.is_empty())
            .then(|| template_in(&final_sql, SqlDialect::of(&ctx.schema))),
        result_fingerprint: last.and_then(|v| v.fingerprint),
        analysis: analysis.map(|a| PairAnalysis {
            concepts: a
                .concepts
                .iter()
                .map(|(c, n)| (c.name().to_string(), *n))
                .collect(),
            tables: a.tables,
            hardness: a.hardness.name().to_string(),
            level: Some(a.level.name().to_string()),
        }),
    };
    match ctx
        .store
        .insert_pair_with_validations(ctx.run_id, &pair, &attempts)
    {
        Ok(_) => (ctx.progress)(GenerateEvent::PairStored {
            generator: generator.to_string(),
        }),
        // The run goes on; the pair is asked for again when the run is resumed (its origin
        // key is not in the store).
        Err(e) => (ctx.progress)(GenerateEvent::Warning(format!(
            "could not store a {generator} pair (it is retried on resume): {e}"
        ))),
    }
}

/// Why an LLM validator said no: its explanation, else its whole answer.
fn validator_reason(name: &str, answer: &Option<Json>) -> String {
    let why = answer
        .as_ref()
        .and_then(|j| j["explanation"].as_str())
        .map(str::to_string)
        .or_else(|| answer.as_ref().map(|j| j.to_string()))
        .unwrap_or_else(|| "no answer".to_string());
    format!("validator {name}: {why}")
}

/// One debugger call, given the error and the previous attempt: the corrected SQL, if any;
/// an error retrying will not fix is returned (the pair is blocked, not failed).
async fn debug_sql(
    ctx: &Ctx,
    question: &str,
    sql: &str,
    v: &Validation,
) -> Result<Option<String>, LlmError> {
    let mut vars = ctx.vars(question, sql);
    let error = v.error.clone().unwrap_or_default();
    vars.insert("error_message", error.clone());
    vars.insert(
        "error_explanation",
        format!(
            "Query is invalid ({}): {error}",
            v.error_kind.clone().unwrap_or_default()
        ),
    );
    let prompt = match ctx.debug_template.render(&vars) {
        Ok(p) => p,
        Err(e) => {
            ctx.prompt_failed("debugger", &e);
            return Ok(None);
        }
    };
    let req = LlmRequest::new(
        "debugger",
        vec![
            Message::system(&ctx.debug_template.role),
            Message::user(prompt),
        ],
    )
    .with_schema(OutputSchema::new("corrected", &[("corrected_sql", "str")]))
    .with_task(Task::DebugSql {
        question: question.to_string(),
        sql: sql.to_string(),
        error,
    });
    let resp = match ctx.client.call(&req).await {
        Ok(resp) => resp,
        Err(e) if e.is_permanent() => return Err(e),
        Err(_) => return Ok(None),
    };
    let raw = resp
        .json
        .as_ref()
        .and_then(|j| j["corrected_sql"].as_str())
        .map(String::from)
        .unwrap_or(resp.text);
    Ok(extract_sql(&raw).filter(|s| s.trim() != sql.trim()))
}

/// Words of a question, for near-duplicate detection.
fn word_set(q: &str) -> BTreeSet<String> {
    normalize_question(q)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

fn near_identical(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    if a.len() < 4 || b.len() < 4 {
        return a == b;
    }
    let inter = a.intersection(b).count() as f64;
    let union = a.union(b).count() as f64;
    inter / union >= 0.9
}

/// Counts of pairs marked in the dedup pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Marks {
    pub duplicate: usize,
    pub leakage: usize,
}

/// Marks, among the run's valid and fixed pairs (oldest first): leakage (the question or the
/// SQL template of an eval item), duplicates of a gold pair or of an earlier pair (same SQL
/// template and result, except for paraphrases, whose point is the same SQL; or a
/// near-identical question).
pub fn mark_duplicates_and_leakage(
    project: &Project,
    store: &Store,
    run_id: i64,
) -> Result<Marks, GenerateError> {
    let mut marks = Marks::default();
    // What each key was first seen in, so a duplicate can say what it repeats.
    let said = |kind: &str, n: i64, question: &str| json!({kind: n, "question": question});
    let mut eval_questions: BTreeMap<String, Json> = BTreeMap::new();
    let mut eval_templates: BTreeMap<String, Json> = BTreeMap::new();
    // Templates and literals as the target reads them, like the pairs' stored templates.
    let dialect = SqlDialect::of(&project.schema);
    let template = |sql: &str| template_in(sql, dialect);
    let literals = |sql: &str| literals(sql, dialect);
    if !project.eval_is_gold {
        for (i, p) in project.eval.iter().enumerate() {
            let of = said("eval", i as i64 + 1, &p.question);
            eval_questions
                .entry(normalize_question(&p.question))
                .or_insert_with(|| of.clone());
            eval_templates.entry(template(&p.sql)).or_insert(of);
        }
    }
    let mut seen_sql: BTreeMap<(String, String), Json> = BTreeMap::new();
    let mut seen_q: BTreeMap<String, Json> = BTreeMap::new();
    let mut by_template: HashMap<String, Vec<(BTreeSet<String>, Json)>> = HashMap::new();
    // Kept pairs by template with their literals, for the literal-only rule below; templates
    // whose literals the gold set itself varies are exempt.
    let mut literals_of: HashMap<String, Vec<(Vec<String>, Json)>> = HashMap::new();
    let mut gold_literals: HashMap<String, BTreeSet<Vec<String>>> = HashMap::new();
    for g in &project.gold {
        gold_literals
            .entry(template(&g.sql))
            .or_default()
            .insert(literals(&g.sql));
    }
    let gold_varies = |t: &str| gold_literals.get(t).is_some_and(|l| l.len() > 1);
    for (i, g) in project.gold.iter().enumerate() {
        let of = said("gold", i as i64 + 1, &g.question);
        let t = template(&g.sql);
        if let Ok(r) = project.db.query(&g.sql) {
            seen_sql
                .entry((t.clone(), crate::pipeline::validate::fingerprint(&r)))
                .or_insert_with(|| of.clone());
        }
        seen_q
            .entry(normalize_question(&g.question))
            .or_insert_with(|| of.clone());
        by_template
            .entry(t)
            .or_default()
            .push((word_set(&g.question), of));
    }
    // Pairs of earlier runs count as seen too: a new run must not repeat them.
    let candidates = store.pairs(&PairFilter {
        statuses: vec![PairStatus::Valid, PairStatus::Fixed, PairStatus::Accepted],
        ..Default::default()
    })?;
    for p in candidates {
        let t = p.template.clone().unwrap_or_else(|| template(&p.sql));
        let nq = normalize_question(&p.question);
        let words = word_set(&p.question);
        let key = (t.clone(), p.result_fingerprint.clone().unwrap_or_default());
        let mine = p.run_id == run_id && p.status != PairStatus::Accepted;
        let leaked = eval_questions.get(&nq).or_else(|| eval_templates.get(&t));
        let same_sql = (p.generator != "paraphrase" && p.result_fingerprint.is_some())
            .then(|| seen_sql.get(&key))
            .flatten();
        let same_question = seen_q.get(&nq).or_else(|| {
            by_template.get(&t).and_then(|qs| {
                qs.iter()
                    .find(|(w, _)| near_identical(w, &words))
                    .map(|(_, of)| of)
            })
        });
        if mine && let Some(of) = leaked {
            store.mark_repeat(p.id, PairStatus::Leakage, of)?;
            marks.leakage += 1;
            continue;
        }
        if mine && let Some(of) = same_sql.or(same_question) {
            store.mark_repeat(p.id, PairStatus::Duplicate, of)?;
            marks.duplicate += 1;
            continue;
        }
        // The SQL of a kept pair with only literals changed that the question does not name
        // (a rounding, a limit, a value it never says) is the same example again.
        let lits = literals(&p.sql);
        let unnamed = mine
            .then(|| literals_of.get(&t))
            .flatten()
            .filter(|_| !gold_varies(&t))
            .and_then(|kept| {
                kept.iter().find(|(other, _)| {
                    other.len() == lits.len()
                        && lits
                            .iter()
                            .zip(other)
                            .filter(|(a, b)| a != b)
                            .all(|(a, _)| !names_literal(&p.question, a))
                })
            });
        if let Some((_, of)) = unnamed {
            store.mark_repeat(p.id, PairStatus::Duplicate, of)?;
            marks.duplicate += 1;
            continue;
        }
        let of = said("pair", p.id, &p.question);
        literals_of
            .entry(t.clone())
            .or_default()
            .push((lits, of.clone()));
        seen_sql.entry(key).or_insert_with(|| of.clone());
        seen_q.entry(nq).or_insert_with(|| of.clone());
        by_template.entry(t).or_default().push((words, of));
    }
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_read_in_the_targets_dialect() {
        let sql = "SELECT name FROM items WHERE note = E'it''s' OR note = $$a b$$ LIMIT 3";
        assert_eq!(
            literals(sql, SqlDialect::Postgres),
            ["it's", "a b", "3"],
            "PostgreSQL's escape and dollar-quoted strings"
        );
        // SQLite's tokens: the E'' string's text, no dollar-quoted string (it reads
        // parameters and a word there).
        assert_eq!(literals(sql, SqlDialect::Sqlite), ["it's", "3"]);
    }
}
