//! The built-in http agent: fetch the page (see `fetch` for timeouts,
//! limits and the private-address rule), then extract every output field
//! by its rule.

use std::time::Duration;

use serde_json::json;

use crate::server::agents::extract::{extract_all, Extracted};
use crate::server::agents::fetch::{self, FetchPolicy};
use crate::server::agents::{Agent, AgentError, AgentOutput, JobInput, PageCopy, Progress};

/// Pages up to this size are parsed on the job's own task.
const INLINE_PARSE_BYTES: usize = 256 * 1024;

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
        let bytes = page.body.len();
        let copy = PageCopy {
            url: page.url.clone(),
            html: page.body,
        };
        Ok(AgentOutput {
            raw: json!({
                "agent": "http",
                "url": page.url,
                "status": page.status,
                "redirects": page.hops,
                "bytes": bytes,
                "elapsed_ms": page.elapsed.as_millis() as u64,
                "values": values,
                "sources": sources,
            }),
            values,
            page: Some(copy),
            usage: None,
        })
    }
}
