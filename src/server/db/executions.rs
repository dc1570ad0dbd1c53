//! executions read as users see them (with their batch, project and
//! organization names and their job counts), their events, the monthly
//! quota, state and concurrency changes, and the scans behind an
//! execution's metrics and live view. The queue's writes (claims,
//! completions, settling) are in `jobs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::summaries;
use crate::model::{
    AgentKind, Execution, ExecutionEvent, ExecutionMode, ExecutionState, Extractor, FieldAccuracy,
    JobState, Role, RunningJob,
};

/// An execution's row joined with the names a user sees.
#[derive(sqlx::FromRow)]
pub struct ExecutionRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub batch_id: Uuid,
    pub batch_name: String,
    pub project_id: Uuid,
    pub project_name: String,
    pub org_slug: String,
    pub mode: ExecutionMode,
    pub sample_size: Option<i32>,
    pub instruction_version: i32,
    pub agent: AgentKind,
    pub concurrency: i32,
    pub max_retries: i32,
    pub state: ExecutionState,
    pub price_per_job_micros: i64,
    pub estimated_job_cost_micros: Option<i64>,
    pub rerun_of: Option<Uuid>,
    pub extractor: Extractor,
    pub pages_from: Option<Uuid>,
    pub experiment_id: Option<Uuid>,
    pub keeps_pages: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The kept counts, when current (see `summaries`).
    pub counts: Option<Json<serde_json::Value>>,
}

/// An execution's jobs counted: by state, by verdict, accuracy and cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, sqlx::FromRow, schemars::JsonSchema)]
#[serde(default)]
pub struct Counts {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub passed_jobs: i64,
    pub failing_jobs: i64,
    /// Jobs with an accuracy (finished, with expected values).
    pub judged: i64,
    pub accuracy: Option<f64>,
    pub cost_micros: i64,
    /// Model tokens of every attempt (llm extractor).
    pub input_tokens: i64,
    pub output_tokens: i64,
}

// Two one-row aggregates joined, so the attempts' sum is computed once
// whatever the planner thinks of the jobs (as a subquery joined to every
// job row it was re-run per job when the statistics didn't know the
// execution yet: minutes for an import of 20,000 lines).
const COUNTS: &str = "select c.*, spent.*
    from (select count(*) as total,
                 count(*) filter (where state = 'queued') as queued,
                 count(*) filter (where state = 'running') as running,
                 count(*) filter (where state = 'succeeded') as succeeded,
                 count(*) filter (where state = 'failed') as failed,
                 count(*) filter (where state = 'cancelled') as cancelled,
                 count(*) filter (where verdict = 'pass') as passed_jobs,
                 count(*) filter (where verdict in ('partial', 'fail')) as failing_jobs,
                 count(accuracy) as judged,
                 avg(accuracy)::float8 as accuracy
          from jobs where execution_id = $1) c,
         (select coalesce(sum(a.cost_micros), 0)::bigint as cost_micros,
                 coalesce(sum(a.input_tokens), 0)::bigint as input_tokens,
                 coalesce(sum(a.output_tokens), 0)::bigint as output_tokens
          from attempts a join jobs j on j.id = a.job_id where j.execution_id = $1) spent";

/// The counts of one execution: kept while it is finished and unchanged.
pub async fn counts(db: &PgPool, id: Uuid) -> sqlx::Result<Counts> {
    summaries::memo(db, id, "counts", || async move {
        sqlx::query_as::<_, Counts>(COUNTS)
            .bind(id)
            .fetch_one(db)
            .await
    })
    .await
}

const SELECT: &str = "select e.id, e.org_id, e.batch_id, b.name as batch_name, e.project_id,
        p.name as project_name, o.slug as org_slug, e.mode, e.sample_size,
        e.instruction_version, e.agent, e.concurrency, e.max_retries, e.state,
        e.price_per_job_micros, e.estimated_job_cost_micros, e.rerun_of, e.extractor, e.pages_from,
        e.experiment_id,
        (e.mode = 'test' or e.keep_pages) and e.agent in ('http', 'browser') as keeps_pages,
        e.created_at, e.started_at, e.finished_at, s.value as counts
    from executions e
    join batches b on b.id = e.batch_id
    join projects p on p.id = e.project_id
    join organizations o on o.id = e.org_id
    left join execution_summaries s on s.execution_id = e.id and s.kind = 'counts'
                                   and s.results_version = e.results_version";

impl ExecutionRow {
    /// The execution with its counts, as `role` sees it.
    pub fn into_model(self, c: Counts, role: Option<Role>) -> Execution {
        Execution {
            id: self.id,
            batch_id: self.batch_id,
            batch_name: self.batch_name,
            project_id: self.project_id,
            project_name: self.project_name,
            org_slug: self.org_slug,
            mode: self.mode,
            sample_size: self.sample_size,
            instruction_version: self.instruction_version,
            version: self.instruction_version,
            agent: self.agent,
            concurrency: self.concurrency,
            max_retries: self.max_retries,
            state: self.state,
            estimated_cost_micros: c.total
                * self
                    .estimated_job_cost_micros
                    .unwrap_or(self.price_per_job_micros),
            cost_unknown: self.extractor == Extractor::Llm
                && self.agent != AgentKind::Remote
                && self.estimated_job_cost_micros.is_none(),
            total: c.total,
            queued: c.queued,
            running: c.running,
            completed: c.succeeded,
            errors: c.failed,
            cancelled: c.cancelled,
            passed: c.passed_jobs,
            failed: c.failing_jobs,
            accuracy: c.accuracy,
            cost_micros: c.cost_micros,
            cost: c.cost_micros as f64 / 1_000_000.0,
            tokens: crate::model::TokenCounts {
                input: c.input_tokens,
                output: c.output_tokens,
            },
            rerun_of: self.rerun_of,
            extractor: (self.agent != AgentKind::Remote).then_some(self.extractor),
            pages_from: self.pages_from,
            keeps_pages: self.keeps_pages,
            experiment_id: self.experiment_id,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            role,
        }
    }
}

/// Executions with their counts: the kept ones where current, the others
/// counted now.
pub async fn with_counts(
    db: &PgPool,
    rows: Vec<ExecutionRow>,
    role: Option<Role>,
) -> sqlx::Result<Vec<Execution>> {
    let mut out = Vec::with_capacity(rows.len());
    for mut r in rows {
        let kept = r
            .counts
            .take()
            .and_then(|v| serde_json::from_value(v.0).ok());
        let c = match kept {
            Some(c) => c,
            None => counts(db, r.id).await?,
        };
        out.push(r.into_model(c, role));
    }
    Ok(out)
}

/// The organization an execution belongs to, to check the caller's access.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from executions where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Where an execution is: its organization and batch.
#[derive(sqlx::FromRow)]
pub struct Placement {
    pub org_id: Uuid,
    pub batch_id: Uuid,
}

/// An execution's organization and batch.
pub async fn fetch_placement(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Placement>> {
    sqlx::query_as("select org_id, batch_id from executions where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One execution of the organization.
pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<ExecutionRow>> {
    sqlx::query_as(&format!("{SELECT} where e.org_id = $1 and e.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One execution of any organization, for Mino's own readers that checked
/// access when they started (live views).
pub async fn fetch_unscoped(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<ExecutionRow>> {
    sqlx::query_as(&format!("{SELECT} where e.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A project's latest ten executions, active ones first.
pub async fn list_for_project(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
) -> sqlx::Result<Vec<ExecutionRow>> {
    sqlx::query_as(&format!(
        "{SELECT} where e.org_id = $1 and e.project_id = $2
         order by e.state in ('queued', 'running', 'paused', 'stopping') desc, e.created_at desc
         limit 10"
    ))
    .bind(org_id)
    .bind(project_id)
    .fetch_all(db)
    .await
}

/// A batch's latest hundred executions, newest first.
pub async fn list_for_batch(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    batch_id: Uuid,
) -> sqlx::Result<Vec<ExecutionRow>> {
    sqlx::query_as(&format!(
        "{SELECT} where e.org_id = $1 and e.batch_id = $2 order by e.created_at desc limit 100"
    ))
    .bind(org_id)
    .bind(batch_id)
    .fetch_all(db)
    .await
}

/// The organization's monthly execution limit and the executions started
/// this calendar month.
pub struct MonthlyUsage {
    pub limit: i32,
    pub used: i64,
}

/// Reads the monthly usage, locking the organization's row until commit so
/// two starts can't both take the last execution.
pub async fn monthly_usage_locked(
    tx: &mut PgConnection,
    org_id: Uuid,
) -> sqlx::Result<MonthlyUsage> {
    let limit: i32 = sqlx::query_scalar(
        "select max_executions_per_month from organizations where id = $1 for update",
    )
    .bind(org_id)
    .fetch_one(&mut *tx)
    .await?;
    let used: i64 = sqlx::query_scalar(
        "select count(*) from executions where org_id = $1 and created_at >= date_trunc('month', now())",
    )
    .bind(org_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(MonthlyUsage { limit, used })
}

/// Moves an execution to `state`.
pub async fn set_state(
    db: impl PgExecutor<'_>,
    id: Uuid,
    state: ExecutionState,
) -> sqlx::Result<()> {
    sqlx::query("update executions set state = $2 where id = $1")
        .bind(id)
        .bind(state)
        .execute(db)
        .await?;
    Ok(())
}

/// Sets how many of an execution's jobs run at once.
pub async fn set_concurrency(
    db: impl PgExecutor<'_>,
    id: Uuid,
    concurrency: i32,
) -> sqlx::Result<()> {
    sqlx::query("update executions set concurrency = $2 where id = $1")
        .bind(id)
        .bind(concurrency)
        .execute(db)
        .await?;
    Ok(())
}

/// Adds a line to the execution's event log (what people did to it).
pub async fn insert_event(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    kind: &str,
    message: &str,
    actor_name: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into execution_events (execution_id, kind, message, actor_name)
         values ($1, $2, $3, $4)",
    )
    .bind(execution_id)
    .bind(kind)
    .bind(message)
    .bind(actor_name)
    .execute(db)
    .await?;
    Ok(())
}

/// The parts of an execution's metrics that scan its jobs.
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricParts {
    pub verdicts: BTreeMap<String, i64>,
    pub fields: Vec<FieldAccuracy>,
    pub errors_by_class: BTreeMap<String, i64>,
    /// The 95% bootstrap interval of the execution's accuracy.
    pub accuracy_interval: Option<[f64; 2]>,
}

/// Verdict counts, figures and intervals per field, errors by class: kept
/// while the execution is finished and unchanged. Pass/fail fields are
/// counted by outcome in SQL; text similarity fields are read row by row
/// (their figures are means of the rows'); the intervals resample those
/// counts (see `evaluate::metrics`).
pub async fn metric_parts(db: &PgPool, id: Uuid) -> sqlx::Result<MetricParts> {
    use crate::server::evaluate::metrics::{self, FieldTally};
    use futures_util::TryStreamExt;
    summaries::memo(db, id, "metrics", || async move {
        let verdicts: Vec<(String, i64)> = sqlx::query_as(
            "select verdict, count(*) from jobs
             where execution_id = $1 and verdict is not null group by verdict",
        )
        .bind(id)
        .fetch_all(db)
        .await?;
        let fields = super::analysis::execution_fields(db, id).await?;
        let similar: Vec<String> = fields
            .iter()
            .filter(|f| f.comparator == crate::model::Comparator::TextSimilarity)
            .map(|f| f.name.clone())
            .collect();
        // Each job's accuracy (null: not judged), counted by value: what the
        // run's accuracy and its interval are computed from.
        let accuracies: Vec<(Option<f64>, i64)> = sqlx::query_as(
            "select accuracy::float8, count(*) from jobs where execution_id = $1 group by 1",
        )
        .bind(id)
        .fetch_all(db)
        .await?;
        let jobs: u64 = accuracies.iter().map(|a| a.1 as u64).sum();
        let judged: Vec<(f64, u64)> = accuracies
            .iter()
            .filter_map(|(a, n)| a.map(|a| (a, *n as u64)))
            .collect();
        // One pass over the field results (which carry the texts compared,
        // so reading them dominates), streamed and folded here: pass/fail
        // fields counted by outcome, text similarity fields kept row by row
        // (their figures are means of the rows').
        let mut tallies: BTreeMap<String, FieldTally> = BTreeMap::new();
        let mut lines = sqlx::query_as::<
            _,
            (
                String,
                bool,
                bool,
                bool,
                Option<f64>,
                Option<f64>,
                Option<f64>,
            ),
        >(
            "select f.key, coalesce((f.value->>'pass')::boolean, false),
                    coalesce(json_typeof(f.value->'extracted'), 'null') <> 'null',
                    coalesce(json_typeof(f.value->'expected'), 'null') <> 'null',
                    case when f.key = any($2) then coalesce((f.value->>'tp')::float8, 0) end,
                    case when f.key = any($2) then coalesce((f.value->>'fp')::float8, 0) end,
                    case when f.key = any($2) then coalesce((f.value->>'fn')::float8, 0) end
             from jobs j cross join lateral json_each(j.field_results) f
             where j.execution_id = $1 and j.field_results is not null",
        )
        .bind(id)
        .bind(&similar)
        .fetch(db);
        while let Some((field, pass, got, want, tp, fp, fn_)) = lines.try_next().await? {
            let overlap = tp.zip(fp).zip(fn_).map(|((tp, fp), fn_)| (tp, fp, fn_));
            tallies
                .entry(field)
                .or_default()
                .add(pass, got, want, overlap);
        }
        drop(lines);
        // Sorted by field (the map's order).
        let figures: Vec<FieldAccuracy> = tallies
            .iter()
            .map(|(name, tally)| tally.figures(name, jobs))
            .collect();
        let errors: Vec<(String, i64)> = sqlx::query_as(
            "select coalesce(error_class, 'unknown'), count(*) from jobs
             where execution_id = $1 and state = 'failed' group by 1",
        )
        .bind(id)
        .fetch_all(db)
        .await?;
        Ok(MetricParts {
            verdicts: verdicts.into_iter().collect(),
            fields: figures,
            errors_by_class: errors.into_iter().collect(),
            accuracy_interval: metrics::accuracy_interval(&judged, jobs),
        })
    })
    .await
}

/// A job (id, row index) of an execution.
#[derive(sqlx::FromRow)]
pub struct JobRowIndex {
    pub id: i64,
    pub row_index: i32,
}

/// Those of `ids` that are jobs of the execution, with their rows.
pub async fn jobs_among(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    ids: &[i64],
) -> sqlx::Result<Vec<JobRowIndex>> {
    sqlx::query_as("select id, row_index from jobs where execution_id = $1 and id = any($2)")
        .bind(execution_id)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// The rows of the execution's jobs in any of `states`, in row order.
pub async fn rows_in_states(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    states: &[JobState],
) -> sqlx::Result<Vec<i32>> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    sqlx::query_scalar(
        "select row_index from jobs where execution_id = $1 and state = any($2) order by row_index",
    )
    .bind(execution_id)
    .bind(states)
    .fetch_all(db)
    .await
}

/// What a live view shows, without the caller's checks (the stream checked
/// them when it opened) or the rate (the watcher computes it): the
/// execution with its counts, its running jobs and its latest events.
pub struct LiveParts {
    pub execution: Execution,
    pub running_jobs: Vec<RunningJob>,
    pub events: Vec<ExecutionEvent>,
    pub waiting_retry: Option<crate::model::RetryWait>,
}

#[derive(sqlx::FromRow)]
struct RunningJobRow {
    id: i64,
    row_index: i32,
    site_url: String,
    attempt: i32,
    started_at: Option<DateTime<Utc>>,
    progress: Option<Json<serde_json::Value>>,
}

/// An execution's live picture (see [`LiveParts`]); `None` once it is gone.
pub async fn live_parts(db: &PgPool, id: Uuid) -> sqlx::Result<Option<LiveParts>> {
    let Some(row) = fetch_unscoped(db, id).await? else {
        return Ok(None);
    };
    let execution = with_counts(db, vec![row], None).await?.remove(0);
    let jobs: Vec<RunningJobRow> = sqlx::query_as(
        "select j.id, j.row_index, r.site_url, j.attempt,
                (select a.started_at from attempts a where a.job_id = j.id and a.n = j.attempt)
                    as started_at,
                j.progress
         from jobs j
         join batch_rows r on r.batch_seq = (select b.seq from batches b where b.id = $2)
                          and r.row_index = j.row_index
         where j.execution_id = $1 and j.state = 'running'
         order by j.id limit $3",
    )
    .bind(id)
    .bind(execution.batch_id)
    .bind(crate::model::LIVE_RUNNING_JOBS as i64)
    .fetch_all(db)
    .await?;
    let running_jobs = jobs
        .into_iter()
        .map(|j| {
            let p = j.progress.map(|p| p.0).unwrap_or_default();
            RunningJob {
                id: j.id,
                row_index: j.row_index,
                url: j.site_url,
                attempt: j.attempt,
                started_at: j.started_at.unwrap_or_else(Utc::now),
                step: p.get("step").and_then(|s| s.as_str()).map(str::to_string),
                current_url: p.get("url").and_then(|s| s.as_str()).map(str::to_string),
                percent: p
                    .get("percent")
                    .and_then(|s| s.as_u64())
                    .map(|n| n.min(100) as u8),
            }
        })
        .collect();
    let events = latest_events(db, id, 12).await?;
    // Queued jobs that already had an attempt and may not be claimed yet:
    // waiting out a back-off (through the claim index).
    let (waiting, until, reason): (i64, Option<DateTime<Utc>>, Option<String>) = sqlx::query_as(
        "select count(*), max(available_at),
                (array_agg(error order by available_at desc))[1]
         from jobs
         where execution_id = $1 and state = 'queued' and available_at > now() and attempt > 0",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    let waiting_retry = until
        .filter(|_| waiting > 0)
        .map(|until| crate::model::RetryWait {
            jobs: waiting,
            until,
            reason,
        });
    Ok(Some(LiveParts {
        execution,
        running_jobs,
        events,
        waiting_retry,
    }))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    at: DateTime<Utc>,
    kind: String,
    message: String,
    job_id: Option<i64>,
    actor_name: Option<String>,
}

/// The execution's latest `limit` events, newest first.
pub async fn latest_events(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<ExecutionEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "select at, kind, message, job_id, actor_name from execution_events
         where execution_id = $1 order by id desc limit $2",
    )
    .bind(execution_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ExecutionEvent {
            at: r.at,
            kind: r.kind,
            message: r.message,
            job_id: r.job_id,
            actor_name: r.actor_name,
        })
        .collect())
}

/// Tokens a model was asked and answered per job, measured on one run.
pub struct MeasuredTokens {
    pub execution_id: Uuid,
    /// Jobs that asked a model at least once.
    pub jobs: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// The project's latest finished test run with the llm extractor in which
/// jobs asked a model, with the tokens of all their tries (repairs and
/// retries are part of what a job costs).
pub async fn last_llm_test_tokens(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
) -> sqlx::Result<Option<MeasuredTokens>> {
    let row: Option<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "select e.id, t.jobs, t.input_tokens, t.output_tokens
         from executions e
         cross join lateral (
             select count(distinct a.job_id) as jobs,
                    coalesce(sum(a.input_tokens), 0)::bigint as input_tokens,
                    coalesce(sum(a.output_tokens), 0)::bigint as output_tokens
             from jobs j join attempts a on a.job_id = j.id
             where j.execution_id = e.id and a.model is not null) t
         where e.org_id = $1 and e.project_id = $2 and e.mode = 'test'
           and e.extractor = 'llm' and e.state in ('completed', 'failed', 'cancelled')
           and t.jobs > 0
         order by e.created_at desc
         limit 1",
    )
    .bind(org_id)
    .bind(project_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(
        |(execution_id, jobs, input_tokens, output_tokens)| MeasuredTokens {
            execution_id,
            jobs,
            input_tokens,
            output_tokens,
        },
    ))
}

/// Executions of the organization by id (those that still exist), with
/// the model route each runs with (empty without the llm extractor).
pub async fn fetch_many(
    db: &PgPool,
    org_id: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<(ExecutionRow, Vec<crate::model::RouteEntry>)>> {
    let rows: Vec<ExecutionRow> =
        sqlx::query_as(&format!("{SELECT} where e.org_id = $1 and e.id = any($2)"))
            .bind(org_id)
            .bind(ids)
            .fetch_all(db)
            .await?;
    let routes: Vec<(Uuid, Json<Vec<crate::model::RouteEntry>>)> =
        sqlx::query_as("select id, model_route from executions where id = any($1)")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let route = routes
                .iter()
                .find(|(id, _)| *id == r.id)
                .map(|(_, route)| route.0.clone())
                .unwrap_or_default();
            (r, route)
        })
        .collect())
}
