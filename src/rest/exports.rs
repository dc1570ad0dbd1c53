//! Exports: `POST /executions/{id}/export` and `POST /batches/{id}/export`
//! answer with the file itself, streamed; the history and re-downloads.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::parse_id;
use crate::error::AppError;
use crate::model::{Export, Page};
use crate::server::http::{Caller, Json, Query};
use crate::server::service::exports;
use crate::server::state::AppState;

/// The file as an attachment, its bytes from `rx`.
fn file_response(
    e: &Export,
    rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
) -> Response {
    let mut res = crate::server::http::channel_body(rx).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(exports::content_type(&e.format)),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        exports::file_name(e)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&e.id.to_string()) {
        h.insert("x-mino-export-id", v);
    }
    h.insert("x-mino-export-rows", HeaderValue::from(e.total_rows));
    res
}

/// `POST /executions/{id}/export {format, columns?, filters?}` → the file.
pub async fn export_execution(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<exports::ExportRequest>,
) -> Result<Response, AppError> {
    let id = parse_id(&id, "Execution")?;
    let plan = exports::plan(&state.db, &actor, id, body, &state.config.data_dir).await?;
    let export = plan.export.clone();
    Ok(file_response(
        &export,
        exports::stream(state.db.clone(), plan),
    ))
}

/// `POST /batches/{id}/export`: the batch's latest run, like the above.
pub async fn export_batch(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<exports::ExportRequest>,
) -> Result<Response, AppError> {
    let id = parse_id(&id, "Batch")?;
    let plan = exports::plan_for_batch(&state.db, &actor, id, body, &state.config.data_dir).await?;
    let export = plan.export.clone();
    Ok(file_response(
        &export,
        exports::stream(state.db.clone(), plan),
    ))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `GET /batches/{id}/exports`: the history, newest first.
pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Export>>, AppError> {
    let id = parse_id(&id, "Batch")?;
    Ok(Json(
        exports::list_for_batch(&state.db, &actor, id, q.cursor.as_deref(), q.limit).await?,
    ))
}

/// `GET /exports/{id}`: one export, with its progress.
pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Export>, AppError> {
    let id = parse_id(&id, "Export")?;
    Ok(Json(exports::get(&state.db, &actor, id).await?))
}

/// `GET /exports/{id}/download`: the kept file.
pub async fn download(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_id(&id, "Export")?;
    let (export, path) = exports::open(&state.db, &actor, id, &state.config.data_dir).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        if let Err(e) = exports::send_file(&path, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok(file_response(&export, rx))
}
