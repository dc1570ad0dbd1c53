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

/// Every field's value (null when its rule finds nothing), with why: the
/// source that won and the candidates that lost.
pub(super) struct Extracted {
    pub values: Map<String, Value>,
    /// Per field: `{source, passed_over: [{value, source}]}`.
    pub sources: Map<String, Value>,
    /// One log line per field.
    pub lines: Vec<(&'static str, String)>,
}

/// Reads every field of `fields` from the page by its rule (the browser
/// agent reads its rendered DOM the same way).
pub(super) fn extract_all(html: &str, url: &str, fields: &[OutputField]) -> Extracted {
    let page = Page::parse_at(html, Some(url));
    let mut out = Extracted {
        values: Map::new(),
        sources: Map::new(),
        lines: Vec::new(),
    };
    for f in fields {
        let e = page.explain(f);
        let lost = e
            .passed_over
            .iter()
            .map(|c| format!("{:?} from {}", c.value, c.source))
            .collect::<Vec<_>>()
            .join("; ");
        let line = match (&e.value, &e.source) {
            (Some(v), Some(source)) if lost.is_empty() => {
                ("info", format!("{}: {v:?} from {source}", f.name))
            }
            (Some(v), Some(source)) => (
                "info",
                format!("{}: {v:?} from {source}; passed over {lost}", f.name),
            ),
            _ if lost.is_empty() => ("warn", format!("{}: no value found", f.name)),
            _ => (
                "warn",
                format!("{}: no value found; rejected {lost}", f.name),
            ),
        };
        out.lines.push(line);
        out.sources.insert(
            f.name.clone(),
            json!({
                "source": e.source,
                "passed_over": e.passed_over.iter()
                    .map(|c| json!({"value": c.value, "source": c.source}))
                    .collect::<Vec<_>>(),
            }),
        );
        out.values.insert(
            f.name.clone(),
            e.value.map(Value::String).unwrap_or(Value::Null),
        );
    }
    out
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
        let extracted = if page.body.len() > INLINE_PARSE_BYTES {
            // A big page takes milliseconds to parse: keep that off the
            // async threads that drive other jobs and serve requests.
            let (fields, body, url) = (job.fields.clone(), page.body.clone(), page.url.clone());
            tokio::task::spawn_blocking(move || extract_all(&body, &url, &fields))
                .await
                .map_err(|e| {
                    AgentError::permanent("unparseable", format!("Reading the page failed: {e}"))
                })?
        } else {
            extract_all(&page.body, &page.url, &job.fields)
        };
        for (level, line) in &extracted.lines {
            progress.log(level, line);
        }
        let Extracted {
            values, sources, ..
        } = extracted;
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
                "sources": sources,
            }),
            values,
        })
    }
}
