//! The TUI on a PostgreSQL project: the demo loaded into a real server, the review queue's
//! SQL run live, the editor running PostgreSQL's own syntax, a write refused with the
//! database unchanged, and the schema browser listing the server's tables. Skips, saying so,
//! when no PostgreSQL server can be had.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;

#[path = "common/tui_driver.rs"]
mod tui_driver;
use tui_driver::{code, draw, key, perform_all, run_keys};

use lode::tui::app::App;
use lode::tui::keymap::Keymap;
use lode::tui::theme::Theme;
use lode_core::project::Project;
use lode_testkit::pg;

fn lode(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lode"))
        .current_dir(dir)
        .env_remove("LAMINI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .args(args)
        .output()
        .expect("run lode")
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Types `sql` into an emptied editor and runs it.
fn run_in_editor(a: &mut App, sql: &str) {
    run_keys(a, &[key('e')]);
    for _ in 0..200 {
        a.handle_key(code(KeyCode::Down));
    }
    a.handle_key(code(KeyCode::End));
    for _ in 0..20_000 {
        if a.editor.lines().join("").is_empty() {
            break;
        }
        a.handle_key(code(KeyCode::Backspace));
    }
    assert!(
        a.editor.lines().join("").is_empty(),
        "the editor did not empty"
    );
    run_keys(a, &sql.chars().map(key).collect::<Vec<_>>());
    let effects = a.handle_key(code(KeyCode::F(5)));
    perform_all(a, effects);
    run_keys(a, &[code(KeyCode::Esc)]);
}

#[test]
fn the_tui_reviews_and_runs_sql_on_a_postgresql_project() {
    let Some(server) = pg::server() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The demo project on the server, with pairs generated (offline) and validated there;
    // the rest of the loop is tests/pg_demo.rs's.
    for args in [
        &["demo", "pg", "--no-run", "--postgres", server.url()][..],
        &["generate", "--gold", "1,2,3", "-C", "pg"][..],
    ] {
        let out = lode(dir.path(), args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let project = Arc::new(Project::load(&dir.path().join("pg/config.yml")).unwrap());
    assert_eq!(project.db.dialect_name(), "postgresql");
    let (store, _) = project.open_store().unwrap();
    let mut a = App::new(
        Arc::clone(&project),
        Arc::new(store),
        Keymap::new(&Default::default()).unwrap(),
        Theme::load("ansi16", false).unwrap(),
    );
    let effects = a.start();
    perform_all(&mut a, effects);

    // The selected pair's SQL runs on the server, and its rows are on the screen.
    let effects = a.handle_key(ctrl('r'));
    perform_all(&mut a, effects);
    let screen = text(&draw(&mut a, 120, 34));
    assert!(screen.contains("rows 1-"), "no result rows:\n{screen}");

    // PostgreSQL's own syntax in the editor: ILIKE and a :: cast.
    run_in_editor(
        &mut a,
        "SELECT name, opened_on::date AS opened FROM stores WHERE city ILIKE 'PARIS' ORDER BY name",
    );
    let screen = text(&draw(&mut a, 120, 34));
    let paris: Vec<String> = project
        .db
        .query("SELECT name FROM stores WHERE city = 'Paris' ORDER BY name")
        .unwrap()
        .rows
        .iter()
        .map(|r| r[0].display())
        .collect();
    assert!(!paris.is_empty());
    for name in &paris {
        assert!(screen.contains(name.as_str()), "{name} missing:\n{screen}");
    }

    // A write is refused, and the server's table is unchanged.
    let before = server
        .psql("SELECT count(*) FROM lode_demo.stores")
        .unwrap();
    run_in_editor(&mut a, "DELETE FROM stores");
    let screen = text(&draw(&mut a, 120, 34));
    assert!(
        screen.to_lowercase().contains("not allowed")
            || screen.to_lowercase().contains("refused")
            || screen.to_lowercase().contains("read-only"),
        "no refusal on screen:\n{screen}"
    );
    assert_eq!(
        server
            .psql("SELECT count(*) FROM lode_demo.stores")
            .unwrap(),
        before
    );

    // The schema browser lists the server's tables.
    run_keys(&mut a, &[key('2')]);
    let screen = text(&draw(&mut a, 120, 34));
    for table in ["stores", "orders", "order_items"] {
        assert!(screen.contains(table), "{table} missing:\n{screen}");
    }
}
