//! Server functions for the results views: bulk ground truth, failure
//! patterns, trends, comparing runs and bulk job operations.
// A server function's arguments are its form's fields; the client side the
// macro generates can't carry a per-function allow.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{BulkGroundTruthResult, BulkJobsResult, Comparison, FailurePatterns, Trends};

/// Job ids as the page sends them: comma-separated.
#[cfg(feature = "ssr")]
fn parse_ids(raw: &str) -> Result<Option<Vec<i64>>, AppError> {
    let ids: Result<Vec<i64>, _> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect();
    let ids = ids.map_err(|_| AppError::field("job_ids", "Choose jobs from the list."))?;
    Ok((!ids.is_empty()).then_some(ids))
}

/// A bulk change of expected values from the results grid: `operation`
/// set, clear, replace or accept_extracted, over the chosen jobs' rows
/// (`job_ids`) or, with `all_matching`, every job of `execution` that
/// matches the list's filter (`status`, `evaluation`).
#[server(prefix = "/rpc", endpoint = "bulk_ground_truth")]
pub async fn bulk_ground_truth(
    batch: Uuid,
    execution: Uuid,
    operation: String,
    field: Option<String>,
    value: Option<String>,
    find: Option<String>,
    replace: Option<String>,
    job_ids: String,
    all_matching: bool,
    status: Option<String>,
    evaluation: Option<String>,
    preview: bool,
) -> Result<BulkGroundTruthResult, AppError> {
    use crate::server::rpc;
    use crate::server::service::{ground_truth, jobs::JobFilter};
    let (state, actor) = rpc::user().await?;
    let ids = parse_ids(&job_ids)?;
    let (job_ids, execution_id, filter) = if all_matching {
        (
            None,
            Some(execution),
            Some(JobFilter {
                status: status.filter(|s| !s.is_empty()),
                evaluation: evaluation.filter(|s| !s.is_empty()),
                ..Default::default()
            }),
        )
    } else {
        let ids = ids.ok_or_else(|| AppError::field("job_ids", "Select at least one job."))?;
        (Some(ids), None, None)
    };
    let req = ground_truth::BulkEdit {
        operation,
        field: field.filter(|f| !f.is_empty()),
        value,
        find,
        replace,
        row_ids: None,
        job_ids,
        execution_id,
        filter,
        preview,
    };
    ground_truth::bulk_edit(&state.db, &actor, batch, req).await
}

/// Expected values for one field pasted as two columns (row or URL, value).
#[server(prefix = "/rpc", endpoint = "paste_ground_truth")]
pub async fn paste_ground_truth(
    batch: Uuid,
    field: String,
    text: String,
    preview: bool,
) -> Result<BulkGroundTruthResult, AppError> {
    use crate::server::rpc;
    use crate::server::service::ground_truth;
    let (state, actor) = rpc::user().await?;
    if field.trim().is_empty() {
        return Err(AppError::field(
            "field",
            "Choose the field the values are for.",
        ));
    }
    let rows = ground_truth::parse_pasted(&text, field.trim())?;
    if rows.is_empty() {
        return Err(AppError::field(
            "text",
            "Paste at least one line: a row number or URL, a tab, the value.",
        ));
    }
    let req = ground_truth::BulkSet { rows, preview };
    ground_truth::bulk_set(&state.db, &actor, batch, req).await
}

#[server(prefix = "/rpc", endpoint = "get_failure_patterns")]
pub async fn get_failure_patterns(id: Uuid) -> Result<FailurePatterns, AppError> {
    use crate::server::{rpc, service::analysis};
    let (state, actor) = rpc::user().await?;
    analysis::failure_patterns(&state.db, &actor, id).await
}

#[server(prefix = "/rpc", endpoint = "get_trends")]
pub async fn get_trends(batch: Uuid) -> Result<Trends, AppError> {
    use crate::server::{rpc, service::analysis};
    let (state, actor) = rpc::user().await?;
    analysis::trends(&state.db, &actor, batch).await
}

#[server(prefix = "/rpc", endpoint = "compare_executions")]
pub async fn compare_executions(a: Uuid, b: Uuid) -> Result<Comparison, AppError> {
    use crate::server::{rpc, service::analysis};
    let (state, actor) = rpc::user().await?;
    analysis::compare(&state.db, &actor, a, b).await
}

/// Delete, rerun or cancel the chosen jobs (or all matching the filter).
#[server(prefix = "/rpc", endpoint = "bulk_jobs")]
pub async fn bulk_jobs(
    execution: Uuid,
    action: String,
    job_ids: String,
    all_matching: bool,
    status: Option<String>,
    evaluation: Option<String>,
    preview: Option<bool>,
) -> Result<BulkJobsResult, AppError> {
    use crate::server::rpc;
    use crate::server::service::{bulk_jobs, jobs::JobFilter};
    let (state, actor) = rpc::user().await?;
    let req = if all_matching {
        bulk_jobs::BulkJobs {
            execution_id: Some(execution),
            filter: Some(JobFilter {
                status: status.filter(|s| !s.is_empty()),
                evaluation: evaluation.filter(|s| !s.is_empty()),
                ..Default::default()
            }),
            ..Default::default()
        }
    } else {
        bulk_jobs::BulkJobs {
            job_ids: Some(
                parse_ids(&job_ids)?
                    .ok_or_else(|| AppError::field("job_ids", "Select at least one job."))?,
            ),
            ..Default::default()
        }
    };
    let req = bulk_jobs::BulkJobs {
        state: (action == "update").then(|| "cancelled".to_string()),
        preview: preview.unwrap_or(false),
        ..req
    };
    bulk_jobs::run(&state.db, &actor, &action, req).await
}
