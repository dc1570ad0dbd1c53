//! Batches: an uploaded CSV of sites, its detected schema and its rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Role, ValueType};

/// What a CSV column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColumnRole {
    /// The site the agent visits.
    Url,
    /// Passed to the agent as context.
    Input,
    /// `gt_<field>`: the expected value of an output field.
    GroundTruth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ColumnSchema {
    /// The header as written in the file.
    pub name: String,
    pub role: ColumnRole,
    /// For ground-truth columns, the output field (the header without `gt_`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The type in use (detected, or as corrected before confirming).
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// What detection found, to show when the user changed it.
    pub detected_type: ValueType,
}

/// The first rows of a file, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct PreviewRow {
    pub line: u64,
    pub cells: Vec<String>,
}

/// Rows whose URL is not a web address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct InvalidUrls {
    pub count: u64,
    /// Up to five (line, value) pairs.
    pub examples: Vec<(u64, String)>,
}

/// What reading a CSV found: the schema, the first rows, the row count and
/// the first problem, if any. The preview endpoint answers with it; the
/// upload answers with the batch it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct CsvReport {
    /// `,` `;` or `\t`.
    pub delimiter: String,
    pub has_bom: bool,
    pub columns: Vec<ColumnSchema>,
    pub preview: Vec<PreviewRow>,
    /// Data rows read (without the header).
    pub rows: u64,
    pub invalid_urls: InvalidUrls,
    /// False when only the start of a file was read (a browser preview).
    pub complete: bool,
    /// The first problem found; the upload would be refused with it.
    pub problem: Option<FileProblem>,
}

/// Why a file was refused, and where: line and column are 1-based; the
/// column counts fields, as a spreadsheet does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FileProblem {
    pub code: FileProblemCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_name: Option<String>,
    /// For invalid URLs: how many rows, and the first few.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_urls: Option<InvalidUrls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileProblemCode {
    CsvEmpty,
    CsvNoRows,
    CsvEmptyHeader,
    CsvInvalidHeader,
    CsvDuplicateHeader,
    CsvFieldCount,
    CsvUnclosedQuote,
    CsvInvalidUtf8,
    CsvNulByte,
    CsvNoUrlColumn,
    CsvInvalidUrls,
    CsvTooManyRows,
    FileTooLarge,
}

impl FileProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FileProblemCode::CsvEmpty => "CSV_EMPTY",
            FileProblemCode::CsvNoRows => "CSV_NO_ROWS",
            FileProblemCode::CsvEmptyHeader => "CSV_EMPTY_HEADER",
            FileProblemCode::CsvInvalidHeader => "CSV_INVALID_HEADER",
            FileProblemCode::CsvDuplicateHeader => "CSV_DUPLICATE_HEADER",
            FileProblemCode::CsvFieldCount => "CSV_FIELD_COUNT",
            FileProblemCode::CsvUnclosedQuote => "CSV_UNCLOSED_QUOTE",
            FileProblemCode::CsvInvalidUtf8 => "CSV_INVALID_UTF8",
            FileProblemCode::CsvNulByte => "CSV_NUL_BYTE",
            FileProblemCode::CsvNoUrlColumn => "CSV_NO_URL_COLUMN",
            FileProblemCode::CsvInvalidUrls => "CSV_INVALID_URLS",
            FileProblemCode::CsvTooManyRows => "CSV_TOO_MANY_ROWS",
            FileProblemCode::FileTooLarge => "FILE_TOO_LARGE",
        }
    }
}

impl FileProblem {
    /// "line 4, column 2 (price): …" — where first, as people scan for it.
    pub fn located_message(&self) -> String {
        let mut at = String::new();
        if let Some(line) = self.line {
            at.push_str(&format!("Line {line}"));
            if let Some(col) = self.column {
                at.push_str(&format!(", column {col}"));
                if let Some(name) = &self.column_name {
                    at.push_str(&format!(" ({name})"));
                }
            }
            at.push_str(": ");
        }
        format!("{at}{}", self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Batch {
    pub id: Uuid,
    pub project_id: Uuid,
    pub project_name: String,
    pub org_slug: String,
    pub name: String,
    pub columns: Vec<ColumnSchema>,
    pub url_column: String,
    pub delimiter: String,
    pub row_count: i32,
    pub skipped_rows: i32,
    /// Rows with an expected value, per output field.
    pub gt_coverage: BTreeMap<String, i64>,
    pub file_name: Option<String>,
    pub file_bytes: i64,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub role: Option<Role>,
}

impl Batch {
    pub fn can_edit(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Member)
    }
    pub fn can_delete(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Admin)
    }
}

/// What "Load the demo project" made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct LoadedDemo {
    pub project: super::Project,
    pub batch: Batch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct BatchSummary {
    pub id: Uuid,
    pub name: String,
    pub row_count: i32,
    pub gt_fields: i32,
    pub file_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Row ids are `batch seq × ROW_ID_BASE + row index`: unique, stable, and
/// found through the rows' primary key without a second index.
pub const ROW_ID_BASE: i64 = 10_000_000;

pub fn row_id(batch_seq: i64, row_index: i32) -> i64 {
    batch_seq * ROW_ID_BASE + row_index as i64
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct BatchRow {
    pub id: i64,
    pub row_index: i32,
    pub line: i32,
    pub site_url: String,
    pub inputs: BTreeMap<String, String>,
    pub ground_truth: BTreeMap<String, String>,
    pub gt_version: i32,
}

/// An execution: an agent run over a batch (all rows, or a test sample),
/// with its job counts read from the jobs table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Execution {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub batch_name: String,
    pub project_id: Uuid,
    pub project_name: String,
    pub org_slug: String,
    pub mode: String,
    pub sample_size: Option<i32>,
    pub instruction_version: i32,
    pub agent: String,
    pub concurrency: i32,
    pub max_retries: i32,
    pub state: String,
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    /// Jobs that finished with a result.
    pub completed: i64,
    /// Jobs that failed after their retries.
    pub errors: i64,
    pub cancelled: i64,
    /// Jobs whose every judged field passed, and jobs with a failing field
    /// (partial or fail verdicts).
    pub passed: i64,
    pub failed: i64,
    /// Mean share of judged fields that passed, over the jobs with
    /// expected values (None until one is judged).
    pub accuracy: Option<f64>,
    pub estimated_cost_micros: i64,
    pub cost_micros: i64,
    /// The execution whose jobs this one runs again.
    pub rerun_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub role: Option<Role>,
}

impl Execution {
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "queued" | "running" | "paused" | "stopping"
        )
    }
    pub fn can_control(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Member)
    }
}

/// What a live view of an execution shows, sent as one server-sent event:
/// always the whole picture (counts read from the database), so a missed
/// event is never a wrong count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct LiveSnapshot {
    /// Increases with every snapshot of this execution; the SSE event id.
    pub seq: u64,
    /// Counts and state. `role` is not set: one snapshot goes to every
    /// viewer.
    pub execution: Execution,
    /// Jobs finished per minute, over the last minute this server watched.
    pub per_minute: f64,
    /// Seconds until every job is done at that rate (None: unknown).
    pub eta_secs: Option<i64>,
    /// Up to 50 running jobs, oldest first.
    pub running_jobs: Vec<RunningJob>,
    /// The latest events, newest first.
    pub events: Vec<ExecutionEvent>,
    /// The execution ended: this is the last snapshot.
    pub last: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RunningJob {
    pub id: i64,
    pub row_index: i32,
    pub url: String,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    /// What the agent last said it was doing.
    pub step: Option<String>,
    pub percent: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ExecutionEvent {
    pub at: DateTime<Utc>,
    /// paused, resumed, stopped, concurrency, job_failed, job_retrying
    pub kind: String,
    pub message: String,
    pub job_id: Option<i64>,
    pub actor_name: Option<String>,
}

/// An execution's evaluation summary (`GET /executions/{id}/metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ExecutionMetrics {
    pub execution_id: Uuid,
    /// Mean share of judged fields that passed, over jobs with expected
    /// values.
    pub accuracy: Option<f64>,
    /// Jobs per verdict: pass, partial, fail, no_ground_truth, error.
    pub verdicts: BTreeMap<String, i64>,
    /// Per output field, over the jobs where it had an expected value.
    pub fields: Vec<FieldAccuracy>,
    /// Failed jobs per error class (timeout, http_4xx, …).
    pub errors_by_class: BTreeMap<String, i64>,
    pub cost_micros: i64,
    pub duration_secs: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldAccuracy {
    pub field: String,
    pub compared: i64,
    pub passed: i64,
    pub accuracy: f64,
}

/// A job in an execution's job list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct JobSummary {
    pub id: i64,
    pub execution_id: Uuid,
    pub row_index: i32,
    pub url: String,
    /// queued, running, succeeded, failed, cancelled
    pub state: String,
    /// pass, partial, fail, no_ground_truth, error (None until finished)
    pub verdict: Option<String>,
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
    pub n: i32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i32>,
    pub cost_micros: i64,
    pub log: serde_json::Value,
}

/// A job with everything about it (`GET /jobs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct JobDetail {
    pub job: JobSummary,
    pub org_slug: String,
    pub batch_id: Uuid,
    pub batch_name: String,
    pub inputs: serde_json::Map<String, serde_json::Value>,
    pub expected: serde_json::Map<String, serde_json::Value>,
    pub attempts: Vec<AttemptView>,
    pub raw_output: Option<String>,
    /// What to try next, from the error class or the failing fields.
    pub suggestion: Option<String>,
    /// The row, its expected values' version (for editing), and whether
    /// the caller may edit them.
    pub row_id: i64,
    pub gt_version: i32,
    pub can_edit_ground_truth: bool,
    /// The row's expected-value changes, newest first.
    pub history: Vec<GroundTruthChange>,
}

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

/// Why an execution's fields failed (`GET /executions/{id}/failure-patterns`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FailurePatterns {
    pub execution_id: Uuid,
    pub fields: Vec<FieldFailures>,
}

/// One field's failures by pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldFailures {
    pub field: String,
    /// Jobs where the field had an expected value (judged or errored).
    pub judged: i64,
    pub patterns: Vec<FailurePattern>,
}

/// `missing` (nothing extracted), `wrong_type` (not a value of the
/// field's type), `partial` (close: overlapping or within reach),
/// `wrong_value`, `agent_error` (the job failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FailurePattern {
    pub pattern: String,
    pub count: i64,
    /// Up to five jobs showing it.
    pub examples: Vec<FailureExample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FailureExample {
    pub job_id: i64,
    pub row_index: i32,
    pub url: String,
    pub extracted: Option<String>,
    pub expected: Option<String>,
    /// The comparator's explanation, or the job's error.
    pub detail: String,
}

/// Accuracy across a batch's executions, oldest first (`GET /batches/{id}/trends`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Trends {
    pub batch_id: Uuid,
    /// Every field that any run judged.
    pub fields: Vec<String>,
    pub points: Vec<TrendPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct TrendPoint {
    pub execution_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub mode: String,
    pub state: String,
    pub instruction_version: i32,
    /// Jobs judged against expected values.
    pub judged: i64,
    pub accuracy: Option<f64>,
    /// Field → accuracy (absent: not judged in this run).
    pub fields: BTreeMap<String, f64>,
}

/// Two executions of one batch side by side (`GET /executions/compare`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Comparison {
    pub a: Execution,
    pub b: Execution,
    pub fields: Vec<FieldDelta>,
    /// Rows failing (or errored) in A and passing in B.
    pub fixed: Vec<JobPair>,
    pub fixed_count: i64,
    /// Rows passing in A and not in B.
    pub regressed: Vec<JobPair>,
    pub regressed_count: i64,
    /// Rows whose verdict stayed but whose extracted values changed.
    pub changed: Vec<JobPair>,
    pub changed_count: i64,
    /// Rows in only one of the two runs.
    pub only_a: i64,
    pub only_b: i64,
    /// The instructions' diff, when the versions differ.
    pub instructions_diff: Option<crate::model::InstructionDiff>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldDelta {
    pub field: String,
    pub accuracy_a: Option<f64>,
    pub accuracy_b: Option<f64>,
}

/// One row's job in each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct JobPair {
    pub row_index: i32,
    pub url: String,
    pub job_a: i64,
    pub job_b: i64,
    pub verdict_a: Option<String>,
    pub verdict_b: Option<String>,
    /// Fields whose extracted value differs: field → (A, B).
    pub differences: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// What a bulk job operation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct BulkJobsResult {
    /// delete, rerun or update.
    pub action: String,
    /// Jobs the selection reached.
    pub matched: i64,
    /// Jobs deleted or updated (for a rerun: jobs in the new execution).
    pub affected: i64,
    /// A rerun's new execution.
    pub execution_id: Option<Uuid>,
}

/// One export of an execution's results (F13), with its progress while it
/// runs and, once ready, a download until the file expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Export {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub execution_id: Option<Uuid>,
    /// csv, json or xlsx
    pub format: String,
    pub columns: Vec<String>,
    /// The job-list filters it applied (query-string names).
    pub filters: BTreeMap<String, String>,
    /// running, ready, failed or expired
    pub state: String,
    pub total_rows: i64,
    pub row_count: i64,
    pub bytes: Option<i64>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    /// Where to fetch the file while it is kept.
    pub download_url: Option<String>,
}
