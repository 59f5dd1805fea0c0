//! Project inputs: the glossary and the gold/eval sets, in every format the original accepted.
//!
//! Glossary: JSONL `{key, value}` or `{input, output}`, a JSON object term → definition, a JSON
//! array of entries, or CSV (`term,definition` with or without a header).
//! Gold/eval set: JSONL `{input, output}`, `{question, sql}` or `{question, query}`, a JSON array
//! of those, or Spider's dev.json (which is such an array with `db_id`).
//! Every problem is reported with file, line and the fix; no input can make these panic.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::diag::{InputError, Warning, line_col};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlossaryEntry {
    pub term: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldPair {
    pub question: String,
    pub sql: String,
    /// Spider's db_id when the set came from a Spider-style file.
    pub db_id: Option<String>,
    /// The 1-based line of the file the pair starts on; `None` for pairs made in code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// What a loader read, with remarks that do not stop the load.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    pub items: Vec<T>,
    pub warnings: Vec<Warning>,
}

/// Formats the glossary the way the original did: `term: definition` lines.
pub fn format_glossary(entries: &[GlossaryEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}: {}", e.term, e.definition))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One record of a JSON or JSONL file, with the line it starts on.
struct Record {
    line: usize,
    value: Json,
}

fn read_text(path: &Path, what: &str, fix: &str) -> Result<String, InputError> {
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(path, format!("cannot read the {what}: {e}"), fix))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(
            &String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
            e.utf8_error().valid_up_to(),
        );
        InputError::new(
            path,
            format!("the {what} is not valid UTF-8"),
            "save the file as UTF-8",
        )
        .at(line, Some(col))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
    if text.trim().is_empty() {
        return Err(InputError::new(path, format!("the {what} is empty"), fix));
    }
    Ok(text)
}

/// Splits JSON or JSONL text into records, each with its starting line.
fn json_records(path: &Path, text: &str, fix: &str) -> Result<Vec<Record>, InputError> {
    let first = text.trim_start();
    if first.starts_with('[') {
        return array_records(path, text, fix);
    }
    // JSONL: one object per line (blank lines and `//`/`#` comments are skipped).
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("//") || t.starts_with('#') {
            continue;
        }
        let value: Json = serde_json::from_str(t).map_err(|e| {
            InputError::new(path, format!("invalid JSON: {}", strip_location(&e)), fix).at(
                i + 1,
                Some(e.column() + (line.len() - line.trim_start().len())),
            )
        })?;
        out.push(Record { line: i + 1, value });
    }
    Ok(out)
}

/// A JSON array, element by element, so each element's problems name its line.
fn array_records(path: &Path, text: &str, fix: &str) -> Result<Vec<Record>, InputError> {
    let whole: Json = serde_json::from_str(text).map_err(|e| {
        InputError::new(path, format!("invalid JSON: {}", strip_location(&e)), fix)
            .at(e.line(), Some(e.column()))
    })?;
    let Json::Array(items) = whole else {
        return Err(InputError::new(path, "expected a JSON array", fix).at(1, None));
    };
    let starts = array_element_offsets(text);
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, value)| Record {
            line: starts.get(i).map_or(1, |&o| line_col(text, o).0),
            value,
        })
        .collect())
}

/// Byte offsets where each top-level array element starts (the text is valid JSON).
pub(crate) fn array_element_offsets(text: &str) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expecting = false;
    for (i, ch) in text.char_indices() {
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if expecting && !ch.is_whitespace() && ch != ']' {
            offsets.push(i);
            expecting = false;
        }
        match ch {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 && ch == '[' {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    offsets
}

fn strip_location(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn describe(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Takes the first present field of `names` as a non-empty string.
fn field<'a>(
    path: &Path,
    line: usize,
    obj: &'a Map<String, Json>,
    names: &[&str],
    fix: &str,
) -> Result<Option<&'a str>, InputError> {
    for name in names {
        if let Some(v) = obj.get(*name) {
            return match v {
                Json::String(s) if !s.trim().is_empty() => Ok(Some(s.as_str())),
                Json::String(_) => {
                    Err(
                        InputError::new(path, format!("field `{name}` is empty"), fix)
                            .at(line, None),
                    )
                }
                other => Err(InputError::new(
                    path,
                    format!("field `{name}` must be a string, found {}", describe(other)),
                    fix,
                )
                .at(line, None)),
            };
        }
    }
    Ok(None)
}

const GOLD_FIX: &str = "each entry needs a question and its SQL: {\"input\": \"How many …?\", \"output\": \"SELECT …\"} (or question/sql, question/query)";

/// Loads a gold or eval set.
pub fn load_gold_set(path: &Path) -> Result<Loaded<GoldPair>, InputError> {
    let text = read_text(path, "question/SQL set", GOLD_FIX)?;
    let records = json_records(path, &text, GOLD_FIX)?;
    let mut items = Vec::with_capacity(records.len());
    let mut warnings = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for rec in records {
        let Json::Object(obj) = &rec.value else {
            return Err(InputError::new(
                path,
                format!("expected an object, found {}", describe(&rec.value)),
                GOLD_FIX,
            )
            .at(rec.line, None));
        };
        let question = field(path, rec.line, obj, &["input", "question"], GOLD_FIX)?;
        let sql = field(path, rec.line, obj, &["output", "sql", "query"], GOLD_FIX)?;
        let (question, sql) = match (question, sql) {
            (Some(q), Some(s)) => (q, s),
            (None, _) => {
                return Err(InputError::new(
                    path,
                    "missing the question (field `input` or `question`)",
                    GOLD_FIX,
                )
                .at(rec.line, None));
            }
            (_, None) => {
                return Err(InputError::new(
                    path,
                    "missing the SQL (field `output`, `sql` or `query`)",
                    GOLD_FIX,
                )
                .at(rec.line, None));
            }
        };
        let db_id = match obj.get("db_id") {
            Some(Json::String(s)) => Some(s.clone()),
            _ => None,
        };
        let key = normalize_question(question);
        if let Some(first) = seen.insert(key, rec.line) {
            warnings.push(Warning {
                path: path.to_path_buf(),
                line: Some(rec.line),
                message: format!("the same question already appears on line {first}"),
            });
        }
        items.push(GoldPair {
            question: question.trim().to_string(),
            sql: sql.trim().to_string(),
            db_id,
            line: Some(rec.line),
        });
    }
    if items.is_empty() {
        // An empty set would make runs of 0 pairs, or leave an older set in use unnoticed.
        return Err(InputError::new(
            path,
            "the question/SQL set has no pairs",
            format!("add at least one pair; {GOLD_FIX}"),
        ));
    }
    Ok(Loaded { items, warnings })
}

/// Lower-cased, whitespace-collapsed question text, for duplicate and leakage checks.
pub fn normalize_question(q: &str) -> String {
    q.split_whitespace()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(['?', '.', '!'])
        .trim()
        .to_string()
}

const GLOSSARY_FIX: &str = "each entry needs a term and its definition: {\"key\": \"AOV\", \"value\": \"average order value …\"} (or input/output), a JSON object {\"AOV\": \"…\"}, or CSV `term,definition`";

/// Loads a glossary in any supported format (chosen by extension, then by content).
pub fn load_glossary(path: &Path) -> Result<Loaded<GlossaryEntry>, InputError> {
    let text = read_text(path, "glossary", GLOSSARY_FIX)?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let trimmed = text.trim_start();
    let entries = if ext == "csv"
        || ext == "tsv"
        || !(trimmed.starts_with('{') || trimmed.starts_with('['))
    {
        glossary_csv(path, &text, if ext == "tsv" { b'\t' } else { b',' })?
    } else if trimmed.starts_with('{')
        && (is_single_json_object(&text) || !first_line_is_json(&text))
    {
        glossary_object(path, &text)?
    } else {
        glossary_records(path, &text)?
    };
    if entries.is_empty() {
        return Err(InputError::new(
            path,
            "the glossary has no entries",
            format!(
                "add at least one entry, or remove paths.glossary from the config (the glossary is optional); {GLOSSARY_FIX}"
            ),
        ));
    }
    let mut warnings = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (line, e) in &entries {
        if let Some(first) = seen.insert(e.term.to_lowercase(), *line) {
            warnings.push(Warning {
                path: path.to_path_buf(),
                line: Some(*line),
                message: format!("term `{}` is defined again (first on line {first})", e.term),
            });
        }
    }
    Ok(Loaded {
        items: entries.into_iter().map(|(_, e)| e).collect(),
        warnings,
    })
}

/// Whether the first non-empty line is a JSON value on its own (JSONL), not part of a
/// multi-line object.
fn first_line_is_json(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| serde_json::from_str::<Json>(l.trim()).is_ok())
}

/// A whole file that is one JSON object mapping terms to definitions (not one JSONL entry).
fn is_single_json_object(text: &str) -> bool {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(m)) => {
            !(m.contains_key("key") || m.contains_key("input") || m.contains_key("term"))
        }
        _ => false,
    }
}

fn glossary_records(path: &Path, text: &str) -> Result<Vec<(usize, GlossaryEntry)>, InputError> {
    let records = json_records(path, text, GLOSSARY_FIX)?;
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        let Json::Object(obj) = &rec.value else {
            return Err(InputError::new(
                path,
                format!("expected an object, found {}", describe(&rec.value)),
                GLOSSARY_FIX,
            )
            .at(rec.line, None));
        };
        let term = field(path, rec.line, obj, &["key", "input", "term"], GLOSSARY_FIX)?;
        let def = field(
            path,
            rec.line,
            obj,
            &["value", "output", "definition"],
            GLOSSARY_FIX,
        )?;
        match (term, def) {
            (Some(t), Some(d)) => out.push((
                rec.line,
                GlossaryEntry {
                    term: t.trim().to_string(),
                    definition: d.trim().to_string(),
                },
            )),
            (None, _) => {
                return Err(InputError::new(
                    path,
                    "missing the term (field `key` or `input`)",
                    GLOSSARY_FIX,
                )
                .at(rec.line, None));
            }
            (_, None) => {
                return Err(InputError::new(
                    path,
                    "missing the definition (field `value` or `output`)",
                    GLOSSARY_FIX,
                )
                .at(rec.line, None));
            }
        }
    }
    Ok(out)
}

fn glossary_object(path: &Path, text: &str) -> Result<Vec<(usize, GlossaryEntry)>, InputError> {
    let map: Map<String, Json> = serde_json::from_str(text).map_err(|e| {
        InputError::new(
            path,
            format!("invalid JSON: {}", strip_location(&e)),
            GLOSSARY_FIX,
        )
        .at(e.line(), Some(e.column()))
    })?;
    let mut out = Vec::with_capacity(map.len());
    for (term, def) in map {
        let line = text
            .find(&format!("\"{term}\""))
            .map_or(1, |o| line_col(text, o).0);
        match def {
            Json::String(d) if !d.trim().is_empty() && !term.trim().is_empty() => out.push((
                line,
                GlossaryEntry {
                    term: term.trim().to_string(),
                    definition: d.trim().to_string(),
                },
            )),
            Json::String(_) => {
                return Err(InputError::new(
                    path,
                    format!("term `{term}` has an empty term or definition"),
                    GLOSSARY_FIX,
                )
                .at(line, None));
            }
            other => {
                return Err(InputError::new(
                    path,
                    format!(
                        "the definition of `{term}` must be a string, found {}",
                        describe(&other)
                    ),
                    GLOSSARY_FIX,
                )
                .at(line, None));
            }
        }
    }
    Ok(out)
}

fn glossary_csv(
    path: &Path,
    text: &str,
    delimiter: u8,
) -> Result<Vec<(usize, GlossaryEntry)>, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut first = true;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(1, |p| p.line() as usize);
            InputError::new(path, format!("invalid CSV: {e}"), GLOSSARY_FIX).at(line, None)
        })?;
        let line = record.position().map_or(1, |p| p.line() as usize);
        let cells: Vec<&str> = record.iter().map(str::trim).collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        let is_header = first
            && cells.len() >= 2
            && matches!(
                cells[0].to_ascii_lowercase().as_str(),
                "key" | "term" | "input" | "name"
            )
            && matches!(
                cells[1].to_ascii_lowercase().as_str(),
                "value" | "definition" | "output" | "description"
            );
        first = false;
        if is_header {
            continue;
        }
        if cells.len() < 2 || cells[0].is_empty() || cells[1].is_empty() {
            return Err(InputError::new(
                path,
                format!(
                    "expected two columns (term, definition), found {}",
                    describe_row(&cells)
                ),
                "write `term,definition`; quote a definition that contains commas",
            )
            .at(line, None));
        }
        // Definitions with unquoted commas spill into more columns; keep them whole.
        let definition = cells[1..].join(", ");
        out.push((
            line,
            GlossaryEntry {
                term: cells[0].to_string(),
                definition,
            },
        ));
    }
    if out.is_empty() {
        return Err(InputError::new(
            path,
            "the glossary has no entries",
            GLOSSARY_FIX,
        ));
    }
    Ok(out)
}

fn describe_row(cells: &[&str]) -> String {
    match cells.len() {
        0 | 1 => "one column".to_string(),
        _ => "an empty cell".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_every_gold_format() {
        let d = tempfile::tempdir().unwrap();
        let a = write(
            &d,
            "a.jsonl",
            "{\"input\": \"How many?\",\"output\": \"SELECT 1\"}\n\n{\"question\": \"Q2\", \"sql\": \"SELECT 2\"}\n{\"question\": \"Q3\", \"query\": \"SELECT 3\"}\n",
        );
        let g = load_gold_set(&a).unwrap().items;
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].question, "How many?");
        assert_eq!(g[2].sql, "SELECT 3");
        let b = write(
            &d,
            "dev.json",
            "[\n {\"db_id\": \"x\", \"question\": \"Q\", \"query\": \"SELECT 1\", \"hardness\": \"easy\"}\n]",
        );
        let g = load_gold_set(&b).unwrap().items;
        assert_eq!(g[0].db_id.as_deref(), Some("x"));
    }

    #[test]
    fn gold_errors_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            &d,
            "g.jsonl",
            "{\"input\": \"a\", \"output\": \"SELECT 1\"}\n{\"input\": \"b\", \"output\": }\n",
        );
        let e = load_gold_set(&p).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(
            e.to_string().starts_with(&format!("{}:2:", p.display())),
            "{e}"
        );

        let p = write(
            &d,
            "g2.json",
            "[\n  {\"input\": \"a\", \"output\": \"SELECT 1\"},\n  {\"input\": \"b\"}\n]",
        );
        let e = load_gold_set(&p).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("missing the SQL"), "{e}");

        let p = write(&d, "g3.jsonl", "{\"input\": 5, \"output\": \"SELECT 1\"}\n");
        let e = load_gold_set(&p).unwrap_err();
        assert!(
            e.message.contains("must be a string, found a number"),
            "{e}"
        );

        let p = write(&d, "g4.jsonl", "\n  \n");
        assert!(load_gold_set(&p).unwrap_err().message.contains("empty"));
    }

    #[test]
    fn loaded_pairs_know_their_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            &d,
            "g.jsonl",
            "# comment\n{\"input\": \"a\", \"output\": \"SELECT 1\"}\n\n{\"input\": \"b\", \"output\": \"SELECT 2\"}\n",
        );
        let lines: Vec<_> = load_gold_set(&p)
            .unwrap()
            .items
            .iter()
            .map(|g| g.line)
            .collect();
        assert_eq!(lines, vec![Some(2), Some(4)]);
    }

    #[test]
    fn an_empty_set_or_glossary_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("a.json", "[]"),
            ("b.json", "[\n]\n"),
            ("c.jsonl", "# only a comment\n\n"),
        ] {
            let p = write(&d, name, body);
            let e = load_gold_set(&p).unwrap_err();
            assert!(e.message.contains("no pairs"), "{name}: {e}");
            assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
        }
        for (name, body) in [("g.json", "{}"), ("g2.json", "[]")] {
            let p = write(&d, name, body);
            let e = load_glossary(&p).unwrap_err();
            assert!(e.message.contains("no entries"), "{name}: {e}");
            assert!(e.fix.contains("optional"), "{e}");
        }
    }

    #[test]
    fn reads_every_glossary_format() {
        let d = tempfile::tempdir().unwrap();
        let kv = write(
            &d,
            "g.jsonl",
            "{\"key\": \"AOV\", \"value\": \"average order value\"}\n{\"input\": \"Q4\", \"output\": \"Oct-Dec\"}\n",
        );
        let obj = write(
            &d,
            "g.json",
            "{\n \"AOV\": \"average order value\",\n \"Q4\": \"Oct-Dec\"\n}",
        );
        let one_line_obj = write(
            &d,
            "one.json",
            "{\"AOV\": \"average order value\", \"Q4\": \"Oct-Dec\"}",
        );
        let csv = write(
            &d,
            "g.csv",
            "term,definition\nAOV,average order value\nQ4,\"Oct, Nov, Dec\"\n",
        );
        for p in [&kv, &obj, &one_line_obj] {
            let g = load_glossary(p).unwrap().items;
            assert_eq!(g.len(), 2, "{}", p.display());
            assert_eq!(g[0].term, "AOV");
        }
        let g = load_glossary(&csv).unwrap().items;
        assert_eq!(g[1].definition, "Oct, Nov, Dec");
        assert_eq!(
            format_glossary(&g),
            "AOV: average order value\nQ4: Oct, Nov, Dec"
        );
    }

    #[test]
    fn glossary_errors_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            &d,
            "g.jsonl",
            "{\"key\": \"a\", \"value\": \"b\"}\n{\"key\": \"c\"}\n",
        );
        let e = load_glossary(&p).unwrap_err();
        assert_eq!(e.line, Some(2));
        let p = write(&d, "g.json", "{\n \"a\": \"b\",\n \"c\": 3\n}");
        let e = load_glossary(&p).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let p = write(&d, "g2.json", "{\n \"a\": \"b\",\n \"c\" \"d\"\n}");
        let e = load_glossary(&p).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let p = write(&d, "g.csv", "a,b\nonlyone\n");
        let e = load_glossary(&p).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn never_panics_on_garbage() {
        let d = tempfile::tempdir().unwrap();
        let samples = [
            "[",
            "]",
            "{",
            "[1,2",
            "[{\"a\":1}]",
            "\u{0}\u{1}",
            "{\"x\":[}",
            "[\"a\"]",
            "null",
            "42",
            "\"s\"",
            ",,,",
            "[{}]",
            "{}",
        ];
        for (i, s) in samples.iter().enumerate() {
            let p = write(&d, &format!("x{i}.jsonl"), s);
            let _ = load_gold_set(&p);
            let _ = load_glossary(&p);
        }
        let p = d.path().join("bin.jsonl");
        std::fs::write(&p, [0xff, 0xfe, 0x00, 0x41]).unwrap();
        assert!(load_gold_set(&p).unwrap_err().message.contains("UTF-8"));
    }

    #[test]
    fn finds_array_element_lines() {
        let text = "[\n {\"a\": \"[,]\"},\n\n {\"b\": [1, 2]}, {\"c\": 3}\n]";
        let offs = array_element_offsets(text);
        let lines: Vec<usize> = offs.iter().map(|&o| line_col(text, o).0).collect();
        assert_eq!(lines, vec![2, 4, 4]);
    }
}
