//! experiments and experiment_variants: variants of a run configuration
//! over the same rows, each an ordinary execution.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::model::{ExperimentSummary, RouteEntry};

/// What creating an experiment writes.
pub struct NewExperiment<'a> {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub batch_id: Uuid,
    pub name: &'a str,
    pub row_choice: &'a serde_json::Value,
    pub row_count: i32,
    pub pages_from: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_by_name: &'a str,
}

pub async fn insert(conn: &mut PgConnection, e: &NewExperiment<'_>) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into experiments (org_id, project_id, batch_id, name, row_choice, row_count,
                                  pages_from, created_by, created_by_name)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
    )
    .bind(e.org_id)
    .bind(e.project_id)
    .bind(e.batch_id)
    .bind(e.name)
    .bind(Json(e.row_choice))
    .bind(e.row_count)
    .bind(e.pages_from)
    .bind(e.created_by)
    .bind(e.created_by_name)
    .fetch_one(conn)
    .await
}

/// A variant's row, and its execution marked as the experiment's.
#[allow(clippy::too_many_arguments)]
pub async fn insert_variant(
    conn: &mut PgConnection,
    experiment_id: Uuid,
    position: i32,
    version: i32,
    agent: Option<&str>,
    extractor: Option<&str>,
    model_route: Option<&[RouteEntry]>,
    execution_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into experiment_variants (experiment_id, position, version, agent, extractor,
                                          model_route, execution_id)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(experiment_id)
    .bind(position)
    .bind(version)
    .bind(agent)
    .bind(extractor)
    .bind(model_route.map(Json))
    .bind(execution_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("update executions set experiment_id = $1 where id = $2")
        .bind(experiment_id)
        .bind(execution_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The organization an experiment belongs to, to check the caller's access.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from experiments where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// An experiment's own row.
#[derive(sqlx::FromRow)]
pub struct ExperimentRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub project_name: String,
    pub production_version: i32,
    pub batch_id: Uuid,
    pub batch_name: String,
    pub org_slug: String,
    pub name: String,
    pub row_choice: Json<serde_json::Value>,
    pub row_count: i32,
    pub pages_from: Option<Uuid>,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub promoted_variant: Option<i32>,
    pub promoted_at: Option<DateTime<Utc>>,
}

pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<ExperimentRow>> {
    sqlx::query_as(
        "select x.id, x.project_id, p.name as project_name, p.production_version,
                x.batch_id, b.name as batch_name, o.slug as org_slug, x.name, x.row_choice,
                x.row_count, x.pages_from, x.created_by_name, x.created_at, x.finished_at,
                x.promoted_variant, x.promoted_at
         from experiments x
         join projects p on p.id = x.project_id
         join batches b on b.id = x.batch_id
         join organizations o on o.id = x.org_id
         where x.org_id = $1 and x.id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A variant as stored.
#[derive(sqlx::FromRow, Clone)]
pub struct VariantRow {
    pub position: i32,
    pub version: i32,
    pub agent: Option<String>,
    pub extractor: Option<String>,
    pub model_route: Option<Json<Vec<RouteEntry>>>,
    pub execution_id: Uuid,
}

pub async fn variants(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<VariantRow>> {
    sqlx::query_as(
        "select position, version, agent, extractor, model_route, execution_id
         from experiment_variants where experiment_id = $1 order by position",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// How a list shows an experiment's state, from its variants' executions
/// (`service::experiments::state_of` words one experiment's the same way).
const STATE: &str = "case
    when x.finished_at is not null and exists (
        select 1 from executions e where e.experiment_id = x.id and e.state = 'cancelled')
        then 'stopped'
    when x.finished_at is not null then 'completed'
    when not exists (
        select 1 from executions e where e.experiment_id = x.id
          and e.state in ('queued', 'running', 'stopping'))
     and exists (
        select 1 from executions e where e.experiment_id = x.id and e.state = 'paused')
        then 'paused'
    else 'running' end";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    project_id: Uuid,
    batch_id: Uuid,
    batch_name: String,
    name: String,
    state: String,
    row_count: i32,
    variants: i64,
    created_by_name: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    promoted_variant: Option<i32>,
}

/// A project's experiments, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<ExperimentSummary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "select x.id, x.project_id, x.batch_id, b.name as batch_name, x.name, {STATE} as state,
                x.row_count,
                (select count(*) from experiment_variants v where v.experiment_id = x.id)
                    as variants,
                x.created_by_name, x.created_at, x.finished_at, x.promoted_variant
         from experiments x join batches b on b.id = x.batch_id
         where x.org_id = $1 and x.project_id = $2
         order by x.created_at desc limit $3"
    ))
    .bind(org_id)
    .bind(project_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ExperimentSummary {
            id: r.id,
            project_id: r.project_id,
            batch_id: r.batch_id,
            batch_name: r.batch_name,
            name: r.name,
            state: r.state,
            rows: r.row_count,
            variants: r.variants as i32,
            created_by_name: r.created_by_name,
            created_at: r.created_at,
            finished_at: r.finished_at,
            promoted_variant: r.promoted_variant,
        })
        .collect())
}

/// Each row's verdict rank in every variant (pass 3, partial 2, fail 1,
/// error 0; none while unjudged or without expected values), by position.
pub async fn row_ranks(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<Vec<(i32, i16)>>> {
    let rows: Vec<(Vec<i32>, Vec<i16>)> = sqlx::query_as(
        "select array_agg(v.position), array_agg(r.rank)
         from experiment_variants v
         join jobs j on j.execution_id = v.execution_id
         cross join lateral (select case j.verdict when 'pass' then 3 when 'partial' then 2
                                                   when 'fail' then 1 when 'error' then 0
                                    end::int2 as rank) r
         where v.experiment_id = $1 and r.rank is not null
         group by j.row_index",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(positions, ranks)| positions.into_iter().zip(ranks).collect())
        .collect())
}

/// Each variant's job latency percentiles (p50, p95) in ms, by execution.
pub async fn latencies(
    db: impl PgExecutor<'_>,
    executions: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, Option<f64>, Option<f64>)>> {
    sqlx::query_as(
        "select execution_id,
                percentile_cont(0.5) within group (order by ms),
                percentile_cont(0.95) within group (order by ms)
         from (select execution_id,
                      extract(epoch from finished_at - started_at) * 1000 as ms
               from jobs
               where execution_id = any($1) and state in ('succeeded', 'failed')
                 and started_at is not null and finished_at is not null) t
         group by execution_id",
    )
    .bind(executions)
    .fetch_all(db)
    .await
}

/// A page of the rows the variants ran, rows where they disagree (verdict
/// or values) first, then by row number: (row, disagree), and the totals
/// (rows, disagreements).
pub async fn grid_page(
    db: impl PgExecutor<'_>,
    id: Uuid,
    offset: i64,
    limit: i64,
) -> sqlx::Result<(Vec<(i32, bool)>, i64, i64)> {
    let rows: Vec<(i32, bool, i64, i64)> = sqlx::query_as(
        "with per_row as (
             select j.row_index,
                    -- min against max instead of count(distinct …): no
                    -- sort per row.
                    min(coalesce(j.verdict, '-')) <> max(coalesce(j.verdict, '-'))
                    or min(coalesce(j.extracted::text, '-'))
                       <> max(coalesce(j.extracted::text, '-')) as disagree
             from experiment_variants v join jobs j on j.execution_id = v.execution_id
             where v.experiment_id = $1
             group by j.row_index)
         select row_index, disagree, count(*) over (),
                count(*) filter (where disagree) over ()
         from per_row order by disagree desc, row_index offset $2 limit $3",
    )
    .bind(id)
    .bind(offset)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let (total, disagreements) = rows.first().map(|r| (r.2, r.3)).unwrap_or((0, 0));
    Ok((
        rows.into_iter().map(|(r, d, _, _)| (r, d)).collect(),
        total,
        disagreements,
    ))
}

/// The rows the variants disagree on (verdict or values), ascending.
pub async fn disagreeing_rows(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar(
        "select j.row_index
         from experiment_variants v join jobs j on j.execution_id = v.execution_id
         where v.experiment_id = $1
         group by j.row_index
         having min(coalesce(j.verdict, '-')) <> max(coalesce(j.verdict, '-'))
             or min(coalesce(j.extracted::text, '-')) <> max(coalesce(j.extracted::text, '-'))
         order by 1",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// One variant's job on a grid row.
#[derive(sqlx::FromRow)]
pub struct GridJob {
    pub position: i32,
    pub row_index: i32,
    pub job_id: i64,
    pub state: String,
    pub verdict: Option<crate::model::Verdict>,
    pub extracted: Option<Json<serde_json::Map<String, serde_json::Value>>>,
}

pub async fn grid_jobs(
    db: impl PgExecutor<'_>,
    id: Uuid,
    rows: &[i32],
) -> sqlx::Result<Vec<GridJob>> {
    sqlx::query_as(
        "select v.position, j.row_index, j.id as job_id, j.state, j.verdict, j.extracted
         from experiment_variants v join jobs j on j.execution_id = v.execution_id
         where v.experiment_id = $1 and j.row_index = any($2)
         order by j.row_index, v.position",
    )
    .bind(id)
    .bind(rows)
    .fetch_all(db)
    .await
}

/// The batch rows' urls and expected values.
pub async fn batch_rows(
    db: impl PgExecutor<'_>,
    batch_id: Uuid,
    rows: &[i32],
) -> sqlx::Result<
    Vec<(
        i32,
        String,
        Json<serde_json::Map<String, serde_json::Value>>,
    )>,
> {
    sqlx::query_as(
        "select r.row_index, r.site_url, r.ground_truth from batch_rows r
         where r.batch_seq = (select seq from batches where id = $1) and r.row_index = any($2)",
    )
    .bind(batch_id)
    .bind(rows)
    .fetch_all(db)
    .await
}

/// Marks a variant promoted.
pub async fn set_promoted(conn: &mut PgConnection, id: Uuid, position: i32) -> sqlx::Result<()> {
    sqlx::query("update experiments set promoted_variant = $2, promoted_at = now() where id = $1")
        .bind(id)
        .bind(position)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every row index of a batch, ascending.
pub async fn batch_row_indexes(db: impl PgExecutor<'_>, batch_seq: i64) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar("select row_index from batch_rows where batch_seq = $1 order by row_index")
        .bind(batch_seq)
        .fetch_all(db)
        .await
}

/// The rows of a run's jobs with one of `verdicts`, ascending.
pub async fn rows_with_verdicts(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    verdicts: &[&str],
) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar(
        "select distinct row_index from jobs
         where execution_id = $1 and verdict = any($2) order by row_index",
    )
    .bind(execution_id)
    .bind(verdicts)
    .fetch_all(db)
    .await
}
