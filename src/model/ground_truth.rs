//! Ground truth: changes to the expected values of a batch's rows.

use super::{BatchRow, Execution, ExecutionMetrics, FailurePatterns, JobSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One change to an expected value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct GroundTruthChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

/// A row after an edit of its expected values, with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RowGroundTruth {
    pub row: BatchRow,
    pub history: Vec<GroundTruthChange>,
    /// Jobs of this row whose verdict was recomputed.
    pub reevaluated_jobs: i64,
}

/// What saving one expected value from the results grid answers: the job
/// judged again and its run's figures after the change, so the grid, the
/// run's counts and its cards update from one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ExpectedValueSaved {
    pub job: JobSummary,
    pub execution: Execution,
    pub metrics: ExecutionMetrics,
    pub patterns: FailurePatterns,
}

/// What a bulk change of expected values did — or, previewed, would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct BulkGroundTruthResult {
    /// True when nothing was stored (a preview).
    pub preview: bool,
    /// Rows the selection reached.
    pub rows_matched: i64,
    /// Rows whose expected values change.
    pub rows_changed: i64,
    /// Values that change (a row may change several fields).
    pub values_changed: i64,
    /// Finished jobs judged again (0 for a preview).
    pub reevaluated_jobs: i64,
    /// The first changes, for a preview or a confirmation.
    pub samples: Vec<GroundTruthSample>,
}

/// One value a bulk change sets, replaces or clears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct GroundTruthSample {
    pub row_id: i64,
    pub row_index: i32,
    pub url: String,
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// An expected value as text: several acceptable values (a JSON list)
/// joined by " | ", as the grid, exports and history show them.
pub fn expected_text(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(expected_text)
                .collect::<Vec<_>>()
                .join(" | "),
        ),
        other => Some(other.to_string()),
    }
}
