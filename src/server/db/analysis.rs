//! The scans behind failure patterns, trends and run comparisons: reads of
//! jobs' current verdicts and field results, never writes.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{ExecutionMode, ExecutionState, OutputField, Verdict};

/// The output fields an execution ran with.
pub async fn execution_fields(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<OutputField>> {
    let fields: Json<Vec<OutputField>> =
        sqlx::query_scalar("select fields from executions where id = $1")
            .bind(id)
            .fetch_one(db)
            .await?;
    Ok(fields.0)
}

/// How many jobs judged each field.
pub async fn judged_per_field(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "select f.key, count(*) from jobs j cross join lateral json_each(j.field_results) f
         where j.execution_id = $1 and j.field_results is not null group by 1",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// A job that ran and got a field wrong.
#[derive(sqlx::FromRow)]
pub struct FailingJob {
    pub id: i64,
    pub row_index: i32,
    pub site_url: String,
    pub field_results: Json<Map<String, Value>>,
}

/// The execution's jobs with a partial or fail verdict, in run order.
pub async fn failing_jobs(
    db: impl PgExecutor<'_>,
    id: Uuid,
    batch_id: Uuid,
) -> sqlx::Result<Vec<FailingJob>> {
    sqlx::query_as(
        "select j.id, j.row_index, r.site_url, j.field_results
         from jobs j join batch_rows r on r.batch_seq = (select seq from batches where id = $2)
                                       and r.row_index = j.row_index
         where j.execution_id = $1 and j.verdict in ('partial', 'fail')
         order by j.id",
    )
    .bind(id)
    .bind(batch_id)
    .fetch_all(db)
    .await
}

/// A job that failed, with what its row expected.
#[derive(sqlx::FromRow)]
pub struct ErroredJob {
    pub id: i64,
    pub row_index: i32,
    pub site_url: String,
    pub ground_truth: Json<Map<String, Value>>,
    pub error_class: Option<String>,
    pub error: Option<String>,
}

/// The execution's failed jobs, in run order.
pub async fn errored_jobs(
    db: impl PgExecutor<'_>,
    id: Uuid,
    batch_id: Uuid,
) -> sqlx::Result<Vec<ErroredJob>> {
    sqlx::query_as(
        "select j.id, j.row_index, r.site_url, r.ground_truth, j.error_class, j.error
         from jobs j join batch_rows r on r.batch_seq = (select seq from batches where id = $2)
                                       and r.row_index = j.row_index
         where j.execution_id = $1 and j.state = 'failed'
         order by j.id",
    )
    .bind(id)
    .bind(batch_id)
    .fetch_all(db)
    .await
}

/// One run of a batch, as a trend point starts.
#[derive(sqlx::FromRow)]
pub struct Run {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub mode: ExecutionMode,
    pub state: ExecutionState,
    pub instruction_version: i32,
}

/// The batch's latest hundred runs, oldest first.
pub async fn recent_runs(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    batch_id: Uuid,
) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(
        "select * from (
             select e.id, e.created_at, e.mode, e.state, e.instruction_version
             from executions e where e.org_id = $1 and e.batch_id = $2
             order by e.created_at desc limit 100) t
         order by created_at",
    )
    .bind(org_id)
    .bind(batch_id)
    .fetch_all(db)
    .await
}

/// One row's job in each of two runs.
#[derive(sqlx::FromRow)]
pub struct Pair {
    pub row_index: i32,
    pub site_url: String,
    pub job_a: i64,
    pub job_b: i64,
    pub verdict_a: Option<Verdict>,
    pub verdict_b: Option<Verdict>,
    pub extracted_a: Option<Json<Map<String, Value>>>,
    pub extracted_b: Option<Json<Map<String, Value>>>,
}

/// The rows (of the batch `batch_seq`) whose jobs in runs `a` and `b`
/// differ in verdict or extracted values, in row order.
pub async fn differing_pairs(
    db: impl PgExecutor<'_>,
    a: Uuid,
    b: Uuid,
    batch_seq: i64,
) -> sqlx::Result<Vec<Pair>> {
    sqlx::query_as(
        "select ja.row_index, r.site_url, ja.id as job_a, jb.id as job_b,
                ja.verdict as verdict_a, jb.verdict as verdict_b,
                ja.extracted as extracted_a, jb.extracted as extracted_b
         from jobs ja
         join jobs jb on jb.execution_id = $2 and jb.row_index = ja.row_index
         join batch_rows r on r.batch_seq = $3 and r.row_index = ja.row_index
         where ja.execution_id = $1
           and (ja.verdict is distinct from jb.verdict
                or ja.extracted::text is distinct from jb.extracted::text)
         order by ja.row_index",
    )
    .bind(a)
    .bind(b)
    .bind(batch_seq)
    .fetch_all(db)
    .await
}

/// How the rows both runs have a job for were judged, run by run.
#[derive(sqlx::FromRow)]
pub struct SharedRows {
    pub shared_rows: i64,
    pub judged_in_both: i64,
    pub accuracy_a: Option<f64>,
    pub accuracy_b: Option<f64>,
}

pub async fn shared_rows(db: impl PgExecutor<'_>, a: Uuid, b: Uuid) -> sqlx::Result<SharedRows> {
    sqlx::query_as(
        "select count(*) as shared_rows,
                count(*) filter (where both_judged) as judged_in_both,
                (avg(ja.accuracy) filter (where both_judged))::float8 as accuracy_a,
                (avg(jb.accuracy) filter (where both_judged))::float8 as accuracy_b
         from jobs ja
         join jobs jb on jb.execution_id = $2 and jb.row_index = ja.row_index,
         lateral (select ja.accuracy is not null and jb.accuracy is not null as both_judged) x
         where ja.execution_id = $1",
    )
    .bind(a)
    .bind(b)
    .fetch_one(db)
    .await
}

/// One field's result on a row both runs judged it on: (field, A's result,
/// B's result), each as (passed, a value extracted, a value expected, and
/// for text similarity the row's tp/fp/fn).
pub type SharedFieldResult = (
    String,
    bool,
    bool,
    bool,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    bool,
    bool,
    bool,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// Every field result of rows both runs judged that field on.
pub async fn shared_field_results(
    db: impl PgExecutor<'_>,
    a: Uuid,
    b: Uuid,
) -> sqlx::Result<Vec<SharedFieldResult>> {
    sqlx::query_as(
        "select fa.key,
                coalesce((fa.value->>'pass')::boolean, false),
                coalesce(json_typeof(fa.value->'extracted'), 'null') <> 'null',
                coalesce(json_typeof(fa.value->'expected'), 'null') <> 'null',
                (fa.value->>'tp')::float8, (fa.value->>'fp')::float8, (fa.value->>'fn')::float8,
                coalesce((fb.value->>'pass')::boolean, false),
                coalesce(json_typeof(fb.value->'extracted'), 'null') <> 'null',
                coalesce(json_typeof(fb.value->'expected'), 'null') <> 'null',
                (fb.value->>'tp')::float8, (fb.value->>'fp')::float8, (fb.value->>'fn')::float8
         from jobs ja
         join jobs jb on jb.execution_id = $2 and jb.row_index = ja.row_index
         cross join lateral json_each(ja.field_results) fa
         join lateral json_each(jb.field_results) fb on fb.key = fa.key
         where ja.execution_id = $1
           and ja.field_results is not null and jb.field_results is not null",
    )
    .bind(a)
    .bind(b)
    .fetch_all(db)
    .await
}

/// Rows only one of two runs has a job for.
#[derive(sqlx::FromRow)]
pub struct Unpaired {
    pub only_a: i64,
    pub only_b: i64,
}

/// How many rows only run `a`, and only run `b`, has a job for.
pub async fn unpaired(db: impl PgExecutor<'_>, a: Uuid, b: Uuid) -> sqlx::Result<Unpaired> {
    sqlx::query_as(
        "select
            (select count(*) from jobs ja where ja.execution_id = $1 and not exists
                (select 1 from jobs jb where jb.execution_id = $2 and jb.row_index = ja.row_index))
                as only_a,
            (select count(*) from jobs jb where jb.execution_id = $2 and not exists
                (select 1 from jobs ja where ja.execution_id = $1 and ja.row_index = jb.row_index))
                as only_b",
    )
    .bind(a)
    .bind(b)
    .fetch_one(db)
    .await
}
