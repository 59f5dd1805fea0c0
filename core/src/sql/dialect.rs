//! The SQL grammar a target's statements are read with: SQLite's for a SQLite file,
//! PostgreSQL's for a PostgreSQL server. Parsing and tokenizing a target's SQL go through
//! [`SqlDialect`], so that text the two grammars read differently (`E'it''s'`, `$$…$$`,
//! `ARRAY[1, 2]`, `tags[1]`, `a ^ 2`, `[name]`, `` `name` ``) means what the target means.

use sqlparser::ast::Statement;
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, TokenizerError};

use crate::sql::schema::Schema;

/// Which grammar to read SQL with. The default, SQLite, is what lode read before it had
/// PostgreSQL targets, and what SQL without a known target is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SqlDialect {
    #[default]
    Sqlite,
    Postgres,
}

static SQLITE: SQLiteDialect = SQLiteDialect {};
static POSTGRES: PostgreSqlDialect = PostgreSqlDialect {};

impl SqlDialect {
    /// From a dialect's name as [`Schema::dialect`] and `Database::dialect_name` spell it:
    /// `postgresql` (also `postgres`, `pg`, any case) is PostgreSQL; anything else, the empty
    /// name of a SQLite schema included, is SQLite.
    pub fn from_name(name: &str) -> SqlDialect {
        match name.trim().to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pg" => SqlDialect::Postgres,
            _ => SqlDialect::Sqlite,
        }
    }

    /// The dialect of the database a schema was read from.
    pub fn of(schema: &Schema) -> SqlDialect {
        SqlDialect::from_name(&schema.dialect)
    }

    /// The dialect of an optional schema: SQLite without one.
    pub fn of_opt(schema: Option<&Schema>) -> SqlDialect {
        schema.map(SqlDialect::of).unwrap_or_default()
    }

    /// `sqlite` or `postgresql`, as `Database::dialect_name` says it.
    pub fn name(self) -> &'static str {
        match self {
            SqlDialect::Sqlite => "sqlite",
            SqlDialect::Postgres => "postgresql",
        }
    }

    /// sqlparser's dialect.
    pub fn parser(self) -> &'static dyn Dialect {
        match self {
            SqlDialect::Sqlite => &SQLITE,
            SqlDialect::Postgres => &POSTGRES,
        }
    }

    /// The other grammar: what SQL this one cannot read is tried with (a PostgreSQL
    /// project's gold set may hold SQLite-isms, and SQL of unknown origin may be either).
    pub fn fallback(self) -> SqlDialect {
        match self {
            SqlDialect::Sqlite => SqlDialect::Postgres,
            SqlDialect::Postgres => SqlDialect::Sqlite,
        }
    }

    /// Parses `sql` with this grammar, else with the [fallback](Self::fallback); the error is
    /// this grammar's.
    pub fn parse(self, sql: &str) -> Result<Vec<Statement>, ParserError> {
        Parser::parse_sql(self.parser(), sql)
            .or_else(|e| Parser::parse_sql(self.fallback().parser(), sql).map_err(|_| e))
    }

    /// The tokens of `sql` (whitespace and comments included) in this grammar, else in the
    /// fallback's; the error is this grammar's.
    pub fn tokenize(self, sql: &str) -> Result<Vec<Token>, TokenizerError> {
        Tokenizer::new(self.parser(), sql).tokenize().or_else(|e| {
            Tokenizer::new(self.fallback().parser(), sql)
                .tokenize()
                .map_err(|_| e)
        })
    }

    /// Like [`tokenize`](Self::tokenize), with each token's place in the text.
    pub fn tokenize_with_location(self, sql: &str) -> Result<Vec<TokenWithSpan>, TokenizerError> {
        Tokenizer::new(self.parser(), sql)
            .tokenize_with_location()
            .or_else(|e| {
                Tokenizer::new(self.fallback().parser(), sql)
                    .tokenize_with_location()
                    .map_err(|_| e)
            })
    }
}

/// Tokens of `sql` to rewrite (swap a literal, a number, a word) and print back with
/// [`print_tokens`]: SQLite's tokenizer on every target. It prints PostgreSQL's text back as
/// written too (`$$x$$` as parameters around a word, `E'x'` as a word and a string, `a[1]`
/// as a bracketed name), where PostgreSQL's own `E'…'` token would print without its
/// escapes; rewrites change only plain strings, numbers and words.
pub fn rewrite_tokens(sql: &str) -> Option<Vec<Token>> {
    Tokenizer::new(&SQLITE, sql).tokenize().ok()
}

/// Tokens back to SQL text, quotes inside a quoted string or name doubled again
/// (`'O''Hare'` stays `'O''Hare'`: the tokenizer keeps the value `O'Hare`, and sqlparser's
/// own printing gives `'O'Hare'`, which ends the string early).
pub fn print_tokens(tokens: &[Token]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            Token::SingleQuotedString(v) => {
                out.push('\'');
                out.push_str(&v.replace('\'', "''"));
                out.push('\'');
            }
            Token::DoubleQuotedString(v) => {
                out.push('"');
                out.push_str(&v.replace('"', "\"\""));
                out.push('"');
            }
            Token::Word(w) if matches!(w.quote_style, Some('"') | Some('`')) => {
                let q = w.quote_style.unwrap_or('"');
                out.push(q);
                out.push_str(&w.value.replace(q, &format!("{q}{q}")));
                out.push(q);
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_schemas_give_the_dialect() {
        assert_eq!(SqlDialect::from_name("postgresql"), SqlDialect::Postgres);
        assert_eq!(SqlDialect::from_name("PostgreSQL"), SqlDialect::Postgres);
        assert_eq!(SqlDialect::from_name("postgres"), SqlDialect::Postgres);
        assert_eq!(SqlDialect::from_name(""), SqlDialect::Sqlite);
        assert_eq!(SqlDialect::from_name("sqlite"), SqlDialect::Sqlite);
        for d in [SqlDialect::Sqlite, SqlDialect::Postgres] {
            assert_eq!(SqlDialect::from_name(d.name()), d);
        }
        let pg = Schema {
            dialect: "postgresql".into(),
            ..Schema::default()
        };
        assert_eq!(SqlDialect::of(&pg), SqlDialect::Postgres);
        assert_eq!(SqlDialect::of_opt(Some(&pg)), SqlDialect::Postgres);
        assert_eq!(SqlDialect::of(&Schema::default()), SqlDialect::Sqlite);
        assert_eq!(SqlDialect::of_opt(None), SqlDialect::Sqlite);
    }

    #[test]
    fn each_grammar_reads_its_own_syntax_and_falls_back_to_the_other() {
        // PostgreSQL's escape string: SQLite's grammar reads a column `E` aliased 'it''s'.
        let sql = "SELECT E'it''s'";
        assert_eq!(
            SqlDialect::Sqlite.parse(sql).unwrap()[0].to_string(),
            "SELECT E AS 'it''s'"
        );
        assert_eq!(
            SqlDialect::Postgres.parse(sql).unwrap()[0].to_string(),
            "SELECT E'it\\'s'"
        );
        // A dollar-quoted string SQLite cannot parse: the fallback reads it.
        let sql = "SELECT $$a b$$::text";
        assert!(Parser::parse_sql(SqlDialect::Sqlite.parser(), sql).is_err());
        assert!(SqlDialect::Sqlite.parse(sql).is_ok());
        // Backticks are SQLite's: PostgreSQL's grammar falls back to it.
        let sql = "SELECT `a` FROM t";
        assert!(Parser::parse_sql(SqlDialect::Postgres.parser(), sql).is_err());
        assert!(SqlDialect::Postgres.parse(sql).is_ok());
        // Neither reads it: the error is the first grammar's.
        let e = SqlDialect::Postgres.parse("SELEC 1").unwrap_err();
        assert!(e.to_string().contains("SELEC"), "{e}");
        // Tokens: one dollar-quoted string on PostgreSQL, placeholders and a word on SQLite.
        let pg = SqlDialect::Postgres.tokenize("$$a b$$").unwrap();
        assert!(matches!(pg.as_slice(), [Token::DollarQuotedString(s)] if s.value == "a b"));
        let lite = SqlDialect::Sqlite.tokenize("$$a b$$").unwrap();
        assert!(matches!(lite.first(), Some(Token::Placeholder(_))));
        // An unterminated dollar quote only PostgreSQL's tokenizer rejects.
        assert!(
            Tokenizer::new(SqlDialect::Postgres.parser(), "SELECT $$a")
                .tokenize()
                .is_err()
        );
        assert!(SqlDialect::Postgres.tokenize("SELECT $$a").is_ok());
    }

    #[test]
    fn printed_tokens_keep_their_quotes_doubled() {
        for sql in [
            "SELECT * FROM airports WHERE city = 'O''Hare' AND \"we\"\"ird\" = 1",
            "SELECT `a``b` FROM t WHERE x = 'it''s'",
            "SELECT name FROM t WHERE s LIKE '%''%' ORDER BY name",
        ] {
            let tokens = super::rewrite_tokens(sql).unwrap();
            let printed = super::print_tokens(&tokens);
            assert_eq!(printed, sql);
            assert_eq!(super::rewrite_tokens(&printed).unwrap(), tokens);
        }
    }
}
