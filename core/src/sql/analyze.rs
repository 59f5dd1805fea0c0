//! SQL analysis: concept tags, referenced tables and columns, Spider hardness, a complexity
//! level and a normalized template, all from the sqlparser AST, read in the target's dialect
//! (the schema's; SQLite's without one) with the other as the fallback.
//!
//! Coverage analysis counts the concepts, dedup compares templates, and evaluation reports
//! accuracy per hardness. Hardness is computed exactly as the official Spider evaluator's
//! `eval_hardness` does, oddities included (see [`SpiderCounts`]), so that per-hardness
//! figures can be compared with published ones.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, Distinct, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, GroupByExpr, JoinConstraint, JoinOperator, LimitClause, ObjectName,
    OrderByKind, Query, Select, SelectItem, SetExpr, SetOperator, SetQuantifier, Statement,
    Subscript, TableFactor, UnaryOperator, Value as AstValue, WindowType,
};
use sqlparser::tokenizer::Token;

use crate::sql::dialect::SqlDialect;
use crate::sql::schema::Schema;

/// A SQL concept, from the taxonomy of `research/evaluation.md` §2.2. Each is detected from
/// the AST; [`Analysis::concepts`] holds how many times each occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Concept {
    // Shape
    SingleTable,
    JoinInner,
    JoinOuter,
    SelfJoin,
    CrossJoin,
    FromSubquery,
    // Filtering
    Where,
    WhereAnd,
    WhereOr,
    Not,
    InList,
    InSubquery,
    Exists,
    Between,
    Like,
    Glob,
    IsNull,
    ComparisonWithSubquery,
    // Aggregation
    Aggregate,
    CountDistinct,
    GroupBy,
    Having,
    // Output
    Distinct,
    MultiColumnSelect,
    ComputedColumn,
    Ratio,
    CaseWhen,
    Iif,
    Alias,
    // Ordering
    OrderBy,
    OrderDesc,
    Limit,
    LimitOffset,
    TopKTiesRisk,
    // Composition
    NestedWhereSubquery,
    CorrelatedSubquery,
    ScalarSubqueryInSelect,
    Union,
    UnionAll,
    Intersect,
    Except,
    Cte,
    RecursiveCte,
    // Analytics
    WindowFunction,
    PartitionBy,
    // Functions
    DateTime,
    StringFn,
    NumericFn,
    Cast,
    NullHandling,
}

impl Concept {
    /// Every concept, in taxonomy order.
    pub const ALL: [Concept; 50] = [
        Concept::SingleTable,
        Concept::JoinInner,
        Concept::JoinOuter,
        Concept::SelfJoin,
        Concept::CrossJoin,
        Concept::FromSubquery,
        Concept::Where,
        Concept::WhereAnd,
        Concept::WhereOr,
        Concept::Not,
        Concept::InList,
        Concept::InSubquery,
        Concept::Exists,
        Concept::Between,
        Concept::Like,
        Concept::Glob,
        Concept::IsNull,
        Concept::ComparisonWithSubquery,
        Concept::Aggregate,
        Concept::CountDistinct,
        Concept::GroupBy,
        Concept::Having,
        Concept::Distinct,
        Concept::MultiColumnSelect,
        Concept::ComputedColumn,
        Concept::Ratio,
        Concept::CaseWhen,
        Concept::Iif,
        Concept::Alias,
        Concept::OrderBy,
        Concept::OrderDesc,
        Concept::Limit,
        Concept::LimitOffset,
        Concept::TopKTiesRisk,
        Concept::NestedWhereSubquery,
        Concept::CorrelatedSubquery,
        Concept::ScalarSubqueryInSelect,
        Concept::Union,
        Concept::UnionAll,
        Concept::Intersect,
        Concept::Except,
        Concept::Cte,
        Concept::RecursiveCte,
        Concept::WindowFunction,
        Concept::PartitionBy,
        Concept::DateTime,
        Concept::StringFn,
        Concept::NumericFn,
        Concept::Cast,
        Concept::NullHandling,
    ];

    /// The snake_case name used in JSON, reports and config.
    pub fn name(self) -> &'static str {
        match self {
            Concept::SingleTable => "single_table",
            Concept::JoinInner => "join_inner",
            Concept::JoinOuter => "join_outer",
            Concept::SelfJoin => "self_join",
            Concept::CrossJoin => "cross_join",
            Concept::FromSubquery => "from_subquery",
            Concept::Where => "where",
            Concept::WhereAnd => "where_and",
            Concept::WhereOr => "where_or",
            Concept::Not => "not",
            Concept::InList => "in_list",
            Concept::InSubquery => "in_subquery",
            Concept::Exists => "exists",
            Concept::Between => "between",
            Concept::Like => "like",
            Concept::Glob => "glob",
            Concept::IsNull => "is_null",
            Concept::ComparisonWithSubquery => "comparison_with_subquery",
            Concept::Aggregate => "aggregate",
            Concept::CountDistinct => "count_distinct",
            Concept::GroupBy => "group_by",
            Concept::Having => "having",
            Concept::Distinct => "distinct",
            Concept::MultiColumnSelect => "multi_column_select",
            Concept::ComputedColumn => "computed_column",
            Concept::Ratio => "ratio",
            Concept::CaseWhen => "case_when",
            Concept::Iif => "iif",
            Concept::Alias => "alias",
            Concept::OrderBy => "order_by",
            Concept::OrderDesc => "order_desc",
            Concept::Limit => "limit",
            Concept::LimitOffset => "limit_offset",
            Concept::TopKTiesRisk => "top_k_ties_risk",
            Concept::NestedWhereSubquery => "nested_where_subquery",
            Concept::CorrelatedSubquery => "correlated_subquery",
            Concept::ScalarSubqueryInSelect => "scalar_subquery_in_select",
            Concept::Union => "union",
            Concept::UnionAll => "union_all",
            Concept::Intersect => "intersect",
            Concept::Except => "except",
            Concept::Cte => "cte",
            Concept::RecursiveCte => "recursive_cte",
            Concept::WindowFunction => "window_function",
            Concept::PartitionBy => "partition_by",
            Concept::DateTime => "date_time",
            Concept::StringFn => "string_fn",
            Concept::NumericFn => "numeric_fn",
            Concept::Cast => "cast",
            Concept::NullHandling => "null_handling",
        }
    }

    /// Parses a snake_case concept name.
    pub fn from_name(name: &str) -> Option<Concept> {
        Concept::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Concept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Spider's hardness levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hardness {
    Easy,
    Medium,
    Hard,
    Extra,
}

impl Hardness {
    pub const ALL: [Hardness; 4] = [
        Hardness::Easy,
        Hardness::Medium,
        Hardness::Hard,
        Hardness::Extra,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hardness::Easy => "easy",
            Hardness::Medium => "medium",
            Hardness::Hard => "hard",
            Hardness::Extra => "extra",
        }
    }

    pub fn from_name(name: &str) -> Option<Hardness> {
        Hardness::ALL.into_iter().find(|h| h.name() == name)
    }
}

impl fmt::Display for Hardness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SynSQL-style complexity level (`research/evaluation.md` §2.2, item 10):
/// - simple: one table, filters, aggregates, ordering;
/// - moderate: joins, subqueries, GROUP BY with HAVING, set operations;
/// - complex: a CTE, a window function, a correlated or nested subquery, a self-join, a CASE
///   over grouped data, or several aggregates over joined or grouped data;
/// - highly complex: several CTEs, a recursive CTE, or a set operation combined with window
///   functions or CTEs, or three or more complex features at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Simple,
    Moderate,
    Complex,
    HighlyComplex,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Simple,
        Level::Moderate,
        Level::Complex,
        Level::HighlyComplex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Simple => "simple",
            Level::Moderate => "moderate",
            Level::Complex => "complex",
            Level::HighlyComplex => "highly_complex",
        }
    }

    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The three counts the official Spider evaluator derives hardness from, computed on the
/// top-level query only (for a set operation, its first branch), as `count_component1`,
/// `count_component2` and `count_others` do. Their oddities are reproduced on purpose:
/// a negated WHERE or HAVING condition (`NOT IN`, `NOT LIKE`, ...) counts as an aggregate, as
/// does every AND/OR connector in HAVING (the reference code applies `has_agg` to condition
/// tuples and connector strings); an ORDER BY or LIMIT after a set operation belongs to the
/// last branch; FROM subqueries are not nested queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SpiderCounts {
    pub component1: u32,
    pub component2: u32,
    pub others: u32,
}

impl SpiderCounts {
    /// `eval_hardness` of the official evaluator.
    pub fn hardness(self) -> Hardness {
        let (c1, c2, o) = (self.component1, self.component2, self.others);
        if c1 <= 1 && o == 0 && c2 == 0 {
            Hardness::Easy
        } else if (o <= 2 && c1 <= 1 && c2 == 0) || (c1 <= 2 && o < 2 && c2 == 0) {
            Hardness::Medium
        } else if (o > 2 && c1 <= 2 && c2 == 0)
            || (2 < c1 && c1 <= 3 && o <= 2 && c2 == 0)
            || (c1 <= 1 && o == 0 && c2 <= 1)
        {
            Hardness::Hard
        } else {
            Hardness::Extra
        }
    }
}

/// Everything lode knows about one query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// How many times each concept occurs (only concepts that occur).
    pub concepts: BTreeMap<Concept, u32>,
    /// Real tables referenced (schema spelling when a schema was given), sorted.
    pub tables: Vec<String>,
    /// Columns referenced as `table.column`; `?.column` when the table cannot be told.
    pub columns: Vec<String>,
    /// Names that do not exist in the schema (`table` or `table.column`); empty without one.
    pub unknown: Vec<String>,
    pub hardness: Hardness,
    pub spider_counts: SpiderCounts,
    pub level: Level,
    /// The query with literals replaced by `?`, keywords upper-cased, identifiers lower-cased
    /// and whitespace folded: equal templates mean "the same query up to constants".
    pub template: String,
}

impl Analysis {
    pub fn has(&self, concept: Concept) -> bool {
        self.concepts.get(&concept).is_some_and(|&n| n > 0)
    }

    pub fn count(&self, concept: Concept) -> u32 {
        self.concepts.get(&concept).copied().unwrap_or(0)
    }
}

/// Why a query could not be analyzed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyzeError {
    #[error("empty query")]
    Empty,
    #[error("syntax error: {message}")]
    Parse { message: String },
    #[error("{count} statements in one query; give exactly one SELECT")]
    MultipleStatements { count: usize },
    #[error("not a query ({kind}); only SELECT and WITH ... SELECT can be analyzed")]
    NotAQuery { kind: String },
}

/// Parses exactly one SELECT (or WITH ... SELECT) statement of unknown target: in the SQLite
/// dialect, else in PostgreSQL's. SQL of a known target goes through [`parse_query_in`].
pub fn parse_query(sql: &str) -> Result<Query, AnalyzeError> {
    parse_query_in(sql, SqlDialect::Sqlite)
}

/// Parses exactly one SELECT (or WITH ... SELECT) statement in `dialect`, else in the other
/// (a PostgreSQL project's gold set may hold SQLite-isms such as backticks, and SQL of unknown
/// target may be written for either). The first grammar decides what text both read means:
/// `SELECT E'x'` is an escape string on PostgreSQL, a column `E` aliased `'x'` on SQLite.
pub fn parse_query_in(sql: &str, dialect: SqlDialect) -> Result<Query, AnalyzeError> {
    if sql.trim().trim_end_matches(';').trim().is_empty() {
        return Err(AnalyzeError::Empty);
    }
    let mut statements = dialect.parse(sql).map_err(|e| AnalyzeError::Parse {
        message: e
            .to_string()
            .trim_start_matches("sql parser error: ")
            .to_string(),
    })?;
    match statements.len() {
        0 => Err(AnalyzeError::Empty),
        1 => match statements.remove(0) {
            Statement::Query(q) => Ok(*q),
            other => Err(AnalyzeError::NotAQuery {
                kind: statement_kind(&other),
            }),
        },
        count => Err(AnalyzeError::MultipleStatements { count }),
    }
}

fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace()
        .next()
        .unwrap_or("statement")
        .to_uppercase()
}

/// Analyzes one query, read in the schema's dialect (SQLite's without a schema). With a
/// schema, unqualified columns are attributed to their tables and names missing from the
/// schema are listed in [`Analysis::unknown`].
pub fn analyze(sql: &str, schema: Option<&Schema>) -> Result<Analysis, AnalyzeError> {
    let query = parse_query_in(sql, SqlDialect::of_opt(schema))?;
    Ok(analyze_query(&query, sql, schema))
}

/// Analyzes an already parsed query (`sql` is its text, used for the template, which is
/// tokenized in the schema's dialect).
pub fn analyze_query(query: &Query, sql: &str, schema: Option<&Schema>) -> Analysis {
    let mut walker = Walker::new(schema);
    walker.query(query, Position::Top);
    if walker.tables.len() == 1 && walker.count(Concept::JoinInner) == 0 {
        walker.add(Concept::SingleTable, 1);
    }
    let spider_counts = spider_counts(query);
    let level = level(&walker.concepts, walker.nested_subqueries);
    let mut concepts = walker.concepts;
    concepts.retain(|_, n| *n > 0);
    Analysis {
        concepts,
        tables: walker.tables.into_iter().collect(),
        columns: walker.columns.into_iter().collect(),
        unknown: walker.unknown.into_iter().collect(),
        hardness: spider_counts.hardness(),
        spider_counts,
        level,
        template: template_in(sql, SqlDialect::of_opt(schema)),
    }
}

/// Spider hardness of a query's text (of unknown target: see [`parse_query`]).
pub fn hardness(sql: &str) -> Result<Hardness, AnalyzeError> {
    hardness_in(sql, SqlDialect::Sqlite)
}

/// Spider hardness of a query's text read in `dialect`.
pub fn hardness_in(sql: &str, dialect: SqlDialect) -> Result<Hardness, AnalyzeError> {
    Ok(spider_counts(&parse_query_in(sql, dialect)?).hardness())
}

// ---------------------------------------------------------------------------------------------
// Concepts, tables and columns

/// Where in the enclosing SELECT an expression or subquery sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Top,
    Select,
    From,
    On,
    Where,
    GroupBy,
    Having,
    OrderBy,
    Cte,
    Other,
}

/// What a name in FROM stands for.
#[derive(Debug, Clone)]
enum Source {
    /// A real table, by its schema spelling (or as written without a schema).
    Table(String),
    /// A CTE or a derived table: its columns are not schema columns.
    Derived,
}

#[derive(Debug, Default)]
struct Scope {
    /// (name or alias as written, lower-cased; source)
    entries: Vec<(String, Source)>,
    /// Output aliases of the SELECT list, lower-cased (ORDER BY and HAVING may use them).
    aliases: BTreeSet<String>,
}

struct Walker<'s> {
    schema: Option<&'s Schema>,
    concepts: BTreeMap<Concept, u32>,
    tables: BTreeSet<String>,
    columns: BTreeSet<String>,
    unknown: BTreeSet<String>,
    scopes: Vec<Scope>,
    /// CTE names visible at this point, lower-cased, innermost last.
    ctes: Vec<String>,
    /// Open subqueries: the scope depth at entry and whether an outer name was used.
    frames: Vec<(usize, bool)>,
    /// Subqueries inside subqueries.
    nested_subqueries: u32,
}

const AGGREGATES: &[&str] = &["count", "sum", "avg", "min", "max", "total", "group_concat"];
const WINDOW_ONLY: &[&str] = &[
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
];
const DATE_FNS: &[&str] = &[
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    "current_date",
    "current_time",
    "current_timestamp",
    // PostgreSQL's (EXTRACT is its own expression).
    "to_char",
    "to_date",
    "to_timestamp",
    "date_trunc",
    "date_part",
    "make_date",
    "age",
    "now",
];
const STRING_FNS: &[&str] = &[
    "substr",
    "substring",
    "instr",
    "length",
    "upper",
    "lower",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "printf",
    "format",
    "char",
    "unicode",
    "hex",
    "quote",
    "concat",
    "concat_ws",
    "soundex",
    "octet_length",
];
const NUMERIC_FNS: &[&str] = &[
    "round", "abs", "ceil", "ceiling", "floor", "sqrt", "power", "pow", "exp", "ln", "log",
    "log10", "log2", "mod", "sign", "trunc", "random", "pi",
];
const NULL_FNS: &[&str] = &["coalesce", "ifnull", "nullif"];

pub(crate) fn is_aggregate_call(f: &Function) -> bool {
    let name = function_name(&f.name);
    f.over.is_none() && AGGREGATES.contains(&name.as_str()) && !is_scalar_min_max(f, &name)
}

/// SQLite's `min(a, b)` and `max(a, b)` with two or more arguments are scalar functions.
fn is_scalar_min_max(f: &Function, name: &str) -> bool {
    (name == "min" || name == "max") && function_args(f).len() > 1
}

pub(crate) fn function_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .unwrap_or_default()
}

pub(crate) fn function_args(f: &Function) -> Vec<&FunctionArg> {
    match &f.args {
        FunctionArguments::List(list) => list.args.iter().collect(),
        _ => Vec::new(),
    }
}

fn is_distinct_call(f: &Function) -> bool {
    matches!(&f.args, FunctionArguments::List(list)
        if matches!(list.duplicate_treatment, Some(sqlparser::ast::DuplicateTreatment::Distinct)))
}

fn is_arithmetic(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
    )
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

fn is_hundred(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => n.parse::<f64>().is_ok_and(|x| x == 100.0),
            _ => false,
        },
        Expr::Nested(inner) => is_hundred(inner),
        _ => false,
    }
}

fn is_subquery(e: &Expr) -> bool {
    match e {
        Expr::Subquery(_) => true,
        Expr::Nested(inner) => is_subquery(inner),
        _ => false,
    }
}

impl<'s> Walker<'s> {
    fn new(schema: Option<&'s Schema>) -> Self {
        Walker {
            schema,
            concepts: BTreeMap::new(),
            tables: BTreeSet::new(),
            columns: BTreeSet::new(),
            unknown: BTreeSet::new(),
            scopes: Vec::new(),
            ctes: Vec::new(),
            frames: Vec::new(),
            nested_subqueries: 0,
        }
    }

    fn add(&mut self, concept: Concept, n: u32) {
        if n > 0 {
            *self.concepts.entry(concept).or_insert(0) += n;
        }
    }

    fn count(&self, concept: Concept) -> u32 {
        self.concepts.get(&concept).copied().unwrap_or(0)
    }

    /// A subquery (anywhere but the top): tracks correlation and nesting.
    fn subquery(&mut self, query: &Query, position: Position) {
        if !self.frames.is_empty() {
            self.nested_subqueries += 1;
        }
        self.frames.push((self.scopes.len(), false));
        self.query(query, position);
        if let Some((_, correlated)) = self.frames.pop()
            && correlated
        {
            self.add(Concept::CorrelatedSubquery, 1);
        }
    }

    fn query(&mut self, query: &Query, position: Position) {
        let ctes_before = self.ctes.len();
        if let Some(with) = &query.with {
            self.add(Concept::Cte, with.cte_tables.len() as u32);
            if with.recursive {
                self.add(Concept::RecursiveCte, 1);
            }
            for cte in &with.cte_tables {
                // A recursive CTE sees its own name; a plain one sees only the earlier ones,
                // but telling them apart does not change any tag, so both see their own.
                self.ctes.push(cte.alias.name.value.to_lowercase());
                self.query(&cte.query, Position::Cte);
            }
        }
        let order_keys: Vec<&Expr> = match query.order_by.as_ref().map(|o| &o.kind) {
            Some(OrderByKind::Expressions(exprs)) => exprs.iter().map(|o| &o.expr).collect(),
            _ => Vec::new(),
        };
        if let Some(order_by) = &query.order_by
            && let OrderByKind::Expressions(exprs) = &order_by.kind
        {
            self.add(Concept::OrderBy, exprs.len() as u32);
            let desc = exprs
                .iter()
                .filter(|o| matches!(o.options.sort, Some(sqlparser::ast::OrderBySort::Desc)))
                .count();
            self.add(Concept::OrderDesc, desc as u32);
        }
        let (has_limit, has_offset) = match &query.limit_clause {
            Some(LimitClause::LimitOffset { limit, offset, .. }) => {
                (limit.is_some(), offset.is_some())
            }
            Some(LimitClause::OffsetCommaLimit { .. }) => (true, true),
            None => (false, false),
        };
        if has_limit {
            self.add(Concept::Limit, 1);
        }
        if has_offset {
            self.add(Concept::LimitOffset, 1);
        }
        let ties = has_limit && !order_keys.is_empty();
        match query.body.as_ref() {
            SetExpr::Select(select) => {
                let unique = self.select(select, &order_keys);
                if ties && !unique {
                    self.add(Concept::TopKTiesRisk, 1);
                }
            }
            body => {
                self.set_expr(body, position);
                // ORDER BY of a set operation names output columns: tag, do not resolve.
                for key in &order_keys {
                    self.scopes.push(Scope::default());
                    self.expr(key, Position::OrderBy);
                    self.scopes.pop();
                }
                if ties {
                    self.add(Concept::TopKTiesRisk, 1);
                }
            }
        }
        if let Some(LimitClause::LimitOffset {
            limit: Some(limit), ..
        }) = &query.limit_clause
        {
            self.expr(limit, Position::Other);
        }
        self.ctes.truncate(ctes_before);
    }

    fn set_expr(&mut self, body: &SetExpr, position: Position) {
        match body {
            SetExpr::Select(select) => {
                self.select(select, &[]);
            }
            SetExpr::Query(q) => self.query(q, position),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let concept = match op {
                    SetOperator::Union => match set_quantifier {
                        SetQuantifier::All => Concept::UnionAll,
                        _ => Concept::Union,
                    },
                    SetOperator::Intersect => Concept::Intersect,
                    SetOperator::Except | SetOperator::Minus => Concept::Except,
                };
                self.add(concept, 1);
                self.set_expr(left, position);
                self.set_expr(right, position);
            }
            _ => {}
        }
    }

    /// Walks one SELECT; `order_keys` are the ORDER BY keys of the query it is the body of.
    /// Returns whether some ORDER BY key is a unique column (so a LIMIT cannot cut ties).
    fn select(&mut self, select: &Select, order_keys: &[&Expr]) -> bool {
        let mut scope = Scope::default();
        let mut real_tables: Vec<String> = Vec::new();
        for twj in &select.from {
            self.table_factor(&twj.relation, &mut scope, &mut real_tables);
            for join in &twj.joins {
                let concept = match &join.join_operator {
                    JoinOperator::Left(_)
                    | JoinOperator::LeftOuter(_)
                    | JoinOperator::Right(_)
                    | JoinOperator::RightOuter(_)
                    | JoinOperator::FullOuter(_) => Concept::JoinOuter,
                    JoinOperator::CrossJoin(_) => Concept::CrossJoin,
                    _ => Concept::JoinInner,
                };
                self.add(concept, 1);
                self.table_factor(&join.relation, &mut scope, &mut real_tables);
            }
        }
        if select.from.len() > 1 {
            self.add(Concept::CrossJoin, select.from.len() as u32 - 1);
        }
        let mut seen = BTreeSet::new();
        if real_tables.iter().any(|t| !seen.insert(t.to_lowercase())) {
            self.add(Concept::SelfJoin, 1);
        }
        for item in &select.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                scope.aliases.insert(alias.value.to_lowercase());
            }
        }
        self.scopes.push(scope);

        for twj in &select.from {
            for join in &twj.joins {
                if let Some(JoinConstraint::On(on)) = join_constraint(&join.join_operator) {
                    self.expr(on, Position::On);
                }
            }
        }
        if let Some(selection) = &select.selection {
            self.add(Concept::Where, 1);
            let (ands, ors) = connectors(selection);
            self.add(Concept::WhereAnd, ands);
            self.add(Concept::WhereOr, ors);
            self.expr(selection, Position::Where);
        }
        if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
            self.add(Concept::GroupBy, exprs.len() as u32);
            for e in exprs {
                self.expr(e, Position::GroupBy);
            }
        }
        if let Some(having) = &select.having {
            self.add(Concept::Having, 1);
            self.expr(having, Position::Having);
        }
        if matches!(select.distinct, Some(Distinct::Distinct | Distinct::On(_))) {
            self.add(Concept::Distinct, 1);
        }
        if select.projection.len() > 1 {
            self.add(Concept::MultiColumnSelect, 1);
        }
        for item in &select.projection {
            match item {
                SelectItem::UnnamedExpr(e) => self.expr(e, Position::Select),
                SelectItem::ExprWithAlias { expr, .. } => {
                    self.add(Concept::Alias, 1);
                    self.expr(expr, Position::Select);
                }
                SelectItem::ExprWithAliases { expr, .. } => {
                    self.add(Concept::Alias, 1);
                    self.expr(expr, Position::Select);
                }
                SelectItem::QualifiedWildcard(..) | SelectItem::Wildcard(_) => {}
            }
        }
        let mut unique = false;
        for key in order_keys {
            self.expr(key, Position::OrderBy);
            unique |= self.is_unique_key(key);
        }
        self.scopes.pop();
        unique
    }

    fn table_factor(&mut self, factor: &TableFactor, scope: &mut Scope, real: &mut Vec<String>) {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let written = function_name(name);
                let source = if self.ctes.contains(&written) {
                    Source::Derived
                } else {
                    let canonical = self.canonical_table(name);
                    self.tables.insert(canonical.clone());
                    real.push(canonical.clone());
                    Source::Table(canonical)
                };
                let key = alias
                    .as_ref()
                    .map(|a| a.name.value.to_lowercase())
                    .unwrap_or(written.clone());
                scope.entries.push((key.clone(), source.clone()));
                if key != written {
                    // `FROM t AS a` still lets some engines say `t.col`; keep the table name
                    // reachable too, after the alias.
                    scope.entries.push((written, source));
                }
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                self.add(Concept::FromSubquery, 1);
                self.subquery(subquery, Position::From);
                if let Some(alias) = alias {
                    scope
                        .entries
                        .push((alias.name.value.to_lowercase(), Source::Derived));
                } else {
                    scope.entries.push((String::new(), Source::Derived));
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                self.table_factor(&table_with_joins.relation, scope, real);
                for join in &table_with_joins.joins {
                    self.add(Concept::JoinInner, 1);
                    self.table_factor(&join.relation, scope, real);
                }
            }
            _ => {}
        }
    }

    /// The schema's spelling of a table name, or the name as written.
    fn canonical_table(&mut self, name: &ObjectName) -> String {
        let written = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.clone())
            .unwrap_or_default();
        match self.schema {
            Some(schema) => match schema.table(&written) {
                Some(t) => t.name.clone(),
                None => {
                    self.unknown.insert(written.clone());
                    written
                }
            },
            None => written,
        }
    }

    fn schema_has_column(&self, table: &str, column: &str) -> Option<bool> {
        let schema = self.schema?;
        let t = schema.table(table)?;
        Some(
            t.columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(column)),
        )
    }

    fn column_spelling(&self, table: &str, column: &str) -> String {
        self.schema
            .and_then(|s| s.table(table))
            .and_then(|t| {
                t.columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(column))
            })
            .map_or_else(|| column.to_string(), |c| c.name.clone())
    }

    /// Marks open subqueries whose base is deeper than `scope_index` as correlated.
    fn note_resolution(&mut self, scope_index: usize) {
        for frame in self.frames.iter_mut() {
            if scope_index < frame.0 {
                frame.1 = true;
            }
        }
    }

    fn qualified_column(&mut self, qualifier: &str, column: &str) {
        let q = qualifier.to_lowercase();
        let found = self.scopes.iter().enumerate().rev().find_map(|(i, s)| {
            s.entries
                .iter()
                .find(|(name, _)| *name == q)
                .map(|(_, src)| (i, src.clone()))
        });
        match found {
            Some((i, Source::Table(table))) => {
                self.note_resolution(i);
                self.record_column(&table, column);
            }
            Some((i, Source::Derived)) => self.note_resolution(i),
            None => {
                // A qualifier that names nothing in scope: a table used without FROM.
                if self.schema.is_some() {
                    self.unknown.insert(format!("{qualifier}.{column}"));
                }
                self.columns.insert(format!("{qualifier}.{column}"));
            }
        }
    }

    fn record_column(&mut self, table: &str, column: &str) {
        match self.schema_has_column(table, column) {
            Some(false) => {
                self.unknown.insert(format!("{table}.{column}"));
                self.columns.insert(format!("{table}.{column}"));
            }
            _ => {
                let spelled = self.column_spelling(table, column);
                self.columns.insert(format!("{table}.{spelled}"));
            }
        }
    }

    /// An unqualified name: a column of some table in scope, an output alias, or (when it was
    /// double-quoted and no table has such a column) a string literal, as SQLite reads it.
    fn bare_column(&mut self, ident: &sqlparser::ast::Ident, position: Position) {
        let name = ident.value.as_str();
        let lower = name.to_lowercase();
        if self.schema.is_some() {
            for i in (0..self.scopes.len()).rev() {
                let tables: Vec<String> = self.scopes[i]
                    .entries
                    .iter()
                    .filter_map(|(_, s)| match s {
                        Source::Table(t) => Some(t.clone()),
                        Source::Derived => None,
                    })
                    .collect();
                let has_derived = self.scopes[i]
                    .entries
                    .iter()
                    .any(|(_, s)| matches!(s, Source::Derived));
                let mut matching: Vec<String> = tables
                    .into_iter()
                    .filter(|t| self.schema_has_column(t, name) == Some(true))
                    .collect();
                matching.dedup();
                if let Some(table) = matching.first().cloned() {
                    self.note_resolution(i);
                    if matching.len() == 1 {
                        self.record_column(&table, name);
                    } else {
                        self.columns.insert(format!("?.{name}"));
                    }
                    return;
                }
                if self.scopes[i].aliases.contains(&lower) {
                    return;
                }
                // A table missing from the schema is already reported; its columns are
                // attributed to it rather than reported again.
                let missing = self.scopes[i].entries.iter().find_map(|(_, s)| match s {
                    Source::Table(t) if self.schema_has_column(t, name).is_none() => {
                        Some(t.clone())
                    }
                    _ => None,
                });
                if let Some(table) = missing {
                    self.note_resolution(i);
                    self.columns.insert(format!("{table}.{name}"));
                    return;
                }
                if has_derived {
                    // Probably a column of the CTE or derived table.
                    self.note_resolution(i);
                    return;
                }
            }
            if ident.quote_style == Some('"') || ident.quote_style == Some('\'') {
                return; // a string literal in double quotes
            }
            if !matches!(position, Position::OrderBy | Position::Having) {
                self.unknown.insert(name.to_string());
            }
            self.columns.insert(format!("?.{name}"));
            return;
        }
        // Without a schema: the innermost scope is assumed.
        let Some(scope) = self.scopes.last() else {
            return;
        };
        if scope.aliases.contains(&lower) {
            return;
        }
        let tables: BTreeSet<&String> = scope
            .entries
            .iter()
            .filter_map(|(_, s)| match s {
                Source::Table(t) => Some(t),
                Source::Derived => None,
            })
            .collect();
        let derived = scope
            .entries
            .iter()
            .any(|(_, s)| matches!(s, Source::Derived));
        if tables.len() == 1 && !derived {
            let table = (*tables.iter().next().unwrap_or(&&String::new())).clone();
            self.columns.insert(format!("{table}.{name}"));
        } else if !derived || !tables.is_empty() {
            self.columns.insert(format!("?.{name}"));
        }
    }

    /// Whether an ORDER BY key is a column known to be unique (a one-column primary key or
    /// unique index), so that LIMIT cannot cut between tied rows.
    fn is_unique_key(&self, key: &Expr) -> bool {
        let (qualifier, column) = match key {
            Expr::Identifier(i) => (None, i.value.as_str()),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => (
                Some(parts[parts.len() - 2].value.to_lowercase()),
                parts[parts.len() - 1].value.as_str(),
            ),
            _ => return false,
        };
        let Some(scope) = self.scopes.last() else {
            return false;
        };
        let tables: Vec<&String> = scope
            .entries
            .iter()
            .filter(|(name, _)| qualifier.as_ref().is_none_or(|q| q == name))
            .filter_map(|(_, s)| match s {
                Source::Table(t) => Some(t),
                Source::Derived => None,
            })
            .collect();
        let Some(schema) = self.schema else {
            return column.eq_ignore_ascii_case("id") && tables.len() == 1;
        };
        tables.iter().any(|t| {
            schema.table(t).is_some_and(|table| {
                (table.primary_key.len() == 1 && table.primary_key[0].eq_ignore_ascii_case(column))
                    || table.indexes.iter().any(|ix| {
                        ix.unique
                            && ix.columns.len() == 1
                            && ix.columns[0].eq_ignore_ascii_case(column)
                    })
            })
        })
    }

    fn function(&mut self, f: &Function, position: Position) {
        let name = function_name(&f.name);
        if let Some(over) = &f.over {
            self.add(Concept::WindowFunction, 1);
            if let WindowType::WindowSpec(spec) = over {
                if !spec.partition_by.is_empty() {
                    self.add(Concept::PartitionBy, 1);
                }
                for e in &spec.partition_by {
                    self.expr(e, Position::Other);
                }
                for o in &spec.order_by {
                    self.expr(&o.expr, Position::Other);
                }
            }
        } else if AGGREGATES.contains(&name.as_str()) && !is_scalar_min_max(f, &name) {
            self.add(Concept::Aggregate, 1);
            if name == "count" && is_distinct_call(f) {
                self.add(Concept::CountDistinct, 1);
            }
        } else if WINDOW_ONLY.contains(&name.as_str()) {
            self.add(Concept::WindowFunction, 1);
        }
        let n = name.as_str();
        if DATE_FNS.contains(&n) {
            self.add(Concept::DateTime, 1);
        } else if STRING_FNS.contains(&n) {
            self.add(Concept::StringFn, 1);
        } else if NUMERIC_FNS.contains(&n) || is_scalar_min_max(f, n) {
            self.add(Concept::NumericFn, 1);
        } else if NULL_FNS.contains(&n) {
            self.add(Concept::NullHandling, 1);
        } else if n == "iif" {
            self.add(Concept::Iif, 1);
        }
        if let FunctionArguments::Subquery(q) = &f.args {
            self.subquery(q, position);
        }
        for arg in function_args(f) {
            let e = match arg {
                FunctionArg::Unnamed(a) | FunctionArg::Named { arg: a, .. } => a,
                FunctionArg::ExprNamed { arg: a, .. } => a,
            };
            if let FunctionArgExpr::Expr(e) = e {
                self.expr(e, position);
            }
        }
        if let Some(filter) = &f.filter {
            self.expr(filter, position);
        }
    }

    fn nested_query(&mut self, query: &Query, position: Position) {
        match position {
            Position::Select => self.add(Concept::ScalarSubqueryInSelect, 1),
            Position::Where | Position::Having | Position::On => {
                self.add(Concept::NestedWhereSubquery, 1)
            }
            _ => {}
        }
        self.subquery(query, position);
    }

    fn expr(&mut self, e: &Expr, position: Position) {
        match e {
            Expr::Identifier(ident) => self.bare_column(ident, position),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let q = parts[parts.len() - 2].value.clone();
                let c = parts[parts.len() - 1].value.clone();
                self.qualified_column(&q, &c);
            }
            Expr::BinaryOp { left, op, right } => {
                if is_arithmetic(op) && matches!(position, Position::Select | Position::OrderBy) {
                    self.add(Concept::ComputedColumn, 1);
                }
                if *op == BinaryOperator::Divide
                    || (*op == BinaryOperator::Multiply && (is_hundred(left) || is_hundred(right)))
                {
                    self.add(Concept::Ratio, 1);
                }
                if *op == BinaryOperator::Glob {
                    self.add(Concept::Glob, 1);
                }
                if is_comparison(op) && (is_subquery(left) || is_subquery(right)) {
                    self.add(Concept::ComparisonWithSubquery, 1);
                }
                self.expr(left, position);
                self.expr(right, position);
            }
            Expr::UnaryOp { op, expr } => {
                if *op == UnaryOperator::Not {
                    self.add(Concept::Not, 1);
                }
                self.expr(expr, position);
            }
            Expr::Nested(inner) => self.expr(inner, position),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                self.add(Concept::InList, 1);
                if *negated {
                    self.add(Concept::Not, 1);
                }
                self.expr(expr, position);
                for item in list {
                    self.expr(item, position);
                }
            }
            Expr::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                self.add(Concept::InSubquery, 1);
                if *negated {
                    self.add(Concept::Not, 1);
                }
                self.expr(expr, position);
                self.nested_query(subquery, position);
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                self.add(Concept::Between, 1);
                if *negated {
                    self.add(Concept::Not, 1);
                }
                self.expr(expr, position);
                self.expr(low, position);
                self.expr(high, position);
            }
            Expr::Like {
                negated,
                expr,
                pattern,
                ..
            }
            | Expr::ILike {
                negated,
                expr,
                pattern,
                ..
            } => {
                self.add(Concept::Like, 1);
                if *negated {
                    self.add(Concept::Not, 1);
                }
                self.expr(expr, position);
                self.expr(pattern, position);
            }
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                self.add(Concept::IsNull, 1);
                self.expr(inner, position);
            }
            Expr::IsTrue(inner)
            | Expr::IsNotTrue(inner)
            | Expr::IsFalse(inner)
            | Expr::IsNotFalse(inner)
            | Expr::IsUnknown(inner)
            | Expr::IsNotUnknown(inner) => self.expr(inner, position),
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                self.add(Concept::NullHandling, 1);
                self.expr(a, position);
                self.expr(b, position);
            }
            Expr::Exists { subquery, negated } => {
                self.add(Concept::Exists, 1);
                if *negated {
                    self.add(Concept::Not, 1);
                }
                self.nested_query(subquery, position);
            }
            Expr::Subquery(q) => self.nested_query(q, position),
            Expr::Function(f) => self.function(f, position),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                self.add(Concept::CaseWhen, 1);
                if let Some(o) = operand {
                    self.expr(o, position);
                }
                for c in conditions {
                    self.expr(&c.condition, position);
                    self.expr(&c.result, position);
                }
                if let Some(e) = else_result {
                    self.expr(e, position);
                }
            }
            Expr::Cast { kind, expr, .. } => {
                if matches!(
                    kind,
                    CastKind::Cast | CastKind::TryCast | CastKind::SafeCast
                ) {
                    self.add(Concept::Cast, 1);
                }
                self.expr(expr, position);
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.add(Concept::StringFn, 1);
                self.expr(expr, position);
                if let Some(f) = substring_from {
                    self.expr(f, position);
                }
                if let Some(f) = substring_for {
                    self.expr(f, position);
                }
            }
            Expr::Trim { expr, .. } => {
                self.add(Concept::StringFn, 1);
                self.expr(expr, position);
            }
            Expr::Ceil { expr, .. } | Expr::Floor { expr, .. } => {
                self.add(Concept::NumericFn, 1);
                self.expr(expr, position);
            }
            Expr::Extract { expr, .. } => {
                self.add(Concept::DateTime, 1);
                self.expr(expr, position);
            }
            Expr::Collate { expr, .. } => self.expr(expr, position),
            Expr::Tuple(items) => {
                for item in items {
                    self.expr(item, position);
                }
            }
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                self.expr(left, position);
                self.expr(right, position);
            }
            // PostgreSQL's readings: `tags[1]`, `tags[2:3]`, `ARRAY[a, b]`, `a SIMILAR TO 'x'`,
            // `a REGEXP 'x'`, `t AT TIME ZONE 'UTC'`.
            Expr::CompoundFieldAccess { root, access_chain } => {
                self.expr(root, position);
                for access in access_chain {
                    match access {
                        AccessExpr::Subscript(Subscript::Index { index }) => {
                            self.expr(index, position)
                        }
                        AccessExpr::Subscript(Subscript::Slice {
                            lower_bound,
                            upper_bound,
                            stride,
                        }) => {
                            for e in [lower_bound, upper_bound, stride].into_iter().flatten() {
                                self.expr(e, position);
                            }
                        }
                        // `(row).field`: a field's name, not a column.
                        AccessExpr::Dot(_) => {}
                    }
                }
            }
            Expr::Array(array) => {
                for e in &array.elem {
                    self.expr(e, position);
                }
            }
            Expr::SimilarTo {
                negated,
                expr,
                pattern,
                ..
            }
            | Expr::RLike {
                negated,
                expr,
                pattern,
                ..
            } => {
                if *negated {
                    self.add(Concept::Not, 1);
                }
                self.expr(expr, position);
                self.expr(pattern, position);
            }
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                self.expr(timestamp, position);
                self.expr(time_zone, position);
            }
            _ => {}
        }
    }
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c) => Some(c),
        _ => None,
    }
}

/// (AND connectors, OR connectors) of a boolean expression, through parentheses.
fn connectors(e: &Expr) -> (u32, u32) {
    match e {
        Expr::BinaryOp { left, op, right }
            if matches!(op, BinaryOperator::And | BinaryOperator::Or) =>
        {
            let (la, lo) = connectors(left);
            let (ra, ro) = connectors(right);
            let (a, o) = if *op == BinaryOperator::And {
                (1, 0)
            } else {
                (0, 1)
            };
            (la + ra + a, lo + ro + o)
        }
        Expr::Nested(inner) => connectors(inner),
        _ => (0, 0),
    }
}

fn level(concepts: &BTreeMap<Concept, u32>, nested_subqueries: u32) -> Level {
    let n = |c: Concept| concepts.get(&c).copied().unwrap_or(0);
    let set_ops =
        n(Concept::Union) + n(Concept::UnionAll) + n(Concept::Intersect) + n(Concept::Except);
    let joins = n(Concept::JoinInner) + n(Concept::JoinOuter) + n(Concept::CrossJoin);
    let subqueries = n(Concept::NestedWhereSubquery)
        + n(Concept::ScalarSubqueryInSelect)
        + n(Concept::FromSubquery);
    let grouped_or_joined = n(Concept::GroupBy) > 0 || joins > 0;
    let complex_features = [
        n(Concept::Cte) > 0,
        n(Concept::WindowFunction) > 0,
        n(Concept::CorrelatedSubquery) > 0,
        nested_subqueries > 0,
        n(Concept::SelfJoin) > 0,
        n(Concept::CaseWhen) + n(Concept::Iif) > 0 && grouped_or_joined,
        n(Concept::Aggregate) > 1 && grouped_or_joined && (joins > 0 || n(Concept::Having) > 0),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if n(Concept::Cte) > 1
        || n(Concept::RecursiveCte) > 0
        || (set_ops > 0 && (n(Concept::WindowFunction) > 0 || n(Concept::Cte) > 0))
        || complex_features >= 3
    {
        Level::HighlyComplex
    } else if complex_features > 0 {
        Level::Complex
    } else if joins > 0 || subqueries > 0 || n(Concept::Having) > 0 || set_ops > 0 {
        Level::Moderate
    } else {
        Level::Simple
    }
}

// ---------------------------------------------------------------------------------------------
// Spider hardness

/// One leaf condition of a WHERE / HAVING / ON, with what Spider's parser would record.
struct Cond<'a> {
    expr: &'a Expr,
}

impl Cond<'_> {
    /// `not_op` of the Spider condition tuple: `NOT IN`, `NOT LIKE`, `NOT BETWEEN`, ...
    fn negated(&self) -> bool {
        match self.expr {
            Expr::InList { negated, .. }
            | Expr::InSubquery { negated, .. }
            | Expr::Between { negated, .. }
            | Expr::Like { negated, .. }
            | Expr::ILike { negated, .. }
            | Expr::Exists { negated, .. } => *negated,
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                ..
            } => true,
            _ => false,
        }
    }

    fn is_like(&self) -> bool {
        matches!(self.expr, Expr::Like { .. } | Expr::ILike { .. })
    }

    /// Nested queries among the condition's values.
    fn nested(&self) -> u32 {
        match self.expr {
            Expr::InSubquery { .. } | Expr::Exists { .. } => 1,
            Expr::BinaryOp { left, right, .. } => {
                is_subquery(left) as u32 + is_subquery(right) as u32
            }
            Expr::Between { low, high, .. } => is_subquery(low) as u32 + is_subquery(high) as u32,
            Expr::Like { pattern, .. } => is_subquery(pattern) as u32,
            Expr::UnaryOp { expr, .. } => Cond { expr }.nested(),
            _ => 0,
        }
    }
}

/// Flattens AND/OR chains (through parentheses) into conditions and connectors, as Spider's
/// left-to-right condition parser sees them.
fn flatten<'a>(e: &'a Expr, conds: &mut Vec<Cond<'a>>, ors: &mut u32) {
    match e {
        Expr::BinaryOp { left, op, right }
            if matches!(op, BinaryOperator::And | BinaryOperator::Or) =>
        {
            flatten(left, conds, ors);
            if *op == BinaryOperator::Or {
                *ors += 1;
            }
            flatten(right, conds, ors);
        }
        Expr::Nested(inner) if !is_subquery(inner) => flatten(inner, conds, ors),
        other => conds.push(Cond { expr: other }),
    }
}

/// Whether a Spider select/order unit carries an aggregate: the expression is an aggregate
/// call, or an arithmetic expression whose first operand is one.
fn leading_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => is_aggregate_call(f),
        Expr::BinaryOp { left, op, .. } if is_arithmetic(op) => leading_aggregate(left),
        Expr::Nested(inner) => leading_aggregate(inner),
        _ => false,
    }
}

/// Spider's `orderBy` aggregates: each of the (at most two) column units of a key.
fn order_key_aggregates(e: &Expr) -> u32 {
    match e {
        Expr::BinaryOp { left, op, right } if is_arithmetic(op) => {
            leading_aggregate(left) as u32 + leading_aggregate(right) as u32
        }
        other => leading_aggregate(other) as u32,
    }
}

/// The query's first SELECT, and whether it is the first branch of a set operation.
fn first_select(body: &SetExpr) -> Option<(&Select, bool)> {
    match body {
        SetExpr::Select(s) => Some((s, false)),
        SetExpr::Query(q) => first_select(&q.body),
        SetExpr::SetOperation { left, .. } => first_select(left).map(|(s, _)| (s, true)),
        _ => None,
    }
}

/// The counts of the official `eval_hardness` for a parsed query.
pub fn spider_counts(query: &Query) -> SpiderCounts {
    let Some((select, set_op)) = first_select(&query.body) else {
        return SpiderCounts::default();
    };
    // ORDER BY and LIMIT belong to the first SELECT only when there is no set operation.
    let (order_keys, limit): (Vec<&Expr>, bool) = if set_op {
        (Vec::new(), false)
    } else {
        let keys = match query.order_by.as_ref().map(|o| &o.kind) {
            Some(OrderByKind::Expressions(exprs)) => exprs.iter().map(|o| &o.expr).collect(),
            _ => Vec::new(),
        };
        let limit = matches!(
            &query.limit_clause,
            Some(LimitClause::LimitOffset { limit: Some(_), .. })
                | Some(LimitClause::OffsetCommaLimit { .. })
        );
        (keys, limit)
    };

    let mut on_conds = Vec::new();
    let mut on_ors = 0;
    let mut table_units = 0u32;
    for twj in &select.from {
        table_units += 1 + twj.joins.len() as u32;
        for join in &twj.joins {
            if let Some(JoinConstraint::On(on)) = join_constraint(&join.join_operator) {
                flatten(on, &mut on_conds, &mut on_ors);
            }
        }
    }
    let mut where_conds = Vec::new();
    let mut where_ors = 0;
    if let Some(w) = &select.selection {
        flatten(w, &mut where_conds, &mut where_ors);
    }
    let mut having_conds = Vec::new();
    let mut having_ors = 0;
    if let Some(h) = &select.having {
        flatten(h, &mut having_conds, &mut having_ors);
    }
    let group_by: &[Expr] = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs,
        GroupByExpr::All(_) => &[],
    };

    let all_conds = || on_conds.iter().chain(&where_conds).chain(&having_conds);
    let mut c1 = 0;
    c1 += !where_conds.is_empty() as u32;
    c1 += !group_by.is_empty() as u32;
    c1 += !order_keys.is_empty() as u32;
    c1 += limit as u32;
    c1 += table_units.saturating_sub(1);
    c1 += on_ors + where_ors + having_ors;
    c1 += all_conds().filter(|c| c.is_like()).count() as u32;

    let c2 = all_conds().map(|c| c.nested()).sum::<u32>() + set_op as u32;

    let mut aggregates = 0u32;
    aggregates += select
        .projection
        .iter()
        .filter(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                leading_aggregate(e)
            }
            _ => false,
        })
        .count() as u32;
    aggregates += where_conds.iter().filter(|c| c.negated()).count() as u32;
    aggregates += group_by.iter().filter(|e| leading_aggregate(e)).count() as u32;
    aggregates += order_keys
        .iter()
        .map(|e| order_key_aggregates(e))
        .sum::<u32>();
    // HAVING: negated conditions, and every connector between conditions.
    aggregates += having_conds.iter().filter(|c| c.negated()).count() as u32;
    aggregates += having_conds.len().saturating_sub(1) as u32;
    let mut others = 0;
    others += (aggregates > 1) as u32;
    others += (select.projection.len() > 1) as u32;
    others += (where_conds.len() > 1) as u32;
    others += (group_by.len() > 1) as u32;

    SpiderCounts {
        component1: c1,
        component2: c2,
        others,
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

/// The query with every literal replaced by `?` (a list of literals by one `?`), keywords
/// upper-cased, identifiers lower-cased and unquoted, comments dropped and whitespace folded.
/// Text that cannot be tokenized is folded by case and whitespace only. The text is of unknown
/// target (tokenized as SQLite's); SQL of a known target goes through [`template_in`].
pub fn template(sql: &str) -> String {
    template_in(sql, SqlDialect::Sqlite)
}

/// [`template`] of SQL tokenized in `dialect` (else in the other): on PostgreSQL `E'x'` and
/// `$$x$$` are one literal each, where SQLite's tokenizer sees a word and a string, or
/// parameters.
pub fn template_in(sql: &str, dialect: SqlDialect) -> String {
    let Ok(tokens) = dialect.tokenize(sql) else {
        return sql
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
    };
    let mut out: Vec<String> = Vec::new();
    // Inside ORDER BY / GROUP BY a bare number is a column position, not a constant.
    let mut in_by_list = false;
    for token in tokens {
        let text = match token {
            Token::Whitespace(_) | Token::EOF | Token::SemiColon => continue,
            Token::Number(n, _)
                if in_by_list && matches!(out.last().map(String::as_str), Some("BY" | ",")) =>
            {
                n
            }
            Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::DollarQuotedString(_)
            | Token::HexStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::Placeholder(_) => "?".to_string(),
            Token::Word(w) => {
                if w.quote_style.is_none() && is_structural_keyword(&w.value) {
                    w.value.to_uppercase()
                } else if w.value.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    w.value.to_lowercase()
                } else {
                    format!("\"{}\"", w.value.to_lowercase())
                }
            }
            other => other.to_string(),
        };
        if text == "BY" {
            in_by_list = matches!(out.last().map(String::as_str), Some("ORDER" | "GROUP"));
        } else if is_structural_keyword(&text) && !matches!(text.as_str(), "ASC" | "DESC") {
            in_by_list = false;
        }
        // `?, ?, ?` → `?`
        if text == "?" && out.len() >= 2 && out[out.len() - 1] == "," && out[out.len() - 2] == "?" {
            out.pop();
            continue;
        }
        out.push(text);
    }
    let mut s = String::new();
    for (i, t) in out.iter().enumerate() {
        let prev = if i > 0 { out[i - 1].as_str() } else { "" };
        // A function call: a name (not a keyword) right before `(`.
        let call = t == "("
            && prev
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
            && !is_structural_keyword(prev);
        let glue = i == 0 || prev == "(" || prev == "." || t == ")" || t == "," || t == "." || call;
        if !glue {
            s.push(' ');
        }
        s.push_str(t);
    }
    s
}

/// Keywords written upper-case in templates. Everything else is folded to lower case: many
/// keywords of the parser (`name`, `year`, `count`) are common column and function names.
fn is_structural_keyword(word: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "select",
        "distinct",
        "all",
        "from",
        "where",
        "group",
        "by",
        "having",
        "order",
        "asc",
        "desc",
        "limit",
        "offset",
        "join",
        "inner",
        "left",
        "right",
        "full",
        "outer",
        "cross",
        "natural",
        "on",
        "using",
        "as",
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "like",
        "glob",
        "between",
        "exists",
        "case",
        "when",
        "then",
        "else",
        "end",
        "union",
        "intersect",
        "except",
        "with",
        "recursive",
        "over",
        "partition",
        "cast",
        "escape",
        "collate",
    ];
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(sql: &str) -> Analysis {
        analyze(sql, None).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn postgresql_queries_are_analysed_too() {
        let q = "SELECT DISTINCT ON (city) name, price::numeric FROM shop \
                 WHERE name ILIKE 'a%' ORDER BY city, price DESC";
        let a = analyze(q, None).expect("parsed with PostgreSQL grammar");
        assert!(a.tables.iter().any(|t| t == "shop"), "{:?}", a.tables);
        assert!(hardness(q).is_ok());
    }

    /// `items(id, name, tags, price, note)` on a PostgreSQL server.
    fn pg_items() -> Schema {
        use crate::sql::schema::{Column, Table};
        let column = |name: &str| Column {
            name: name.into(),
            ..Column::default()
        };
        Schema {
            tables: vec![Table {
                name: "items".into(),
                columns: ["id", "name", "tags", "price", "note"]
                    .into_iter()
                    .map(column)
                    .collect(),
                primary_key: vec!["id".into()],
                ..Table::default()
            }],
            dialect: "postgresql".into(),
        }
    }

    #[test]
    fn a_postgresql_schema_reads_its_queries_as_postgresql_does() {
        let pg = pg_items();
        let lite = Schema {
            dialect: String::new(),
            ..pg.clone()
        };
        // Both grammars parse these, differently: SQLite's takes `tags[1]` for `tags AS [1]`,
        // `E'it''s'` for a column `E` aliased 'it''s', `ARRAY[price, 2]` for a column `ARRAY`.
        let q = "SELECT name, tags[1], E'it''s' FROM items";
        let a = analyze(q, Some(&pg)).unwrap();
        assert_eq!(a.tables, ["items"]);
        assert_eq!(a.columns, ["items.name", "items.tags"]);
        assert!(a.unknown.is_empty(), "{:?}", a.unknown);
        assert!(!a.has(Concept::Alias), "{:?}", a.concepts);
        let a = analyze(q, Some(&lite)).unwrap();
        assert!(a.has(Concept::Alias), "SQLite's reading: {:?}", a.concepts);
        assert_eq!(a.unknown, ["E"], "SQLite's reading");
        // No schema: SQLite's grammar first, as before.
        assert!(analyze(q, None).unwrap().has(Concept::Alias));

        let q = "SELECT ARRAY[price, 2] FROM items WHERE note ILIKE 'a%'";
        let a = analyze(q, Some(&pg)).unwrap();
        assert_eq!(a.columns, ["items.note", "items.price"]);
        assert!(a.unknown.is_empty(), "{:?}", a.unknown);
        assert!(a.has(Concept::Where) && a.has(Concept::SingleTable));
        let a = analyze(q, Some(&lite)).unwrap();
        assert_eq!(a.unknown, ["ARRAY"], "SQLite's reading");

        // Only PostgreSQL's grammar reads these; SQLite's still does as the fallback.
        let q = "SELECT name FROM items WHERE note = $$it's$$ AND CAST(tags AS TEXT[]) IS NOT NULL";
        for schema in [&pg, &lite] {
            let a = analyze(q, Some(schema)).unwrap();
            assert_eq!(a.columns, ["items.name", "items.note", "items.tags"]);
            assert!(a.has(Concept::WhereAnd) && a.has(Concept::Cast) && a.has(Concept::IsNull));
        }
        // A PostgreSQL project's SQLite-ism (backticks) falls back to SQLite's grammar.
        let a = analyze("SELECT `name` FROM items", Some(&pg)).unwrap();
        assert_eq!(a.columns, ["items.name"]);

        // Templates: an escape string and a dollar-quoted one are one literal each.
        let a = analyze(
            "SELECT name FROM items WHERE note = E'it''s' OR note = $$a b$$",
            Some(&pg),
        )
        .unwrap();
        assert_eq!(
            a.template,
            "SELECT name FROM items WHERE note = ? OR note = ?"
        );
        assert_eq!(
            template("SELECT name FROM items WHERE note = E'it''s' OR note = $$a b$$"),
            "SELECT name FROM items WHERE note = e ? OR note = ? b ?",
            "SQLite's tokens"
        );
        assert_eq!(
            template_in("SELECT x::int, b'101' FROM t", SqlDialect::Postgres),
            "SELECT x :: int, ? FROM t"
        );
        // Hardness follows the same reading.
        assert!(hardness_in("SELECT a # b FROM t", SqlDialect::Postgres).is_ok());
    }

    #[test]
    fn spider_examples_get_their_official_hardness() {
        let cases = [
            ("SELECT count(*) FROM singer", Hardness::Easy),
            ("SELECT name FROM singer WHERE age > 20", Hardness::Easy),
            (
                "SELECT name, country, age FROM singer ORDER BY age DESC",
                Hardness::Medium,
            ),
            (
                "SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id",
                Hardness::Medium,
            ),
            (
                "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)",
                Hardness::Hard,
            ),
            (
                "SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 30",
                Hardness::Hard,
            ),
            (
                "SELECT T2.name, T2.capacity FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id WHERE T1.year >= 2014 GROUP BY T2.stadium_id ORDER BY count(*) DESC LIMIT 1",
                Hardness::Extra,
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(a(sql).hardness, want, "{sql}: {:?}", a(sql).spider_counts);
        }
    }

    #[test]
    fn negated_where_conditions_count_as_aggregates_like_the_reference() {
        // One aggregate in SELECT plus a NOT IN: two "aggregates", so others = 1.
        let c = a("SELECT count(*) FROM t WHERE x NOT IN (SELECT y FROM s)").spider_counts;
        assert_eq!(c.others, 1);
        let c = a("SELECT count(*) FROM t WHERE x IN (SELECT y FROM s)").spider_counts;
        assert_eq!(c.others, 0);
        // HAVING connectors count too.
        let c = a("SELECT a FROM t GROUP BY a HAVING count(*) > 1 AND sum(b) > 2").spider_counts;
        assert_eq!(
            c.others, 0,
            "one connector is one aggregate, not more than one"
        );
        let c = a("SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1 AND sum(b) > 2")
            .spider_counts;
        assert_eq!(c.others, 2);
    }

    #[test]
    fn set_operation_takes_the_first_branch_and_its_order_by_goes_to_the_last() {
        let c = a("SELECT a FROM t UNION SELECT b FROM s ORDER BY 1 LIMIT 3").spider_counts;
        assert_eq!(
            c,
            SpiderCounts {
                component1: 0,
                component2: 1,
                others: 0
            }
        );
    }

    #[test]
    fn concepts_are_tagged() {
        let an = a(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) \
             SELECT n FROM r",
        );
        assert!(an.has(Concept::Cte) && an.has(Concept::RecursiveCte) && an.has(Concept::UnionAll));
        assert_eq!(an.level, Level::HighlyComplex);
        assert!(
            an.tables.is_empty(),
            "a CTE is not a table: {:?}",
            an.tables
        );

        let an = a("SELECT c.name, COUNT(DISTINCT o.id) AS n, \
                    ROUND(SUM(o.total) * 100.0 / (SELECT SUM(total) FROM orders), 2) AS share \
                    FROM customers c LEFT JOIN orders o ON o.customer_id = c.id \
                    WHERE c.city LIKE 'Par%' AND o.placed_at BETWEEN '2024-01-01' AND '2024-12-31' \
                    GROUP BY c.name HAVING COUNT(*) > 2 ORDER BY n DESC LIMIT 5");
        for c in [
            Concept::JoinOuter,
            Concept::CountDistinct,
            Concept::Aggregate,
            Concept::Ratio,
            Concept::NumericFn,
            Concept::ScalarSubqueryInSelect,
            Concept::Like,
            Concept::Between,
            Concept::WhereAnd,
            Concept::GroupBy,
            Concept::Having,
            Concept::OrderDesc,
            Concept::Limit,
            Concept::TopKTiesRisk,
            Concept::Alias,
            Concept::MultiColumnSelect,
            Concept::ComputedColumn,
        ] {
            assert!(an.has(c), "{c} missing from {:?}", an.concepts);
        }
        assert!(!an.has(Concept::CorrelatedSubquery));
        assert_eq!(an.tables, vec!["customers", "orders"]);
        assert!(
            an.columns.contains(&"customers.city".to_string()),
            "{:?}",
            an.columns
        );
        assert!(
            an.columns.contains(&"orders.total".to_string()),
            "{:?}",
            an.columns
        );
    }

    #[test]
    fn correlated_and_self_join_and_window() {
        let an = a("SELECT e.name FROM employees e WHERE e.salary > \
                    (SELECT AVG(x.salary) FROM employees x WHERE x.store_id = e.store_id)");
        assert!(an.has(Concept::CorrelatedSubquery), "{:?}", an.concepts);
        assert!(an.has(Concept::ComparisonWithSubquery));
        assert!(an.has(Concept::NestedWhereSubquery));
        assert_eq!(an.level, Level::Complex);

        let an =
            a("SELECT a.name, b.name FROM employees a JOIN employees b ON a.manager_id = b.id");
        assert!(an.has(Concept::SelfJoin));
        assert!(!an.has(Concept::SingleTable));

        let an = a(
            "SELECT name, RANK() OVER (PARTITION BY store_id ORDER BY salary DESC) FROM employees",
        );
        assert!(an.has(Concept::WindowFunction) && an.has(Concept::PartitionBy));
        assert!(!an.has(Concept::Aggregate));
        assert!(an.has(Concept::SingleTable));
    }

    #[test]
    fn functions_and_case() {
        let an = a(
            "SELECT strftime('%Y', d), CASE WHEN x IS NULL THEN 0 ELSE 1 END, \
                    IIF(y > 0, 'p', 'n'), COALESCE(z, 0), CAST(w AS REAL), UPPER(s), ABS(v) FROM t",
        );
        for c in [
            Concept::DateTime,
            Concept::CaseWhen,
            Concept::IsNull,
            Concept::Iif,
            Concept::NullHandling,
            Concept::Cast,
            Concept::StringFn,
            Concept::NumericFn,
        ] {
            assert!(an.has(c), "{c} missing from {:?}", an.concepts);
        }
        assert_eq!(an.level, Level::Simple);
    }

    #[test]
    fn postgresql_date_functions_are_date_functions() {
        for sql in [
            "SELECT to_char(d::date, 'YYYY-MM') FROM t",
            "SELECT date_trunc('month', d) FROM t",
            "SELECT EXTRACT(DOW FROM d::date) FROM t",
        ] {
            let an = a(sql);
            assert!(an.has(Concept::DateTime), "{sql}: {:?}", an.concepts);
            // A `::` cast is PostgreSQL's spelling, not the CAST concept.
            assert!(!an.has(Concept::Cast), "{sql}: {:?}", an.concepts);
        }
    }

    #[test]
    fn templates_fold_literals_case_and_space() {
        let t1 = template("select Name from  Singer where age > 20 and country IN ('a','b')");
        let t2 = template("SELECT name\nFROM singer WHERE age > 35 AND country in ('x') ;");
        assert_eq!(t1, t2);
        assert_eq!(
            t1,
            "SELECT name FROM singer WHERE age > ? AND country IN (?)"
        );
        assert_ne!(template("SELECT a FROM t"), template("SELECT b FROM t"));
        assert_eq!(
            template("select SUM(x) , count(*) from t group by 1 order by 2 desc, 1 limit 5"),
            "SELECT sum(x), count(*) FROM t GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?"
        );
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(analyze("  ; ", None), Err(AnalyzeError::Empty));
        assert!(matches!(
            analyze("SELEC x", None),
            Err(AnalyzeError::Parse { .. })
        ));
        assert_eq!(
            analyze("SELECT 1; SELECT 2", None),
            Err(AnalyzeError::MultipleStatements { count: 2 })
        );
        assert!(matches!(
            analyze("DELETE FROM t", None),
            Err(AnalyzeError::NotAQuery { kind }) if kind == "DELETE"
        ));
    }

    #[test]
    fn every_concept_has_a_round_tripping_name() {
        for c in Concept::ALL {
            assert_eq!(Concept::from_name(c.name()), Some(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.name())
            );
        }
    }
}
