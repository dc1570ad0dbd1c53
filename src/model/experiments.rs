//! Experiments: variants of a project's run configuration side by side on
//! exactly the same rows, with a matrix of their figures, pairwise
//! significance and a per-row grid.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AgentKind, Execution, Extractor, FieldAccuracy, RouteEntry, Verdict};

/// Fewest and most variants an experiment compares.
pub const EXPERIMENT_VARIANTS: std::ops::RangeInclusive<usize> = 2..=6;

/// Most rows an experiment runs each variant over.
pub const MAX_EXPERIMENT_ROWS: usize = 50_000;

/// A variant's label: A for the first, B for the second…
pub fn variant_label(position: i32) -> String {
    char::from(b'A' + (position.clamp(1, 26) - 1) as u8).to_string()
}

/// An experiment in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ExperimentSummary {
    pub id: Uuid,
    pub project_id: Uuid,
    pub batch_id: Uuid,
    pub batch_name: String,
    pub name: String,
    /// running, paused, completed or stopped (some variant was stopped).
    pub state: String,
    pub rows: i32,
    pub variants: i32,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub promoted_variant: Option<i32>,
}

/// One experiment whole: its variants' figures and how each pair differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Experiment {
    pub id: Uuid,
    pub project_id: Uuid,
    pub project_name: String,
    pub batch_id: Uuid,
    pub batch_name: String,
    pub org_slug: String,
    pub name: String,
    pub state: String,
    /// How the rows were chosen, as asked.
    pub row_choice: serde_json::Value,
    /// How many rows each variant runs.
    pub rows: i32,
    /// The run whose kept pages every variant reads, when they read pages.
    pub pages_from: Option<Uuid>,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub promoted_variant: Option<i32>,
    pub promoted_at: Option<DateTime<Utc>>,
    /// The project's production version now.
    pub production_version: i32,
    /// Every field any variant judged, in name order (the matrix's columns).
    pub fields: Vec<String>,
    pub variants: Vec<ExperimentVariant>,
    /// Every pair of variants (a before b), how rows moved between them.
    pub pairs: Vec<VariantPair>,
    /// Whether the viewer may pause, stop or promote.
    pub can_run: bool,
    pub can_promote: bool,
}

impl Experiment {
    pub fn is_active(&self) -> bool {
        self.finished_at.is_none()
    }
}

/// One variant: what it runs and how it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ExperimentVariant {
    /// 1, 2, … (shown as `label`).
    pub position: i32,
    pub label: String,
    pub version: i32,
    /// The source, extractor and model route it ran with; `overrides` names
    /// those that differ from its version's own.
    pub agent: AgentKind,
    pub extractor: Extractor,
    pub model_route: Vec<RouteEntry>,
    pub overrides: Vec<String>,
    pub execution: Execution,
    pub accuracy_interval: Option<[f64; 2]>,
    pub fields: Vec<FieldAccuracy>,
    /// Job latency (start to end of the job, retries included), in ms.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

/// Two variants compared on the rows both judged: rows fixed (better in
/// `b`), regressed (worse in `b`), and McNemar's exact test on the rows that
/// pass in only one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct VariantPair {
    pub a: i32,
    pub b: i32,
    pub judged_in_both: i64,
    pub fixed: i64,
    pub regressed: i64,
    pub passes_only_a: i64,
    pub passes_only_b: i64,
    pub p_value: f64,
    /// p below 0.05: the difference is beyond noise.
    pub significant: bool,
}

/// One row of the per-row grid: every variant's values against the
/// expected ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ExperimentRow {
    pub row_index: i32,
    pub url: String,
    pub expected: BTreeMap<String, Option<String>>,
    /// The variants' verdicts or values differ on this row.
    pub disagree: bool,
    pub cells: Vec<VariantCell>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct VariantCell {
    pub position: i32,
    pub job_id: i64,
    pub state: String,
    pub verdict: Option<Verdict>,
    pub values: BTreeMap<String, Option<String>>,
}

/// A page of the per-row grid, disagreements first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ExperimentRows {
    pub total: i64,
    pub disagreements: i64,
    pub offset: i64,
    pub items: Vec<ExperimentRow>,
}
