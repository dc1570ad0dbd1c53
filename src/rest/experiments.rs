//! `/api/v1` for experiments: create (every variant starts over the same
//! rows), list a project's, read one with its matrix and pairs, page its
//! per-row grid, pause/resume/stop it, promote a variant. Handlers parse;
//! `service::experiments` checks the caller.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::parse_id;
use crate::error::AppError;
use crate::model::{ControlAction, Experiment, ExperimentRows, ExperimentSummary, Page};
use crate::server::http::{Caller, Json, Query};
use crate::server::service::experiments::{self, NewExperiment};
use crate::server::state::AppState;

pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<NewExperiment>,
) -> Result<(StatusCode, Json<Experiment>), AppError> {
    let project = parse_id(&id, "Project")?;
    let e = experiments::create(&state.db, &actor, project, body).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Page<ExperimentSummary>>, AppError> {
    let project = parse_id(&id, "Project")?;
    Ok(Json(Page {
        items: experiments::list(&state.db, &actor, project).await?,
        next_cursor: None,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Experiment>, AppError> {
    let id = parse_id(&id, "Experiment")?;
    Ok(Json(experiments::get(&state.db, &actor, id).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowsQuery {
    /// Rows to skip (default 0).
    offset: Option<i64>,
    /// Rows to return: 1 to 200 (default 50).
    limit: Option<i64>,
}

/// `GET /experiments/{id}/rows`: the per-row grid, disagreements first.
pub async fn rows(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<RowsQuery>,
) -> Result<Json<ExperimentRows>, AppError> {
    let id = parse_id(&id, "Experiment")?;
    Ok(Json(
        experiments::rows(
            &state.db,
            &actor,
            id,
            q.offset.unwrap_or(0),
            q.limit.unwrap_or(50),
        )
        .await?,
    ))
}

async fn control(
    state: AppState,
    actor: crate::server::auth::rbac::Actor,
    id: String,
    action: ControlAction,
) -> Result<Json<Experiment>, AppError> {
    let id = parse_id(&id, "Experiment")?;
    Ok(Json(
        experiments::control(&state.db, &actor, id, action).await?,
    ))
}

pub async fn pause(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Experiment>, AppError> {
    control(state, actor, id, ControlAction::Pause).await
}

pub async fn resume(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Experiment>, AppError> {
    control(state, actor, id, ControlAction::Resume).await
}

pub async fn stop(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Experiment>, AppError> {
    control(state, actor, id, ControlAction::Stop).await
}

/// A variant by position (1, 2, …) or label ("A", "B", …).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum VariantRef {
    Position(i32),
    Label(String),
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    pub variant: Option<VariantRef>,
}

/// `POST /experiments/{id}/promote {variant}`.
pub async fn promote(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<PromoteRequest>,
) -> Result<Json<Experiment>, AppError> {
    let id = parse_id(&id, "Experiment")?;
    let position = match body.variant {
        Some(VariantRef::Position(n)) => Some(n),
        Some(VariantRef::Label(l)) => match l.trim().as_bytes() {
            [c @ b'A'..=b'Z'] => Some(i32::from(c - b'A') + 1),
            [c @ b'a'..=b'z'] => Some(i32::from(c - b'a') + 1),
            _ => l.trim().parse().ok(),
        },
        None => None,
    };
    Ok(Json(
        experiments::promote(&state.db, &actor, id, position).await?,
    ))
}
