//! rate_limit_hits: one counter per (bucket, minute), shared by every
//! process on the database.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A bucket's count in the current minute after this request.
#[derive(sqlx::FromRow)]
pub struct Hits {
    pub bucket: String,
    pub hits: i32,
    /// Seconds until the minute ends.
    pub reset_secs: f64,
}

/// Counts one request in each bucket's current minute.
pub async fn hit(db: impl PgExecutor<'_>, buckets: &[&str]) -> sqlx::Result<Vec<Hits>> {
    sqlx::query_as(
        "insert into rate_limit_hits (bucket, window_start, hits)
         select b, date_trunc('minute', now()), 1 from unnest($1::text[]) b
         on conflict (bucket, window_start) do update set hits = rate_limit_hits.hits + 1
         returning bucket, hits,
                   extract(epoch from date_trunc('minute', now()) + interval '1 minute' - now())::float8
                       as reset_secs",
    )
    .bind(buckets)
    .fetch_all(db)
    .await
}

/// An organization's API budgets per minute: all its keys together, and
/// each key.
#[derive(sqlx::FromRow)]
pub struct OrgBudgets {
    pub api_requests_per_minute: i32,
    pub key_requests_per_minute: i32,
}

/// The organization's per-minute budgets.
pub async fn org_budgets(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<OrgBudgets> {
    sqlx::query_as(
        "select api_requests_per_minute, key_requests_per_minute from organizations where id = $1",
    )
    .bind(org_id)
    .fetch_one(db)
    .await
}

/// Drops windows older than an hour.
pub async fn prune(db: &PgPool) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from rate_limit_hits where window_start < now() - interval '1 hour'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}
