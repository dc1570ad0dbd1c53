//! The OpenAI chat-completions wire format (`POST {base}/chat/completions`),
//! spoken by OpenAI and by vLLM, Ollama, llama.cpp's server, LM Studio,
//! OpenRouter and others. The answer is asked for as structured output
//! (`response_format: json_schema`); a server that refuses that format
//! is asked again once in JSON mode (`json_object`).

use serde_json::{json, Value};

use super::{
    bad_answer, join, post_json, tokens, CallError, CallFailure, ChatAnswer, ChatRequest, Endpoint,
    Speaker,
};

pub fn body(model: &str, req: &ChatRequest, json_schema: bool) -> Value {
    let mut messages = vec![json!({"role": "system", "content": req.system})];
    for (who, text) in &req.turns {
        let role = match who {
            Speaker::User => "user",
            Speaker::Model => "assistant",
        };
        messages.push(json!({"role": role, "content": text}));
    }
    let response_format = if json_schema {
        json!({
            "type": "json_schema",
            "json_schema": {"name": "extraction", "strict": true, "schema": req.schema},
        })
    } else {
        json!({"type": "json_object"})
    };
    json!({
        "model": model,
        "messages": messages,
        "temperature": 0,
        "max_tokens": req.max_output_tokens,
        "response_format": response_format,
    })
}

pub async fn call(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    model: &str,
    req: &ChatRequest,
) -> Result<ChatAnswer, CallError> {
    let send = |json_schema: bool| {
        let mut r = client.post(join(&endpoint.base_url, "chat/completions"));
        if let Some(key) = &endpoint.api_key {
            r = r.bearer_auth(key);
        }
        let b = body(model, req, json_schema);
        async move { post_json(r, &b, endpoint.timeout).await }
    };
    let answer = match send(true).await {
        Err(CallError {
            failure: CallFailure::Refused(400),
            message,
        }) if message.contains("response_format") || message.contains("json_schema") => {
            send(false).await?
        }
        other => other?,
    };
    parse(&answer)
}

pub fn parse(answer: &Value) -> Result<ChatAnswer, CallError> {
    let choice = &answer["choices"][0];
    let text = choice["message"]["content"]
        .as_str()
        .ok_or_else(|| bad_answer("the answer has no choices[0].message.content", answer))?;
    Ok(ChatAnswer {
        text: text.to_string(),
        input_tokens: tokens(&answer["usage"]["prompt_tokens"]),
        output_tokens: tokens(&answer["usage"]["completion_tokens"]),
    })
}
