//! webhooks, webhook_deliveries and webhook_attempts: the hooks an
//! organization keeps, and the delivery queue the sender claims from (a
//! delivery is claimed with a lease; every later write names the attempt,
//! so a sender whose lease expired can't overwrite a newer one).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::model::{WEBHOOK_FAILURE_LIMIT, WEBHOOK_TEST_EVENT};
use crate::server::secrets;

/// A hook with its latest delivery's state.
#[derive(sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_delivery_state: Option<String>,
    pub last_delivery_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "select w.id, w.url, w.description, w.events, w.secret, w.enabled,
        w.disabled_reason, w.disabled_at, w.consecutive_failures, w.created_at, w.updated_at,
        d.state as last_delivery_state, d.created_at as last_delivery_at
    from webhooks w
    left join lateral (select state, created_at from webhook_deliveries
                       where webhook_id = w.id order by created_at desc, id desc limit 1) d on true";

/// Secrets are stored sealed (`server::secrets`); rows carry them opened.
fn open(stored: &str) -> sqlx::Result<String> {
    secrets::open(stored).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn opened(mut row: WebhookRow) -> sqlx::Result<WebhookRow> {
    row.secret = open(&row.secret)?;
    Ok(row)
}

/// The organization a hook belongs to, to check the caller's access.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from webhooks where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One hook of the organization; `lock` holds its row until the
/// transaction ends (before a change).
pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<WebhookRow>> {
    let locking = if lock { " for update of w" } else { "" };
    sqlx::query_as(&format!(
        "{SELECT} where w.org_id = $1 and w.id = $2{locking}"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(opened)
    .transpose()
}

/// The organization's hooks, oldest first.
pub async fn list(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<WebhookRow>> {
    sqlx::query_as(&format!(
        "{SELECT} where w.org_id = $1 order by w.created_at, w.id"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(opened)
    .collect()
}

/// How many hooks the organization has, its row locked until commit so two
/// creates at once can't both pass a limit.
pub async fn count_locking_org(tx: &mut PgConnection, org_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query("select 1 from organizations where id = $1 for update")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar("select count(*) from webhooks where org_id = $1")
        .bind(org_id)
        .fetch_one(&mut *tx)
        .await
}

pub struct NewWebhook<'a> {
    pub org_id: Uuid,
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [String],
    pub secret: &'a str,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
}

/// A new hook (a disabled one says it was created so).
pub async fn insert(db: impl PgExecutor<'_>, w: NewWebhook<'_>) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into webhooks (org_id, url, description, events, secret, enabled, created_by,
                               disabled_reason, disabled_at)
         values ($1, $2, $3, $4, $5, $6, $7,
                 case when $6 then null else 'Created disabled.' end,
                 case when $6 then null else now() end)
         returning id",
    )
    .bind(w.org_id)
    .bind(w.url)
    .bind(w.description)
    .bind(w.events)
    .bind(secrets::seal(w.secret))
    .bind(w.enabled)
    .bind(w.created_by)
    .fetch_one(db)
    .await
}

/// What an update changes; `None` keeps a value.
pub struct WebhookChange<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub secret: Option<&'a str>,
    pub enabled: Option<bool>,
    /// Who turns it off, for the reason it shows.
    pub disabled_by: Option<&'a str>,
}

/// Changes a hook. Turning it on starts its failure count afresh; turning
/// it off records who did and when.
pub async fn update(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    c: WebhookChange<'_>,
) -> sqlx::Result<()> {
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
    .bind(org_id)
    .bind(id)
    .bind(c.url)
    .bind(c.description)
    .bind(c.events)
    .bind(c.secret.map(secrets::seal))
    .bind(c.enabled)
    .bind(c.disabled_by)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a hook and its deliveries; how many hooks were deleted.
pub async fn delete(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from webhooks where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Queues a test delivery to the hook; `None` when it is not the
/// organization's.
pub async fn insert_test_delivery(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "insert into webhook_deliveries (webhook_id, org_id, event, event_id, resource_id)
         select id, org_id, $3, gen_random_uuid(), id::text from webhooks
         where org_id = $1 and id = $2
         returning id",
    )
    .bind(org_id)
    .bind(id)
    .bind(WEBHOOK_TEST_EVENT)
    .fetch_optional(db)
    .await
}

/// Where a delivery is: its organization and hook.
#[derive(sqlx::FromRow)]
pub struct DeliveryPlacement {
    pub org_id: Uuid,
    pub webhook_id: Uuid,
}

/// A delivery's organization and hook.
pub async fn fetch_delivery_placement(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<DeliveryPlacement>> {
    sqlx::query_as("select org_id, webhook_id from webhook_deliveries where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Starts a finished delivery's attempts over; false when it is still
/// being sent.
pub async fn restart_delivery(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    let moved = sqlx::query(
        "update webhook_deliveries set state = 'pending', attempts = 0, next_attempt_at = now(),
                lease_expires_at = null, finished_at = null
         where org_id = $1 and id = $2 and state in ('succeeded', 'failed')",
    )
    .bind(org_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(moved.rows_affected() > 0)
}

#[derive(sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    pub event_id: Uuid,
    pub resource_id: Option<String>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub payload: Option<Json<Value>>,
}

#[derive(sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: Uuid,
    pub n: i32,
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub duration_ms: i32,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

const DELIVERY_SELECT: &str =
    "select id, webhook_id, event, event_id, resource_id, state, attempts,
        next_attempt_at, last_status, last_error, created_at, finished_at, payload
    from webhook_deliveries";

/// One delivery of the organization.
pub async fn fetch_delivery(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(&format!("{DELIVERY_SELECT} where org_id = $1 and id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A page of a hook's deliveries, newest first, optionally in one state,
/// after the cursor `(created_at, id)`.
pub async fn list_deliveries(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    webhook_id: Uuid,
    state: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(&format!(
        "{DELIVERY_SELECT}
         where org_id = $1 and webhook_id = $2
           and ($3::text is null or state = $3)
           and ($4::timestamptz is null or (created_at, id) < ($4, $5))
         order by created_at desc, id desc limit $6"
    ))
    .bind(org_id)
    .bind(webhook_id)
    .bind(state)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Every attempt of these deliveries, by delivery then number.
pub async fn attempts_of(
    db: impl PgExecutor<'_>,
    deliveries: &[Uuid],
) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as(
        "select delivery_id, n, at, status, duration_ms, response_excerpt, error
         from webhook_attempts where delivery_id = any($1) order by delivery_id, n",
    )
    .bind(deliveries)
    .fetch_all(db)
    .await
}

/// A delivery the sender took, with what it needs to send it.
#[derive(sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub org_id: Uuid,
    pub event: String,
    pub event_id: Uuid,
    pub resource_id: Option<String>,
    pub payload: Option<Json<Value>>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub url: String,
    pub secret: String,
    pub org_slug: String,
    pub org_name: String,
}

/// Takes up to `limit` due deliveries of enabled hooks (and test
/// deliveries, which go even to disabled ones), and those whose lease
/// expired, leasing them for `lease_secs`.
pub async fn claim(db: &PgPool, limit: i64, lease_secs: f64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "update webhook_deliveries d set state = 'delivering', attempts = d.attempts + 1,
                lease_expires_at = now() + make_interval(secs => $2)
         from (select d2.id from webhook_deliveries d2
               join webhooks w on w.id = d2.webhook_id
               where ((d2.state = 'pending' and d2.next_attempt_at <= now())
                      or (d2.state = 'delivering' and d2.lease_expires_at < now()))
                 and (w.enabled or d2.event = $3)
               order by d2.next_attempt_at
               limit $1
               for update of d2 skip locked) due,
              webhooks w, organizations o
         where d.id = due.id and w.id = d.webhook_id and o.id = d.org_id
         returning d.id, d.webhook_id, d.org_id, d.event, d.event_id, d.resource_id, d.payload,
                   d.attempts, d.created_at, w.url, w.secret, o.slug as org_slug,
                   o.name as org_name",
    )
    .bind(limit)
    .bind(lease_secs)
    .bind(WEBHOOK_TEST_EVENT)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|mut c: Claimed| {
        c.secret = open(&c.secret)?;
        Ok(c)
    })
    .collect()
}

/// Keeps a delivery's body the first time it is built, so every retry
/// sends the same one.
pub async fn keep_payload(db: &PgPool, id: Uuid, payload: &Value) -> sqlx::Result<()> {
    sqlx::query("update webhook_deliveries set payload = $2 where id = $1 and payload is null")
        .bind(id)
        .bind(Json(payload))
        .execute(db)
        .await?;
    Ok(())
}

/// Gives a claim back untried (its attempt not counted).
pub async fn release(db: &PgPool, id: Uuid, attempt: i32) -> sqlx::Result<()> {
    sqlx::query(
        "update webhook_deliveries set state = 'pending', attempts = attempts - 1,
                lease_expires_at = null, next_attempt_at = now() + interval '5 seconds'
         where id = $1 and state = 'delivering' and attempts = $2",
    )
    .bind(id)
    .bind(attempt)
    .execute(db)
    .await?;
    Ok(())
}

/// One attempt's outcome, to record.
pub struct AttemptRecord<'a> {
    pub delivery_id: Uuid,
    /// The attempt the claim holds.
    pub attempt: i32,
    /// pending (retry after `retry_secs`), succeeded or failed.
    pub next_state: &'a str,
    pub retry_secs: f64,
    pub status: Option<i32>,
    pub duration_ms: i32,
    pub excerpt: Option<&'a str>,
    pub error: Option<&'a str>,
    pub succeeded: bool,
    /// A test delivery: never counts towards disabling the hook.
    pub is_test: bool,
    /// What went wrong, in a line, for the delivery and the hook's reason.
    pub summary: &'a str,
}

/// In one statement (atomic on its own, one round trip): moves the delivery
/// on while the claim is still ours, logs the attempt numbered after the
/// last one (numbers run on across redeliveries), and updates the hook's
/// failure count — on success only when there is a count to reset, so a
/// busy hook's row isn't written by every delivery — disabling it after
/// [`WEBHOOK_FAILURE_LIMIT`] failures in a row. False when the claim was
/// no longer ours.
pub async fn record_attempt(db: &PgPool, a: AttemptRecord<'_>) -> sqlx::Result<bool> {
    let ours: i64 = sqlx::query_scalar(
        "with moved as (
             update webhook_deliveries set state = $3, lease_expires_at = null,
                    last_status = $4, last_error = $5,
                    next_attempt_at = case when $3 = 'pending'
                                           then now() + make_interval(secs => $6)
                                           else next_attempt_at end,
                    finished_at = case when $3 = 'pending' then null else now() end
             where id = $1 and state = 'delivering' and attempts = $2
             returning id, webhook_id),
         logged as (
             insert into webhook_attempts (delivery_id, n, status, duration_ms, response_excerpt, error)
             select m.id,
                    coalesce((select max(a.n) from webhook_attempts a where a.delivery_id = m.id), 0) + 1,
                    $4, $7, $8, $9
             from moved m
             on conflict (delivery_id, n) do nothing),
         hook as (
             update webhooks w set
                consecutive_failures = case when $10 then 0 else w.consecutive_failures + 1 end,
                enabled = w.enabled and ($10 or w.consecutive_failures + 1 < $12),
                disabled_at = case when w.enabled and not $10 and w.consecutive_failures + 1 >= $12
                                   then now() else w.disabled_at end,
                disabled_reason = case when w.enabled and not $10 and w.consecutive_failures + 1 >= $12
                                       then 'Disabled after ' || $12 || ' failed deliveries in a row (last: ' || $13 || ').'
                                       else w.disabled_reason end
             from moved m
             where w.id = m.webhook_id and not $11
               and (not $10 or w.consecutive_failures <> 0))
         select count(*) from moved",
    )
    .bind(a.delivery_id)
    .bind(a.attempt)
    .bind(a.next_state)
    .bind(a.status)
    .bind((!a.succeeded).then_some(a.summary))
    .bind(a.retry_secs)
    .bind(a.duration_ms)
    .bind(a.excerpt)
    .bind(a.error)
    .bind(a.succeeded)
    .bind(a.is_test)
    .bind(WEBHOOK_FAILURE_LIMIT)
    .bind(a.summary)
    .fetch_one(db)
    .await?;
    Ok(ours > 0)
}

/// A failed job as a `job.failed` body describes it.
#[derive(sqlx::FromRow)]
pub struct FailedJob {
    pub id: i64,
    pub execution_id: Uuid,
    pub row_index: i32,
    pub site_url: Option<String>,
    pub attempt: i32,
    pub error_class: Option<String>,
    pub error: Option<String>,
}

/// A failed job of the organization, for its `job.failed` body.
pub async fn fetch_failed_job(
    db: &PgPool,
    org_id: Uuid,
    id: i64,
) -> sqlx::Result<Option<FailedJob>> {
    sqlx::query_as(
        "select j.id, j.execution_id, j.row_index, r.site_url, j.attempt, j.error_class, j.error
         from jobs j
         join executions e on e.id = j.execution_id
         join batches b on b.id = e.batch_id
         left join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index
         where j.org_id = $1 and j.id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Deliveries not yet sent (pending or being sent), for the metrics page.
pub async fn count_unsent(db: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from webhook_deliveries where state in ('pending', 'delivering')",
    )
    .fetch_one(db)
    .await
}
