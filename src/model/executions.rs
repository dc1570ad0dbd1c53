//! Executions: an agent run over a batch, its live picture and its metrics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AgentKind, Extractor, Role};

text_enum! {
    /// Where an execution is. Active: queued, running, paused (no new
    /// jobs start), stopping (queued jobs cancelled, running ones ending);
    /// then completed, failed or cancelled.
    pub enum ExecutionState {
        Queued = "queued",
        Running = "running",
        Paused = "paused",
        Stopping = "stopping",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl ExecutionState {
    pub const ACTIVE: &'static [ExecutionState] = &[
        ExecutionState::Queued,
        ExecutionState::Running,
        ExecutionState::Paused,
        ExecutionState::Stopping,
    ];

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }
}

text_enum! {
    /// A test runs a sample of the batch's rows; production runs them all.
    pub enum ExecutionMode {
        Test = "test",
        Production = "production",
    }
}

text_enum! {
    /// What a user may do to a running execution.
    pub enum ControlAction {
        Pause = "pause",
        Resume = "resume",
        Stop = "stop",
    }
}

impl ControlAction {
    /// The states it applies to, and the state it leads to.
    pub fn transition(self) -> (&'static [ExecutionState], ExecutionState) {
        use ExecutionState::*;
        match self {
            ControlAction::Pause => (&[Running, Queued], Paused),
            ControlAction::Resume => (&[Paused], Running),
            ControlAction::Stop => (&[Running, Queued, Paused], Stopping),
        }
    }
}

/// How many jobs of one execution run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Concurrency(i32);

impl Concurrency {
    pub const MIN: i32 = 1;
    /// The most any organization's plan may allow.
    pub const MAX: i32 = 1000;
    pub const DEFAULT: Concurrency = Concurrency(10);

    /// A concurrency from 1 to `limit` (the organization's plan limit), or
    /// the sentence that says which range.
    pub fn parse(n: i32, limit: i32) -> Result<Concurrency, String> {
        if (Self::MIN..=limit).contains(&n) {
            Ok(Concurrency(n))
        } else {
            Err(format!(
                "Use a concurrency from {} to {limit} (your organization's plan limit).",
                Self::MIN
            ))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl Default for Concurrency {
    fn default() -> Self {
        Self::DEFAULT
    }
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
    pub mode: ExecutionMode,
    pub sample_size: Option<i32>,
    pub instruction_version: i32,
    /// The project version the run used (its instructions, field rules and
    /// agent settings); the same number as `instruction_version`.
    #[serde(default)]
    pub version: i32,
    pub agent: AgentKind,
    pub concurrency: i32,
    pub max_retries: i32,
    pub state: ExecutionState,
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
    /// Jobs × the expected cost of a job: the flat price per job, or for
    /// llm runs the tokens per job a test run measured at the model's prices.
    pub estimated_cost_micros: i64,
    /// An llm run started before any test run measured its tokens: the
    /// estimate is only the flat price per job.
    #[serde(default)]
    pub cost_unknown: bool,
    pub cost_micros: i64,
    /// The actual cost in currency units: the sum of the attempts' costs.
    #[serde(default)]
    pub cost: f64,
    /// Model tokens of every attempt (llm extractor).
    #[serde(default)]
    pub tokens: TokenCounts,
    /// The execution whose jobs this one runs again.
    pub rerun_of: Option<Uuid>,
    /// The experiment this run is a variant of.
    #[serde(default)]
    pub experiment_id: Option<Uuid>,
    /// How values were read (none for a remote agent, which reads them
    /// itself).
    pub extractor: Option<Extractor>,
    /// A snapshot run: the execution whose kept pages it read.
    pub pages_from: Option<Uuid>,
    /// Whether its attempts keep their pages (test runs, and production
    /// runs of projects that ask), so a snapshot run can re-read them.
    pub keeps_pages: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub role: Option<Role>,
}

impl Execution {
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }
    pub fn can_control(&self) -> bool {
        self.role.is_none_or(|r| r >= Role::Member)
    }
}

/// Model tokens, by direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct TokenCounts {
    pub input: i64,
    pub output: i64,
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
    /// Jobs that failed an attempt and wait out a back-off (a 429's
    /// Retry-After, a timeout) before they are tried again.
    #[serde(default)]
    pub waiting_retry: Option<RetryWait>,
}

/// Queued jobs waiting for their next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RetryWait {
    pub jobs: i64,
    /// When the last of them may be tried again.
    pub until: DateTime<Utc>,
    /// The error that made the latest of them wait.
    pub reason: Option<String>,
}

/// Most running jobs a live snapshot lists (the first by id).
pub const LIVE_RUNNING_JOBS: usize = 50;

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
    /// The address the agent said it was at with that step (after
    /// redirects it may differ from `url`).
    #[serde(default)]
    pub current_url: Option<String>,
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
    /// 95% bootstrap interval of `accuracy`, `[low, high]` (1,000 resamples
    /// of the run's jobs with a fixed seed: the same run, the same figures).
    #[serde(default)]
    pub accuracy_interval: Option<[f64; 2]>,
    /// Jobs per verdict: pass, partial, fail, no_ground_truth, error.
    pub verdicts: BTreeMap<String, i64>,
    /// Per output field, over the jobs where it had an expected value.
    pub fields: Vec<FieldAccuracy>,
    /// Failed jobs per error class (timeout, http_4xx, …).
    pub errors_by_class: BTreeMap<String, i64>,
    pub cost_micros: i64,
    pub duration_secs: Option<i64>,
}

/// One field's figures over a run's judged jobs (see the README's
/// "How runs are scored").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldAccuracy {
    pub field: String,
    /// Jobs judged on this field.
    pub compared: i64,
    pub passed: i64,
    /// passed / compared.
    pub accuracy: f64,
    /// tp / (tp + fp); 1 when fp = fn = 0, 0 when tp = fp = 0. For text
    /// similarity, the mean of the rows' precisions over rows with tp+fp > 0.
    pub precision: f64,
    /// tp / (tp + fn); 1 when fp = fn = 0, 0 when tp = fn = 0. For text
    /// similarity, the mean of the rows' recalls over rows with tp+fn > 0.
    pub recall: f64,
    /// The harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// True positives: a non-empty extracted value that passes (for text
    /// similarity, the sum of the rows' normalized shares, as for fp and fn).
    pub tp: f64,
    /// False positives: a non-empty extracted value that does not pass.
    pub fp: f64,
    /// False negatives: an expected value not matched (nothing extracted,
    /// or a wrong value).
    #[serde(rename = "fn")]
    pub fn_: f64,
    /// 95% bootstrap interval of the accuracy, `[low, high]` (1,000
    /// resamples of the run's jobs, fixed seed); null with nothing judged.
    pub accuracy_interval: Option<[f64; 2]>,
    /// 95% bootstrap interval of F1, as for accuracy.
    pub f1_interval: Option<[f64; 2]>,
}

/// A run as people tell runs apart: mode, instruction version and when it
/// was started ("Test run v2 · 2026-12-06 14:03"; a rerun says so).
pub fn run_label(
    mode: ExecutionMode,
    version: i32,
    created_at: DateTime<Utc>,
    rerun: bool,
) -> String {
    let kind = match (rerun, mode) {
        (false, ExecutionMode::Test) => "Test run",
        (false, ExecutionMode::Production) => "Production run",
        (true, ExecutionMode::Test) => "Rerun (test)",
        (true, ExecutionMode::Production) => "Rerun",
    };
    format!(
        "{kind} v{version} · {} UTC",
        created_at.format("%Y-%m-%d %H:%M")
    )
}

impl Execution {
    /// See [`run_label`].
    pub fn label(&self) -> String {
        run_label(
            self.mode,
            self.instruction_version,
            self.created_at,
            self.rerun_of.is_some(),
        )
    }
}

/// How much of a run is done, as a label: whole percents, rounded down,
/// so an unfinished run never reads 100% (199 of 200 is 99%, not 100%).
pub fn percent_label(done: i64, total: i64) -> String {
    if total <= 0 {
        return "0%".into();
    }
    let pct = (done.clamp(0, total) * 100) / total;
    format!("{pct}%")
}

/// A count with thousands separators: `1,000`, `-12,345`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// "91.2% ± 1.8": a share in percent with half its interval's width in
/// percentage points.
pub fn percent_with_interval(value: f64, interval: Option<[f64; 2]>) -> String {
    match interval {
        Some([lo, hi]) => format!("{:.1}% ± {:.1}", value * 100.0, (hi - lo) * 50.0),
        None => format!("{:.1}%", value * 100.0),
    }
}

/// The interval said in words, for a tooltip.
pub fn interval_title(interval: Option<[f64; 2]>) -> String {
    match interval {
        Some([lo, hi]) => format!(
            "95% interval {lo:.3} to {hi:.3} (bootstrap: 1,000 resamples of the run's jobs)"
        ),
        None => "Nothing judged yet".into(),
    }
}

/// "0.912 ± 0.018": a figure with half its interval's width.
pub fn with_interval(value: f64, interval: Option<[f64; 2]>) -> String {
    match interval {
        Some([lo, hi]) => format!("{value:.3} ± {:.3}", (hi - lo) / 2.0),
        None => format!("{value:.3}"),
    }
}

#[cfg(test)]
mod format_tests {
    use super::{percent_label, thousands};

    #[test]
    fn an_unfinished_run_never_reads_a_hundred_percent() {
        assert_eq!(percent_label(199, 200), "99%");
        assert_eq!(percent_label(999_999, 1_000_000), "99%");
        assert_eq!(percent_label(200, 200), "100%");
        assert_eq!(percent_label(1, 200), "0%");
        assert_eq!(percent_label(0, 0), "0%");
    }

    #[test]
    fn counts_get_thousands_separators() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (10_000_051, "10,000,051"),
            (-12_345, "-12,345"),
            (i64::MIN, "-9,223,372,036,854,775,808"),
        ] {
            assert_eq!(thousands(n), s);
        }
    }
}
