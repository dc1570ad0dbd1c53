//! Writing an export: rows streamed from the database into its format, to
//! its file and (while it listens) the caller's connection; XLSX on a
//! blocking thread. Progress is recorded about once a second, and the
//! outcome (ready or failed) when it ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::StreamExt;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::formats::{Book, Csv, JsonLines, RowChunk, TextFormat};
use super::{not_found, Live, Plan, CHUNK};
use crate::error::AppError;
use crate::model::Export;
use crate::server::db;

/// Writes the export: to its file, and to `live` (the caller's connection)
/// as it goes. Failures are recorded on the export and returned; a caller
/// that goes away doesn't stop it (the file stays for re-download).
pub async fn run(db: PgPool, plan: Plan, live: Option<Live>) -> Result<Export, AppError> {
    let (id, org) = (plan.export.id, plan.org_id);
    let result = write(&db, &plan, live).await;
    match result {
        Ok((rows, bytes)) => {
            db::exports::mark_ready(&db, id, rows, bytes as i64).await?;
        }
        Err(ref e) => {
            let _ = tokio::fs::remove_file(part_path(&plan.path)).await;
            tracing::warn!(export = %id, error = %e, "export failed");
            db::exports::mark_failed(&db, id, &e.to_string()).await?;
        }
    }
    result?;
    db::exports::fetch_one(&db, org, id)
        .await?
        .ok_or_else(not_found)
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
    let io = |e: std::io::Error| AppError::internal("export file", &e);
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
            .map_err(|e| AppError::internal("export file", &e))?;
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

/// Reports progress at most once a second.
struct Progress {
    id: Uuid,
    last: Instant,
}

impl Progress {
    async fn tick(&mut self, db: &PgPool, rows: i64) -> Result<(), AppError> {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            db::exports::set_progress(db, self.id, rows).await?;
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
    let mut rows = db::exports::rows(db, &plan.sql);
    let mut n = 0i64;
    while let Some(row) = rows.next().await {
        let row = row?;
        let cells = (0..plan.columns.len())
            .map(|i| db::exports::text_at(&row, i))
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

async fn write_xlsx(db: &PgPool, plan: &Plan, part: &Path) -> Result<(i64, u64), AppError> {
    let (tx, rx) = mpsc::channel::<RowChunk>(4);
    let book = Book {
        columns: plan.columns.clone(),
        metrics: plan.metrics.clone(),
        run_accuracy: plan.run_accuracy,
        filters: plan.export.filters.clone(),
        execution_id: plan.execution_id,
        project: plan.project.clone(),
        batch: plan.batch.clone(),
        run: plan.run.clone(),
        path: part.to_path_buf(),
    };
    let thread = tokio::task::spawn_blocking(move || book.write(rx));
    let mut progress = Progress {
        id: plan.export.id,
        last: Instant::now(),
    };
    let mut rows = db::exports::rows(db, &plan.sql);
    let (mut n, mut chunk) = (0i64, Vec::with_capacity(1000));
    let mut sent = true;
    while let Some(row) = rows.next().await {
        let row = row?;
        let mut cells = Vec::with_capacity(plan.columns.len());
        for i in 0..plan.columns.len() {
            cells.push(db::exports::text_at(&row, i)?.map(str::to_string));
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
        .map_err(|e| AppError::internal("workbook thread", &e))?
        .map_err(|e| AppError::internal("workbook", &e))?;
    let bytes = tokio::fs::metadata(part)
        .await
        .map_err(|e| AppError::internal("export file", &e))?
        .len();
    Ok((n, bytes))
}
