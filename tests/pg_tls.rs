//! TLS to a real PostgreSQL server (`lode_testkit::pg::tls_server`: `ssl=on`, its certificate
//! for `localhost` and 127.0.0.1 signed by a throwaway CA): `sslmode=require` with the CA in
//! `sslrootcert` (or `database.ssl_root_cert` in config.yml) gives a TLS session, cancels
//! included; without the CA the certificate is not trusted and the message says so, with the
//! fix and without the password; a wrong host name fails even under `require`; a missing CA
//! file is named; `disable` and `prefer` without the CA give plain sessions. Every test skips,
//! saying so, when no server with TLS can be had.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lode_core::sql::{CancelFlag, Database, ExecError, ExecLimits, Value};
use lode_testkit::pg::{self, PgServer};

const SECRET: &str = "Tls-s3cret-Pw4";

/// Whether this session is TLS, asked of the server.
const IS_TLS: &str = "SELECT CASE WHEN ssl THEN 'tls-on' ELSE 'tls-off' END AS s \
                      FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn lode(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lode"));
    cmd.current_dir(dir).env_remove("PGPASSWORD").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run lode")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `url` with `params` (`key=value`, values percent-encoded here) added to its query.
fn with(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_string();
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        out.push_str(k);
        out.push('=');
        for byte in v.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

/// `url` with its host replaced by `host` (the port, login, database and options kept).
fn with_host(url: &str, host: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (login, hostport) = match authority.rsplit_once('@') {
        Some((l, h)) => (format!("{l}@"), h),
        None => (String::new(), authority),
    };
    let port = hostport.rsplit_once(':').map(|(_, p)| p);
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{login}{host}{port}{tail}")
}

fn ca(pg: &PgServer) -> String {
    pg.ca_file()
        .expect("tls_server gives a CA")
        .display()
        .to_string()
}

fn session_tls(db: &Database) -> String {
    match &db.query(IS_TLS).unwrap().rows[0][0] {
        Value::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    }
}

fn connect(url: &str) -> Result<Database, ExecError> {
    Database::connect_url(url, None, ExecLimits::default(), false)
}

#[test]
fn require_with_the_ca_gives_a_tls_session_that_queries_and_cancels() {
    let Some(pg) = pg::tls_server() else { return };
    pg.psql("CREATE TABLE t (x integer); INSERT INTO t VALUES (1), (2), (3)")
        .unwrap();
    let ca = ca(&pg);
    for mode in ["require", "verify-ca", "verify-full"] {
        let url = with(pg.url(), &[("sslmode", mode), ("sslrootcert", &ca)]);
        let db = connect(&url).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(session_tls(&db), "tls-on", "{mode}");
        assert_eq!(
            db.query("SELECT sum(x) FROM t").unwrap().rows[0][0],
            Value::Integer(6)
        );
    }

    // The cancel request goes over the same verified TLS: with sslmode=require a request
    // without it would be refused, and the statement would run to the watcher's deadline.
    let url = with(
        pg.url(),
        &[("sslmode", "verify-full"), ("sslrootcert", &ca)],
    );
    let limits = ExecLimits {
        timeout: Duration::from_secs(20),
        ..ExecLimits::default()
    };
    let db = Database::connect_url(&url, None, limits, false).unwrap();
    let flag = CancelFlag::new();
    let canceller = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            flag.cancel();
        })
    };
    let start = Instant::now();
    let outcome = db.query_with("SELECT pg_sleep(15)", limits, Some(&flag));
    canceller.join().unwrap();
    assert!(
        matches!(outcome, Err(ExecError::Cancelled)),
        "{outcome:?} after {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // The pooled connection still works after the cancel.
    assert_eq!(session_tls(&db), "tls-on");

    // The command line too.
    let dir = tempfile::tempdir().unwrap();
    let out = lode(dir.path(), &["sql", "--db-url", &url, IS_TLS], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("tls-on"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn require_without_the_ca_is_not_trusted_and_says_how_to_fix_it() {
    let Some(pg) = pg::tls_server() else { return };
    let role = pg.create_readonly_role("notrust", Some(SECRET)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for mode in ["require", "verify-ca", "verify-full"] {
        let url = with(&pg.role_url(&role, Some(SECRET)), &[("sslmode", mode)]);
        let err = connect(&url)
            .err()
            .unwrap_or_else(|| panic!("{mode}: connected"));
        let shown = err.to_string();
        assert!(shown.contains("certificate not trusted"), "{mode}: {shown}");
        assert!(
            shown.contains("sslrootcert") && shown.contains("ssl_root_cert"),
            "{shown}"
        );
        assert!(shown.contains("sslmode=disable"), "{shown}");
        let host = pg
            .url()
            .split('@')
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap();
        assert!(shown.contains(host), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");

        let out = lode(dir.path(), &["sql", "--db-url", &url, "SELECT 1"], &[]);
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert_ne!(out.status.code(), Some(0), "{mode}: {o}");
        assert!(e.contains("certificate not trusted"), "{mode}: {e}");
        assert!(!o.contains(SECRET) && !e.contains(SECRET), "{o}{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn prefer_uses_tls_when_it_verifies_and_else_a_plain_session() {
    let Some(pg) = pg::tls_server() else { return };
    let ca = ca(&pg);
    // The default is prefer: the server's certificate is not trusted without the CA, so the
    // session is plain, as before TLS (libpq's prefer retries without TLS).
    let db = connect(pg.url()).unwrap();
    assert_eq!(session_tls(&db), "tls-off");
    // Later connections of the pool go plain at once, and work.
    let many: Vec<_> = (0..3)
        .map(|_| {
            let db = &db;
            std::thread::scope(|s| s.spawn(|| session_tls(db)).join().unwrap())
        })
        .collect();
    assert!(many.iter().all(|s| s == "tls-off"), "{many:?}");
    let db = connect(&with(
        pg.url(),
        &[("sslmode", "prefer"), ("sslrootcert", &ca)],
    ))
    .unwrap();
    assert_eq!(session_tls(&db), "tls-on");
}

#[test]
fn sslmode_disable_gives_a_plain_session() {
    let Some(pg) = pg::tls_server() else { return };
    let ca = ca(&pg);
    for url in [
        with(pg.url(), &[("sslmode", "disable")]),
        with(pg.url(), &[("sslmode", "disable"), ("sslrootcert", &ca)]),
    ] {
        let db = connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(session_tls(&db), "tls-off", "{url}");
    }
}

#[test]
fn a_host_name_the_certificate_does_not_list_fails_even_under_require() {
    let Some(pg) = pg::tls_server() else { return };
    let ca = ca(&pg);
    // The certificate names localhost and 127.0.0.1. `hostaddr` connects to 127.0.0.1 while
    // the name checked is the URL's host.
    let wrong = with_host(pg.url(), "lode-wrong-name.invalid");
    for mode in ["verify-full", "require"] {
        let url = with(
            &wrong,
            &[
                ("hostaddr", "127.0.0.1"),
                ("sslmode", mode),
                ("sslrootcert", &ca),
            ],
        );
        let err = connect(&url)
            .err()
            .unwrap_or_else(|| panic!("{mode}: connected"));
        let shown = err.to_string();
        assert!(shown.contains("certificate not trusted"), "{shown}");
        assert!(shown.contains("lode-wrong-name.invalid"), "{shown}");
        assert!(shown.contains("does not name"), "{shown}");
    }
    // The same server by the names the certificate lists.
    for host in ["localhost", "127.0.0.1"] {
        let url = with(
            &with_host(pg.url(), host),
            &[("sslmode", "verify-full"), ("sslrootcert", &ca)],
        );
        let db = connect(&url).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(session_tls(&db), "tls-on", "{host}");
    }
}

#[test]
fn a_missing_or_bad_ca_file_is_named_with_the_fix() {
    let Some(pg) = pg::tls_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let role = pg.create_readonly_role("cafile", Some(SECRET)).unwrap();
    for file in [&missing, &not_pem] {
        let url = with(
            &pg.role_url(&role, Some(SECRET)),
            &[
                ("sslmode", "require"),
                ("sslrootcert", &file.display().to_string()),
            ],
        );
        let shown = connect(&url).err().expect("connected").to_string();
        assert!(shown.contains(&file.display().to_string()), "{shown}");
        assert!(shown.contains("CA certificate file"), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
        let out = lode(dir.path(), &["sql", "--db-url", &url, "SELECT 1"], &[]);
        let e = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0));
        assert!(e.contains(&file.display().to_string()), "{e}");
        assert!(!e.contains(SECRET) && !e.contains("panicked"), "{e}");
    }
    let shown = connect(&with(pg.url(), &[("sslmode", "verify-all")]))
        .err()
        .expect("connected")
        .to_string();
    assert!(shown.contains("verify-full"), "{shown}");
}

#[test]
fn ssl_root_cert_in_config_yml_works_through_lode_sql() {
    let Some(pg) = pg::tls_server() else { return };
    pg.psql("CREATE TABLE t (x integer); INSERT INTO t VALUES (41)")
        .unwrap();
    let role = pg.create_readonly_role("cfg", Some(SECRET)).unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("certs")).unwrap();
    std::fs::copy(
        pg.ca_file().unwrap(),
        project.path().join("certs/db-ca.pem"),
    )
    .unwrap();
    let url = with(&pg.role_url(&role, None), &[("sslmode", "verify-full")]);
    let config = |root: &str| format!("database:\n  url: '{url}'\n  refuse_writable: true\n{root}");
    let env = [("PGPASSWORD", SECRET)];

    // Relative to the config file, and lode runs from elsewhere with --config.
    std::fs::write(
        project.path().join("config.yml"),
        config("  ssl_root_cert: certs/db-ca.pem\n"),
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let config_arg = project.path().join("config.yml").display().to_string();
    let out = lode(
        elsewhere.path(),
        &["--config", &config_arg, "sql", IS_TLS],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("tls-on"),
        "{}",
        text(&out.stdout)
    );
    let out = lode(project.path(), &["sql", "SELECT x + 1 AS y FROM t"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("42"), "{}", text(&out.stdout));

    // Without it the certificate is not trusted; with a file that is not there, it is named.
    std::fs::write(project.path().join("config.yml"), config("")).unwrap();
    let out = lode(project.path(), &["sql", "SELECT 1"], &env);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("certificate not trusted"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        project.path().join("config.yml"),
        config("  ssl_root_cert: certs/missing.pem\n"),
    )
    .unwrap();
    let out = lode(project.path(), &["sql", "SELECT 1"], &env);
    let e = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        e.contains("certs/missing.pem") && e.contains("ssl_root_cert"),
        "{e}"
    );
    assert!(!e.contains(SECRET), "{e}");
}
