//! Drives the TUI's effects in tests the way its loop does (shared by the TUI tests; each
//! test file includes it with `#[path]`).

use lode::tui::app::{App, Effect};

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
