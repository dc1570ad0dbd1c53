//! attempt_pages: the page each attempt read its values from, compressed,
//! for "view the page as the agent saw it" and the snapshot source.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// Keeps the page of attempt `n` of `job_id` (gzip bytes, and the size
/// before compression).
pub async fn store(
    db: &PgPool,
    job_id: i64,
    n: i32,
    url: &str,
    html_gz: &[u8],
    bytes: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into attempt_pages (job_id, n, org_id, url, html_gz, bytes)
         select $1, $2, org_id, $3, $4, $5 from jobs where id = $1
         on conflict (job_id, n) do update
             set url = excluded.url, html_gz = excluded.html_gz, bytes = excluded.bytes,
                 created_at = now()",
    )
    .bind(job_id)
    .bind(n)
    .bind(url)
    .bind(html_gz)
    .bind(bytes)
    .execute(db)
    .await?;
    Ok(())
}

/// A stored page: where it was read and its gzip-compressed HTML.
#[derive(sqlx::FromRow)]
pub struct StoredPage {
    pub url: String,
    pub html_gz: Vec<u8>,
}

/// The page of an attempt (by its id) in `org_id`, if it kept one.
pub async fn fetch(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    attempt_id: i64,
) -> sqlx::Result<Option<StoredPage>> {
    sqlx::query_as(
        "select p.url, p.html_gz from attempts a
         join attempt_pages p on p.job_id = a.job_id and p.n = a.n
         where a.id = $1 and p.org_id = $2",
    )
    .bind(attempt_id)
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// The latest page kept for row `row_index` by execution `execution_id`:
/// what the snapshot source reads.
pub async fn for_row(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    row_index: i32,
) -> sqlx::Result<Option<StoredPage>> {
    sqlx::query_as(
        "select p.url, p.html_gz from jobs j
         join attempt_pages p on p.job_id = j.id
         where j.execution_id = $1 and j.row_index = $2
         order by p.n desc limit 1",
    )
    .bind(execution_id)
    .bind(row_index)
    .fetch_optional(db)
    .await
}

/// The rows of execution `execution_id` with a kept page, in order.
pub async fn rows_with_pages(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar(
        "select j.row_index from jobs j
         where j.execution_id = $1
           and exists (select 1 from attempt_pages p where p.job_id = j.id)
         order by j.row_index",
    )
    .bind(execution_id)
    .fetch_all(db)
    .await
}

/// Removes the kept pages older than their organization's retention; safe
/// to run from any number of processes at once (each row goes once).
pub async fn delete_expired(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "delete from attempt_pages t using organizations o
         where o.id = t.org_id and t.created_at < now() - make_interval(days => o.retention_days)",
    )
    .execute(db)
    .await?
    .rows_affected())
}
