//! The built-in http agent: fetch the page (see `fetch` for timeouts,
//! limits and the private-address rule), then extract every output field
//! by its rule.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::extract::Page;
use super::fetch::{self, FetchPolicy};
use super::{Agent, AgentError, AgentOutput, JobInput, Progress};
use crate::model::OutputField;

/// Pages up to this size are parsed on the job's own task.
const INLINE_PARSE_BYTES: usize = 256 * 1024;

/// Every field's value (null when its rule finds nothing) and the names
/// of the fields that found nothing.
fn extract_all(html: &str, fields: &[OutputField]) -> (Map<String, Value>, Vec<String>) {
    let page = Page::parse(html);
    let mut values = Map::new();
    let mut missing = Vec::new();
    for f in fields {
        let v = page.extract(f);
        if v.is_none() {
            missing.push(f.name.clone());
        }
        values.insert(f.name.clone(), v.map(Value::String).unwrap_or(Value::Null));
    }
    (values, missing)
}

pub struct HttpAgent {
    pub client: reqwest::Client,
    pub policy: FetchPolicy,
}

impl Agent for HttpAgent {
    async fn run(&self, job: &JobInput, progress: &Progress) -> Result<AgentOutput, AgentError> {
        let policy = FetchPolicy {
            timeout: Duration::from_secs(job.timeout_secs.max(1) as u64),
            ..self.policy.clone()
        };
        progress.step("Fetching the page", Some(&job.url), Some(10));
        let page = fetch::fetch(&self.client, &job.url, &policy).await?;
        progress.log(
            "info",
            &format!(
                "{} answered {} with {} bytes in {} ms{}",
                page.url,
                page.status,
                page.body.len(),
                page.elapsed.as_millis(),
                match page.hops.len() {
                    0 => String::new(),
                    n => format!(" after {n} redirect(s)"),
                }
            ),
        );
        progress.step("Extracting fields", Some(&page.url), Some(70));
        let (values, missing) = if page.body.len() > INLINE_PARSE_BYTES {
            // A big page takes milliseconds to parse: keep that off the
            // async threads that drive other jobs and serve requests.
            let (fields, body) = (job.fields.clone(), page.body.clone());
            tokio::task::spawn_blocking(move || extract_all(&body, &fields))
                .await
                .map_err(|e| {
                    AgentError::permanent("unparseable", format!("Reading the page failed: {e}"))
                })?
        } else {
            extract_all(&page.body, &job.fields)
        };
        if !missing.is_empty() {
            progress.log(
                "warn",
                &format!("No value found for: {}", missing.join(", ")),
            );
        }
        progress.step("Done", Some(&page.url), Some(100));
        Ok(AgentOutput {
            raw: json!({
                "agent": "http",
                "url": page.url,
                "status": page.status,
                "redirects": page.hops,
                "bytes": page.body.len(),
                "elapsed_ms": page.elapsed.as_millis() as u64,
                "values": values,
            }),
            values,
        })
    }
}
