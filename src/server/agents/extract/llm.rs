//! The llm extractor: the run's instruction version, the row's inputs, the
//! output fields and the page (reduced, see [`super::reduce`]) go to a
//! model along the project's route; the answer must be JSON matching a
//! schema built from the fields. It is parsed, coerced to the fields'
//! types (unknown keys dropped); an invalid answer gets one repair request
//! quoting the error, a second invalid one fails the job as
//! `invalid_output` (not retried: the same page would get the same answer).

use serde_json::{json, Map, Value};
use sqlx::PgPool;

use super::reduce::{reduce, Reduced};
use crate::model::{OutputField, ValueType};
use crate::server::agents::llm::route::{self, Served, Target};
use crate::server::agents::llm::{ChatRequest, Speaker};
use crate::server::agents::{AgentError, JobInput, Progress};

/// What the model may write back, in tokens: a value per field.
const MAX_OUTPUT_TOKENS: u32 = 1024;
/// The longest prompt kept in the attempt's raw output, per part.
const KEPT_PROMPT_CHARS: usize = 4_000;

/// Mino's fixed framing, before the project's instructions.
pub const FRAMING: &str = "You extract values from one web page for a data team. \
Answer with one JSON object that has exactly the keys of the requested fields. \
Use null when the page does not show a value; never guess. \
Copy values as the page shows them unless the instructions say otherwise.";

/// The system text: the framing and the instruction version.
pub fn system_text(job: &JobInput) -> String {
    let instructions = job.instructions.trim();
    if instructions.is_empty() {
        FRAMING.to_string()
    } else {
        format!(
            "{FRAMING}\n\nThe team's instructions (version {}):\n{instructions}",
            job.instruction_version
        )
    }
}

/// The user's turn: the address, the row's inputs, the fields and the page.
pub fn user_text(job: &JobInput, fields: &[&OutputField], page: &Reduced) -> String {
    let mut t = format!("URL: {}\n", job.url);
    if !job.inputs.is_empty() {
        t.push_str("\nRow inputs:\n");
        for (k, v) in &job.inputs {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            t.push_str(&format!("- {k}: {v}\n"));
        }
    }
    t.push_str("\nFields to extract:\n");
    for f in fields {
        t.push_str(&format!("- {} ({})", f.name, type_word(f.field_type)));
        if !f.description.trim().is_empty() {
            t.push_str(&format!(": {}", f.description.trim()));
        }
        t.push('\n');
    }
    t.push_str("\nPage:\n");
    t.push_str(&page.text);
    t
}

fn type_word(t: ValueType) -> &'static str {
    match t {
        ValueType::Text => "text",
        ValueType::Number => "number",
        ValueType::Url => "URL",
        ValueType::Email => "email address",
        ValueType::Date => "date",
    }
}

/// The answer's JSON schema: every field a key (null allowed), no others.
pub fn schema(fields: &[&OutputField]) -> Value {
    let mut props = Map::new();
    for f in fields {
        let kind = match f.field_type {
            ValueType::Number => "number",
            _ => "string",
        };
        let mut p = json!({"type": [kind, "null"]});
        if !f.description.trim().is_empty() {
            p["description"] = json!(f.description.trim());
        }
        props.insert(f.name.clone(), p);
    }
    json!({
        "type": "object",
        "properties": props,
        "required": fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        "additionalProperties": false,
    })
}

/// The answer's values for `fields`, coerced to their types; an error
/// says what is wrong, for the repair request.
pub fn parse_answer(text: &str, fields: &[&OutputField]) -> Result<Map<String, Value>, String> {
    let trimmed = strip_fences(text);
    let value: Value =
        serde_json::from_str(trimmed).map_err(|e| format!("the answer is not valid JSON ({e})"))?;
    let Value::Object(obj) = value else {
        return Err("the answer must be a JSON object with one key per field".into());
    };
    let mut out = Map::new();
    let mut problems = Vec::new();
    for f in fields {
        let v = obj.get(&f.name).cloned().unwrap_or(Value::Null);
        match coerce(&v, f.field_type) {
            Ok(v) => {
                out.insert(f.name.clone(), v);
            }
            Err(why) => problems.push(format!("\"{}\" {why}", f.name)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

/// Models sometimes wrap JSON in a Markdown code fence.
fn strip_fences(text: &str) -> &str {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .unwrap_or(t);
    t.strip_suffix("```").unwrap_or(t).trim()
}

fn coerce(v: &Value, t: ValueType) -> Result<Value, String> {
    match (v, t) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::String(s), _) if s.trim().is_empty() => Ok(Value::Null),
        // Values are kept as text, like every extractor's (the number
        // comparator reads the notation).
        (Value::Number(n), ValueType::Number) => Ok(Value::String(n.to_string())),
        (Value::String(s), ValueType::Number) => {
            // "24,99 €" and "$1,299.00": the number comparator reads those
            // notations; keep the text when it holds a number at all.
            if s.chars().any(|c| c.is_ascii_digit()) {
                Ok(Value::String(s.trim().to_string()))
            } else {
                Err(format!("must be a number (got {s:?})"))
            }
        }
        (Value::String(s), _) => Ok(Value::String(s.trim().to_string())),
        (Value::Number(n), _) => Ok(Value::String(n.to_string())),
        (Value::Bool(b), _) => Ok(Value::String(b.to_string())),
        (other, _) => Err(format!("must be a single value, not {other}")),
    }
}

/// What the llm extractor found, with what it cost.
pub struct LlmExtraction {
    pub values: Map<String, Value>,
    /// Kept in the attempt's raw output: prompt (shortened), answers,
    /// provider and model, tokens.
    pub raw: Value,
    pub usage: Usage,
}

/// Who answered and what the attempt's calls cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

impl Usage {
    fn add(&mut self, s: &Served) {
        self.provider = s.target.provider_name.clone();
        self.model = s.target.model.name.clone();
        self.input_tokens += s.answer.input_tokens;
        self.output_tokens += s.answer.output_tokens;
        self.cost_micros += s
            .target
            .model
            .cost_micros(s.answer.input_tokens, s.answer.output_tokens);
    }
}

fn clip(s: &str) -> String {
    if s.len() <= KEPT_PROMPT_CHARS {
        return s.to_string();
    }
    let mut cut = KEPT_PROMPT_CHARS;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… [{} more characters]", &s[..cut], s.len() - cut)
}

/// Extracts `fields` from `html` with the model route.
#[allow(clippy::too_many_arguments)]
pub async fn extract(
    db: &PgPool,
    client: &reqwest::Client,
    route: &[Target],
    job: &JobInput,
    fields: &[&OutputField],
    html: &str,
    page_token_budget: usize,
    progress: &Progress,
) -> Result<LlmExtraction, AgentError> {
    progress.step("Reducing the page for the model", Some(&job.url), Some(75));
    let page = {
        let html = html.to_string();
        tokio::task::spawn_blocking(move || reduce(&html, page_token_budget))
            .await
            .map_err(|e| {
                AgentError::permanent("unparseable", format!("Reading the page failed: {e}"))
            })?
    };
    progress.log(
        "info",
        &format!(
            "Page reduced from ~{} to ~{} tokens{}",
            page.raw_tokens,
            page.tokens,
            if page.truncated {
                " (cut to the page token budget)"
            } else {
                ""
            }
        ),
    );
    let mut req = ChatRequest {
        system: system_text(job),
        turns: vec![(Speaker::User, user_text(job, fields, &page))],
        schema: schema(fields),
        max_output_tokens: MAX_OUTPUT_TOKENS,
    };
    let mut usage = Usage::default();
    let mut answers = Vec::new();
    let first = route::complete(db, client, route, &req, progress).await?;
    usage.add(&first);
    answers.push(first.answer.text.clone());
    let mut parsed = parse_answer(&first.answer.text, fields);
    if let Err(why) = &parsed {
        progress.log(
            "warn",
            &format!("The answer is not valid ({why}); asking once more."),
        );
        req.turns.push((Speaker::Model, first.answer.text.clone()));
        req.turns.push((
            Speaker::User,
            format!(
                "Your answer is not valid: {why}. Answer again with only a JSON object with exactly these keys: {}.",
                fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
        // The repair goes to whoever answered first.
        let again = route::complete(
            db,
            client,
            std::slice::from_ref(&first.target),
            &req,
            progress,
        )
        .await
        .map_err(|mut e| {
            e.usage = Some(Box::new(usage.clone()));
            e
        })?;
        usage.add(&again);
        answers.push(again.answer.text.clone());
        parsed = parse_answer(&again.answer.text, fields);
    }
    let raw_base = json!({
        "extractor": "llm",
        "provider": usage.provider,
        "model": usage.model,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_micros": usage.cost_micros,
        "prompt": {"system": clip(&req.system), "user": clip(&req.turns[0].1)},
        "page_tokens": page.tokens,
        "answers": answers,
    });
    match parsed {
        Ok(values) => {
            for (k, v) in &values {
                progress.log("info", &format!("{k}: {v} (from the model)"));
            }
            Ok(LlmExtraction {
                values,
                raw: raw_base,
                usage,
            })
        }
        Err(why) => {
            let mut e = AgentError::permanent(
                "invalid_output",
                format!("The model's answer was invalid twice (last: {why})."),
            );
            e.usage = Some(Box::new(usage));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Comparator, ComparatorOptions, ExtractionRule};

    fn field(name: &str, t: ValueType, description: &str) -> OutputField {
        OutputField {
            name: name.into(),
            field_type: t,
            comparator: Comparator::Exact,
            comparator_options: ComparatorOptions::default(),
            rule: ExtractionRule::Auto,
            source: "manual".into(),
            description: description.into(),
            empty_means: Default::default(),
            multi_value_separator: None,
        }
    }

    #[test]
    fn the_schema_lists_every_field_nullable_and_nothing_else() {
        let (a, b) = (
            field("title", ValueType::Text, "The product's name"),
            field("price", ValueType::Number, ""),
        );
        let s = schema(&[&a, &b]);
        assert_eq!(s["required"], json!(["title", "price"]));
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(s["properties"]["price"]["type"], json!(["number", "null"]));
        assert_eq!(
            s["properties"]["title"]["description"],
            json!("The product's name")
        );
    }

    #[test]
    fn answers_are_parsed_coerced_and_checked() {
        let (a, b) = (
            field("title", ValueType::Text, ""),
            field("price", ValueType::Number, ""),
        );
        let fields = [&a, &b];
        let v = parse_answer(
            "```json\n{\"title\": \" Kettle \", \"price\": 24.99, \"extra\": 1}\n```",
            &fields,
        )
        .unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"title": "Kettle", "price": "24.99"})
        );
        let v = parse_answer(r#"{"title": null, "price": "24,99 €"}"#, &fields).unwrap();
        assert_eq!(v["price"], json!("24,99 €"));
        assert!(parse_answer("Sure! The title is", &fields)
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse_answer("[1]", &fields).unwrap_err().contains("object"));
        let e = parse_answer(r#"{"title": ["a"], "price": "cheap"}"#, &fields).unwrap_err();
        assert!(
            e.contains("\"title\" must be a single value")
                && e.contains("\"price\" must be a number"),
            "{e}"
        );
    }
}
