//! The safe executor for SQLite files, and [`Database`], the handle every part of lode
//! reads a user database through (a [`Target`] of any kind: this file's [`SqliteFile`] or a
//! PostgreSQL server, [`super::pg`]).
//!
//! Every SQLite connection is opened read-only (`mode=ro`), with `PRAGMA query_only`, SQLite's
//! defensive mode, and an authorizer that allows reading and nothing else. A statement runs
//! only if it is exactly one read-only statement; it is interrupted at its wall-clock deadline
//! (or when a caller cancels it), and its result is capped in rows and cell size, with the
//! truncation reported. Connections are pooled so independent queries run in parallel.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::Value;
use super::schema::{IntrospectError, Schema};
use super::target::Target;
pub use crate::config::ExecLimits;

/// What a statement returned, with what was cut off and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// More rows existed than `max_rows`.
    pub truncated: bool,
    /// Number of cells cut to `max_cell_bytes`.
    pub truncated_cells: usize,
    #[serde(serialize_with = "serialize_ms")]
    pub elapsed: Duration,
}

fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Why a statement did not produce a result. `Rejected` means it was never allowed to run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("cannot open database {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("refused: {reason}")]
    Rejected { reason: String },
    #[error("timed out after {:.1} s (limit {:.1} s)", elapsed.as_secs_f64(), limit.as_secs_f64())]
    Timeout { elapsed: Duration, limit: Duration },
    #[error("cancelled")]
    Cancelled,
    #[error("{message}")]
    Sqlite { message: String },
}

impl ExecError {
    /// A short stable name for the kind of failure, used in reports and the store.
    pub fn kind(&self) -> &'static str {
        match self {
            ExecError::Open { .. } => "open",
            ExecError::Rejected { .. } => "rejected",
            ExecError::Timeout { .. } => "timeout",
            ExecError::Cancelled => "cancelled",
            ExecError::Sqlite { .. } => "sqlite",
        }
    }
}

/// Lets another thread stop a running statement (the TUI's cancel key).
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A read-only handle on a user's database, whatever its kind (a [`Target`]: a SQLite file
/// or a PostgreSQL server).
///
/// `Database` is `Sync`: share it (or an `Arc` of it) between threads and call [`query`]
/// from each; every call borrows its own connection.
///
/// [`query`]: Database::query
pub struct Database {
    target: Box<dyn Target>,
}

/// A SQLite file read through a pool of guarded connections: the embedded default target.
pub struct SqliteFile {
    path: PathBuf,
    limits: ExecLimits,
    idle: Mutex<Vec<GuardedConnection>>,
    /// Opened with `immutable=1` (see [`check_file`]).
    immutable: bool,
    /// Live batches ([`Snapshot`]s): while there is one, pooled connections keep a read
    /// transaction.
    snapshots: std::sync::atomic::AtomicUsize,
}

/// A batch's hold on one consistent state of a [`Database`] (see [`Database::snapshot`]).
#[must_use = "the snapshot ends when this is dropped"]
pub struct Snapshot<'a> {
    db: &'a Database,
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        self.db.target.end_batch();
    }
}

/// How long a detached statement is waited for past its deadline or its cancel.
pub const DETACH_GRACE: Duration = Duration::from_millis(250);

/// The 16 bytes every SQLite database file starts with.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Checks that `path` is a SQLite database file lode can read, and says how to open it:
/// `true` for `immutable=1`.
///
/// A database in WAL mode is opened read-only with `immutable=1` when no `-wal` file with
/// content is beside it: then nothing is created next to it (no `-wal`/`-shm`) and a
/// read-only folder works. The trade-off: a writer that starts while lode reads is not
/// seen, and lode must not be pointed at a database another program is writing at that
/// moment. When a `-wal` file with content is there (a writer is running, or one stopped
/// without a checkpoint), lode opens it like any database, sees the written rows, and SQLite
/// needs the `-shm` file (it may create it, and cannot in a read-only folder: the error then
/// says to checkpoint the database or make the folder writable).
fn check_file(path: &Path) -> Result<bool, ExecError> {
    let fail = |message: String| ExecError::Open {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        fail(if e.kind() == std::io::ErrorKind::NotFound {
            "no such file (check database.path in config.yml or --db)".into()
        } else {
            format!("cannot read it: {e}")
        })
    })?;
    if meta.is_dir() {
        return Err(fail(
            "is a directory, not a SQLite database file (point database.path or --db at the \
             .sqlite file)"
                .into(),
        ));
    }
    if !meta.is_file() {
        return Err(fail(
            "is not a regular file (a pipe, socket or device); lode reads SQLite database files"
                .into(),
        ));
    }
    if meta.len() == 0 {
        return Err(fail(
            "is empty (0 bytes), so it holds no database: check the path (opening a missing \
             file with some tools creates an empty one)"
                .into(),
        ));
    }
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut header))
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    if read < 20 || &header[..16] != SQLITE_HEADER {
        return Err(fail(
            "is not a SQLite database (its first bytes are not \"SQLite format 3\")".into(),
        ));
    }
    // Bytes 18 and 19 are the write and read format versions: 2 means WAL.
    let wal_mode = header[18] == 2 || header[19] == 2;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_has_content = std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0);
    Ok(wal_mode && !wal_has_content)
}

/// What a statement reports back to the connection's hooks while it runs.
#[derive(Default)]
struct RunState {
    deadline: Option<Instant>,
    cancel: Option<CancelFlag>,
    timed_out: bool,
    cancelled: bool,
    denied: Option<String>,
    /// lode's own BEGIN or COMMIT is running (the authorizer lets it through).
    own_statement: bool,
}

struct GuardedConnection {
    conn: Connection,
    state: Arc<Mutex<RunState>>,
}

impl GuardedConnection {
    /// Runs lode's own transaction statement (never a user's text).
    fn own(&self, sql: &str) -> rusqlite::Result<()> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .own_statement = true;
        let result = self.conn.execute_batch(sql);
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .own_statement = false;
        result
    }

    /// Opens a read transaction unless one is open. Deferred: the shared lock is taken by
    /// the next statement's first read. A failure leaves the connection in autocommit,
    /// where every statement still runs correctly, only with its own lock.
    fn begin_read(&self) {
        if self.conn.is_autocommit() {
            let _ = self.own("BEGIN");
        }
    }

    /// Ends the read transaction, if one is open (nothing was written: COMMIT releases the
    /// lock and nothing else).
    fn end_read(&self) {
        if !self.conn.is_autocommit() && self.own("COMMIT").is_err() {
            let _ = self.own("ROLLBACK");
        }
    }
}

/// How often (in SQLite virtual-machine steps) the deadline is checked.
const PROGRESS_STEPS: i32 = 1000;

impl SqliteFile {
    /// Opens `path` read-only and checks it is a SQLite database. Never creates a file.
    pub fn open(path: &Path, limits: ExecLimits) -> Result<SqliteFile, ExecError> {
        let immutable = check_file(path)?;
        let db = SqliteFile {
            path: path.to_path_buf(),
            limits,
            idle: Mutex::new(Vec::new()),
            immutable,
            snapshots: std::sync::atomic::AtomicUsize::new(0),
        };
        // Open one connection now so a bad file is reported at open, not at the first query.
        let first = db.connect()?;
        first
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| ExecError::Open {
                path: path.to_path_buf(),
                message: if is_readonly_error(&e) || matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::CannotOpen) {
                    format!(
                        "{e}: the database has a -wal file that SQLite needs a -shm file beside \
                         to read, and cannot create one here; checkpoint it (sqlite3 FILE \
                         'PRAGMA wal_checkpoint(TRUNCATE)') or make its folder writable"
                    )
                } else {
                    format!("{e} (is it a SQLite database?)")
                },
            })?;
        db.release(first);
        Ok(db)
    }

    fn acquire(&self) -> Result<GuardedConnection, ExecError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn release(&self, conn: GuardedConnection) {
        if self.snapshots.load(std::sync::atomic::Ordering::Acquire) == 0 {
            conn.end_read();
            if !conn.conn.is_autocommit() {
                // Could not end it: never pool a connection that holds a lock.
                return;
            }
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 64 {
            idle.push(conn);
        }
    }

    fn connect(&self) -> Result<GuardedConnection, ExecError> {
        configure_sqlite();
        let open_err = |e: rusqlite::Error| ExecError::Open {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let uri = if self.immutable {
            format!("file:{}?mode=ro&immutable=1", uri_escape(&self.path))
        } else {
            format!("file:{}?mode=ro", uri_escape(&self.path))
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(uri, flags).map_err(open_err)?;
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(open_err)?;
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(open_err)?;
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
            false,
        )
        .map_err(open_err)?;
        // Statements cache plans per connection; the pool keeps them warm.
        conn.set_prepared_statement_cache_capacity(64);

        let state = Arc::new(Mutex::new(RunState::default()));
        let auth_state = Arc::clone(&state);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if matches!(ctx.action, AuthAction::Transaction { .. })
                && auth_state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .own_statement
            {
                return Authorization::Allow;
            }
            match authorize(&ctx) {
                Ok(()) => Authorization::Allow,
                Err(reason) => {
                    let mut s = auth_state.lock().unwrap_or_else(|p| p.into_inner());
                    // Keep the first specific reason: it names what the statement tried to
                    // do. A write to SQLite's own schema table comes before the DROP or
                    // CREATE that caused it, so it gives way to a later, specific reason.
                    let generic = s
                        .denied
                        .as_deref()
                        .is_none_or(|r| r.starts_with(SCHEMA_WRITE));
                    if generic {
                        s.denied = Some(reason);
                    }
                    Authorization::Deny
                }
            }
        }))
        .map_err(open_err)?;
        let progress_state = Arc::clone(&state);
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let mut s = progress_state.lock().unwrap_or_else(|p| p.into_inner());
                if s.cancel.as_ref().is_some_and(CancelFlag::is_cancelled) {
                    s.cancelled = true;
                    return true;
                }
                if s.deadline.is_some_and(|d| Instant::now() >= d) {
                    s.timed_out = true;
                    return true;
                }
                false
            }),
        )
        .map_err(open_err)?;
        Ok(GuardedConnection { conn, state })
    }
}

impl Target for SqliteFile {
    fn dialect_name(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> &Path {
        &self.path
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
        let guarded = self.acquire()?;
        if self.snapshots.load(Ordering::Acquire) > 0 {
            guarded.begin_read();
        }
        let result = run(&guarded, sql, limits, cancel);
        self.release(guarded);
        result
    }

    fn introspect(&self) -> Result<Schema, IntrospectError> {
        super::schema::introspect_sqlite(self)
    }

    /// The file's [`snapshot_id`](super::snapshot_id): a hash of its bytes.
    fn content_key(&self) -> Result<String, ExecError> {
        super::snapshot_id(&self.path).map_err(|e| ExecError::Open {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Pooled connections keep the read transaction their first statement opens until the
    /// last batch ends, instead of taking and releasing the file's shared lock (and checking
    /// for a changed file) around every statement.
    fn begin_batch(&self) {
        self.snapshots.fetch_add(1, Ordering::AcqRel);
    }

    fn end_batch(&self) {
        if self.snapshots.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last one: end the read transactions of the idle connections. A connection
            // in use now ends its own when it comes back (`release`).
            for conn in self.idle.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                conn.end_read();
            }
        }
    }
}

impl Database {
    /// Opens the SQLite file at `path` read-only and checks it is a SQLite database. Never
    /// creates a file.
    pub fn open(path: &Path, limits: ExecLimits) -> Result<Database, ExecError> {
        Ok(Database::from_target(Box::new(SqliteFile::open(
            path, limits,
        )?)))
    }

    /// Connects to a PostgreSQL database (see [`super::pg::PgDatabase::connect`]): the same
    /// interface as a SQLite file, every statement through the PostgreSQL executor.
    pub fn connect_url(
        url: &str,
        password_env: Option<&str>,
        limits: ExecLimits,
        refuse_writable: bool,
    ) -> Result<Database, ExecError> {
        let pg = super::pg::PgDatabase::connect(url, password_env, limits, refuse_writable)?;
        Ok(Database::from_target(Box::new(pg)))
    }

    /// A database of any kind that implements [`Target`].
    pub fn from_target(target: Box<dyn Target>) -> Database {
        Database { target }
    }

    /// The target itself.
    pub fn target(&self) -> &dyn Target {
        self.target.as_ref()
    }

    /// The file, or for a server its URL without the password.
    pub fn path(&self) -> &Path {
        self.target.location()
    }

    /// `sqlite` or `postgresql`: the SQL dialect statements are written in.
    pub fn dialect_name(&self) -> &'static str {
        self.target.dialect_name()
    }

    /// Whether this is a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.dialect_name() == "postgresql"
    }

    /// What identifies the database's contents now (see [`Target::content_key`]): for a
    /// SQLite file its [`snapshot_id`](super::snapshot_id) (a content hash); for PostgreSQL
    /// a hash of the server's write counters for the user tables.
    pub fn content_key(&self) -> Result<String, ExecError> {
        self.target.content_key()
    }

    /// Whether the account lode reads with could write (lode never does).
    pub fn can_write(&self) -> bool {
        self.target.can_write()
    }

    pub fn limits(&self) -> ExecLimits {
        self.target.limits()
    }

    /// Runs one read-only statement under the database's limits.
    pub fn query(&self, sql: &str) -> Result<QueryResult, ExecError> {
        self.query_with(sql, self.limits(), None)
    }

    /// Runs one read-only statement under the given limits; `cancel` stops it early.
    pub fn query_with(
        &self,
        sql: &str,
        limits: ExecLimits,
        cancel: Option<&CancelFlag>,
    ) -> Result<QueryResult, ExecError> {
        self.target.query_with(sql, limits, cancel)
    }

    /// Holds one consistent state of the database for a batch of statements (an
    /// evaluation) until the returned guard is dropped. On a SQLite file each pooled
    /// connection keeps the read transaction its first statement opens: the batch sees the
    /// database as it was when each connection first read it, whatever another program
    /// writes meanwhile; in rollback-journal mode such a writer waits for the batch to end
    /// (in WAL mode it does not). On PostgreSQL every statement is its own read-only
    /// transaction already, and this changes nothing.
    pub fn snapshot(&self) -> Snapshot<'_> {
        self.target.begin_batch();
        Snapshot { db: self }
    }

    /// [`query_with`](Database::query_with) for someone waiting at a screen: the answer (or
    /// the timeout, or the cancel) comes back at most [`DETACH_GRACE`] after the deadline or
    /// the cancel, even when SQLite is inside one long step it cannot be interrupted in (a
    /// chain of `replace()` calls over a large value checks no deadline until it returns).
    /// Such a step finishes on its own thread, bounded by `max_value_bytes`, and its
    /// connection then goes back to the pool. Batch work (evaluation, generation) calls
    /// `query_with` directly: a thread per statement would cost more than it saves there.
    pub fn query_detached(
        self: &Arc<Self>,
        sql: &str,
        limits: ExecLimits,
        cancel: Option<&CancelFlag>,
    ) -> Result<QueryResult, ExecError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let db = Arc::clone(self);
        let (text, flag) = (sql.to_string(), cancel.cloned());
        std::thread::Builder::new()
            .name("lode-query".into())
            .spawn(move || {
                // The receiver is gone only when the caller stopped waiting: nobody to tell.
                let _ = tx.send(db.query_with(&text, limits, flag.as_ref()));
            })
            .map_err(|e| ExecError::Sqlite {
                message: format!("cannot start a thread for the query: {e}"),
            })?;
        let start = Instant::now();
        let mut cancelled_at: Option<Instant> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(result) => return result,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ExecError::Sqlite {
                        message: "the query's thread ended without an answer".into(),
                    });
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if cancel.is_some_and(CancelFlag::is_cancelled) {
                        let at = *cancelled_at.get_or_insert(now);
                        if now - at >= DETACH_GRACE {
                            return Err(ExecError::Cancelled);
                        }
                    }
                    if now - start >= limits.timeout + DETACH_GRACE {
                        return Err(ExecError::Timeout {
                            elapsed: now - start,
                            limit: limits.timeout,
                        });
                    }
                }
            }
        }
    }
}

/// Process-wide SQLite settings, applied once before SQLite starts: memory statistics off.
/// With them on (SQLite's default) every allocation inside SQLite takes one global mutex,
/// and threads evaluating in parallel queue on it. lode reads no memory statistics.
///
/// SQLite accepts configuration only before its first connection; called later (another
/// part of the process opened one first) it refuses with `SQLITE_MISUSE` and nothing
/// changes, which is harmless. `main` calls it first thing.
pub fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int argument, as passed; sqlite3_config
        // is safe to call before initialisation, and returns SQLITE_MISUSE (changing
        // nothing) after it. `Once` keeps two threads from calling it at the same time.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            );
        }
    });
}

/// Percent-escapes the characters that would end or confuse a `file:` URI path.
fn uri_escape(path: &Path) -> String {
    let mut out = String::new();
    for ch in path.to_string_lossy().chars() {
        match ch {
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            _ => out.push(ch),
        }
    }
    out
}

/// The authorizer's policy: reading is allowed, everything else is refused with a reason.
fn authorize(ctx: &AuthContext<'_>) -> Result<(), String> {
    match &ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => Ok(()),
        AuthAction::Function { function_name } => {
            let name = function_name.to_ascii_lowercase();
            match name.as_str() {
                "load_extension" | "fts3_tokenizer" | "readfile" | "writefile" | "edit" => {
                    Err(format!("function {name}() is not allowed"))
                }
                _ => Ok(()),
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            if pragma_value.is_none() && READ_PRAGMAS.contains(&name.as_str()) {
                Ok(())
            } else if pragma_value.is_some() && ARGUMENT_PRAGMAS.contains(&name.as_str()) {
                // table_info('t') and friends take an argument but only read.
                Ok(())
            } else {
                Err(format!(
                    "PRAGMA {name} is not allowed (only read-only pragmas)"
                ))
            }
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Err("transactions are not allowed (one read-only statement only)".into())
        }
        AuthAction::Attach { .. } => Err("ATTACH is not allowed".into()),
        AuthAction::Detach { .. } => Err("DETACH is not allowed".into()),
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if table_name.starts_with("sqlite_") =>
        {
            Err(format!("{SCHEMA_WRITE} ({table_name}) is not allowed"))
        }
        AuthAction::Insert { table_name } => {
            Err(format!("INSERT into {table_name} is not allowed"))
        }
        AuthAction::Update { table_name, .. } => {
            Err(format!("UPDATE of {table_name} is not allowed"))
        }
        AuthAction::Delete { table_name } => {
            Err(format!("DELETE from {table_name} is not allowed"))
        }
        AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => Err("temporary objects are not allowed".into()),
        AuthAction::Analyze { .. } => Err("ANALYZE is not allowed (it writes statistics)".into()),
        AuthAction::Reindex { .. } => Err("REINDEX is not allowed".into()),
        other => Err(format!("{} is not allowed (read-only)", action_name(other))),
    }
}

/// The start of the reason given for writes to SQLite's own schema tables.
const SCHEMA_WRITE: &str = "changing the schema";

/// Pragmas that only report state when called without a value.
const READ_PRAGMAS: &[&str] = &[
    "table_list",
    "database_list",
    "collation_list",
    "function_list",
    "compile_options",
    "encoding",
    "page_size",
    "page_count",
    "user_version",
    "schema_version",
    "application_id",
    "foreign_keys",
    "query_only",
];

/// Pragmas whose argument names an object to describe rather than a value to set.
const ARGUMENT_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "table_list",
];

fn action_name(action: &AuthAction<'_>) -> String {
    let debug = format!("{action:?}");
    let name = debug.split([' ', '{', '(']).next().unwrap_or("statement");
    // CreateTable -> CREATE TABLE
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

fn run(
    guarded: &GuardedConnection,
    sql: &str,
    limits: ExecLimits,
    cancel: Option<&CancelFlag>,
) -> Result<QueryResult, ExecError> {
    let start = Instant::now();
    let deadline = start + limits.timeout;
    {
        let mut s = guarded.state.lock().unwrap_or_else(|p| p.into_inner());
        *s = RunState {
            deadline: Some(deadline),
            cancel: cancel.cloned(),
            ..RunState::default()
        };
    }
    let value_limit = i32::try_from(limits.max_value_bytes).unwrap_or(i32::MAX);
    guarded
        .conn
        .set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, value_limit)
        .map_err(|e| ExecError::Sqlite {
            message: format!("cannot set the value size limit: {e}"),
        })?;
    let outcome = step_all(&guarded.conn, sql, limits);
    let mut s = guarded.state.lock().unwrap_or_else(|p| p.into_inner());
    let state = std::mem::take(&mut *s);
    drop(s);
    let elapsed = start.elapsed();
    if outcome.is_ok() && elapsed > limits.timeout {
        // Finished, but after its deadline: over the limit is over the limit.
        return Err(ExecError::Timeout {
            elapsed,
            limit: limits.timeout,
        });
    }
    match outcome {
        Ok((columns, rows, truncated, truncated_cells)) => Ok(QueryResult {
            columns,
            rows,
            truncated,
            truncated_cells,
            elapsed: start.elapsed(),
        }),
        Err(e) => Err(classify(sql, e, state, elapsed, limits)),
    }
}

type Stepped = (Vec<String>, Vec<Vec<Value>>, bool, usize);

/// What a kept value costs beyond its text or blob bytes (the enum and the vector slot).
const VALUE_OVERHEAD: usize = std::mem::size_of::<Value>();

fn step_all(conn: &Connection, sql: &str, limits: ExecLimits) -> Result<Stepped, StepError> {
    if sql.trim().trim_end_matches(';').trim().is_empty() {
        return Err(StepError::Refused("the statement is empty".into()));
    }
    let mut stmt = conn.prepare_cached(sql).map_err(StepError::Sqlite)?;
    if !stmt.readonly() {
        return Err(StepError::Refused(
            "only read-only statements (SELECT or WITH … SELECT) may run".into(),
        ));
    }
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    if columns.is_empty() {
        return Err(StepError::Refused(
            "the statement returns no columns; only queries may run".into(),
        ));
    }
    let width = columns.len();
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut truncated_cells = 0usize;
    let mut kept_bytes = 0usize;
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next().map_err(StepError::Sqlite)? {
        if rows.len() >= limits.max_rows {
            truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let cell = row.get_ref(i).map_err(StepError::Sqlite)?;
            let (value, cut) = to_value(cell, limits.max_cell_bytes);
            truncated_cells += usize::from(cut);
            kept_bytes += VALUE_OVERHEAD
                + match &value {
                    Value::Text(s) => s.len(),
                    Value::Blob(b) => b.len(),
                    _ => 0,
                };
            values.push(value);
        }
        if kept_bytes > limits.max_result_bytes {
            return Err(StepError::Refused(format!(
                "the result is larger than {} MiB after {} rows (raise execution.max_result_mb, \
                 or select fewer rows or columns)",
                limits.max_result_bytes >> 20,
                rows.len() + 1
            )));
        }
        rows.push(values);
    }
    Ok((columns, rows, truncated, truncated_cells))
}

enum StepError {
    Refused(String),
    Sqlite(rusqlite::Error),
}

fn classify(
    sql: &str,
    e: StepError,
    state: RunState,
    elapsed: Duration,
    limits: ExecLimits,
) -> ExecError {
    match e {
        StepError::Refused(reason) => ExecError::Rejected { reason },
        StepError::Sqlite(err) => {
            if state.cancelled {
                ExecError::Cancelled
            } else if state.timed_out {
                ExecError::Timeout {
                    elapsed,
                    limit: limits.timeout,
                }
            } else if let Some(reason) = state.denied {
                let reason = if reason.starts_with(SCHEMA_WRITE) {
                    // SQLite stops at the schema-table write; name the statement instead.
                    format!("{}: {reason}", leading_words(sql, 3))
                } else {
                    reason
                };
                ExecError::Rejected { reason }
            } else if matches!(
                &err,
                rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::TooBig
            ) {
                ExecError::Rejected {
                    reason: format!(
                        "the statement builds a value larger than {} MiB (raise \
                         execution.max_value_mb to allow it)",
                        limits.max_value_bytes >> 20
                    ),
                }
            } else if matches!(err, rusqlite::Error::MultipleStatement) {
                ExecError::Rejected {
                    reason: "more than one statement (send exactly one)".into(),
                }
            } else if is_readonly_error(&err) {
                ExecError::Rejected {
                    reason: format!("the database is opened read-only: {err}"),
                }
            } else {
                ExecError::Sqlite {
                    message: sqlite_message(&err),
                }
            }
        }
    }
}

/// The first `n` words of a statement, upper-cased, for messages ("DROP TABLE singer").
fn leading_words(sql: &str, n: usize) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(n).collect();
    let mut text = words.join(" ");
    if let Some(i) = text.find(['(', ';']) {
        text.truncate(i);
    }
    let mut parts = text.splitn(3, ' ');
    let a = parts.next().unwrap_or_default().to_ascii_uppercase();
    let b = parts.next().unwrap_or_default().to_ascii_uppercase();
    let c = parts.next().unwrap_or_default();
    format!("{a} {b} {c}").trim().to_string()
}

fn is_readonly_error(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ReadOnly
    )
}

/// SQLite's own message (`no such column: x`), without rusqlite's wrapping.
fn sqlite_message(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

fn to_value(cell: ValueRef<'_>, max_bytes: usize) -> (Value, bool) {
    match cell {
        ValueRef::Null => (Value::Null, false),
        ValueRef::Integer(i) => (Value::Integer(i), false),
        ValueRef::Real(f) => (Value::Real(f), false),
        ValueRef::Text(bytes) => {
            let cut = bytes.len() > max_bytes;
            let kept = if cut { &bytes[..max_bytes] } else { bytes };
            let mut text = String::from_utf8_lossy(kept).into_owned();
            if cut {
                // A cut may split a UTF-8 sequence; drop the replacement char it leaves.
                while text.ends_with('\u{FFFD}') {
                    text.pop();
                }
                text.push('…');
            }
            (Value::Text(text), cut)
        }
        ValueRef::Blob(bytes) => {
            let cut = bytes.len() > max_bytes;
            let kept = if cut { &bytes[..max_bytes] } else { bytes };
            (Value::Blob(kept.to_vec()), cut)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB);
             INSERT INTO t VALUES (1, 'a', 1.5, x'00ff'), (2, 'bb', NULL, NULL), (3, 'ccc', 3.0, NULL);",
        )
        .unwrap();
        (dir, path)
    }

    /// A target of another kind, here one that wraps a SQLite file and counts what the rest
    /// of lode asks of it: `Database` reaches it only through the trait.
    struct Counting {
        inner: SqliteFile,
        counts: Arc<Counts>,
    }

    #[derive(Default)]
    struct Counts {
        queries: std::sync::atomic::AtomicUsize,
        batches: std::sync::atomic::AtomicIsize,
    }

    impl Target for Counting {
        fn dialect_name(&self) -> &'static str {
            "sqlite"
        }
        fn location(&self) -> &Path {
            self.inner.location()
        }
        fn limits(&self) -> ExecLimits {
            self.inner.limits()
        }
        fn query_with(
            &self,
            sql: &str,
            limits: ExecLimits,
            cancel: Option<&CancelFlag>,
        ) -> Result<QueryResult, ExecError> {
            self.counts.queries.fetch_add(1, Ordering::SeqCst);
            self.inner.query_with(sql, limits, cancel)
        }
        fn introspect(&self) -> Result<Schema, IntrospectError> {
            crate::sql::schema::introspect_sqlite(self)
        }
        fn content_key(&self) -> Result<String, ExecError> {
            self.inner.content_key()
        }
        fn begin_batch(&self) {
            self.counts.batches.fetch_add(1, Ordering::SeqCst);
            self.inner.begin_batch();
        }
        fn end_batch(&self) {
            self.counts.batches.fetch_sub(1, Ordering::SeqCst);
            self.inner.end_batch();
        }
    }

    #[test]
    fn every_use_of_a_database_goes_through_its_target() {
        let (_dir, path) = sample_db();
        let counts = Arc::new(Counts::default());
        let db = Database::from_target(Box::new(Counting {
            inner: SqliteFile::open(&path, ExecLimits::default()).unwrap(),
            counts: Arc::clone(&counts),
        }));
        assert_eq!(db.path(), path.as_path());
        let schema = crate::sql::schema::introspect(&db).unwrap();
        assert_eq!(schema.tables.len(), 1);
        assert_eq!(schema.tables[0].name, "t");
        {
            let _batch = db.snapshot();
            let _inner = db.snapshot();
            assert_eq!(counts.batches.load(Ordering::SeqCst), 2);
            let r = db.query("SELECT name FROM t ORDER BY id").unwrap();
            assert_eq!(r.rows.len(), 3);
        }
        assert!(matches!(
            db.query("DELETE FROM t"),
            Err(ExecError::Rejected { .. })
        ));
        let key = db.content_key().unwrap();
        assert_eq!(key, crate::sql::snapshot_id(&path).unwrap());
        // The wrapped target saw every statement (introspection's included), and every
        // batch it was told of ended.
        assert!(counts.queries.load(Ordering::SeqCst) > 3);
        assert_eq!(counts.batches.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn returns_typed_values_and_columns() {
        let (_d, path) = sample_db();
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        let r = db
            .query("SELECT id, name, score, data FROM t ORDER BY id")
            .unwrap();
        assert_eq!(r.columns, vec!["id", "name", "score", "data"]);
        assert_eq!(r.rows.len(), 3);
        assert_eq!(r.rows[0][0], Value::Integer(1));
        assert_eq!(r.rows[0][1], Value::Text("a".into()));
        assert_eq!(r.rows[0][2], Value::Real(1.5));
        assert_eq!(r.rows[0][3], Value::Blob(vec![0, 255]));
        assert_eq!(r.rows[1][2], Value::Null);
        assert!(!r.truncated);
    }

    #[test]
    fn a_snapshot_holds_one_state_and_frees_the_file_when_it_ends() {
        let (_d, path) = sample_db();
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        let count = |db: &Database| db.query("SELECT count(*) FROM t").unwrap().rows[0][0].clone();
        {
            let _snapshot = db.snapshot();
            assert_eq!(count(&db), Value::Integer(3));
            // The batch's read transaction is open: in rollback-journal mode a writer
            // cannot commit until it ends.
            let writer = Connection::open(&path).unwrap();
            writer.busy_timeout(Duration::ZERO).unwrap();
            assert!(
                writer
                    .execute("INSERT INTO t (name) VALUES ('d')", [])
                    .is_err()
            );
            drop(writer);
            // lode's own BEGIN and COMMIT pass the authorizer; a user's never do.
            for text in ["COMMIT", "BEGIN", "ROLLBACK", "END"] {
                assert!(
                    matches!(db.query(text), Err(ExecError::Rejected { .. })),
                    "{text} was not refused"
                );
            }
            assert_eq!(count(&db), Value::Integer(3));
        }
        // Ended: the pooled connection let go of the file, and sees the write.
        let writer = Connection::open(&path).unwrap();
        writer.busy_timeout(Duration::ZERO).unwrap();
        writer
            .execute("INSERT INTO t (name) VALUES ('d')", [])
            .unwrap();
        assert_eq!(count(&db), Value::Integer(4));
    }

    #[test]
    fn caps_rows_and_cells_and_reports_it() {
        let (_d, path) = sample_db();
        let limits = ExecLimits {
            max_rows: 2,
            max_cell_bytes: 2,
            ..ExecLimits::default()
        };
        let db = Database::open(&path, limits).unwrap();
        let r = db.query("SELECT name FROM t ORDER BY id").unwrap();
        assert_eq!(r.rows.len(), 2);
        assert!(r.truncated);
        assert_eq!(r.truncated_cells, 0);
        let r = db.query("SELECT name FROM t WHERE id = 3").unwrap();
        assert_eq!(r.rows[0][0], Value::Text("cc…".into()));
        assert_eq!(r.truncated_cells, 1);
    }

    #[test]
    fn cancel_flag_stops_a_running_query() {
        let (_d, path) = sample_db();
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        let flag = CancelFlag::new();
        flag.cancel();
        let err = db
            .query_with(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                ExecLimits::default(),
                Some(&flag),
            )
            .unwrap_err();
        assert_eq!(err, ExecError::Cancelled);
        // The connection is reusable afterwards.
        assert_eq!(db.query("SELECT 1").unwrap().rows[0][0], Value::Integer(1));
    }

    #[test]
    fn reports_sqlite_errors_plainly() {
        let (_d, path) = sample_db();
        let db = Database::open(&path, ExecLimits::default()).unwrap();
        let err = db.query("SELECT nope FROM t").unwrap_err();
        assert_eq!(
            err,
            ExecError::Sqlite {
                message: "no such column: nope".into()
            }
        );
    }
}
