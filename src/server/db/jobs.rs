//! executions, jobs and attempts: the queue's SQL. A claim happens inside a
//! short transaction that locks the chosen execution's row (other workers
//! skip it and serve another execution), counts its running jobs with a
//! fresh snapshot, and takes one queued job only if that count is below the
//! execution's concurrency — so the limit holds however many workers run.
//! Every later write names the job, the attempt and the lease owner: a
//! worker that lost its lease can't overwrite a newer attempt.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub struct NewExecution<'a> {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub batch_id: Uuid,
    pub instruction_version: i32,
    pub mode: &'a str,
    pub sample_size: Option<i32>,
    pub agent: &'a str,
    pub concurrency: i32,
    pub max_retries: i32,
    pub timeout_secs: i32,
    pub price_per_job_micros: i64,
    pub state: &'a str,
    pub created_by: Option<Uuid>,
}

pub async fn insert_execution(conn: &mut PgConnection, e: &NewExecution<'_>) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into executions (org_id, project_id, batch_id, instruction_version, mode,
                                 sample_size, agent, concurrency, max_retries, state, created_by,
                                 started_at, timeout_secs, price_per_job_micros)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 case when $10 = 'running' then now() end, $12, $13)
         returning id",
    )
    .bind(e.org_id)
    .bind(e.project_id)
    .bind(e.batch_id)
    .bind(e.instruction_version)
    .bind(e.mode)
    .bind(e.sample_size)
    .bind(e.agent)
    .bind(e.concurrency)
    .bind(e.max_retries)
    .bind(e.state)
    .bind(e.created_by)
    .bind(e.timeout_secs)
    .bind(e.price_per_job_micros)
    .fetch_one(conn)
    .await
}

/// Which rows of the batch become jobs.
pub enum Sample {
    All,
    First(i64),
    Random(i64),
}

/// One queued job per chosen row of the batch `batch_seq`.
pub async fn enqueue_rows(
    conn: &mut PgConnection,
    execution_id: Uuid,
    org_id: Uuid,
    batch_seq: i64,
    sample: Sample,
) -> sqlx::Result<u64> {
    let (order, limit) = match sample {
        Sample::All => ("row_index", None),
        Sample::First(n) => ("row_index", Some(n)),
        Sample::Random(n) => ("random()", Some(n)),
    };
    let sql = format!(
        "insert into jobs (execution_id, org_id, row_index)
         select $1, $2, row_index from (
             select row_index from batch_rows where batch_seq = $3
             order by {order} limit $4) chosen
         order by row_index"
    );
    Ok(sqlx::query(&sql)
        .bind(execution_id)
        .bind(org_id)
        .bind(batch_seq)
        .bind(limit)
        .execute(conn)
        .await?
        .rows_affected())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub execution_id: Uuid,
    pub row_index: i32,
    pub attempt: i32,
}

/// Claims one job for `worker`, fairly across running executions, or
/// `None` when no execution has both a ready job and a free slot.
pub async fn claim(db: &PgPool, worker: &str, lease: Duration) -> sqlx::Result<Option<Claimed>> {
    Ok(claim_many(db, worker, lease, 1).await?.into_iter().next())
}

/// What a claim found when it got nothing.
pub async fn work_waiting(db: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from executions e where e.state = 'running'
                        and exists (select 1 from jobs q where q.execution_id = e.id
                                    and q.state = 'queued' and q.available_at <= now()))",
    )
    .fetch_one(db)
    .await
}

/// Claims up to `max` jobs of one execution (the one served longest ago
/// that has ready jobs and free slots), in one transaction.
pub async fn claim_many(
    db: &PgPool,
    worker: &str,
    lease: Duration,
    max: i64,
) -> sqlx::Result<Vec<Claimed>> {
    // A few tries: a chosen execution may turn out full or drained by the
    // time its lock is held; then the next one is tried.
    for _ in 0..4 {
        let mut tx = db.begin().await?;
        let execution: Option<(Uuid, i32)> = sqlx::query_as(
            "select e.id, e.concurrency from executions e
             where e.state = 'running'
               and exists (select 1 from jobs q where q.execution_id = e.id
                           and q.state = 'queued' and q.available_at <= now())
             order by e.last_claimed_at nulls first, e.created_at
             limit 1
             for update skip locked",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((execution_id, concurrency)) = execution else {
            return Ok(vec![]);
        };
        // A new statement, so a new snapshot: every claim committed before
        // we got the lock is counted.
        let running: i64 = sqlx::query_scalar(
            "select count(*) from jobs where execution_id = $1 and state = 'running'",
        )
        .bind(execution_id)
        .fetch_one(&mut *tx)
        .await?;
        // Served now either way, so a full execution doesn't stay first in
        // line and block the others.
        sqlx::query("update executions set last_claimed_at = clock_timestamp() where id = $1")
            .bind(execution_id)
            .execute(&mut *tx)
            .await?;
        if running >= concurrency as i64 {
            tx.commit().await?;
            continue;
        }
        let take = max.min(concurrency as i64 - running);
        let claimed: Vec<Claimed> = sqlx::query_as(
            "with taken as (
                 update jobs set state = 'running', attempt = attempt + 1, lease_owner = $2,
                        lease_expires_at = now() + make_interval(secs => $3),
                        started_at = coalesce(started_at, now())
                 where id in (select id from jobs
                              where execution_id = $1 and state = 'queued'
                                and available_at <= now()
                              order by available_at, id
                              limit $4
                              for update skip locked)
                 returning id, execution_id, row_index, attempt),
             logged as (
                 insert into attempts (job_id, n, worker, started_at)
                 select id, attempt, $2, now() from taken)
             select id, execution_id, row_index, attempt from taken order by id",
        )
        .bind(execution_id)
        .bind(worker)
        .bind(lease.as_secs_f64())
        .bind(take)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if !claimed.is_empty() {
            return Ok(claimed);
        }
    }
    Ok(vec![])
}

/// Extends the lease; false when the job is no longer this worker's
/// current attempt (it must stop working on it).
pub async fn renew(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    lease: Duration,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update jobs set lease_expires_at = now() + make_interval(secs => $4)
         where id = $1 and attempt = $2 and lease_owner = $3 and state = 'running'",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the result; false (and nothing written) for a stale attempt.
pub async fn complete(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    extracted: &serde_json::Value,
    raw_output: &str,
) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "update jobs set state = 'succeeded', extracted = $4, raw_output = $5,
                error_class = null, error = null, lease_owner = null, lease_expires_at = null,
                finished_at = now()
         where id = $1 and attempt = $2 and lease_owner = $3 and state = 'running'",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(worker)
    .bind(sqlx::types::Json(extracted))
    .bind(raw_output)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    finish_attempt(&mut tx, job, "succeeded", None, None).await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Queued again, claimable from the given time.
    Retrying,
    /// Out of retries, or a permanent error: the job failed.
    Final,
    /// Not this worker's current attempt: nothing written.
    Stale,
}

/// Records a failed attempt. `retry_at` is when to try again (None: do
/// not retry); the retry limit is the execution's.
pub async fn fail(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    error_class: &str,
    message: &str,
    retry_at: Option<DateTime<Utc>>,
) -> sqlx::Result<Failed> {
    let mut tx = db.begin().await?;
    let state: Option<String> = sqlx::query_scalar(
        "update jobs j set
            state = case when $6::timestamptz is not null and j.attempt <= e.max_retries
                         then 'queued' else 'failed' end,
            available_at = coalesce($6, j.available_at),
            error_class = $4, error = $5, lease_owner = null, lease_expires_at = null,
            finished_at = case when $6::timestamptz is not null and j.attempt <= e.max_retries
                               then null else now() end
         from executions e
         where e.id = j.execution_id and j.id = $1 and j.attempt = $2 and j.lease_owner = $3
           and j.state = 'running'
         returning j.state",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(worker)
    .bind(error_class)
    .bind(message)
    .bind(retry_at)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match state.as_deref() {
        None => return Ok(Failed::Stale),
        Some("queued") => Failed::Retrying,
        _ => Failed::Final,
    };
    let label = if outcome == Failed::Retrying {
        "retrying"
    } else {
        "failed"
    };
    finish_attempt(&mut tx, job, label, Some(error_class), Some(message)).await?;
    tx.commit().await?;
    Ok(outcome)
}

async fn finish_attempt(
    conn: &mut PgConnection,
    job: &Claimed,
    outcome: &str,
    error_class: Option<&str>,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update attempts a set finished_at = now(), outcome = $3, error_class = $4, error = $5,
                duration_ms = (extract(epoch from now() - a.started_at) * 1000)::int,
                cost_micros = e.price_per_job_micros
         from jobs j join executions e on e.id = j.execution_id
         where j.id = a.job_id and a.job_id = $1 and a.n = $2",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(outcome)
    .bind(error_class)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Returns jobs whose lease ran out (their worker died or hung) to the
/// queue — or fails them once the execution's retries are spent. Returns
/// how many it touched.
pub async fn reap_expired(db: &PgPool) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let reaped: Vec<(i64, i32)> = sqlx::query_as(
        "update jobs j set
            state = case when j.attempt <= e.max_retries then 'queued' else 'failed' end,
            error_class = 'lease_expired',
            error = 'The worker running this job stopped answering.',
            lease_owner = null, lease_expires_at = null, available_at = now(),
            finished_at = case when j.attempt <= e.max_retries then null else now() end
         from executions e
         where e.id = j.execution_id and j.state = 'running' and j.lease_expires_at < now()
         returning j.id, j.attempt",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, n) in &reaped {
        sqlx::query(
            "update attempts set finished_at = now(), outcome = 'lease_expired',
                    error_class = 'lease_expired'
             where job_id = $1 and n = $2 and finished_at is null",
        )
        .bind(id)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(reaped.len() as u64)
}

/// Jobs per state for one execution, counted from the table.
pub async fn counts(db: &PgPool, execution_id: Uuid) -> sqlx::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select state, count(*) from jobs where execution_id = $1 group by state")
            .bind(execution_id)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Marks a running job cancelled (the execution was stopped); fenced like
/// every other write.
pub async fn cancel_running(db: &PgPool, job: &Claimed, worker: &str) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "update jobs set state = 'cancelled', lease_owner = null, lease_expires_at = null,
                finished_at = now()
         where id = $1 and attempt = $2 and lease_owner = $3 and state = 'running'",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    finish_attempt(&mut tx, job, "cancelled", None, None).await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends an execution whose jobs are all finished: `completed`, or
/// `cancelled` when it was being stopped.
pub async fn settle(db: &PgPool, execution_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update executions set
            state = case when state = 'stopping' then 'cancelled' else 'completed' end,
            finished_at = now()
         where id = $1 and state in ('running', 'stopping', 'paused')
           and not exists (select 1 from jobs where execution_id = $1
                           and state in ('queued', 'running'))",
    )
    .bind(execution_id)
    .execute(db)
    .await?;
    Ok(())
}

/// What a worker needs to run a job.
#[derive(sqlx::FromRow)]
pub struct JobContext {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub agent: String,
    pub timeout_secs: i32,
    pub site_url: String,
}

pub async fn context(db: &PgPool, job: &Claimed) -> sqlx::Result<Option<JobContext>> {
    sqlx::query_as(
        "select e.org_id, e.project_id, e.agent, e.timeout_secs, r.site_url
         from jobs j
         join executions e on e.id = j.execution_id
         join batches b on b.id = e.batch_id
         join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index
         where j.id = $1",
    )
    .bind(job.id)
    .fetch_optional(db)
    .await
}

pub async fn execution_state(db: &PgPool, execution_id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select state from executions where id = $1")
        .bind(execution_id)
        .fetch_optional(db)
        .await
}
