//! live_watch and live_frames: the live view of running browser jobs,
//! through Postgres so that a viewer on one `mino` process sees a worker
//! on another. Viewers say they watch; workers take frames only then.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// Marks execution `execution_id` as watched for `secs` seconds more.
pub async fn watch(db: impl PgExecutor<'_>, execution_id: Uuid, secs: i32) -> sqlx::Result<()> {
    sqlx::query(
        "insert into live_watch (execution_id, until)
         values ($1, now() + make_interval(secs => $2))
         on conflict (execution_id) do update set until = excluded.until",
    )
    .bind(execution_id)
    .bind(secs as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether somebody watches the execution of job `job_id` now.
pub async fn is_watched(db: impl PgExecutor<'_>, job_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from jobs j join live_watch w on w.execution_id = j.execution_id
                        where j.id = $1 and w.until > now())",
    )
    .bind(job_id)
    .fetch_one(db)
    .await
}

/// Keeps `jpeg` as job `job_id`'s latest frame.
pub async fn store(db: impl PgExecutor<'_>, job_id: i64, jpeg: &[u8]) -> sqlx::Result<()> {
    sqlx::query(
        "insert into live_frames (job_id, org_id, jpeg)
         select $1, org_id, $2 from jobs where id = $1 and state = 'running'
         on conflict (job_id) do update set jpeg = excluded.jpeg, taken_at = now()",
    )
    .bind(job_id)
    .bind(jpeg)
    .execute(db)
    .await?;
    Ok(())
}

/// A frame and when it was taken.
#[derive(sqlx::FromRow)]
pub struct Frame {
    pub jpeg: Vec<u8>,
    pub taken_at: DateTime<Utc>,
}

/// Job `job_id`'s latest frame in `org_id`, while the job runs.
pub async fn latest(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    job_id: i64,
) -> sqlx::Result<Option<Frame>> {
    sqlx::query_as(
        "select f.jpeg, f.taken_at from live_frames f join jobs j on j.id = f.job_id
         where f.job_id = $1 and f.org_id = $2 and j.state = 'running'",
    )
    .bind(job_id)
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// Forgets job `job_id`'s frame (its attempt ended).
pub async fn clear(db: impl PgExecutor<'_>, job_id: i64) -> sqlx::Result<()> {
    sqlx::query("delete from live_frames where job_id = $1")
        .bind(job_id)
        .execute(db)
        .await?;
    Ok(())
}

/// How many frames are kept now (for tests and metrics).
pub async fn count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from live_frames")
        .fetch_one(db)
        .await
}
