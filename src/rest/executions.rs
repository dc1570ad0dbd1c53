//! `/api/v1` for executions and their jobs: start, list, read, pause,
//! resume, stop, change concurrency, rerun, the live event stream, metrics,
//! the job list and one job, and a row's expected values (edit, history).
//! Handlers parse the request and call `service::executions`, `jobs` and
//! `ground_truth`; the service checks the caller.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::parse_id;
use crate::error::AppError;
use crate::model::{ControlAction, Execution, Page};
use crate::server::http::{Caller, Json};
use crate::server::service::executions::{self, RerunRequest, StartRequest};
use crate::server::state::AppState;

pub async fn start(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<StartRequest>,
) -> Result<(StatusCode, Json<Execution>), AppError> {
    let batch = parse_id(&id, "Batch")?;
    let e = executions::start(&state.db, &actor, batch, body).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Page<Execution>>, AppError> {
    let batch = parse_id(&id, "Batch")?;
    Ok(Json(
        executions::list_for_batch(&state.db, &actor, batch).await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Execution>, AppError> {
    let id = parse_id(&id, "Execution")?;
    Ok(Json(executions::get(&state.db, &actor, id).await?))
}

async fn control(
    state: AppState,
    actor: crate::server::auth::rbac::Actor,
    id: String,
    action: ControlAction,
) -> Result<Json<Execution>, AppError> {
    let id = parse_id(&id, "Execution")?;
    Ok(Json(
        executions::control(&state.db, &actor, id, action).await?,
    ))
}

pub async fn pause(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Execution>, AppError> {
    control(state, actor, id, ControlAction::Pause).await
}

pub async fn resume(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Execution>, AppError> {
    control(state, actor, id, ControlAction::Resume).await
}

pub async fn stop(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Execution>, AppError> {
    control(state, actor, id, ControlAction::Stop).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyBody {
    concurrency: i32,
}

pub async fn set_concurrency(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<ConcurrencyBody>,
) -> Result<Json<Execution>, AppError> {
    let id = parse_id(&id, "Execution")?;
    Ok(Json(
        executions::set_concurrency(&state.db, &actor, id, body.concurrency).await?,
    ))
}

/// Runs failed (or chosen) jobs again as a new execution.
pub async fn rerun(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<RerunRequest>,
) -> Result<(StatusCode, Json<Execution>), AppError> {
    let id = parse_id(&id, "Execution")?;
    let e = executions::rerun(&state.db, &actor, id, body).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// Asks the project's model for better instructions from this run's
/// failures; nothing is saved.
pub async fn suggest_instructions(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::model::InstructionSuggestion>, AppError> {
    let id = parse_id(&id, "Execution")?;
    Ok(Json(
        crate::server::service::suggestions::suggest(&state.db, &actor, id).await?,
    ))
}

/// `GET /executions/{id}/events`: server-sent events, one complete snapshot
/// per event (`id` = its sequence number), the current one at once — so a
/// client reconnecting with `Last-Event-ID` is up to date immediately —
/// then one whenever the execution moves (coalesced to at most 10 a
/// second), heartbeat comments every 15 s, and a last snapshot with
/// `"last": true` (event `end`) when the execution ends.
pub async fn events(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    AppError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};

    let id = parse_id(&id, "Execution")?;
    // The same checks as reading the execution: 401, or 404 across tenants.
    executions::get(&state.db, &actor, id).await?;
    let latest = state.watchers.subscribe(id);
    let stream = futures_util::stream::unfold(
        (latest, 0u64, false),
        |(mut latest, sent, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let current = latest.borrow_and_update().clone();
                if let Some(snap) = current.filter(|s| s.seq > sent) {
                    let event = Event::default()
                        .id(snap.seq.to_string())
                        .event(if snap.last { "end" } else { "snapshot" })
                        .json_data(&*snap)
                        .unwrap_or_else(|_| Event::default().comment("unserializable"));
                    return Some((Ok(event), (latest, snap.seq, snap.last)));
                }
                // The watcher ended without a final snapshot (the execution
                // was deleted): close.
                if latest.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))))
}

/// Accuracy overall and per field, verdict counts, errors by class.
pub async fn metrics(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::model::ExecutionMetrics>, AppError> {
    let id = parse_id(&id, "Execution")?;
    Ok(Json(executions::metrics(&state.db, &actor, id).await?))
}

/// An execution's jobs, filtered (`status`, `evaluation`,
/// `has_ground_truth`, `accuracy_min`, `accuracy_max`, `q`) and paged
/// (`cursor`, `limit` up to 200).
pub async fn jobs(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    crate::server::http::Query(filter): crate::server::http::Query<
        crate::server::service::jobs::JobFilter,
    >,
) -> Result<Json<Page<crate::model::JobSummary>>, AppError> {
    let id = parse_id(&id, "Execution")?;
    Ok(Json(
        crate::server::service::jobs::list(&state.db, &actor, id, filter).await?,
    ))
}

/// The JPEG a browser attempt ended on. Cacheable: an attempt's picture
/// never changes once it ended.
pub async fn screenshot(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::NotFound("Screenshot".into()))?;
    let jpeg = crate::server::service::jobs::screenshot(&state.db, &actor, id).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "image/jpeg"),
            (axum::http::header::CACHE_CONTROL, "private, max-age=86400"),
        ],
        jpeg,
    )
        .into_response())
}

/// The page an attempt read its values from, as it was kept. Served as a
/// sandboxed document (a unique origin, no scripts, forms, plugins or
/// frames), so a hostile page can neither run nor read Mino's cookies;
/// its images and styles still load from the site, relative to where the
/// page was read.
pub async fn page(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, AppError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::NotFound("Page".into()))?;
    let html = crate::server::service::jobs::kept_page(&state.db, &actor, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; script-src 'none'; object-src 'none'; frame-src 'none'; \
                 form-action 'none'; connect-src 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "private, max-age=86400"),
        ],
        html,
    )
        .into_response())
}

/// The latest frame of a running browser job (`image/jpeg`, with the
/// time it was taken in `X-Mino-Frame-At`), or 204 before the first one
/// and after the job. Fetching it keeps frames coming for a few seconds:
/// workers take none while nobody watches.
pub async fn live_frame(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, AppError> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::NotFound("Job".into()))?;
    Ok(
        match crate::server::service::jobs::live_frame(&state.db, &actor, id).await? {
            Some(frame) => (
                [
                    (header::CONTENT_TYPE, "image/jpeg".to_string()),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                    (
                        header::HeaderName::from_static("x-mino-frame-at"),
                        frame
                            .taken_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ),
                ],
                frame.jpeg,
            )
                .into_response(),
            None => (
                StatusCode::NO_CONTENT,
                [(header::CACHE_CONTROL, "no-store")],
            )
                .into_response(),
        },
    )
}

/// One job: values, per-field results, attempts with logs, a suggestion.
pub async fn job(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::model::JobDetail>, AppError> {
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::NotFound("Job".into()))?;
    Ok(Json(
        crate::server::service::jobs::get(&state.db, &actor, id).await?,
    ))
}

/// `PATCH /rows/{id}/ground-truth {version, values}`.
pub async fn edit_ground_truth(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<crate::server::service::ground_truth::GroundTruthEdit>,
) -> Result<Json<crate::model::RowGroundTruth>, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound("Row".into()))?;
    Ok(Json(
        crate::server::service::ground_truth::edit(&state.db, &actor, id, body).await?,
    ))
}

/// `GET /rows/{id}/history`: the row's expected-value changes, newest first.
pub async fn ground_truth_history(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::model::GroundTruthChange>>, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound("Row".into()))?;
    Ok(Json(
        crate::server::service::ground_truth::history(&state.db, &actor, id).await?,
    ))
}
