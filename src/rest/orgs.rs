//! `/api/v1/orgs`: list the caller's organizations, create, read, rename
//! and set retention, change plan limits, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::page;
use crate::error::AppError;
use crate::model::{Organization, Page};
use crate::server::http::{Caller, Json};
use crate::server::service::orgs;
use crate::server::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Page<Organization>>, AppError> {
    Ok(page(orgs::list(&state.db, &actor).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct NameBody {
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<NameBody>,
) -> Result<(StatusCode, Json<Organization>), AppError> {
    let org = orgs::create(&state.db, &actor, &body.name).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Organization>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(Json(orgs::get(&state.db, &ctx).await?))
}

/// What a PATCH changes; at least one field.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct UpdateBody {
    /// A new name (1–100 characters).
    name: Option<String>,
    /// Days attempt screenshots and kept pages are kept (1–3650; 30 at
    /// first). Shortening it removes older ones at the next hourly cleanup.
    retention_days: Option<i32>,
}

pub async fn update(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<Json<Organization>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let changes = orgs::OrgChanges {
        name: body.name,
        retention_days: body.retention_days,
    };
    Ok(Json(orgs::update(&state.db, &ctx, changes).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct LimitsBody {
    max_projects: i32,
    max_executions_per_month: i32,
    api_requests_per_minute: Option<i32>,
    key_requests_per_minute: Option<i32>,
    /// The most jobs one run may have in flight (1–1,000; default 50).
    max_concurrency: Option<i32>,
}

pub async fn update_limits(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<LimitsBody>,
) -> Result<Json<Organization>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(Json(
        orgs::update_limits(
            &state.db,
            &ctx,
            body.max_projects,
            body.max_executions_per_month,
            (body.api_requests_per_minute, body.key_requests_per_minute),
            body.max_concurrency,
        )
        .await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<StatusCode, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    orgs::delete(&state.db, &ctx, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /orgs/{org}/export` (owners): all of the organization's data as
/// one zip, streamed as it is made.
pub async fn export_all(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<axum::response::Response, AppError> {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let (name, rx) = crate::server::service::org_export::start(&state.db, &ctx).await?;
    let mut res = crate::server::http::channel_body(rx).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
