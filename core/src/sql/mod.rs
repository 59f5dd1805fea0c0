//! Everything that touches SQL text or a user's database: the safe executor (the only way SQL
//! reaches a user database), typed values, parsing and analysis (concepts, hardness, templates).

pub mod analyze;
pub mod compare;
pub mod exec;
pub mod extract;
pub mod schema;
pub mod value;

pub use exec::{
    CancelFlag, Database, ExecError, ExecLimits, QueryResult, Snapshot, configure_sqlite,
};
pub use value::Value;
