//! Jobs: one row of a batch run by an agent, its attempts, and bulk operations on jobs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::GroundTruthChange;

text_enum! {
    /// Where a job is: queued, running (claimed by a worker), then
    /// succeeded (a result), failed (after its retries) or cancelled.
    pub enum JobState {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl JobState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

text_enum! {
    /// A finished job judged against its row's expected values: every
    /// judged field passed, some did, none did, nothing to judge against,
    /// or the job failed.
    pub enum Verdict {
        Pass = "pass",
        Partial = "partial",
        Fail = "fail",
        NoGroundTruth = "no_ground_truth",
        Error = "error",
    }
}

text_enum! {
    /// What a bulk operation does to the jobs it selects.
    pub enum BulkOperation {
        Delete = "delete",
        Rerun = "rerun",
        Update = "update",
    }
}

/// A job in an execution's job list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct JobSummary {
    pub id: i64,
    pub execution_id: Uuid,
    pub row_index: i32,
    pub url: String,
    pub state: JobState,
    /// None until the job finished.
    pub verdict: Option<Verdict>,
    pub accuracy: Option<f64>,
    pub attempt: i32,
    pub error_class: Option<String>,
    pub error: Option<String>,
    /// Extracted values by field.
    pub extracted: serde_json::Map<String, serde_json::Value>,
    /// Per judged field: {pass, score, expected, extracted, explanation}.
    pub field_results: serde_json::Map<String, serde_json::Value>,
    /// The row's id, current expected values and their version (to edit
    /// them in place).
    pub row_id: i64,
    pub expected: serde_json::Map<String, serde_json::Value>,
    pub gt_version: i32,
}

/// One attempt of a job, with its log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct AttemptView {
    pub id: i64,
    pub n: i32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i32>,
    pub cost_micros: i64,
    /// The attempt's cost in currency units (`cost_micros` / 1,000,000):
    /// its tokens at the model's prices for the llm extractor, else the
    /// project's price per job.
    pub cost: f64,
    /// llm extractor: who answered and the tokens it counted.
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: i32,
    pub output_tokens: i32,
    pub log: serde_json::Value,
    /// The JPEG the attempt ended on (browser attempts), if kept.
    pub screenshot_url: Option<String>,
    /// The page the attempt read its values from, if kept (sandboxed HTML).
    pub page_url: Option<String>,
}

/// A job with everything about it (`GET /jobs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct JobDetail {
    pub job: JobSummary,
    /// What its execution runs (a running browser job has a live view).
    pub agent: super::AgentKind,
    pub org_slug: String,
    pub project_id: Uuid,
    pub project_name: String,
    pub batch_id: Uuid,
    pub batch_name: String,
    /// The run it belongs to, as runs are told apart: mode, instructions
    /// version and when it started.
    pub execution_mode: super::ExecutionMode,
    pub instruction_version: i32,
    pub execution_created_at: chrono::DateTime<chrono::Utc>,
    pub inputs: serde_json::Map<String, serde_json::Value>,
    pub expected: serde_json::Map<String, serde_json::Value>,
    pub attempts: Vec<AttemptView>,
    pub raw_output: Option<String>,
    /// What to try next, from the error class or the failing fields.
    pub suggestion: Option<String>,
    /// The jobs before and after this one in its run (run order), for
    /// stepping through a run's jobs from the job page.
    #[serde(default)]
    pub previous_job: Option<i64>,
    #[serde(default)]
    pub next_job: Option<i64>,
    /// The row, its expected values' version (for editing), and whether
    /// the caller may edit them.
    pub row_id: i64,
    pub gt_version: i32,
    pub can_edit_ground_truth: bool,
    /// The row's expected-value changes, newest first.
    pub history: Vec<GroundTruthChange>,
}

impl JobDetail {
    /// "Test run v2 · 2026-12-06 14:03 UTC": the job's run, in a breadcrumb.
    pub fn run_label(&self) -> String {
        super::run_label(
            self.execution_mode,
            self.instruction_version,
            self.execution_created_at,
            false,
        )
    }
}

/// What a bulk job operation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct BulkJobsResult {
    pub action: BulkOperation,
    /// Jobs the selection reached.
    pub matched: i64,
    /// Jobs deleted or updated (for a rerun: jobs in the new execution).
    pub affected: i64,
    /// A rerun's new execution.
    pub execution_id: Option<Uuid>,
}

/// A site's URL as a list shows it: the host apart (shown dimmed) and the
/// path with its query, which is what tells one product page from the next.
/// A path longer than `max` characters keeps its end, after an ellipsis.
pub fn url_parts(url: &str, max: usize) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let n = path.chars().count();
    let path = if n > max && max > 1 {
        let tail: String = path.chars().skip(n - (max - 1)).collect();
        format!("…{tail}")
    } else {
        path.to_string()
    };
    (host.to_string(), path)
}

#[cfg(test)]
mod tests {
    use super::url_parts;

    #[test]
    fn a_url_shows_its_distinctive_end() {
        assert_eq!(
            url_parts("http://127.0.0.1:3001/demo/products/4711", 40),
            ("127.0.0.1:3001".into(), "/demo/products/4711".into())
        );
        assert_eq!(
            url_parts(
                "https://shop.example/c/very-long-category-name/item-12345?ref=x",
                20
            ),
            ("shop.example".into(), "…me/item-12345?ref=x".into())
        );
        assert_eq!(
            url_parts("https://shop.example", 20),
            ("shop.example".into(), "/".into())
        );
        assert_eq!(
            url_parts("shop.example/a?b", 20),
            ("shop.example".into(), "/a?b".into())
        );
        // Characters, not bytes: no panic inside a multi-byte letter.
        let (_, p) = url_parts("https://x.example/überlange-straße-ä", 10);
        assert_eq!(p.chars().count(), 10);
        assert!(p.ends_with("straße-ä"));
    }
}
