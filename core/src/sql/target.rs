//! The one interface every kind of user database is reached through.
//!
//! A [`Target`] is a database lode reads: a SQLite file ([`super::exec::SqliteFile`]) or a
//! PostgreSQL server ([`super::pg::PgDatabase`]). Each kind connects in its own way and
//! enforces the same guarantees in its own way (read-only, one statement, time, row and
//! memory limits, cancellation), and says which SQL dialect it speaks. The rest of lode holds
//! a [`Database`](super::Database), which wraps one `Box<dyn Target>` and adds what is the
//! same for every kind (the detached query for a waiting screen, the batch snapshot guard):
//! nothing outside this module's siblings touches a user database.

use std::path::Path;

use super::exec::{CancelFlag, ExecError, ExecLimits, QueryResult};
use super::schema::{IntrospectError, Schema};

pub trait Target: Send + Sync {
    /// `sqlite` or `postgresql`: the SQL dialect statements are written in (the name
    /// analysis, prompts and the offline generator choose their dialect by).
    fn dialect_name(&self) -> &'static str;

    /// Where the database is, for messages: a SQLite file's path, or a server's URL without
    /// its password.
    fn location(&self) -> &Path;

    /// The default limits every statement runs under unless a caller gives its own.
    fn limits(&self) -> ExecLimits;

    /// Runs one read-only statement under `limits`; `cancel` stops it early. Text that is
    /// not exactly one read-only statement is refused before it changes anything; a
    /// statement past `limits.timeout` is stopped and reported as a timeout.
    fn query_with(
        &self,
        sql: &str,
        limits: ExecLimits,
        cancel: Option<&CancelFlag>,
    ) -> Result<QueryResult, ExecError>;

    /// Tables and views with their columns, keys, foreign keys, indexes, row counts and
    /// sample values (and comments, where the kind has them).
    fn introspect(&self) -> Result<Schema, IntrospectError>;

    /// What identifies the database's contents now: equal keys mean the same data, so
    /// results computed on it can be reused.
    fn content_key(&self) -> Result<String, ExecError>;

    /// Whether the account lode reads with could write. lode never writes; a read-only
    /// account is the safer setup and lode warns when it is not one.
    fn can_write(&self) -> bool {
        false
    }

    /// A batch starts that wants every statement to see one state of the data (see
    /// [`Database::snapshot`](super::Database::snapshot)); calls nest.
    fn begin_batch(&self) {}

    /// The batch [`begin_batch`](Target::begin_batch) opened has ended.
    fn end_batch(&self) {}
}
