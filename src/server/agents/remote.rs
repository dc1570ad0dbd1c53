//! The remote agent: hands a job to an external agent service over HTTP
//! and streams its progress and result back. The protocol ("mino-agent/1")
//! is documented in the README; in short:
//!
//! Mino sends `POST <agent URL>` with a JSON body (`protocol`, `job`,
//! `url`, `inputs`, `instructions`, `instruction_version`, `fields`,
//! `timeout_secs`). The service answers 200 with either one JSON object
//! or `application/x-ndjson`: one event per line, `progress` and `log`
//! events while it works and one `result` or `error` event at the end.
//! A 429 or 5xx answer is a transient failure (Retry-After honoured), any
//! other non-2xx a permanent one.
//!
//! The agent service's address obeys the same private-address rule as the
//! http agent's page fetches.

use std::time::Duration;

use reqwest::{header, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::fetch::{self, check_target, classify, FetchPolicy};
use super::{Agent, AgentError, AgentOutput, JobInput, Progress};

pub const PROTOCOL: &str = "mino-agent/1";

pub struct RemoteAgent {
    pub client: reqwest::Client,
    pub policy: FetchPolicy,
    pub endpoint: String,
}

#[derive(Serialize)]
struct Request<'a> {
    protocol: &'static str,
    job: JobRef,
    url: &'a str,
    inputs: &'a Map<String, Value>,
    instructions: &'a str,
    instruction_version: i32,
    fields: Vec<FieldSpec<'a>>,
    timeout_secs: i32,
}

#[derive(Serialize)]
struct JobRef {
    id: i64,
    attempt: i32,
}

#[derive(Serialize)]
struct FieldSpec<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    field_type: crate::model::ValueType,
    rule: &'a crate::model::ExtractionRule,
}

/// One event from the agent service.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    Progress {
        #[serde(default)]
        step: String,
        url: Option<String>,
        percent: Option<f64>,
    },
    Log {
        level: Option<String>,
        message: String,
    },
    Result {
        #[serde(default)]
        values: Map<String, Value>,
        #[serde(default)]
        output: Value,
    },
    Error {
        #[serde(default)]
        retryable: bool,
        kind: Option<String>,
        message: String,
        retry_after_secs: Option<u64>,
    },
}

/// Error kinds an agent service may name; anything else is `agent_error`.
const KNOWN_KINDS: &[&str] = &[
    "timeout",
    "connection",
    "dns",
    "http_429",
    "http_5xx",
    "http_4xx",
    "too_large",
    "unparseable",
    "blocked",
    "not_found",
];

fn protocol_error(message: impl Into<String>) -> AgentError {
    AgentError::permanent("agent_protocol", message)
}

impl Agent for RemoteAgent {
    async fn run(&self, job: &JobInput, progress: &Progress) -> Result<AgentOutput, AgentError> {
        // The agent gets the job's whole timeout plus a little to answer.
        let limit = Duration::from_secs(job.timeout_secs.max(1) as u64 + 5);
        match tokio::time::timeout(limit, self.exchange(job, progress)).await {
            Ok(r) => r,
            Err(_) => Err(AgentError::transient(
                "timeout",
                format!(
                    "The agent service gave no result within {} s.",
                    limit.as_secs()
                ),
            )),
        }
    }
}

impl RemoteAgent {
    async fn exchange(
        &self,
        job: &JobInput,
        progress: &Progress,
    ) -> Result<AgentOutput, AgentError> {
        let endpoint = reqwest::Url::parse(&self.endpoint).map_err(|e| {
            AgentError::permanent(
                "bad_url",
                format!("The agent URL {} is not valid: {e}", self.endpoint),
            )
        })?;
        check_target(&endpoint, &self.policy)?;
        let body = Request {
            protocol: PROTOCOL,
            job: JobRef {
                id: job.job_id,
                attempt: job.attempt,
            },
            url: &job.url,
            inputs: &job.inputs,
            instructions: &job.instructions,
            instruction_version: job.instruction_version,
            fields: job
                .fields
                .iter()
                .map(|f| FieldSpec {
                    name: &f.name,
                    field_type: f.field_type,
                    rule: &f.rule,
                })
                .collect(),
            timeout_secs: job.timeout_secs,
        };
        progress.step(
            "Sending the job to the agent service",
            Some(&job.url),
            Some(0),
        );
        let res = self
            .client
            .post(endpoint.clone())
            .header(header::ACCEPT, "application/x-ndjson, application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = res.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = fetch::parse_retry_after(
                res.headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            );
            let mut e = AgentError::transient(
                "http_429",
                format!(
                    "The agent service is busy (429); it asked to wait {} s.",
                    wait.as_secs()
                ),
            );
            e.retry_after = Some(wait);
            return Err(e);
        }
        if status.is_server_error() {
            return Err(AgentError::transient(
                "http_5xx",
                format!("The agent service failed with {status}."),
            ));
        }
        if !status.is_success() {
            let text = res.text().await.unwrap_or_default();
            return Err(AgentError::permanent(
                "agent_rejected",
                format!(
                    "The agent service refused the job with {status}: {}",
                    text.chars().take(300).collect::<String>()
                ),
            ));
        }
        let streaming = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-ndjson"));
        let mut res = res;
        let mut buf: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut line_no = 0usize;
        let mut events = Vec::new();
        loop {
            let chunk = res.chunk().await.map_err(|e| classify(&e))?;
            let done = chunk.is_none();
            if let Some(c) = chunk {
                total += c.len();
                if total > self.policy.max_bytes {
                    return Err(AgentError::permanent(
                        "too_large",
                        format!(
                            "The agent service sent more than {} MB.",
                            self.policy.max_bytes / 1024 / 1024
                        ),
                    ));
                }
                buf.extend_from_slice(&c);
            }
            if !streaming {
                if done {
                    line_no = 1;
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let ended = apply(parse_single(&text)?, progress, line_no)?;
                    return ended.ok_or_else(|| {
                        protocol_error("The agent service answered without a result or error.")
                    });
                }
                continue;
            }
            // Handle every complete line; a final line may lack its newline.
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                line_no += 1;
                events.push((line_no, line));
            }
            if done && !buf.is_empty() {
                line_no += 1;
                events.push((line_no, std::mem::take(&mut buf)));
            }
            for (n, line) in events.drain(..) {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                let event: Event = serde_json::from_str(text).map_err(|e| {
                    protocol_error(format!(
                        "Line {n} of the agent's answer is not a valid event: {e}"
                    ))
                })?;
                if let Some(ended) = apply(event, progress, n)? {
                    return Ok(ended);
                }
            }
            if done {
                return Err(AgentError::transient(
                    "agent_protocol",
                    "The agent service closed the stream before sending a result.",
                ));
            }
        }
    }
}

/// A non-streaming answer: one event, or a bare `{values, output}`.
fn parse_single(text: &str) -> Result<Event, AgentError> {
    let value: Value = serde_json::from_str(text.trim())
        .map_err(|e| protocol_error(format!("The agent's answer is not JSON: {e}")))?;
    if value.get("type").is_none() {
        if let Some(values) = value.get("values") {
            return Ok(Event::Result {
                values: values
                    .as_object()
                    .cloned()
                    .ok_or_else(|| protocol_error("The agent's \"values\" must be an object."))?,
                output: value.get("output").cloned().unwrap_or(Value::Null),
            });
        }
    }
    serde_json::from_value(value)
        .map_err(|e| protocol_error(format!("The agent's answer is not a valid event: {e}")))
}

/// Applies one event: progress and logs go to the sink; a result or an
/// error ends the job.
fn apply(
    event: Event,
    progress: &Progress,
    line: usize,
) -> Result<Option<AgentOutput>, AgentError> {
    match event {
        Event::Progress { step, url, percent } => {
            let percent = percent.map(|p| p.clamp(0.0, 100.0).round() as u8);
            progress.step(&step, url.as_deref(), percent);
            Ok(None)
        }
        Event::Log { level, message } => {
            let level = match level.as_deref() {
                Some("warn" | "warning") => "warn",
                Some("error") => "error",
                Some("debug") => "debug",
                _ => "info",
            };
            progress.log(level, &message);
            Ok(None)
        }
        Event::Result { values, output } => {
            let values = values
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Null | Value::String(_) => v,
                        Value::Number(n) => Value::String(n.to_string()),
                        Value::Bool(b) => Value::String(if b { "yes" } else { "no" }.into()),
                        other => Value::String(other.to_string()),
                    };
                    (k, v)
                })
                .collect::<Map<_, _>>();
            Ok(Some(AgentOutput {
                raw: json!({"agent": "remote", "values": values, "output": output}),
                values,
                page: None,
                usage: None,
            }))
        }
        Event::Error {
            retryable,
            kind,
            message,
            retry_after_secs,
        } => {
            let kind = kind
                .as_deref()
                .and_then(|k| KNOWN_KINDS.iter().find(|known| **known == k).copied())
                .unwrap_or("agent_error");
            let message = format!("The agent reported (line {line}): {message}");
            let mut e = if retryable {
                AgentError::transient(kind, message)
            } else {
                AgentError::permanent(kind, message)
            };
            if retryable {
                e.retry_after = retry_after_secs.map(|s| Duration::from_secs(s.max(5)));
            }
            Err(e)
        }
    }
}
