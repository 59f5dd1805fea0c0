//! TLS for the PostgreSQL target: which connections use it, what they trust, and what a
//! failure says.
//!
//! `sslmode` in the URL (libpq's names):
//! - `disable`: no TLS.
//! - `prefer` (the default, as in libpq and the postgres crate): TLS when the server offers it
//!   and its certificate verifies; when the server offers none, or that TLS attempt fails (an
//!   untrusted certificate included), a plain connection, as libpq's `prefer` retries without
//!   TLS. Only the modes below promise encryption.
//! - `require`, `verify-ca`, `verify-full`: TLS or fail.
//!
//! Whenever TLS is used, lode verifies the server's certificate chain *and* its host name (the
//! URL's host; with `hostaddr=IP` lode connects there and still checks the host): the same as
//! libpq's `verify-full`, stricter than its `require` (which checks nothing) and `verify-ca`
//! (no name check). The trusted roots are the system's (as `rustls-native-certs` finds them;
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured) plus every PEM certificate in the file
//! `sslrootcert=/path/ca.pem` names in the URL (relative to the working directory) and in the
//! one `database.ssl_root_cert` names in config.yml (relative to the config file): that is how
//! a server whose certificate a private CA signed is trusted. `sslrootcert=system` adds nothing
//! (the system's roots are always there) and, as in libpq, makes `verify-full` the default.
//!
//! The postgres crate's URL parser knows `sslmode` `disable`, `prefer` and `require` only and
//! rejects `sslrootcert`, so [`split_url`] takes both out of the URL before it parses it.
//! The TLS is rustls with the aws-lc-rs provider, chosen explicitly (never a process default).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

/// An `sslmode`, as libpq names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(text: &str) -> Result<Mode, String> {
        Ok(match text {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other} is not one lode knows: use disable, prefer (the default), \
                     require, verify-ca or verify-full"
                ));
            }
        })
    }

    /// Its name in a URL.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    /// The postgres crate's mode: the verify modes are its `require` (TLS or fail), the
    /// verification being lode's connector's, always on.
    pub fn to_pg(self) -> postgres::config::SslMode {
        match self {
            Mode::Disable => postgres::config::SslMode::Disable,
            Mode::Prefer => postgres::config::SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => postgres::config::SslMode::Require,
        }
    }
}

/// A URL with lode's TLS options taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsUrl {
    /// The URL without `sslmode` and `sslrootcert`, for the postgres crate's parser.
    pub url: String,
    pub mode: Mode,
    /// The CA file of `sslrootcert` (not for `sslrootcert=system`).
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://…?sslmode=…&sslrootcert=…`,
/// percent-decoded) or a `key=value` connection string.
pub fn split_url(url: &str) -> Result<TlsUrl, String> {
    let (rest, mode, root) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_query(url)?
    } else {
        split_words(url)?
    };
    let system = root.as_deref() == Some("system");
    let mode = match mode {
        Some(m) => Mode::parse(&m)?,
        None if system => Mode::VerifyFull,
        None => Mode::Prefer,
    };
    if root.as_deref() == Some("") {
        return Err("sslrootcert is empty: give the path of a PEM CA certificate file".into());
    }
    Ok(TlsUrl {
        url: rest,
        mode,
        root_cert: root.filter(|_| !system).map(PathBuf::from),
    })
}

type Split = (String, Option<String>, Option<String>);

fn split_query(url: &str) -> Result<Split, String> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None, None));
    };
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key)?.as_str() {
            "sslmode" => mode = Some(percent_decode(value)?),
            "sslrootcert" => root = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((rest, mode, root))
}

/// A `key=value …` string (values optionally in single quotes, `\` escaping): the two
/// options are cut out, everything else is left exactly as written.
fn split_words(text: &str) -> Result<Split, String> {
    let (mut mode, mut root) = (None, None);
    let mut rest = String::new();
    let b = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &text[start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            // Not key=value: the postgres crate's parser will say so.
            return Ok((text.to_string(), None, None));
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
        }
        let end = i.min(b.len());
        let value = String::from_utf8_lossy(&value).into_owned();
        let slot = match key {
            "sslmode" => &mut mode,
            "sslrootcert" => &mut root,
            _ => continue,
        };
        *slot = Some(value);
        rest.push_str(&text[copied..start]);
        copied = end;
    }
    rest.push_str(&text[copied..]);
    Ok((rest, mode, root))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let byte = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in the URL option {text}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the URL option {text} is not UTF-8"))
}

/// The certificates of a PEM CA file, each checked to be usable as a trusted root; an error
/// names the file and the fix.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the CA certificate file {shown} ({e}): fix the path in sslrootcert= \
             (URL) or database.ssl_root_cert (config.yml)"
        )
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!("the CA certificate file {shown} is not valid PEM ({e}): give the CA's certificate in PEM form")
        })?;
    if certs.is_empty() {
        return Err(format!(
            "the CA certificate file {shown} holds no certificate (no -----BEGIN CERTIFICATE----- \
             block): give the certificate of the CA that signed the server's, in PEM form"
        ));
    }
    let mut check = rustls::RootCertStore::empty();
    for (n, cert) in certs.iter().enumerate() {
        check.add(cert.clone()).map_err(|e| {
            format!(
                "certificate {} of the CA certificate file {shown} cannot be a trusted root \
                 ({e}): give the CA's certificate in PEM form",
                n + 1
            )
        })?;
    }
    Ok(certs)
}

/// The system's root certificates, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The connector for one server: rustls with the aws-lc-rs provider, trusting the system's
/// roots and `extra` (certificates from [`read_ca_file`]); it verifies chain and host name.
pub fn connector(extra: &[CertificateDer<'static>]) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    // A system root rustls cannot use is skipped, as browsers do.
    roots.add_parsable_certificates(system_roots().iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a CA certificate cannot be a trusted root ({e})"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS ({e})"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The rustls error behind a failed connection, if TLS is what failed there.
fn rustls_error(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        // An io::Error's `source` skips the error it wraps: look inside.
        if let Some(r) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// Whether a connection failed in its TLS handshake (what `prefer` retries without TLS).
pub fn is_tls_failure(e: &postgres::Error) -> bool {
    rustls_error(e).is_some() || e.to_string().starts_with("error performing TLS handshake")
}

/// What to say when TLS is what failed: the host, what was wrong, and the fix; `None` when
/// the failure was not TLS's.
pub fn explain(e: &postgres::Error, host: &str, mode: Mode) -> Option<String> {
    const TRUST: &str = "give the certificate (PEM) of the CA that signed it with \
                         sslrootcert=/path/ca.pem in the URL or database.ssl_root_cert in \
                         config.yml, or, on a trusted network only, use sslmode=disable";
    if let Some(r) = rustls_error(e) {
        use rustls::CertificateError as C;
        return Some(match r {
            rustls::Error::InvalidCertificate(C::NotValidForName)
            | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
                "certificate not trusted: the certificate {host} presented does not name \
                 {host} ({r}), and lode checks the host name whenever TLS is used: connect with \
                 a name the certificate lists, or give the server a certificate for {host}"
            ),
            rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            ) => format!(
                "certificate not trusted: the certificate of {host} is out of its validity \
                 period ({r}): renew it on the server (or check this machine's clock)"
            ),
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
                "certificate not trusted: the certificate of {host} is not signed by a \
                 certificate authority lode trusts (the system's, plus sslrootcert / \
                 ssl_root_cert): {TRUST}"
            ),
            rustls::Error::InvalidCertificate(_) => {
                format!(
                    "certificate not trusted: the certificate of {host} was refused ({r}): {TRUST}"
                )
            }
            other => format!("the TLS handshake with {host} failed ({other})"),
        });
    }
    let text = e.to_string();
    if text.contains("server does not support TLS") {
        return Some(format!(
            "{host} does not offer TLS, and sslmode={} needs it: turn ssl on on the server, or, \
             on a trusted network only, use sslmode=prefer or disable",
            mode.name()
        ));
    }
    text.starts_with("error performing TLS handshake")
        .then(|| format!("the TLS handshake with {host} failed ({text})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_options_are_taken_out_of_urls() {
        let t = split_url(
            "postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fmy%20ca.pem",
        )
        .unwrap();
        assert_eq!(t.url, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(t.mode, Mode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/tmp/my ca.pem")));
        assert_eq!(t.mode.to_pg(), postgres::config::SslMode::Require);

        let t = split_url("postgresql://u@h/db").unwrap();
        assert_eq!(
            (t.url.as_str(), t.mode),
            ("postgresql://u@h/db", Mode::Prefer)
        );
        let t = split_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            (t.url.as_str(), t.mode),
            ("postgres://u@h/db", Mode::Disable)
        );
        let t = split_url("postgres://u@h/db?sslrootcert=system").unwrap();
        assert_eq!((t.mode, t.root_cert), (Mode::VerifyFull, None));
        let t = split_url("postgres://u@h/db?sslrootcert=system&sslmode=require").unwrap();
        assert_eq!(t.mode, Mode::Require);
        assert!(split_url("postgres://u@h/db?sslmode=bogus").is_err());
        assert!(split_url("postgres://u@h/db?sslmode=allow").is_err());
        assert!(split_url("postgres://u@h/db?sslrootcert=").is_err());

        let t = split_url(
            "host=h user=u password='a  b' sslmode = verify-ca sslrootcert='/x y/ca.pem' dbname=d",
        )
        .unwrap();
        assert_eq!(t.url, "host=h user=u password='a  b'   dbname=d");
        assert_eq!(t.mode, Mode::VerifyCa);
        assert_eq!(t.root_cert, Some(PathBuf::from("/x y/ca.pem")));
        let parsed: postgres::Config = t.url.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"a  b"[..]));
    }

    #[test]
    fn a_bad_ca_file_is_named_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("lode-pg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = read_ca_file(&missing).unwrap_err();
        assert!(
            e.contains(&missing.display().to_string()) && e.contains("sslrootcert"),
            "{e}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = read_ca_file(&empty).unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
        let junk = dir.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read_ca_file(&junk).unwrap_err();
        assert!(e.contains("cannot be a trusted root"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        // The connector builds with the system's roots alone.
        assert!(connector(&[]).is_ok());
    }
}
