//! Webhooks for the browser (admins): the same service as the REST API.

// A form's server function takes one argument per field (one per event
// checkbox here).
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{CreatedWebhook, Page, Webhook, WebhookDelivery};

/// The events ticked in a form: each checkbox is named `event_<name with
/// dots as underscores>` (a dot can't be in a server function argument).
#[cfg(feature = "ssr")]
fn ticked(
    execution_started: Option<String>,
    execution_completed: Option<String>,
    execution_failed: Option<String>,
    job_failed: Option<String>,
    budget_threshold: Option<String>,
    experiment_completed: Option<String>,
) -> Vec<String> {
    [
        (execution_started, "execution.started"),
        (execution_completed, "execution.completed"),
        (execution_failed, "execution.failed"),
        (job_failed, "job.failed"),
        (budget_threshold, "budget.threshold"),
        (experiment_completed, "experiment.completed"),
    ]
    .into_iter()
    .filter(|(v, _)| v.is_some())
    .map(|(_, name)| name.to_string())
    .collect()
}

#[server(prefix = "/rpc", endpoint = "list_webhooks")]
pub async fn list_webhooks(org: String) -> Result<Vec<Webhook>, AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    let ctx = service::orgs::org_ctx(&state.db, &actor, &org).await?;
    service::webhooks::list(&state.db, &ctx).await
}

#[server(prefix = "/rpc", endpoint = "create_webhook")]
pub async fn create_webhook(
    org: String,
    url: String,
    description: Option<String>,
    secret: Option<String>,
    event_execution_started: Option<String>,
    event_execution_completed: Option<String>,
    event_execution_failed: Option<String>,
    event_job_failed: Option<String>,
    event_budget_threshold: Option<String>,
    event_experiment_completed: Option<String>,
) -> Result<CreatedWebhook, AppError> {
    use crate::server::service::webhooks::{self, WebhookInput};
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    let ctx = service::orgs::org_ctx(&state.db, &actor, &org).await?;
    let events = ticked(
        event_execution_started,
        event_execution_completed,
        event_execution_failed,
        event_job_failed,
        event_budget_threshold,
        event_experiment_completed,
    );
    let input = WebhookInput {
        url: Some(url),
        description,
        events: Some(events),
        secret,
        enabled: Some(true),
    };
    webhooks::create(&state.db, &ctx, state.config.allow_private_targets, input).await
}

/// Edits a hook from its form; an empty secret keeps the current one.
#[server(prefix = "/rpc", endpoint = "update_webhook")]
pub async fn update_webhook(
    id: Uuid,
    url: String,
    description: Option<String>,
    secret: Option<String>,
    event_execution_started: Option<String>,
    event_execution_completed: Option<String>,
    event_execution_failed: Option<String>,
    event_job_failed: Option<String>,
    event_budget_threshold: Option<String>,
    event_experiment_completed: Option<String>,
) -> Result<Webhook, AppError> {
    use crate::server::rpc;
    use crate::server::service::webhooks::{self, WebhookInput};
    let (state, actor) = rpc::user().await?;
    let events = ticked(
        event_execution_started,
        event_execution_completed,
        event_execution_failed,
        event_job_failed,
        event_budget_threshold,
        event_experiment_completed,
    );
    let input = WebhookInput {
        url: Some(url),
        description: Some(description.unwrap_or_default()),
        events: Some(events),
        secret: secret.filter(|s| !s.trim().is_empty()),
        enabled: None,
    };
    let allow_private = state.config.allow_private_targets;
    webhooks::update(&state.db, &actor, allow_private, id, input).await
}

/// Turns a hook on (its failure count starts afresh) or off.
#[server(prefix = "/rpc", endpoint = "set_webhook_enabled")]
pub async fn set_webhook_enabled(id: Uuid, enabled: bool) -> Result<Webhook, AppError> {
    use crate::server::rpc;
    use crate::server::service::webhooks::{self, WebhookInput};
    let (state, actor) = rpc::user().await?;
    let input = WebhookInput {
        enabled: Some(enabled),
        ..Default::default()
    };
    let allow_private = state.config.allow_private_targets;
    webhooks::update(&state.db, &actor, allow_private, id, input).await
}

#[server(prefix = "/rpc", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: Uuid) -> Result<(), AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    service::webhooks::delete(&state.db, &actor, id).await
}

#[server(prefix = "/rpc", endpoint = "list_webhook_deliveries")]
pub async fn list_webhook_deliveries(
    id: Uuid,
    cursor: Option<String>,
) -> Result<Page<WebhookDelivery>, AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    let cursor = cursor.filter(|c| !c.is_empty());
    service::webhooks::deliveries(&state.db, &actor, id, None, cursor.as_deref(), Some(20)).await
}

#[server(prefix = "/rpc", endpoint = "test_webhook")]
pub async fn test_webhook(id: Uuid) -> Result<WebhookDelivery, AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    service::webhooks::send_test(&state.db, &actor, id).await
}

#[server(prefix = "/rpc", endpoint = "redeliver_webhook")]
pub async fn redeliver_webhook(delivery: Uuid) -> Result<WebhookDelivery, AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    service::webhooks::redeliver(&state.db, &actor, delivery).await
}
