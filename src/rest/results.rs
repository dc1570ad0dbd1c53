//! Ground truth in bulk, analysis (failure patterns, trends, comparing
//! runs) and bulk operations on jobs: thin handlers over
//! `service::ground_truth`, `service::analysis` and `service::bulk_jobs`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use serde::Deserialize;

use super::parse_id;
use crate::error::AppError;
use crate::model::{
    BulkGroundTruthResult, BulkJobsResult, BulkOperation, Comparison, FailurePatterns, Trends,
};
use crate::server::http::{Caller, Json, Query};
use crate::server::service::{analysis, bulk_jobs, ground_truth};
use crate::server::state::AppState;

#[derive(Deserialize, Default, schemars::JsonSchema)]
pub struct PreviewQuery {
    #[serde(default)]
    preview: bool,
}

/// `POST /batches/{id}/ground-truth/bulk-set`: JSON `{rows: [{row_id | row
/// | url, values}], preview?}`, or a CSV body (`text/csv`) with a `row_id`,
/// `row` or `url` column and one column per field (`?preview=true` to only
/// see what would change).
pub async fn bulk_set(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<PreviewQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<BulkGroundTruthResult>, AppError> {
    let batch = parse_id(&id, "Batch")?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("text/csv")
        || content_type.starts_with("text/plain")
        || content_type.starts_with("text/tab-separated-values")
    {
        return Ok(Json(
            ground_truth::bulk_set_file(&state.db, &actor, batch, &body, q.preview).await?,
        ));
    }
    if !content_type.starts_with("application/json") {
        return Err(AppError::InvalidJson(
            "Send JSON (`Content-Type: application/json`) or a CSV file (`Content-Type: text/csv`).".into(),
        ));
    }
    let mut req: ground_truth::BulkSet = serde_json::from_slice(&body).map_err(|e| {
        AppError::InvalidJson(format!("The body is not the JSON this endpoint takes: {e}"))
    })?;
    req.preview |= q.preview;
    Ok(Json(
        ground_truth::bulk_set(&state.db, &actor, batch, req).await?,
    ))
}

/// `POST /batches/{id}/ground-truth/bulk-edit`: set, clear, find and
/// replace, or accept extracted values over chosen rows or jobs, the jobs
/// matching a filter, or the whole batch.
pub async fn bulk_edit(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<ground_truth::BulkEdit>,
) -> Result<Json<BulkGroundTruthResult>, AppError> {
    let batch = parse_id(&id, "Batch")?;
    Ok(Json(
        ground_truth::bulk_edit(&state.db, &actor, batch, body).await?,
    ))
}

/// `GET /executions/{id}/failure-patterns`.
pub async fn failure_patterns(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<FailurePatterns>, AppError> {
    let id = parse_id(&id, "Execution")?;
    Ok(Json(
        analysis::failure_patterns(&state.db, &actor, id).await?,
    ))
}

/// `GET /batches/{id}/trends`: accuracy per field across the batch's runs.
pub async fn trends(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Trends>, AppError> {
    let id = parse_id(&id, "Batch")?;
    Ok(Json(analysis::trends(&state.db, &actor, id).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

/// `GET /executions/compare?a=&b=`.
pub async fn compare(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(q): Query<CompareQuery>,
) -> Result<Json<Comparison>, AppError> {
    let id = |raw: Option<String>, name: &str| -> Result<uuid::Uuid, AppError> {
        let raw = raw.ok_or_else(|| {
            AppError::field(name, format!("Give the execution to compare as `{name}`."))
        })?;
        uuid::Uuid::parse_str(raw.trim())
            .map_err(|_| AppError::field(name, "This is not an execution id."))
    };
    let (a, b) = (id(q.a, "a")?, id(q.b, "b")?);
    Ok(Json(analysis::compare(&state.db, &actor, a, b).await?))
}

/// `POST /jobs/bulk/delete`: finished jobs only (admins).
pub async fn bulk_delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<bulk_jobs::BulkJobs>,
) -> Result<Json<BulkJobsResult>, AppError> {
    Ok(Json(
        bulk_jobs::run(&state.db, &actor, BulkOperation::Delete, body).await?,
    ))
}

/// `POST /jobs/bulk/rerun`: a new execution over the jobs' rows.
pub async fn bulk_rerun(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<bulk_jobs::BulkJobs>,
) -> Result<Json<BulkJobsResult>, AppError> {
    Ok(Json(
        bulk_jobs::run(&state.db, &actor, BulkOperation::Rerun, body).await?,
    ))
}

/// `POST /jobs/bulk/update {state: "cancelled"}`: cancels queued jobs.
pub async fn bulk_update(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<bulk_jobs::BulkJobs>,
) -> Result<Json<BulkJobsResult>, AppError> {
    Ok(Json(
        bulk_jobs::run(&state.db, &actor, BulkOperation::Update, body).await?,
    ))
}

/// `POST /batches/{id}/imports?name=&key=row|row_id|url`.
#[derive(Deserialize, Default, schemars::JsonSchema)]
pub struct ImportQuery {
    /// Said in the run's events and the audit log (e.g. the file's name).
    name: Option<String>,
    /// How each line names its row: `row` (the row number, default),
    /// `row_id` or `url`.
    key: Option<String>,
}

/// Imports values extracted elsewhere as a new execution of agent
/// `imported`, judged like any run: a CSV (`text/csv`) or JSON Lines
/// (`application/x-ndjson`) body, or a multipart `file`.
pub async fn import(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<(axum::http::StatusCode, Json<crate::model::Execution>), AppError> {
    use crate::server::service::imports::{self, ImportKey};
    use axum::extract::FromRequest;
    let batch = parse_id(&id, "Batch")?;
    let key = ImportKey::parse(q.key.as_deref())?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let too_big = || {
        AppError::field(
            "file",
            format!(
                "Import at most {} MB at once.",
                imports::MAX_IMPORT_BYTES / 1024 / 1024
            ),
        )
    };
    let (body, file_name) = if content_type.starts_with("multipart/form-data") {
        let mut form = axum::extract::Multipart::from_request(req, &state)
            .await
            .map_err(|e| AppError::field("file", format!("The form could not be read: {e}")))?;
        let mut found = None;
        while let Some(part) = form
            .next_field()
            .await
            .map_err(|e| AppError::field("file", format!("The form could not be read: {e}")))?
        {
            if part.name() == Some("file") {
                let name = part.file_name().map(str::to_string);
                let bytes = part.bytes().await.map_err(|_| too_big())?;
                found = Some((bytes, name));
                break;
            }
        }
        found.ok_or_else(|| AppError::field("file", "Send the file in a part named file."))?
    } else {
        let bytes = Bytes::from_request(req, &state)
            .await
            .map_err(|_| too_big())?;
        (bytes, None)
    };
    let name = q.name.or(file_name);
    let execution = imports::import(&state.db, &actor, batch, key, name.as_deref(), &body).await?;
    Ok((axum::http::StatusCode::CREATED, Json(execution)))
}
