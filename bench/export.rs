//! `mino bench-export [jobs]`: exports a finished execution of `jobs` jobs
//! (default 1,000,000) as CSV and as XLSX through `POST
//! /executions/{id}/export` of a fresh `mino serve` child each, and has
//! Postgres write the same query with `COPY (…) TO STDOUT` as the baseline.
//! Prints rows/s for each, CSV's ratio to COPY, and each child's peak
//! memory.

use std::time::Instant;

use futures_util::StreamExt;

use crate::results::{in_scratch_database, peak_mb, serve, Fixture};
use mino::server::service::{exports, ground_truth};

pub async fn run(server: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    in_scratch_database(server, "export", |options| measure(options, jobs)).await
}

async fn measure(options: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut f = Fixture::build(options.clone(), jobs).await?;
    let _ = f.child.kill().await;
    let mut tx = f.db.begin().await?;
    ground_truth::judge_again(&mut tx, &[f.execution.id], None).await?;
    tx.commit().await?;
    sqlx::query("analyze jobs").execute(&f.db).await?;
    sqlx::query("analyze batch_rows").execute(&f.db).await?;
    println!(
        "built and judged an execution of {jobs} jobs in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The query an export with the default columns runs (planning one
    // records it; it is not run here).
    let scratch = std::env::temp_dir().join(format!("mino-bench-export-{}", std::process::id()));
    let plan = exports::plan(
        &f.db,
        f.ctx.actor(),
        f.execution.id,
        exports::ExportRequest {
            format: "csv".into(),
            ..Default::default()
        },
        &scratch,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let columns = plan.export.columns.len();
    let mut conn = f.db.acquire().await?;
    let t = Instant::now();
    let mut copy = conn
        .copy_out_raw(&format!(
            "copy ({}) to stdout with (format csv, header)",
            plan.sql
        ))
        .await?;
    let mut copy_bytes = 0usize;
    while let Some(chunk) = copy.next().await {
        copy_bytes += chunk?.len();
    }
    drop(copy);
    drop(conn);
    let copy_secs = t.elapsed().as_secs_f64();
    let copy_rate = jobs as f64 / copy_secs;
    println!(
        "default columns ({columns}); COPY (SELECT …) TO STDOUT: {copy_secs:.2} s, {copy_rate:.0} rows/s, {:.1} MB",
        copy_bytes as f64 / 1e6
    );

    let mut csv_rate = 0.0;
    for format in ["csv", "xlsx"] {
        // A fresh server per format, so its peak memory is this export's.
        let (mut child, base) = serve(&options).await?;
        let idle = peak_mb(&child);
        let t = Instant::now();
        let r = f
            .http
            .post(format!(
                "{base}/api/v1/executions/{}/export",
                f.execution.id
            ))
            .bearer_auth(&f.key)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "format": format }).to_string())
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "{format} export answered {}",
            r.status()
        );
        let first = t.elapsed();
        let mut r = r;
        let mut bytes = 0usize;
        while let Some(chunk) = r.chunk().await? {
            bytes += chunk.len();
        }
        let secs = t.elapsed().as_secs_f64();
        let rate = jobs as f64 / secs;
        if format == "csv" {
            csv_rate = rate;
        }
        println!(
            "Mino {format:>4}: {secs:.2} s ({:.0} ms to the response head), {rate:.0} rows/s, {:.1} MB, \
             server peak memory {:.1} MB (idle {idle:.1} MB)",
            first.as_secs_f64() * 1000.0,
            bytes as f64 / 1e6,
            peak_mb(&child)
        );
        let _ = child.kill().await;
    }
    println!(
        "CSV rate / COPY rate = {:.2} (target ≥ 0.50); peak memory target < 200 MB",
        csv_rate / copy_rate
    );
    let _ = std::fs::remove_dir_all(&scratch);
    f.db.close().await;
    Ok(())
}
