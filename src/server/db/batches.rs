//! batches and batch_rows. Rows arrive by COPY (see `service::batches`);
//! here are the reads and the small writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{BatchRow, BatchSummary, ColumnSchema};

#[derive(sqlx::FromRow)]
pub struct BatchDbRow {
    pub id: Uuid,
    pub seq: i64,
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub project_name: String,
    pub org_slug: String,
    pub name: String,
    pub column_schema: Json<Vec<ColumnSchema>>,
    pub url_column: String,
    pub delimiter: String,
    pub row_count: i32,
    pub skipped_rows: i32,
    pub gt_coverage: Json<BTreeMap<String, i64>>,
    pub file_name: Option<String>,
    pub file_bytes: i64,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The organization a batch belongs to, to check the caller's access.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from batches where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The batch's sequence number (its rows' key).
pub async fn fetch_seq(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("select seq from batches where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One batch of the organization, with its project's and creator's names.
pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<BatchDbRow>> {
    sqlx::query_as(
        "select b.id, b.seq, b.org_id, b.project_id, p.name as project_name, o.slug as org_slug,
                b.name, b.column_schema, b.url_column, b.delimiter, b.row_count,
                b.skipped_rows, b.gt_coverage, b.file_name, b.file_bytes,
                u.name as created_by_name, b.created_at
         from batches b
         join projects p on p.id = b.project_id
         join organizations o on o.id = b.org_id
         left join users u on u.id = b.created_by
         where b.org_id = $1 and b.id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    name: String,
    row_count: i32,
    gt_fields: i32,
    file_name: Option<String>,
    created_at: DateTime<Utc>,
}

/// A project's batches, newest first, after the cursor `(created_at, id)`.
pub async fn fetch_for_project(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<BatchSummary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "select id, name, row_count,
                (select count(*) from jsonb_object_keys(gt_coverage))::int as gt_fields,
                file_name, created_at
         from batches
         where org_id = $1 and project_id = $2
           and ($3::timestamptz is null or (created_at, id) < ($3, $4))
         order by created_at desc, id desc
         limit $5",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BatchSummary {
            id: r.id,
            name: r.name,
            row_count: r.row_count,
            gt_fields: r.gt_fields,
            file_name: r.file_name,
            created_at: r.created_at,
        })
        .collect())
}

/// The batch row written before its rows are copied in, in the same
/// transaction; `finish` fills in what reading the file found. Returns the
/// batch's seq, which its rows carry.
pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    org_id: Uuid,
    project_id: Uuid,
    name: &str,
    file_name: Option<&str>,
    created_by: Option<Uuid>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "insert into batches (id, org_id, project_id, name, column_schema, url_column,
                              delimiter, file_name, created_by)
         values ($1, $2, $3, $4, '[]', '', ',', $5, $6)
         returning seq",
    )
    .bind(id)
    .bind(org_id)
    .bind(project_id)
    .bind(name)
    .bind(file_name)
    .bind(created_by)
    .fetch_one(db)
    .await
}

pub struct Finished<'a> {
    pub name: &'a str,
    pub columns: &'a [ColumnSchema],
    pub url_column: &'a str,
    pub delimiter: &'a str,
    pub row_count: i64,
    pub skipped_rows: i64,
    pub coverage: BTreeMap<String, i64>,
    pub file_bytes: i64,
}

/// Records what an upload found once its rows are in (schema, counts, coverage).
pub async fn finish(db: impl PgExecutor<'_>, id: Uuid, f: Finished<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "update batches set name = $2, column_schema = $3, url_column = $4, delimiter = $5,
                row_count = $6, skipped_rows = $7, gt_coverage = $8, file_bytes = $9
         where id = $1",
    )
    .bind(id)
    .bind(f.name)
    .bind(Json(f.columns))
    .bind(f.url_column)
    .bind(f.delimiter)
    .bind(f.row_count as i32)
    .bind(f.skipped_rows as i32)
    .bind(Json(&f.coverage))
    .bind(f.file_bytes)
    .execute(db)
    .await?;
    Ok(())
}

/// Renames a batch.
pub async fn rename(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    name: &str,
) -> sqlx::Result<()> {
    sqlx::query("update batches set name = $3 where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes a batch (its rows go with it, by trigger); how many were deleted.
pub async fn delete(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from batches where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

#[derive(sqlx::FromRow)]
struct RowRow {
    row_index: i32,
    line: i32,
    site_url: String,
    inputs: Json<BTreeMap<String, String>>,
    // Values are texts, or lists of acceptable values.
    ground_truth: Json<BTreeMap<String, serde_json::Value>>,
    gt_version: i32,
}

/// Rows of the batch `batch_seq` in file order after `after` (a row
/// index). `pattern`, a LIKE pattern, keeps rows whose URL or any value
/// contains it. The caller has checked the batch is in its organization.
pub async fn fetch_rows(
    db: impl PgExecutor<'_>,
    batch_seq: i64,
    after: i32,
    pattern: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<BatchRow>> {
    let rows: Vec<RowRow> = sqlx::query_as(
        "select row_index, line, site_url, inputs, ground_truth, gt_version
         from batch_rows
         where batch_seq = $1 and row_index > $2
           and ($3::text is null
                or site_url ilike $3
                or exists (select 1 from json_each_text(inputs) e where e.value ilike $3)
                or exists (select 1 from json_each_text(ground_truth) g where g.value ilike $3))
         order by row_index
         limit $4",
    )
    .bind(batch_seq)
    .bind(after)
    .bind(pattern)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BatchRow {
            id: crate::model::row_id(batch_seq, r.row_index),
            row_index: r.row_index,
            line: r.line,
            site_url: r.site_url,
            inputs: r.inputs.0,
            ground_truth: r
                .ground_truth
                .0
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), crate::model::expected_text(v)?)))
                .collect(),
            gt_version: r.gt_version,
        })
        .collect())
}
