//! Google's Gemini API (`POST {base}/models/{model}:generateContent`).
//! Structured output is `responseMimeType: application/json` with a
//! `responseSchema`, which takes an OpenAPI-style subset of JSON schema
//! (one type per value, `nullable`, no `additionalProperties`).

use serde_json::{json, Map, Value};

use super::{
    bad_answer, join, post_json, tokens, CallError, ChatAnswer, ChatRequest, Endpoint, Speaker,
};

/// The answer's schema in Gemini's subset: `["string", "null"]` becomes
/// `{type: STRING, nullable: true}`; keywords it lacks are dropped.
pub fn response_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    match &obj.get("type") {
        Some(Value::Array(types)) => {
            let real: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            if let Some(t) = real.first() {
                out.insert("type".into(), json!(t.to_uppercase()));
            }
            if types.iter().any(|t| t == "null") {
                out.insert("nullable".into(), json!(true));
            }
        }
        Some(Value::String(t)) => {
            out.insert("type".into(), json!(t.to_uppercase()));
        }
        _ => {}
    }
    for key in ["description", "enum", "required", "format"] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        let props: Map<String, Value> = props
            .iter()
            .map(|(k, v)| (k.clone(), response_schema(v)))
            .collect();
        out.insert("properties".into(), Value::Object(props));
        // Keep the fields in the order the schema lists them.
        out.insert(
            "propertyOrdering".into(),
            json!(obj["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect::<Vec<_>>())),
        );
    }
    if let Some(items) = obj.get("items") {
        out.insert("items".into(), response_schema(items));
    }
    Value::Object(out)
}

pub fn body(req: &ChatRequest) -> Value {
    let contents: Vec<Value> = req
        .turns
        .iter()
        .map(|(who, text)| {
            let role = match who {
                Speaker::User => "user",
                Speaker::Model => "model",
            };
            json!({"role": role, "parts": [{"text": text}]})
        })
        .collect();
    json!({
        "systemInstruction": {"parts": [{"text": req.system}]},
        "contents": contents,
        "generationConfig": {
            "temperature": 0,
            "maxOutputTokens": req.max_output_tokens,
            "responseMimeType": "application/json",
            "responseSchema": response_schema(&req.schema),
        },
    })
}

pub async fn call(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    model: &str,
    req: &ChatRequest,
) -> Result<ChatAnswer, CallError> {
    let model = model.trim_start_matches("models/");
    let mut r = client.post(join(
        &endpoint.base_url,
        &format!("models/{model}:generateContent"),
    ));
    if let Some(key) = &endpoint.api_key {
        r = r.header("x-goog-api-key", key);
    }
    let answer = post_json(r, &body(req), endpoint.timeout).await?;
    parse(&answer)
}

pub fn parse(answer: &Value) -> Result<ChatAnswer, CallError> {
    let parts = answer["candidates"][0]["content"]["parts"]
        .as_array()
        .ok_or_else(|| bad_answer("the answer has no candidates[0].content.parts", answer))?;
    let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
    if text.is_empty() {
        return Err(bad_answer("the answer's parts hold no text", answer));
    }
    Ok(ChatAnswer {
        text,
        input_tokens: tokens(&answer["usageMetadata"]["promptTokenCount"]),
        output_tokens: tokens(&answer["usageMetadata"]["candidatesTokenCount"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_become_gemini_subset() {
        let s = json!({
            "type": "object", "additionalProperties": false,
            "properties": {"price": {"type": ["number", "null"], "description": "p"}},
            "required": ["price"],
        });
        let g = response_schema(&s);
        assert_eq!(g["type"], "OBJECT");
        assert!(g.get("additionalProperties").is_none());
        assert_eq!(
            g["properties"]["price"],
            json!({"type": "NUMBER", "nullable": true, "description": "p"})
        );
        assert_eq!(g["propertyOrdering"], json!(["price"]));
    }
}
