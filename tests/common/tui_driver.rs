//! Drives the TUI's effects in tests the way its loop does, with the key and drawing helpers
//! the TUI tests share (each test file includes it with `#[path]`; not every file uses all).
#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lode::tui::app::{App, Effect};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

/// A plain key.
pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// A special key (Enter, Esc, arrows, F5) without modifiers.
pub fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Presses each key and carries out what it asks for before the next.
pub fn run_keys(app: &mut App, keys: &[KeyEvent]) {
    for k in keys {
        let effects = app.handle_key(*k);
        perform_all(app, effects);
    }
}

/// One frame of the app at `w`×`h`.
pub fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|frame| app.render(frame)).unwrap();
    t.backend().buffer().clone()
}

/// Runs the effects, feeds their results back, and runs what those ask for in turn, until
/// nothing is left under way.
pub fn perform_all(app: &mut App, effects: Vec<Effect>) {
    if !effects.iter().any(Effect::answers) {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _guard = rt.enter();
    let mut waiting = 0;
    let mut todo = effects;
    loop {
        for effect in todo.drain(..) {
            waiting += usize::from(effect.answers());
            lode::tui::perform(effect, app, &tx);
        }
        if waiting == 0 {
            break;
        }
        let ev = rt
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(300), rx.recv()).await
            })
            .expect("background work answered within 5 minutes")
            .unwrap();
        if ev.ends_an_effect() {
            waiting -= 1;
        }
        todo = app.handle_bg(ev);
    }
}
