//! Model providers: admins (or keys with the `admin` scope) add, change,
//! check and delete them; anyone who reads projects lists their names and
//! models to choose a route.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{page, parse_id};
use crate::error::AppError;
use crate::model::{ModelProvider, Page, ProviderCheck, ProviderChoice};
use crate::server::http::{Caller, Json};
use crate::server::service::model_providers::{self, ProviderInput};
use crate::server::service::orgs;
use crate::server::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Page<ModelProvider>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(page(model_providers::list(&state.db, &ctx).await?))
}

pub async fn choices(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Page<ProviderChoice>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(page(model_providers::choices(&state.db, &ctx).await?))
}

pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<ProviderInput>,
) -> Result<(StatusCode, Json<ModelProvider>), AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let created = model_providers::create(&state.db, &ctx, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<ModelProvider>, AppError> {
    let id = parse_id(&id, "Model provider")?;
    Ok(Json(model_providers::get(&state.db, &actor, id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<ProviderInput>,
) -> Result<Json<ModelProvider>, AppError> {
    let id = parse_id(&id, "Model provider")?;
    Ok(Json(
        model_providers::update(&state.db, &actor, id, body).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = parse_id(&id, "Model provider")?;
    model_providers::delete(&state.db, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<ProviderCheck>, AppError> {
    let id = parse_id(&id, "Model provider")?;
    Ok(Json(model_providers::check(&state.db, &actor, id).await?))
}
