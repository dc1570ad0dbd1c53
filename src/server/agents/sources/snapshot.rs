//! The snapshot source: the page an earlier run kept for the same row,
//! read from Postgres — nothing is fetched. A team changes a rule and
//! re-extracts in seconds, on exactly the content the first run saw.

use std::io::Read;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::server::agents::extract::extract_all;
use crate::server::agents::{Agent, AgentError, AgentOutput, JobInput, PageCopy, Progress};
use crate::server::db;

/// Reads the pages kept by execution `from`.
pub struct SnapshotAgent {
    pub db: PgPool,
    pub from: Uuid,
}

/// A kept page's HTML from its gzip bytes.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<String> {
    let mut html = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut html)?;
    Ok(html)
}

/// A page's HTML as gzip bytes, for keeping.
pub fn gzip(html: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(html.as_bytes())
        .and_then(|()| encoder.finish())
        .expect("writing to memory does not fail")
}

impl Agent for SnapshotAgent {
    async fn run(&self, job: &JobInput, progress: &Progress) -> Result<AgentOutput, AgentError> {
        progress.step("Reading the kept page", Some(&job.url), Some(10));
        let stored = db::pages::for_row(&self.db, self.from, job.row_index)
            .await
            .map_err(|e| {
                AgentError::transient("internal", format!("Mino could not read the page: {e}"))
            })?
            .ok_or_else(|| {
                AgentError::permanent(
                    "no_snapshot",
                    "The run these pages come from kept no page for this row (or it was removed by retention).",
                )
            })?;
        let (fields, url) = (job.fields.clone(), stored.url.clone());
        let (html, extracted) = tokio::task::spawn_blocking(move || {
            let html = gunzip(&stored.html_gz)?;
            let extracted = extract_all(&html, &url, &fields);
            Ok::<_, std::io::Error>((html, extracted))
        })
        .await
        .map_err(|e| AgentError::permanent("unparseable", format!("Reading the page failed: {e}")))?
        .map_err(|e| {
            AgentError::permanent("unparseable", format!("The kept page is damaged: {e}"))
        })?;
        progress.log(
            "info",
            &format!(
                "Read {} bytes kept from {} (nothing fetched)",
                html.len(),
                stored.url
            ),
        );
        progress.step("Extracting fields", Some(&stored.url), Some(70));
        for (level, line) in &extracted.lines {
            progress.log(level, line);
        }
        progress.step("Done", Some(&stored.url), Some(100));
        Ok(AgentOutput {
            raw: json!({
                "agent": "snapshot",
                "pages_from": self.from,
                "url": stored.url,
                "bytes": html.len(),
                "values": extracted.values,
                "sources": extracted.sources,
            }),
            values: extracted.values,
            // Already kept; the llm extractor reads it.
            page: Some(PageCopy {
                url: stored.url.clone(),
                html,
            }),
            usage: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_survive_compression() {
        let html = "<html><body><h1>Größe 42 €</h1></body></html>".repeat(50);
        let packed = gzip(&html);
        assert!(packed.len() < html.len() / 5);
        assert_eq!(gunzip(&packed).unwrap(), html);
        assert!(gunzip(b"not gzip").is_err());
    }
}
