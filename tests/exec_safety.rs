//! The safe executor refuses every way of changing a database, and stops runaway queries.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lode_core::sql::{Database, ExecError, ExecLimits};
use rusqlite::Connection;

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL);
         CREATE INDEX orders_customer ON orders(customer_id);
         INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace');
         INSERT INTO orders VALUES (1, 1, 9.5), (2, 1, 20.0), (3, 2, 3.25);",
    )
    .unwrap();
    drop(conn);
    (dir, path)
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

const HOSTILE: &[&str] = &[
    "DROP TABLE orders",
    "DELETE FROM orders",
    "UPDATE customers SET name = 'x'",
    "INSERT INTO customers VALUES (3, 'Eve')",
    "REPLACE INTO customers VALUES (1, 'Eve')",
    "INSERT OR REPLACE INTO customers VALUES (1, 'Eve')",
    "ATTACH DATABASE 'evil.sqlite' AS evil",
    "DETACH DATABASE main",
    "PRAGMA journal_mode = WAL",
    "PRAGMA user_version = 7",
    "PRAGMA writable_schema = ON",
    "PRAGMA query_only = OFF",
    "VACUUM",
    "VACUUM INTO 'copy.sqlite'",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE TEMP VIEW v AS SELECT 1",
    "CREATE TABLE t2 (x)",
    "CREATE INDEX i2 ON orders(total)",
    "CREATE TRIGGER tr AFTER INSERT ON orders BEGIN DELETE FROM customers; END",
    "SELECT load_extension('libevil')",
    "REINDEX",
    "ANALYZE",
    "BEGIN",
    "SAVEPOINT s",
    "SELECT 1; DROP TABLE orders",
    "SELECT * FROM customers; SELECT * FROM orders",
    "WITH x AS (SELECT 1) DELETE FROM orders",
    "WITH x AS (SELECT id FROM customers) UPDATE orders SET total = 0 WHERE customer_id IN x",
    "ALTER TABLE orders ADD COLUMN note TEXT",
    "ALTER TABLE orders RENAME TO o2",
    "CREATE VIRTUAL TABLE vt USING fts5(x)",
    "",
    "   ;  ",
    "-- just a comment",
];

#[test]
fn refuses_every_hostile_statement_and_leaves_the_file_unchanged() {
    let (dir, path) = fixture();
    let before = bytes(&path);
    let db = Database::open(&path, ExecLimits::default()).unwrap();
    for sql in HOSTILE {
        match db.query(sql) {
            Err(ExecError::Rejected { reason }) => {
                assert!(!reason.is_empty(), "{sql}: empty reason");
            }
            // A few are refused by SQLite itself before our checks see them (VACUUM INTO on a
            // read-only handle, a statement SQLite cannot even compile under query_only);
            // what matters is that they are refused and say why.
            Err(ExecError::Sqlite { message }) => {
                assert!(!message.is_empty(), "{sql}: empty message");
            }
            other => panic!("{sql:?} was not refused: {other:?}"),
        }
    }
    // The pool is still healthy after all the refusals.
    assert_eq!(
        db.query("SELECT count(*) FROM orders").unwrap().rows.len(),
        1
    );
    drop(db);
    assert_eq!(before, bytes(&path), "database bytes changed");
    // Nothing was created beside it (no attached or vacuumed copies, no journals).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["shop.sqlite".to_string()]);
}

#[test]
fn refusals_name_what_was_attempted() {
    let (_dir, path) = fixture();
    let db = Database::open(&path, ExecLimits::default()).unwrap();
    let reason = |sql: &str| match db.query(sql) {
        Err(ExecError::Rejected { reason }) => reason,
        other => panic!("{sql}: expected a refusal, got {other:?}"),
    };
    assert!(reason("ATTACH DATABASE 'x.db' AS x").contains("ATTACH"));
    assert!(reason("DELETE FROM orders").contains("orders"));
    assert!(reason("PRAGMA writable_schema = ON").contains("writable_schema"));
    assert!(reason("SELECT 1; SELECT 2").contains("more than one statement"));
    assert!(reason("SELECT load_extension('x')").contains("load_extension"));
    let temp = reason("CREATE TEMP TABLE t(x)");
    assert!(
        temp.contains("temporary") || temp.contains("schema"),
        "{temp}"
    );
}

#[test]
fn allows_reading_queries_and_read_only_pragmas() {
    let (_dir, path) = fixture();
    let db = Database::open(&path, ExecLimits::default()).unwrap();
    let ok = [
        "SELECT * FROM customers",
        "select c.name, sum(o.total) from customers c join orders o on o.customer_id = c.id group by c.name;",
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10) SELECT sum(x) FROM n",
        "SELECT name FROM pragma_table_info('orders')",
        "PRAGMA table_info(orders)",
        "PRAGMA foreign_key_list('orders')",
        "SELECT strftime('%Y', 'now'), abs(-1), round(2.5), upper('a')",
        "SELECT 1 -- trailing comment",
    ];
    for sql in ok {
        let r = db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(!r.columns.is_empty(), "{sql}");
    }
}

#[test]
fn stops_an_endless_recursive_query_at_the_timeout() {
    let (_dir, path) = fixture();
    let limits = ExecLimits {
        timeout: Duration::from_secs(1),
        ..ExecLimits::default()
    };
    let db = Database::open(&path, limits).unwrap();
    let start = Instant::now();
    let err = db
        .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, ExecError::Timeout { .. }), "got {err:?}");
    // Generous slack: shared machines are noisy, but an unenforced timeout would run forever.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // A huge cross join is stopped the same way.
    let err = db
        .query("SELECT count(*) FROM customers a, customers b, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)")
        .unwrap_err();
    assert!(matches!(err, ExecError::Timeout { .. }), "got {err:?}");
}

#[test]
fn refuses_to_open_what_is_not_a_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.sqlite");
    std::fs::write(
        &text,
        "this is not a database, just some text long enough to matter\n".repeat(20),
    )
    .unwrap();
    let err = Database::open(&text, ExecLimits::default()).err().unwrap();
    assert!(matches!(err, ExecError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.sqlite"), "{err}");

    let missing = dir.path().join("missing.sqlite");
    let err = Database::open(&missing, ExecLimits::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("no such file"), "{err}");
    assert!(!missing.exists(), "open must never create a database");
}

#[test]
fn runs_queries_in_parallel_from_many_threads() {
    let (_dir, path) = fixture();
    let db = std::sync::Arc::new(Database::open(&path, ExecLimits::default()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let r = db
                        .query(&format!("SELECT {i} + count(*) FROM orders"))
                        .unwrap();
                    assert_eq!(r.rows[0][0], lode_core::sql::Value::Integer(i + 3));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Rows that each build a 40 MB string and an 80 MB one: few virtual-machine steps each, so
/// the deadline and the cancel flag must be looked at between rows. Unstopped it runs for
/// many minutes.
const LONG_STEPS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) \
     SELECT sum(length(replace(printf('%.*c', 40000000, 'x'), 'x', 'yy'))) FROM c";

#[test]
fn stops_heavy_rows_at_the_deadline() {
    let (_dir, path) = fixture();
    let limits = ExecLimits {
        timeout: Duration::from_millis(300),
        max_value_bytes: 512 << 20,
        ..ExecLimits::default()
    };
    let db = Database::open(&path, limits).unwrap();
    let start = Instant::now();
    let err = db.query(LONG_STEPS).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, ExecError::Timeout { .. }), "got {err:?}");
    // Generous slack for noisy machines; unstopped this takes many minutes.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn a_cancel_stops_heavy_rows() {
    let (_dir, path) = fixture();
    let limits = ExecLimits {
        timeout: Duration::from_secs(3600),
        max_value_bytes: 512 << 20,
        ..ExecLimits::default()
    };
    let db = Database::open(&path, limits).unwrap();
    let cancel = lode_core::sql::CancelFlag::new();
    let c = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c.cancel();
    });
    let start = Instant::now();
    let err = db
        .query_with(LONG_STEPS, limits, Some(&cancel))
        .unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, ExecError::Cancelled), "got {err:?}");
    assert!(start.elapsed() < Duration::from_secs(30));
    // The connection goes back to the pool and answers the next statement.
    assert_eq!(db.query("SELECT 1").unwrap().rows.len(), 1);
}

#[test]
fn refuses_values_over_the_size_limit_naming_the_setting() {
    let (_dir, path) = fixture();
    let db = Database::open(&path, ExecLimits::default()).unwrap();
    for sql in [
        "SELECT length(randomblob(900000000))",
        "SELECT length(zeroblob(900000000))",
        "SELECT length(printf('%.*c', 900000000, 'x'))",
    ] {
        let err = db.query(sql).unwrap_err();
        assert!(
            matches!(&err, ExecError::Rejected { reason } if reason.contains("execution.max_value_mb")),
            "{sql}: {err:?}"
        );
    }
    // Under the limit it runs.
    let r = db.query("SELECT length(zeroblob(1000000))").unwrap();
    assert_eq!(r.rows[0][0], lode_core::sql::Value::Integer(1_000_000));
}

fn wal_database(dir: &Path) -> PathBuf {
    let path = dir.join("wal.sqlite");
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    drop(conn);
    path
}

fn sidecars(path: &Path) -> Vec<String> {
    ["-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            Path::new(&p).exists().then(|| s.to_string())
        })
        .collect()
}

#[test]
fn a_wal_database_is_read_without_leaving_files_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = wal_database(dir.path());
    assert!(sidecars(&path).is_empty(), "{:?}", sidecars(&path));
    let before = bytes(&path);
    let db = Database::open(&path, ExecLimits::default()).unwrap();
    let r = db.query("SELECT count(*) FROM t").unwrap();
    assert_eq!(r.rows[0][0], lode_core::sql::Value::Integer(2));
    drop(db);
    assert!(sidecars(&path).is_empty(), "left {:?}", sidecars(&path));
    assert_eq!(bytes(&path), before);
}

#[test]
fn a_wal_database_with_a_running_writer_shows_its_committed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = wal_database(dir.path());
    // A writer that keeps its rows in the -wal file (no checkpoint while it is open).
    let writer = Connection::open(&path).unwrap();
    writer
        .execute_batch("PRAGMA wal_autocheckpoint = 0; INSERT INTO t VALUES (3);")
        .unwrap();
    let db = Database::open(&path, ExecLimits::default()).unwrap();
    let r = db.query("SELECT count(*) FROM t").unwrap();
    assert_eq!(r.rows[0][0], lode_core::sql::Value::Integer(3));
    drop(writer);
}

#[test]
fn what_is_not_a_database_file_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    let fifo = dir.path().join("pipe.sqlite");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let mut cases = vec![
        (empty.clone(), "is empty (0 bytes)"),
        (dir.path().to_path_buf(), "is a directory"),
        (dir.path().join("missing.sqlite"), "no such file"),
    ];
    if made {
        cases.push((fifo, "is not a regular file"));
    } else {
        eprintln!("skipping the FIFO case: mkfifo is not available");
    }
    for (path, reason) in cases {
        let err = Database::open(&path, ExecLimits::default()).err().unwrap();
        let text = err.to_string();
        assert!(text.contains(reason), "{}: {text}", path.display());
        assert!(
            text.contains(&path.display().to_string()),
            "{}: {text}",
            path.display()
        );
    }
    // Opening never created anything or changed the empty file.
    assert_eq!(bytes(&empty), Vec::<u8>::new());
    assert!(!dir.path().join("missing.sqlite").exists());
}

#[test]
fn a_result_over_the_memory_budget_is_refused_naming_the_setting() {
    let (_dir, path) = fixture();
    let limits = ExecLimits {
        max_rows: 2_000_000,
        max_result_bytes: 1 << 20,
        ..ExecLimits::default()
    };
    let db = Database::open(&path, limits).unwrap();
    let err = db
        .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) SELECT x, printf('%.100c', 'y') FROM c")
        .unwrap_err();
    assert!(
        matches!(&err, ExecError::Rejected { reason } if reason.contains("execution.max_result_mb")),
        "{err:?}"
    );
    // A result within the budget is whole.
    let r = db
        .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000) SELECT x FROM c")
        .unwrap();
    assert_eq!(r.rows.len(), 1000);
}

/// One expression of 20 nested `replace()` calls over a 100 MB string: SQLite checks no
/// deadline and no interrupt until the whole expression returns (about half a minute on a
/// debug build).
fn replace_chain() -> String {
    let mut x = "printf('%.*c', 100000000, 'x')".to_string();
    for i in 0..20 {
        let (a, b) = if i % 2 == 0 { ("x", "y") } else { ("y", "x") };
        x = format!("replace({x}, '{a}', '{b}')");
    }
    format!("SELECT length({x})")
}

#[test]
fn a_detached_query_answers_at_its_deadline_even_inside_one_long_step() {
    let (_dir, path) = fixture();
    let limits = ExecLimits {
        timeout: Duration::from_millis(300),
        ..ExecLimits::default()
    };
    let db = std::sync::Arc::new(Database::open(&path, limits).unwrap());
    let start = Instant::now();
    let err = db
        .query_detached(&replace_chain(), limits, None)
        .unwrap_err();
    assert!(matches!(err, ExecError::Timeout { .. }), "got {err:?}");
    // Generous slack for noisy machines; waiting for the step takes far longer.
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );
    // A cancel is answered the same way.
    let cancel = lode_core::sql::CancelFlag::new();
    let c = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c.cancel();
    });
    let long = ExecLimits {
        timeout: Duration::from_secs(3600),
        ..limits
    };
    let start = Instant::now();
    let err = db
        .query_detached(&replace_chain(), long, Some(&cancel))
        .unwrap_err();
    assert!(matches!(err, ExecError::Cancelled), "got {err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );
    // The pool still answers while the abandoned steps finish on their own threads.
    assert_eq!(db.query("SELECT 1").unwrap().rows.len(), 1);
}
