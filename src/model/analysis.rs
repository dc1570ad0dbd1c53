//! Analysis of runs: failure patterns, trends across a batch's runs, comparisons of two runs.

use std::collections::BTreeMap;

use super::{Execution, ExecutionMode, ExecutionState, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    pub mode: ExecutionMode,
    pub state: ExecutionState,
    pub instruction_version: i32,
    /// Jobs judged against expected values.
    pub judged: i64,
    pub accuracy: Option<f64>,
    /// 95% bootstrap interval of `accuracy`.
    #[serde(default)]
    pub accuracy_interval: Option<[f64; 2]>,
    /// Field → accuracy (absent: not judged in this run).
    pub fields: BTreeMap<String, f64>,
    /// Field → F1 (absent: not judged in this run).
    #[serde(default)]
    pub f1: BTreeMap<String, f64>,
}

/// Two executions of one batch side by side (`GET /executions/compare`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Comparison {
    pub a: Execution,
    pub b: Execution,
    /// Whether B's difference from A is beyond noise: McNemar's exact test
    /// (two-sided, 5%) on the rows judged in both runs that pass in only
    /// one of them.
    pub significant: bool,
    /// The test used: `mcnemar_exact`.
    pub test: String,
    /// Its two-sided p-value (1 when no row passes in only one run).
    pub p_value: f64,
    /// Rows judged in both runs that pass only in A, and only in B.
    pub passes_only_a: i64,
    pub passes_only_b: i64,
    /// Rows both runs have a job for.
    #[serde(default)]
    pub shared_rows: i64,
    /// Rows judged against expected values in both runs: what the
    /// `shared_accuracy_*` figures (and each field's `shared_*`) are
    /// computed on, so that a 20-row test run and a 200-row production run
    /// are compared on the same 20 rows. The runs' own accuracies (on all
    /// their rows) are in `a` and `b`.
    #[serde(default)]
    pub judged_in_both: i64,
    #[serde(default)]
    pub shared_accuracy_a: Option<f64>,
    #[serde(default)]
    pub shared_accuracy_b: Option<f64>,
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
    /// The versions' whole diff (instructions, field rules and
    /// descriptions, agent settings), when they differ.
    #[serde(default)]
    pub version_diff: Option<crate::model::VersionDiff>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldDelta {
    pub field: String,
    pub accuracy_a: Option<f64>,
    pub accuracy_b: Option<f64>,
    #[serde(default)]
    pub f1_a: Option<f64>,
    #[serde(default)]
    pub f1_b: Option<f64>,
    /// 95% bootstrap intervals of the accuracies.
    #[serde(default)]
    pub accuracy_interval_a: Option<[f64; 2]>,
    #[serde(default)]
    pub accuracy_interval_b: Option<[f64; 2]>,
    /// Rows where both runs judged this field; the `shared_*` figures are
    /// computed on them alone (the ones above on each run's own rows).
    #[serde(default)]
    pub shared_compared: i64,
    #[serde(default)]
    pub shared_accuracy_a: Option<f64>,
    #[serde(default)]
    pub shared_accuracy_b: Option<f64>,
    #[serde(default)]
    pub shared_f1_a: Option<f64>,
    #[serde(default)]
    pub shared_f1_b: Option<f64>,
}

/// One row's job in each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct JobPair {
    pub row_index: i32,
    pub url: String,
    pub job_a: i64,
    pub job_b: i64,
    pub verdict_a: Option<Verdict>,
    pub verdict_b: Option<Verdict>,
    /// Fields whose extracted value differs: field → (A, B).
    pub differences: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// Instructions a model proposes from a run's failures: the text, its
/// reasons, and the diff from the instructions the run used. Nothing is
/// saved until a person saves it as a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct InstructionSuggestion {
    pub execution_id: Uuid,
    /// The version whose instructions the suggestion rewrites.
    pub based_on_version: i32,
    /// The project's production version, and the run's batch and whether it
    /// kept its pages: an experiment against production starts from these.
    #[serde(default)]
    pub production_version: i32,
    #[serde(default)]
    pub batch_id: Uuid,
    #[serde(default)]
    pub run_kept_pages: bool,
    pub instructions: String,
    pub reasons: Vec<String>,
    /// From `based_on_version` to the suggested text (`new_version` 0: not
    /// saved).
    pub diff: crate::model::InstructionDiff,
    /// How many failing examples were sent.
    pub examples: i64,
    /// "Provider / model" that answered.
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}
