//! Expected values: batch_rows' `ground_truth` and `gt_version`, their
//! history in gt_changes, the batch's coverage counts, and the reads that
//! re-judging needs (the succeeded jobs of changed rows, the fields each
//! execution judges with).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::model::{GroundTruthChange, OutputField};

/// Where a batch is, found from its sequence number (a row id's high part).
#[derive(sqlx::FromRow)]
pub struct BatchPlace {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub id: Uuid,
}

/// A batch found by its sequence number.
pub async fn fetch_batch_by_seq(
    db: impl PgExecutor<'_>,
    seq: i64,
) -> sqlx::Result<Option<BatchPlace>> {
    sqlx::query_as("select org_id, project_id, id from batches where seq = $1")
        .bind(seq)
        .fetch_optional(db)
        .await
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    field: String,
    before: Option<String>,
    after: Option<String>,
    changed_by_name: String,
    changed_at: DateTime<Utc>,
}

/// A row's latest hundred changes, newest first.
pub async fn history(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    seq: i64,
    index: i32,
) -> sqlx::Result<Vec<GroundTruthChange>> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "select field, before, after, changed_by_name, changed_at from gt_changes
         where org_id = $1 and batch_seq = $2 and row_index = $3 order by id desc limit 100",
    )
    .bind(org_id)
    .bind(seq)
    .bind(index)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| GroundTruthChange {
            field: r.field,
            before: r.before,
            after: r.after,
            changed_by: r.changed_by_name,
            changed_at: r.changed_at,
        })
        .collect())
}

/// A row as an edit sees it.
#[derive(sqlx::FromRow)]
pub struct RowState {
    pub ground_truth: Json<Map<String, Value>>,
    pub gt_version: i32,
    pub line: i32,
    pub site_url: String,
    pub inputs: Json<Map<String, Value>>,
}

/// One row, locked until the transaction ends.
pub async fn lock_row(
    tx: &mut PgConnection,
    seq: i64,
    index: i32,
) -> sqlx::Result<Option<RowState>> {
    sqlx::query_as(
        "select ground_truth, gt_version, line, site_url, inputs from batch_rows
         where batch_seq = $1 and row_index = $2 for update",
    )
    .bind(seq)
    .bind(index)
    .fetch_optional(tx)
    .await
}

/// A row's expected values, as a bulk change reads them.
#[derive(sqlx::FromRow)]
pub struct RowValues {
    pub row_index: i32,
    pub site_url: String,
    pub ground_truth: Json<Map<String, Value>>,
}

/// Narrows a whole-batch read to the rows an operation can change.
pub enum Narrow<'a> {
    /// Every row.
    All,
    /// Rows whose `field` is not already `value`.
    Differs(&'a str, &'a str),
    /// Rows that have a value for `field`.
    Present(&'a str),
    /// Rows whose `field` contains `text`.
    Contains(&'a str, &'a str),
}

/// The chosen rows (`None`: all), narrowed, in row order, locked until the
/// transaction ends.
pub async fn lock_rows(
    tx: &mut PgConnection,
    seq: i64,
    indexes: Option<&[i32]>,
    narrow: Narrow<'_>,
) -> sqlx::Result<Vec<RowValues>> {
    let (field, kind, value) = match narrow {
        Narrow::All => (None, "", None),
        Narrow::Differs(f, v) => (Some(f), "differs", Some(v)),
        Narrow::Present(f) => (Some(f), "present", None),
        Narrow::Contains(f, t) => (Some(f), "contains", Some(t)),
    };
    sqlx::query_as(
        "select row_index, site_url, ground_truth from batch_rows
         where batch_seq = $1 and ($2::int[] is null or row_index = any($2))
           and ($3::text is null or case $4
                 when 'differs' then (ground_truth->>$3) is distinct from $5
                 when 'present' then (ground_truth->>$3) is not null
                 else strpos(ground_truth->>$3, $5) > 0 end)
         order by row_index for update",
    )
    .bind(seq)
    .bind(indexes)
    .bind(field)
    .bind(kind)
    .bind(value)
    .fetch_all(tx)
    .await
}

/// The rows with any of these indexes or site URLs, in row order, locked
/// until the transaction ends.
pub async fn lock_rows_by_index_or_url(
    tx: &mut PgConnection,
    seq: i64,
    indexes: &[i32],
    urls: &[String],
) -> sqlx::Result<Vec<RowValues>> {
    sqlx::query_as(
        "select row_index, site_url, ground_truth from batch_rows
         where batch_seq = $1 and (row_index = any($2) or site_url = any($3))
         order by row_index for update",
    )
    .bind(seq)
    .bind(indexes)
    .bind(urls)
    .fetch_all(tx)
    .await
}

/// Writes rows' new expected values, each row's version one up.
pub async fn update_rows(
    tx: &mut PgConnection,
    seq: i64,
    indexes: &[i32],
    truths: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "update batch_rows r set ground_truth = u.gt::json, gt_version = r.gt_version + 1
         from unnest($2::int[], $3::text[]) u(idx, gt)
         where r.batch_seq = $1 and r.row_index = u.idx",
    )
    .bind(seq)
    .bind(indexes)
    .bind(truths)
    .execute(tx)
    .await?;
    Ok(())
}

/// Changes to record, one entry per (row, field), columnwise.
#[derive(Default)]
pub struct NewChanges {
    pub rows: Vec<i32>,
    pub fields: Vec<String>,
    pub before: Vec<Option<String>>,
    pub after: Vec<Option<String>>,
}

/// Records changes in the rows' history, with who made them.
pub async fn insert_changes(
    tx: &mut PgConnection,
    org_id: Uuid,
    seq: i64,
    changed_by: Option<Uuid>,
    changed_by_name: &str,
    c: &NewChanges,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into gt_changes (org_id, batch_seq, row_index, field, before, after,
                                 changed_by, changed_by_name)
         select $1, $2, u.idx, u.field, u.before, u.after, $3, $4
         from unnest($5::int[], $6::text[], $7::text[], $8::text[]) u(idx, field, before, after)",
    )
    .bind(org_id)
    .bind(seq)
    .bind(changed_by)
    .bind(changed_by_name)
    .bind(&c.rows)
    .bind(&c.fields)
    .bind(&c.before)
    .bind(&c.after)
    .execute(tx)
    .await?;
    Ok(())
}

/// Moves a field's count of rows with an expected value by `delta`
/// (never below zero).
pub async fn adjust_coverage(
    tx: &mut PgConnection,
    batch_id: Uuid,
    field: &str,
    delta: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update batches set gt_coverage = jsonb_set(gt_coverage, array[$2],
                to_jsonb(greatest(0, coalesce((gt_coverage->>$2)::bigint, 0) + $3)))
         where id = $1",
    )
    .bind(batch_id)
    .bind(field)
    .bind(delta)
    .execute(tx)
    .await?;
    Ok(())
}

/// Every execution of a batch.
pub async fn executions_of_batch(
    db: impl PgExecutor<'_>,
    batch_id: Uuid,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar("select id from executions where batch_id = $1")
        .bind(batch_id)
        .fetch_all(db)
        .await
}

/// Whether `execution` is one of the organization's runs of the batch.
pub async fn execution_in_batch(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    batch_id: Uuid,
    execution: Uuid,
) -> sqlx::Result<bool> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "select id from executions where id = $1 and batch_id = $2 and org_id = $3",
    )
    .bind(execution)
    .bind(batch_id)
    .bind(org_id)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

#[derive(sqlx::FromRow)]
struct ExecutionFields {
    id: Uuid,
    fields: Json<Vec<OutputField>>,
}

/// The fields each of these executions judges with.
pub async fn execution_fields(
    db: impl PgExecutor<'_>,
    executions: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, Vec<OutputField>>> {
    let rows: Vec<ExecutionFields> =
        sqlx::query_as("select id, fields from executions where id = any($1)")
            .bind(executions)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.fields.0)).collect())
}

/// The runs of a project with their fields, locked until the transaction
/// ends (before their comparators change).
pub async fn lock_project_runs(
    tx: &mut PgConnection,
    org_id: Uuid,
    project_id: Uuid,
) -> sqlx::Result<Vec<(Uuid, Vec<OutputField>)>> {
    let rows: Vec<ExecutionFields> = sqlx::query_as(
        "select id, fields from executions where org_id = $1 and project_id = $2 for update",
    )
    .bind(org_id)
    .bind(project_id)
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.fields.0)).collect())
}

/// Replaces the fields an execution judges with.
pub async fn set_execution_fields(
    tx: &mut PgConnection,
    id: Uuid,
    fields: &[OutputField],
) -> sqlx::Result<()> {
    sqlx::query("update executions set fields = $2 where id = $1")
        .bind(id)
        .bind(Json(fields))
        .execute(tx)
        .await?;
    Ok(())
}

/// A succeeded job to judge again, with its row's expected values.
#[derive(sqlx::FromRow)]
pub struct ToJudge {
    pub id: i64,
    pub execution_id: Uuid,
    pub extracted: Option<Json<Map<String, Value>>>,
    pub ground_truth: Json<Map<String, Value>>,
}

/// The succeeded jobs of `executions`, with their rows' expected values;
/// callers add the page's condition and order.
const JUDGE_SELECT: &str = "select j.id, j.execution_id, j.extracted, r.ground_truth
     from jobs j
     join executions e on e.id = j.execution_id
     join batches b on b.id = e.batch_id
     join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index
     where j.execution_id = any($1) and j.state = 'succeeded'";

/// The succeeded jobs of these rows, by job id.
pub async fn succeeded_jobs_of_rows(
    tx: &mut PgConnection,
    executions: &[Uuid],
    rows: &[i32],
) -> sqlx::Result<Vec<ToJudge>> {
    sqlx::query_as(&format!(
        "{JUDGE_SELECT} and j.row_index = any($2) order by j.id"
    ))
    .bind(executions)
    .bind(rows)
    .fetch_all(tx)
    .await
}

/// A page of succeeded jobs after job `after`, by job id.
pub async fn succeeded_jobs_after(
    tx: &mut PgConnection,
    executions: &[Uuid],
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<ToJudge>> {
    sqlx::query_as(&format!(
        "{JUDGE_SELECT} and j.id > $2 order by j.id limit $3"
    ))
    .bind(executions)
    .bind(after)
    .bind(limit)
    .fetch_all(tx)
    .await
}

/// A job of the batch reached by id, with what it extracted.
#[derive(sqlx::FromRow)]
pub struct JobValues {
    pub id: i64,
    pub row_index: i32,
    pub extracted: Option<Json<Map<String, Value>>>,
}

/// Those of `ids` that are the organization's jobs of the batch.
pub async fn jobs_of_batch(
    tx: &mut PgConnection,
    org_id: Uuid,
    batch_id: Uuid,
    ids: &[i64],
) -> sqlx::Result<Vec<JobValues>> {
    sqlx::query_as(
        "select j.id, j.row_index, j.extracted from jobs j
         join executions e on e.id = j.execution_id
         where j.id = any($1) and e.batch_id = $2 and j.org_id = $3",
    )
    .bind(ids)
    .bind(batch_id)
    .bind(org_id)
    .fetch_all(tx)
    .await
}
