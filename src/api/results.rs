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
    let comparison = analysis::compare(&state.db, &actor, a, b).await?;
    // The guide's last step.
    crate::server::service::guide::record(
        &state.db,
        actor.user_id(),
        &comparison.a.org_slug,
        crate::server::service::guide::Seen::Comparison,
    )
    .await?;
    Ok(comparison)
}

/// Delete, rerun or cancel the chosen jobs (or all matching the filter).
#[server(prefix = "/rpc", endpoint = "bulk_jobs")]
pub async fn bulk_jobs(
    execution: Uuid,
    action: crate::model::BulkOperation,
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
        state: (action == crate::model::BulkOperation::Update).then(|| "cancelled".to_string()),
        preview: preview.unwrap_or(false),
        ..req
    };
    bulk_jobs::run(&state.db, &actor, action, req).await
}

/// The columns a run's export offers: (name, in the default selection).
#[server(prefix = "/rpc", endpoint = "export_columns")]
pub async fn export_columns(execution: Uuid) -> Result<Vec<(String, bool)>, AppError> {
    use crate::server::{rpc, service::exports};
    let (state, actor) = rpc::user().await?;
    exports::columns(&state.db, &actor, execution).await
}

/// Starts an export of a run from its page: `columns` comma-separated
/// (empty: the default ones), filtered like the list's tab (`status`,
/// `evaluation`). It runs on in the background; the page follows it with
/// [`get_export`] and offers the download when it is ready.
#[server(prefix = "/rpc", endpoint = "start_export")]
pub async fn start_export(
    execution: Uuid,
    format: String,
    columns: String,
    status: Option<String>,
    evaluation: Option<String>,
) -> Result<crate::model::Export, AppError> {
    use crate::server::rpc;
    use crate::server::service::{exports, jobs::JobFilter};
    let (state, actor) = rpc::user().await?;
    let columns: Vec<String> = columns
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let req = exports::ExportRequest {
        format,
        columns: (!columns.is_empty()).then_some(columns),
        filters: Some(JobFilter {
            status: status.filter(|s| !s.is_empty()),
            evaluation: evaluation.filter(|s| !s.is_empty()),
            ..Default::default()
        }),
    };
    let plan = exports::plan(&state.db, &actor, execution, req, &state.config.data_dir).await?;
    let export = plan.export.clone();
    let db = state.db.clone();
    tokio::spawn(async move {
        // Failures are recorded on the export, where the page shows them.
        let _ = exports::run(db, plan, None).await;
    });
    Ok(export)
}

/// One export, with its progress.
#[server(prefix = "/rpc", endpoint = "get_export")]
pub async fn get_export(id: Uuid) -> Result<crate::model::Export, AppError> {
    use crate::server::{rpc, service::exports};
    let (state, actor) = rpc::user().await?;
    exports::get(&state.db, &actor, id).await
}

/// A batch's export history, newest first (the latest 20).
#[server(prefix = "/rpc", endpoint = "list_exports")]
pub async fn list_exports(
    batch: Uuid,
) -> Result<crate::model::Page<crate::model::Export>, AppError> {
    use crate::server::{rpc, service::exports};
    let (state, actor) = rpc::user().await?;
    exports::list_for_batch(&state.db, &actor, batch, None, None).await
}

/// "Suggest better instructions" on a run page: the project's model reads
/// the run's failures and proposes new instructions (nothing is saved).
#[server(prefix = "/rpc", endpoint = "suggest_instructions")]
pub async fn suggest_instructions(
    id: Uuid,
) -> Result<crate::model::InstructionSuggestion, AppError> {
    use crate::server::{rpc, service::suggestions};
    let (state, actor) = rpc::user().await?;
    suggestions::suggest(&state.db, &actor, id).await
}
