//! model_providers and model_calls: an organization's providers (API keys
//! sealed, see `server::secrets`), their circuit breaker, shared by every
//! process through these rows, and the calls made to them (health figures,
//! rate limits across processes).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::model::{BreakerState, ProviderKind, ProviderModel};

/// Consecutive failures that open a provider's breaker.
pub const BREAKER_THRESHOLD: i32 = 5;
/// How long an open breaker keeps a provider out before one probe.
pub const BREAKER_COOLDOWN_SECS: f64 = 30.0;

#[derive(sqlx::FromRow, Clone)]
pub struct ProviderRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    /// Sealed.
    pub api_key: Option<String>,
    pub api_key_last4: Option<String>,
    pub models: Json<Vec<ProviderModel>>,
    pub timeout_secs: i32,
    pub max_in_flight: i32,
    pub requests_per_minute: Option<i32>,
    pub tokens_per_minute: Option<i32>,
    pub enabled: bool,
    pub breaker: BreakerState,
    pub consecutive_failures: i32,
    pub open_until: Option<DateTime<Utc>>,
    pub auth_failed: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "select id, org_id, name, kind, base_url, api_key, api_key_last4, models,
        timeout_secs, max_in_flight, requests_per_minute, tokens_per_minute, enabled, breaker,
        consecutive_failures, open_until, auth_failed, last_error, last_error_at, last_success_at,
        created_at, updated_at
    from model_providers";

/// The organization a provider belongs to, to check the caller's access.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from model_providers where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One provider of the organization; `lock` holds its row until the
/// transaction ends.
pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<ProviderRow>> {
    let locking = if lock { " for update" } else { "" };
    sqlx::query_as(&format!("{SELECT} where org_id = $1 and id = $2{locking}"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The organization's providers by name.
pub async fn list(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<ProviderRow>> {
    sqlx::query_as(&format!(
        "{SELECT} where org_id = $1 order by lower(name), id"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// Providers of the organization among `ids` (a route's), in any order.
pub async fn fetch_many(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<ProviderRow>> {
    sqlx::query_as(&format!("{SELECT} where org_id = $1 and id = any($2)"))
        .bind(org_id)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// How many providers the organization has, its row locked until commit
/// so two creates at once can't both pass the limit.
pub async fn count_locking_org(tx: &mut sqlx::PgConnection, org_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query("select 1 from organizations where id = $1 for update")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar("select count(*) from model_providers where org_id = $1")
        .bind(org_id)
        .fetch_one(&mut *tx)
        .await
}

pub struct NewProvider<'a> {
    pub org_id: Uuid,
    pub name: &'a str,
    pub kind: ProviderKind,
    pub base_url: &'a str,
    pub api_key_sealed: Option<String>,
    pub api_key_last4: Option<String>,
    pub models: &'a [ProviderModel],
    pub timeout_secs: i32,
    pub max_in_flight: i32,
    pub requests_per_minute: Option<i32>,
    pub tokens_per_minute: Option<i32>,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
}

/// A new provider; `None` when its name is taken in the organization.
pub async fn insert(db: impl PgExecutor<'_>, p: NewProvider<'_>) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "insert into model_providers (org_id, name, kind, base_url, api_key, api_key_last4, models,
             timeout_secs, max_in_flight, requests_per_minute, tokens_per_minute, enabled,
             created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         on conflict (org_id, name) do nothing
         returning id",
    )
    .bind(p.org_id)
    .bind(p.name)
    .bind(p.kind)
    .bind(p.base_url)
    .bind(p.api_key_sealed)
    .bind(p.api_key_last4)
    .bind(Json(p.models))
    .bind(p.timeout_secs)
    .bind(p.max_in_flight)
    .bind(p.requests_per_minute)
    .bind(p.tokens_per_minute)
    .bind(p.enabled)
    .bind(p.created_by)
    .fetch_optional(db)
    .await
}

/// A provider's whole new settings (the service merges a change into the
/// current row first). A new key clears a refused-key mark.
pub struct ProviderUpdate<'a> {
    pub name: &'a str,
    pub base_url: &'a str,
    /// `Some` replaces the key (`Some((None, None))` removes it).
    pub api_key: Option<(Option<String>, Option<String>)>,
    pub models: &'a [ProviderModel],
    pub timeout_secs: i32,
    pub max_in_flight: i32,
    pub requests_per_minute: Option<i32>,
    pub tokens_per_minute: Option<i32>,
    pub enabled: bool,
}

/// Writes a change; false when the new name is taken.
pub async fn update(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    u: ProviderUpdate<'_>,
) -> sqlx::Result<bool> {
    let key_changed = u.api_key.is_some();
    let (key, last4) = u.api_key.unwrap_or((None, None));
    let done = sqlx::query(
        "update model_providers set
            name = $3, base_url = $4,
            api_key = case when $5 then $6 else api_key end,
            api_key_last4 = case when $5 then $7 else api_key_last4 end,
            auth_failed = case when $5 then false else auth_failed end,
            models = $8, timeout_secs = $9, max_in_flight = $10, requests_per_minute = $11,
            tokens_per_minute = $12, enabled = $13, updated_at = now()
         where org_id = $1 and id = $2
           and not exists (select 1 from model_providers o
                           where o.org_id = $1 and o.id <> $2 and o.name = $3)",
    )
    .bind(org_id)
    .bind(id)
    .bind(u.name)
    .bind(u.base_url)
    .bind(key_changed)
    .bind(key)
    .bind(last4)
    .bind(Json(u.models))
    .bind(u.timeout_secs)
    .bind(u.max_in_flight)
    .bind(u.requests_per_minute)
    .bind(u.tokens_per_minute)
    .bind(u.enabled)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a provider; how many were deleted.
pub async fn delete(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from model_providers where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// The last hour of a provider's calls.
#[derive(sqlx::FromRow, Default)]
pub struct HourFigures {
    pub provider_id: Uuid,
    pub requests: i64,
    pub failures: i64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// Requests, failures and latency percentiles of the last hour, per
/// provider among `ids`.
pub async fn hour_figures(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<HourFigures>> {
    sqlx::query_as(
        "select provider_id, count(*) as requests,
                count(*) filter (where outcome <> 'ok') as failures,
                percentile_cont(0.5) within group (order by latency_ms) as p50_ms,
                percentile_cont(0.95) within group (order by latency_ms) as p95_ms
         from model_calls
         where provider_id = any($1) and at > now() - interval '1 hour'
         group by provider_id",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Whether a worker may send a request now, by the shared breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: send.
    Send,
    /// The cooldown ended and this caller holds the one probe.
    Probe,
    /// Open (or a probe is out), or its key was refused: skip it.
    Skip,
}

/// Asks the breaker for a request. An open breaker past its cooldown lets
/// exactly one caller through as a probe (the update is the lock: one
/// process wins it); a probe that never reported back is replaced after
/// another cooldown.
pub async fn admit(db: &PgPool, id: Uuid) -> sqlx::Result<Admission> {
    let row: Option<(BreakerState, bool, bool)> = sqlx::query_as(
        "select breaker, auth_failed, open_until is not null and open_until <= now()
         from model_providers where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let Some((state, auth_failed, cooled)) = row else {
        return Ok(Admission::Skip);
    };
    if auth_failed {
        return Ok(Admission::Skip);
    }
    match state {
        BreakerState::Closed => Ok(Admission::Send),
        BreakerState::Open | BreakerState::HalfOpen if cooled => {
            let won = sqlx::query(
                "update model_providers set breaker = 'half_open',
                        open_until = now() + make_interval(secs => $2)
                 where id = $1 and breaker in ('open', 'half_open') and open_until <= now()",
            )
            .bind(id)
            .bind(BREAKER_COOLDOWN_SECS)
            .execute(db)
            .await?
            .rows_affected()
                == 1;
            Ok(if won {
                Admission::Probe
            } else {
                Admission::Skip
            })
        }
        _ => Ok(Admission::Skip),
    }
}

/// How a call ended, for the breaker and the figures.
pub struct CallRecord<'a> {
    pub provider_id: Uuid,
    pub model: &'a str,
    /// ok, rate_limited, server_error, timeout, connection, auth, refused,
    /// invalid_output.
    pub outcome: &'a str,
    pub latency_ms: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// What went wrong, shown to admins.
    pub error: Option<&'a str>,
    /// Whether this failure counts against the provider's health (a
    /// refusal of one job's input does not).
    pub counts_as_failure: bool,
    /// A refused key: skipped until an admin changes it.
    pub auth_failed: bool,
}

/// Records a call and moves the breaker: a success closes it; a failure
/// that counts adds one, and the threshold (or a failed probe) opens it
/// for the cooldown. The call itself is always recorded (health figures and
/// rate limits count them).
pub async fn record_call(db: &PgPool, c: CallRecord<'_>) -> sqlx::Result<()> {
    let ok = c.outcome == "ok";
    sqlx::query(
        "with call as (
             insert into model_calls (provider_id, model, outcome, latency_ms, input_tokens,
                                      output_tokens)
             values ($1, $2, $3, $4, $5, $6))
         update model_providers set
            breaker = case when $7 then 'closed'
                           when not $8 then breaker
                           when breaker = 'half_open' or consecutive_failures + 1 >= $10 then 'open'
                           else breaker end,
            open_until = case when $7 then null
                              when not $8 then open_until
                              when breaker = 'half_open' or consecutive_failures + 1 >= $10
                                  then now() + make_interval(secs => $11)
                              else open_until end,
            consecutive_failures = case when $7 then 0
                                        when $8 then consecutive_failures + 1
                                        else consecutive_failures end,
            last_success_at = case when $7 then now() else last_success_at end,
            last_error = case when $7 then last_error else coalesce($9, last_error) end,
            last_error_at = case when $7 or $9 is null then last_error_at else now() end,
            auth_failed = auth_failed or $12
         where id = $1
           -- A success on a healthy provider changes nothing but the time of
           -- the last success: write that at most once a second, so the
           -- calls of a large run don't queue on this one row's lock.
           and not ($7 and breaker = 'closed' and consecutive_failures = 0
                    and last_success_at > now() - interval '1 second')",
    )
    .bind(c.provider_id)
    .bind(c.model)
    .bind(c.outcome)
    .bind(c.latency_ms.min(i32::MAX as i64) as i32)
    .bind(c.input_tokens.min(i32::MAX as i64) as i32)
    .bind(c.output_tokens.min(i32::MAX as i64) as i32)
    .bind(ok)
    .bind(c.counts_as_failure)
    .bind(c.error)
    .bind(BREAKER_THRESHOLD)
    .bind(BREAKER_COOLDOWN_SECS)
    .bind(c.auth_failed)
    .execute(db)
    .await?;
    Ok(())
}

/// Requests and tokens sent to a provider in the last minute, by every
/// process.
pub async fn last_minute(db: &PgPool, id: Uuid) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "select count(*), coalesce(sum(input_tokens + output_tokens), 0)::bigint
         from model_calls where provider_id = $1 and at > now() - interval '1 minute'",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

/// Forgets calls older than a day (the figures look back an hour).
pub async fn prune_calls(db: &PgPool) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from model_calls where at < now() - interval '1 day'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}
