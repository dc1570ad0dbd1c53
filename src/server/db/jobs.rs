//! executions, jobs and attempts: the queue's SQL. A claim is one statement
//! that locks the chosen execution's row (other workers skip it and serve
//! another execution), reads its running count (claimed − finished, see the
//! migration for why two counters) and takes queued jobs only up to the
//! execution's concurrency — so the limit holds however many workers run.
//! Every later write names the job, the attempt and the lease owner: a
//! worker that lost its lease can't overwrite a newer attempt.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::model::{AgentKind, ExecutionMode, ExecutionState, Verdict};
use crate::server::evaluate::JobVerdict;

pub struct NewExecution<'a> {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub batch_id: Uuid,
    pub instruction_version: i32,
    pub mode: ExecutionMode,
    pub sample_size: Option<i32>,
    pub agent: AgentKind,
    pub concurrency: i32,
    pub max_retries: i32,
    pub timeout_secs: i32,
    pub price_per_job_micros: i64,
    pub state: ExecutionState,
    pub created_by: Option<Uuid>,
    pub fields: &'a [crate::model::OutputField],
    pub remote_url: Option<&'a str>,
    pub rerun_of: Option<Uuid>,
    pub extractor: crate::model::Extractor,
    pub wait_for: Option<&'a str>,
    pub steps: &'a [crate::model::BrowserStep],
    pub keep_pages: bool,
    /// A snapshot run: the execution whose kept pages it reads.
    pub pages_from: Option<Uuid>,
    /// llm extractor: the route and the page's token budget.
    pub model_route: &'a [crate::model::RouteEntry],
    pub page_token_budget: i32,
    /// llm runs: what a job is expected to cost, when a test run measured it.
    pub estimated_job_cost_micros: Option<i64>,
}

/// Creates an execution and its counters row; returns its id.
pub async fn insert_execution(conn: &mut PgConnection, e: &NewExecution<'_>) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "with created as (
         insert into executions (org_id, project_id, batch_id, instruction_version, mode,
                                 sample_size, agent, concurrency, max_retries, state, created_by,
                                 started_at, timeout_secs, price_per_job_micros, fields,
                                 remote_url, rerun_of, extractor, wait_for, steps, keep_pages,
                                 pages_from, model_route, page_token_budget,
                                 estimated_job_cost_micros)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 case when $10 = 'running' then now() end, $12, $13, $14, $15, $16,
                 $17, $18, $19, $20, $21, $22, $23, $24)
         returning id),
         counters as (insert into execution_counters (execution_id) select id from created)
         select id from created",
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
    .bind(Json(e.fields))
    .bind(e.remote_url)
    .bind(e.rerun_of)
    .bind(e.extractor)
    .bind(e.wait_for)
    .bind(Json(e.steps))
    .bind(e.keep_pages)
    .bind(e.pages_from)
    .bind(Json(e.model_route))
    .bind(e.page_token_budget)
    .bind(e.estimated_job_cost_micros)
    .fetch_one(conn)
    .await
}

/// One queued job per row index given, in row order.
pub async fn enqueue_row_indexes(
    conn: &mut PgConnection,
    execution_id: Uuid,
    org_id: Uuid,
    rows: &[i32],
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "insert into jobs (execution_id, org_id, row_index)
         select $1, $2, r from unnest($3::int[]) r order by r",
    )
    .bind(execution_id)
    .bind(org_id)
    .bind(rows)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Cancels the execution's queued jobs (a stop); running ones end on
/// their own.
pub async fn cancel_queued(db: impl sqlx::PgExecutor<'_>, execution_id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update jobs set state = 'cancelled', finished_at = now()
         where execution_id = $1 and state = 'queued'",
    )
    .bind(execution_id)
    .execute(db)
    .await?
    .rows_affected())
}

/// The execution a job belongs to.
pub async fn fetch_execution_id(
    db: impl sqlx::PgExecutor<'_>,
    job_id: i64,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select execution_id from jobs where id = $1")
        .bind(job_id)
        .fetch_optional(db)
        .await
}

/// Deletes those of `ids` that finished (queued and running jobs belong to
/// the queue; only finished ones can go).
pub async fn delete_finished(
    db: impl sqlx::PgExecutor<'_>,
    execution_id: Uuid,
    ids: &[i64],
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "delete from jobs where execution_id = $1 and id = any($2)
           and state in ('succeeded', 'failed', 'cancelled')",
    )
    .bind(execution_id)
    .bind(ids)
    .execute(db)
    .await?
    .rows_affected())
}

/// Moves those of `ids` still queued to a final `state` (a cancel).
pub async fn finish_queued(
    db: impl sqlx::PgExecutor<'_>,
    execution_id: Uuid,
    ids: &[i64],
    state: crate::model::JobState,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update jobs set state = $3, finished_at = now()
         where execution_id = $1 and id = any($2) and state = 'queued'",
    )
    .bind(execution_id)
    .bind(ids)
    .bind(state)
    .execute(db)
    .await?
    .rows_affected())
}

/// Queued and running jobs across every execution, for the metrics page.
pub async fn count_unfinished(db: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "select s, (select count(*) from jobs where state = s)
         from unnest(array['queued', 'running']) s",
    )
    .fetch_all(db)
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
    /// The row's site and other columns, read with the claim so a worker
    /// needs no further query before it starts.
    pub site_url: String,
    pub inputs: Json<Map<String, Value>>,
    /// The row's expected values, to judge the result when it comes.
    pub ground_truth: Json<Map<String, Value>>,
}

/// Claims one job for `worker`, fairly across running executions, or
/// `None` when no execution has both a ready job and a free slot.
pub async fn claim(db: &PgPool, worker: &str, lease: Duration) -> sqlx::Result<Option<Claimed>> {
    Ok(claim_many(db, worker, lease, 1).await?.into_iter().next())
}

/// Whether some running execution has a ready job and a free slot (after
/// a claim got nothing: if so, it lost a race and should try again soon).
pub async fn work_waiting(db: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from executions e
                        join execution_counters c on c.execution_id = e.id
                        where e.state = 'running' and e.claimed - c.finished < e.concurrency
                          and exists (select 1 from jobs q where q.execution_id = e.id
                                      and q.state = 'queued' and q.available_at <= now()))",
    )
    .fetch_one(db)
    .await
}

/// Most jobs one claim takes.
pub const CLAIM_LIMIT: i64 = 50;

/// Claims up to `max` jobs of one execution — the organization served
/// longest ago, then its execution served longest ago, among those with
/// ready jobs and free slots — in one statement. The execution's row is
/// locked (others skip it and serve another execution) and its `running`
/// count read from the row's newest version, so the claim never takes
/// more than `concurrency - running` jobs however many workers claim.
pub async fn claim_many(
    db: &PgPool,
    worker: &str,
    lease: Duration,
    max: i64,
) -> sqlx::Result<Vec<Claimed>> {
    // The candidate count is written into the statement (one cached plan
    // per value, at most CLAIM_LIMIT): with a bound parameter the planner
    // guesses a large limit and scans and sorts the execution's jobs
    // instead of reading the first few from the claim index.
    let max = max.clamp(1, CLAIM_LIMIT);
    let sql = format!(
        "with chosen as (
             select e.id, e.concurrency - (e.claimed - c.finished) as free,
                    (select b.seq from batches b where b.id = e.batch_id) as batch_seq
             from executions e join execution_counters c on c.execution_id = e.id
             where e.state = 'running' and e.claimed - c.finished < e.concurrency
               and exists (select 1 from jobs q where q.execution_id = e.id
                           and q.state = 'queued' and q.available_at <= now())
             -- An organization with many executions gets no more than one
             -- with a single execution.
             order by (select max(o.last_claimed_at) from executions o
                       where o.org_id = e.org_id and o.state = 'running') nulls first,
                      e.last_claimed_at nulls first, e.created_at
             limit 1
             -- Not FOR UPDATE: that would also block the foreign-key checks
             -- (FOR KEY SHARE) of every write to this execution's jobs.
             for no key update of e skip locked),
         -- Up to {max} of the oldest ready jobs; only the first `free` are
         -- taken. Locking a few more costs nothing: no one else claims from
         -- this execution while its row is locked.
         candidates as (
             select q.id, q.available_at from jobs q
             where q.execution_id = (select id from chosen) and q.state = 'queued'
               and q.available_at <= now()
             order by q.available_at, q.id
             limit {max}
             for update of q skip locked),
         picked as (
             select id from candidates order by available_at, id
             limit (select free from chosen)),
         taken as (
             update jobs j set state = 'running', attempt = j.attempt + 1, lease_owner = $1,
                    lease_expires_at = now() + make_interval(secs => $2),
                    started_at = coalesce(j.started_at, now())
             from picked where j.id = picked.id
             returning j.id, j.execution_id, j.row_index, j.attempt),
         logged as (
             insert into attempts (job_id, n, worker, started_at)
             select id, attempt, $1, now() from taken),
         -- The only statement that moves jobs into 'running' counts them.
         served as (
             update executions x set last_claimed_at = clock_timestamp(),
                    claimed = x.claimed + (select count(*) from taken)
             from chosen where x.id = chosen.id)
         -- The batch as a single value, so both columns of the rows' key
         -- are index conditions (joined through batches, the planner once
         -- scanned the whole batch for every job).
         select t.id, t.execution_id, t.row_index, t.attempt, r.site_url, r.inputs,
                r.ground_truth
         from taken t
         join batch_rows r on r.batch_seq = (select batch_seq from chosen)
                          and r.row_index = t.row_index
         order by t.id"
    );
    sqlx::query_as(&sql)
        .bind(worker)
        .bind(lease.as_secs_f64())
        .fetch_all(db)
        .await
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

/// A successful attempt to record.
pub struct Completion {
    pub id: i64,
    pub attempt: i32,
    pub extracted: Value,
    pub raw_output: String,
    /// The attempt's log lines (a JSON array).
    pub log: Value,
    /// The evaluation against the row's expected values.
    pub verdict: JobVerdict,
    /// The llm extractor's provider, model, tokens and cost (the attempt
    /// then costs its tokens, not the flat price per job).
    pub usage: Option<crate::server::agents::extract::llm::Usage>,
}

/// Records many successful attempts (the executor batches them: a round
/// trip per job would cap throughput): one statement finishes the jobs with
/// their verdicts and their attempts. Only attempts `worker` still holds
/// are written; returns their job ids and executions.
pub async fn complete_many(
    db: &PgPool,
    worker: &str,
    done: &[Completion],
) -> sqlx::Result<Vec<(i64, Uuid)>> {
    let mut tx = db.begin().await?;
    let ours = complete_in(&mut tx, worker, done).await?;
    tx.commit().await?;
    Ok(ours)
}

/// The result writer's transaction: records `done` as [`complete_many`]
/// does, then settles `moved` (ends those with nothing left, tells live
/// views) — one commit for both. Returns the jobs written.
pub async fn complete_and_settle(
    db: &PgPool,
    worker: &str,
    done: &[Completion],
    moved: &[Uuid],
) -> sqlx::Result<Vec<(i64, Uuid)>> {
    let mut tx = db.begin().await?;
    let ours = complete_in(&mut tx, worker, done).await?;
    settle_in(&mut tx, moved).await?;
    tx.commit().await?;
    Ok(ours)
}

/// One statement: the jobs leave 'running' with their results and
/// verdicts (one new row version per job: its indexes are updated once),
/// and their attempts finish with their cost.
async fn complete_in(
    conn: &mut PgConnection,
    worker: &str,
    done: &[Completion],
) -> sqlx::Result<Vec<(i64, Uuid)>> {
    if done.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<i64> = done.iter().map(|c| c.id).collect();
    let attempts: Vec<i32> = done.iter().map(|c| c.attempt).collect();
    let extracted: Vec<String> = done.iter().map(|c| c.extracted.to_string()).collect();
    let raw: Vec<&str> = done.iter().map(|c| c.raw_output.as_str()).collect();
    let logs: Vec<String> = done.iter().map(|c| c.log.to_string()).collect();
    let usage = |f: fn(&crate::server::agents::extract::llm::Usage) -> Option<String>| {
        done.iter()
            .map(|c| c.usage.as_ref().and_then(f))
            .collect::<Vec<Option<String>>>()
    };
    let providers = usage(|u| Some(u.provider.clone()));
    let models = usage(|u| Some(u.model.clone()));
    let tokens_in: Vec<i64> = done
        .iter()
        .map(|c| c.usage.as_ref().map_or(0, |u| u.input_tokens))
        .collect();
    let tokens_out: Vec<i64> = done
        .iter()
        .map(|c| c.usage.as_ref().map_or(0, |u| u.output_tokens))
        .collect();
    let costs: Vec<Option<i64>> = done
        .iter()
        .map(|c| c.usage.as_ref().map(|u| u.cost_micros))
        .collect();
    let verdicts: Vec<&str> = done.iter().map(|c| c.verdict.verdict.as_str()).collect();
    let field_results: Vec<String> = done
        .iter()
        .map(|c| Value::Object(c.verdict.fields.clone()).to_string())
        .collect();
    let accuracies: Vec<Option<f64>> = done.iter().map(|c| c.verdict.accuracy).collect();
    // This statement counts the jobs it finishes (`counted`); the row
    // trigger that counts every other path skips them for the rest of this
    // transaction, which moves no other job out of 'running'.
    sqlx::query("select set_config('mino.finished_counted', 'on', true)")
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(
        "with input as (
             select * from unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],
                                  $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[],
                                  $12::text[], $13::text[], $14::float8[])
                 as d(id, attempt, extracted, raw, log, provider, model, tokens_in, tokens_out,
                      cost, verdict, field_results, accuracy)),
         done as (
             update jobs j set state = 'succeeded', extracted = d.extracted::json,
                    raw_output = d.raw, error_class = null, error = null, progress = null,
                    lease_owner = null, lease_expires_at = null, finished_at = now(),
                    verdict = d.verdict, field_results = d.field_results::json,
                    accuracy = d.accuracy
             from input d
             where j.id = d.id and j.attempt = d.attempt and j.lease_owner = $6
               and j.state = 'running'
             returning j.id, j.attempt, j.execution_id),
         finished as (
             update attempts a set finished_at = now(), outcome = 'succeeded',
                    duration_ms = (extract(epoch from now() - a.started_at) * 1000)::int,
                    cost_micros = coalesce(d.cost, e.price_per_job_micros), log = d.log::json,
                    provider = d.provider, model = d.model,
                    input_tokens = d.tokens_in::int, output_tokens = d.tokens_out::int
             from done join executions e on e.id = done.execution_id
                  join input d on d.id = done.id
             where a.job_id = done.id and a.n = done.attempt),
         counted as (
             update execution_counters c set finished = c.finished + n.jobs
             from (select execution_id, count(*) as jobs from done group by 1) n
             where c.execution_id = n.execution_id)
         select id, execution_id from done",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&extracted)
    .bind(&raw)
    .bind(&logs)
    .bind(worker)
    .bind(&providers)
    .bind(&models)
    .bind(&tokens_in)
    .bind(&tokens_out)
    .bind(&costs)
    .bind(&verdicts)
    .bind(&field_results)
    .bind(&accuracies)
    .fetch_all(conn)
    .await
}

/// Stores jobs' verdicts, per-field results and accuracies in one
/// statement, for re-judging after an edit (the executor's completions
/// write theirs in the same update that finishes the job, `complete_in`).
pub async fn store_verdicts(
    conn: &mut PgConnection,
    judged: &[(i64, &JobVerdict)],
) -> sqlx::Result<u64> {
    if judged.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = judged.iter().map(|(id, _)| *id).collect();
    let verdicts: Vec<&str> = judged.iter().map(|(_, v)| v.verdict.as_str()).collect();
    let results: Vec<String> = judged
        .iter()
        .map(|(_, v)| Value::Object(v.fields.clone()).to_string())
        .collect();
    let accuracies: Vec<Option<f64>> = judged.iter().map(|(_, v)| v.accuracy).collect();
    Ok(sqlx::query(
        "update jobs j set verdict = u.verdict, field_results = u.fr::json, accuracy = u.acc
         from unnest($1::bigint[], $2::text[], $3::text[], $4::float8[]) u(id, verdict, fr, acc)
         where j.id = u.id",
    )
    .bind(&ids)
    .bind(&verdicts)
    .bind(&results)
    .bind(&accuracies)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Records one result; false (and nothing written) for a stale attempt.
pub async fn complete(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    extracted: &Value,
    raw_output: &str,
) -> sqlx::Result<bool> {
    let done = complete_many(
        db,
        worker,
        &[Completion {
            id: job.id,
            attempt: job.attempt,
            extracted: extracted.clone(),
            raw_output: raw_output.to_string(),
            log: Value::Array(vec![]),
            verdict: JobVerdict {
                verdict: Verdict::NoGroundTruth,
                fields: Map::new(),
                accuracy: None,
            },
            usage: None,
        }],
    )
    .await?;
    Ok(!done.is_empty())
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
    fail_logged(
        db,
        job,
        worker,
        error_class,
        message,
        retry_at,
        &Value::Array(vec![]),
    )
    .await
}

/// Charges a failed attempt what its model calls cost (provider, model,
/// tokens and their price instead of the flat price per job).
pub async fn charge_usage(
    db: &PgPool,
    job: &Claimed,
    usage: &crate::server::agents::extract::llm::Usage,
) -> sqlx::Result<()> {
    sqlx::query(
        "update attempts set provider = $3, model = $4, input_tokens = $5, output_tokens = $6,
                cost_micros = $7
         where job_id = $1 and n = $2",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(&usage.provider)
    .bind(&usage.model)
    .bind(usage.input_tokens.min(i32::MAX as i64) as i32)
    .bind(usage.output_tokens.min(i32::MAX as i64) as i32)
    .bind(usage.cost_micros)
    .execute(db)
    .await?;
    Ok(())
}

/// [`fail`] with the attempt's log lines.
pub async fn fail_logged(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    error_class: &str,
    message: &str,
    retry_at: Option<DateTime<Utc>>,
    log: &Value,
) -> sqlx::Result<Failed> {
    let state: Option<String> = sqlx::query_scalar(
        "with failed as (
             update jobs j set
                state = case when $6::timestamptz is not null and j.attempt <= e.max_retries
                             then 'queued' else 'failed' end,
                available_at = coalesce($6, j.available_at),
                error_class = $4, error = $5, lease_owner = null, lease_expires_at = null,
                progress = null,
                verdict = case when $6::timestamptz is not null and j.attempt <= e.max_retries
                               then null else 'error' end,
                finished_at = case when $6::timestamptz is not null and j.attempt <= e.max_retries
                                   then null else now() end
             from executions e
             where e.id = j.execution_id and j.id = $1 and j.attempt = $2
               and j.lease_owner = $3 and j.state = 'running'
             returning j.id, j.attempt, j.state, j.execution_id, j.row_index,
                       e.price_per_job_micros),
         told as (
             insert into execution_events (execution_id, kind, message, job_id)
             select f.execution_id,
                    case when f.state = 'queued' then 'job_retrying' else 'job_failed' end,
                    'Row ' || f.row_index || ', attempt ' || f.attempt || ': ' || $4 || ' — ' || $5
                        || case when f.state = 'queued' then ' (will retry)' else '' end,
                    f.id
             from failed f),
         finished as (
             update attempts a set finished_at = now(),
                    outcome = case when f.state = 'queued' then 'retrying' else 'failed' end,
                    error_class = $4, error = $5, log = $7,
                    duration_ms = (extract(epoch from now() - a.started_at) * 1000)::int,
                    cost_micros = f.price_per_job_micros
             from failed f where a.job_id = f.id and a.n = f.attempt)
         select state from failed",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(worker)
    .bind(error_class)
    .bind(message)
    .bind(retry_at)
    .bind(Json(log))
    .fetch_optional(db)
    .await?;
    Ok(match state.as_deref() {
        None => Failed::Stale,
        Some("queued") => Failed::Retrying,
        _ => Failed::Final,
    })
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
            verdict = case when j.attempt <= e.max_retries then null else 'error' end,
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
/// every other write. A cancelled attempt costs nothing.
pub async fn cancel_running(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    log: &Value,
) -> sqlx::Result<bool> {
    release(db, job, worker, log, "cancelled", "cancelled").await
}

/// Hands a job back to the queue at once (the worker is shutting down).
/// The attempt is kept, marked `handed_back`; the job is claimable now.
pub async fn hand_back(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    log: &Value,
) -> sqlx::Result<bool> {
    release(db, job, worker, log, "queued", "handed_back").await
}

/// Ends `worker`'s attempt without a result: the job moves to `state`
/// (`cancelled`: finished; `queued`: claimable now) and the attempt is
/// closed with `outcome` and its log. False for a stale attempt.
async fn release(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    log: &Value,
    state: &str,
    outcome: &str,
) -> sqlx::Result<bool> {
    let done: Option<i64> = sqlx::query_scalar(
        "with released as (
             update jobs set state = $5, lease_owner = null, lease_expires_at = null,
                    progress = null,
                    finished_at = case when $5 = 'queued' then null else now() end,
                    available_at = case when $5 = 'queued' then now() else available_at end
             where id = $1 and attempt = $2 and lease_owner = $3 and state = 'running'
             returning id, attempt),
         finished as (
             update attempts a set finished_at = now(), outcome = $6, log = $4,
                    duration_ms = (extract(epoch from now() - a.started_at) * 1000)::int
             from released r where a.job_id = r.id and a.n = r.attempt)
         select id from released",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(worker)
    .bind(Json(log))
    .bind(state)
    .bind(outcome)
    .fetch_optional(db)
    .await?;
    Ok(done.is_some())
}

/// Saves what a running job's agent last reported (fenced).
pub async fn set_progress(
    db: &PgPool,
    job: &Claimed,
    worker: &str,
    progress: &Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "update jobs set progress = $4
         where id = $1 and attempt = $2 and lease_owner = $3 and state = 'running'",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(worker)
    .bind(Json(progress))
    .execute(db)
    .await?;
    Ok(())
}

/// Ends an execution whose jobs are all finished: `completed`, or
/// `cancelled` when it was being stopped.
pub async fn settle(db: &PgPool, execution_id: Uuid) -> sqlx::Result<Option<String>> {
    Ok(settle_and_notify(db, &[execution_id])
        .await?
        .pop()
        .map(|(_, s)| s))
}

/// Settles `execution_ids` and tells every process (NOTIFY) that they
/// moved, and which ended, in one round trip; returns the ended ones.
pub async fn settle_and_notify(
    db: &PgPool,
    execution_ids: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let mut conn = db.acquire().await?;
    settle_in(&mut conn, execution_ids).await
}

/// [`settle_and_notify`] on a connection (the result writer's
/// transaction, so the results and the settling commit once).
pub async fn settle_in(
    conn: &mut PgConnection,
    execution_ids: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, String)>> {
    if execution_ids.is_empty() {
        return Ok(vec![]);
    }
    let rows: Vec<(Option<Uuid>, Option<String>)> = sqlx::query_as(
        "with ended as (
             update executions e set
                state = case when state = 'stopping' then 'cancelled' else 'completed' end,
                finished_at = now()
             where e.id = any($1) and e.state in ('running', 'stopping', 'paused')
               and e.claimed = (select c.finished from execution_counters c
                                where c.execution_id = e.id)
               and not exists (select 1 from jobs j where j.execution_id = e.id
                               and j.state in ('queued', 'running'))
             returning e.id, e.state),
         moved as (
             select count(pg_notify('mino_execution', m::text)) as n from unnest($1::uuid[]) m)
         select ended.id, ended.state from moved
         left join ended on pg_notify('mino_control', ended.id::text || ' ' || ended.state) is not null",
    )
    .bind(execution_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, state)| Some((id?, state?)))
        .collect())
}

/// What every job of an execution runs with; fixed when it started, so a
/// worker reads it once per execution.
#[derive(Debug, sqlx::FromRow)]
pub struct Plan {
    pub org_id: Uuid,
    pub agent: AgentKind,
    pub mode: ExecutionMode,
    pub remote_url: Option<String>,
    pub timeout_secs: i32,
    pub instruction_version: i32,
    pub instructions: String,
    pub fields: Json<Vec<crate::model::OutputField>>,
    pub wait_for: Option<String>,
    pub steps: Json<Vec<crate::model::BrowserStep>>,
    pub keep_pages: bool,
    pub pages_from: Option<Uuid>,
    pub extractor: crate::model::Extractor,
    pub model_route: Json<Vec<crate::model::RouteEntry>>,
    pub page_token_budget: i32,
}

/// What a worker needs to run an execution's jobs: its agent, instructions and fields.
pub async fn plan(db: &PgPool, execution_id: Uuid) -> sqlx::Result<Option<Plan>> {
    sqlx::query_as(
        "select e.org_id, e.agent, e.mode, e.remote_url, e.timeout_secs, e.instruction_version,
                coalesce(v.body, '') as instructions, e.fields, e.wait_for, e.steps,
                e.keep_pages, e.pages_from, e.extractor, e.model_route, e.page_token_budget
         from executions e
         left join instruction_versions v
                on v.project_id = e.project_id and v.version = e.instruction_version
         where e.id = $1",
    )
    .bind(execution_id)
    .fetch_optional(db)
    .await
}

/// An execution's state, if it exists.
pub async fn execution_state(db: &PgPool, execution_id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select state from executions where id = $1")
        .bind(execution_id)
        .fetch_optional(db)
        .await
}
