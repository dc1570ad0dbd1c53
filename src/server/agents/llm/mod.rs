//! Talking to language models: one request shape ([`ChatRequest`]: a system
//! text, the conversation, and the JSON schema the answer must match) sent
//! in a provider's own wire format — OpenAI chat completions
//! ([`openai`]), Anthropic Messages ([`anthropic`]), Gemini
//! generateContent ([`gemini`]) — with its failures classified the same
//! way for all three. [`route`] walks a project's ordered route of
//! providers with the shared circuit breaker and failover.

pub mod anthropic;
pub mod gemini;
pub mod local;
pub mod openai;
pub mod route;

use std::time::Duration;

use serde_json::Value;

use crate::model::ProviderKind;

/// Who said a turn of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    User,
    Model,
}

/// What Mino asks a model.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub system: String,
    /// Starts with the user's turn; a repair adds the model's answer and
    /// the user's correction.
    pub turns: Vec<(Speaker, String)>,
    /// The JSON schema of the answer (an object).
    pub schema: Value,
    pub max_output_tokens: u32,
}

/// A model's answer: the JSON text it produced and what it counted.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    pub text: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// Why a call failed, the same for every wire format.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFailure {
    /// 429: the provider asks us to wait (`Retry-After`, when it said).
    RateLimited(Option<Duration>),
    /// 5xx (or Anthropic's 529 overloaded).
    Server(u16),
    Timeout,
    Connection,
    /// 401/403: the key is wrong or lacks access.
    Auth(u16),
    /// The input is longer than the model's context.
    ContextLength,
    /// Another 4xx: the provider refused this request.
    Refused(u16),
    /// A 2xx whose body is not the format's answer.
    BadAnswer,
}

impl CallFailure {
    /// The word recorded in `model_calls.outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallFailure::RateLimited(_) => "rate_limited",
            CallFailure::Server(_) => "server_error",
            CallFailure::Timeout => "timeout",
            CallFailure::Connection => "connection",
            CallFailure::Auth(_) => "auth",
            CallFailure::ContextLength => "context_length",
            CallFailure::Refused(_) => "refused",
            CallFailure::BadAnswer => "bad_answer",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub failure: CallFailure,
    /// In words, with what the provider said (its key never appears).
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where and how to reach one provider.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub kind: ProviderKind,
    pub base_url: String,
    /// Opened (clear text); never logged.
    pub api_key: Option<String>,
    pub timeout: Duration,
}

/// Sends `req` to `model` at `endpoint` in the endpoint's wire format.
pub async fn call(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    model: &str,
    req: &ChatRequest,
) -> Result<ChatAnswer, CallError> {
    if endpoint.base_url == local::LOCAL_URL {
        let base_url = local::base_url().await.map_err(|message| CallError {
            failure: CallFailure::Connection,
            message,
        })?;
        let endpoint = Endpoint {
            base_url,
            ..endpoint.clone()
        };
        return openai::call(client, &endpoint, model, req).await;
    }
    match endpoint.kind {
        ProviderKind::OpenAi => openai::call(client, endpoint, model, req).await,
        ProviderKind::Anthropic => anthropic::call(client, endpoint, model, req).await,
        ProviderKind::Gemini => gemini::call(client, endpoint, model, req).await,
    }
}

/// Joins the base URL and a path with exactly one slash.
fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Posts `body` and returns the JSON answer, or the failure classified.
/// `context_words` are phrases by which the provider says the input is
/// too long.
async fn post_json(
    request: reqwest::RequestBuilder,
    body: &Value,
    timeout: Duration,
) -> Result<Value, CallError> {
    let sent = tokio::time::timeout(timeout, async {
        let res = request.json(body).send().await?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = res.text().await?;
        Ok::<_, reqwest::Error>((status, retry_after, text))
    })
    .await;
    let (status, retry_after, text) = match sent {
        Err(_) => {
            return Err(CallError {
                failure: CallFailure::Timeout,
                message: format!("no answer within {} s", timeout.as_secs_f64()),
            })
        }
        Ok(Err(e)) => {
            let failure = if e.is_timeout() {
                CallFailure::Timeout
            } else {
                CallFailure::Connection
            };
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            return Err(CallError {
                failure,
                message: format!("could not reach the provider ({chain})"),
            });
        }
        Ok(Ok(r)) => r,
    };
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| CallError {
            failure: CallFailure::BadAnswer,
            message: format!("the provider's answer is not JSON ({e}): {}", clip(&text)),
        });
    }
    let said = provider_message(&text);
    let code = status.as_u16();
    let lower = said.to_lowercase();
    let failure = match code {
        429 => CallFailure::RateLimited(retry_after),
        401 | 403 => CallFailure::Auth(code),
        500..=599 => CallFailure::Server(code),
        400 | 413 | 422
            if lower.contains("context")
                || lower.contains("too long")
                || lower.contains("too many tokens")
                || lower.contains("maximum") && lower.contains("token") =>
        {
            CallFailure::ContextLength
        }
        _ => CallFailure::Refused(code),
    };
    Err(CallError {
        failure,
        message: format!("HTTP {code}: {said}"),
    })
}

/// The error message in a provider's error body (all three put it at
/// `error.message`), else the body itself, shortened.
fn provider_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .or_else(|| v["message"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| clip(body))
}

fn clip(text: &str) -> String {
    let t: String = text.chars().take(300).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

fn bad_answer(what: &str, body: &Value) -> CallError {
    CallError {
        failure: CallFailure::BadAnswer,
        message: format!("{what}: {}", clip(&body.to_string())),
    }
}

/// A token count from a usage object (absent counts as 0).
fn tokens(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}
