//! `mino bench-webhooks [deliveries]`: how fast the dispatcher empties a
//! backlog (default 20,000 deliveries queued at once, as a run with many
//! failed jobs queues `job.failed`), against a baseline in the same run:
//! a plain loop posting the same signed bodies to the same local receiver
//! with the same concurrency, without the queue. Prints deliveries/s for
//! each and their ratio. Everything talks to 127.0.0.1 only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;

use crate::results::in_scratch_database;

/// Requests the baseline keeps in flight: what the dispatcher claims at once.
const CONCURRENCY: usize = 16;

pub async fn run(server: sqlx::postgres::PgConnectOptions, deliveries: u32) -> anyhow::Result<()> {
    in_scratch_database(server, "webhooks", |options| measure(options, deliveries)).await
}

async fn receiver() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let hits = counted.clone();
            async move {
                hits.fetch_add(1, Ordering::Relaxed);
                format!("ok {}", body.len())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/hook"), hits))
}

async fn measure(options: sqlx::postgres::PgConnectOptions, n: u32) -> anyhow::Result<()> {
    let db = mino::server::startup::connect(options).await?;
    mino::server::startup::migrate(&db).await?;
    let (url, hits) = receiver().await?;
    let org: uuid::Uuid = sqlx::query_scalar(
        "insert into organizations (name, slug) values ('Bench', 'bench') returning id",
    )
    .fetch_one(&db)
    .await?;
    let hook: uuid::Uuid = sqlx::query_scalar(
        "insert into webhooks (org_id, url, events, secret)
         values ($1, $2, array['job.failed'], 'whsec_bench_secret_0123456789') returning id",
    )
    .bind(org)
    .bind(&url)
    .fetch_one(&db)
    .await?;

    // Baseline: the same kind of body, signed, posted with the same
    // concurrency by a plain client.
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&serde_json::json!({
        "id": uuid::Uuid::new_v4(), "type": "webhook.test", "created_at": chrono::Utc::now(),
        "organization": {"id": org, "slug": "bench", "name": "Bench"},
        "data": {"webhook_id": hook, "message": "A test event from Mino: this webhook is reachable and its signature can be checked."},
    }))?;
    let t = Instant::now();
    futures_util::stream::iter(0..n)
        .map(|_| {
            let (client, url, body) = (&client, &url, body.clone());
            async move {
                let sig = mino::server::webhooks::signature(
                    "whsec_bench_secret_0123456789",
                    chrono::Utc::now().timestamp(),
                    &body,
                );
                let r = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("Mino-Signature", sig)
                    .body(body)
                    .send()
                    .await;
                if let Ok(r) = r {
                    let _ = r.bytes().await;
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let base_secs = t.elapsed().as_secs_f64();
    let base_rate = n as f64 / base_secs;
    println!(
        "baseline: {n} signed POSTs, {CONCURRENCY} at a time: {base_secs:.2} s, {base_rate:.0}/s"
    );

    // Mino: queue the backlog in one statement, then let a dispatcher
    // empty it (claim, build the body, sign, send, record each attempt).
    hits.store(0, Ordering::Relaxed);
    sqlx::query(
        "insert into webhook_deliveries (webhook_id, org_id, event, event_id, resource_id)
         select $1, $2, 'webhook.test', gen_random_uuid(), $1::text from generate_series(1, $3)",
    )
    .bind(hook)
    .bind(org)
    .bind(n as i64)
    .execute(&db)
    .await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let dispatcher = mino::server::webhooks::spawn(
        db.clone(),
        mino::server::webhooks::Settings::new(true, Duration::from_secs(30)),
        mino::server::live::Hub::detached(),
        stopped,
    );
    loop {
        let left: i64 = sqlx::query_scalar(
            "select count(*) from webhook_deliveries where state in ('pending', 'delivering')",
        )
        .fetch_one(&db)
        .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(1800),
            "{left} deliveries still pending after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = dispatcher.await;
    let (ok, attempts): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where state = 'succeeded'), (select count(*) from webhook_attempts)
         from webhook_deliveries",
    )
    .fetch_one(&db)
    .await?;
    let rate = n as f64 / secs;
    println!(
        "mino dispatcher: {n} queued deliveries sent in {secs:.2} s, {rate:.0}/s ({ok} succeeded, {attempts} attempts logged, receiver saw {})",
        hits.load(Ordering::Relaxed)
    );
    println!("ratio to baseline: {:.2}", rate / base_rate);
    db.close().await;
    Ok(())
}
