//! Review decisions: the one way every face (`lode review`, the terminal UI, the MCP server)
//! accepts, rejects, resets, edits and undoes a pair. An edit's SQL is validated by execution
//! ([`validate`]) before anything is saved; each decision is stored with its history (undo
//! steps back through it) and with who made it ([`Reviewer`]).

use serde::Serialize;

use super::validate::{Validation, validate};
use crate::project::Project;
use crate::store::{PairStatus, Result, Review, ReviewAction, Store};

pub use crate::store::Reviewer;

/// A decision on one pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Accept {
        note: Option<String>,
    },
    Reject {
        note: Option<String>,
    },
    /// Back to pending.
    Reset {
        note: Option<String>,
    },
    Edit(Edit),
    /// Undo the latest decision on the pair that is not undone yet.
    Undo,
}

impl Decision {
    pub fn accept(note: Option<&str>) -> Decision {
        Decision::Accept {
            note: note.map(str::to_string),
        }
    }

    pub fn reject(note: Option<&str>) -> Decision {
        Decision::Reject {
            note: note.map(str::to_string),
        }
    }

    /// A plain decision (accept, reject, reset) by its action; `None` for edit and undo,
    /// which carry more than a note.
    pub fn of_action(action: ReviewAction, note: Option<String>) -> Option<Decision> {
        match action {
            ReviewAction::Accept => Some(Decision::Accept { note }),
            ReviewAction::Reject => Some(Decision::Reject { note }),
            ReviewAction::Reset => Some(Decision::Reset { note }),
            ReviewAction::Edit | ReviewAction::Undo => None,
        }
    }
}

/// A change to a pair's question and/or SQL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    pub question: Option<String>,
    pub sql: Option<String>,
    /// Accept the pair too: the edit and the accept are saved together or not at all.
    pub accept: bool,
    /// When only the question changes, validate the pair's SQL as it is and mark the pair
    /// `valid` (the command line and the MCP server); without it the pair keeps its status
    /// and nothing runs (the TUI's question editor). New SQL is always validated.
    pub check_unchanged_sql: bool,
    /// The edit's note.
    pub note: Option<String>,
    /// The accept's note, with `accept`.
    pub accept_note: Option<String>,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    pub pair_id: i64,
    /// The decision stored: the accept of an edit with `accept`, the undo's own record for
    /// an undo. `None` when nothing was saved: an edit whose SQL does not validate, an undo
    /// with nothing to undo.
    pub review: Option<Review>,
    /// An edit's validation of the pair's SQL (the new SQL, or the pair's own when only the
    /// question changed and it was checked).
    pub validation: Option<Validation>,
}

impl Decided {
    /// Something was stored.
    pub fn saved(&self) -> bool {
        self.review.is_some()
    }

    /// The edit was refused: its SQL does not validate.
    pub fn refused(&self) -> bool {
        self.validation.as_ref().is_some_and(|v| !v.ok)
    }

    /// Why an edit was refused, as the TUI and the command line print it:
    /// `<error> (<kind>)`.
    pub fn refusal(&self) -> Option<String> {
        let v = self.validation.as_ref().filter(|v| !v.ok)?;
        Some(format!(
            "{} ({})",
            v.error.as_deref().unwrap_or(""),
            v.error_kind.as_deref().unwrap_or("")
        ))
    }
}

/// Makes `decision` on pair `pair_id` for `by`. An unknown pair is
/// [`StoreError::NotFound`](crate::store::StoreError::NotFound), for undo too. An edit runs
/// its SQL on the project's database first (with the config's rule validators) and saves
/// nothing when it does not validate (`Ok`, with the failed validation: a result, not an
/// error).
pub fn decide(
    project: &Project,
    store: &Store,
    pair_id: i64,
    decision: Decision,
    by: Reviewer,
) -> Result<Decided> {
    let decided = |review: Option<Review>, validation: Option<Validation>| Decided {
        pair_id,
        review,
        validation,
    };
    match decision {
        Decision::Accept { ref note }
        | Decision::Reject { ref note }
        | Decision::Reset { ref note } => {
            let action = match decision {
                Decision::Accept { .. } => ReviewAction::Accept,
                Decision::Reject { .. } => ReviewAction::Reject,
                _ => ReviewAction::Reset,
            };
            store
                .review(pair_id, action, None, None, None, note.as_deref(), by)
                .map(|r| decided(Some(r), None))
        }
        Decision::Undo => {
            // Unknown pairs are an error, not "nothing to undo".
            store.pair(pair_id)?;
            store
                .undo_last_review(pair_id, by)
                .map(|r| decided(r, None))
        }
        Decision::Edit(edit) => {
            let current = store.pair(pair_id)?;
            let check = edit.sql.is_some() || edit.check_unchanged_sql;
            let validation = check.then(|| {
                validate(
                    &project.db,
                    &project.schema,
                    edit.sql.as_deref().unwrap_or(&current.sql),
                    &project.config.generate.validators,
                )
            });
            if validation.as_ref().is_some_and(|v| !v.ok) {
                return Ok(decided(None, validation));
            }
            let review = if edit.accept {
                store.edit_and_accept(
                    pair_id,
                    edit.question.as_deref(),
                    edit.sql.as_deref(),
                    edit.accept_note.as_deref(),
                    by,
                )?
            } else {
                let status = if check {
                    PairStatus::Valid
                } else {
                    current.status
                };
                store.review(
                    pair_id,
                    ReviewAction::Edit,
                    edit.question.as_deref(),
                    edit.sql.as_deref(),
                    Some(status),
                    edit.note.as_deref(),
                    by,
                )?
            };
            Ok(decided(Some(review), validation))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::demo::{DemoOptions, write_demo};
    use crate::store::{NewPair, NewRun, StoreError};

    fn project() -> (tempfile::TempDir, Project, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        write_demo(dir.path(), &DemoOptions::default()).unwrap();
        let project = Project::load(&dir.path().join("config.yml")).unwrap();
        let store = Store::open_in_memory().unwrap();
        let run = store.create_run(&NewRun::default()).unwrap();
        let ids = store
            .insert_pairs(
                run,
                &[NewPair {
                    origin_key: "k".into(),
                    generator: "pattern".into(),
                    question: "How many stores are there?".into(),
                    sql: "SELECT count(*) FROM stores".into(),
                    status: Some(PairStatus::Valid),
                    ..Default::default()
                }],
            )
            .unwrap();
        (dir, project, store, ids[0])
    }

    #[test]
    fn every_decision_records_who_made_it_and_undo_steps_back() {
        let (_dir, project, store, id) = project();
        let d = decide(
            &project,
            &store,
            id,
            Decision::accept(Some("ok")),
            Reviewer::Mcp,
        )
        .unwrap();
        assert_eq!(d.review.as_ref().unwrap().reviewer, Some(Reviewer::Mcp));
        assert_eq!(store.pair(id).unwrap().status, PairStatus::Accepted);
        let d = decide(&project, &store, id, Decision::Undo, Reviewer::Cli).unwrap();
        let undo = d.review.unwrap();
        assert_eq!(
            (undo.action, undo.reviewer),
            (ReviewAction::Undo, Some(Reviewer::Cli))
        );
        assert_eq!(store.pair(id).unwrap().status, PairStatus::Valid);
        let d = decide(&project, &store, id, Decision::Undo, Reviewer::Cli).unwrap();
        assert!(!d.saved(), "nothing left to undo");
        assert!(matches!(
            decide(&project, &store, 9999, Decision::Undo, Reviewer::Tui),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn an_edit_is_validated_before_it_is_saved() {
        let (_dir, project, store, id) = project();
        let bad = Edit {
            sql: Some("SELECT nope FROM stores".into()),
            accept: true,
            ..Default::default()
        };
        let d = decide(&project, &store, id, Decision::Edit(bad), Reviewer::Tui).unwrap();
        assert!(d.refused() && !d.saved());
        assert!(d.refusal().unwrap().contains("nope"), "{:?}", d.refusal());
        assert!(store.review_history(id).unwrap().is_empty());
        let write = Edit {
            sql: Some("DELETE FROM stores".into()),
            ..Default::default()
        };
        let d = decide(&project, &store, id, Decision::Edit(write), Reviewer::Mcp).unwrap();
        assert!(d.refused(), "a write never validates");

        let good = Edit {
            sql: Some("SELECT name FROM stores".into()),
            accept: true,
            accept_note: Some("edited".into()),
            ..Default::default()
        };
        let d = decide(&project, &store, id, Decision::Edit(good), Reviewer::Tui).unwrap();
        assert!(d.validation.as_ref().unwrap().ok);
        let pair = store.pair(id).unwrap();
        assert_eq!(
            (pair.sql.as_str(), pair.status),
            ("SELECT name FROM stores", PairStatus::Accepted)
        );
        let history = store.review_history(id).unwrap();
        assert_eq!(
            history
                .iter()
                .map(|r| (r.action, r.reviewer))
                .collect::<Vec<_>>(),
            [
                (ReviewAction::Edit, Some(Reviewer::Tui)),
                (ReviewAction::Accept, Some(Reviewer::Tui))
            ]
        );

        // A question alone: the TUI keeps the status, the command line checks the SQL.
        let question = |check| Edit {
            question: Some("Name every store.".into()),
            check_unchanged_sql: check,
            ..Default::default()
        };
        let d = decide(
            &project,
            &store,
            id,
            Decision::Edit(question(false)),
            Reviewer::Tui,
        )
        .unwrap();
        assert!(d.validation.is_none());
        assert_eq!(store.pair(id).unwrap().status, PairStatus::Accepted);
        let d = decide(
            &project,
            &store,
            id,
            Decision::Edit(question(true)),
            Reviewer::Cli,
        )
        .unwrap();
        assert!(d.validation.unwrap().ok);
        assert_eq!(store.pair(id).unwrap().status, PairStatus::Valid);
    }
}
