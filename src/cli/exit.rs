//! Exit codes, the same for every command, and the classification of an error into one.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | the work failed: a query error, a failed run, findings, wrong answers |
//! | 2 | usage or configuration error: a bad flag, a missing or invalid file, a bad value |
//! | 3 | cannot reach a database or server |
//! | 4 | timeout or limit |
//! | 5 | refused as unsafe |
//! | 130 | interrupted |
//!
//! [`classify`] reads the error's chain, looking through lode-core's wrapper errors (many are
//! `#[error(transparent)]`, which hide their inner error from the chain), and gives the code
//! with a stable `kind`, the message, the file location when the error has one, and a hint.

use std::path::PathBuf;

use serde::Serialize;

use lode_core::diag::InputError;
use lode_core::llm::LlmError;
use lode_core::sql::ExecError;

/// A process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    Ok,
    Failure,
    Usage,
    Unreachable,
    Limit,
    Unsafe,
    Interrupted,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
            Exit::Limit => 4,
            Exit::Unsafe => 5,
            Exit::Interrupted => 130,
        }
    }
}

/// A usage mistake a handler finds itself (flags that do not fit together, a missing
/// argument clap cannot express): exit 2, kind `usage`.
#[derive(Debug)]
pub struct UsageError {
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UsageError {}

/// A usage error with a hint, as an `anyhow::Error` for `?` and `return Err(…)`.
pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    let hint = hint.into();
    anyhow::Error::new(UsageError {
        message: message.into(),
        hint: (!hint.is_empty()).then_some(hint),
    })
}

/// Where in a file an error is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Location {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// An error as scripts see it: `{"kind", "message", "location", "hint", "exit_code"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    #[serde(skip)]
    pub exit: Exit,
    /// A stable name: `usage`, `config`, `input`, `database_unreachable`,
    /// `server_unreachable`, `auth`, `timeout`, `limit`, `refused`, `interrupted`,
    /// `query_error`, `not_found`, `busy`, `failed`.
    pub kind: &'static str,
    pub message: String,
    pub location: Option<Location>,
    pub hint: Option<String>,
    pub exit_code: i32,
}

impl Failure {
    fn new(exit: Exit, kind: &'static str, message: String) -> Failure {
        Failure {
            exit,
            kind,
            message,
            location: None,
            hint: None,
            exit_code: exit.code(),
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

/// What an error means for the exit code, with its kind, location and hint. The message is
/// [`super::error_message`]'s (each cause once).
pub fn classify(e: &anyhow::Error) -> Failure {
    // The text without its `fix:`/`hint:` lines, which `hint` carries.
    let message = super::error_message(e)
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("fix: ") || t.starts_with("hint: "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    for cause in e.chain() {
        if let Some(mut f) = classify_one(cause) {
            f.message = message;
            return f;
        }
    }
    Failure::new(Exit::Failure, "failed", message)
}

/// The classification of one error value, looking into the wrappers lode-core's errors use.
fn classify_one(e: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    use lode_core::pipeline::eval_files::EvalFilesError;
    use lode_core::pipeline::generate::GenerateError;
    use lode_core::project::ProjectError;
    use lode_core::store::StoreError;
    use lode_core::tasks::TaskError;
    use lode_core::tune::TuneError;

    if let Some(u) = e.downcast_ref::<UsageError>() {
        let f = Failure::new(Exit::Usage, "usage", u.message.clone());
        return Some(match &u.hint {
            Some(h) => f.hint(h.clone()),
            None => f,
        });
    }
    if let Some(c) = e.downcast_ref::<clap::Error>() {
        return Some(Failure::new(Exit::Usage, "usage", c.to_string()));
    }
    if let Some(i) = e.downcast_ref::<InputError>() {
        return Some(input(i));
    }
    if let Some(x) = e.downcast_ref::<ExecError>() {
        return Some(exec(x));
    }
    if let Some(l) = e.downcast_ref::<LlmError>() {
        return Some(llm(l));
    }
    if let Some(p) = e.downcast_ref::<ProjectError>() {
        return Some(match p {
            ProjectError::Input(i) => input(i),
            ProjectError::Database(x) => exec(x),
            ProjectError::Schema(s) => exec(&s.source),
        });
    }
    if let Some(s) = e.downcast_ref::<lode_core::sql::schema::IntrospectError>() {
        return Some(exec(&s.source));
    }
    if let Some(f) = e.downcast_ref::<EvalFilesError>() {
        return Some(match f {
            EvalFilesError::Input(i) => input(i),
            EvalFilesError::Database(x) => exec(x),
        });
    }
    if let Some(s) = e.downcast_ref::<StoreError>() {
        return Some(store(s));
    }
    if let Some(g) = e.downcast_ref::<GenerateError>() {
        return match g {
            GenerateError::Store(s) => Some(store(s)),
            GenerateError::Config(m) => Some(Failure::new(Exit::Usage, "config", m.clone())),
            GenerateError::Prompt(p) => classify_one(p),
            GenerateError::RunFailed { .. } => None,
        };
    }
    if let Some(t) = e.downcast_ref::<TuneError>() {
        return match t {
            TuneError::Provider {
                transient: true,
                status: None,
                message,
                ..
            } => Some(Failure::new(
                Exit::Unreachable,
                "server_unreachable",
                message.clone(),
            )),
            TuneError::Provider {
                status: Some(401 | 403),
                message,
                ..
            } => Some(
                Failure::new(Exit::Usage, "auth", message.clone())
                    .hint("check the API key the config or the environment gives"),
            ),
            TuneError::WatchStopped {
                transient: true,
                message,
                ..
            } => Some(
                Failure::new(Exit::Unreachable, "server_unreachable", message.clone())
                    .hint("the job goes on at the provider: `lode jobs watch` again later"),
            ),
            _ => None,
        };
    }
    if let Some(t) = e.downcast_ref::<TaskError>() {
        return match t {
            TaskError::Store(s) => Some(store(s)),
            TaskError::Llm(l) => Some(llm(l)),
            TaskError::Generate(g) => classify_one(g),
            TaskError::Tune(t) => classify_one(t),
            TaskError::Input(i) => Some(input(i)),
            TaskError::Project(p) => classify_one(p),
            TaskError::Demo(_) | TaskError::Io { .. } => None,
            TaskError::Invalid(m) => Some(Failure::new(Exit::Usage, "usage", m.clone())),
            TaskError::Cancelled(m) => Some(Failure::new(
                Exit::Interrupted,
                "interrupted",
                format!("interrupted: {m}"),
            )),
        };
    }
    if let Some(p) = e.downcast_ref::<lode_core::pipeline::prompts::PromptError>() {
        // A prompt file the user wrote that cannot be used.
        return Some(Failure::new(Exit::Usage, "config", p.to_string()));
    }
    if let Some(d) = e.downcast_ref::<lode_core::project::demo::DemoError>()
        && matches!(d, lode_core::project::demo::DemoError::Exists(_))
    {
        return Some(
            Failure::new(Exit::Usage, "usage", d.to_string())
                .hint("pass --force to overwrite it, or choose another directory"),
        );
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::Interrupted
    {
        return Some(Failure::new(
            Exit::Interrupted,
            "interrupted",
            io.to_string(),
        ));
    }
    None
}

fn input(i: &InputError) -> Failure {
    let mut f = Failure::new(Exit::Usage, "input", i.to_string());
    f.location = Some(Location {
        file: i.path.clone(),
        line: i.line,
        column: i.column,
    });
    if !i.fix.is_empty() {
        f.hint = Some(i.fix.clone());
    }
    f
}

fn exec(x: &ExecError) -> Failure {
    match x {
        ExecError::Open { .. } => Failure::new(Exit::Unreachable, "database_unreachable", x.to_string())
            .hint("check database.path or database.url in config.yml (or --db, --db-url), and that the server is up"),
        ExecError::Rejected { reason } if is_size_limit(reason) => {
            Failure::new(Exit::Limit, "limit", x.to_string())
                .hint("raise execution.max_value_mb or max_result_mb in config.yml, or select less")
        }
        ExecError::Rejected { .. } => Failure::new(Exit::Unsafe, "refused", x.to_string())
            .hint("lode runs exactly one read-only query (SELECT, WITH, VALUES); writes, DDL, ATTACH, PRAGMA and the like are refused"),
        ExecError::Timeout { .. } => Failure::new(Exit::Limit, "timeout", x.to_string())
            .hint("raise execution.timeout_s in config.yml (or --timeout), or make the query cheaper"),
        ExecError::Cancelled => Failure::new(Exit::Interrupted, "interrupted", x.to_string()),
        ExecError::Sqlite { .. } => Failure::new(Exit::Failure, "query_error", x.to_string()),
    }
}

/// A statement the executor stopped at one of its size limits (a value or a result larger
/// than allowed): a limit, not an unsafe statement.
fn is_size_limit(reason: &str) -> bool {
    reason.contains("larger than") && reason.contains("MiB")
}

fn llm(l: &LlmError) -> Failure {
    match l {
        LlmError::Network { .. } => {
            Failure::new(Exit::Unreachable, "server_unreachable", l.to_string())
                .hint("check the profile's url (lode llm check), the network and the server")
        }
        LlmError::Timeout(_) => Failure::new(Exit::Limit, "timeout", l.to_string()),
        LlmError::RateLimited { .. } => Failure::new(Exit::Limit, "limit", l.to_string()).hint(
            "wait and run again (a resumed run keeps what was done), or lower llm concurrency",
        ),
        LlmError::Auth { .. } => Failure::new(Exit::Usage, "auth", l.to_string())
            .hint("check the API key the config or the environment gives"),
        LlmError::Config { .. } => Failure::new(Exit::Usage, "config", l.to_string()),
        LlmError::Cancelled => Failure::new(Exit::Interrupted, "interrupted", l.to_string()),
        _ => Failure::new(Exit::Failure, "failed", l.to_string()),
    }
}

fn store(s: &lode_core::store::StoreError) -> Failure {
    use lode_core::store::StoreError;
    match s {
        StoreError::NotFound { .. } => Failure::new(Exit::Failure, "not_found", s.to_string()),
        StoreError::RunBusy { .. } => Failure::new(Exit::Failure, "busy", s.to_string()),
        StoreError::Newer { .. } => Failure::new(Exit::Usage, "config", s.to_string()),
        _ => Failure::new(Exit::Failure, "failed", s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_get_their_exit_codes_through_wrappers() {
        let open = ExecError::Open {
            path: "x.sqlite".into(),
            message: "no such file".into(),
        };
        let project = lode_core::project::ProjectError::Database(open.clone());
        let task = lode_core::tasks::TaskError::Project(project);
        let f = classify(&anyhow::Error::new(task));
        assert_eq!((f.exit_code, f.kind), (3, "database_unreachable"));

        let f = classify(&anyhow::Error::new(ExecError::Rejected {
            reason: "DELETE is not allowed".into(),
        }));
        assert_eq!((f.exit_code, f.kind), (5, "refused"));

        let f = classify(&anyhow::Error::new(ExecError::Timeout {
            elapsed: std::time::Duration::from_secs(2),
            limit: std::time::Duration::from_secs(1),
        }));
        assert_eq!((f.exit_code, f.kind), (4, "timeout"));

        let i = InputError::new(std::path::Path::new("gold.jsonl"), "bad line", "quote it")
            .at(3, Some(7));
        let f = classify(&anyhow::Error::new(i).context("loading the project"));
        assert_eq!((f.exit_code, f.kind), (2, "input"));
        let loc = f.location.unwrap();
        assert_eq!((loc.line, loc.column), (Some(3), Some(7)));
        assert_eq!(f.hint.as_deref(), Some("quote it"));

        let f = classify(&usage("give --gold", "see lode eval-files --help"));
        assert_eq!((f.exit_code, f.kind), (2, "usage"));

        let f = classify(&anyhow::Error::new(lode_core::tasks::TaskError::Cancelled(
            "ctrl-c".into(),
        )));
        assert_eq!(f.exit_code, 130);

        let f = classify(&anyhow::anyhow!("something else"));
        assert_eq!((f.exit_code, f.kind), (1, "failed"));
    }
}
