//! Anthropic's Messages API (`POST {base}/messages`). Structured output is
//! a forced tool call: one tool whose `input_schema` is the answer's
//! schema, and `tool_choice` naming it; the answer is the tool's input.

use serde_json::{json, Value};

use super::{
    bad_answer, join, post_json, tokens, CallError, ChatAnswer, ChatRequest, Endpoint, Speaker,
};

/// The tool the model is made to call with its answer.
pub const TOOL: &str = "record_extraction";
pub const VERSION: &str = "2023-06-01";

pub fn body(model: &str, req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .turns
        .iter()
        .map(|(who, text)| {
            let role = match who {
                Speaker::User => "user",
                Speaker::Model => "assistant",
            };
            json!({"role": role, "content": text})
        })
        .collect();
    json!({
        "model": model,
        "max_tokens": req.max_output_tokens,
        "temperature": 0,
        "system": req.system,
        "messages": messages,
        "tools": [{
            "name": TOOL,
            "description": "Record the values extracted from the page.",
            "input_schema": req.schema,
        }],
        "tool_choice": {"type": "tool", "name": TOOL},
    })
}

pub async fn call(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    model: &str,
    req: &ChatRequest,
) -> Result<ChatAnswer, CallError> {
    let mut r = client
        .post(join(&endpoint.base_url, "messages"))
        .header("anthropic-version", VERSION);
    if let Some(key) = &endpoint.api_key {
        r = r.header("x-api-key", key);
    }
    let answer = post_json(r, &body(model, req), endpoint.timeout).await?;
    parse(&answer)
}

pub fn parse(answer: &Value) -> Result<ChatAnswer, CallError> {
    let blocks = answer["content"]
        .as_array()
        .ok_or_else(|| bad_answer("the answer has no content", answer))?;
    // The forced tool call; a text block (some proxies answer in text) is
    // taken as the JSON itself.
    let text = blocks
        .iter()
        .find(|b| b["type"] == "tool_use")
        .map(|b| b["input"].to_string())
        .or_else(|| {
            blocks
                .iter()
                .find(|b| b["type"] == "text")
                .and_then(|b| b["text"].as_str().map(str::to_string))
        })
        .ok_or_else(|| bad_answer("the answer has no tool_use block", answer))?;
    Ok(ChatAnswer {
        text,
        input_tokens: tokens(&answer["usage"]["input_tokens"]),
        output_tokens: tokens(&answer["usage"]["output_tokens"]),
    })
}
