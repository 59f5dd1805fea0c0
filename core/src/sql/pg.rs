//! The PostgreSQL target's executor: the only code that sends SQL to a PostgreSQL server.
//!
//! What it guarantees, in the order a statement meets it:
//! 1. Before anything reaches the server, the text is read with sqlparser's PostgreSQL
//!    tokenizer (quotes, dollar quotes and comments understood): exactly one statement, which
//!    must be a query (`SELECT`, `WITH`, `VALUES`, `TABLE`, or a parenthesised query), and no
//!    call of a function that reads the server's files, signals other sessions, changes
//!    settings or reaches other servers (`pg_read_file`, `lo_import`, `dblink`, `set_config`,
//!    `pg_terminate_backend`, …).
//! 2. It runs inside `BEGIN READ ONLY`, which is always rolled back, with `statement_timeout`
//!    and `idle_in_transaction_session_timeout` set for it: the server refuses every write, and
//!    stops the statement itself at the deadline.
//! 3. A cancel (or a server that does not stop in time) sends PostgreSQL's cancel request on a
//!    second connection, with the same TLS as the first.
//! 4. Rows are read as they stream and capped like SQLite's (rows, cell bytes, result bytes).
//!
//! A role that could write (superuser, or any INSERT/UPDATE/DELETE/TRUNCATE/CREATE
//! privilege) is reported by [`PgDatabase::can_write`] so callers can warn, or refuse with
//! `refuse_writable`.
//!
//! Values: integers (`int2/4/8`, `oid`) are integers; `float4/8` reals; `numeric` an integer
//! when it has no fraction and fits, else a real; `bool` 1 or 0 (as SQLite stores it);
//! text-like types, enums and unknown types text; `date` `YYYY-MM-DD`, `timestamp`
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` and `timestamptz` the same in UTC (the session's time zone
//! is UTC), `time` `HH:MM:SS[.ffffff]`; `uuid` its usual text; `json`/`jsonb` their text;
//! `bytea` a blob; arrays PostgreSQL's text form (`{1,2,NULL}`).
//!
//! Connections use TLS as `sslmode` says, always verifying the server's certificate and host
//! name when they do (see [`super::pg_tls`]).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::types::{FromSql, Type};
use postgres::{CancelToken, Client, NoTls};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::exec::{CancelFlag, ExecError, ExecLimits, QueryResult};
use super::pg_tls::{self, Mode};
use super::schema::{IntrospectError, Schema};
use super::target::Target;
use super::value::Value;

/// Functions a query may not call on a PostgreSQL target: they read the server's files,
/// reach other servers, signal or inspect other sessions, change settings, take locks or
/// write large objects. Matched case-insensitively, with or without a schema.
const DENIED_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_stat_file",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "lo_import",
    "lo_export",
    "lo_create",
    "lo_creat",
    "lo_unlink",
    "lo_put",
    "lo_from_bytea",
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_connect_u",
    "dblink_send_query",
    "set_config",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_notify",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_logical_emit_message",
    "pg_import_system_collations",
    // These run a query given as text, where the check above cannot see.
    "ts_stat",
    "ts_rewrite",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "txid_current",
    "pg_current_xact_id",
];

/// Checks one statement before it is sent: a single query calling no denied function.
pub fn check_statement(sql: &str) -> Result<(), String> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| format!("cannot read the statement: {e}"))?;
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    // One statement: a `;` may only end the text.
    if let Some(i) = significant.iter().position(|t| **t == Token::SemiColon)
        && significant[i + 1..].iter().any(|t| **t != Token::SemiColon)
    {
        return Err("more than one statement (send exactly one)".into());
    }
    let first = significant
        .iter()
        .find(|t| !matches!(t, Token::LParen))
        .ok_or_else(|| "the statement is empty".to_string())?;
    let lead = match first {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    if !matches!(lead.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE") {
        return Err(format!(
            "only queries (SELECT, WITH, VALUES, TABLE) may run, not {}",
            if lead.is_empty() {
                "this statement".to_string()
            } else {
                lead
            }
        ));
    }
    for (i, t) in significant.iter().enumerate() {
        if let Token::Word(w) = t {
            let called = significant.get(i + 1).is_some_and(|n| **n == Token::LParen);
            let name = w.value.to_ascii_lowercase();
            if called && DENIED_FUNCTIONS.contains(&name.as_str()) {
                return Err(format!("function {name}() is not allowed"));
            }
            // Writes hidden in a WITH (data-modifying CTEs) and row locks are refused here
            // too; the read-only transaction would refuse them anyway.
            if w.quote_style.is_none()
                && matches!(
                    name.as_str(),
                    "insert" | "update" | "delete" | "merge" | "truncate"
                )
                && i > 0
                && significant
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| matches!(p, Token::LParen))
            {
                return Err(format!(
                    "{} inside a query is not allowed",
                    name.to_uppercase()
                ));
            }
        }
    }
    Ok(())
}

/// How lode reaches one server: the parsed URL and the TLS it uses there.
struct Link {
    /// The URL's settings, `ssl_mode` as [`Mode::to_pg`] gives it.
    config: postgres::Config,
    /// The same with TLS off, for `prefer` once TLS has failed.
    plain: postgres::Config,
    mode: Mode,
    /// The connector (none for `sslmode=disable`).
    tls: Option<MakeRustlsConnect>,
    /// The host the certificate must name, for messages.
    host: String,
    /// Set when a `prefer` connection fell back to plain: later ones skip the TLS attempt.
    fell_back: AtomicBool,
}

impl Link {
    /// Reads `url` (its `sslmode` and `sslrootcert` by [`pg_tls::split_url`]), the password
    /// from the URL, else from `password_env`, else `PGPASSWORD`, and sets up TLS trusting
    /// the system's roots plus `sslrootcert` and `ssl_root_cert`. Sessions are named `lode`
    /// and give up connecting after 10 s.
    fn new(
        url: &str,
        password_env: Option<&str>,
        ssl_root_cert: Option<&Path>,
    ) -> Result<Link, ExecError> {
        let bad_url = |message: String| ExecError::Open {
            path: redacted(url).into(),
            message,
        };
        let split = pg_tls::split_url(url).map_err(bad_url)?;
        let mut config: postgres::Config = split.url.parse().map_err(|e| {
            bad_url(format!(
                "not a PostgreSQL URL ({e}): write postgres://user@host:port/database"
            ))
        })?;
        if config.get_password().is_none()
            && let Ok(p) = std::env::var(password_env.unwrap_or("PGPASSWORD"))
        {
            config.password(p);
        }
        config.ssl_mode(split.mode.to_pg());
        config.application_name("lode");
        config.connect_timeout(Duration::from_secs(10));
        let fail = |message: String| ExecError::Open {
            path: display_of(&config).into(),
            message,
        };
        // Every CA file given is read (and checked) even when TLS is off: a wrong path is
        // said at once, not when the server's setting changes.
        let mut extra = Vec::new();
        for file in split.root_cert.as_deref().into_iter().chain(ssl_root_cert) {
            extra.extend(pg_tls::read_ca_file(file).map_err(fail)?);
        }
        let tls = match split.mode {
            Mode::Disable => None,
            _ => Some(pg_tls::connector(&extra).map_err(fail)?),
        };
        let host = host_of(&config);
        let mut plain = config.clone();
        plain.ssl_mode(postgres::config::SslMode::Disable);
        Ok(Link {
            config,
            plain,
            mode: split.mode,
            tls,
            host,
            fell_back: AtomicBool::new(false),
        })
    }

    /// A new connection, or what to say about the failure (never the password).
    fn connect(&self) -> Result<Client, String> {
        let Some(tls) = &self.tls else {
            return self.config.connect(NoTls).map_err(|e| pg_message(&e));
        };
        if self.fell_back.load(Ordering::Acquire) {
            return self.plain.connect(tls.clone()).map_err(|e| pg_message(&e));
        }
        match self.config.connect(tls.clone()) {
            Ok(client) => Ok(client),
            // libpq's `prefer`: a failed TLS attempt is retried without TLS.
            Err(e) if self.mode == Mode::Prefer && pg_tls::is_tls_failure(&e) => {
                let why = self.message(&e);
                let client = self.plain.connect(tls.clone()).map_err(|plain| {
                    format!(
                        "{} (TLS was tried first and failed: {why})",
                        pg_message(&plain)
                    )
                })?;
                self.fell_back.store(true, Ordering::Release);
                Ok(client)
            }
            Err(e) => Err(self.message(&e)),
        }
    }

    fn message(&self, e: &postgres::Error) -> String {
        pg_tls::explain(e, &self.host, self.mode).unwrap_or_else(|| pg_message(e))
    }

    /// Sends the server's cancel request for `token`'s session, with the TLS it was opened
    /// with (the token knows whether that session fell back to plain).
    fn cancel(tls: Option<&MakeRustlsConnect>, token: &CancelToken) {
        let _ = match tls {
            Some(tls) => token.cancel_query(tls.clone()),
            None => token.cancel_query(NoTls),
        };
    }
}

/// A PostgreSQL database reached by URL, its connections pooled.
pub struct PgDatabase {
    link: Link,
    /// `postgres://user@host:port/db` (never the password).
    display: String,
    /// The same, as the path-like location [`Target::location`] gives.
    location: std::path::PathBuf,
    limits: ExecLimits,
    idle: Mutex<Vec<Client>>,
    can_write: bool,
}

impl PgDatabase {
    /// Connects to `url` (`postgres://user@host:port/db`; the password from the URL, else
    /// from `password_env` when given, else `PGPASSWORD`), checks the server answers and what
    /// the role may do. With `refuse_writable`, a role that can write is refused. TLS as the
    /// URL's `sslmode` and `sslrootcert` say (see [`super::pg_tls`]).
    pub fn connect(
        url: &str,
        password_env: Option<&str>,
        limits: ExecLimits,
        refuse_writable: bool,
    ) -> Result<PgDatabase, ExecError> {
        Self::connect_tls(url, password_env, None, limits, refuse_writable)
    }

    /// [`connect`](Self::connect), trusting also the PEM CA certificates of `ssl_root_cert`
    /// (a project's `database.ssl_root_cert`) for TLS.
    pub fn connect_tls(
        url: &str,
        password_env: Option<&str>,
        ssl_root_cert: Option<&Path>,
        limits: ExecLimits,
        refuse_writable: bool,
    ) -> Result<PgDatabase, ExecError> {
        off_runtime(|| {
            Self::connect_here(url, password_env, ssl_root_cert, limits, refuse_writable)
        })
    }

    fn connect_here(
        url: &str,
        password_env: Option<&str>,
        ssl_root_cert: Option<&Path>,
        limits: ExecLimits,
        refuse_writable: bool,
    ) -> Result<PgDatabase, ExecError> {
        let link = Link::new(url, password_env, ssl_root_cert)?;
        let display = display_of(&link.config);
        let mut db = PgDatabase {
            location: display.clone().into(),
            display,
            link,
            limits,
            idle: Mutex::new(Vec::new()),
            can_write: false,
        };
        let mut client = db.connect_one()?;
        let can_write = client
            .query_one(WRITE_CHECK, &[])
            .and_then(|r| r.try_get::<_, bool>(0))
            .map_err(|e| db.open_error(&e))?;
        if can_write && refuse_writable {
            return Err(ExecError::Open {
                path: db.display.clone().into(),
                message: "the role can write to this database and database.refuse_writable is on: \
                          connect as a role with SELECT only (GRANT SELECT ON ALL TABLES IN SCHEMA … TO …)"
                    .into(),
            });
        }
        db.can_write = can_write;
        db.release(client);
        Ok(db)
    }

    /// Where it is, for messages: `postgres://user@host:port/db`, never the password.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Whether the role could write (superuser, or a write or CREATE privilege): lode never
    /// does, but a read-only role is the safer setup.
    pub fn can_write(&self) -> bool {
        self.can_write
    }

    pub fn limits(&self) -> ExecLimits {
        self.limits
    }

    fn open_error(&self, e: &postgres::Error) -> ExecError {
        ExecError::Open {
            path: self.display.clone().into(),
            message: pg_message(e),
        }
    }

    fn connect_one(&self) -> Result<Client, ExecError> {
        let mut client = self.link.connect().map_err(|message| ExecError::Open {
            path: self.display.clone().into(),
            message,
        })?;
        client
            .batch_execute("SET TIME ZONE 'UTC'; SET default_transaction_read_only = on")
            .map_err(|e| self.open_error(&e))?;
        // Every schema the role may use is on the search path, `public` first: a table
        // outside `public` is named by its bare name, as the schema lists it.
        let path: Option<String> = client
            .query_one(SEARCH_PATH, &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.open_error(&e))?;
        // A URL that sets its own search path (`options=-c search_path=…`) keeps it.
        let own_path = self
            .link
            .config
            .get_options()
            .is_some_and(|o| o.contains("search_path"));
        if let Some(path) = path.filter(|p| !p.is_empty() && !own_path) {
            client
                .batch_execute(&format!("SET search_path = {path}"))
                .map_err(|e| self.open_error(&e))?;
        }
        Ok(client)
    }

    fn acquire(&self) -> Result<Client, ExecError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) if !c.is_closed() => Ok(c),
            _ => self.connect_one(),
        }
    }

    fn release(&self, client: Client) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 16 && !client.is_closed() {
            idle.push(client);
        }
    }

    /// Runs one read-only statement under `limits`; `cancel` stops it early.
    pub fn query_with(
        &self,
        sql: &str,
        limits: ExecLimits,
        cancel: Option<&CancelFlag>,
    ) -> Result<QueryResult, ExecError> {
        off_runtime(|| self.query_here(sql, limits, cancel))
    }

    fn query_here(
        &self,
        sql: &str,
        limits: ExecLimits,
        cancel: Option<&CancelFlag>,
    ) -> Result<QueryResult, ExecError> {
        let text = sql.trim().trim_end_matches(';').trim();
        if text.is_empty() {
            return Err(ExecError::Rejected {
                reason: "the statement is empty".into(),
            });
        }
        check_statement(text).map_err(|reason| ExecError::Rejected { reason })?;
        let mut client = self.acquire()?;
        let start = Instant::now();
        // The watcher cancels on the cancel flag, or when the server has not stopped the
        // statement half a second after its own timeout.
        let token = client.cancel_token();
        let tls = self.link.tls.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cancelled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let done = std::sync::Arc::clone(&done);
            let cancelled = std::sync::Arc::clone(&cancelled);
            let flag = cancel.cloned();
            let deadline = start + limits.timeout + Duration::from_millis(500);
            std::thread::Builder::new()
                .name("lode-pg-cancel".into())
                .spawn(move || {
                    use std::sync::atomic::Ordering;
                    while !done.load(Ordering::Acquire) {
                        let asked = flag.as_ref().is_some_and(CancelFlag::is_cancelled);
                        if asked || Instant::now() >= deadline {
                            cancelled.store(asked, Ordering::Release);
                            Link::cancel(tls.as_ref(), &token);
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
                .ok()
        };
        let outcome = run(&mut client, text, limits);
        done.store(true, std::sync::atomic::Ordering::Release);
        if let Some(w) = watcher {
            let _ = w.join();
        }
        let elapsed = start.elapsed();
        self.release(client);
        match outcome {
            Ok((columns, rows, truncated, truncated_cells)) if elapsed <= limits.timeout => {
                Ok(QueryResult {
                    columns,
                    rows,
                    truncated,
                    truncated_cells,
                    elapsed,
                })
            }
            Ok(_) => Err(ExecError::Timeout {
                elapsed,
                limit: limits.timeout,
            }),
            Err(Failure::Refused(reason)) => Err(ExecError::Rejected { reason }),
            Err(Failure::Pg(e)) => {
                let state = e.code().map(|c| c.code().to_string());
                Err(match state.as_deref() {
                    // query_canceled: our cancel, or statement_timeout.
                    Some("57014") if cancelled.load(std::sync::atomic::Ordering::Acquire) => {
                        ExecError::Cancelled
                    }
                    Some("57014") => ExecError::Timeout {
                        elapsed,
                        limit: limits.timeout,
                    },
                    // read_only_sql_transaction, insufficient_privilege.
                    Some("25006") | Some("42501") => ExecError::Rejected {
                        reason: pg_message(&e),
                    },
                    _ => ExecError::Sqlite {
                        message: pg_message(&e),
                    },
                })
            }
        }
    }
}

/// The schemas the role may use, quoted, `public` first.
const SEARCH_PATH: &str =
    "SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname <> 'public', nspname)
    FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
      AND has_schema_privilege(oid, 'USAGE')";

impl Target for PgDatabase {
    fn dialect_name(&self) -> &'static str {
        "postgresql"
    }

    fn location(&self) -> &std::path::Path {
        &self.location
    }

    fn limits(&self) -> ExecLimits {
        self.limits
    }

    fn query_with(
        &self,
        sql: &str,
        limits: ExecLimits,
        cancel: Option<&CancelFlag>,
    ) -> Result<QueryResult, ExecError> {
        PgDatabase::query_with(self, sql, limits, cancel)
    }

    fn introspect(&self) -> Result<Schema, IntrospectError> {
        super::schema::introspect_pg(self)
    }

    /// A hash of the server's write counters for the user tables (rows inserted, updated
    /// and deleted, as the statistics collector reports them, a moment after each write),
    /// which changes when the data does.
    fn content_key(&self) -> Result<String, ExecError> {
        let r = self.query_with(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::text || '/' || \
             count(*)::text FROM pg_stat_user_tables",
            self.limits,
            None,
        )?;
        let counters = r
            .rows
            .first()
            .and_then(|row| row.first())
            .map(Value::display)
            .unwrap_or_default();
        Ok(format!(
            "{:016x}",
            crate::synth::hash_str(&format!("{}|{counters}", self.display))
        ))
    }

    fn can_write(&self) -> bool {
        self.can_write
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        off_runtime(move || drop(idle));
    }
}

/// Runs `f` where the synchronous PostgreSQL client may block: on this thread, or on a
/// thread of its own when this one drives a tokio runtime (the client runs a runtime of its
/// own, and tokio refuses to start one inside another: generation and the TUI call the
/// executor from async tasks).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Whether the session's role could write: superuser, CREATE on the database or a schema,
/// or a write privilege on any table.
const WRITE_CHECK: &str = "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
    OR has_database_privilege(current_database(), 'CREATE')
    OR EXISTS (SELECT 1 FROM pg_namespace n
               WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
                 AND has_schema_privilege(n.oid, 'CREATE'))
    OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname NOT LIKE 'pg\\_%'
                 AND n.nspname <> 'information_schema'
                 AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                      OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE')))";

enum Failure {
    Refused(String),
    Pg(postgres::Error),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

type Stepped = (Vec<String>, Vec<Vec<Value>>, bool, usize);

/// What a kept value costs beyond its bytes (as in the SQLite executor).
const VALUE_OVERHEAD: usize = std::mem::size_of::<Value>();

fn run(client: &mut Client, sql: &str, limits: ExecLimits) -> Result<Stepped, Failure> {
    let mut tx = client.build_transaction().read_only(true).start()?;
    let ms = limits.timeout.as_millis().clamp(1, i32::MAX as u128);
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {ms}; SET LOCAL idle_in_transaction_session_timeout = {}; \
         SET LOCAL lock_timeout = {ms}",
        ms.saturating_add(5_000).min(i32::MAX as u128)
    ))?;
    let stmt = tx.prepare(sql)?;
    // Columns of types whose binary form lode does not read (interval, money, inet, …) are
    // asked for as their text: the query is wrapped, its columns renamed by position and
    // written out, keeping their names and its row order.
    let stmt = if stmt.columns().iter().all(|c| decodable(c.type_())) {
        stmt
    } else {
        let n = stmt.columns().len();
        let select: Vec<String> = stmt
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = format!("\"{}\"", c.name().replace('"', "\"\""));
                if decodable(c.type_()) {
                    format!("lode_c{} AS {name}", i + 1)
                } else {
                    // format('%s') writes the value as the type's output function does
                    // (`10.0.0.1`, where a cast to text gives `10.0.0.1/32`).
                    let c = format!("lode_c{}", i + 1);
                    format!("CASE WHEN {c} IS NULL THEN NULL ELSE format('%s', {c}) END AS {name}")
                }
            })
            .collect();
        let aliases: Vec<String> = (1..=n).map(|i| format!("lode_c{i}")).collect();
        tx.prepare(&format!(
            "SELECT {} FROM ({sql}) AS lode_q({})",
            select.join(", "),
            aliases.join(", ")
        ))?
    };
    let columns: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    if columns.is_empty() {
        return Err(Failure::Refused(
            "the statement returns no columns; only queries may run".into(),
        ));
    }
    let width = columns.len();
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut truncated_cells = 0usize;
    let mut kept = 0usize;
    {
        // Through a portal that hands over at most one row past the cap: the server never
        // produces the rest, and the rollback does not wait behind it.
        let portal = tx.bind(&stmt, &[])?;
        let fetch = i32::try_from(limits.max_rows.saturating_add(1)).unwrap_or(i32::MAX);
        let mut it = tx.query_portal_raw(&portal, fetch)?;
        use fallible_iterator::FallibleIterator;
        while let Some(row) = it.next()? {
            if rows.len() >= limits.max_rows {
                truncated = true;
                break;
            }
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                let Cell(value) = row.try_get::<_, Cell>(i)?;
                let (value, cut) = cap(value, limits.max_cell_bytes);
                truncated_cells += usize::from(cut);
                kept += VALUE_OVERHEAD
                    + match &value {
                        Value::Text(s) => s.len(),
                        Value::Blob(b) => b.len(),
                        _ => 0,
                    };
                values.push(value);
            }
            if kept > limits.max_result_bytes {
                return Err(Failure::Refused(format!(
                    "the result is larger than {} MiB after {} rows (raise execution.max_result_mb, \
                     or select fewer rows or columns)",
                    limits.max_result_bytes >> 20,
                    rows.len() + 1
                )));
            }
            rows.push(values);
        }
    }
    // Nothing was written (the transaction is read-only); rolling back ends it.
    tx.rollback()?;
    Ok((columns, rows, truncated, truncated_cells))
}

fn cap(value: Value, max: usize) -> (Value, bool) {
    match value {
        Value::Text(s) if s.len() > max => {
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            (Value::Text(format!("{}…", &s[..end])), true)
        }
        Value::Blob(b) if b.len() > max => (Value::Blob(b[..max].to_vec()), true),
        v => (v, false),
    }
}

/// The server's message, with its detail and hint when it gives them.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => e.to_string(),
    }
}

/// The first host a config names (a name, an address or a socket directory).
fn host_of(config: &postgres::Config) -> String {
    config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default()
}

fn display_of(config: &postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = host_of(config);
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// A URL with any password replaced, for messages about a URL that did not parse.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Whether [`decode`] reads this type's binary form (else the column is asked for as text).
fn decodable(ty: &Type) -> bool {
    match ty.kind() {
        postgres::types::Kind::Enum(_) => true,
        postgres::types::Kind::Array(element) => decodable(element),
        postgres::types::Kind::Domain(base) => decodable(base),
        _ => matches!(
            *ty,
            Type::BOOL
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC
                | Type::DATE
                | Type::TIMESTAMP
                | Type::TIMESTAMPTZ
                | Type::TIME
                | Type::UUID
                | Type::JSON
                | Type::JSONB
                | Type::BYTEA
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::CHAR
                | Type::UNKNOWN
                | Type::XML
        ),
    }
}

/// Any PostgreSQL value, decoded from the binary format into a [`Value`].
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

type DecodeResult = Result<Value, Box<dyn std::error::Error + Sync + Send>>;

fn be<const N: usize>(raw: &[u8]) -> Result<[u8; N], Box<dyn std::error::Error + Sync + Send>> {
    raw.get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "a value shorter than its type".into())
}

fn decode(ty: &Type, raw: &[u8]) -> DecodeResult {
    Ok(match *ty {
        Type::BOOL => Value::Integer(i64::from(raw.first().copied().unwrap_or(0) != 0)),
        Type::INT2 => Value::Integer(i64::from(i16::from_be_bytes(be(raw)?))),
        Type::INT4 => Value::Integer(i64::from(i32::from_be_bytes(be(raw)?))),
        Type::INT8 => Value::Integer(i64::from_be_bytes(be(raw)?)),
        Type::OID => Value::Integer(i64::from(u32::from_be_bytes(be(raw)?))),
        Type::FLOAT4 => Value::Real(f64::from(f32::from_be_bytes(be(raw)?))),
        Type::FLOAT8 => Value::Real(f64::from_be_bytes(be(raw)?)),
        Type::NUMERIC => numeric(raw)?,
        Type::DATE => Value::Text(date(i32::from_be_bytes(be(raw)?))),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Value::Text(timestamp(i64::from_be_bytes(be(raw)?))),
        Type::TIME => Value::Text(time_of_day(i64::from_be_bytes(be(raw)?))),
        Type::UUID => {
            let b: [u8; 16] = be(raw)?;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Value::Text(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            ))
        }
        Type::JSONB => {
            Value::Text(String::from_utf8_lossy(raw.get(1..).unwrap_or_default()).into_owned())
        }
        Type::BYTEA => Value::Blob(raw.to_vec()),
        _ => match ty.kind() {
            postgres::types::Kind::Array(element) => Value::Text(array(element, raw)?),
            // Text, varchar, char, name, json, enums, domains over text, and anything else
            // whose binary form is its text.
            _ => Value::Text(String::from_utf8_lossy(raw).into_owned()),
        },
    })
}

/// `numeric`'s binary form: digit count, weight, sign, display scale, base-10000 digits.
fn numeric(raw: &[u8]) -> DecodeResult {
    let ndigits = u16::from_be_bytes(be(raw)?) as usize;
    let weight = i16::from_be_bytes(be(raw.get(2..).unwrap_or_default())?);
    let sign = u16::from_be_bytes(be(raw.get(4..).unwrap_or_default())?);
    let dscale = u16::from_be_bytes(be(raw.get(6..).unwrap_or_default())?) as usize;
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    if sign == 0xD000 || sign == 0xF000 {
        return Ok(Value::Real(if sign == 0xD000 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }));
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(u16::from_be_bytes(be(raw
            .get(8 + 2 * i..)
            .unwrap_or_default())?));
    }
    // The integer part: digit groups at weights weight, weight-1, ..., 0.
    let mut int_part = String::new();
    if weight >= 0 {
        for w in 0..=weight as usize {
            let d = digits.get(w).copied().unwrap_or(0);
            if int_part.is_empty() {
                int_part.push_str(&d.to_string());
            } else {
                int_part.push_str(&format!("{d:04}"));
            }
        }
    } else {
        int_part.push('0');
    }
    let mut frac = String::new();
    let first_frac = (weight + 1).max(0) as usize;
    // Leading zero groups when the weight is below -1.
    for _ in 0..((-weight - 1).max(0) as usize) {
        frac.push_str("0000");
    }
    for d in digits.iter().skip(first_frac) {
        frac.push_str(&format!("{d:04}"));
    }
    while frac.len() < dscale {
        frac.push('0');
    }
    frac.truncate(dscale);
    let negative = sign == 0x4000;
    let text = if frac.is_empty() {
        format!("{}{int_part}", if negative { "-" } else { "" })
    } else {
        format!("{}{int_part}.{frac}", if negative { "-" } else { "" })
    };
    if frac.trim_end_matches('0').is_empty()
        && let Ok(i) = format!("{}{int_part}", if negative { "-" } else { "" }).parse::<i64>()
    {
        return Ok(Value::Integer(i));
    }
    Ok(text
        .parse::<f64>()
        .map(Value::Real)
        .unwrap_or(Value::Text(text)))
}

/// Days since 2000-01-01 as `YYYY-MM-DD` (proleptic Gregorian).
fn date(days: i32) -> String {
    let (y, m, d) = super::value::civil_from_days(i64::from(days) + 10_957);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Microseconds since 2000-01-01 00:00:00 as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn timestamp(us: i64) -> String {
    if us == i64::MAX {
        return "infinity".into();
    }
    if us == i64::MIN {
        return "-infinity".into();
    }
    let days = us.div_euclid(86_400_000_000);
    let rest = us.rem_euclid(86_400_000_000);
    let (y, m, d) = super::value::civil_from_days(days + 10_957);
    format!("{y:04}-{m:02}-{d:02} {}", time_of_day(rest))
}

fn time_of_day(us: i64) -> String {
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let t = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        t
    } else {
        format!("{t}.{}", format!("{frac:06}").trim_end_matches('0'))
    }
}

/// A one-dimensional array's binary form as PostgreSQL's text form (`{1,2,NULL}`); more
/// dimensions are written flat.
fn array(element: &Type, raw: &[u8]) -> Result<String, Box<dyn std::error::Error + Sync + Send>> {
    let ndim = i32::from_be_bytes(be(raw)?).max(0) as usize;
    let mut at = 12 + 8 * ndim;
    let mut parts = Vec::new();
    while at + 4 <= raw.len() {
        let len = i32::from_be_bytes(be(&raw[at..])?);
        at += 4;
        if len < 0 {
            parts.push("NULL".to_string());
            continue;
        }
        let len = len as usize;
        let bytes = raw
            .get(at..at + len)
            .ok_or("an array shorter than it says")?;
        at += len;
        parts.push(match decode(element, bytes)? {
            Value::Null => "NULL".into(),
            Value::Integer(i) => i.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Text(t) => t,
            Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        });
    }
    Ok(format!("{{{}}}", parts.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_query_calling_nothing_dangerous_passes() {
        assert!(check_statement("SELECT 1").is_ok());
        assert!(check_statement("  (SELECT a FROM t) UNION (SELECT b FROM s);").is_ok());
        assert!(check_statement("WITH x AS (SELECT 1) SELECT * FROM x").is_ok());
        assert!(check_statement("SELECT 'a;b', $$ ; DROP TABLE t $$").is_ok());
        assert!(
            check_statement("SELECT pg_sleep(10)").is_ok(),
            "stopped by the timeout"
        );
        for bad in [
            "SELECT 1; DROP TABLE t",
            "DROP TABLE t",
            "COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'",
            "SET ROLE postgres",
            "SET default_transaction_read_only = off",
            "SELECT pg_read_file('/etc/passwd')",
            "SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)",
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            "SELECT pg_catalog.pg_terminate_backend(1)",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "BEGIN",
            "",
        ] {
            assert!(check_statement(bad).is_err(), "{bad} passed");
        }
    }

    #[test]
    fn dates_times_and_numerics_decode_to_their_text() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(8_460), "2023-03-01");
        assert_eq!(
            timestamp(86_400_000_000 + 3_723_500_000),
            "2000-01-02 01:02:03.5"
        );
        // 12345.678 = digits [1, 2345, 6780], weight 1, scale 3.
        let raw = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(numeric(&raw).unwrap(), Value::Real(12345.678));
        // -42 (weight 0, scale 0) is an integer.
        let raw = [0, 1, 0, 0, 0x40, 0, 0, 0, 0, 42];
        assert_eq!(numeric(&raw).unwrap(), Value::Integer(-42));
        // 0.05 = digits [500], weight -1, scale 2.
        let raw = [0, 1, 0xff, 0xff, 0, 0, 0, 2, 0x01, 0xf4];
        assert_eq!(numeric(&raw).unwrap(), Value::Real(0.05));
        assert_eq!(
            redacted("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }
}

/// What [`load_sqlite`] copied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// (table, rows) in copy order.
    pub tables: Vec<(String, u64)>,
}

/// The comment that marks a schema as lode's own (only such a schema is ever replaced).
const OWN_SCHEMA: &str = "made by lode demo --postgres";

/// Copies every table of the SQLite file `source` into the new schema `schema` of the
/// PostgreSQL database at `url` (the one thing lode writes to a server: the demo's own
/// schema, for `lode demo --postgres`). Column types follow their SQLite affinity
/// (`INTEGER` → `bigint`, `REAL` → `numeric`, anything else `text`), with primary
/// and foreign keys. An existing schema of that name is replaced only when `replace` is set
/// and it carries lode's mark; any other is left alone with an error.
pub fn load_sqlite(
    url: &str,
    password_env: Option<&str>,
    source: &std::path::Path,
    schema: &str,
    replace: bool,
) -> Result<Loaded, ExecError> {
    off_runtime(|| load_sqlite_here(url, password_env, source, schema, replace))
}

fn load_sqlite_here(
    url: &str,
    password_env: Option<&str>,
    source: &std::path::Path,
    schema: &str,
    replace: bool,
) -> Result<Loaded, ExecError> {
    let fail = |message: String| ExecError::Open {
        path: redacted(url).into(),
        message,
    };
    let link = Link::new(url, password_env, None)?;
    let mut client = link.connect().map_err(fail)?;
    let pg = |e: postgres::Error| fail(pg_message(&e));
    let existing: Option<Option<String>> = client
        .query_opt(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .map_err(pg)?
        .map(|r| r.get(0));
    let quoted = crate::sql::schema::pg_ident(schema);
    match existing {
        None => {}
        Some(Some(mark)) if mark == OWN_SCHEMA && replace => {
            client
                .batch_execute(&format!("DROP SCHEMA {quoted} CASCADE"))
                .map_err(pg)?;
        }
        Some(Some(mark)) if mark == OWN_SCHEMA => {
            return Err(fail(format!(
                "schema {schema} already holds a demo; pass --force to replace it"
            )));
        }
        Some(_) => {
            return Err(fail(format!(
                "schema {schema} exists and is not lode's; choose another with --pg-schema"
            )));
        }
    }
    let lite =
        rusqlite::Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| fail(format!("cannot read {}: {e}", source.display())))?;
    let lite_err = |e: rusqlite::Error| fail(format!("cannot read {}: {e}", source.display()));
    let tables: Vec<String> = lite
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(lite_err)?;
    let mut tx = client.transaction().map_err(pg)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA {quoted}; COMMENT ON SCHEMA {quoted} IS '{OWN_SCHEMA}'"
    ))
    .map_err(pg)?;
    let mut loaded = Loaded::default();
    let mut foreign = Vec::new();
    for table in &tables {
        let lit = Value::Text(table.clone()).sql_literal();
        let cols: Vec<(String, String, bool, i64)> = lite
            .prepare(&format!(
                "SELECT name, type, \"notnull\", pk FROM pragma_table_info({lit}) ORDER BY cid"
            ))
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?))
                })?
                .collect()
            })
            .map_err(lite_err)?;
        let kinds: Vec<&str> = cols
            .iter()
            .map(|(_, t, _, _)| {
                let t = t.to_ascii_uppercase();
                if t.contains("INT") {
                    "bigint"
                } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
                    // numeric, not double precision: SQL written for SQLite rounds its
                    // reals with ROUND(x, 2), which PostgreSQL has for numeric only.
                    "numeric"
                } else {
                    "text"
                }
            })
            .collect();
        let mut defs: Vec<String> = cols
            .iter()
            .zip(&kinds)
            .map(|((name, _, not_null, _), kind)| {
                format!(
                    "{} {kind}{}",
                    crate::sql::schema::pg_ident(name),
                    if *not_null { " NOT NULL" } else { "" }
                )
            })
            .collect();
        let mut pk: Vec<(i64, &String)> = cols
            .iter()
            .filter(|c| c.3 > 0)
            .map(|c| (c.3, &c.0))
            .collect();
        pk.sort();
        if !pk.is_empty() {
            let names: Vec<String> = pk
                .iter()
                .map(|(_, n)| crate::sql::schema::pg_ident(n))
                .collect();
            defs.push(format!("PRIMARY KEY ({})", names.join(", ")));
        }
        let target = format!("{quoted}.{}", crate::sql::schema::pg_ident(table));
        tx.batch_execute(&format!("CREATE TABLE {target} ({})", defs.join(", ")))
            .map_err(pg)?;
        let fks: Vec<(i64, String, String, String)> = lite
            .prepare(&format!(
                "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list({lit}) ORDER BY id, seq"
            ))
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<String>>(3)?.unwrap_or_default())))?
                    .collect()
            })
            .map_err(lite_err)?;
        for (_, parent, from, to) in fks {
            foreign.push(format!(
                "ALTER TABLE {target} ADD FOREIGN KEY ({}) REFERENCES {quoted}.{}{}",
                crate::sql::schema::pg_ident(&from),
                crate::sql::schema::pg_ident(&parent),
                if to.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", crate::sql::schema::pg_ident(&to))
                }
            ));
        }
        let names: Vec<String> = cols
            .iter()
            .map(|c| crate::sql::schema::pg_ident(&c.0))
            .collect();
        let params: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                // A numeric goes over as its text, cast by the server.
                if *kind == "numeric" {
                    format!("(${}::text)::numeric", i + 1)
                } else {
                    format!("${}", i + 1)
                }
            })
            .collect();
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {target} ({}) VALUES ({})",
                names.join(", "),
                params.join(", ")
            ))
            .map_err(pg)?;
        let mut stmt = lite
            .prepare(&format!(
                "SELECT * FROM {}",
                crate::sql::schema::quote_ident(table)
            ))
            .map_err(lite_err)?;
        let mut rows = stmt.query([]).map_err(lite_err)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(lite_err)? {
            let mut values: Vec<Box<dyn postgres::types::ToSql + Sync>> =
                Vec::with_capacity(kinds.len());
            for (i, kind) in kinds.iter().enumerate() {
                use rusqlite::types::ValueRef;
                let cell = row.get_ref(i).map_err(lite_err)?;
                values.push(match (*kind, cell) {
                    (_, ValueRef::Null) => match *kind {
                        "bigint" => Box::new(None::<i64>),
                        "numeric" => Box::new(None::<String>),
                        _ => Box::new(None::<String>),
                    },
                    ("bigint", ValueRef::Integer(v)) => Box::new(v),
                    ("numeric", ValueRef::Integer(v)) => Box::new(v.to_string()),
                    ("numeric", ValueRef::Real(v)) => Box::new(v.to_string()),
                    ("text", ValueRef::Text(t)) => {
                        Box::new(String::from_utf8_lossy(t).into_owned())
                    }
                    ("text", ValueRef::Integer(v)) => Box::new(v.to_string()),
                    ("text", ValueRef::Real(v)) => Box::new(v.to_string()),
                    (k, other) => {
                        return Err(fail(format!(
                            "{table}: a {:?} value in a {k} column cannot be copied",
                            other.data_type()
                        )));
                    }
                });
            }
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                values.iter().map(|b| b.as_ref()).collect();
            tx.execute(&insert, &refs).map_err(pg)?;
            n += 1;
        }
        loaded.tables.push((table.clone(), n));
    }
    for fk in foreign {
        tx.batch_execute(&fk).map_err(pg)?;
    }
    tx.commit().map_err(pg)?;
    Ok(loaded)
}
