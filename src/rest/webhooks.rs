//! Webhooks: register, change, delete, read deliveries, send a test event,
//! redeliver (admins, or keys with the `admin` scope).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{page, parse_id};
use crate::error::AppError;
use crate::model::{CreatedWebhook, Page, Webhook, WebhookDelivery};
use crate::server::http::{Caller, Json, Query};
use crate::server::service::orgs;
use crate::server::service::webhooks::{self, WebhookInput};
use crate::server::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Page<Webhook>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(page(webhooks::list(&state.db, &ctx).await?))
}

pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<WebhookInput>,
) -> Result<(StatusCode, Json<CreatedWebhook>), AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let created =
        webhooks::create(&state.db, &ctx, state.config.allow_private_targets, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, AppError> {
    let id = parse_id(&id, "Webhook")?;
    Ok(Json(webhooks::get(&state.db, &actor, id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<WebhookInput>,
) -> Result<Json<Webhook>, AppError> {
    let id = parse_id(&id, "Webhook")?;
    let allow_private = state.config.allow_private_targets;
    Ok(Json(
        webhooks::update(&state.db, &actor, allow_private, id, body).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = parse_id(&id, "Webhook")?;
    webhooks::delete(&state.db, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct DeliveriesQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn deliveries(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<Page<WebhookDelivery>>, AppError> {
    let id = parse_id(&id, "Webhook")?;
    Ok(Json(
        webhooks::deliveries(
            &state.db,
            &actor,
            id,
            q.state.as_deref().filter(|s| !s.is_empty()),
            q.cursor.as_deref().filter(|s| !s.is_empty()),
            q.limit,
        )
        .await?,
    ))
}

pub async fn send_test(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<WebhookDelivery>), AppError> {
    let id = parse_id(&id, "Webhook")?;
    let delivery = webhooks::send_test(&state.db, &actor, id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

pub async fn redeliver(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<WebhookDelivery>), AppError> {
    let id = parse_id(&id, "Delivery")?;
    let delivery = webhooks::redeliver(&state.db, &actor, id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
