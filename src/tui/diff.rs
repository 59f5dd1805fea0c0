//! What a generator changed in its gold parent's SQL: a token-level diff (sqlparser's
//! tokenizer, whitespace ignored, longest common subsequence), shown in the pair pane with
//! markers that survive NO_COLOR: `[-'Cake'-]{+'Drink'+}`.

use lode_core::sql::SqlDialect;
use sqlparser::tokenizer::Token;

/// A piece of the diff: a token in both, only in the gold SQL, or only in the pair's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffPiece {
    Same(String),
    Removed(String),
    Added(String),
}

/// Beyond this many tokens on a side the diff is not computed (the table is n×m).
const MAX_TOKENS: usize = 600;

fn tokens(sql: &str, dialect: SqlDialect) -> Option<Vec<String>> {
    let toks = dialect.tokenize(sql).ok()?;
    Some(
        toks.into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .map(|t| t.to_string())
            .collect(),
    )
}

/// The gold SQL turned into the pair's, token by token, both read in the target's
/// `dialect`; `None` when either does not tokenize or is too long to diff.
pub fn sql_diff(gold: &str, pair: &str, dialect: SqlDialect) -> Option<Vec<DiffPiece>> {
    let (a, b) = (tokens(gold, dialect)?, tokens(pair, dialect)?);
    if a.len() > MAX_TOKENS || b.len() > MAX_TOKENS {
        return None;
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i].eq_ignore_ascii_case(&b[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n.max(m));
    while i < n || j < m {
        if i < n && j < m && a[i].eq_ignore_ascii_case(&b[j]) {
            out.push(DiffPiece::Same(b[j].clone()));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // What the gold SQL had comes before what replaced it.
            out.push(DiffPiece::Removed(a[i].clone()));
            i += 1;
        } else {
            out.push(DiffPiece::Added(b[j].clone()));
            j += 1;
        }
    }
    Some(out)
}

/// How many tokens changed (removed plus added).
pub fn changes(diff: &[DiffPiece]) -> usize {
    diff.iter()
        .filter(|p| !matches!(p, DiffPiece::Same(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_literal_changed_is_one_removed_and_one_added_token() {
        let d = sql_diff(
            "SELECT COUNT(*) FROM products p WHERE p.category = 'Cake'",
            "SELECT COUNT(*)\nFROM products p\nWHERE p.category = 'Drink'",
            SqlDialect::Sqlite,
        )
        .unwrap();
        let changed: Vec<&DiffPiece> = d
            .iter()
            .filter(|p| !matches!(p, DiffPiece::Same(_)))
            .collect();
        assert_eq!(
            changed,
            [
                &DiffPiece::Removed("'Cake'".into()),
                &DiffPiece::Added("'Drink'".into())
            ]
        );
    }

    #[test]
    fn the_same_query_in_another_case_and_layout_has_no_change() {
        let d = sql_diff("select a from t", "SELECT a\nFROM t", SqlDialect::Sqlite).unwrap();
        assert_eq!(changes(&d), 0);
    }

    #[test]
    fn an_added_clause_is_all_added() {
        let d = sql_diff(
            "SELECT a FROM t",
            "SELECT a FROM t WHERE b > 1",
            SqlDialect::Sqlite,
        )
        .unwrap();
        assert_eq!(changes(&d), 4);
        assert!(d.iter().all(|p| !matches!(p, DiffPiece::Removed(_))));
    }

    #[test]
    fn a_postgresql_string_is_one_token_on_a_postgresql_target() {
        let gold = "SELECT name FROM items WHERE note = $$a b$$";
        let pair = "SELECT name FROM items WHERE note = $$a c$$";
        let d = sql_diff(gold, pair, SqlDialect::Postgres).unwrap();
        let changed: Vec<&DiffPiece> = d
            .iter()
            .filter(|p| !matches!(p, DiffPiece::Same(_)))
            .collect();
        assert_eq!(
            changed,
            [
                &DiffPiece::Removed("$$a b$$".into()),
                &DiffPiece::Added("$$a c$$".into())
            ]
        );
        // SQLite's tokens: parameters around a word, of which only the word changed.
        let d = sql_diff(gold, pair, SqlDialect::Sqlite).unwrap();
        assert!(d.contains(&DiffPiece::Removed("b".into())), "{d:?}");
    }
}
