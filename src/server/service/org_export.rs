//! Data rights (F21): everything an organization has in Mino as one zip,
//! streamed as it is made — CSV files straight from Postgres `COPY` inside
//! one read-only snapshot (so the files agree with each other), a JSON
//! file for the organization itself, and `manifest.json` listing every
//! file with its row count. Secrets never leave: webhook secrets, model
//! provider keys and API key hashes are not exported.
//!
//! Three stages, each bounded so memory stays flat whatever the size: the
//! reader (COPY streams) → a blocking thread compressing into the zip →
//! the HTTP body. A slow client slows the reader down.

use std::io::Write;

use axum::body::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::audit::{self, Change};
use crate::error::AppError;
use crate::server::auth::rbac::{require, OrgCtx, Permission};

/// (file name, query) for every CSV file; `{org}` is the organization's id.
/// Rows in a stable order so two exports of unchanged data are equal.
/// (Public for the benchmark, whose baseline copies the same queries raw.)
pub const TABLES: &[(&str, &str)] = &[
    (
        "members.csv",
        "select u.id as user_id, u.name, u.email, m.role, m.created_at as joined_at
        from memberships m join users u on u.id = m.user_id where m.org_id = '{org}'
        order by m.created_at, u.id",
    ),
    (
        "projects.csv",
        "select * from projects where org_id = '{org}' order by created_at, id",
    ),
    (
        "instruction_versions.csv",
        "select * from instruction_versions where org_id = '{org}'
        order by project_id, version",
    ),
    (
        "project_fields.csv",
        "select * from project_fields where org_id = '{org}'
        order by project_id, position, name",
    ),
    (
        "batches.csv",
        "select * from batches where org_id = '{org}' order by created_at, id",
    ),
    (
        "batch_rows.csv",
        "select b.id as batch_id, r.* from batch_rows r
        join batches b on b.seq = r.batch_seq where b.org_id = '{org}'
        order by b.seq, r.row_index",
    ),
    (
        "ground_truth_changes.csv",
        "select b.id as batch_id, g.* from gt_changes g
        join batches b on b.seq = g.batch_seq where g.org_id = '{org}' order by g.id",
    ),
    (
        "executions.csv",
        "select * from executions where org_id = '{org}' order by created_at, id",
    ),
    (
        "execution_events.csv",
        "select v.* from execution_events v
        join executions x on x.id = v.execution_id where x.org_id = '{org}' order by v.id",
    ),
    (
        "jobs.csv",
        "select * from jobs where org_id = '{org}' order by id",
    ),
    (
        "attempts.csv",
        "select a.* from attempts a join jobs j on j.id = a.job_id
        where j.org_id = '{org}' order by a.job_id, a.n",
    ),
    (
        "webhooks.csv",
        "select id, url, description, events, enabled, disabled_reason, disabled_at,
        consecutive_failures, created_by, created_at, updated_at
        from webhooks where org_id = '{org}' order by created_at, id",
    ),
    (
        "webhook_deliveries.csv",
        "select * from webhook_deliveries where org_id = '{org}'
        order by created_at, id",
    ),
    (
        "audit_log.csv",
        "select * from audit_log where org_id = '{org}' order by id",
    ),
    (
        "usage_daily.csv",
        "select org_id, day, project_id, execution_id, agent, extractor, model,
        sum(jobs) as jobs, sum(attempts) as attempts, sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens, sum(cost_micros) as cost_micros
        from usage_now where org_id = '{org}' group by 1, 2, 3, 4, 5, 6, 7
        order by day, execution_id, agent, extractor, model",
    ),
    (
        "budget_alerts.csv",
        "select * from budget_alerts where org_id = '{org}' order by month, threshold",
    ),
];

enum Part {
    File(String),
    Data(Bytes),
}

/// Checks the caller may export (owners), records the export, and starts
/// streaming; the receiver is the zip's bytes.
pub async fn start(
    db: &PgPool,
    ctx: &OrgCtx,
) -> Result<(String, mpsc::Receiver<Result<Bytes, std::io::Error>>), AppError> {
    require(ctx, Permission::DeleteOrganization)?;
    let org = super::orgs::get(db, ctx).await?;
    let mut tx = db.begin().await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("organization.export", "organization", ctx.org_id())
            .after(json!({"files": TABLES.len() + 2})),
    )
    .await?;
    tx.commit().await?;

    let (out_tx, out_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let (part_tx, part_rx) = mpsc::channel::<Part>(16);
    let zipper = tokio::task::spawn_blocking({
        let out = out_tx.clone();
        move || write_zip(part_rx, out)
    });
    let db = db.clone();
    let org_id = ctx.org_id();
    let name = format!(
        "mino-{}-{}.zip",
        org.slug,
        chrono::Utc::now().format("%Y-%m-%d")
    );
    tokio::spawn(async move {
        let read = read_all(
            &db,
            org_id,
            serde_json::to_value(&org).unwrap_or_default(),
            &part_tx,
        )
        .await;
        drop(part_tx);
        let zipped = zipper.await;
        let failure = match (read, zipped) {
            (Err(e), _) => Some(e.to_string()),
            (_, Ok(Err(e))) => Some(e.to_string()),
            (_, Err(e)) => Some(e.to_string()),
            _ => None,
        };
        if let Some(e) = failure {
            tracing::warn!(org = %org_id, error = %e, "organization export ended early");
            // The client sees a cut download, never a zip that looks whole.
            let _ = out_tx
                .send(Err(std::io::Error::other("the export stopped")))
                .await;
        }
    });
    Ok((name, out_rx))
}

async fn read_all(
    db: &PgPool,
    org_id: Uuid,
    org: serde_json::Value,
    parts: &mpsc::Sender<Part>,
) -> anyhow::Result<()> {
    let send = |p: Part| async move {
        parts
            .send(p)
            .await
            .map_err(|_| anyhow::anyhow!("the download was abandoned"))
    };
    let mut tx = db.begin().await?;
    // One snapshot for every file.
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    send(Part::File("organization.json".into())).await?;
    send(Part::Data(Bytes::from(serde_json::to_vec_pretty(&org)?))).await?;
    let mut files = vec![json!({"name": "organization.json", "rows": 1})];
    for (file, query) in TABLES {
        let query = query.replace("{org}", &org_id.to_string());
        let rows: i64 = sqlx::query_scalar(&format!("select count(*) from ({query}) t"))
            .fetch_one(&mut *tx)
            .await?;
        send(Part::File((*file).into())).await?;
        let mut stream = tx
            .copy_out_raw(&format!(
                "copy ({query}) to stdout with (format csv, header)"
            ))
            .await?;
        while let Some(chunk) = stream.next().await {
            send(Part::Data(chunk?)).await?;
        }
        drop(stream);
        files.push(json!({"name": file, "rows": rows, "format": "csv"}));
    }
    tx.commit().await?;
    let manifest = json!({
        "format": "mino-organization-export/1",
        "organization_id": org_id,
        "exported_at": chrono::Utc::now(),
        "snapshot": "every file was read in one repeatable-read transaction",
        "left_out": "webhook secrets, model provider API keys, API key hashes, sessions",
        "files": files,
    });
    send(Part::File("manifest.json".into())).await?;
    send(Part::Data(Bytes::from(serde_json::to_vec_pretty(
        &manifest,
    )?)))
    .await?;
    Ok(())
}

/// Runs on a blocking thread: compresses parts into a streaming zip whose
/// bytes go to `out` in chunks of about 64 KB.
fn write_zip(
    mut parts: mpsc::Receiver<Part>,
    out: mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new_stream(ChannelWriter {
        out,
        buf: Vec::with_capacity(CHUNK),
    });
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    while let Some(part) = parts.blocking_recv() {
        match part {
            Part::File(name) => zip
                .start_file(name, options)
                .map_err(std::io::Error::other)?,
            Part::Data(bytes) => zip.write_all(&bytes)?,
        }
    }
    let mut inner = zip.finish().map_err(std::io::Error::other)?.into_inner();
    inner.flush()
}

const CHUNK: usize = 64 * 1024;

struct ChannelWriter {
    out: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.out
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the download was abandoned"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
