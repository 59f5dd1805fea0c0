//! A real PostgreSQL server for tests: [`server`] gives each caller a database of its own on
//! the server named by `LODE_TEST_PG_URL` (what `.ci/run` sets), or else on a throwaway
//! cluster this process starts for itself in a temporary directory on a free local port.
//! When neither can be had it prints one visible line saying why and returns `None`, so the
//! test skips.
//!
//! The private cluster is started once per test binary and shared by its tests (each still
//! gets its own database). It is run by a small keeper shell script whose standard input is a
//! pipe this process holds open in a static until it exits: however the process ends (tests
//! pass, panic, `process::exit`, a signal, `SIGKILL`), the kernel closes the pipe, the keeper
//! reads end-of-file, stops the cluster and deletes its directory, even when the process died
//! while the cluster was still starting. The keeper runs in its own process group with
//! `SIGINT`, `SIGHUP` and `SIGPIPE` ignored, so a Ctrl-C that stops the tests, or a reader gone
//! before `ready` was written, does not stop it before it has cleaned up. Nothing relies on a
//! test calling a stop function.
//!
//! `initdb` refuses to run as root: as root the cluster belongs to the `lode-pg` system user
//! (created with `useradd` when missing) and is run through `runuser`.
//!
//! TLS: the private cluster runs with `ssl=on`, its certificate (for `localhost` and
//! 127.0.0.1) signed by a throwaway CA that `tests/support/pg-tls-certs.sh` makes with the
//! `openssl` command line; [`PgServer::ca_file`] gives that CA's certificate. Plain
//! connections are still accepted. The server of `LODE_TEST_PG_URL` has TLS for the tests
//! when `LODE_TEST_PG_CA` names its CA's certificate (as `.ci/run` sets both). Without
//! `openssl` the cluster runs without TLS and [`tls_server`] skips, saying so.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The synchronous client the kit uses, for tests that connect themselves (use it off a Tokio
/// runtime thread: it runs one inside).
pub use postgres;

/// The environment variable naming an existing server (a superuser URL,
/// `postgres://user[:password]@host[:port]/database`).
pub const URL_VAR: &str = "LODE_TEST_PG_URL";

/// The environment variable naming the PEM certificate of the CA that signed the TLS
/// certificate of `LODE_TEST_PG_URL`'s server (for `localhost` and 127.0.0.1).
pub const CA_VAR: &str = "LODE_TEST_PG_CA";

/// The system user that owns the throwaway cluster when the tests run as root.
pub const PG_USER: &str = "lode-pg";

/// One test's database on a PostgreSQL server. Dropping it drops the database and the roles
/// made through it.
pub struct PgServer {
    admin: String,
    database: String,
    url: String,
    roles: Mutex<Vec<String>>,
    /// The CA's certificate, or why the server has no TLS for the tests.
    ca: Result<PathBuf, String>,
}

/// A database of the caller's own on a PostgreSQL server, or `None` (after printing one line
/// to stderr, past the test harness's capture, saying why) when no server can be had.
///
/// Panics when `LODE_TEST_PG_URL` is set but its server cannot be used, and when a server
/// that did start refuses to create a database: those are failures, not reasons to skip.
pub fn server() -> Option<PgServer> {
    let (admin, given, ca) = match admin_server() {
        Ok(found) => found,
        Err(reason) => {
            let _ = writeln!(
                std::io::stderr(),
                "skipping: no PostgreSQL server ({reason}; set {URL_VAR} or install postgresql)"
            );
            return None;
        }
    };
    let parts = UrlParts::parse(&admin).unwrap_or_else(|e| panic!("{URL_VAR}: {e}"));
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let database = format!(
        "lode_t_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let created = run_sql(&admin, &format!("DROP DATABASE IF EXISTS {database}"))
        .and_then(|_| run_sql(&admin, &format!("CREATE DATABASE {database}")));
    if let Err(e) = created {
        let source = if given {
            format!("the server of {URL_VAR}={}", parts.redacted())
        } else {
            "the private PostgreSQL cluster".to_string()
        };
        panic!("{source} could not create database {database}: {e}");
    }
    let url = parts.with(None, &database);
    Some(PgServer {
        admin,
        database,
        url,
        roles: Mutex::new(Vec::new()),
        ca,
    })
}

/// [`server`], for tests of TLS: also `None` (after printing one line saying why) when the
/// server has no TLS for the tests (no `openssl` for the private cluster, or no
/// `LODE_TEST_PG_CA` beside `LODE_TEST_PG_URL`).
pub fn tls_server() -> Option<PgServer> {
    let server = server()?;
    if let Err(reason) = &server.ca {
        let _ = writeln!(
            std::io::stderr(),
            "skipping: the PostgreSQL server has no TLS for the tests ({reason})"
        );
        return None;
    }
    Some(server)
}

impl PgServer {
    /// A superuser URL to this test's own database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's superuser URL to its maintenance database (as `LODE_TEST_PG_URL` gives
    /// it, or `postgres://postgres@127.0.0.1:PORT/postgres` for the private cluster).
    pub fn admin_url(&self) -> &str {
        &self.admin
    }

    /// The PEM certificate of the throwaway CA that signed the server's TLS certificate (for
    /// `localhost` and 127.0.0.1), when the server has TLS for the tests.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref().ok()
    }

    /// This test's database name (`lode_t_<pid>_<n>`).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs `sql` (one or more `;`-separated statements, as one implicit transaction) as the
    /// superuser in this test's database; the rows of every statement, one per line, columns
    /// joined by `|`, NULL as an empty string (as `psql -At` prints them).
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        run_sql(&self.url, sql)
    }

    /// A URL to this test's database as `role` (with `password` when given), on the same
    /// host, port and options as [`url`](Self::url).
    pub fn role_url(&self, role: &str, password: Option<&str>) -> String {
        let parts = UrlParts::parse(&self.url).expect("the URL was parsed before");
        parts.with(Some((role, password)), &self.database)
    }

    /// Creates a login role that may connect to this test's database and nothing more; its
    /// name is `<database>_<name>` (roles are server-wide, so it is unique per test) and is
    /// returned. The role is dropped with the database.
    pub fn create_role(&self, name: &str, password: Option<&str>) -> Result<String, String> {
        let role = format!("{}_{name}", self.database);
        let mut sql = format!(
            "DROP ROLE IF EXISTS {r}; CREATE ROLE {r} LOGIN",
            r = quote_ident(&role)
        );
        if let Some(password) = password {
            sql.push_str(&format!(" PASSWORD {}", quote_literal(password)));
        }
        sql.push_str(&format!(
            "; GRANT CONNECT ON DATABASE {} TO {}",
            quote_ident(&self.database),
            quote_ident(&role)
        ));
        self.roles.lock().unwrap().push(role.clone());
        run_sql(&self.admin, &sql)?;
        Ok(role)
    }

    /// Creates a login role (see [`create_role`](Self::create_role)) that can read every
    /// table of schema `public` in this test's database, those made later by the superuser
    /// included, and write nothing: PUBLIC loses CREATE on schema `public` (granted by
    /// default before PostgreSQL 15) and TEMPORARY on this database.
    pub fn create_readonly_role(
        &self,
        name: &str,
        password: Option<&str>,
    ) -> Result<String, String> {
        let role = self.create_role(name, password)?;
        let r = quote_ident(&role);
        self.psql(&format!(
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
             REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC; \
             GRANT USAGE ON SCHEMA public TO {r}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {r}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {r}",
            db = quote_ident(&self.database)
        ))?;
        Ok(role)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // FORCE (PostgreSQL 13+) ends connections a test left open; older servers get a plain drop.
        let drop_db = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database);
        let mut result = run_sql(&self.admin, &drop_db);
        if result.is_err() {
            result = run_sql(
                &self.admin,
                &format!("DROP DATABASE IF EXISTS {}", self.database),
            );
        }
        if let Err(e) = result {
            eprintln!(
                "warning: could not drop test database {}: {e}",
                self.database
            );
        }
        // Grants and default privileges lived in the database, so the roles drop cleanly now.
        for role in self.roles.lock().unwrap().drain(..) {
            if let Err(e) = run_sql(
                &self.admin,
                &format!("DROP ROLE IF EXISTS {}", quote_ident(&role)),
            ) {
                eprintln!("warning: could not drop test role {role}: {e}");
            }
        }
    }
}

/// The superuser URL of the server to use, whether it came from `LODE_TEST_PG_URL`, and its
/// CA's certificate (or why it has no TLS), or why there is none.
fn admin_server() -> Result<(String, bool, Result<PathBuf, String>), String> {
    if let Ok(url) = std::env::var(URL_VAR)
        && !url.trim().is_empty()
    {
        let url = url.trim().to_string();
        let parts = UrlParts::parse(&url).unwrap_or_else(|e| panic!("{URL_VAR}: {e}"));
        if let Err(e) = run_sql(&url, "SELECT 1") {
            panic!(
                "{URL_VAR}={} is set but its server cannot be used: {e}",
                parts.redacted()
            );
        }
        let ca = match std::env::var(CA_VAR) {
            Ok(path) if !path.trim().is_empty() => {
                let path = PathBuf::from(path.trim());
                if !path.is_file() {
                    panic!("{CA_VAR}={} is set but is not a file", path.display());
                }
                Ok(path)
            }
            _ => Err(format!("{CA_VAR} is not set beside {URL_VAR}")),
        };
        return Ok((url, true, ca));
    }
    static PRIVATE: OnceLock<Result<Private, String>> = OnceLock::new();
    match PRIVATE.get_or_init(start_private) {
        Ok(private) => Ok((private.url.clone(), false, private.ca.clone())),
        Err(reason) => Err(reason.clone()),
    }
}

/// The private cluster: its URL, and the write end of its keeper's stdin, held until the
/// process exits (statics are never dropped; the kernel closes it).
struct Private {
    url: String,
    ca: Result<PathBuf, String>,
    _keeper: ChildStdin,
}

/// Makes the throwaway CA and the server's certificate: `sh -c CERTS certs CA_DIR DATA_DIR`.
const CERTS: &str = include_str!("../pg-tls-certs.sh");

/// Started by the keeper as `sh -c KEEPER keeper BIN_DIR PORT CERTS`: makes the cluster (with
/// TLS when the certificates could be made), prints `ready DIR` and `tls` or `no tls: why`, or
/// `error: …`, then waits for end-of-file on stdin and removes everything.
const KEEPER: &str = r#"
trap '' INT HUP PIPE
bin=$1 port=$2 certs=$3
cd / || exit 1
dir=$(mktemp -d "${TMPDIR:-/tmp}/lode-pg.XXXXXXXX" 2>/dev/null || mktemp -d /tmp/lode-pg.XXXXXXXX) \
  || { echo "error: mktemp -d failed"; exit 1; }
if ! out=$("$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync 2>&1); then
  echo "error: initdb failed: $(printf '%s\n' "$out" | tail -n 2 | tr '\n' ' ')"
  rm -rf "$dir"; exit 1
fi
if why=$(sh -c "$certs" lode-pg-certs "$dir" "$dir/data" 2>&1); then
  ssl="-c ssl=on" tls="tls"
else
  ssl="" tls="no tls: $(printf '%s\n' "$why" | tr '\n' ' ')"
fi
if ! "$bin/pg_ctl" start -w -t 60 -s -D "$dir/data" -l "$dir/log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off $ssl" \
    >/dev/null 2>&1; then
  echo "error: pg_ctl start failed on port $port: $(tail -n 2 "$dir/log" 2>/dev/null | tr '\n' ' ')"
  "$bin/pg_ctl" stop -D "$dir/data" -m immediate -s >/dev/null 2>&1
  rm -rf "$dir"; exit 1
fi
echo "ready $dir"
echo "$tls"
exec >/dev/null 2>&1
read -r _
"$bin/pg_ctl" stop -D "$dir/data" -m immediate -s -t 30
rm -rf "$dir"
"#;

fn start_private() -> Result<Private, String> {
    let bin = bin_dir().ok_or_else(|| {
        "initdb not found under /usr/lib/postgresql/*/bin or on the PATH".to_string()
    })?;
    let prefix = user_prefix()?;
    let mut last = String::new();
    // A port free a moment ago can be taken before the server binds it: try a few.
    for _ in 0..3 {
        let port = free_port()?;
        match launch(&bin, &prefix, port) {
            Ok(private) => return Ok(private),
            Err(e) if e.contains("pg_ctl start failed") => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn launch(bin: &Path, prefix: &[String], port: u16) -> Result<Private, String> {
    use std::os::unix::process::CommandExt;
    let mut argv: Vec<String> = prefix.to_vec();
    argv.extend([
        "sh".to_string(),
        "-c".to_string(),
        KEEPER.to_string(),
        "lode-pg-keeper".to_string(),
        bin.display().to_string(),
        port.to_string(),
        CERTS.to_string(),
    ]);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not run {}: {e}", argv[0]))?;
    let keeper = child.stdin.take().expect("piped stdin");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let read = out.read_line(&mut line);
    let line = line.trim();
    match line.strip_prefix("ready ") {
        Some(dir) if read.is_ok() => {
            let mut tls = String::new();
            let _ = out.read_line(&mut tls);
            let ca = match tls.trim() {
                "tls" => Ok(Path::new(dir).join("ca.crt")),
                other => Err(other
                    .strip_prefix("no tls: ")
                    .unwrap_or("the cluster script said nothing about TLS")
                    .trim()
                    .to_string()),
            };
            Ok(Private {
                url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                ca,
                _keeper: keeper,
            })
        }
        _ => {
            drop(keeper);
            let _ = child.wait();
            Err(match line.strip_prefix("error: ") {
                Some(e) => e.to_string(),
                None => format!("the cluster script ended without a word ({line:?})"),
            })
        }
    }
}

/// The newest `/usr/lib/postgresql/N/bin` holding `initdb` and `pg_ctl`, else the directory
/// `initdb` on the PATH really lives in.
fn bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versions = BTreeMap::new();
    for entry in std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(version) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let dir = entry.path().join("bin");
        if complete(&dir) {
            versions.insert(version, dir);
        }
    }
    if let Some((_, dir)) = versions.pop_last() {
        return Some(dir);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| complete(d))
}

/// The command prefix that runs the cluster: nothing for an ordinary user; as root (which
/// initdb refuses) `runuser -u lode-pg --`, creating the user when missing.
fn user_prefix() -> Result<Vec<String>, String> {
    if !is_root() {
        return Ok(Vec::new());
    }
    let exists = || {
        Command::new("id")
            .args(["-u", PG_USER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !exists() {
        let made = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", PG_USER])
            .output();
        // Another test binary may have made it meanwhile: ask again rather than trust the status.
        if !exists() {
            let why = match made {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                Err(e) => e.to_string(),
            };
            return Err(format!(
                "running as root, and the {PG_USER} user that would own the cluster could not be created: {why}"
            ));
        }
    }
    let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| "running as root, and runuser (util-linux) is missing".to_string())?;
    Ok(vec![
        runuser.into(),
        "-u".into(),
        PG_USER.into(),
        "--".into(),
    ])
}

fn is_root() -> bool {
    // Effective uid: the third field of /proc/self/status's `Uid:` line.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
        && let Some(euid) = line.split_whitespace().nth(2)
    {
        return euid == "0";
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("no free local port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free local port: {e}"))
}

/// Runs `sql` on a connection of its own, in a thread of its own: the synchronous client
/// runs a Tokio runtime inside, which must not be started on a thread of a caller's runtime
/// (`#[tokio::test]`).
fn run_sql(url: &str, sql: &str) -> Result<String, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut client = postgres::Client::connect(url, postgres::NoTls)
                    .map_err(|e| format!("connecting: {}", describe(&e)))?;
                let messages = client.simple_query(sql).map_err(|e| describe(&e))?;
                let mut lines = Vec::new();
                for message in messages {
                    if let postgres::SimpleQueryMessage::Row(row) = message {
                        let cells: Vec<&str> =
                            (0..row.len()).map(|i| row.get(i).unwrap_or("")).collect();
                        lines.push(cells.join("|"));
                    }
                }
                Ok(lines.join("\n"))
            })
            .join()
            .unwrap_or_else(|_| Err("the SQL thread panicked".to_string()))
    })
}

fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `scheme://[user[:password]@]host[:port][/database][?options]`, the URL form only.
struct UrlParts {
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    host: String,
    query: Option<String>,
}

impl UrlParts {
    fn parse(url: &str) -> Result<UrlParts, String> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "postgres" || *s == "postgresql")
            .ok_or_else(|| {
                "expected a URL postgres://user[:password]@host[:port]/database".to_string()
            })?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q.to_string())),
            None => (rest, None),
        };
        let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (Some(user.to_string()), Some(pw.to_string())),
                None => (Some(u.to_string()), None),
            },
            None => (None, None),
        };
        Ok(UrlParts {
            scheme: scheme.to_string(),
            user,
            password,
            host: host.to_string(),
            query,
        })
    }

    /// The URL to `database` as `login` (role and password, percent-encoded here) or as the
    /// original user.
    fn with(&self, login: Option<(&str, Option<&str>)>, database: &str) -> String {
        let userinfo = match login {
            Some((role, password)) => {
                let mut u = encode(role);
                if let Some(pw) = password {
                    u.push(':');
                    u.push_str(&encode(pw));
                }
                Some(u)
            }
            None => self.user.as_ref().map(|u| match &self.password {
                Some(pw) => format!("{u}:{pw}"),
                None => u.clone(),
            }),
        };
        let mut url = format!("{}://", self.scheme);
        if let Some(u) = userinfo {
            url.push_str(&u);
            url.push('@');
        }
        url.push_str(&self.host);
        url.push('/');
        url.push_str(&encode(database));
        if let Some(q) = &self.query {
            url.push('?');
            url.push_str(q);
        }
        url
    }

    /// The URL without its password, for messages.
    fn redacted(&self) -> String {
        let mut url = format!("{}://", self.scheme);
        if let Some(u) = &self.user {
            url.push_str(u);
            if self.password.is_some() {
                url.push_str(":***");
            }
            url.push('@');
        }
        url.push_str(&self.host);
        url
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_host_and_options_and_swap_login_and_database() {
        let parts =
            UrlParts::parse("postgresql://admin:s3cret@db.example:6543/main?sslmode=disable")
                .unwrap();
        assert_eq!(
            parts.with(None, "lode_t_1_0"),
            "postgresql://admin:s3cret@db.example:6543/lode_t_1_0?sslmode=disable"
        );
        assert_eq!(
            parts.with(Some(("ro", Some("p@ss word"))), "lode_t_1_0"),
            "postgresql://ro:p%40ss%20word@db.example:6543/lode_t_1_0?sslmode=disable"
        );
        assert_eq!(parts.redacted(), "postgresql://admin:***@db.example:6543");
        let bare = UrlParts::parse("postgres://127.0.0.1:5433").unwrap();
        assert_eq!(
            bare.with(Some(("r", None)), "d"),
            "postgres://r@127.0.0.1:5433/d"
        );
        assert!(UrlParts::parse("host=localhost user=postgres").is_err());
    }
}
