//! `--json`: one JSON document per command on stdout (JSON lines for streams), each an object
//! with `"version"` (of the shapes, [`VERSION`]) and `"command"` first, then the command's own
//! fields; an error is `{"version", "command", "error": {kind, message, location, hint,
//! exit_code}}`. The shapes are documented in `src/cli/JSON.md` and pinned by snapshot tests.
//! Human output is unchanged without the flag; warnings and progress stay on stderr.

use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value};

/// The version of the JSON shapes. It changes only when a field is removed or changes
/// meaning; new fields may appear within a version.
pub const VERSION: u32 = 1;

/// The document: `version`, `command`, then `body`'s fields (an object), or `{"data": body}`
/// when the body is not an object (an array, say).
pub fn document(command: &str, body: &impl Serialize) -> Value {
    let mut out = Map::new();
    out.insert("version".into(), VERSION.into());
    out.insert("command".into(), command.into());
    match serde_json::to_value(body) {
        Ok(Value::Object(fields)) => {
            for (k, v) in fields {
                if k != "version" && k != "command" {
                    out.insert(k, v);
                }
            }
        }
        Ok(other) => {
            out.insert("data".into(), other);
        }
        Err(e) => {
            out.insert(
                "error".into(),
                serde_json::json!({"kind": "failed", "message": format!("cannot write JSON: {e}"),
                    "location": null, "hint": null, "exit_code": 1}),
            );
        }
    }
    Value::Object(out)
}

/// Prints one document (pretty, one per command) on stdout.
pub fn emit(command: &str, body: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &document(command, body))?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Prints one line of a stream (`generate` progress, `jobs watch`): the document on one
/// line, with `"event"` after `command`.
pub fn emit_line(command: &str, event: &str, body: &impl Serialize) -> anyhow::Result<()> {
    let mut doc = document(command, body);
    if let Value::Object(map) = &mut doc {
        let mut ordered = Map::new();
        for k in ["version", "command"] {
            if let Some(v) = map.shift_remove(k) {
                ordered.insert(k.into(), v);
            }
        }
        ordered.insert("event".into(), event.into());
        ordered.append(map);
        doc = Value::Object(ordered);
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &doc)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The error document for `failure`, as `main` prints it with `--json`.
pub fn error_document(command: &str, failure: &super::exit::Failure) -> Value {
    let mut out = Map::new();
    out.insert("version".into(), VERSION.into());
    out.insert("command".into(), command.into());
    out.insert(
        "error".into(),
        serde_json::to_value(failure).unwrap_or(Value::Null),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_start_with_version_and_command() {
        #[derive(Serialize)]
        struct Body {
            tables: usize,
            version: &'static str,
        }
        let doc = document(
            "schema",
            &Body {
                tables: 3,
                version: "ignored",
            },
        );
        assert_eq!(
            doc.to_string(),
            r#"{"version":1,"command":"schema","tables":3}"#
        );
        let doc = document("review list", &vec![1, 2]);
        assert_eq!(
            doc.to_string(),
            r#"{"version":1,"command":"review list","data":[1,2]}"#
        );
    }
}
