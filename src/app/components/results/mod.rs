//! The results views: the grid of an execution's jobs (`grid`, each
//! expected value a `cell` edited in place with the keyboard; selection and
//! bulk actions with a preview), the failure-pattern and trend `cards`,
//! pasting expected values, and two runs compared (`compare`).

mod cards;
mod cell;
mod compare;
mod grid;

pub use cards::{FailurePatternsCard, PasteGroundTruth, TrendsCard};
pub use compare::CompareWith;
pub use grid::ResultsGrid;

use leptos::prelude::*;
use serde_json::Value;

use crate::api::results::{bulk_ground_truth, bulk_jobs, BulkGroundTruth, BulkJobs};
use crate::error::AppError;
use crate::model::BulkGroundTruthResult;

/// A value as the grid shows it (several acceptable expected values
/// joined by " | "); None when empty.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    crate::model::expected_text(v?).filter(|s| !s.is_empty())
}

pub fn plural(n: i64, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// The tabs of the grid: (query value, label). Each count on the run
/// page's header links to the tab holding exactly those jobs; tabs with no
/// jobs are hidden (the last two are reached by link or the API).
pub const TABS: &[(&str, &str)] = &[
    ("", "All"),
    ("pass", "Passed"),
    ("wrong", "With wrong fields"),
    ("failed", "Errors"),
    ("queued", "Queued"),
    ("running", "Running"),
    ("completed", "Completed"),
    ("cancelled", "Cancelled"),
    ("partial", "Some fields wrong"),
    ("fail", "Every field wrong"),
];

/// How many jobs a tab holds, from the run's live counts (None: not
/// counted live).
pub fn tab_count(tab: &str, e: &crate::model::Execution) -> Option<i64> {
    Some(match tab {
        "" => e.total,
        "pass" => e.passed,
        "wrong" => e.failed,
        "failed" => e.errors,
        "queued" => e.queued,
        "running" => e.running,
        "completed" => e.completed,
        "cancelled" => e.cancelled,
        _ => return None,
    })
}

/// The grid's orders: run order, or the jobs most worth a look first.
pub(super) const SORTS: &[(&str, &str)] =
    &[("", "Run order"), ("accuracy", "Lowest accuracy first")];

/// A tab's list filter: (status, evaluation).
pub fn filter_of(tab: Option<&str>) -> (Option<String>, Option<String>) {
    match tab {
        Some(v @ ("failed" | "queued" | "running" | "completed" | "cancelled")) => {
            (Some(v.to_string()), None)
        }
        Some(v @ ("pass" | "wrong" | "partial" | "fail")) => (None, Some(v.to_string())),
        _ => (None, None),
    }
}

/// What a bulk action will do, shown for confirmation.
#[derive(Clone)]
pub(super) struct Pending {
    /// The sentence asking for confirmation.
    question: String,
    samples: Vec<crate::model::GroundTruthSample>,
    /// Runs the action for real.
    apply: Callback<()>,
    danger: bool,
}

/// Calls the server function with its arguments gathered in one value (so
/// a preview and its confirmation send the same ones).
pub(super) async fn send_bulk_ground_truth(
    a: BulkGroundTruth,
) -> Result<BulkGroundTruthResult, AppError> {
    bulk_ground_truth(
        a.batch,
        a.execution,
        a.operation,
        a.field,
        a.value,
        a.find,
        a.replace,
        a.job_ids,
        a.all_matching,
        a.status,
        a.evaluation,
        a.preview,
    )
    .await
}

pub(super) async fn send_bulk_jobs(a: BulkJobs) -> Result<crate::model::BulkJobsResult, AppError> {
    bulk_jobs(
        a.execution,
        a.action,
        a.job_ids,
        a.all_matching,
        a.status,
        a.evaluation,
        a.preview,
    )
    .await
}

pub fn use_slug_for_links() -> String {
    let params = leptos_router::hooks::use_params_map();
    params.read_untracked().get("slug").unwrap_or_default()
}

pub(super) fn done_message(r: &BulkGroundTruthResult) -> String {
    format!(
        "Changed {} in {}; {} judged again.",
        plural(r.values_changed, "expected value"),
        plural(r.rows_changed, "row"),
        plural(r.reevaluated_jobs, "job")
    )
}
