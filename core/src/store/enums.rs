//! The store's closed sets (statuses, kinds, names) as enums with one text mapping each: the
//! literal in `text_enum!` is what the database holds, what `as_str`/`Display` print, what
//! `FromStr` accepts and what serde writes and reads. Nothing else maps them.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::{Result, StoreError};

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Invalid(format!(
                        "unknown {} `{other}`; expected one of {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so `{:<10}` aligns like a string.
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: StoreError| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

text_enum!(
    /// What made a run.
    RunKind {
        Generate => "generate",
        Import => "import",
    }
);

impl Default for RunKind {
    /// Most runs are generation runs.
    fn default() -> Self {
        RunKind::Generate
    }
}

text_enum!(
    /// Where a run (generation, import or evaluation) is.
    RunStatus {
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
        Interrupted => "interrupted",
    }
);

text_enum!(
    /// Where a pair is in its life: generated, validated, deduplicated, reviewed.
    PairStatus {
        Pending => "pending",
        Valid => "valid",
        Invalid => "invalid",
        Fixed => "fixed",
        /// Runs, but its question and SQL disagree (the agreement check or an LLM
        /// validator said so): held back from accepting in bulk until a person looks.
        Suspect => "suspect",
        Duplicate => "duplicate",
        Leakage => "leakage",
        Accepted => "accepted",
        Rejected => "rejected",
    }
);

text_enum!(
    /// What a reviewer did.
    ReviewAction {
        Accept => "accept",
        Reject => "reject",
        Edit => "edit",
        Reset => "reset",
        Undo => "undo",
    }
);

text_enum!(
    /// Who made a review decision: the command line (`lode review`), the terminal UI, or an
    /// agent through the MCP server (`lode mcp`).
    Reviewer {
        Cli => "cli",
        Tui => "tui",
        Mcp => "mcp",
    }
);

text_enum!(
    /// Which loaded set a stored gold pair belongs to.
    SetName {
        Gold => "gold",
        Eval => "eval",
    }
);

text_enum!(
    /// Where a model is fine-tuned.
    TuneProvider {
        Memory => "memory",
        Lamini => "lamini",
        OpenAi => "openai",
        Local => "local",
    }
);

text_enum!(
    /// One status for every tuning provider; the provider's raw status is kept beside it.
    JobStatus {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

text_enum!(
    /// Why an LLM call (or the step around it) failed.
    ErrorKind {
        Auth => "auth",
        RateLimit => "rate_limit",
        Timeout => "timeout",
        Server => "server",
        BadRequest => "bad_request",
        ModelUnavailable => "model_unavailable",
        Network => "network",
        BadResponse => "bad_response",
        SchemaViolation => "schema_violation",
        Cancelled => "cancelled",
        Unsupported => "unsupported",
        Config => "config",
        /// The prompt could not be rendered, so no call was made.
        Prompt => "prompt",
        /// The answer was cut at the token limit.
        Truncated => "truncated",
        /// Not sent: the client stopped after errors that retrying will not fix.
        Halted => "halted",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + serde::Serialize,
        T: serde::de::DeserializeOwned + ToSql + FromSql,
        <T as FromStr>::Err: fmt::Debug,
    {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for &v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>().unwrap(), v);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<T>(&format!("\"{text}\"")).unwrap(),
                v
            );
            let (stored, back): (String, T) = conn
                .query_row("SELECT ?1, ?1", [&v], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            assert_eq!((stored.as_str(), back), (text.as_str(), v));
        }
    }

    #[test]
    fn every_enum_has_one_text_mapping() {
        round_trips(RunKind::ALL);
        round_trips(RunStatus::ALL);
        round_trips(PairStatus::ALL);
        round_trips(ReviewAction::ALL);
        round_trips(Reviewer::ALL);
        round_trips(SetName::ALL);
        round_trips(TuneProvider::ALL);
        round_trips(JobStatus::ALL);
        round_trips(ErrorKind::ALL);
        assert_eq!(TuneProvider::OpenAi.as_str(), "openai");
        assert_eq!(format!("{:<8}|", JobStatus::Queued), "queued  |");
    }

    #[test]
    fn unknown_text_is_an_error_that_names_the_choices() {
        let e = "done".parse::<JobStatus>().unwrap_err().to_string();
        assert!(e.contains("unknown JobStatus `done`"), "{e}");
        assert!(e.contains("succeeded"), "{e}");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read: rusqlite::Result<RunKind> = conn.query_row("SELECT 'nope'", [], |r| r.get(0));
        assert!(read.is_err());
    }
}
