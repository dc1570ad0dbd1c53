//! `/api/v1/orgs/{org}/api-keys`: list, create (the secret is shown once)
//! and revoke an organization's API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{page, parse_id};
use crate::error::AppError;
use crate::model::{ApiKey, CreatedApiKey, Page};
use crate::server::http::{Caller, Json};
use crate::server::service::{api_keys, orgs};
use crate::server::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Page<ApiKey>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(page(api_keys::list(&state.db, &ctx).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(rename = "CreateApiKeyBody")]
pub struct CreateBody {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<CreatedApiKey>), AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let created = api_keys::create(
        &state.db,
        &ctx,
        api_keys::NewApiKey {
            name: body.name,
            scopes: body.scopes,
            expires_at: body.expires_at,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn revoke(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = parse_id(&id, "API key")?;
    api_keys::revoke(&state.db, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
