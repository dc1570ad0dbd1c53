//! Batches: uploading a CSV (checked, streamed into `batch_rows` with COPY
//! inside one transaction, so a refused or interrupted file leaves nothing
//! behind and a batch appears only when complete), previewing one, reading
//! its rows, renaming and deleting.

use std::collections::BTreeMap;

use axum::body::Bytes;
use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use serde_json::json;

use super::audit::{self, Change};
use super::projects::project_ctx;
use super::{paging, parse_name};
use crate::error::AppError;
use crate::model::{Batch, BatchRow, BatchSummary, ColumnRole, CsvReport, OutputField, Page};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;
use crate::server::db::batches::BatchDbRow;
use crate::server::ingest::{CsvReader, ReadOptions};

/// COPY data is sent to Postgres in pieces of about this size.
const COPY_CHUNK: usize = 1 << 20;

fn not_found() -> AppError {
    AppError::NotFound("Batch".into())
}

/// What arrives from the request body, in order.
pub enum Chunk {
    Data(Bytes),
    /// The body ended normally; a multipart `name` part may have come last.
    End {
        name: Option<String>,
    },
}

/// How the upload was asked for (query string or multipart parts).
#[derive(Debug, Default, Clone)]
pub struct UploadMeta {
    pub name: Option<String>,
    pub file_name: Option<String>,
    pub options: ReadOptions,
}

/// The caller's context for a batch, and the batch: 404 across tenants.
pub async fn batch_ctx(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
) -> Result<(OrgCtx, BatchDbRow), AppError> {
    let org_id = db::batches::fetch_org_id(db, batch_id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewProjects)?;
    let row = db::batches::fetch_one(db, org_id, batch_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((ctx, row))
}

fn to_model(ctx: &OrgCtx, r: BatchDbRow) -> Batch {
    Batch {
        id: r.id,
        project_id: r.project_id,
        project_name: r.project_name,
        org_slug: r.org_slug,
        name: r.name,
        columns: r.column_schema.0,
        url_column: r.url_column,
        delimiter: r.delimiter,
        row_count: r.row_count,
        skipped_rows: r.skipped_rows,
        gt_coverage: r.gt_coverage.0,
        file_name: r.file_name,
        file_bytes: r.file_bytes,
        created_by_name: r.created_by_name,
        created_at: r.created_at,
        role: ctx.role(),
    }
}

/// One batch, with its schema and coverage.
pub async fn get(db: &PgPool, actor: &Actor, batch_id: Uuid) -> Result<Batch, AppError> {
    let (ctx, row) = batch_ctx(db, actor, batch_id).await?;
    Ok(to_model(&ctx, row))
}

/// The caller may upload to this project (members and up; keys with write).
pub async fn upload_ctx(db: &PgPool, actor: &Actor, project_id: Uuid) -> Result<OrgCtx, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    Ok(ctx)
}

/// A batch name from the query or the file name: "sites.csv" → "sites".
fn batch_name(given: Option<&str>, file_name: Option<&str>) -> Result<String, AppError> {
    if let Some(name) = given.filter(|n| !n.trim().is_empty()) {
        return parse_name(name, "name");
    }
    let stem = file_name
        .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f))
        .map(|f| {
            f.strip_suffix(".csv")
                .or(f.strip_suffix(".CSV"))
                .unwrap_or(f)
        })
        .map(|f| f.trim().chars().take(100).collect::<String>())
        .filter(|f| !f.is_empty() && !f.chars().any(char::is_control));
    Ok(stem.unwrap_or_else(|| format!("Batch of {}", Utc::now().format("%Y-%m-%d %H:%M"))))
}

/// Ingests a CSV already in memory (the demo batch, benchmark fixtures) the
/// way an upload is: through [`ingest`] on its own task, fed in one chunk.
pub async fn ingest_text(
    db: &PgPool,
    ctx: &OrgCtx,
    project_id: Uuid,
    meta: UploadMeta,
    csv: String,
) -> Result<Batch, AppError> {
    let (tx, rx) = mpsc::channel(2);
    let task = tokio::spawn(super::audit::carry_request(ingest(
        db.clone(),
        ctx.clone(),
        project_id,
        meta,
        rx,
    )));
    let _ = tx.send(Chunk::Data(Bytes::from(csv))).await;
    let _ = tx.send(Chunk::End { name: None }).await;
    drop(tx);
    task.await
        .map_err(|e| AppError::internal("ingest task", &e))?
}

/// Reads the upload from `chunks` into a new batch. Runs as its own task
/// so that a client that goes away mid-upload (the channel closes without
/// `End`) still ends the COPY properly and rolls everything back.
pub async fn ingest(
    db: PgPool,
    ctx: OrgCtx,
    project_id: Uuid,
    meta: UploadMeta,
    mut chunks: mpsc::Receiver<Chunk>,
) -> Result<Batch, AppError> {
    let given_name = meta
        .name
        .as_deref()
        .map(|n| parse_name(n, "name"))
        .transpose()?;
    // From the query string or a multipart part: anything the client sent.
    let file_name: Option<String> = meta
        .file_name
        .as_deref()
        .map(|f| f.chars().filter(|c| !c.is_control()).take(255).collect())
        .filter(|f: &String| !f.trim().is_empty());
    let placeholder = batch_name(given_name.as_deref(), file_name.as_deref())?;
    let batch_id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    let batch_seq = db::batches::insert(
        &mut *tx,
        batch_id,
        ctx.org_id(),
        project_id,
        &placeholder,
        file_name.as_deref(),
        ctx.actor().user_id(),
    )
    .await?;
    // Fields that split expected cells into several acceptable values.
    let mut options = meta.options.clone();
    options.separators = db::projects::fetch_fields(&db, ctx.org_id(), project_id)
        .await?
        .into_iter()
        .filter_map(|f| Some((f.name.to_lowercase(), f.multi_value_separator?)))
        .collect();
    let mut reader = CsvReader::new(options, batch_seq);
    let mut bytes = 0u64;
    let mut copy = tx
        .copy_in_raw(
            "copy batch_rows (batch_seq, row_index, line, site_url, inputs, ground_truth) from stdin",
        )
        .await?;
    let read: Result<Option<String>, AppError> = async {
        loop {
            match chunks.recv().await {
                Some(Chunk::Data(data)) => {
                    bytes += data.len() as u64;
                    reader.feed(&data)?;
                    if reader.pending_output() >= COPY_CHUNK {
                        copy.send(reader.take_output()).await?;
                    }
                }
                Some(Chunk::End { name }) => {
                    reader.finish()?;
                    let rest = reader.take_output();
                    if !rest.is_empty() {
                        copy.send(rest).await?;
                    }
                    return Ok(name);
                }
                None => {
                    return Err(AppError::field(
                        "file",
                        "The upload stopped before the end of the file; nothing was saved.",
                    ))
                }
            }
        }
    }
    .await;
    let late_name = match read {
        Ok(name) => name,
        Err(e) => {
            // The transaction rolls back when dropped; the COPY must be
            // ended first or the connection is unusable.
            let _ = copy.abort("upload refused").await;
            return Err(e);
        }
    };
    let copied = copy.finish().await?;
    let name = match (given_name, late_name) {
        (Some(n), _) => n,
        (None, Some(n)) if !n.trim().is_empty() => parse_name(&n, "name")?,
        _ => placeholder,
    };
    let columns = reader.columns().unwrap_or_default().to_vec();
    let coverage: BTreeMap<String, i64> = reader
        .coverage()
        .into_iter()
        .map(|(f, n)| (f, n as i64))
        .collect();
    db::batches::finish(
        &mut *tx,
        batch_id,
        db::batches::Finished {
            name: &name,
            columns: &columns,
            url_column: reader.url_column().unwrap_or_default(),
            delimiter: &reader.delimiter().to_string(),
            row_count: copied as i64,
            skipped_rows: reader.skipped_rows() as i64,
            coverage,
            file_bytes: bytes as i64,
        },
    )
    .await?;
    // Ground-truth columns become the project's output fields, unless it
    // has them already (whose settings the user may have tuned).
    for c in columns.iter().filter(|c| c.role == ColumnRole::GroundTruth) {
        let field = OutputField {
            name: c.field.clone().unwrap_or_default(),
            field_type: c.value_type,
            comparator: c
                .value_type
                .comparator_for(c.field.as_deref().unwrap_or_default()),
            comparator_options: Default::default(),
            rule: crate::model::ExtractionRule::Auto,
            source: "csv".into(),
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        };
        db::projects::insert_field(&mut *tx, ctx.org_id(), project_id, &field).await?;
    }
    db::projects::touch(&mut *tx, ctx.org_id(), project_id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("batch.create", "batch", batch_id).after(json!({
            "name": name, "project_id": project_id, "rows": copied, "bytes": bytes,
        })),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%batch_id, rows = copied, bytes, "batch uploaded");
    let row = db::batches::fetch_one(&db, ctx.org_id(), batch_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(to_model(&ctx, row))
}

/// Reads a file (or, with `options.truncated`, its start) and reports its
/// schema, first rows and first problem, storing nothing.
pub async fn preview(
    mut chunks: mpsc::Receiver<Chunk>,
    options: ReadOptions,
) -> Result<CsvReport, AppError> {
    let mut reader = CsvReader::new(options, 0);
    let outcome: Result<(), AppError> = async {
        loop {
            match chunks.recv().await {
                Some(Chunk::Data(data)) => {
                    reader.feed(&data)?;
                    // Nothing is stored: drop the COPY text as it is made.
                    reader.take_output();
                }
                Some(Chunk::End { .. }) => return reader.finish(),
                None => {
                    return Err(AppError::field(
                        "file",
                        "The upload stopped before the end of the file.",
                    ))
                }
            }
        }
    }
    .await;
    match outcome {
        Ok(()) => Ok(reader.report(None)),
        Err(AppError::BadFile(p)) => Ok(reader.report(Some(*p))),
        Err(other) => Err(other),
    }
}

/// A project's batches, a page at a time.
pub async fn list(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<BatchSummary>, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    let after = cursor.map(paging::parse_time_cursor).transpose()?;
    let items =
        db::batches::fetch_for_project(db, ctx.org_id(), project_id, after, limit + 1).await?;
    Ok(paging::page(items, limit, |b| {
        paging::time_cursor(b.created_at, b.id)
    }))
}

/// A LIKE pattern matching `q` anywhere, with its wildcards taken literally.
fn contains_pattern(q: &str) -> String {
    let mut p = String::from("%");
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A page of a batch's rows, optionally searched.
pub async fn rows(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    q: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<BatchRow>, AppError> {
    let (_, batch) = batch_ctx(db, actor, batch_id).await?;
    let after = cursor
        .map(paging::parse_number_cursor)
        .transpose()?
        .unwrap_or(0);
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 200 || q.contains('\0')) {
        return Err(AppError::field(
            "q",
            "Search for at most 200 characters of text.",
        ));
    }
    let pattern = q.map(contains_pattern);
    let items =
        db::batches::fetch_rows(db, batch.seq, after, pattern.as_deref(), limit + 1).await?;
    Ok(paging::page(items, limit, |r| r.row_index.to_string()))
}

/// Renames a batch.
pub async fn rename(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    name: &str,
) -> Result<Batch, AppError> {
    let (ctx, row) = batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::EditProject)?;
    let name = parse_name(name, "name")?;
    let mut tx = db.begin().await?;
    db::batches::rename(&mut *tx, ctx.org_id(), batch_id, &name).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("batch.rename", "batch", batch_id)
            .before(json!({"name": row.name}))
            .after(json!({"name": name})),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, batch_id).await
}

/// Deletes a batch with its rows and runs (admins).
pub async fn delete(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    confirm_name: Option<&str>,
) -> Result<Uuid, AppError> {
    let (ctx, row) = batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::DeleteProject)?;
    if let Some(confirm) = confirm_name {
        if confirm.trim() != row.name {
            return Err(AppError::field(
                "confirm",
                format!("Type the batch's name, {:?}, to confirm.", row.name),
            ));
        }
    }
    let mut tx = db.begin().await?;
    db::batches::delete(&mut *tx, ctx.org_id(), batch_id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("batch.delete", "batch", batch_id).before(json!({
            "name": row.name, "project_id": row.project_id, "rows": row.row_count,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(row.project_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_names_come_from_the_file() {
        assert_eq!(
            batch_name(None, Some("C:\\data\\sites.csv")).unwrap(),
            "sites"
        );
        assert_eq!(batch_name(Some(" Q3 "), Some("x.csv")).unwrap(), "Q3");
        assert!(batch_name(None, None).unwrap().starts_with("Batch of "));
        assert!(batch_name(Some(&"x".repeat(101)), None).is_err());
    }

    #[test]
    fn search_wildcards_are_literal() {
        assert_eq!(contains_pattern("50%_off"), "%50\\%\\_off%");
    }
}
