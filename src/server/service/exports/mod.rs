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

//!
//! The rooms: this module checks and records an export (its [`Plan`]) and
//! serves its history and files; `run` writes it; `formats` are CSV, JSON
//! and the XLSX workbook.

mod formats;
mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::jobs::{check_filter, JobFilter};
use super::paging;
use crate::error::AppError;
use crate::model::{Export, Page};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db::exports::{available, Column, JOB_COLUMNS};
use crate::server::db::{self, executions::MetricParts};

pub use run::{run, send_file, stream};

pub const FORMATS: &[&str] = &["csv", "json", "xlsx"];
pub const KEEP_DAYS: i64 = 7;
/// A caller's connection, receiving the file as it is written (an error
/// cuts the download off, so a partial file is never taken for whole).
pub type Live = tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>;

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

/// What an export has unless columns are chosen: where the row is, how it
/// went, and per field extracted, expected and the comparison.
fn default_columns(fields: &[crate::model::OutputField]) -> Vec<String> {
    let mut out: Vec<String> = ["row", "url", "state", "verdict", "accuracy"]
        .map(String::from)
        .to_vec();
    for c in available(fields).into_iter().skip(JOB_COLUMNS) {
        if !c.name.ends_with("_score") {
            out.push(c.name);
        }
    }
    out.extend(["error_class", "error"].map(String::from));
    out
}

/// The columns an execution's export offers, each with whether it is in
/// the default selection: for the export form.
pub async fn columns(
    db: &PgPool,
    actor: &Actor,
    execution: Uuid,
) -> Result<Vec<(String, bool)>, AppError> {
    let (ctx, _) = crate::server::service::executions::execution_ctx(db, actor, execution).await?;
    require(&ctx, Permission::ExportData)?;
    let fields = db::exports::fields(db, execution).await?;
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
    metrics: MetricParts,
    run_accuracy: Option<f64>,
    /// The run's project and batch names and its label.
    project: String,
    batch: String,
    run: String,
}

impl Plan {
    pub fn content_type(&self) -> &'static str {
        content_type(&self.export.format)
    }

    pub fn file_name(&self) -> String {
        file_name(&self.export)
    }
}

/// The HTTP content type of a format.
pub fn content_type(format: &str) -> &'static str {
    match format {
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        _ => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
}

/// The file name an export downloads as.
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
    let (ctx, e) = crate::server::service::executions::execution_ctx(db, actor, execution).await?;
    require(&ctx, Permission::ExportData)?;
    let format = req.format.trim().to_ascii_lowercase();
    if !FORMATS.contains(&format.as_str()) {
        return Err(AppError::field(
            "format",
            format!("{:?} is not a format; use csv, json or xlsx.", req.format),
        ));
    }
    let fields = db::exports::fields(db, execution).await?;
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
    let seq = db::batches::fetch_seq(db, e.batch_id)
        .await?
        .ok_or_else(not_found)?;
    let query = db::exports::export_query(seq, execution, &checked, &columns);
    let total = db::exports::count(db, &query).await?;
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
    let id = db::exports::insert(
        &mut *tx,
        db::exports::NewExport {
            org_id: ctx.org_id(),
            batch_id: e.batch_id,
            execution_id: execution,
            format: &format,
            columns: &names,
            filters: &filters,
            total_rows: total,
            created_by: ctx.actor().user_id(),
            actor_name: &actor_name,
            keep_days: KEEP_DAYS as i32,
        },
    )
    .await?;
    // Data leaving Mino is what an admin most wants to see in the log.
    crate::server::service::audit::record(
        &mut *tx,
        &ctx,
        crate::server::service::audit::Change::new("export.create", "export", id).after(
            serde_json::json!({
                "execution_id": execution, "format": format, "rows": total,
                "columns": names, "filters": filters,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    let export = db::exports::fetch_one(db, ctx.org_id(), id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Plan {
        path: file_path(data_dir, id, &format),
        export,
        sql: query.sql,
        columns,
        org_id: ctx.org_id(),
        execution_id: execution,
        metrics,
        run_accuracy: e.accuracy,
        project: e.project_name.clone(),
        batch: e.batch_name.clone(),
        run: e.label(),
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
    let (ctx, _) = crate::server::service::batches::batch_ctx(db, actor, batch).await?;
    require(&ctx, Permission::ExportData)?;
    let latest = db::exports::latest_execution(db, ctx.org_id(), batch).await?;
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

/// An export the caller may read (404 across tenants).
async fn export_ctx(db: &PgPool, actor: &Actor, id: Uuid) -> Result<(OrgCtx, Export), AppError> {
    let org = db::exports::fetch_org_id(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = crate::server::service::orgs::resource_ctx(db, actor, org, not_found).await?;
    require(&ctx, Permission::ExportData)?;
    let e = db::exports::fetch_one(db, org, id)
        .await?
        .ok_or_else(not_found)?;
    Ok((ctx, e))
}

/// One export.
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
    let (ctx, _) = crate::server::service::batches::batch_ctx(db, actor, batch).await?;
    require(&ctx, Permission::ExportData)?;
    let limit = paging::parse_limit(limit, 20, 100)?;
    let after = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(paging::parse_time_cursor(c)?),
        None => None,
    };
    let rows = db::exports::list_for_batch(db, ctx.org_id(), batch, after, limit + 1).await?;
    Ok(paging::page(rows, limit, |e| {
        paging::time_cursor(e.created_at, e.id)
    }))
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
    for e in db::exports::expire_due(db).await? {
        let _ = tokio::fs::remove_file(file_path(data_dir, e.id, &e.format)).await;
    }
    db::exports::fail_abandoned(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_name_fields_like_uploads_and_avoid_job_columns() {
        let field = |name: &str| crate::model::OutputField {
            name: name.into(),
            field_type: crate::model::ValueType::Number,
            comparator: crate::model::Comparator::Number,
            comparator_options: Default::default(),
            rule: crate::model::ExtractionRule::Auto,
            source: "csv".into(),
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        };
        let names: Vec<String> = available(&[field("price"), field("url")])
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
        let d = default_columns(&[field("price")]);
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
