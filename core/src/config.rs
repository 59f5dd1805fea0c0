//! `config.yml`: the original's keys (api, model, database, paths, memory_tuning) plus lode's
//! own sections (llm profiles, execution limits, ui). Paths resolve relative to the config
//! file; `${VAR}` in string values is replaced from the environment; `LAMINI_API_KEY` and
//! `LAMINI_API_URL` override the file. A key never appears in Debug or Display output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::{InputError, Warning, did_you_mean};

/// An API key or other secret, held in a [`secrecy::SecretString`] (zeroed when dropped).
/// Debug, Display and Serialize give `[redacted]`; only `expose` reveals it.
#[derive(Clone)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(secrecy::SecretString::from(value.into()))
    }
    /// The secret itself, for the one place that sends it (an HTTP header).
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// `text` with every known secret and every credential-looking token replaced by
/// `[redacted]`, for error texts that come from a server (which may echo the request's
/// `Authorization` header) before they are shown, stored or written. Known secrets shorter
/// than 4 characters are left to the patterns: `Bearer <token>`, and the value after
/// `api_key`, `x-api-key`, `access_token`, `client_secret`, `password`, `authorization`, …
/// followed by `=` or `:` (quoted or not, JSON-escaped or not).
pub fn redact(text: &str, known: &[Secret]) -> String {
    const MARK: &str = "[redacted]";
    let mut out = text.to_string();
    let mut secrets: Vec<&str> = known
        .iter()
        .map(Secret::expose)
        .filter(|s| s.chars().count() >= 4)
        .collect();
    // Longest first, so a key containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, MARK);
        }
    }
    redact_patterns(&out, MARK)
}

/// The pattern half of [`redact`]: ASCII-case-insensitive, on char boundaries only.
fn redact_patterns(text: &str, mark: &str) -> String {
    const NAMES: &[&str] = &[
        "x-api-key",
        "x_api_key",
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "access-token",
        "auth_token",
        "refresh_token",
        "client_secret",
        "secret_key",
        "secret",
        "password",
        "passwd",
        "authorization",
    ];
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let starts = |i: usize, pat: &str| {
        b.len() >= i + pat.len() && b[i..i + pat.len()].eq_ignore_ascii_case(pat.as_bytes())
    };
    // Replaced byte ranges, in order and disjoint.
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if i > 0 && word(b[i - 1]) || !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        // `Bearer <token>`.
        if starts(i, "bearer") && b.get(i + 6).is_some_and(|c| *c == b' ' || *c == b'\t') {
            let mut j = i + 6;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                j += 1;
            }
            let end = past_mark(text, token_end(b, j, false), mark);
            if end > j && !text[j..].starts_with(mark) {
                cuts.push((j, end));
            }
            i = end.max(i + 6);
            continue;
        }
        let Some(name) = NAMES.iter().find(|n| starts(i, n)) else {
            i += 1;
            continue;
        };
        let mut j = i + name.len();
        if b.get(j).is_some_and(|c| word(*c)) {
            i = j;
            continue;
        }
        // The name's closing quote (maybe JSON-escaped), spaces, then `:` or `=`.
        if b.get(j) == Some(&b'\\') && matches!(b.get(j + 1), Some(b'"' | b'\'')) {
            j += 2;
        } else if matches!(b.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if !matches!(b.get(j), Some(b':' | b'=')) {
            i = j.max(i + 1);
            continue;
        }
        j += 1;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        let authorization = name.eq_ignore_ascii_case("authorization");
        let (start, end) = if b.get(j) == Some(&b'\\') && matches!(b.get(j + 1), Some(b'"')) {
            // A JSON-escaped string: up to the next backslash or quote.
            let s = j + 2;
            let mut e = s;
            while e < b.len() && b[e] != b'\\' && b[e] != b'"' {
                e += 1;
            }
            (s, e)
        } else if let Some(q @ (b'"' | b'\'')) = b.get(j).copied() {
            let s = j + 1;
            let mut e = s;
            while e < b.len() && b[e] != q {
                e += if b[e] == b'\\' { 2 } else { 1 };
            }
            (s, e.min(b.len()))
        } else {
            (j, past_mark(text, token_end(b, j, authorization), mark))
        };
        if end > start && !text[start..].starts_with(mark) {
            cuts.push((start, end));
        }
        i = end.max(j);
    }
    if cuts.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in cuts {
        // Every cut starts and ends next to an ASCII byte or the text's end: char boundaries.
        out.push_str(&text[at..s]);
        out.push_str(mark);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

/// A token that ends in the mark's `[redacted` (a secret already replaced) takes its `]`.
fn past_mark(text: &str, end: usize, mark: &str) -> usize {
    let open = &mark[..mark.len() - 1];
    if text[..end].ends_with(open) && text[end..].starts_with(']') {
        end + 1
    } else {
        end
    }
}

/// Where an unquoted token starting at `i` ends: at whitespace (unless `spaces`, for an
/// `Authorization` value like `Basic abc`), a quote, a backslash, or `,;&}]<>` and line ends.
fn token_end(b: &[u8], mut i: usize, spaces: bool) -> usize {
    while i < b.len() {
        let c = b[i];
        let stop = matches!(
            c,
            b'"' | b'\'' | b'\\' | b',' | b';' | b'&' | b'}' | b']' | b'<' | b'>' | b'\n' | b'\r'
        ) || (!spaces && (c == b' ' || c == b'\t'));
        if stop {
            break;
        }
        i += 1;
    }
    i
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    pub url: String,
    pub key: Option<Secret>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            url: "https://app.lamini.ai".into(),
            key: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// The model generators, validators and judges use (the original's `model.default`).
    pub default: String,
    /// The base model to tune.
    pub memory_tuning: String,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            default: "meta-llama/Meta-Llama-3.1-8B-Instruct".into(),
            memory_tuning: "meta-llama/Meta-Llama-3.1-8B-Instruct".into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// A SQLite file (relative to the config file).
    pub path: Option<PathBuf>,
    /// A PostgreSQL database instead: `postgres://user@host:port/database`. The password
    /// comes from the environment variable `password_env` names (default `PGPASSWORD`),
    /// never from this file.
    pub url: Option<String>,
    pub password_env: Option<String>,
    /// Refuse a PostgreSQL role that could write (lode only reads either way).
    pub refuse_writable: bool,
    /// A PEM file of CA certificates trusted for the server's TLS certificate besides the
    /// system's (relative to the config file); the URL's `sslrootcert=` does the same.
    pub ssl_root_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathsConfig {
    pub gold_test_set: Option<PathBuf>,
    /// A held-out evaluation set; without it the gold set doubles as the eval set.
    pub eval_set: Option<PathBuf>,
    pub glossary: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryTuningConfig {
    pub max_steps: u32,
    pub learning_rate: f64,
    pub max_gpus: u32,
    pub max_nodes: u32,
}

impl Default for MemoryTuningConfig {
    fn default() -> Self {
        MemoryTuningConfig {
            max_steps: 120,
            learning_rate: 0.0003,
            max_gpus: 1,
            max_nodes: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionConfig {
    /// Wall-clock limit of one statement, in seconds.
    pub timeout_s: f64,
    pub max_rows: usize,
    pub max_cell_bytes: usize,
    /// The largest text or blob value one statement may build, in MiB (SQLite's
    /// SQLITE_LIMIT_LENGTH): a statement that builds a bigger one is refused.
    pub max_value_mb: usize,
    /// The most memory one result's kept rows may take, in MiB: a bigger result is refused.
    pub max_result_mb: usize,
    /// Worker threads for parallel execution; 0 means all cores.
    pub threads: usize,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        let d = ExecLimits::default();
        ExecutionConfig {
            timeout_s: d.timeout.as_secs_f64(),
            max_rows: d.max_rows,
            max_cell_bytes: d.max_cell_bytes,
            max_value_mb: d.max_value_bytes >> 20,
            max_result_mb: d.max_result_bytes >> 20,
            threads: 0,
        }
    }
}

impl ExecutionConfig {
    pub fn limits(&self) -> ExecLimits {
        ExecLimits {
            timeout: Duration::from_secs_f64(self.timeout_s),
            max_rows: self.max_rows,
            max_cell_bytes: self.max_cell_bytes,
            max_value_bytes: self.max_value_mb << 20,
            max_result_bytes: self.max_result_mb << 20,
        }
    }

    /// Threads to use: the configured number, or every core.
    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// Which client a profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    Openai,
    Lamini,
    Rules,
}

/// A named LLM endpoint (`llm.profiles.NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmProfile {
    pub kind: ProfileKind,
    pub base_url: Option<String>,
    /// Name of the environment variable holding the key (preferred over `api_key`).
    pub api_key_env: Option<String>,
    pub api_key: Option<Secret>,
    pub model: Option<String>,
    pub max_concurrency: usize,
    /// 0 means no limit.
    pub requests_per_minute: u32,
    pub timeout_s: f64,
    /// `max_tokens` of every request that sets none (evaluation, the judge, checks), so a
    /// model that rambles stops instead of running into the timeout.
    pub max_tokens: u32,
    /// Temperature of the answers that are scored: evaluation, the judge, `lode llm check`.
    /// Generators keep their own (0.7-0.8, for variety).
    pub answer_temperature: f64,
    pub extra_body: serde_json::Value,
    /// Seed of the offline rules backend.
    pub seed: u64,
}

impl Default for LlmProfile {
    fn default() -> Self {
        LlmProfile {
            kind: ProfileKind::Rules,
            base_url: None,
            api_key_env: None,
            api_key: None,
            model: None,
            max_concurrency: 8,
            requests_per_minute: 0,
            timeout_s: 60.0,
            max_tokens: crate::llm::DEFAULT_MAX_TOKENS,
            answer_temperature: 0.0,
            extra_body: serde_json::Value::Object(Default::default()),
            seed: 7,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmConfig {
    /// The profile generators and judges use; "rules" when absent.
    pub default: Option<String>,
    pub profiles: BTreeMap<String, LlmProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    pub theme: String,
    pub mouse: bool,
    /// Action name to key, overriding the defaults.
    pub keymap: BTreeMap<String, String>,
    /// Reject reasons offered on the number keys when rejecting (1 is the first).
    pub reject_reasons: Vec<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            theme: "ansi16".into(),
            mouse: false,
            keymap: BTreeMap::new(),
            reject_reasons: [
                "wrong table or join",
                "wrong filter or value",
                "question and SQL disagree",
                "ambiguous question",
                "trivial or unnatural",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// The generation pipeline (`generate:`): how many calls of each generator per gold pair,
/// the debugger's attempts, prompt overrides, and custom generators and validators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateConfig {
    /// Generator name → calls per gold pair (0 turns it off).
    pub per_gold: BTreeMap<String, usize>,
    /// SQL-first pairs per complexity level (simple, moderate, complex, highly_complex).
    pub sql_first: usize,
    /// Debugger attempts for a query that fails validation.
    pub debugger_attempts: usize,
    /// Check that each valid pair's question and SQL agree (direction, filter values,
    /// aggregate, table); a pair that does not is marked `suspect` with the reasons.
    pub agreement_check: bool,
    /// Template name → file replacing the built-in prompt (relative to the config file).
    pub prompts: BTreeMap<String, PathBuf>,
    pub generators: Vec<CustomGenerator>,
    pub validators: Vec<CustomValidator>,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        let per_gold = [
            ("pattern", 1),
            ("variation", 1),
            ("decomposer", 1),
            ("comparative", 0),
            ("edge_case", 0),
            ("granular", 0),
            ("paraphrase", 0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        GenerateConfig {
            per_gold,
            sql_first: 0,
            debugger_attempts: 2,
            agreement_check: true,
            prompts: BTreeMap::new(),
            generators: Vec::new(),
            validators: Vec::new(),
        }
    }
}

/// A generator declared in config: its prompt, answer fields, and which fields are new
/// questions (each becomes a pair, with SQL written by schema-to-SQL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomGenerator {
    pub name: String,
    #[serde(default)]
    pub role: String,
    /// The prompt; placeholders: {question}, {sql}, {schema}, {glossary}.
    pub instruction: String,
    /// Answer field → type (str, int, float, bool, array).
    pub output: BTreeMap<String, String>,
    /// The fields holding new questions (an array field fans out into several).
    pub fan_out: Vec<String>,
    /// Calls per gold pair.
    #[serde(default = "one")]
    pub count: usize,
}

fn one() -> usize {
    1
}

/// A validator declared in config: rules checked on the query and its result, or an LLM
/// asked with an instruction that must answer `is_valid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomValidator {
    pub name: String,
    /// `rule` or `llm`.
    pub kind: String,
    #[serde(default)]
    pub min_rows: Option<usize>,
    /// Tables or `table.column` names the SQL must use.
    #[serde(default)]
    pub must_reference: Vec<String>,
    /// Tables or `table.column` names the SQL must not use.
    #[serde(default)]
    pub must_not_reference: Vec<String>,
    #[serde(default)]
    pub no_select_star: bool,
    #[serde(default)]
    pub max_ms: Option<f64>,
    /// A query over the result (as table `result`) whose first cell must be true.
    #[serde(default)]
    pub check_sql: Option<String>,
    /// For `llm`: the instruction; placeholders {question}, {sql}, {schema}, {glossary}.
    #[serde(default)]
    pub instruction: Option<String>,
}

/// Tuning (`tune:`): which provider, which pairs, the split, and provider settings. Lamini
/// takes the original's `model.memory_tuning` and `memory_tuning` sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TuneConfig {
    /// memory (offline), lamini, openai or local.
    pub provider: String,
    /// Also train on valid pairs nobody reviewed (default: accepted pairs only).
    pub include_valid: bool,
    /// Share of pairs held out for validation.
    pub validation_split: f64,
    pub seed: u64,
    /// Fewer training examples than this is refused before submitting.
    pub min_examples: usize,
    /// Seconds between status polls when watching.
    pub poll_s: f64,
    pub openai: OpenAiTuneConfig,
    pub local: LocalTuneConfig,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            provider: "memory".into(),
            include_valid: false,
            validation_split: 0.1,
            seed: 7,
            min_examples: 10,
            poll_s: 5.0,
            openai: OpenAiTuneConfig::default(),
            local: LocalTuneConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenAiTuneConfig {
    pub base_url: String,
    pub api_key_env: String,
    pub model: String,
    pub n_epochs: Option<u32>,
}

impl Default for OpenAiTuneConfig {
    fn default() -> Self {
        OpenAiTuneConfig {
            base_url: "https://api.openai.com/v1".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            model: "gpt-4o-mini-2024-07-18".into(),
            n_epochs: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalTuneConfig {
    /// The trainer command, run with `sh -c` in the output directory; `{train}`,
    /// `{validation}` and `{output_dir}` are replaced by paths.
    pub command: Option<String>,
    pub output_dir: PathBuf,
    /// Seconds between SIGINT and SIGTERM when cancelling.
    pub grace_s: f64,
}

impl Default for LocalTuneConfig {
    fn default() -> Self {
        LocalTuneConfig {
            command: None,
            output_dir: PathBuf::from("tune-output"),
            grace_s: 10.0,
        }
    }
}

/// The whole file as written (before paths are resolved).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct RawConfig {
    api: ApiConfig,
    model: ModelConfig,
    database: DatabaseConfig,
    paths: PathsConfig,
    memory_tuning: MemoryTuningConfig,
    execution: ExecutionConfig,
    llm: LlmConfig,
    ui: UiConfig,
    generate: GenerateConfig,
    tune: TuneConfig,
}

/// A loaded project configuration, with paths made absolute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The config file this came from.
    pub source: PathBuf,
    /// The directory paths resolve against (the config file's directory).
    pub base_dir: PathBuf,
    pub api: ApiConfig,
    pub model: ModelConfig,
    pub database: DatabaseConfig,
    pub paths: PathsConfig,
    pub memory_tuning: MemoryTuningConfig,
    pub execution: ExecutionConfig,
    pub llm: LlmConfig,
    pub ui: UiConfig,
    pub generate: GenerateConfig,
    pub tune: TuneConfig,
    /// Remarks for the user: unknown keys, unset variables, the eval-set fallback.
    #[serde(skip)]
    pub warnings: Vec<Warning>,
}

/// Every key lode knows, as a tree, for unknown-key warnings. `*` matches any name.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "api",
            "model",
            "database",
            "paths",
            "memory_tuning",
            "execution",
            "llm",
            "ui",
            "generate",
            "tune",
        ],
    ),
    (
        "tune",
        &[
            "provider",
            "include_valid",
            "validation_split",
            "seed",
            "min_examples",
            "poll_s",
            "openai",
            "local",
        ],
    ),
    (
        "tune.openai",
        &["base_url", "api_key_env", "model", "n_epochs"],
    ),
    ("tune.local", &["command", "output_dir", "grace_s"]),
    (
        "generate",
        &[
            "per_gold",
            "sql_first",
            "debugger_attempts",
            "agreement_check",
            "prompts",
            "generators",
            "validators",
        ],
    ),
    ("generate.per_gold", &["*"]),
    ("generate.prompts", &["*"]),
    ("api", &["url", "key"]),
    ("model", &["default", "memory_tuning"]),
    (
        "database",
        &[
            "path",
            "url",
            "password_env",
            "refuse_writable",
            "ssl_root_cert",
        ],
    ),
    ("paths", &["gold_test_set", "eval_set", "glossary"]),
    (
        "memory_tuning",
        &["max_steps", "learning_rate", "max_gpus", "max_nodes"],
    ),
    (
        "execution",
        &[
            "timeout_s",
            "max_rows",
            "max_cell_bytes",
            "max_value_mb",
            "max_result_mb",
            "threads",
        ],
    ),
    ("llm", &["default", "profiles"]),
    ("llm.profiles", &["*"]),
    (
        "llm.profiles.*",
        &[
            "kind",
            "base_url",
            "api_key_env",
            "api_key",
            "model",
            "max_concurrency",
            "requests_per_minute",
            "timeout_s",
            "max_tokens",
            "answer_temperature",
            "extra_body",
            "seed",
        ],
    ),
    ("llm.profiles.*.extra_body", &["*"]),
    ("ui", &["theme", "mouse", "keymap", "reject_reasons"]),
    ("ui.keymap", &["*"]),
];

/// Looks up environment variables; a trait object so tests need not touch the process env.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Loads `path` with the process environment.
    pub fn load(path: &Path) -> Result<Config, InputError> {
        Self::load_with_env(path, &process_env)
    }

    pub fn load_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Config, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InputError::new(
                path,
                format!("cannot read the config file: {e}"),
                "check the path, or create one with `lode init` or `lode demo`",
            )
        })?;
        Self::parse(path, &text, env)
    }

    /// Parses config text as if read from `path` (which sets the base for relative paths).
    pub fn parse(path: &Path, text: &str, env: EnvLookup<'_>) -> Result<Config, InputError> {
        if text.trim().is_empty() {
            return Err(InputError::new(
                path,
                "the config file is empty",
                "add at least `database: {path: your.sqlite}` and `paths: {gold_test_set: gold.jsonl}`",
            ));
        }
        // First pass: typed, straight from the text, so errors carry line and column.
        let typed: Result<RawConfig, _> = serde_norway::from_str(text);
        if let Err(e) = typed {
            return Err(yaml_error(path, text, &e));
        }
        let mut value: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| yaml_error(path, text, &e))?;
        if !value.is_mapping() {
            return Err(InputError::new(
                path,
                "the config file must be a mapping of sections (api:, database:, paths:, …)",
                "see config.example.yml",
            )
            .at(1, None));
        }

        let mut warnings = Vec::new();
        check_keys(path, text, &value, "", &mut warnings);
        interpolate(path, text, &mut value, env, false, &mut warnings);
        // Second pass: the same shape with ${VAR}s replaced; only strings changed, so the
        // first pass has already reported every type error.
        let raw: RawConfig =
            serde_norway::from_value(value).map_err(|e| yaml_error(path, text, &e))?;

        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut config = Config {
            source: path.to_path_buf(),
            base_dir: base_dir.clone(),
            api: raw.api,
            model: raw.model,
            database: raw.database,
            paths: raw.paths,
            memory_tuning: raw.memory_tuning,
            execution: raw.execution,
            llm: raw.llm,
            ui: raw.ui,
            generate: raw.generate,
            tune: raw.tune,
            warnings,
        };
        if let Some(key) = env("LAMINI_API_KEY").filter(|k| !k.is_empty()) {
            config.api.key = Some(Secret::new(key));
        }
        if let Some(url) = env("LAMINI_API_URL").filter(|u| !u.is_empty()) {
            config.api.url = url;
        }
        if config
            .api
            .key
            .as_ref()
            .is_some_and(|k| k.expose().is_empty())
        {
            config.api.key = None;
        }
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(rel) = p.as_ref().filter(|p| p.is_relative()) {
                *p = Some(base_dir.join(rel));
            }
        };
        resolve(&mut config.database.path);
        resolve(&mut config.database.ssl_root_cert);
        resolve(&mut config.paths.gold_test_set);
        resolve(&mut config.paths.eval_set);
        resolve(&mut config.paths.glossary);
        if config.tune.local.output_dir.is_relative() {
            config.tune.local.output_dir = base_dir.join(&config.tune.local.output_dir);
        }
        for p in config.generate.prompts.values_mut() {
            if p.is_relative() {
                *p = base_dir.join(&*p);
            }
        }
        config.validate(text)?;
        Ok(config)
    }

    fn validate(&mut self, text: &str) -> Result<(), InputError> {
        let path = self.source.clone();
        // `what` is the dotted key; its line is found inside its own section.
        let range = |ok: bool, what: &str, message: String, fix: &str| -> Result<(), InputError> {
            if ok {
                return Ok(());
            }
            Err(at_key(
                InputError::new(&path, format!("{what} {message}"), fix),
                find_dotted_line(text, what),
            ))
        };
        let seconds = |v: f64, max: f64| v.is_finite() && v > 0.0 && v <= max;
        let e = &self.execution;
        range(
            seconds(e.timeout_s, MAX_SECONDS),
            "execution.timeout_s",
            format!(
                "must be a number of seconds above 0 and at most {MAX_SECONDS} (a day), not {}",
                e.timeout_s
            ),
            "use for example `timeout_s: 10`",
        )?;
        range(
            (1..=MAX_ROWS).contains(&e.max_rows),
            "execution.max_rows",
            format!("must be between 1 and {MAX_ROWS}, not {}", e.max_rows),
            "use for example `max_rows: 10000`",
        )?;
        range(
            (1..=MAX_VALUE_MB).contains(&e.max_value_mb),
            "execution.max_value_mb",
            format!(
                "must be between 1 and {MAX_VALUE_MB} (SQLite's largest value), not {}",
                e.max_value_mb
            ),
            "use for example `max_value_mb: 256`",
        )?;
        range(
            (1..=e.max_value_mb << 20).contains(&e.max_cell_bytes),
            "execution.max_cell_bytes",
            format!(
                "must be between 1 and execution.max_value_mb in bytes, not {}",
                e.max_cell_bytes
            ),
            "use for example `max_cell_bytes: 4096`",
        )?;
        range(
            (1..=MAX_RESULT_MB).contains(&e.max_result_mb),
            "execution.max_result_mb",
            format!(
                "must be between 1 and {MAX_RESULT_MB} MiB, not {}",
                e.max_result_mb
            ),
            "use for example `max_result_mb: 256`",
        )?;
        range(
            e.threads <= MAX_THREADS,
            "execution.threads",
            format!(
                "must be at most {MAX_THREADS} (0 means every core), not {}",
                e.threads
            ),
            "use for example `threads: 0`",
        )?;
        let g = &self.generate;
        for (name, n) in &g.per_gold {
            range(
                *n <= MAX_PER_GOLD,
                &format!("generate.per_gold.{name}"),
                format!("must be between 0 and {MAX_PER_GOLD} calls per gold pair, not {n}"),
                "use for example `pattern: 4`",
            )?;
        }
        range(
            g.sql_first <= MAX_SQL_FIRST,
            "generate.sql_first",
            format!(
                "must be between 0 and {MAX_SQL_FIRST} pairs per level, not {}",
                g.sql_first
            ),
            "use for example `sql_first: 25`",
        )?;
        range(
            g.debugger_attempts <= MAX_DEBUGGER_ATTEMPTS,
            "generate.debugger_attempts",
            format!(
                "must be between 0 and {MAX_DEBUGGER_ATTEMPTS}, not {}",
                g.debugger_attempts
            ),
            "use for example `debugger_attempts: 2`",
        )?;
        let t = &self.tune;
        range(
            seconds(t.poll_s, 3600.0),
            "tune.poll_s",
            format!(
                "must be a number of seconds above 0 and at most 3600, not {}",
                t.poll_s
            ),
            "use for example `poll_s: 10`",
        )?;
        range(
            (0.0..1.0).contains(&t.validation_split),
            "tune.validation_split",
            format!(
                "must be a share from 0 up to (not including) 1, not {}",
                t.validation_split
            ),
            "use for example `validation_split: 0.1`",
        )?;
        range(
            t.local.grace_s.is_finite() && (0.0..=3600.0).contains(&t.local.grace_s),
            "tune.local.grace_s",
            format!(
                "must be a number of seconds from 0 to 3600, not {}",
                t.local.grace_s
            ),
            "use for example `grace_s: 10`",
        )?;
        for (name, profile) in &self.llm.profiles {
            let key = |k: &str| format!("llm.profiles.{name}.{k}");
            range(
                (1..=MAX_CONCURRENCY).contains(&profile.max_concurrency),
                &key("max_concurrency"),
                format!(
                    "must be between 1 and {MAX_CONCURRENCY}, not {}",
                    profile.max_concurrency
                ),
                "use for example `max_concurrency: 8`",
            )?;
            range(
                seconds(profile.timeout_s, MAX_SECONDS),
                &key("timeout_s"),
                format!(
                    "must be a number of seconds above 0 and at most {MAX_SECONDS}, not {}",
                    profile.timeout_s
                ),
                "use for example `timeout_s: 60`",
            )?;
            range(
                (1..=1_000_000).contains(&profile.max_tokens),
                &key("max_tokens"),
                format!("must be from 1 to 1000000, not {}", profile.max_tokens),
                "use for example `max_tokens: 1024`",
            )?;
            range(
                (0.0..=2.0).contains(&profile.answer_temperature),
                &key("answer_temperature"),
                format!("must be from 0 to 2, not {}", profile.answer_temperature),
                "use `answer_temperature: 0` for repeatable answers",
            )?;
            for field in ["model", "messages"] {
                if profile.extra_body.get(field).is_some() {
                    return Err(at_key(
                        InputError::new(
                            &path,
                            format!(
                                "llm.profiles.{name}.extra_body sets `{field}`, which would \
                                 silently replace what lode sends"
                            ),
                            if field == "model" {
                                "set the profile's `model:` instead and take it out of extra_body"
                            } else {
                                "take `messages` out of extra_body: lode writes the messages"
                            },
                        ),
                        find_dotted_line(text, &key(&format!("extra_body.{field}")))
                            .or_else(|| find_dotted_line(text, &key("extra_body"))),
                    ));
                }
            }
            // A Lamini profile without base_url talks to `api.url`.
            if profile.kind == ProfileKind::Openai && profile.base_url.is_none() {
                return Err(at_key(
                    InputError::new(
                        &path,
                        format!("llm.profiles.{name} needs a base_url"),
                        "add for example `base_url: http://127.0.0.1:8000/v1`",
                    ),
                    find_dotted_line(text, &format!("llm.profiles.{name}")),
                ));
            }
        }
        if let Some(default) = &self.llm.default
            && default != "rules"
            && !self.llm.profiles.contains_key(default)
        {
            let names: Vec<&str> = self.llm.profiles.keys().map(String::as_str).collect();
            let hint = match did_you_mean(default, &names) {
                Some(s) => format!("did you mean `{s}`? Profiles defined: {}", names.join(", ")),
                None => format!(
                    "define it under llm.profiles (defined: {})",
                    names.join(", ")
                ),
            };
            return Err(at_key(
                InputError::new(
                    &path,
                    format!("llm.default names an unknown profile `{default}`"),
                    hint,
                ),
                find_dotted_line(text, "llm.default"),
            ));
        }
        if self.paths.eval_set.is_none() && self.paths.gold_test_set.is_some() {
            self.warnings.push(Warning {
                path: path.clone(),
                line: None,
                message: "no paths.eval_set: the gold set doubles as the eval set, so an \
                          evaluation score measures memorization, not generalization"
                    .into(),
            });
        }
        Ok(())
    }

    /// The user database path, or an error that says how to set it.
    pub fn database_path(&self) -> Result<&Path, InputError> {
        self.database.path.as_deref().ok_or_else(|| {
            InputError::new(
                &self.source,
                "database.path is not set",
                "add a `database:` section with `path: your.sqlite` under it (relative to the config file)",
            )
        })
    }

    pub fn gold_path(&self) -> Result<&Path, InputError> {
        self.paths.gold_test_set.as_deref().ok_or_else(|| {
            InputError::new(
                &self.source,
                "paths.gold_test_set is not set",
                "add a `paths:` section with `gold_test_set: gold.jsonl` under it (relative to the config file)",
            )
        })
    }

    /// The eval set, or the gold set when none is configured (see the warning at load).
    pub fn eval_path(&self) -> Result<&Path, InputError> {
        match &self.paths.eval_set {
            Some(p) => Ok(p),
            None => self.gold_path(),
        }
    }

    /// The name of the LLM profile in use: the override, else `llm.default`, else "rules".
    pub fn profile_name<'a>(&'a self, override_name: Option<&'a str>) -> &'a str {
        override_name
            .or(self.llm.default.as_deref())
            .unwrap_or("rules")
    }

    /// The profile in use; "rules" works even when not declared.
    pub fn profile(&self, override_name: Option<&str>) -> Result<LlmProfile, InputError> {
        let name = self.profile_name(override_name);
        if let Some(p) = self.llm.profiles.get(name) {
            return Ok(p.clone());
        }
        if name == "rules" {
            return Ok(LlmProfile::default());
        }
        let names: Vec<&str> = self
            .llm
            .profiles
            .keys()
            .map(String::as_str)
            .filter(|n| *n != "rules")
            .collect();
        Err(InputError::new(
            &self.source,
            format!("no LLM profile named `{name}`"),
            match did_you_mean(name, &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "use one of: rules{}{}",
                    if names.is_empty() { "" } else { ", " },
                    names.join(", ")
                ),
            },
        ))
    }
}

fn at_key(e: InputError, line: Option<usize>) -> InputError {
    match line {
        Some(l) => e.at(l, None),
        None => e,
    }
}

fn yaml_error(path: &Path, text: &str, e: &serde_norway::Error) -> InputError {
    let message = e.to_string();
    // serde_norway appends " at line N column M"; we show the location in front instead.
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    // A duplicate key: point at its second occurrence, at the same indentation as the first.
    if let Some(rest) = message.strip_prefix("duplicate field `")
        && let Some(key) = rest.split('`').next()
    {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            })
            .collect();
        if let [(first, a), .., (second, b)] = lines.as_slice() {
            let indent = |l: &str| l.len() - l.trim_start().len();
            if indent(a) == indent(b) {
                return InputError::new(
                    path,
                    format!("`{key}` is defined twice (first on line {})", first + 1),
                    "merge the two sections into one",
                )
                .at(second + 1, Some(indent(b) + 1));
            }
        }
    }
    let fix = if message.contains("unknown field") {
        "remove or rename the key (see config.example.yml for every key)".to_string()
    } else if message.contains("invalid type") {
        "give the value the type the message asks for (numbers unquoted, lists with `-`)"
            .to_string()
    } else {
        "fix the YAML syntax at that place (indentation with spaces, `key: value`)".to_string()
    };
    let line = match e.location() {
        Some(loc) => return InputError::new(path, message, fix).at(loc.line(), Some(loc.column())),
        // The parser gave no place: a second document starts at its marker; an error of
        // the value-based pass names its key path (`execution.max_rows: invalid type …`).
        None if message.contains("more than one document") => text
            .lines()
            .skip(1)
            .position(|l| {
                let l = l.trim_end();
                l == "---" || l.starts_with("--- ") || l == "..."
            })
            .map(|i| i + 2),
        None => message
            .split_once(": ")
            .filter(|(key, _)| !key.is_empty() && !key.contains(' '))
            .and_then(|(key, _)| find_dotted_line(text, key)),
    };
    at_key(InputError::new(path, message, fix), line)
}

/// The line of a dotted key (`execution.timeout_s`, `llm.profiles.local.timeout_s`): each
/// part is looked for below the previous one, indented deeper, before the section ends.
/// Falls back to the deepest part found, so an error still points near its setting.
fn find_dotted_line(text: &str, dotted: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut from = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for part in dotted.split('.') {
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(from) {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if parent_indent.is_some_and(|p| indent(l) <= p) {
                break;
            }
            let key = t.trim_start_matches(['"', '\'']);
            if key.strip_prefix(part).is_some_and(|r| {
                r.trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
            }) {
                hit = Some(i);
                break;
            }
        }
        match hit {
            Some(i) => {
                found = Some(i + 1);
                parent_indent = Some(indent(lines[i]));
                from = i + 1;
            }
            None => break,
        }
    }
    found
}

/// Finds the first line that defines `key:` (for errors found after parsing).
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

fn check_keys(
    path: &Path,
    text: &str,
    value: &serde_norway::Value,
    at: &str,
    warnings: &mut Vec<Warning>,
) {
    let Some(map) = value.as_mapping() else {
        return;
    };
    let pattern = KNOWN_KEYS
        .iter()
        .find(|(p, _)| keypath_matches(p, at))
        .map(|(_, keys)| *keys);
    let Some(known) = pattern else {
        return;
    };
    for (k, v) in map {
        let Some(name) = k.as_str() else { continue };
        let child = if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        };
        if known.contains(&"*") || known.contains(&name) {
            check_keys(path, text, v, &child, warnings);
            continue;
        }
        let hint = match did_you_mean(name, known) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; known keys here: {}", known.join(", ")),
        };
        warnings.push(Warning {
            path: path.to_path_buf(),
            line: find_key_line(text, name),
            message: format!("unknown key `{child}` is ignored{hint}"),
        });
    }
}

fn keypath_matches(pattern: &str, at: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let a: Vec<&str> = at.split('.').collect();
    p.len() == a.len() && p.iter().zip(&a).all(|(p, a)| *p == "*" || p == a)
}

fn interpolate(
    path: &Path,
    text: &str,
    value: &mut serde_norway::Value,
    env: EnvLookup<'_>,
    optional: bool,
    warnings: &mut Vec<Warning>,
) {
    match value {
        serde_norway::Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                match after.find('}') {
                    Some(end) => {
                        let name = &after[..end];
                        match env(name) {
                            Some(v) => out.push_str(&v),
                            // An unset key is normal offline; it matters only when a
                            // provider needs it, and that provider says so.
                            None if optional => {}
                            None => warnings.push(Warning {
                                path: path.to_path_buf(),
                                line: text.lines().position(|l| l.contains(&format!("${{{name}}}"))).map(|i| i + 1),
                                message: format!("environment variable {name} is not set; its value is left empty"),
                            }),
                        }
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push_str(&rest[start..]);
                        rest = "";
                    }
                }
            }
            out.push_str(rest);
            *s = out;
        }
        serde_norway::Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let optional = matches!(k.as_str(), Some("key" | "api_key"));
                interpolate(path, text, v, env, optional, warnings);
            }
        }
        serde_norway::Value::Sequence(seq) => {
            for v in seq {
                interpolate(path, text, v, env, optional, warnings);
            }
        }
        _ => {}
    }
}

/// Limits applied to every statement. They come from config (`execution.*`) and flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExecLimits {
    /// Wall-clock budget of one statement, from prepare to the last row.
    pub timeout: Duration,
    /// Rows kept; further rows are not fetched and `truncated` is set.
    pub max_rows: usize,
    /// Bytes kept of a text or blob cell; longer cells are cut and counted.
    pub max_cell_bytes: usize,
    /// The largest text or blob value a statement may build (SQLite's SQLITE_LIMIT_LENGTH):
    /// bounds the memory one step can take (`zeroblob`, `printf` and `replace` bombs).
    pub max_value_bytes: usize,
    /// The most memory the kept rows of one result may take (values as kept, after the cell
    /// cut, plus a small per-value overhead): a bigger result is refused.
    pub max_result_bytes: usize,
}

/// SQLite's own ceiling for a value's length, in MiB (1,000,000,000 bytes).
pub const MAX_VALUE_MB: usize = 953;

/// Upper bounds of numbers in config and flags: beyond them a value is a typo, and some
/// (a timeout of 1e300 s, 4294967296 calls per gold pair) would crash or exhaust memory.
pub const MAX_SECONDS: f64 = 86_400.0;
pub const MAX_ROWS: usize = 10_000_000;
pub const MAX_THREADS: usize = 1024;
pub const MAX_PER_GOLD: usize = 100;
pub const MAX_SQL_FIRST: usize = 10_000;
pub const MAX_DEBUGGER_ATTEMPTS: usize = 10;
pub const MAX_CONCURRENCY: usize = 1024;
pub const MAX_RESULT_MB: usize = 64 * 1024;

/// A number of seconds from a flag or a setting as a `Duration`, refused (not a panic) when it
/// is not above 0 and at most [`MAX_SECONDS`].
pub fn seconds(value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "must be a number of seconds above 0 and at most {MAX_SECONDS} (a day), not {value}"
        ))
    }
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            timeout: Duration::from_secs(10),
            max_rows: 10_000,
            max_cell_bytes: 4096,
            max_value_bytes: 256 << 20,
            max_result_bytes: 256 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const ORIGINAL: &str = r#"
api:
  url: "https://app.lamini.ai"
  key: "sk-secret-value"
database:
  path: "../data_bakery/bakery_1.sqlite"
model:
  default: "meta-llama/Meta-Llama-3-70B-Instruct"
  memory_tuning: "meta-llama/Llama-3.1-8B-Instruct"
memory_tuning:
  max_steps: 120
  learning_rate: 0.0003
  max_gpus: 6
  max_nodes: 1
paths:
  gold_test_set: "../data_bakery/gold_test_set.jsonl"
  glossary: "../data_bakery/glossary.jsonl"
"#;

    #[test]
    fn numbers_out_of_range_are_refused_at_their_line_not_a_panic() {
        for (text, line, what) in [
            (
                "database:\n  path: a.sqlite\nexecution:\n  timeout_s: 1e300\n",
                4,
                "execution.timeout_s",
            ),
            (
                "database:\n  path: a.sqlite\ngenerate:\n  per_gold:\n    pattern: 4294967296\n",
                5,
                "generate.per_gold.pattern",
            ),
            (
                "database:\n  path: a.sqlite\nllm:\n  default: fast\n  profiles:\n    fast:\n      kind: rules\n      timeout_s: 1e300\n    slow:\n      kind: rules\n",
                8,
                "llm.profiles.fast.timeout_s",
            ),
            (
                "database:\n  path: a.sqlite\ntune:\n  poll_s: .nan\n",
                4,
                "tune.poll_s",
            ),
        ] {
            let e = Config::parse(Path::new("/p/config.yml"), text, &no_env).unwrap_err();
            assert_eq!(e.line, Some(line), "{what}: {e}");
            assert!(e.message.contains(what), "{e}");
        }
        assert!(seconds(1e300).is_err() && seconds(0.0).is_err() && seconds(f64::NAN).is_err());
        assert_eq!(seconds(2.5).unwrap(), Duration::from_millis(2500));
    }

    #[test]
    fn the_example_config_has_no_unknown_keys() {
        let text = include_str!("../../config.example.yml");
        let c = Config::parse(Path::new("/p/config.yml"), text, &no_env).unwrap();
        let unknown: Vec<String> = c
            .warnings
            .iter()
            .filter(|w| w.message.contains("unknown key"))
            .map(|w| w.to_string())
            .collect();
        assert!(unknown.is_empty(), "{unknown:?}");
    }

    #[test]
    fn a_second_yaml_document_is_named_at_its_marker() {
        let text = "database:\n  path: a.sqlite\n---\nx: 1\n";
        let e = Config::parse(Path::new("/p/config.yml"), text, &no_env).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn a_value_size_limit_out_of_range_is_named_at_its_line() {
        for bad in ["0", "5000"] {
            let text = format!(
                "database:\n  path: a.sqlite\nexecution:\n  timeout_s: 5\n  max_value_mb: {bad}\n"
            );
            let e = Config::parse(Path::new("/p/config.yml"), &text, &no_env).unwrap_err();
            assert_eq!(e.line, Some(5), "{e}");
            assert!(e.message.contains("execution.max_value_mb"), "{e}");
        }
        let text = "database:\n  path: a.sqlite\nexecution:\n  max_value_mb: 64\n";
        let c = Config::parse(Path::new("/p/config.yml"), text, &no_env).unwrap();
        assert_eq!(c.execution.limits().max_value_bytes, 64 << 20);
    }

    #[test]
    fn a_section_written_twice_is_named_at_its_second_line() {
        let text = "database:\n  path: a.sqlite\nllm:\n  default: rules\nllm:\n  default: x\n";
        let e = Config::parse(Path::new("/p/config.yml"), text, &no_env).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(
            e.message
                .contains("`llm` is defined twice (first on line 3)"),
            "{e}"
        );
    }

    #[test]
    fn reads_the_original_config_and_resolves_paths() {
        let c = Config::parse(Path::new("/p/demo/config.yml"), ORIGINAL, &no_env).unwrap();
        assert_eq!(
            c.database.path.as_deref(),
            Some(Path::new("/p/demo/../data_bakery/bakery_1.sqlite"))
        );
        assert_eq!(c.memory_tuning.max_gpus, 6);
        assert_eq!(c.model.default, "meta-llama/Meta-Llama-3-70B-Instruct");
        assert_eq!(c.api.key.as_ref().unwrap().expose(), "sk-secret-value");
        // The gold set doubles as the eval set, and the user is told what that means.
        assert!(
            c.warnings
                .iter()
                .any(|w| w.message.contains("memorization"))
        );
        assert_eq!(c.eval_path().unwrap(), c.gold_path().unwrap());
    }

    #[test]
    fn never_prints_the_key() {
        let c = Config::parse(Path::new("config.yml"), ORIGINAL, &no_env).unwrap();
        let debug = format!("{c:?}");
        let json = serde_json::to_string(&c).unwrap();
        assert!(!debug.contains("sk-secret-value"), "{debug}");
        assert!(!json.contains("sk-secret-value"), "{json}");
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn environment_overrides_and_interpolates() {
        let env = |name: &str| match name {
            "LAMINI_API_KEY" => Some("from-env".to_string()),
            "DATA" => Some("/data".to_string()),
            _ => None,
        };
        let text =
            "database:\n  path: ${DATA}/shop.sqlite\napi:\n  key: ${MISSING}\n  url: ${NOURL}\n";
        let c = Config::parse(Path::new("c/config.yml"), text, &env).unwrap();
        assert_eq!(
            c.database.path.as_deref(),
            Some(Path::new("/data/shop.sqlite"))
        );
        assert_eq!(c.api.key.as_ref().unwrap().expose(), "from-env");
        let c = Config::parse(Path::new("c/config.yml"), text, &no_env).unwrap();
        assert!(c.api.key.is_none(), "an unset ${{VAR}} leaves no key");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.message.contains("NOURL") && w.line == Some(5))
        );
        assert!(
            !c.warnings.iter().any(|w| w.message.contains("MISSING")),
            "an unset key is normal offline"
        );
    }

    #[test]
    fn warns_about_unknown_keys_with_a_suggestion() {
        let text = "databse:\n  path: x.sqlite\npaths:\n  gold_tst_set: g.jsonl\n";
        let c = Config::parse(Path::new("config.yml"), text, &no_env).unwrap();
        let msgs: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("config.yml:1") && m.contains("did you mean `database`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("config.yml:4") && m.contains("did you mean `gold_test_set`")),
            "{msgs:?}"
        );
    }

    #[test]
    fn type_errors_name_the_line() {
        let text = "database:\n  path: x.sqlite\nexecution:\n  timeout_s: soon\n";
        let e = Config::parse(Path::new("config.yml"), text, &no_env).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("config.yml:4:"), "{e}");
    }

    #[test]
    fn syntax_errors_and_empty_files_are_reported() {
        let e = Config::parse(
            Path::new("config.yml"),
            "database:\n  path: [unclosed\n",
            &no_env,
        )
        .unwrap_err();
        assert!(e.line.is_some(), "{e}");
        let e = Config::parse(Path::new("config.yml"), "  \n", &no_env).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = Config::parse(Path::new("config.yml"), "- a\n- b\n", &no_env).unwrap_err();
        assert!(e.to_string().contains("config.yml"), "{e}");
    }

    #[test]
    fn validates_limits_and_profiles() {
        let e =
            Config::parse(Path::new("c.yml"), "execution:\n  timeout_s: 0\n", &no_env).unwrap_err();
        assert!(
            e.to_string().contains("timeout_s") && e.line == Some(2),
            "{e}"
        );
        let text = "llm:\n  default: locl\n  profiles:\n    local:\n      kind: openai\n      base_url: http://127.0.0.1:8000/v1\n";
        let e = Config::parse(Path::new("c.yml"), text, &no_env).unwrap_err();
        assert!(e.to_string().contains("did you mean `local`"), "{e}");
        let c = Config::parse(Path::new("c.yml"), "llm:\n  default: rules\n", &no_env).unwrap();
        assert_eq!(c.profile(None).unwrap().kind, ProfileKind::Rules);
        assert!(c.profile(Some("nope")).is_err());
    }
}
