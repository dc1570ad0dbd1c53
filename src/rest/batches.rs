//! Batch upload (a `text/csv` body or a multipart form), preview, reading
//! and managing batches.

use std::collections::HashMap;
use std::fmt::Display;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::parse_id;
use super::projects::PageQuery;
use crate::error::AppError;
use crate::model::{Batch, BatchRow, BatchSummary, CsvReport, Page, ValueType};
use crate::server::http::{Caller, Json, Query};
use crate::server::ingest::{too_large, ReadOptions, MAX_FILE_BYTES};
use crate::server::service::batches::{self, Chunk, UploadMeta};
use crate::server::service::paging::parse_limit;
use crate::server::state::AppState;

/// Upload options in the query string. `types` is a JSON object of column
/// name to type, e.g. `{"gt_price":"number"}`.
#[derive(Deserialize, Default, schemars::JsonSchema)]
pub struct UploadQuery {
    name: Option<String>,
    url_column: Option<String>,
    types: Option<String>,
    /// The uploaded file's name, shown on the batch page (a multipart
    /// upload names it in its `file` part instead).
    file_name: Option<String>,
    #[serde(default)]
    skip_invalid_urls: bool,
    /// Preview only: the body is the start of a larger file.
    #[serde(default)]
    partial: bool,
}

fn parse_types(raw: &str) -> Result<HashMap<String, ValueType>, AppError> {
    let map: HashMap<String, String> = serde_json::from_str(raw).map_err(|_| {
        AppError::field(
            "types",
            "Give types as a JSON object of column name to type, e.g. {\"gt_price\":\"number\"}.",
        )
    })?;
    map.into_iter()
        .map(|(col, t)| match ValueType::parse(&t) {
            Some(t) => Ok((col, t)),
            None => Err(AppError::field(
                "types",
                format!("{t:?} is not a type; use text, number, url, email or date."),
            )),
        })
        .collect()
}

impl UploadQuery {
    fn read_options(&self, truncated: bool) -> Result<ReadOptions, AppError> {
        Ok(ReadOptions {
            url_column: self.url_column.clone().filter(|c| !c.trim().is_empty()),
            types: self
                .types
                .as_deref()
                .map(parse_types)
                .transpose()?
                .unwrap_or_default(),
            skip_invalid_urls: self.skip_invalid_urls,
            truncated,
            separators: Default::default(),
        })
    }
}

fn interrupted() -> AppError {
    AppError::field(
        "file",
        "The upload stopped before the end of the file; nothing was saved.",
    )
}

/// Sends a body stream to the reader, counting bytes against the limit.
/// When the reader has stopped (it found a problem) the rest is still read
/// and dropped, so the client gets the answer rather than a reset
/// connection mid-upload.
async fn pump<S, E>(
    stream: S,
    tx: &mpsc::Sender<Chunk>,
    total: &mut u64,
    reader_gone: &mut bool,
) -> Result<(), AppError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Display,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::info!(error = %e, "upload body ended early");
            interrupted()
        })?;
        *total += chunk.len() as u64;
        if *total > MAX_FILE_BYTES {
            return Err(too_large());
        }
        if !*reader_gone && tx.send(Chunk::Data(chunk)).await.is_err() {
            *reader_gone = true;
        }
    }
    Ok(())
}

/// Where the file is in the request.
enum Source {
    Body(Body),
    Multipart(Multipart),
}

async fn source(headers: &HeaderMap, req: Request, state: &AppState) -> Result<Source, AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        // Multipart adds a little framing around the file.
        if len > MAX_FILE_BYTES + 64 * 1024 {
            return Err(too_large());
        }
    }
    if content_type.starts_with("multipart/form-data") {
        let m = Multipart::from_request(req, state).await.map_err(|e| {
            AppError::field(
                "file",
                format!("The form could not be read: {}", e.body_text()),
            )
        })?;
        return Ok(Source::Multipart(m));
    }
    if content_type.starts_with("application/json")
        || content_type.starts_with("application/x-www-form-urlencoded")
    {
        return Err(AppError::field(
            "file",
            "Send the CSV as the request body (Content-Type: text/csv) or as the `file` part of a multipart form.",
        ));
    }
    Ok(Source::Body(req.into_body()))
}

/// Feeds the request's file to `task` (which reads from the channel) and
/// returns what the task answers.
async fn run<T>(
    source: Source,
    meta: &mut UploadMeta,
    start: impl FnOnce(
        UploadMeta,
        mpsc::Receiver<Chunk>,
    ) -> tokio::task::JoinHandle<Result<T, AppError>>,
) -> Result<T, AppError> {
    let (tx, rx) = mpsc::channel(16);
    let mut total = 0u64;
    let mut reader_gone = false;
    let (task, pumped) = match source {
        Source::Body(body) => {
            let task = start(meta.clone(), rx);
            let pumped = pump(body.into_data_stream(), &tx, &mut total, &mut reader_gone).await;
            (task, pumped.map(|()| None))
        }
        Source::Multipart(mut form) => {
            let mut task = None;
            let mut start = Some(start);
            let mut late_name = None;
            let mut rx = Some(rx);
            let pumped: Result<(), AppError> = async {
                while let Some(field) = form.next_field().await.map_err(|e| {
                    AppError::field(
                        "file",
                        format!("The form could not be read: {}", e.body_text()),
                    )
                })? {
                    let part = field.name().unwrap_or("").to_string();
                    match part.as_str() {
                        "file" if task.is_none() => {
                            meta.file_name = field.file_name().map(str::to_string);
                            let (start, rx) = (start.take(), rx.take());
                            task = start.zip(rx).map(|(start, rx)| start(meta.clone(), rx));
                            pump(field, &tx, &mut total, &mut reader_gone).await?;
                        }
                        "name" | "url_column" | "types" | "skip_invalid_urls" => {
                            let value = field.text().await.map_err(|_| interrupted())?;
                            if task.is_some() {
                                // After the file only the name can still apply.
                                if part == "name" {
                                    late_name = Some(value);
                                }
                                continue;
                            }
                            match part.as_str() {
                                "name" => meta.name = Some(value),
                                "url_column" => {
                                    meta.options.url_column =
                                        Some(value).filter(|v| !v.trim().is_empty())
                                }
                                "types" if !value.trim().is_empty() => {
                                    meta.options.types = parse_types(&value)?
                                }
                                "skip_invalid_urls" => {
                                    meta.options.skip_invalid_urls =
                                        matches!(value.trim(), "true" | "1" | "on")
                                }
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            .await;
            let Some(task) = task else {
                pumped?;
                return Err(AppError::field(
                    "file",
                    "The form has no `file` part holding the CSV.",
                ));
            };
            (task, pumped.map(|()| late_name))
        }
    };
    let pumped = match pumped {
        Ok(name) => {
            let _ = tx.send(Chunk::End { name }).await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    drop(tx);
    let outcome = task
        .await
        .map_err(|e| AppError::internal("upload task", &e))?;
    match pumped {
        // The reader stopped first: its problem is the one to report.
        Err(e) if !reader_gone => Err(e),
        _ => outcome,
    }
}

pub async fn upload(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    req: Request,
) -> Result<(StatusCode, Json<Batch>), AppError> {
    let project_id = parse_id(&id, "Project")?;
    let ctx = batches::upload_ctx(&state.db, &actor, project_id).await?;
    let mut meta = UploadMeta {
        name: q.name.clone(),
        file_name: q.file_name.clone(),
        options: q.read_options(false)?,
    };
    let source = source(&headers, req, &state).await?;
    let db = state.db.clone();
    let batch = run(source, &mut meta, move |meta, rx| {
        tokio::spawn(crate::server::service::audit::carry_request(
            batches::ingest(db, ctx, project_id, meta, rx),
        ))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(batch)))
}

pub async fn preview(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    req: Request,
) -> Result<Json<CsvReport>, AppError> {
    let project_id = parse_id(&id, "Project")?;
    batches::upload_ctx(&state.db, &actor, project_id).await?;
    let mut meta = UploadMeta {
        options: q.read_options(q.partial)?,
        ..Default::default()
    };
    let source = source(&headers, req, &state).await?;
    let report = run(source, &mut meta, |meta, rx| {
        tokio::spawn(batches::preview(rx, meta.options))
    })
    .await?;
    Ok(Json(report))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<BatchSummary>>, AppError> {
    let id = parse_id(&id, "Project")?;
    let limit = parse_limit(q.limit, 50, 200)?;
    Ok(Json(
        batches::list(&state.db, &actor, id, q.cursor.as_deref(), limit).await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Batch>, AppError> {
    let id = parse_id(&id, "Batch")?;
    Ok(Json(batches::get(&state.db, &actor, id).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    name: String,
}

pub async fn rename(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<RenameBody>,
) -> Result<Json<Batch>, AppError> {
    let id = parse_id(&id, "Batch")?;
    Ok(Json(
        batches::rename(&state.db, &actor, id, &body.name).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id: Uuid = parse_id(&id, "Batch")?;
    batches::delete(&state.db, &actor, id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RowsQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn rows(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<RowsQuery>,
) -> Result<Json<Page<BatchRow>>, AppError> {
    let id = parse_id(&id, "Batch")?;
    let limit = parse_limit(q.limit, 50, 500)?;
    Ok(Json(
        batches::rows(
            &state.db,
            &actor,
            id,
            q.q.as_deref(),
            q.cursor.as_deref(),
            limit,
        )
        .await?,
    ))
}

// --- evaluation sets ------------------------------------------------------

use crate::model::EvaluationSet;
use crate::server::service::evaluation_sets::{self, NewSet};

/// The latest version of each of the batch's evaluation sets.
pub async fn evaluation_sets(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<EvaluationSet>>, AppError> {
    let id = parse_id(&id, "Batch")?;
    Ok(Json(evaluation_sets::list(&state.db, &actor, id).await?))
}

pub async fn create_evaluation_set(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<NewSet>,
) -> Result<(StatusCode, Json<EvaluationSet>), AppError> {
    let id = parse_id(&id, "Batch")?;
    let set = evaluation_sets::create(&state.db, &actor, id, body).await?;
    Ok((StatusCode::CREATED, Json(set)))
}

pub async fn evaluation_set(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<EvaluationSet>, AppError> {
    let id = parse_id(&id, "Evaluation set")?;
    Ok(Json(evaluation_sets::get(&state.db, &actor, id).await?))
}

pub async fn delete_evaluation_set(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = parse_id(&id, "Evaluation set")?;
    evaluation_sets::delete(&state.db, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
