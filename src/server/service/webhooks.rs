//! Webhooks (F15): admins register a URL, the events it wants and a signing
//! secret; Mino queues a delivery for each event (database triggers, see the
//! migration) and [`crate::server::webhooks`] sends them. This module is the
//! admins' side: register, change, disable, delete, read the delivery log,
//! send a test event, redeliver.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::{collect_fields, paging};
use crate::error::AppError;
use crate::model::{
    CreatedWebhook, Page, Webhook, WebhookAttempt, WebhookDelivery, WEBHOOK_EVENTS,
    WEBHOOK_TEST_EVENT,
};
use crate::server::agents::fetch::is_private;
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::auth::secret;

/// Webhooks one organization may have.
pub const MAX_WEBHOOKS_PER_ORG: i64 = 20;

/// What a create or an update says; `None` leaves a value as it is (and,
/// on create, takes the default: every event, a generated secret).
#[derive(Debug, Default, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    pub enabled: Option<bool>,
}

fn not_found() -> AppError {
    AppError::NotFound("Webhook".into())
}

/// A receiver's address: http(s), at most 2,000 characters, and — unless
/// `allow_private` (MINO_ALLOW_PRIVATE_TARGETS, the switch agents obey) —
/// not a loopback, private or link-local address, by literal or by what
/// the name resolves to now. Deliveries check again when they connect, so
/// a name that later points inside is refused then too.
pub async fn parse_url(raw: &str, allow_private: bool) -> Result<String, AppError> {
    let bad = |m: String| AppError::field("url", m);
    let text = raw.trim();
    if text.is_empty() {
        return Err(bad("Enter the URL that receives the events.".into()));
    }
    if text.chars().count() > 2000 {
        return Err(bad("Use a URL of at most 2,000 characters.".into()));
    }
    let url = url::Url::parse(text).map_err(|e| bad(format!("{text:?} is not a URL ({e}).")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "Use an http:// or https:// URL, not {}:.",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "Leave credentials out of the URL; Mino signs each delivery instead.".into(),
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| bad("The URL needs a host.".into()))?;
    if !allow_private {
        let private = "is a private or internal address; webhooks may only call public \
                       addresses unless MINO_ALLOW_PRIVATE_TARGETS=1";
        let literal: Option<IpAddr> = match host {
            url::Host::Ipv4(ip) => Some(ip.into()),
            url::Host::Ipv6(ip) => Some(ip.into()),
            url::Host::Domain(d)
                if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
            {
                Some(std::net::Ipv4Addr::LOCALHOST.into())
            }
            url::Host::Domain(_) => None,
        };
        match literal {
            Some(ip) if is_private(ip) => return Err(bad(format!("{host} {private}."))),
            Some(_) => {}
            None => {
                // A name that resolves only inside is refused now; one that
                // doesn't resolve yet is accepted (its deliveries will fail
                // and say why).
                let port = url.port_or_known_default().unwrap_or(443);
                let lookup = tokio::net::lookup_host((host.to_string(), port));
                if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), lookup).await {
                    let addrs: Vec<_> = addrs.collect();
                    if !addrs.is_empty() && addrs.iter().all(|a| is_private(a.ip())) {
                        return Err(bad(format!(
                            "{host} resolves to {}, which {private}.",
                            addrs[0].ip()
                        )));
                    }
                }
            }
        }
    }
    Ok(url.to_string())
}

/// At least one known event; kept in the order of [`WEBHOOK_EVENTS`].
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, AppError> {
    if raw.is_empty() {
        return Err(AppError::field("events", "Choose at least one event."));
    }
    if let Some(unknown) = raw
        .iter()
        .find(|e| !WEBHOOK_EVENTS.iter().any(|(name, _)| name == &e.trim()))
    {
        let known: Vec<&str> = WEBHOOK_EVENTS.iter().map(|(n, _)| *n).collect();
        return Err(AppError::field(
            "events",
            format!("Unknown event {unknown:?}; use {}.", known.join(", ")),
        ));
    }
    Ok(WEBHOOK_EVENTS
        .iter()
        .filter(|(name, _)| raw.iter().any(|e| e.trim() == *name))
        .map(|(name, _)| name.to_string())
        .collect())
}

/// A given secret: 16–200 printable characters. Short secrets are refused
/// because a guessed secret lets anyone forge deliveries.
pub fn parse_secret(raw: &str) -> Result<String, AppError> {
    let s = raw.trim();
    let n = s.chars().count();
    if !(16..=200).contains(&n) {
        return Err(AppError::field(
            "secret",
            format!("Use a secret of 16 to 200 characters (this has {n}), or leave it empty for Mino to make one."),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(AppError::field(
            "secret",
            "Remove line breaks and control characters.",
        ));
    }
    Ok(s.to_string())
}

fn parse_description(raw: &str) -> Result<String, AppError> {
    let d = raw.trim();
    let n = d.chars().count();
    if n > 500 {
        return Err(AppError::field(
            "description",
            format!("Use at most 500 characters (this has {n})."),
        ));
    }
    if d.contains('\0') {
        return Err(AppError::field("description", "Remove the NUL character."));
    }
    Ok(d.to_string())
}

fn new_secret() -> String {
    format!("whsec_{}", &secret::random_token()[..48])
}

fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    url: String,
    description: String,
    events: Vec<String>,
    secret: String,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<DateTime<Utc>>,
    consecutive_failures: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_delivery_state: Option<String>,
    last_delivery_at: Option<DateTime<Utc>>,
}

impl Row {
    fn into_model(self) -> Webhook {
        Webhook {
            id: self.id,
            url: self.url,
            description: self.description,
            events: self.events,
            secret_hint: hint(&self.secret),
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            disabled_at: self.disabled_at,
            consecutive_failures: self.consecutive_failures,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_delivery_state: self.last_delivery_state,
            last_delivery_at: self.last_delivery_at,
        }
    }

    /// What the audit log keeps of it (never the secret).
    fn audited(&self) -> serde_json::Value {
        json!({
            "url": self.url, "description": self.description, "events": self.events,
            "enabled": self.enabled, "secret": hint(&self.secret),
        })
    }
}

const SELECT: &str = "select w.id, w.url, w.description, w.events, w.secret, w.enabled,
        w.disabled_reason, w.disabled_at, w.consecutive_failures, w.created_at, w.updated_at,
        d.state as last_delivery_state, d.created_at as last_delivery_at
    from webhooks w
    left join lateral (select state, created_at from webhook_deliveries
                       where webhook_id = w.id order by created_at desc, id desc limit 1) d on true";

async fn fetch(db: impl sqlx::PgExecutor<'_>, org_id: Uuid, id: Uuid) -> Result<Row, AppError> {
    fetch_with(db, org_id, id, "").await
}

/// The hook, locked until the transaction ends (before a change).
async fn fetch_locked(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    org_id: Uuid,
    id: Uuid,
) -> Result<Row, AppError> {
    fetch_with(&mut **tx, org_id, id, " for update of w").await
}

async fn fetch_with(
    db: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    locking: &str,
) -> Result<Row, AppError> {
    sqlx::query_as::<_, Row>(&format!(
        "{SELECT} where w.org_id = $1 and w.id = $2{locking}"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(not_found)
}

/// The caller's context for webhook `id`: 404 for an unknown id or one in
/// another organization, 403 without the permission.
async fn hook_ctx(db: &PgPool, actor: &Actor, id: Uuid) -> Result<OrgCtx, AppError> {
    let org_id: Uuid = sqlx::query_scalar("select org_id from webhooks where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ManageWebhooks)?;
    Ok(ctx)
}

pub async fn list(db: &PgPool, ctx: &OrgCtx) -> Result<Vec<Webhook>, AppError> {
    require(ctx, Permission::ManageWebhooks)?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} where w.org_id = $1 order by w.created_at, w.id"
    ))
    .bind(ctx.org_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Row::into_model).collect())
}

pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Webhook, AppError> {
    let ctx = hook_ctx(db, actor, id).await?;
    Ok(fetch(db, ctx.org_id, id).await?.into_model())
}

pub async fn create(
    db: &PgPool,
    ctx: &OrgCtx,
    allow_private: bool,
    input: WebhookInput,
) -> Result<CreatedWebhook, AppError> {
    require(ctx, Permission::ManageWebhooks)?;
    let url = parse_url(input.url.as_deref().unwrap_or(""), allow_private).await;
    let events = match &input.events {
        Some(e) => parse_events(e),
        None => Ok(WEBHOOK_EVENTS.iter().map(|(n, _)| n.to_string()).collect()),
    };
    let given_secret = input
        .secret
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(parse_secret)
        .transpose();
    let description = parse_description(input.description.as_deref().unwrap_or(""));
    collect_fields([
        url.as_ref().map(|_| ()).map_err(Clone::clone),
        events.as_ref().map(|_| ()).map_err(Clone::clone),
        given_secret.as_ref().map(|_| ()).map_err(Clone::clone),
        description.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    let (url, events, given_secret, description) = (url?, events?, given_secret?, description?);
    let generated = given_secret.is_none().then(new_secret);
    let secret = given_secret
        .or_else(|| generated.clone())
        .unwrap_or_default();
    let enabled = input.enabled.unwrap_or(true);

    let mut tx = db.begin().await?;
    // The organization's row lock serializes creates, so two at once can't
    // both pass the count.
    sqlx::query("select 1 from organizations where id = $1 for update")
        .bind(ctx.org_id)
        .execute(&mut *tx)
        .await?;
    let count: i64 = sqlx::query_scalar("select count(*) from webhooks where org_id = $1")
        .bind(ctx.org_id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_WEBHOOKS_PER_ORG {
        return Err(AppError::QuotaExceeded(format!(
            "An organization can have at most {MAX_WEBHOOKS_PER_ORG} webhooks; delete one first."
        )));
    }
    let id: Uuid = sqlx::query_scalar(
        "insert into webhooks (org_id, url, description, events, secret, enabled, created_by,
                               disabled_reason, disabled_at)
         values ($1, $2, $3, $4, $5, $6, $7,
                 case when $6 then null else 'Created disabled.' end,
                 case when $6 then null else now() end)
         returning id",
    )
    .bind(ctx.org_id)
    .bind(&url)
    .bind(&description)
    .bind(&events)
    .bind(&secret)
    .bind(enabled)
    .bind(ctx.actor.user_id())
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("webhook.create", "webhook", id).after(json!({
            "url": url, "description": description, "events": events, "enabled": enabled,
            "secret": hint(&secret),
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedWebhook {
        webhook: fetch(db, ctx.org_id, id).await?.into_model(),
        secret: generated,
    })
}

pub async fn update(
    db: &PgPool,
    actor: &Actor,
    allow_private: bool,
    id: Uuid,
    input: WebhookInput,
) -> Result<Webhook, AppError> {
    let ctx = hook_ctx(db, actor, id).await?;
    let url = match &input.url {
        Some(u) => parse_url(u, allow_private).await.map(Some),
        None => Ok(None),
    };
    let events = input.events.as_deref().map(parse_events).transpose();
    let secret = input.secret.as_deref().map(parse_secret).transpose();
    let description = input
        .description
        .as_deref()
        .map(parse_description)
        .transpose();
    collect_fields([
        url.as_ref().map(|_| ()).map_err(Clone::clone),
        events.as_ref().map(|_| ()).map_err(Clone::clone),
        secret.as_ref().map(|_| ()).map_err(Clone::clone),
        description.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    let (url, events, secret, description) = (url?, events?, secret?, description?);

    let mut tx = db.begin().await?;
    let before = fetch_locked(&mut tx, ctx.org_id, id).await?;
    // Turning a hook on starts its failure count afresh; turning it off
    // says who did (looked up only then).
    let by = match input.enabled {
        Some(false) => Some(actor_label(&mut tx, &ctx.actor).await?),
        _ => None,
    };
    sqlx::query(
        "update webhooks set
            url = coalesce($3, url),
            description = coalesce($4, description),
            events = coalesce($5, events),
            secret = coalesce($6, secret),
            enabled = coalesce($7, enabled),
            consecutive_failures = case when $7 and not enabled then 0 else consecutive_failures end,
            disabled_reason = case when $7 then null
                                   when $7 = false and enabled then 'Disabled by ' || $8
                                   else disabled_reason end,
            disabled_at = case when $7 then null
                               when $7 = false and enabled then now()
                               else disabled_at end,
            updated_at = now()
         where org_id = $1 and id = $2",
    )
    .bind(ctx.org_id)
    .bind(id)
    .bind(&url)
    .bind(&description)
    .bind(&events)
    .bind(&secret)
    .bind(input.enabled)
    .bind(&by)
    .execute(&mut *tx)
    .await?;
    let after = fetch(&mut *tx, ctx.org_id, id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("webhook.update", "webhook", id)
            .before(before.audited())
            .after(after.audited()),
    )
    .await?;
    tx.commit().await?;
    Ok(after.into_model())
}

/// "Ann" or "API key “ci”", for a disabled hook's reason.
async fn actor_label(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: &Actor,
) -> Result<String, AppError> {
    let (user, key) = match actor {
        Actor::User { id } => (Some(*id), None),
        Actor::ApiKey { id, .. } => (None, Some(*id)),
    };
    Ok(sqlx::query_scalar(
        "select coalesce((select name from users where id = $1),
                         (select 'API key “' || name || '”' from api_keys where id = $2),
                         'someone')",
    )
    .bind(user)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn delete(db: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AppError> {
    let ctx = hook_ctx(db, actor, id).await?;
    let mut tx = db.begin().await?;
    let before = fetch_locked(&mut tx, ctx.org_id, id).await?;
    sqlx::query("delete from webhooks where org_id = $1 and id = $2")
        .bind(ctx.org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("webhook.delete", "webhook", id).before(before.audited()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues a `webhook.test` delivery: sent once, at once, even to a
/// disabled hook, and it does not count towards disabling it.
pub async fn send_test(db: &PgPool, actor: &Actor, id: Uuid) -> Result<WebhookDelivery, AppError> {
    let ctx = hook_ctx(db, actor, id).await?;
    let mut tx = db.begin().await?;
    let delivery: Uuid = sqlx::query_scalar(
        "insert into webhook_deliveries (webhook_id, org_id, event, event_id, resource_id)
         select id, org_id, $3, gen_random_uuid(), id::text from webhooks
         where org_id = $1 and id = $2
         returning id",
    )
    .bind(ctx.org_id)
    .bind(id)
    .bind(WEBHOOK_TEST_EVENT)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(not_found)?;
    crate::server::live::notify(&mut *tx, crate::server::live::WEBHOOKS, "").await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("webhook.test", "webhook", id).after(json!({"delivery_id": delivery})),
    )
    .await?;
    tx.commit().await?;
    fetch_delivery(db, ctx.org_id, delivery).await
}

/// Sends a delivery again from the start (a new series of attempts), e.g.
/// after the receiver was fixed.
pub async fn redeliver(
    db: &PgPool,
    actor: &Actor,
    delivery_id: Uuid,
) -> Result<WebhookDelivery, AppError> {
    let missing = || AppError::NotFound("Delivery".into());
    let found: Option<(Uuid, Uuid)> =
        sqlx::query_as("select org_id, webhook_id from webhook_deliveries where id = $1")
            .bind(delivery_id)
            .fetch_optional(db)
            .await?;
    let (org_id, hook_id) = found.ok_or_else(missing)?;
    let ctx =
        super::orgs::resource_ctx(db, actor, org_id, || AppError::NotFound("Delivery".into()))
            .await?;
    require(&ctx, Permission::ManageWebhooks)?;
    let mut tx = db.begin().await?;
    let moved = sqlx::query(
        "update webhook_deliveries set state = 'pending', attempts = 0, next_attempt_at = now(),
                lease_expires_at = null, finished_at = null
         where org_id = $1 and id = $2 and state in ('succeeded', 'failed')",
    )
    .bind(org_id)
    .bind(delivery_id)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(AppError::Conflict(
            "This delivery is still being sent; redeliver it once it has succeeded or failed."
                .into(),
        ));
    }
    // Earlier attempts stay in the log, numbered on from the last one.
    crate::server::live::notify(&mut *tx, crate::server::live::WEBHOOKS, "").await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new(
            "webhook_delivery.redeliver",
            "webhook_delivery",
            delivery_id,
        )
        .after(json!({"webhook_id": hook_id})),
    )
    .await?;
    tx.commit().await?;
    fetch_delivery(db, org_id, delivery_id).await
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    webhook_id: Uuid,
    event: String,
    event_id: Uuid,
    resource_id: Option<String>,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    payload: Option<sqlx::types::Json<serde_json::Value>>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: Uuid,
    n: i32,
    at: DateTime<Utc>,
    status: Option<i32>,
    duration_ms: i32,
    response_excerpt: Option<String>,
    error: Option<String>,
}

const DELIVERY_SELECT: &str =
    "select id, webhook_id, event, event_id, resource_id, state, attempts,
        next_attempt_at, last_status, last_error, created_at, finished_at, payload
    from webhook_deliveries";

async fn to_deliveries(
    db: &PgPool,
    rows: Vec<DeliveryRow>,
) -> Result<Vec<WebhookDelivery>, AppError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "select delivery_id, n, at, status, duration_ms, response_excerpt, error
         from webhook_attempts where delivery_id = any($1) order by delivery_id, n",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| WebhookDelivery {
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| WebhookAttempt {
                    n: a.n,
                    at: a.at,
                    status: a.status,
                    duration_ms: a.duration_ms,
                    response_excerpt: a.response_excerpt.clone(),
                    error: a.error.clone(),
                })
                .collect(),
            id: r.id,
            webhook_id: r.webhook_id,
            event: r.event,
            event_id: r.event_id,
            resource_id: r.resource_id,
            next_attempt_at: matches!(r.state.as_str(), "pending" | "delivering")
                .then_some(r.next_attempt_at),
            state: r.state,
            attempts: r.attempts,
            last_status: r.last_status,
            last_error: r.last_error,
            created_at: r.created_at,
            finished_at: r.finished_at,
            payload: r.payload.map(|p| p.0),
        })
        .collect())
}

async fn fetch_delivery(db: &PgPool, org_id: Uuid, id: Uuid) -> Result<WebhookDelivery, AppError> {
    let row: DeliveryRow =
        sqlx::query_as(&format!("{DELIVERY_SELECT} where org_id = $1 and id = $2"))
            .bind(org_id)
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| AppError::NotFound("Delivery".into()))?;
    Ok(to_deliveries(db, vec![row]).await?.remove(0))
}

/// A hook's deliveries, newest first, a page at a time; `state` keeps one
/// state (pending, delivering, succeeded, failed).
pub async fn deliveries(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    state: Option<&str>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<WebhookDelivery>, AppError> {
    let ctx = hook_ctx(db, actor, id).await?;
    let limit = paging::parse_limit(limit, 20, 100)?;
    let after = cursor.map(paging::parse_time_cursor).transpose()?;
    if let Some(s) = state {
        if !matches!(s, "pending" | "delivering" | "succeeded" | "failed") {
            return Err(AppError::field(
                "state",
                format!("Unknown state {s:?}; use pending, delivering, succeeded or failed."),
            ));
        }
    }
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "{DELIVERY_SELECT}
         where org_id = $1 and webhook_id = $2
           and ($3::text is null or state = $3)
           and ($4::timestamptz is null or (created_at, id) < ($4, $5))
         order by created_at desc, id desc limit $6"
    ))
    .bind(ctx.org_id)
    .bind(id)
    .bind(state)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    let page = paging::page(rows, limit, |r| paging::time_cursor(r.created_at, r.id));
    Ok(Page {
        items: to_deliveries(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_must_be_public_http_unless_allowed() {
        for bad in [
            "",
            "ftp://example.com/x",
            "not a url",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest",
            "http://[::1]/hook",
            "https://user:pw@example.com/hook",
        ] {
            let e = parse_url(bad, false).await.unwrap_err();
            assert_eq!(e.field_errors()[0].field, "url", "{bad}");
        }
        assert!(parse_url("http://127.0.0.1:9000/hook", true).await.is_ok());
        assert_eq!(
            parse_url(" https://hooks.example.com/mino ", false)
                .await
                .unwrap(),
            "https://hooks.example.com/mino"
        );
    }

    #[test]
    fn events_are_known_and_ordered() {
        let e = parse_events(&["job.failed".into(), "execution.started".into()]).unwrap();
        assert_eq!(e, vec!["execution.started", "job.failed"]);
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["execution.exploded".into()]).is_err());
    }

    #[test]
    fn secrets_are_long_enough_and_hinted() {
        assert!(parse_secret("short").is_err());
        assert!(parse_secret(&"x".repeat(16)).is_ok());
        assert!(parse_secret(&"x".repeat(201)).is_err());
        assert_eq!(hint("whsec_abcdef1234"), "…1234");
        assert!(new_secret().starts_with("whsec_"));
        assert_eq!(new_secret().len(), 6 + 48);
    }
}
