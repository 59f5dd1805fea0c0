//! Everything that touches SQL text or a user's database: the safe executor (the only way SQL
//! reaches a user database), typed values, parsing and analysis (concepts, hardness, templates).

pub mod analyze;
pub mod compare;
pub mod dialect;
pub mod exec;
pub mod extract;
pub mod pg;
pub mod pg_tls;
pub mod schema;
pub mod target;
pub mod value;

pub use dialect::SqlDialect;
pub use exec::{
    CancelFlag, Database, ExecError, ExecLimits, QueryResult, Snapshot, SqliteFile,
    configure_sqlite,
};
pub use target::Target;
pub use value::Value;

/// The identity of a database file's contents: the first 16 hex digits of the SHA-256 of
/// its bytes. Two copies of one database on two machines have the same id; any committed
/// change gives a new one. Remembered per (path, size, modification time) in this process,
/// so asking again is free. A database in WAL mode with pending `-wal` content is hashed
/// with it.
pub fn snapshot_id(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    use std::io::Read;
    use std::sync::{LazyLock, Mutex};
    type Seen = Mutex<HashMap<(std::path::PathBuf, u64, Option<std::time::SystemTime>), String>>;
    static SEEN: LazyLock<Seen> = LazyLock::new(Default::default);
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let (len, modified) = stamp(path).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such database file", path.display()),
        )
    })?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    let wal_stamp = stamp(&wal).filter(|(n, _)| *n > 0);
    let key = (
        path.to_path_buf(),
        len ^ wal_stamp.map_or(0, |(n, _)| n.rotate_left(32)),
        wal_stamp.and_then(|(_, m)| m).or(modified),
    );
    if let Some(id) = SEEN.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(id.clone());
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let files = std::iter::once(path.to_path_buf()).chain(wal_stamp.map(|_| wal));
    for file in files {
        let mut f = std::fs::File::open(&file)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    let digest = hasher.finalize();
    let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    SEEN.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, id.clone());
    Ok(id)
}

#[cfg(test)]
mod snapshot_tests {
    #[test]
    fn snapshot_ids_follow_the_contents() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sqlite");
        let b = dir.path().join("b.sqlite");
        let conn = rusqlite::Connection::open(&a).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        std::fs::copy(&a, &b).unwrap();
        let id = super::snapshot_id(&a).unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(
            id,
            super::snapshot_id(&b).unwrap(),
            "a copy has the same id"
        );
        let conn = rusqlite::Connection::open(&b).unwrap();
        conn.execute_batch("INSERT INTO t VALUES (2);").unwrap();
        drop(conn);
        assert_ne!(
            id,
            super::snapshot_id(&b).unwrap(),
            "a change gives a new id"
        );
        assert!(super::snapshot_id(&dir.path().join("missing.sqlite")).is_err());
    }
}
