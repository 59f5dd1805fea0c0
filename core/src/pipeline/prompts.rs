//! Prompt templates: the original's generator prompts (and ours), each a file a user can
//! replace from config (`generate.prompts.NAME: path`). `{placeholder}` rendering fails with
//! an error naming the missing key; `{{` and `}}` stand for literal braces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A built-in template: name, role (the system message), text.
pub struct Builtin {
    pub name: &'static str,
    pub role: &'static str,
    pub text: &'static str,
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "pattern",
        role: "You are an expert at identifying and replicating question patterns.",
        text: include_str!("prompts/pattern.txt"),
    },
    Builtin {
        name: "variation",
        role: "You are an expert at creating meaningful variations of questions.",
        text: include_str!("prompts/variation.txt"),
    },
    Builtin {
        name: "decomposer",
        role: "You are an expert at breaking down complex business questions into simpler ones.",
        text: include_str!("prompts/decomposer.txt"),
    },
    Builtin {
        name: "comparative",
        role: "You are an expert at writing comparative business questions.",
        text: include_str!("prompts/comparative.txt"),
    },
    Builtin {
        name: "edge_case",
        role: "You are an expert at finding edge cases in business questions.",
        text: include_str!("prompts/edge_case.txt"),
    },
    Builtin {
        name: "granular",
        role: "You are an expert at changing the granularity of business questions.",
        text: include_str!("prompts/granular.txt"),
    },
    Builtin {
        name: "paraphrase",
        role: "You are an expert at paraphrasing questions without changing their meaning.",
        text: include_str!("prompts/paraphrase.txt"),
    },
    Builtin {
        name: "schema_to_sql",
        role: "You are a SQL expert who writes precise SQL queries.",
        text: include_str!("prompts/schema_to_sql.txt"),
    },
    Builtin {
        name: "debugger",
        role: "You are a SQL debugging expert. Output only the corrected SQL query without any explanation.",
        text: include_str!("prompts/debugger.txt"),
    },
    Builtin {
        name: "sql_first",
        role: "You are a SQL expert who writes realistic analytical queries and the questions they answer.",
        text: include_str!("prompts/sql_first.txt"),
    },
    Builtin {
        name: "llm_validator",
        role: "You are a careful reviewer of SQL queries.",
        text: include_str!("prompts/llm_validator.txt"),
    },
];

/// Why a prompt could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromptError {
    #[error(
        "prompt `{template}` uses {{{key}}}, which this step does not provide (it provides: {known}); remove the placeholder or use one of those"
    )]
    MissingKey {
        template: String,
        key: String,
        known: String,
    },
    #[error(
        "prompt `{template}` has an unclosed `{{` at byte {at}; write `{{{{` for a literal brace"
    )]
    Unclosed { template: String, at: usize },
    #[error("cannot read the prompt file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("no prompt template named `{0}`")]
    Unknown(String),
}

/// A template ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub role: String,
    pub text: String,
}

/// [`load`], written for the target's SQL dialect: a PostgreSQL project's prompts ask for
/// PostgreSQL where the built-ins say SQLite.
pub fn load_in(
    name: &str,
    overrides: &BTreeMap<String, PathBuf>,
    dialect: &str,
) -> Result<Template, PromptError> {
    let mut t = load(name, overrides)?;
    if dialect == "postgresql" {
        t.text = t.text.replace("SQLite", "PostgreSQL");
    }
    Ok(t)
}

/// The template `name`: the file configured for it, else the built-in.
pub fn load(name: &str, overrides: &BTreeMap<String, PathBuf>) -> Result<Template, PromptError> {
    let builtin = BUILTINS.iter().find(|b| b.name == name);
    let role = builtin.map_or("", |b| b.role).to_string();
    if let Some(path) = overrides.get(name) {
        return Ok(Template {
            name: name.to_string(),
            role,
            text: read(path)?,
        });
    }
    let b = builtin.ok_or_else(|| PromptError::Unknown(name.to_string()))?;
    Ok(Template {
        name: name.to_string(),
        role,
        text: b.text.to_string(),
    })
}

fn read(path: &Path) -> Result<String, PromptError> {
    std::fs::read_to_string(path).map_err(|e| PromptError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Template {
    /// Replaces each `{key}` with its value.
    pub fn render(&self, vars: &BTreeMap<&str, String>) -> Result<String, PromptError> {
        render(&self.name, &self.text, vars)
    }
}

/// Renders `text`: `{key}` (letters, digits, `_`) from `vars`, `{{`/`}}` as braces; any other
/// brace is kept as written (JSON examples in a prompt stay intact).
pub fn render(
    template: &str,
    text: &str,
    vars: &BTreeMap<&str, String>,
) -> Result<String, PromptError> {
    let mut out = String::with_capacity(text.len() + 256);
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' if b.get(i + 1) == Some(&b'{') => {
                out.push('{');
                i += 2;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                out.push('}');
                i += 2;
            }
            b'{' => {
                let rest = &text[i + 1..];
                let end = rest.find('}');
                let key = end.map(|e| &rest[..e]);
                match key {
                    Some(k)
                        if !k.is_empty()
                            && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') =>
                    {
                        let v = vars.get(k).ok_or_else(|| PromptError::MissingKey {
                            template: template.to_string(),
                            key: k.to_string(),
                            known: vars.keys().copied().collect::<Vec<_>>().join(", "),
                        })?;
                        out.push_str(v);
                        i += k.len() + 2;
                    }
                    None => {
                        return Err(PromptError::Unclosed {
                            template: template.to_string(),
                            at: i,
                        });
                    }
                    Some(_) => {
                        out.push('{');
                        i += 1;
                    }
                }
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('\0');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn placeholders_braces_and_missing_keys() {
        let v = vars(&[("question", "How many?"), ("sql", "SELECT 1")]);
        assert_eq!(
            render("t", "Q: {question} S: {sql} {{literal}} {\"json\": 1}", &v).unwrap(),
            "Q: How many? S: SELECT 1 {literal} {\"json\": 1}"
        );
        let e = render("mine", "Use {schema} here", &v).unwrap_err();
        assert_eq!(
            e.to_string(),
            "prompt `mine` uses {schema}, which this step does not provide (it provides: question, sql); remove the placeholder or use one of those"
        );
        assert!(matches!(
            render("t", "open {question", &v),
            Err(PromptError::Unclosed { .. })
        ));
    }

    #[test]
    fn every_builtin_renders_with_the_standard_keys() {
        let v = vars(&[
            ("question", "q"),
            ("sql", "s"),
            ("schema", "CREATE TABLE t(a)"),
            ("glossary", "g"),
            ("original_question", "oq"),
            ("original_sql", "os"),
            ("error_message", "e"),
            ("error_explanation", "x"),
            ("level", "simple"),
            ("instruction", "check"),
        ]);
        for b in BUILTINS {
            let t = load(b.name, &BTreeMap::new()).unwrap();
            let text = t.render(&v).unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert!(!text.contains("{question}"));
            assert!(!t.role.is_empty());
        }
    }

    #[test]
    fn a_configured_file_replaces_the_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.txt");
        std::fs::write(&path, "My own: {question}").unwrap();
        let mut o = BTreeMap::new();
        o.insert("pattern".to_string(), path);
        let t = load("pattern", &o).unwrap();
        assert_eq!(t.render(&vars(&[("question", "x")])).unwrap(), "My own: x");
        assert!(t.role.contains("question patterns"));
        o.insert("variation".to_string(), dir.path().join("missing.txt"));
        assert!(matches!(
            load("variation", &o),
            Err(PromptError::Read { .. })
        ));
    }
}
