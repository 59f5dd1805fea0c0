//! The test kit's PostgreSQL server (`lode_testkit::pg`): a database of each test's own on a
//! real server, usable through `psql`, roles and URLs, dropped afterwards. Skips, saying so,
//! when no server can be had (no `LODE_TEST_PG_URL` and no `initdb`).

use lode_testkit::pg;
use lode_testkit::pg::postgres;

#[test]
fn each_caller_gets_its_own_database_that_holds_rows_and_is_dropped_after() {
    let Some(first) = pg::server() else { return };
    let Some(second) = pg::server() else { return };
    assert_ne!(first.database(), second.database());
    assert_ne!(first.url(), second.url());

    first
        .psql(
            "CREATE TABLE shop (id integer PRIMARY KEY, name text, city text); \
             INSERT INTO shop VALUES (1, 'Crumb', 'Lyon'), (2, 'Loaf', NULL), (3, 'Rye', 'Oslo')",
        )
        .unwrap();
    assert_eq!(
        first
            .psql("SELECT id, name, city FROM shop ORDER BY id")
            .unwrap(),
        "1|Crumb|Lyon\n2|Loaf|\n3|Rye|Oslo"
    );
    assert_eq!(
        first.psql("SELECT current_database()").unwrap(),
        first.database()
    );
    // The other database does not see the table.
    let err = second.psql("SELECT count(*) FROM shop").unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
    assert!(first.psql("SELECT nonsense FROM").is_err());

    let name = first.database().to_string();
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
    assert_eq!(second.psql(&exists).unwrap(), "1");
    drop(first);
    assert_eq!(second.psql(&exists).unwrap(), "0");
}

#[test]
fn a_readonly_role_reads_and_cannot_write() {
    let Some(pg) = pg::server() else { return };
    pg.psql("CREATE TABLE t (x integer); INSERT INTO t VALUES (7)")
        .unwrap();
    let role = pg.create_readonly_role("ro", Some("pw'1")).unwrap();
    assert!(role.starts_with(pg.database()), "{role}");
    let url = pg.role_url(&role, Some("pw'1"));
    let mut client = postgres::Client::connect(&url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting as {role}: {e}"));
    let row = client.query_one("SELECT x FROM t", &[]).unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert!(client.batch_execute("INSERT INTO t VALUES (8)").is_err());
    assert!(client.batch_execute("CREATE TABLE u (y integer)").is_err());
    assert!(
        client
            .batch_execute("CREATE TEMP TABLE v (y integer)")
            .is_err()
    );
    // Tables made later by the superuser are readable too.
    pg.psql("CREATE TABLE later (y integer); INSERT INTO later VALUES (9)")
        .unwrap();
    let row = client.query_one("SELECT y FROM later", &[]).unwrap();
    assert_eq!(row.get::<_, i32>(0), 9);
    drop(client);

    let admin = pg.admin_url().to_string();
    let exists = format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'");
    drop(pg);
    let Some(other) = pg::server() else { return };
    assert_eq!(
        other.psql(&exists).unwrap(),
        "0",
        "role left behind on {admin}"
    );
}
