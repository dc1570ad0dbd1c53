//! Webhooks (F15): admins register a URL, the events it wants and a signing
//! secret; Mino queues a delivery for each event (database triggers, see the
//! migration) and [`crate::server::webhooks`] sends them. This module is the
//! admins' side: register, change, disable, delete, read the delivery log,
//! send a test event, redeliver.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::{collect_fields, paging};
use crate::error::AppError;
use crate::model::{
    CreatedWebhook, Page, Webhook, WebhookAttempt, WebhookDelivery, WEBHOOK_EVENTS,
};
use crate::server::agents::fetch::is_private;
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::auth::secret;
use crate::server::db::{self, webhooks::DeliveryRow, webhooks::WebhookRow};

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

/// A hook as its API shows it (the secret only as a hint).
fn to_model(row: WebhookRow) -> Webhook {
    let r = row;
    {
        Webhook {
            id: r.id,
            url: r.url,
            description: r.description,
            events: r.events,
            secret_hint: hint(&r.secret),
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            consecutive_failures: r.consecutive_failures,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_delivery_state: r.last_delivery_state,
            last_delivery_at: r.last_delivery_at,
        }
    }
}

/// What the audit log keeps of a hook (never the secret).
fn audited(r: &WebhookRow) -> serde_json::Value {
    json!({
        "url": r.url, "description": r.description, "events": r.events,
        "enabled": r.enabled, "secret": hint(&r.secret),
    })
}

async fn fetch(
    db: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> Result<WebhookRow, AppError> {
    db::webhooks::fetch_one(db, org_id, id, false)
        .await?
        .ok_or_else(not_found)
}

/// The hook, locked until the transaction ends (before a change).
async fn fetch_locked(
    tx: &mut sqlx::PgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<WebhookRow, AppError> {
    db::webhooks::fetch_one(tx, org_id, id, true)
        .await?
        .ok_or_else(not_found)
}

/// The caller's context for webhook `id`: 404 for an unknown id or one in
/// another organization, 403 without the permission.
async fn hook_ctx(db: &PgPool, actor: &Actor, id: Uuid) -> Result<OrgCtx, AppError> {
    let org_id = db::webhooks::fetch_org_id(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ManageWebhooks)?;
    Ok(ctx)
}

/// The organization's webhooks (admins).
pub async fn list(db: &PgPool, ctx: &OrgCtx) -> Result<Vec<Webhook>, AppError> {
    require(ctx, Permission::ManageWebhooks)?;
    let rows = db::webhooks::list(db, ctx.org_id()).await?;
    Ok(rows.into_iter().map(to_model).collect())
}

/// One webhook.
pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Webhook, AppError> {
    let ctx = hook_ctx(db, actor, id).await?;
    Ok(to_model(fetch(db, ctx.org_id(), id).await?))
}

/// Registers a webhook (URL, events, secret; at most 20 per organization); a generated secret is in the answer only.
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
    let count = db::webhooks::count_locking_org(&mut tx, ctx.org_id()).await?;
    if count >= MAX_WEBHOOKS_PER_ORG {
        return Err(AppError::QuotaExceeded(format!(
            "An organization can have at most {MAX_WEBHOOKS_PER_ORG} webhooks; delete one first."
        )));
    }
    let id = db::webhooks::insert(
        &mut *tx,
        db::webhooks::NewWebhook {
            org_id: ctx.org_id(),
            url: &url,
            description: &description,
            events: &events,
            secret: &secret,
            enabled,
            created_by: ctx.actor().user_id(),
        },
    )
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
        webhook: to_model(fetch(db, ctx.org_id(), id).await?),
        secret: generated,
    })
}

/// Changes a webhook; turning it off says who did.
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
    let before = fetch_locked(&mut tx, ctx.org_id(), id).await?;
    // Turning a hook on starts its failure count afresh; turning it off
    // says who did (looked up only then).
    let by = match input.enabled {
        Some(false) => Some(ctx.actor_name(db).await?),
        _ => None,
    };
    db::webhooks::update(
        &mut *tx,
        ctx.org_id(),
        id,
        db::webhooks::WebhookChange {
            url: url.as_deref(),
            description: description.as_deref(),
            events: events.as_deref(),
            secret: secret.as_deref(),
            enabled: input.enabled,
            disabled_by: by,
        },
    )
    .await?;
    let after = fetch(&mut *tx, ctx.org_id(), id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("webhook.update", "webhook", id)
            .before(audited(&before))
            .after(audited(&after)),
    )
    .await?;
    tx.commit().await?;
    Ok(to_model(after))
}

/// Deletes a webhook and its delivery log.
pub async fn delete(db: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AppError> {
    let ctx = hook_ctx(db, actor, id).await?;
    let mut tx = db.begin().await?;
    let before = fetch_locked(&mut tx, ctx.org_id(), id).await?;
    db::webhooks::delete(&mut *tx, ctx.org_id(), id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("webhook.delete", "webhook", id).before(audited(&before)),
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
    let delivery = db::webhooks::insert_test_delivery(&mut *tx, ctx.org_id(), id)
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
    fetch_delivery(db, ctx.org_id(), delivery).await
}

/// Sends a delivery again from the start (a new series of attempts), e.g.
/// after the receiver was fixed.
pub async fn redeliver(
    db: &PgPool,
    actor: &Actor,
    delivery_id: Uuid,
) -> Result<WebhookDelivery, AppError> {
    let missing = || AppError::NotFound("Delivery".into());
    let db::webhooks::DeliveryPlacement {
        org_id,
        webhook_id: hook_id,
    } = db::webhooks::fetch_delivery_placement(db, delivery_id)
        .await?
        .ok_or_else(missing)?;
    let ctx =
        super::orgs::resource_ctx(db, actor, org_id, || AppError::NotFound("Delivery".into()))
            .await?;
    require(&ctx, Permission::ManageWebhooks)?;
    let mut tx = db.begin().await?;
    if !db::webhooks::restart_delivery(&mut *tx, org_id, delivery_id).await? {
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

async fn to_deliveries(
    db: &PgPool,
    rows: Vec<DeliveryRow>,
) -> Result<Vec<WebhookDelivery>, AppError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts = db::webhooks::attempts_of(db, &ids).await?;
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
    let row = db::webhooks::fetch_delivery(db, org_id, id)
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
    let rows = db::webhooks::list_deliveries(db, ctx.org_id(), id, state, after, limit + 1).await?;
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
