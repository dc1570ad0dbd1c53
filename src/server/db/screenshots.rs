//! attempt_screenshots: the JPEG a browser attempt ended on, kept with the
//! attempt and served to the organization's members.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// Keeps the screenshot of attempt `n` of `job_id` (the last one taken
/// wins).
pub async fn store(db: &PgPool, job_id: i64, n: i32, jpeg: &[u8]) -> sqlx::Result<()> {
    sqlx::query(
        "insert into attempt_screenshots (job_id, n, org_id, jpeg)
         select $1, $2, org_id, $3 from jobs where id = $1
         on conflict (job_id, n) do update set jpeg = excluded.jpeg, created_at = now()",
    )
    .bind(job_id)
    .bind(n)
    .bind(jpeg)
    .execute(db)
    .await?;
    Ok(())
}

/// The organization an attempt (by its id) belongs to, to check the
/// caller's access.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, attempt_id: i64) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select j.org_id from attempts a join jobs j on j.id = a.job_id where a.id = $1",
    )
    .bind(attempt_id)
    .fetch_optional(db)
    .await
}

/// The attempt's screenshot, if it has one.
pub async fn fetch(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    attempt_id: i64,
) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar(
        "select s.jpeg from attempts a join attempt_screenshots s on s.job_id = a.job_id and s.n = a.n
         where a.id = $1 and s.org_id = $2",
    )
    .bind(attempt_id)
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// Removes the screenshots older than their organization's retention; safe
/// to run from any number of processes at once (each row goes once).
pub async fn delete_expired(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "delete from attempt_screenshots t using organizations o
         where o.id = t.org_id and t.created_at < now() - make_interval(days => o.retention_days)",
    )
    .execute(db)
    .await?
    .rows_affected())
}
