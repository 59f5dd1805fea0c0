//! Structured answers: an output-type map like the original's
//! `{"q1": "str", "is_valid": "bool", "topics": "array"}` becomes a strict-mode JSON schema
//! (every property required, no extra properties), answers are pulled out of whatever text
//! the model wrapped them in, and checked against the map.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

/// Field name → type: `str`, `int`, `float`, `bool`, `array` (of strings), or
/// `enum:a|b|c`. Order is kept: it is the order the model is asked to answer in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    pub name: String,
    pub fields: Vec<(String, String)>,
}

impl OutputSchema {
    pub fn new(name: &str, fields: &[(&str, &str)]) -> OutputSchema {
        OutputSchema {
            name: name.to_string(),
            fields: fields
                .iter()
                .map(|(k, t)| (k.to_string(), t.to_string()))
                .collect(),
        }
    }

    fn type_schema(t: &str) -> Json {
        match t {
            "str" | "string" => json!({"type": "string"}),
            "int" | "integer" => json!({"type": "integer"}),
            "float" | "number" => json!({"type": "number"}),
            "bool" | "boolean" => json!({"type": "boolean"}),
            "array" | "list" => json!({"type": "array", "items": {"type": "string"}}),
            other => match other.strip_prefix("enum:") {
                Some(choices) => {
                    json!({"type": "string", "enum": choices.split('|').collect::<Vec<_>>()})
                }
                None => json!({"type": "string"}),
            },
        }
    }

    /// The JSON schema, valid for OpenAI's strict mode.
    pub fn json_schema(&self) -> Json {
        let mut props = Map::new();
        for (k, t) in &self.fields {
            props.insert(k.clone(), Self::type_schema(t));
        }
        json!({
            "type": "object",
            "properties": props,
            "required": self.fields.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "additionalProperties": false,
        })
    }

    /// The instruction appended to a prompt when the server cannot enforce the schema: the
    /// keys with their types and a complete example object, so a model that answers with
    /// only the first key of several (`q1` but no `q2`) is the exception.
    pub fn prompt_instruction(&self) -> String {
        let keys: Vec<String> = self
            .fields
            .iter()
            .map(|(k, t)| format!("\"{k}\" ({})", human_type(t)))
            .collect();
        let example: Map<String, Json> = self
            .fields
            .iter()
            .map(|(k, t)| (k.clone(), example_value(t)))
            .collect();
        format!(
            "Answer with only a JSON object with exactly these {} keys: {}. Every key must be \
             present, in this shape: {}. No other text.",
            self.fields.len(),
            keys.join(", "),
            Json::Object(example)
        )
    }

    /// Checks (and gently coerces) an answer: every field present with its type. Numbers
    /// given as strings and single strings where a list is wanted are accepted.
    pub fn check(&self, value: Json) -> Result<Json, String> {
        let Json::Object(mut obj) = value else {
            return Err("the answer is not a JSON object".into());
        };
        let mut out = Map::new();
        for (k, t) in &self.fields {
            let Some(v) = obj.remove(k) else {
                return Err(format!("missing field `{k}`"));
            };
            out.insert(k.clone(), coerce(k, t, v)?);
        }
        Ok(Json::Object(out))
    }
}

/// A stand-in value of a field's type, for the example object of the prompt instruction.
fn example_value(t: &str) -> Json {
    match t {
        "int" | "integer" => json!(0),
        "float" | "number" => json!(0.5),
        "bool" | "boolean" => json!(true),
        "array" | "list" => json!(["..."]),
        other => match other.strip_prefix("enum:") {
            Some(choices) => json!(choices.split('|').next().unwrap_or("...")),
            None => json!("..."),
        },
    }
}

fn human_type(t: &str) -> String {
    match t {
        "str" | "string" => "string".into(),
        "int" | "integer" => "integer".into(),
        "float" | "number" => "number".into(),
        "bool" | "boolean" => "true or false".into(),
        "array" | "list" => "list of strings".into(),
        other => other.strip_prefix("enum:").map_or_else(
            || "string".into(),
            |c| format!("one of {}", c.replace('|', ", ")),
        ),
    }
}

fn coerce(k: &str, t: &str, v: Json) -> Result<Json, String> {
    let wrong = |what: &str| format!("field `{k}` should be {what}");
    match t {
        "str" | "string" => match v {
            Json::String(_) => Ok(v),
            Json::Number(n) => Ok(Json::String(n.to_string())),
            _ => Err(wrong("a string")),
        },
        "int" | "integer" => match &v {
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok(v),
            Json::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                Ok(json!(n.as_f64().unwrap_or(0.0) as i64))
            }
            Json::String(s) => s
                .trim()
                .parse::<i64>()
                .map(|i| json!(i))
                .map_err(|_| wrong("an integer")),
            _ => Err(wrong("an integer")),
        },
        "float" | "number" => match &v {
            Json::Number(_) => Ok(v),
            Json::String(s) => s
                .trim()
                .parse::<f64>()
                .map(|f| json!(f))
                .map_err(|_| wrong("a number")),
            _ => Err(wrong("a number")),
        },
        "bool" | "boolean" => match &v {
            Json::Bool(_) => Ok(v),
            Json::String(s) if s.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Json::String(s) if s.eq_ignore_ascii_case("false") => Ok(json!(false)),
            _ => Err(wrong("true or false")),
        },
        "array" | "list" => match v {
            Json::Array(items) => Ok(Json::Array(
                items
                    .into_iter()
                    .map(|i| match i {
                        Json::String(_) => i,
                        other => Json::String(other.to_string()),
                    })
                    .collect(),
            )),
            Json::String(s) => Ok(json!([s])),
            _ => Err(wrong("a list of strings")),
        },
        other => match other.strip_prefix("enum:") {
            Some(choices) => match &v {
                Json::String(s) if choices.split('|').any(|c| c == s) => Ok(v),
                _ => Err(wrong(&format!("one of {}", choices.replace('|', ", ")))),
            },
            None => Ok(v),
        },
    }
}

/// The first JSON object in a model's text: the whole text, a ```json fenced block, or the
/// outermost `{...}` after leading prose. `None` when there is none or it does not parse
/// (for example, truncated output).
pub fn extract_json(text: &str) -> Option<Json> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Json>(t)
        && v.is_object()
    {
        return Some(v);
    }
    if let Some(start) = t.find("```") {
        let after = &t[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let body = &after[body_start..];
        let body = body.find("```").map_or(body, |e| &body[..e]);
        if let Ok(v) = serde_json::from_str::<Json>(body.trim())
            && v.is_object()
        {
            return Some(v);
        }
    }
    // The outermost balanced object, skipping braces inside strings.
    let bytes = t.as_bytes();
    let start = t.find('{')?;
    let (mut depth, mut in_str, mut escaped) = (0i32, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return serde_json::from_str(&t[start..=i]).ok();
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_schema_requires_every_field() {
        let s = OutputSchema::new("q", &[("q1", "str"), ("ok", "bool"), ("topics", "array")]);
        assert_eq!(
            s.json_schema(),
            json!({
                "type": "object",
                "properties": {
                    "q1": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "topics": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["q1", "ok", "topics"],
                "additionalProperties": false
            })
        );
    }

    #[test]
    fn answers_are_found_and_checked() {
        let s = OutputSchema::new("q", &[("q1", "str"), ("n", "int")]);
        let texts = [
            "{\"q1\": \"a\", \"n\": 2}",
            "```json\n{\"q1\": \"a\", \"n\": \"2\"}\n```",
            "Sure, here it is: {\"q1\": \"a\", \"n\": 2.0} hope that helps",
        ];
        for t in texts {
            let v = extract_json(t).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(s.check(v).unwrap(), json!({"q1": "a", "n": 2}), "{t}");
        }
        assert_eq!(extract_json("{\"q1\": \"a\", \"n\""), None, "truncated");
        assert!(
            s.check(json!({"q1": "a"}))
                .unwrap_err()
                .contains("missing field `n`")
        );
        assert!(
            s.check(json!({"q1": "a", "n": "two"}))
                .unwrap_err()
                .contains("integer")
        );
        assert_eq!(
            extract_json("x {\"a\": \"}{\"} y").unwrap(),
            json!({"a": "}{"}),
            "braces inside strings"
        );
    }
}
