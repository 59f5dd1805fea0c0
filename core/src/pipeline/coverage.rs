//! Coverage and error analysis: which SQL concepts, hardness levels, complexity levels,
//! tables, columns and foreign-key joins the gold set, the generated pairs and the accepted
//! pairs use (deterministically, from the SQL); business topics by the original's
//! TopicAnalyzer prompt with names normalized; what is missing or under-represented; failed
//! pairs grouped by SQLite-aware category, generator and concept; and gap filling.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::llm::{LlmClient, LlmRequest, Message, OutputSchema, Task};
use crate::pipeline::generate::{self, NewQuestion};
use crate::project::{GlossaryEntry, Project, format_glossary};
use crate::sql::analyze::{Concept, analyze};
use crate::sql::schema::Schema;
use crate::store::{NewGenerationFailure, Pair, PairFilter, PairStatus, Store};

/// One set of pairs, described.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SetCoverage {
    pub pairs: usize,
    /// concept → pairs using it
    pub concepts: BTreeMap<String, usize>,
    pub hardness: BTreeMap<String, usize>,
    pub levels: BTreeMap<String, usize>,
    /// table → pairs using it
    pub tables: BTreeMap<String, usize>,
    pub columns: BTreeSet<String>,
    /// foreign-key joins (`child|parent`) used
    pub joins: BTreeSet<String>,
    /// queries that did not parse
    pub unparsed: usize,
}

/// Describes `sqls` against `schema`.
pub fn describe_set(sqls: &[&str], schema: &Schema) -> SetCoverage {
    let mut c = SetCoverage::default();
    let fk_edges: Vec<(String, String)> = schema
        .tables
        .iter()
        .flat_map(|t| {
            t.foreign_keys
                .iter()
                .map(move |f| (t.name.clone(), f.ref_table.clone()))
        })
        .collect();
    for sql in sqls {
        c.pairs += 1;
        let Ok(a) = analyze(sql, Some(schema)) else {
            c.unparsed += 1;
            continue;
        };
        for k in a.concepts.keys() {
            *c.concepts.entry(k.name().to_string()).or_default() += 1;
        }
        *c.hardness.entry(a.hardness.name().to_string()).or_default() += 1;
        *c.levels.entry(a.level.name().to_string()).or_default() += 1;
        for t in &a.tables {
            *c.tables.entry(t.clone()).or_default() += 1;
        }
        c.columns
            .extend(a.columns.iter().filter(|c| !c.starts_with("?.")).cloned());
        let joined = a.has(Concept::JoinInner)
            || a.has(Concept::JoinOuter)
            || a.has(Concept::CrossJoin)
            || a.has(Concept::InSubquery)
            || a.has(Concept::Exists);
        if joined {
            for (child, parent) in &fk_edges {
                if child != parent && a.tables.contains(child) && a.tables.contains(parent) {
                    c.joins.insert(format!("{child}|{parent}"));
                }
            }
        }
    }
    c
}

/// A concept the gold set uses more, in share of pairs, than the generated set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Underrepresented {
    pub name: String,
    pub gold_share: f64,
    pub generated_share: f64,
}

/// The deterministic coverage report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    pub gold: SetCoverage,
    pub generated: SetCoverage,
    pub accepted: SetCoverage,
    /// In gold, absent from generated.
    pub missing_concepts: Vec<String>,
    pub underrepresented_concepts: Vec<Underrepresented>,
    /// Never used by any pair (gold or generated).
    pub unused_tables: Vec<String>,
    pub unused_columns: Vec<String>,
    pub unused_joins: Vec<String>,
}

fn shares_gap(
    gold: &BTreeMap<String, usize>,
    gold_n: usize,
    gen_map: &BTreeMap<String, usize>,
    gen_n: usize,
    factor: f64,
) -> (Vec<String>, Vec<Underrepresented>) {
    let mut missing = Vec::new();
    let mut under = Vec::new();
    for (k, &g) in gold {
        let n = gen_map.get(k).copied().unwrap_or(0);
        if n == 0 {
            missing.push(k.clone());
            continue;
        }
        let gs = g as f64 / gold_n.max(1) as f64;
        let ns = n as f64 / gen_n.max(1) as f64;
        if gs > factor * ns {
            under.push(Underrepresented {
                name: k.clone(),
                gold_share: gs,
                generated_share: ns,
            });
        }
    }
    (missing, under)
}

/// Coverage of the gold set and of a run's pairs (valid, fixed and accepted count as
/// generated; accepted ones also as accepted). `factor` is the under-representation factor.
pub fn coverage(project: &Project, pairs: &[Pair], factor: f64) -> Coverage {
    let gold: Vec<&str> = project.gold.iter().map(|p| p.sql.as_str()).collect();
    let generated: Vec<&str> = pairs
        .iter()
        .filter(|p| {
            matches!(
                p.status,
                PairStatus::Valid | PairStatus::Fixed | PairStatus::Accepted
            )
        })
        .map(|p| p.sql.as_str())
        .collect();
    let accepted: Vec<&str> = pairs
        .iter()
        .filter(|p| p.status == PairStatus::Accepted)
        .map(|p| p.sql.as_str())
        .collect();
    let mut c = Coverage {
        gold: describe_set(&gold, &project.schema),
        generated: describe_set(&generated, &project.schema),
        accepted: describe_set(&accepted, &project.schema),
        ..Default::default()
    };
    let (missing, under) = shares_gap(
        &c.gold.concepts,
        c.gold.pairs,
        &c.generated.concepts,
        c.generated.pairs,
        factor,
    );
    c.missing_concepts = missing;
    c.underrepresented_concepts = under;
    let used_tables: BTreeSet<&String> = c
        .gold
        .tables
        .keys()
        .chain(c.generated.tables.keys())
        .collect();
    let used_columns: BTreeSet<&String> =
        c.gold.columns.iter().chain(&c.generated.columns).collect();
    let used_joins: BTreeSet<&String> = c.gold.joins.iter().chain(&c.generated.joins).collect();
    for t in &project.schema.tables {
        if t.name.starts_with("sqlite_") {
            continue;
        }
        if !used_tables.contains(&t.name) {
            c.unused_tables.push(t.name.clone());
        }
        for col in &t.columns {
            let name = format!("{}.{}", t.name, col.name);
            if !used_columns.contains(&name) {
                c.unused_columns.push(name);
            }
        }
        for fk in &t.foreign_keys {
            let j = format!("{}|{}", t.name, fk.ref_table);
            if fk.ref_table != t.name && !used_joins.contains(&j) && !c.unused_joins.contains(&j) {
                c.unused_joins.push(j);
            }
        }
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Topics

/// One normal form for a topic name, so "Sales", " sales " and "Sale" count once; glossary
/// terms and their short definitions map to the term.
pub fn normalize_topic(topic: &str, glossary: &[GlossaryEntry]) -> String {
    let words: Vec<String> = topic
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let mut words = words;
    if let Some(last) = words.last_mut() {
        *last = singular_word(last);
    }
    let norm = words.join(" ");
    for g in glossary {
        let term = normalize_plain(&g.term);
        let short: String = g
            .definition
            .split([':', '.', ',', ';', '('])
            .next()
            .unwrap_or("")
            .to_string();
        if norm == term || (!short.is_empty() && norm == normalize_plain(&short)) {
            return term;
        }
    }
    norm
}

fn normalize_plain(s: &str) -> String {
    let words: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let mut words = words;
    if let Some(last) = words.last_mut() {
        *last = singular_word(last);
    }
    words.join(" ")
}

fn singular_word(w: &str) -> String {
    if w.len() > 4 && w.ends_with("ies") {
        format!("{}y", &w[..w.len() - 3])
    } else if w.len() > 3
        && w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
    {
        w[..w.len() - 1].to_string()
    } else {
        w.to_string()
    }
}

/// The original's TopicAnalyzer request.
pub fn topic_request(question: &str, schema_text: &str, glossary_text: &str) -> LlmRequest {
    LlmRequest::new(
        "topics",
        vec![
            Message::system("You are an expert at analyzing business questions and identifying their key components."),
            Message::user(format!(
                "Analyze this question:\n{question}\n\nUsing this schema:\n{schema_text}\n\nAnd this glossary:\n{glossary_text}\n\n\
                 Identify:\n1. The main business topics/concepts it covers\n2. The type of analysis being requested\n3. The key metrics or measurements involved\n\n\
                 Format your response as a JSON with these keys:\n- topics: list of main business topics/concepts\n- analysis_type: type of analysis being performed\n- metrics: list of metrics or measurements involved"
            )),
        ],
    )
    .with_schema(OutputSchema::new("topics", &[("topics", "array"), ("analysis_type", "str"), ("metrics", "array")]))
    .with_task(Task::Topics {
        question: question.to_string(),
    })
}

/// Topic counts of a set of questions (normalized), and how many calls failed.
pub async fn topics_of(
    client: &Arc<LlmClient>,
    project: &Project,
    questions: &[String],
) -> (BTreeMap<String, usize>, usize) {
    let schema_text = project.schema.to_create_sql();
    let glossary_text = format_glossary(&project.glossary);
    let mut tasks = Vec::new();
    for q in questions {
        let req = topic_request(q, &schema_text, &glossary_text);
        let client = Arc::clone(client);
        tasks.push(tokio::spawn(async move { client.call(&req).await }));
    }
    let mut counts = BTreeMap::new();
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(resp)) => {
                let topics: BTreeSet<String> = resp
                    .json
                    .as_ref()
                    .and_then(|j| j["topics"].as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str())
                            .map(|t| normalize_topic(t, &project.glossary))
                            .collect()
                    })
                    .unwrap_or_default();
                for t in topics.into_iter().filter(|t| !t.is_empty()) {
                    *counts.entry(t).or_default() += 1;
                }
            }
            _ => failed += 1,
        }
    }
    (counts, failed)
}

/// Topic coverage in the original's terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TopicCoverage {
    pub gold: BTreeMap<String, usize>,
    pub generated: BTreeMap<String, usize>,
    pub missing: Vec<String>,
    pub underrepresented: Vec<Underrepresented>,
    pub failed_calls: usize,
}

pub async fn topic_coverage(
    client: &Arc<LlmClient>,
    project: &Project,
    pairs: &[Pair],
    factor: f64,
) -> TopicCoverage {
    let gold_q: Vec<String> = project.gold.iter().map(|p| p.question.clone()).collect();
    let gen_q: Vec<String> = pairs
        .iter()
        .filter(|p| {
            matches!(
                p.status,
                PairStatus::Valid | PairStatus::Fixed | PairStatus::Accepted
            )
        })
        .map(|p| p.question.clone())
        .collect();
    let (gold, f1) = topics_of(client, project, &gold_q).await;
    let (generated, f2) = topics_of(client, project, &gen_q).await;
    let (missing, underrepresented) =
        shares_gap(&gold, gold_q.len(), &generated, gen_q.len(), factor);
    TopicCoverage {
        gold,
        generated,
        missing,
        underrepresented,
        failed_calls: f1 + f2,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Failed pairs grouped three ways, with the original's export shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ErrorAnalysis {
    pub failed: usize,
    pub by_category: BTreeMap<String, usize>,
    pub by_generator: BTreeMap<String, usize>,
    pub by_concept: BTreeMap<String, usize>,
    /// The original's `sql_error_analysis.json`.
    pub original: Json,
}

pub fn error_analysis(
    store: &Store,
    pairs: &[Pair],
    schema: &Schema,
) -> Result<ErrorAnalysis, crate::store::StoreError> {
    let mut e = ErrorAnalysis::default();
    let mut failed_queries = Vec::new();
    let mut features: BTreeMap<&str, usize> = BTreeMap::new();
    let mut corrected = 0;
    for p in pairs.iter().filter(|p| p.status == PairStatus::Invalid) {
        let attempts = store.validations(p.id)?;
        let Some(last) = attempts.last() else {
            continue;
        };
        e.failed += 1;
        let category = match last.error_kind.as_deref() {
            Some("empty_result" | "all_null" | "zero_count") => "empty_result".to_string(),
            Some(k) => k.to_string(),
            None => "unknown".into(),
        };
        *e.by_category.entry(category).or_default() += 1;
        *e.by_generator.entry(p.generator.clone()).or_default() += 1;
        let first_sql = attempts.first().map_or(p.sql.as_str(), |a| a.sql.as_str());
        if let Ok(a) = analyze(first_sql, Some(schema)) {
            for c in a.concepts.keys() {
                *e.by_concept.entry(c.name().to_string()).or_default() += 1;
            }
        }
        let lower = first_sql.to_lowercase();
        for (name, hit) in [
            ("join", lower.contains("join")),
            ("cte", lower.contains("with") && lower.contains(" as ")),
            ("subquery", lower.matches("select").count() > 1),
            ("group_by", lower.contains("group by")),
            (
                "aggregation",
                ["sum(", "avg(", "count(", "min(", "max("]
                    .iter()
                    .any(|f| lower.contains(f)),
            ),
        ] {
            if hit {
                *features.entry(name).or_default() += 1;
            }
        }
        corrected += (attempts.len() > 1) as usize;
        failed_queries.push(json!({
            "question": p.question,
            "generated_sql": first_sql,
            "error_message": last.error,
            "error_explanation": format!("Query is invalid: {}", last.error.clone().unwrap_or_default()),
        }));
    }
    e.original = json!({
        "failed_queries": failed_queries,
        "basic_stats": {
            "total_failed_queries": e.failed,
            "error_types": e.by_category,
            "sql_features": features,
            "correction_stats": {"debugger_tried": corrected, "not_tried": e.failed - corrected},
        },
        "llm_analysis": Json::Null,
    });
    Ok(e)
}

/// The original's SQLAnalysisGenerator request over the first failures.
pub fn error_analysis_request(e: &ErrorAnalysis) -> LlmRequest {
    let stats = &e.original["basic_stats"];
    let mut samples = String::new();
    for (i, q) in e.original["failed_queries"]
        .as_array()
        .into_iter()
        .flatten()
        .take(5)
        .enumerate()
    {
        samples.push_str(&format!(
            "Query {}:\nQuestion: {}\nSQL: {}\nError: {}\n\n",
            i + 1,
            q["question"].as_str().unwrap_or(""),
            q["generated_sql"].as_str().unwrap_or(""),
            q["error_message"].as_str().unwrap_or("")
        ));
    }
    LlmRequest::new(
        "error_analysis",
        vec![
            Message::system("You are an expert at analyzing SQL query failures and identifying patterns."),
            Message::user(format!(
                "As an expert SQL analyst, your task is to analyze the following failed SQL queries and provide detailed insights.\n\n\
                 For each failed query, please include:\n1. Error Explanation: Clearly explain the error encountered in the query.\n2. Root Cause Analysis: Identify the root cause of the error.\n3. Correction Suggestions: Provide specific suggestions on how to correct the query.\n4. Improvement Recommendations: Suggest improvements to prevent similar errors in the future.\n\n\
                 Basic Statistics:\nTotal Failed Queries: {}\nError Types: {}\nSQL Features: {}\nCorrection Stats: {}\n\nFailed Queries:\n{samples}\
                 Your response should be concise yet comprehensive, focusing on actionable insights to improve the SQL generation process.",
                stats["total_failed_queries"], stats["error_types"], stats["sql_features"], stats["correction_stats"]
            )),
        ],
    )
    .with_schema(OutputSchema::new("analysis", &[("analysis", "str")]))
}

// ---------------------------------------------------------------------------------------------
// Gap filling

/// What gap filling did, per target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FillReport {
    /// target (`concept:x`, `table:t`, `join:a|b`, `topic:x`) → pairs stored for it
    pub asked: BTreeMap<String, usize>,
    /// target → valid pairs that now use it
    pub filled: BTreeMap<String, usize>,
}

/// The GapAnalyzer request for topics, or a concept/table/join-targeted SQL-first request.
fn gap_request(kind: &str, target: &str, offset: usize, project: &Project) -> LlmRequest {
    let schema_text = project.schema.to_create_sql();
    let glossary_text = format_glossary(&project.glossary);
    let what = match kind {
        "concept" => format!("uses the SQL concept `{}`", target.replace('_', " ")),
        "table" => format!("uses the table `{target}`"),
        "join" => format!("joins the tables `{}`", target.replace('|', "` and `")),
        _ => format!("is about the business topic `{target}`"),
    };
    let mut req = LlmRequest::new(
        "gap_fill",
        vec![
            Message::system("You are an expert at identifying and filling gaps in question coverage."),
            Message::user(format!(
                "Schema: {schema_text}\nGlossary: {glossary_text}\n\nWrite one new business question that {what}, and the read-only SQLite query that answers it. \
                 The question must be answerable with the schema and use glossary terms where they apply.\n\n\
                 Format your response as a JSON with these keys:\n- question: the new question\n- sql: the SQL query"
            )),
        ],
    )
    .with_schema(OutputSchema::new("gap", &[("question", "str"), ("sql", "str")]))
    .with_task(Task::FillGap {
        kind: kind.to_string(),
        target: target.to_string(),
        offset,
    });
    req.sampling.seed = Some(offset as u64);
    req
}

/// Asks for `per_target` pairs for each missing concept, unused table, unused join and
/// missing topic, and adds them to the run through validation, the debugger and dedup.
pub async fn fill_gaps(
    project: &Project,
    store: Arc<Store>,
    client: Arc<LlmClient>,
    run_id: i64,
    cov: &Coverage,
    topics: Option<&TopicCoverage>,
    per_target: usize,
) -> Result<FillReport, generate::GenerateError> {
    let mut targets: Vec<(String, String)> = Vec::new();
    targets.extend(
        cov.missing_concepts
            .iter()
            .map(|c| ("concept".to_string(), c.clone())),
    );
    targets.extend(
        cov.underrepresented_concepts
            .iter()
            .map(|c| ("concept".to_string(), c.name.clone())),
    );
    targets.extend(
        cov.unused_tables
            .iter()
            .map(|t| ("table".to_string(), t.clone())),
    );
    targets.extend(
        cov.unused_joins
            .iter()
            .map(|j| ("join".to_string(), j.clone())),
    );
    if let Some(t) = topics {
        targets.extend(t.missing.iter().map(|x| ("topic".to_string(), x.clone())));
    }
    let mut report = FillReport::default();
    let mut items = Vec::new();
    let mut calls = Vec::new();
    for (kind, target) in &targets {
        for k in 0..per_target {
            let req = gap_request(kind, target, k, project);
            let client = Arc::clone(&client);
            let key = format!("{kind}:{target}");
            calls.push((key, k, tokio::spawn(async move { client.call(&req).await })));
        }
    }
    for (key, k, call) in calls {
        // A task that panicked has nothing to record; a failed call is kept with its cause
        // (its own origin key, so a rerun asks again).
        let Ok(answer) = call.await else { continue };
        let resp = match answer {
            Ok(resp) => resp,
            Err(e) => {
                store.record_generation_failure(
                    run_id,
                    &NewGenerationFailure {
                        generator: "gap_fill".into(),
                        gold_pair_id: None,
                        origin_key: format!("fill:{key}:{k}:call"),
                        error_kind: e.kind(),
                        error: format!("gap_fill call failed ({}): {e}", e.kind()),
                    },
                )?;
                continue;
            }
        };
        let j = resp.json.unwrap_or(Json::Null);
        let question = j["question"].as_str().unwrap_or("").trim().to_string();
        let sql = j["sql"]
            .as_str()
            .map(String::from)
            .filter(|s| !s.trim().is_empty());
        if question.is_empty() {
            continue;
        }
        *report.asked.entry(key.clone()).or_default() += 1;
        items.push(NewQuestion {
            generator: "gap_fill".into(),
            question,
            sql,
            origin: format!("fill:{key}:{k}"),
        });
    }
    generate::add_questions(project, Arc::clone(&store), client, run_id, items).await?;
    // Which targets now have valid pairs from gap filling.
    let pairs = store.pairs(&PairFilter {
        run_id: Some(run_id),
        statuses: vec![PairStatus::Valid, PairStatus::Fixed],
        generator: Some("gap_fill".into()),
        ..Default::default()
    })?;
    for (kind, target) in &targets {
        let n = pairs
            .iter()
            .filter(|p| {
                let a = analyze(&p.sql, Some(&project.schema)).ok();
                match kind.as_str() {
                    "concept" => a.is_some_and(|a| a.concepts.keys().any(|c| c.name() == target)),
                    "table" => a.is_some_and(|a| a.tables.contains(target)),
                    "join" => {
                        let (x, y) = target.split_once('|').unwrap_or((target, target));
                        a.is_some_and(|a| {
                            a.tables.iter().any(|t| t == x) && a.tables.iter().any(|t| t == y)
                        })
                    }
                    _ => p.origin_key.starts_with(&format!("fill:topic:{target}:")),
                }
            })
            .count();
        if n > 0 {
            report.filled.insert(format!("{kind}:{target}"), n);
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Reports

fn table(title: &str, rows: &[(String, Vec<String>)], header: &[&str]) -> String {
    let mut s = format!(
        "## {title}\n\n| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for (k, cols) in rows {
        s.push_str(&format!("| {k} | {} |\n", cols.join(" | ")));
    }
    s.push('\n');
    s
}

/// The Markdown report.
pub fn markdown(
    cov: &Coverage,
    topics: Option<&TopicCoverage>,
    errors: &ErrorAnalysis,
    fill: Option<&FillReport>,
) -> String {
    let mut md = format!(
        "# Coverage and error analysis\n\n{} gold pairs, {} generated pairs (valid, fixed or accepted), {} accepted.\n\n",
        cov.gold.pairs, cov.generated.pairs, cov.accepted.pairs
    );
    let all: BTreeSet<&String> = cov
        .gold
        .concepts
        .keys()
        .chain(cov.generated.concepts.keys())
        .collect();
    let rows: Vec<(String, Vec<String>)> = all
        .into_iter()
        .map(|k| {
            let g = cov.gold.concepts.get(k).copied().unwrap_or(0);
            let n = cov.generated.concepts.get(k).copied().unwrap_or(0);
            let a = cov.accepted.concepts.get(k).copied().unwrap_or(0);
            let mark = if cov.missing_concepts.contains(k) {
                "missing"
            } else if cov.underrepresented_concepts.iter().any(|u| &u.name == k) {
                "under-represented"
            } else {
                ""
            };
            (
                k.clone(),
                vec![
                    g.to_string(),
                    n.to_string(),
                    a.to_string(),
                    mark.to_string(),
                ],
            )
        })
        .collect();
    md.push_str(&table(
        "SQL concepts",
        &rows,
        &["concept", "gold", "generated", "accepted", ""],
    ));
    for (title, g, n) in [
        (
            "Spider hardness",
            &cov.gold.hardness,
            &cov.generated.hardness,
        ),
        ("Complexity level", &cov.gold.levels, &cov.generated.levels),
    ] {
        let keys: BTreeSet<&String> = g.keys().chain(n.keys()).collect();
        let rows: Vec<(String, Vec<String>)> = keys
            .into_iter()
            .map(|k| {
                (
                    k.clone(),
                    vec![
                        g.get(k).copied().unwrap_or(0).to_string(),
                        n.get(k).copied().unwrap_or(0).to_string(),
                    ],
                )
            })
            .collect();
        md.push_str(&table(title, &rows, &[title, "gold", "generated"]));
    }
    md.push_str("## Schema coverage\n\n");
    md.push_str(&format!(
        "- Tables never used: {}\n",
        if cov.unused_tables.is_empty() {
            "none".into()
        } else {
            cov.unused_tables.join(", ")
        }
    ));
    md.push_str(&format!(
        "- Foreign-key joins never used: {}\n",
        if cov.unused_joins.is_empty() {
            "none".into()
        } else {
            cov.unused_joins.join(", ")
        }
    ));
    md.push_str(&format!(
        "- Columns never used ({}): {}\n\n",
        cov.unused_columns.len(),
        cov.unused_columns.join(", ")
    ));
    if let Some(t) = topics {
        let keys: BTreeSet<&String> = t.gold.keys().chain(t.generated.keys()).collect();
        let rows: Vec<(String, Vec<String>)> = keys
            .into_iter()
            .map(|k| {
                let mark = if t.missing.contains(k) {
                    "missing"
                } else if t.underrepresented.iter().any(|u| &u.name == k) {
                    "under-represented"
                } else {
                    ""
                };
                (
                    k.clone(),
                    vec![
                        t.gold.get(k).copied().unwrap_or(0).to_string(),
                        t.generated.get(k).copied().unwrap_or(0).to_string(),
                        mark.into(),
                    ],
                )
            })
            .collect();
        md.push_str(&table(
            "Business topics",
            &rows,
            &["topic", "gold", "generated", ""],
        ));
        if t.failed_calls > 0 {
            md.push_str(&format!(
                "{} topic calls failed (their causes are in the call log).\n\n",
                t.failed_calls
            ));
        }
    }
    md.push_str(&format!("## Failed pairs ({})\n\n", errors.failed));
    for (title, m) in [
        ("By error category", &errors.by_category),
        ("By generator", &errors.by_generator),
        ("By concept", &errors.by_concept),
    ] {
        let rows: Vec<(String, Vec<String>)> = m
            .iter()
            .map(|(k, v)| (k.clone(), vec![v.to_string()]))
            .collect();
        if !rows.is_empty() {
            md.push_str(&table(title, &rows, &["", "failed"]));
        }
    }
    if let Some(a) = errors.original["llm_analysis"].as_str() {
        md.push_str(&format!("## Root-cause write-up (LLM)\n\n{a}\n\n"));
    }
    if let Some(f) = fill {
        md.push_str("## Gap filling\n\n");
        for (k, n) in &f.asked {
            md.push_str(&format!(
                "- {k}: {n} asked, {} valid pairs now use it\n",
                f.filled.get(k).copied().unwrap_or(0)
            ));
        }
    }
    md
}

/// For `lode analyze`: pairs of a run (all statuses).
pub fn run_pairs(
    store: &Store,
    run_id: Option<i64>,
) -> Result<Vec<Pair>, crate::store::StoreError> {
    store.pairs(&PairFilter {
        run_id,
        ..Default::default()
    })
}
