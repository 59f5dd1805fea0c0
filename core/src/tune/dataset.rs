//! Training datasets: the accepted pairs (and, by policy, valid unreviewed ones), a seeded
//! train/validation split, and the prompt template they are rendered with. The template is
//! the one `lode eval` asks with (`pipeline::inference`), so a tuned model is evaluated the
//! way it was taught; the original trained on bare questions and evaluated with a Llama 3
//! template and the glossary.

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::llm::Message;
use crate::project::Project;
use crate::sqlprompt::{question_prompt, system_prompt};
use crate::store::{PairFilter, PairStatus, Store, StoreError};

/// One training example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub pair_id: i64,
    pub question: String,
    pub sql: String,
}

/// A split dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrainingSet {
    pub train: Vec<Example>,
    pub validation: Vec<Example>,
}

impl TrainingSet {
    pub fn all(&self) -> impl Iterator<Item = &Example> {
        self.train.iter().chain(&self.validation)
    }
}

/// Export formats.
pub const FORMATS: [&str; 7] = [
    "messages",
    "alpaca",
    "sharegpt",
    "prompt-completion",
    "openai-batch",
    "lamini-templated",
    "lamini",
];

/// The pairs to train on: accepted ones, plus valid and fixed ones when `include_valid`,
/// from one run or all; one example per question; split by a seeded shuffle.
pub fn build(
    store: &Store,
    run_id: Option<i64>,
    include_valid: bool,
    validation_split: f64,
    seed: u64,
) -> Result<TrainingSet, StoreError> {
    let mut statuses = vec![PairStatus::Accepted];
    if include_valid {
        statuses.extend([PairStatus::Valid, PairStatus::Fixed]);
    }
    let pairs = store.pairs(&PairFilter {
        run_id,
        statuses,
        ..Default::default()
    })?;
    let mut seen = std::collections::BTreeSet::new();
    let mut items: Vec<Example> = pairs
        .into_iter()
        .filter(|p| {
            !p.sql.is_empty()
                && seen.insert(crate::project::inputs::normalize_question(&p.question))
        })
        .map(|p| Example {
            pair_id: p.id,
            question: p.question,
            sql: p.sql,
        })
        .collect();
    // Fisher-Yates with SplitMix64: the same seed gives the same split on every machine.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    let n_val = if items.len() >= 10 {
        ((items.len() as f64) * validation_split.clamp(0.0, 0.5)).round() as usize
    } else {
        0
    };
    let validation = items.split_off(items.len() - n_val);
    Ok(TrainingSet {
        train: items,
        validation,
    })
}

/// The messages of one example: system, user (schema, glossary, question), assistant (SQL).
pub fn messages(project: &Project, e: &Example) -> Vec<Message> {
    vec![
        Message::system(system_prompt(&project.schema)),
        Message::user(question_prompt(
            &project.schema,
            &project.glossary,
            &e.question,
        )),
        Message::assistant(e.sql.clone()),
    ]
}

/// One JSONL line of `format` for an example.
pub fn render_line(format: &str, project: &Project, e: &Example) -> Option<Json> {
    let m = messages(project, e);
    let (system, user, sql) = (&m[0].content, &m[1].content, &m[2].content);
    Some(match format {
        "messages" => json!({"messages": m}),
        "alpaca" => json!({"instruction": system, "input": user, "output": sql}),
        "sharegpt" => json!({"conversations": [
            {"from": "system", "value": system},
            {"from": "human", "value": user},
            {"from": "gpt", "value": sql},
        ]}),
        "prompt-completion" => {
            json!({"prompt": format!("{system}\n\n{user}\nSQL:"), "completion": format!(" {sql}")})
        }
        "lamini-templated" => json!({
            "input": crate::llm::lamini_prompt(&m[..2]),
            "output": format!("{sql}<|eot_id|>"),
        }),
        "lamini" => json!({"input": e.question, "output": sql}),
        _ => return None,
    })
}

/// All lines of a part of the dataset.
pub fn render(format: &str, project: &Project, examples: &[Example]) -> String {
    let mut out = String::new();
    for e in examples {
        if let Some(line) = render_line(format, project, e) {
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    out
}

/// An OpenAI Batch request file for the eval questions (`vllm run-batch` reads it too).
pub fn openai_batch(project: &Project, model: &str) -> String {
    let mut out = String::new();
    for (i, q) in project.eval.iter().enumerate() {
        let body = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": system_prompt(&project.schema)},
                {"role": "user", "content": question_prompt(&project.schema, &project.glossary, &q.question)},
            ],
            "temperature": 0,
        });
        out.push_str(&json!({"custom_id": format!("eval-{i}"), "method": "POST", "url": "/v1/chat/completions", "body": body}).to_string());
        out.push('\n');
    }
    out
}

/// LLaMA-Factory's `dataset_info.json` entry for a sharegpt or alpaca file.
pub fn llama_factory_entry(name: &str, file_name: &str, format: &str) -> Json {
    let entry = if format == "sharegpt" {
        json!({
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt", "system_tag": "system"}
        })
    } else {
        json!({
            "file_name": file_name,
            "columns": {"prompt": "instruction", "query": "input", "response": "output"}
        })
    };
    json!({ name: entry })
}

/// An axolotl config to start from.
pub fn axolotl_stub(file_name: &str, format: &str, base_model: &str) -> String {
    let ty = if format == "sharegpt" {
        "chat_template"
    } else {
        "alpaca"
    };
    let extra = if format == "sharegpt" {
        "    field_messages: conversations\n    message_property_mappings:\n      role: from\n      content: value\n"
    } else {
        ""
    };
    format!(
        "# axolotl config written by lode; adjust the hyperparameters to your hardware.\n\
         base_model: {base_model}\n\
         datasets:\n  - path: {file_name}\n    type: {ty}\n{extra}\
         val_set_size: 0.0\noutput_dir: ./outputs/lode\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n\
         sequence_len: 4096\nmicro_batch_size: 2\ngradient_accumulation_steps: 4\nnum_epochs: 3\nlearning_rate: 0.0002\n"
    )
}
