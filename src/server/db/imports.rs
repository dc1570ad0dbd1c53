//! Imported runs: reading a batch's rows to resolve an import's keys, and
//! storing its finished, judged jobs (with one attempt each, which is what
//! cost and duration are counted from).

use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A row of the batch, as an import needs it.
#[derive(sqlx::FromRow)]
pub struct ImportRow {
    pub row_index: i32,
    pub site_url: String,
    pub ground_truth: Json<Map<String, Value>>,
}

/// Every row of the batch `batch_seq`, in row order.
pub async fn batch_rows(db: impl PgExecutor<'_>, batch_seq: i64) -> sqlx::Result<Vec<ImportRow>> {
    sqlx::query_as(
        "select row_index, site_url, ground_truth from batch_rows
         where batch_seq = $1 order by row_index",
    )
    .bind(batch_seq)
    .fetch_all(db)
    .await
}

/// The jobs of an import, column by column.
#[derive(Default)]
pub struct NewJobs {
    pub row_index: Vec<i32>,
    pub failed: Vec<bool>,
    /// JSON text of the extracted values (none for a failed job).
    pub extracted: Vec<Option<String>>,
    pub error: Vec<Option<String>>,
    pub verdict: Vec<String>,
    /// JSON text of the field results.
    pub field_results: Vec<Option<String>>,
    pub accuracy: Vec<Option<f32>>,
    pub duration_ms: Vec<Option<i32>>,
    pub cost_micros: Vec<i64>,
}

/// Stores the finished jobs of execution `execution_id` and an attempt
/// for each, ten thousand at a time.
pub async fn insert_jobs(
    conn: &mut PgConnection,
    execution_id: Uuid,
    org_id: Uuid,
    jobs: &NewJobs,
) -> sqlx::Result<()> {
    const CHUNK: usize = 10_000;
    for start in (0..jobs.row_index.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(jobs.row_index.len());
        let r = start..end;
        sqlx::query(
            "with t as (
                 select * from unnest($3::int[], $4::bool[], $5::text[], $6::text[], $7::text[],
                                      $8::text[], $9::real[], $10::int[], $11::bigint[])
                     as t(row_index, failed, extracted, error, verdict, field_results, accuracy,
                          duration_ms, cost_micros)),
             j as (
                 insert into jobs (execution_id, org_id, row_index, state, attempt, extracted,
                                   error_class, error, verdict, field_results, accuracy,
                                   started_at, finished_at)
                 select $1, $2, t.row_index, case when t.failed then 'failed' else 'succeeded' end,
                        1, t.extracted::json, case when t.failed then 'agent_error' end, t.error,
                        t.verdict, t.field_results::json, t.accuracy, now(), now()
                 from t order by t.row_index
                 returning id, row_index)
             insert into attempts (job_id, n, worker, started_at, finished_at, outcome,
                                   error_class, error, duration_ms, cost_micros)
             select j.id, 1, 'import', now(), now(),
                    case when t.failed then 'failed' else 'succeeded' end,
                    case when t.failed then 'agent_error' end, t.error, t.duration_ms,
                    t.cost_micros
             from j join t on t.row_index = j.row_index",
        )
        .bind(execution_id)
        .bind(org_id)
        .bind(&jobs.row_index[r.clone()])
        .bind(&jobs.failed[r.clone()])
        .bind(&jobs.extracted[r.clone()])
        .bind(&jobs.error[r.clone()])
        .bind(&jobs.verdict[r.clone()])
        .bind(&jobs.field_results[r.clone()])
        .bind(&jobs.accuracy[r.clone()])
        .bind(&jobs.duration_ms[r.clone()])
        .bind(&jobs.cost_micros[r])
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
