//! What a queue search asks for that cannot match as meant, said in words: `status:bogus`
//! names no status (so nothing matches), `valid:maybe` is read as yes, `concept:` without a
//! name is searched as text. The search itself is read by the review pane; this only warns,
//! in the words the footer shows.

use lode_core::sql::analyze::Concept;
use lode_core::store::PairStatus;

/// The warning for `search`, if any of its words cannot mean what it seems to ask (several
/// are joined with `; `).
pub fn search_warning(search: &str) -> Option<String> {
    let statuses = || {
        PairStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut warnings = Vec::new();
    for word in search.split_whitespace() {
        let Some((key, value)) = word.split_once(':') else {
            continue;
        };
        match key {
            "gen" | "generator" | "concept" | "table" | "status" if value.is_empty() => {
                warnings.push(format!(
                    "{key}: needs a name ({key}:NAME); searched as text"
                ));
            }
            "status" => {
                let unknown: Vec<&str> = value
                    .split(',')
                    .filter(|s| s.parse::<PairStatus>().is_err())
                    .collect();
                if unknown.len() == value.split(',').count() {
                    warnings.push(format!(
                        "{word} matches no known status (statuses are {}), so no pair",
                        statuses()
                    ));
                } else if !unknown.is_empty() {
                    warnings.push(format!(
                        "status: {} is not a status and is left out (statuses are {})",
                        unknown.join(", "),
                        statuses()
                    ));
                }
            }
            "concept" if !Concept::ALL.iter().any(|c| c.name() == value) => {
                warnings.push(format!("{word} names no known concept, so no pair"));
            }
            "valid" if !matches!(value, "yes" | "no" | "true" | "false" | "1" | "0") => {
                warnings.push(if value.is_empty() {
                    "valid: takes yes or no; read as yes".to_string()
                } else {
                    format!("valid: takes yes or no; `{value}` is read as yes")
                });
            }
            _ => {}
        }
    }
    (!warnings.is_empty()).then(|| warnings.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_of_what_cannot_match() {
        assert_eq!(search_warning(""), None);
        assert_eq!(
            search_warning("stores status:valid,accepted valid:no"),
            None
        );
        assert_eq!(
            search_warning("concept:group_by gen:pattern table:orders"),
            None
        );
        let w = search_warning("status:bogus").unwrap();
        assert!(w.starts_with("status:bogus matches no known status"), "{w}");
        assert!(w.contains("pending") && w.contains("rejected"), "{w}");
        let w = search_warning("status:valid,bogus").unwrap();
        assert!(w.starts_with("status: bogus is not a status"), "{w}");
        assert!(
            search_warning("valid:maybe")
                .unwrap()
                .contains("read as yes")
        );
        assert!(search_warning("concept:").unwrap().contains("needs a name"));
        assert!(
            search_warning("concept:grup_by")
                .unwrap()
                .contains("no known concept")
        );
        // Words that are not filters are searched as text, with no warning.
        assert_eq!(search_warning("strftime('%Y', x) a:b"), None);
        let both = search_warning("status:nope valid:maybe").unwrap();
        assert!(both.contains("; valid:"), "{both}");
    }
}
