//! Exports (F13): an execution's results as CSV, JSON or XLSX, with chosen
//! columns (extracted values, expected values, per-field comparison) and
//! the job list's filters.
//!
//! An export is one SQL query whose columns are all text, read as a
//! stream: CSV and JSON are written as rows arrive (constant memory), to
//! the caller's connection and to a file kept for re-download; XLSX goes
//! through rust_xlsxwriter's constant-memory worksheet on a blocking thread
//! and is sent once built. Every export leaves a history entry (who, when,
//! format, columns, filters, rows), and the file is kept for
//! [`KEEP_DAYS`] days on the host that wrote it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::types::Json;
use sqlx::{PgPool, Row as _, ValueRef};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::jobs::{check_filter, JobFilter};
use crate::error::AppError;
use crate::model::{Export, OutputField, Page};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::{csv, db};

pub const FORMATS: &[&str] = &["csv", "json", "xlsx"];
pub const KEEP_DAYS: i64 = 7;
/// A caller's connection, receiving the file as it is written (an error
/// cuts the download off, so a partial file is never taken for whole).
pub type Live = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A worksheet's rows, less the header.
const XLSX_MAX_ROWS: i64 = 1_048_575;
/// Bytes gathered before they go to the file and the caller.
const CHUNK: usize = 128 * 1024;

fn not_found() -> AppError {
    AppError::NotFound("Export".into())
}

/// `POST /executions/{id}/export`: the format, the columns (default: see
/// [`default_columns`]) and the job list's filters.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub format: String,
    pub columns: Option<Vec<String>>,
    pub filters: Option<JobFilter>,
}

/// How a column's text is written where types matter (JSON, XLSX).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
    /// pass / partial / fail / error: coloured in XLSX.
    Judgement,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    sql: String,
    kind: Kind,
}

/// A string literal for SQL that reads the same whatever
/// `standard_conforming_strings` says (E'' with quotes and backslashes
/// doubled). Values are checked to hold no NUL before they get here.
pub(crate) fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Every column an execution with these output fields can export: the
/// job's own, then per field the extracted value (`price`), the expected
/// one (`gt_price`, as uploads name it), the comparison (`price_match`:
/// pass or fail) and its score (`price_score`).
fn available(fields: &[String]) -> Vec<Column> {
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
        col("accuracy", "j.accuracy::text", Kind::Number),
        col("attempts", "j.attempt::text", Kind::Number),
        col("error_class", "j.error_class", Kind::Text),
        col("error", "j.error", Kind::Text),
        col(
            "finished_at",
            "to_char(j.finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            Kind::Text,
        ),
    ];
    let base: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
    for f in fields {
        let l = literal(f);
        // A field named like a job column keeps the job column its name.
        let extracted = if base.contains(f) {
            format!("extracted_{f}")
        } else {
            f.clone()
        };
        out.push(col(&extracted, &format!("j.extracted->>{l}"), Kind::Text));
        out.push(col(
            &format!("gt_{f}"),
            &format!("r.ground_truth->>{l}"),
            Kind::Text,
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

/// What an export has unless columns are chosen: where the row is, how it
/// went, and per field extracted, expected and the comparison.
fn default_columns(fields: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ["row", "url", "state", "verdict", "accuracy"]
        .map(String::from)
        .to_vec();
    for c in available(fields).into_iter().skip(10) {
        if !c.name.ends_with("_score") {
            out.push(c.name);
        }
    }
    out.extend(["error_class", "error"].map(String::from));
    out
}

/// The output fields an execution ran with, in their order.
async fn fields_of(db: &PgPool, execution: Uuid) -> Result<Vec<String>, AppError> {
    let Json(fields): Json<Vec<OutputField>> =
        sqlx::query_scalar("select fields from executions where id = $1")
            .bind(execution)
            .fetch_one(db)
            .await?;
    Ok(fields.into_iter().map(|f| f.name).collect())
}

/// The columns an execution's export offers, each with whether it is in
/// the default selection: for the export form.
pub async fn columns(
    db: &PgPool,
    actor: &Actor,
    execution: Uuid,
) -> Result<Vec<(String, bool)>, AppError> {
    let (ctx, _) = super::executions::execution_ctx(db, actor, execution).await?;
    require(&ctx, Permission::ExportData)?;
    let fields = fields_of(db, execution).await?;
    let chosen = default_columns(&fields);
    Ok(available(&fields)
        .into_iter()
        .map(|c| {
            let on = chosen.contains(&c.name);
            (c.name, on)
        })
        .collect())
}

/// An export checked and recorded, ready to [`run`].
pub struct Plan {
    pub export: Export,
    /// The query, also what `COPY (…) TO STDOUT` would run (the benchmark).
    pub sql: String,
    columns: Vec<Column>,
    path: PathBuf,
    org_id: Uuid,
    execution_id: Uuid,
    /// The run's accuracy per field, for the XLSX summary sheet.
    metrics: db::executions::MetricParts,
    run_accuracy: Option<f64>,
}

impl Plan {
    pub fn content_type(&self) -> &'static str {
        content_type(&self.export.format)
    }

    pub fn file_name(&self) -> String {
        file_name(&self.export)
    }
}

pub fn content_type(format: &str) -> &'static str {
    match format {
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        _ => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
}

pub fn file_name(e: &Export) -> String {
    format!(
        "mino-export-{}-{}.{}",
        e.created_at.format("%Y%m%d-%H%M%S"),
        &e.id.simple().to_string()[..8],
        e.format
    )
}

fn file_path(dir: &Path, id: Uuid, format: &str) -> PathBuf {
    dir.join("exports").join(format!("{id}.{format}"))
}

/// Checks an export of `execution` and records it (state running): the
/// caller then [`run`]s or [`stream`]s it.
pub async fn plan(
    db: &PgPool,
    actor: &Actor,
    execution: Uuid,
    req: ExportRequest,
    data_dir: &Path,
) -> Result<Plan, AppError> {
    let (ctx, e) = super::executions::execution_ctx(db, actor, execution).await?;
    require(&ctx, Permission::ExportData)?;
    let format = req.format.trim().to_ascii_lowercase();
    if !FORMATS.contains(&format.as_str()) {
        return Err(AppError::field(
            "format",
            format!("{:?} is not a format; use csv, json or xlsx.", req.format),
        ));
    }
    let fields = fields_of(db, execution).await?;
    let all = available(&fields);
    let names = req
        .columns
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| default_columns(&fields));
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Some(c) = all.iter().find(|c| c.name == name.trim()) else {
            let offered: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
            return Err(AppError::field(
                &format!("columns[{i}]"),
                format!(
                    "{name:?} is not a column of this run; use {}.",
                    offered.join(", ")
                ),
            ));
        };
        if columns.iter().any(|x: &Column| x.name == c.name) {
            return Err(AppError::field(
                &format!("columns[{i}]"),
                format!("{name:?} is listed twice."),
            ));
        }
        columns.push(c.clone());
    }
    let filter = req.filters.clone().unwrap_or_default();
    let checked = check_filter(&filter).map_err(|e| e.nested("filters"))?;
    let seq: i64 = sqlx::query_scalar("select seq from batches where id = $1")
        .bind(e.batch_id)
        .fetch_one(db)
        .await?;
    let from = format!(
        "from jobs j join batch_rows r on r.batch_seq = {seq} and r.row_index = j.row_index
         where j.execution_id = '{execution}'{}",
        checked.sql_conditions()
    );
    let select: Vec<&str> = columns.iter().map(|c| c.sql.as_str()).collect();
    let sql = format!("select {} {from} order by j.id", select.join(", "));
    let total: i64 = sqlx::query_scalar(&format!("select count(*) {from}"))
        .fetch_one(db)
        .await?;
    if format == "xlsx" && total > XLSX_MAX_ROWS {
        return Err(AppError::field(
            "format",
            format!(
                "A worksheet holds at most {XLSX_MAX_ROWS} rows and this export has {total}: \
                 export CSV or JSON, or filter the jobs."
            ),
        ));
    }
    let metrics = db::executions::metric_parts(db, execution).await?;
    let actor_name = ctx.actor_name(db).await?.to_string();
    let filters = filter_map(&filter);
    let mut tx = db.begin().await?;
    let id: Uuid = sqlx::query_scalar(
        "insert into exports (org_id, batch_id, execution_id, format, columns, filters,
                              total_rows, created_by, actor_name, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(days => $10))
         returning id",
    )
    .bind(ctx.org_id())
    .bind(e.batch_id)
    .bind(execution)
    .bind(&format)
    .bind(Json(&names))
    .bind(Json(&filters))
    .bind(total)
    .bind(ctx.actor().user_id())
    .bind(&actor_name)
    .bind(KEEP_DAYS as i32)
    .fetch_one(&mut *tx)
    .await?;
    // Data leaving Mino is what an admin most wants to see in the log.
    super::audit::record(
        &mut *tx,
        &ctx,
        super::audit::Change::new("export.create", "export", id).after(serde_json::json!({
            "execution_id": execution, "format": format, "rows": total,
            "columns": names, "filters": filters,
        })),
    )
    .await?;
    tx.commit().await?;
    let export = fetch(db, ctx.org_id(), id).await?.ok_or_else(not_found)?;
    Ok(Plan {
        path: file_path(data_dir, id, &format),
        export,
        sql,
        columns,
        org_id: ctx.org_id(),
        execution_id: execution,
        metrics,
        run_accuracy: e.accuracy,
    })
}

/// An export of a batch's latest run.
pub async fn plan_for_batch(
    db: &PgPool,
    actor: &Actor,
    batch: Uuid,
    req: ExportRequest,
    data_dir: &Path,
) -> Result<Plan, AppError> {
    let (ctx, _) = super::batches::batch_ctx(db, actor, batch).await?;
    require(&ctx, Permission::ExportData)?;
    let latest: Option<Uuid> = sqlx::query_scalar(
        "select id from executions where org_id = $1 and batch_id = $2
         order by created_at desc limit 1",
    )
    .bind(ctx.org_id())
    .bind(batch)
    .fetch_optional(db)
    .await?;
    let execution = latest.ok_or_else(|| {
        AppError::Conflict("This batch has no runs yet: start one, then export it.".into())
    })?;
    plan(db, actor, execution, req, data_dir).await
}

/// The filters an export applied, by their query-string names.
fn filter_map(f: &JobFilter) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
            m.insert(k.to_string(), v);
        }
    };
    put("status", f.status.clone());
    put("evaluation", f.evaluation.clone());
    put(
        "has_ground_truth",
        f.has_ground_truth.map(|b| b.to_string()),
    );
    put("accuracy_min", f.accuracy_min.map(|a| a.to_string()));
    put("accuracy_max", f.accuracy_max.map(|a| a.to_string()));
    put("q", f.q.clone());
    put("field", f.field.clone());
    m
}

/// Writes the export: to its file, and to `live` (the caller's connection)
/// as it goes. Failures are recorded on the export and returned; a caller
/// that goes away doesn't stop it (the file stays for re-download).
pub async fn run(db: PgPool, plan: Plan, live: Option<Live>) -> Result<Export, AppError> {
    let (id, org) = (plan.export.id, plan.org_id);
    let result = write(&db, &plan, live).await;
    match result {
        Ok((rows, bytes)) => {
            sqlx::query(
                "update exports set state = 'ready', row_count = $2, bytes = $3, finished_at = now()
                 where id = $1",
            )
            .bind(id)
            .bind(rows)
            .bind(bytes as i64)
            .execute(&db)
            .await?;
        }
        Err(ref e) => {
            let _ = tokio::fs::remove_file(part_path(&plan.path)).await;
            tracing::warn!(export = %id, error = %e, "export failed");
            sqlx::query(
                "update exports set state = 'failed', error = $2, finished_at = now() where id = $1",
            )
            .bind(id)
            .bind(e.to_string())
            .execute(&db)
            .await?;
        }
    }
    result?;
    fetch(&db, org, id).await?.ok_or_else(not_found)
}

fn part_path(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "{}.part",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ))
}

/// Runs `plan` in its own task (a caller that leaves doesn't stop it) and
/// returns the file's bytes as they come: CSV and JSON while rows are read,
/// XLSX once the workbook is saved.
pub fn stream(db: PgPool, plan: Plan) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let path = plan.path.clone();
        let xlsx = plan.export.format == "xlsx";
        let live = (!xlsx).then(|| tx.clone());
        match run(db, plan, live).await {
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
            Ok(_) if xlsx => {
                if let Err(e) = send_file(&path, &tx).await {
                    let _ = tx.send(Err(e)).await;
                }
            }
            Ok(_) => {}
        }
    });
    rx
}

/// A kept file, in chunks, to a caller.
pub async fn send_file(path: &Path, tx: &Live) -> Result<(), std::io::Error> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    loop {
        let mut buf = Vec::with_capacity(CHUNK);
        if file.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        while buf.len() < CHUNK {
            if file.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        if tx.send(Ok(Bytes::from(buf))).await.is_err() {
            return Ok(());
        }
    }
}

/// Rows and bytes written.
async fn write(db: &PgPool, plan: &Plan, live: Option<Live>) -> Result<(i64, u64), AppError> {
    let io = |e: std::io::Error| AppError::Internal(format!("export file: {e}"));
    if let Some(dir) = plan.path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
    }
    let part = part_path(&plan.path);
    let (rows, bytes) = match plan.export.format.as_str() {
        "xlsx" => write_xlsx(db, plan, &part).await?,
        format => {
            let mut out = Out {
                file: tokio::fs::File::create(&part).await.map_err(io)?,
                live,
                buf: Vec::with_capacity(CHUNK + 4096),
                bytes: 0,
            };
            let rows = if format == "csv" {
                write_text(db, plan, &mut out, Csv).await?
            } else {
                write_text(db, plan, &mut out, JsonLines::default()).await?
            };
            out.flush().await?;
            out.file.sync_all().await.map_err(io)?;
            (rows, out.bytes)
        }
    };
    tokio::fs::rename(&part, &plan.path).await.map_err(io)?;
    Ok((rows, bytes))
}

/// Where text formats go: the file, and the caller while it listens.
struct Out {
    file: tokio::fs::File,
    live: Option<Live>,
    buf: Vec<u8>,
    bytes: u64,
}

impl Out {
    async fn flush(&mut self) -> Result<(), AppError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.buf)
            .await
            .map_err(|e| AppError::Internal(format!("export file: {e}")))?;
        self.bytes += self.buf.len() as u64;
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK + 4096),
        ));
        if let Some(tx) = &self.live {
            if tx.send(Ok(chunk)).await.is_err() {
                // The caller left: the file is still finished.
                self.live = None;
            }
        }
        Ok(())
    }
}

/// A text format: a header, rows, an ending.
trait TextFormat {
    fn header(&mut self, buf: &mut Vec<u8>, columns: &[Column]);
    fn row(&mut self, buf: &mut Vec<u8>, columns: &[Column], cells: &[Option<&str>]);
    fn end(&mut self, buf: &mut Vec<u8>);
}

struct Csv;

impl TextFormat for Csv {
    fn header(&mut self, buf: &mut Vec<u8>, columns: &[Column]) {
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            csv::write_field(buf, &c.name);
        }
        buf.extend_from_slice(b"\r\n");
    }
    fn row(&mut self, buf: &mut Vec<u8>, _: &[Column], cells: &[Option<&str>]) {
        for (i, v) in cells.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            if let Some(v) = v {
                csv::write_field(buf, v);
            }
        }
        buf.extend_from_slice(b"\r\n");
    }
    fn end(&mut self, _: &mut Vec<u8>) {}
}

/// A JSON array of objects, one per job; numbers as numbers, missing
/// values as null.
#[derive(Default)]
struct JsonLines {
    rows: u64,
}

impl TextFormat for JsonLines {
    fn header(&mut self, buf: &mut Vec<u8>, _: &[Column]) {
        buf.push(b'[');
    }
    fn row(&mut self, buf: &mut Vec<u8>, columns: &[Column], cells: &[Option<&str>]) {
        buf.extend_from_slice(if self.rows == 0 { b"\n{" } else { b",\n{" });
        self.rows += 1;
        for (i, (c, v)) in columns.iter().zip(cells).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let _ = serde_json::to_writer(&mut *buf, &c.name);
            buf.push(b':');
            match v {
                None => buf.extend_from_slice(b"null"),
                Some(v) if c.kind == Kind::Number && v.parse::<f64>().is_ok_and(f64::is_finite) => {
                    buf.extend_from_slice(v.as_bytes())
                }
                Some(v) => {
                    let _ = serde_json::to_writer(&mut *buf, v);
                }
            }
        }
        buf.push(b'}');
    }
    fn end(&mut self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"\n]\n");
    }
}

/// Reports progress at most once a second.
struct Progress {
    id: Uuid,
    last: Instant,
}

impl Progress {
    async fn tick(&mut self, db: &PgPool, rows: i64) -> Result<(), AppError> {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            sqlx::query("update exports set row_count = $2 where id = $1")
                .bind(self.id)
                .bind(rows)
                .execute(db)
                .await?;
        }
        Ok(())
    }
}

async fn write_text(
    db: &PgPool,
    plan: &Plan,
    out: &mut Out,
    mut format: impl TextFormat,
) -> Result<i64, AppError> {
    format.header(&mut out.buf, &plan.columns);
    let mut progress = Progress {
        id: plan.export.id,
        last: Instant::now(),
    };
    let mut rows = sqlx::query(&plan.sql).persistent(false).fetch(db);
    let mut n = 0i64;
    while let Some(row) = rows.next().await {
        let row = row?;
        let cells = (0..plan.columns.len())
            .map(|i| text_at(&row, i))
            .collect::<Result<Vec<_>, _>>()?;
        format.row(&mut out.buf, &plan.columns, &cells);
        n += 1;
        if out.buf.len() >= CHUNK {
            out.flush().await?;
            progress.tick(db, n).await?;
        }
    }
    format.end(&mut out.buf);
    Ok(n)
}

/// A text column's value without copying it (None for SQL null).
fn text_at(row: &sqlx::postgres::PgRow, i: usize) -> Result<Option<&str>, AppError> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(None);
    }
    raw.as_str()
        .map(Some)
        .map_err(|e| AppError::Internal(format!("export column {i}: {e}")))
}

/// Rows handed from the database stream to the workbook thread.
type RowChunk = Vec<Vec<Option<String>>>;

async fn write_xlsx(db: &PgPool, plan: &Plan, part: &Path) -> Result<(i64, u64), AppError> {
    let (tx, rx) = mpsc::channel::<RowChunk>(4);
    let book = Book {
        columns: plan.columns.clone(),
        metrics: plan.metrics.clone(),
        run_accuracy: plan.run_accuracy,
        filters: plan.export.filters.clone(),
        execution_id: plan.execution_id,
        path: part.to_path_buf(),
    };
    let thread = tokio::task::spawn_blocking(move || book.write(rx));
    let mut progress = Progress {
        id: plan.export.id,
        last: Instant::now(),
    };
    let mut rows = sqlx::query(&plan.sql).persistent(false).fetch(db);
    let (mut n, mut chunk) = (0i64, Vec::with_capacity(1000));
    let mut sent = true;
    while let Some(row) = rows.next().await {
        let row = row?;
        let mut cells = Vec::with_capacity(plan.columns.len());
        for i in 0..plan.columns.len() {
            cells.push(text_at(&row, i)?.map(str::to_string));
        }
        chunk.push(cells);
        n += 1;
        if chunk.len() == 1000 {
            if tx.send(std::mem::take(&mut chunk)).await.is_err() {
                sent = false;
                break;
            }
            progress.tick(db, n).await?;
        }
    }
    if sent && !chunk.is_empty() {
        let _ = tx.send(chunk).await;
    }
    drop(tx);
    drop(rows);
    thread
        .await
        .map_err(|e| AppError::Internal(format!("workbook thread: {e}")))?
        .map_err(|e| AppError::Internal(format!("workbook: {e}")))?;
    let bytes = tokio::fs::metadata(part)
        .await
        .map_err(|e| AppError::Internal(format!("export file: {e}")))?
        .len();
    Ok((n, bytes))
}

/// What the workbook thread needs.
struct Book {
    columns: Vec<Column>,
    metrics: db::executions::MetricParts,
    run_accuracy: Option<f64>,
    filters: BTreeMap<String, String>,
    execution_id: Uuid,
    path: PathBuf,
}

impl Book {
    /// A "Results" sheet (bold header, frozen, widths fitted to the first
    /// thousand rows, numbers as numbers, pass/fail coloured) and a
    /// "Summary" sheet with the run's accuracy per field.
    fn write(self, mut rx: mpsc::Receiver<RowChunk>) -> Result<(), rust_xlsxwriter::XlsxError> {
        use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook};
        let mut book = Workbook::new();
        let header = Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0xEEF2F6))
            .set_border_bottom(FormatBorder::Thin);
        let pass = Format::new()
            .set_background_color(Color::RGB(0xC6EFCE))
            .set_font_color(Color::RGB(0x006100));
        let partial = Format::new()
            .set_background_color(Color::RGB(0xFFEB9C))
            .set_font_color(Color::RGB(0x9C5700));
        let fail = Format::new()
            .set_background_color(Color::RGB(0xFFC7CE))
            .set_font_color(Color::RGB(0x9C0006));
        let first = rx.blocking_recv().unwrap_or_default();
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name("Results")?;
        for (c, col) in self.columns.iter().enumerate() {
            let widest = first
                .iter()
                .filter_map(|r| r[c].as_deref())
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
                .max(col.name.chars().count());
            sheet.set_column_width(c as u16, (widest as f64 + 2.0).clamp(6.0, 60.0))?;
        }
        sheet.set_freeze_panes(1, 0)?;
        for (c, col) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, &col.name, &header)?;
        }
        let mut r: u32 = 1;
        let mut chunk = first;
        loop {
            for cells in &chunk {
                for (c, (col, v)) in self.columns.iter().zip(cells).enumerate() {
                    let Some(v) = v else { continue };
                    let c = c as u16;
                    match col.kind {
                        Kind::Number => match v.parse::<f64>() {
                            Ok(n) if n.is_finite() => {
                                sheet.write_number(r, c, n)?;
                            }
                            _ => {
                                sheet.write_string(r, c, v)?;
                            }
                        },
                        Kind::Judgement => {
                            let f = match v.as_str() {
                                "pass" => Some(&pass),
                                "partial" => Some(&partial),
                                "fail" | "error" => Some(&fail),
                                _ => None,
                            };
                            match f {
                                Some(f) => sheet.write_string_with_format(r, c, v, f)?,
                                None => sheet.write_string(r, c, v)?,
                            };
                        }
                        Kind::Text => {
                            sheet.write_string(r, c, v)?;
                        }
                    }
                }
                r += 1;
            }
            match rx.blocking_recv() {
                Some(next) => chunk = next,
                None => break,
            }
        }

        let summary = book.add_worksheet();
        summary.set_name("Summary")?;
        summary.set_column_width(0, 28)?;
        summary.set_column_width(1, 16)?;
        summary.set_column_width(2, 12)?;
        summary.set_column_width(3, 12)?;
        summary.write_string_with_format(0, 0, "Execution", &header)?;
        summary.write_string(0, 1, self.execution_id.to_string())?;
        summary.write_string_with_format(1, 0, "Rows exported", &header)?;
        summary.write_number(1, 1, (r - 1) as f64)?;
        summary.write_string_with_format(2, 0, "Filters", &header)?;
        let filters = if self.filters.is_empty() {
            "none (every job)".to_string()
        } else {
            self.filters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        summary.write_string(2, 1, filters)?;
        summary.write_string_with_format(3, 0, "Run accuracy", &header)?;
        if let Some(a) = self.run_accuracy {
            summary.write_number(3, 1, a)?;
        }
        summary.write_string_with_format(5, 0, "Field (whole run)", &header)?;
        summary.write_string_with_format(5, 1, "Accuracy", &header)?;
        summary.write_string_with_format(5, 2, "Passed", &header)?;
        summary.write_string_with_format(5, 3, "Compared", &header)?;
        for (i, f) in self.metrics.fields.iter().enumerate() {
            let row = 6 + i as u32;
            summary.write_string(row, 0, &f.field)?;
            let fmt = if f.accuracy >= 0.9 {
                &pass
            } else if f.accuracy >= 0.5 {
                &partial
            } else {
                &fail
            };
            summary.write_number_with_format(row, 1, f.accuracy, fmt)?;
            summary.write_number(row, 2, f.passed as f64)?;
            summary.write_number(row, 3, f.compared as f64)?;
        }
        let mut row = 7 + self.metrics.fields.len() as u32;
        summary.write_string_with_format(row, 0, "Verdict (whole run)", &header)?;
        summary.write_string_with_format(row, 1, "Jobs", &header)?;
        for (v, n) in &self.metrics.verdicts {
            row += 1;
            summary.write_string(row, 0, v)?;
            summary.write_number(row, 1, *n as f64)?;
        }
        book.save(&self.path)?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
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
    created_at: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    expires_at: chrono::DateTime<chrono::Utc>,
}

const SELECT: &str = "select id, batch_id, execution_id, format, columns, filters, state,
        total_rows, row_count, bytes, error, actor_name, created_at, finished_at, expires_at
    from exports";

fn to_model(r: Row) -> Export {
    Export {
        download_url: (r.state == "ready").then(|| format!("/api/v1/exports/{}/download", r.id)),
        id: r.id,
        batch_id: r.batch_id,
        execution_id: r.execution_id,
        format: r.format,
        columns: r.columns.0,
        filters: r.filters.0,
        state: r.state,
        total_rows: r.total_rows,
        row_count: r.row_count,
        bytes: r.bytes,
        error: r.error,
        created_by: r.actor_name,
        created_at: r.created_at,
        finished_at: r.finished_at,
        expires_at: r.expires_at,
    }
}

async fn fetch(db: &PgPool, org: Uuid, id: Uuid) -> Result<Option<Export>, AppError> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where org_id = $1 and id = $2"))
        .bind(org)
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(to_model))
}

/// An export the caller may read (404 across tenants).
async fn export_ctx(db: &PgPool, actor: &Actor, id: Uuid) -> Result<(OrgCtx, Export), AppError> {
    let org: Uuid = sqlx::query_scalar("select org_id from exports where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org, not_found).await?;
    require(&ctx, Permission::ExportData)?;
    let e = fetch(db, org, id).await?.ok_or_else(not_found)?;
    Ok((ctx, e))
}

pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Export, AppError> {
    Ok(export_ctx(db, actor, id).await?.1)
}

/// A batch's exports, newest first, in pages.
pub async fn list_for_batch(
    db: &PgPool,
    actor: &Actor,
    batch: Uuid,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Export>, AppError> {
    let (ctx, _) = super::batches::batch_ctx(db, actor, batch).await?;
    require(&ctx, Permission::ExportData)?;
    let limit = super::paging::parse_limit(limit, 20, 100)?;
    let after = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(super::paging::parse_time_cursor(c)?),
        None => None,
    };
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} where org_id = $1 and batch_id = $2
           and ($3::timestamptz is null or (created_at, id) < ($3, $4))
         order by created_at desc, id desc limit $5"
    ))
    .bind(ctx.org_id())
    .bind(batch)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    Ok(super::paging::page(
        rows.into_iter().map(to_model).collect(),
        limit,
        |e| super::paging::time_cursor(e.created_at, e.id),
    ))
}

/// An export's file, for download while it is kept.
pub async fn open(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    data_dir: &Path,
) -> Result<(Export, PathBuf), AppError> {
    let (_, e) = export_ctx(db, actor, id).await?;
    match e.state.as_str() {
        "running" => {
            return Err(AppError::Conflict(
                "This export is still being written; try again when it is ready.".into(),
            ))
        }
        "failed" => {
            return Err(AppError::Conflict(format!(
                "This export failed ({}); export again.",
                e.error.clone().unwrap_or_default()
            )))
        }
        "expired" => {
            return Err(AppError::NotFound(format!(
                "Export file (kept {KEEP_DAYS} days; export again)"
            )))
        }
        _ => {}
    }
    let path = file_path(data_dir, id, &e.format);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(AppError::NotFound(
            "Export file (it is kept on the server that wrote it)".into(),
        ));
    }
    Ok((e, path))
}

/// Every hour: files past their time are removed and their exports marked
/// expired; exports still "running" a day after they started (their
/// process died) are marked failed.
pub fn spawn_cleanup(db: PgPool, data_dir: PathBuf) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = clean(&db, &data_dir).await {
                tracing::warn!(error = %e, "export cleanup failed");
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

async fn clean(db: &PgPool, data_dir: &Path) -> Result<(), AppError> {
    let expired: Vec<(Uuid, String)> = sqlx::query_as(
        "update exports set state = 'expired' where state = 'ready' and expires_at < now()
         returning id, format",
    )
    .fetch_all(db)
    .await?;
    for (id, format) in expired {
        let _ = tokio::fs::remove_file(file_path(data_dir, id, &format)).await;
    }
    sqlx::query(
        "update exports set state = 'failed', error = 'interrupted: the server stopped while writing it',
                finished_at = now()
         where state = 'running' and created_at < now() - interval '1 day'",
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_survive_quotes_and_backslashes() {
        assert_eq!(literal("O'Brien\\"), "E'O''Brien\\\\'");
    }

    #[test]
    fn columns_name_fields_like_uploads_and_avoid_job_columns() {
        let names: Vec<String> = available(&["price".into(), "url".into()])
            .into_iter()
            .map(|c| c.name)
            .collect();
        for n in [
            "price",
            "gt_price",
            "price_match",
            "price_score",
            "extracted_url",
            "gt_url",
        ] {
            assert!(names.contains(&n.to_string()), "{n} in {names:?}");
        }
        assert_eq!(names.iter().filter(|n| *n == "url").count(), 1);
        let d = default_columns(&["price".into()]);
        assert_eq!(
            d,
            [
                "row",
                "url",
                "state",
                "verdict",
                "accuracy",
                "price",
                "gt_price",
                "price_match",
                "error_class",
                "error"
            ]
        );
    }
}
