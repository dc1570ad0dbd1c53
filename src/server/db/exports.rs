//! exports: each export's history entry, the columns an export can
//! select (as SQL over a job and its row), its query, and the stream of
//! its rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool, Row as _, ValueRef};
use uuid::Uuid;

use super::literal;
use super::results::JobQuery;
use crate::model::{Export, OutputField};

/// How a column's text is written where types matter (JSON, XLSX).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Text,
    Number,
    /// A share from 0 to 1, shown as a percentage in XLSX.
    Percent,
    /// A UTC timestamp in ISO 8601 (`2026-12-07T10:00:00Z`), a date cell
    /// in XLSX.
    DateTime,
    /// pass / partial / fail / error: coloured in XLSX.
    Judgement,
}

impl Kind {
    /// Written as a number (JSON, XLSX) when its text reads as one.
    pub fn numeric(self) -> bool {
        matches!(self, Kind::Number | Kind::Percent)
    }
}

/// A column an export can have: its name and the SQL (over `j`, the job,
/// and `r`, its row) that reads it as text.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    sql: String,
    pub kind: Kind,
}

/// How many of [`available`]'s columns are the job's own (the rest come
/// four per output field).
pub const JOB_COLUMNS: usize = 10;

/// Every column an execution with these output fields can export: the
/// job's own, then per field the extracted value (`price`), the expected
/// one (`gt_price`, as uploads name it), the comparison (`price_match`:
/// pass or fail) and its score (`price_score`).
pub fn available(fields: &[OutputField]) -> Vec<Column> {
    let col = |name: &str, sql: &str, kind| Column {
        name: name.into(),
        sql: sql.into(),
        kind,
    };
    let mut out = vec![
        col("row", "j.row_index::text", Kind::Number),
        col("job_id", "j.id::text", Kind::Number),
        col("url", "r.site_url", Kind::Text),
        col("state", "j.state", Kind::Text),
        col("verdict", "j.verdict", Kind::Judgement),
        col("accuracy", "j.accuracy::text", Kind::Percent),
        col("attempts", "j.attempt::text", Kind::Number),
        col("error_class", "j.error_class", Kind::Text),
        col("error", "j.error", Kind::Text),
        col(
            "finished_at",
            "to_char(j.finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            Kind::DateTime,
        ),
    ];
    let base: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
    for field in fields {
        let f = &field.name;
        let l = literal(f);
        // Values of number fields are numbers in XLSX and JSON (text that
        // doesn't read as one stays text); other fields stay text, so an
        // id like "007" keeps its zeros.
        let value_kind = if field.field_type == crate::model::ValueType::Number {
            Kind::Number
        } else {
            Kind::Text
        };
        // A field named like a job column keeps the job column its name.
        let extracted = if base.contains(f) {
            format!("extracted_{f}")
        } else {
            f.clone()
        };
        out.push(col(&extracted, &format!("j.extracted->>{l}"), value_kind));
        out.push(col(
            &format!("gt_{f}"),
            // Several acceptable values joined by " | ", as the grid shows them.
            &format!(
                "case when json_typeof(r.ground_truth->{l}) = 'array'
                      then (select string_agg(x, ' | ') from json_array_elements_text(r.ground_truth->{l}) x)
                      else r.ground_truth->>{l} end"
            ),
            value_kind,
        ));
        out.push(col(
            &format!("{f}_match"),
            &format!(
                "case when j.field_results->{l} is null then null
                      when (j.field_results->{l}->>'pass')::boolean then 'pass' else 'fail' end"
            ),
            Kind::Judgement,
        ));
        out.push(col(
            &format!("{f}_score"),
            &format!("j.field_results->{l}->>'score'"),
            Kind::Number,
        ));
    }
    out
}

/// An export's query: `sql` selects the columns of the matching jobs in
/// run order (also what `COPY (…) TO STDOUT` would run); `from` is its
/// source and conditions, for counting.
pub struct ExportQuery {
    pub sql: String,
    from: String,
}

/// The query over execution `execution` (of the batch `batch_seq`) for
/// `columns` and the jobs `filter` keeps. Everything in it is a literal:
/// no parameters, so the same text can run as `COPY`.
pub fn export_query(
    batch_seq: i64,
    execution: Uuid,
    filter: &JobQuery,
    columns: &[Column],
) -> ExportQuery {
    let from = format!(
        "from jobs j join batch_rows r on r.batch_seq = {batch_seq} and r.row_index = j.row_index
         where j.execution_id = '{execution}'{}",
        filter.sql_conditions()
    );
    let select: Vec<&str> = columns.iter().map(|c| c.sql.as_str()).collect();
    let sql = format!("select {} {from} order by j.id", select.join(", "));
    ExportQuery { sql, from }
}

/// How many rows the export has.
pub async fn count(db: impl PgExecutor<'_>, q: &ExportQuery) -> sqlx::Result<i64> {
    sqlx::query_scalar(&format!("select count(*) {}", q.from))
        .fetch_one(db)
        .await
}

/// The export's rows as they arrive (each column text or null).
pub fn rows<'a>(db: &'a PgPool, sql: &'a str) -> BoxStream<'a, sqlx::Result<PgRow>> {
    sqlx::query(sql).persistent(false).fetch(db)
}

/// A text column's value without copying it (None for SQL null).
pub fn text_at(row: &PgRow, i: usize) -> sqlx::Result<Option<&str>> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(None);
    }
    raw.as_str()
        .map(Some)
        .map_err(|e| sqlx::Error::ColumnDecode {
            index: i.to_string(),
            source: e,
        })
}

/// The output fields an execution ran with, in their order.
/// The output fields an execution ran with.
pub async fn fields(db: impl PgExecutor<'_>, execution: Uuid) -> sqlx::Result<Vec<OutputField>> {
    let Json(fields): Json<Vec<OutputField>> =
        sqlx::query_scalar("select fields from executions where id = $1")
            .bind(execution)
            .fetch_one(db)
            .await?;
    Ok(fields)
}

/// The batch's latest run, if it has one.
pub async fn latest_execution(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    batch_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from executions where org_id = $1 and batch_id = $2
         order by created_at desc limit 1",
    )
    .bind(org_id)
    .bind(batch_id)
    .fetch_optional(db)
    .await
}

pub struct NewExport<'a> {
    pub org_id: Uuid,
    pub batch_id: Uuid,
    pub execution_id: Uuid,
    pub format: &'a str,
    pub columns: &'a [String],
    pub filters: &'a BTreeMap<String, String>,
    pub total_rows: i64,
    pub created_by: Option<Uuid>,
    pub actor_name: &'a str,
    /// Days its file is kept.
    pub keep_days: i32,
}

/// Records an export (state running).
pub async fn insert(db: impl PgExecutor<'_>, e: NewExport<'_>) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into exports (org_id, batch_id, execution_id, format, columns, filters,
                              total_rows, created_by, actor_name, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(days => $10))
         returning id",
    )
    .bind(e.org_id)
    .bind(e.batch_id)
    .bind(e.execution_id)
    .bind(e.format)
    .bind(Json(e.columns))
    .bind(Json(e.filters))
    .bind(e.total_rows)
    .bind(e.created_by)
    .bind(e.actor_name)
    .bind(e.keep_days)
    .fetch_one(db)
    .await
}

/// How far a running export has got.
pub async fn set_progress(db: impl PgExecutor<'_>, id: Uuid, rows: i64) -> sqlx::Result<()> {
    sqlx::query("update exports set row_count = $2 where id = $1")
        .bind(id)
        .bind(rows)
        .execute(db)
        .await?;
    Ok(())
}

/// Marks an export written, with its rows and bytes.
pub async fn mark_ready(
    db: impl PgExecutor<'_>,
    id: Uuid,
    rows: i64,
    bytes: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update exports set state = 'ready', row_count = $2, bytes = $3, finished_at = now()
         where id = $1",
    )
    .bind(id)
    .bind(rows)
    .bind(bytes)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks an export failed, with the reason.
pub async fn mark_failed(db: impl PgExecutor<'_>, id: Uuid, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "update exports set state = 'failed', error = $2, finished_at = now() where id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    id: Uuid,
    batch_id: Uuid,
    execution_id: Option<Uuid>,
    format: String,
    columns: Json<Vec<String>>,
    filters: Json<BTreeMap<String, String>>,
    state: String,
    total_rows: i64,
    row_count: i64,
    bytes: Option<i64>,
    error: Option<String>,
    actor_name: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

impl ExportRow {
    fn into_model(self) -> Export {
        Export {
            download_url: (self.state == "ready")
                .then(|| format!("/api/v1/exports/{}/download", self.id)),
            id: self.id,
            batch_id: self.batch_id,
            execution_id: self.execution_id,
            format: self.format,
            columns: self.columns.0,
            filters: self.filters.0,
            state: self.state,
            total_rows: self.total_rows,
            row_count: self.row_count,
            bytes: self.bytes,
            error: self.error,
            created_by: self.actor_name,
            created_at: self.created_at,
            finished_at: self.finished_at,
            expires_at: self.expires_at,
        }
    }
}

const SELECT: &str = "select id, batch_id, execution_id, format, columns, filters, state,
        total_rows, row_count, bytes, error, actor_name, created_at, finished_at, expires_at
    from exports";

/// The organization an export belongs to, to check the caller's access.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from exports where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One export of the organization.
pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Export>> {
    let row: Option<ExportRow> = sqlx::query_as(&format!("{SELECT} where org_id = $1 and id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(ExportRow::into_model))
}

/// A page of a batch's exports, newest first, after the cursor
/// `(created_at, id)`.
pub async fn list_for_batch(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    batch_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Export>> {
    let rows: Vec<ExportRow> = sqlx::query_as(&format!(
        "{SELECT} where org_id = $1 and batch_id = $2
           and ($3::timestamptz is null or (created_at, id) < ($3, $4))
         order by created_at desc, id desc limit $5"
    ))
    .bind(org_id)
    .bind(batch_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(ExportRow::into_model).collect())
}

/// An export whose file's time is up.
#[derive(sqlx::FromRow)]
pub struct Expired {
    pub id: Uuid,
    pub format: String,
}

/// Marks ready exports past their time expired, returning them (their
/// files are to be removed).
pub async fn expire_due(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Expired>> {
    sqlx::query_as(
        "update exports set state = 'expired' where state = 'ready' and expires_at < now()
         returning id, format",
    )
    .fetch_all(db)
    .await
}

/// Marks exports still "running" a day after they started (their process
/// died) failed.
pub async fn fail_abandoned(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update exports set state = 'failed', error = 'interrupted: the server stopped while writing it',
                finished_at = now()
         where state = 'running' and created_at < now() - interval '1 day'",
    )
    .execute(db)
    .await?
    .rows_affected())
}
