//! `mino bench-live [subscribers]`: live-update delivery under load. A
//! `mino serve` child process (workers in-process, its demo shop as the
//! target) runs a 5,000-job execution with the remote demo agent; this
//! process opens `subscribers` SSE streams on it with an API key, then
//! changes the execution's concurrency 20 times, 500 ms apart, and
//! measures for every subscriber when it first sees each new value: the
//! latency from the change (timed from just before the committing call,
//! so slightly pessimistic) to receipt, how many changes a subscriber never
//! saw, and the server's peak memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};
use tokio::sync::watch;

use mino::server::service::{batches, executions};

const ROWS: u32 = 5_000;
const CHANGES: i32 = 20;
const GAP: Duration = Duration::from_millis(500);
const BASE_CONCURRENCY: i32 = 20;

pub async fn run(
    server: sqlx::postgres::PgConnectOptions,
    subscribers: usize,
) -> anyhow::Result<()> {
    let scratch = format!("mino_bench_live_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&server).await?;
    admin
        .execute(format!("create database {scratch}").as_str())
        .await?;
    let options = server.clone().database(&scratch);
    let result = measure(options, subscribers).await;
    admin
        .execute(format!("drop database if exists {scratch} with (force)").as_str())
        .await?;
    result
}

async fn measure(
    options: sqlx::postgres::PgConnectOptions,
    subscribers: usize,
) -> anyhow::Result<()> {
    let db = mino::server::startup::connect(options.clone()).await?;
    mino::server::startup::migrate(&db).await?;
    let (mut child, base) = crate::common::serve(&options, 50, true).await?;

    // An organization, a key, the demo batch, and the execution.
    let user: uuid::Uuid = sqlx::query_scalar("insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id").fetch_one(&db).await?;
    let (ctx, key) = crate::common::bench_org(&db, user).await?;
    let project = mino::server::service::projects::create(&db, &ctx, "Bench", "", "").await?;
    sqlx::query("update projects set remote_url = $2 where id = $1")
        .bind(project.id)
        .bind(format!("{base}/demo/agent"))
        .execute(&db)
        .await?;
    let csv = mino::server::demo::sites_csv_text(&format!("{base}/demo"), ROWS);
    let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let execution = executions::start(
        &db,
        ctx.actor(),
        batch.id,
        executions::StartRequest {
            mode: "production".into(),
            agent: Some("remote".into()),
            concurrency: Some(BASE_CONCURRENCY),
            max_retries: Some(0),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = format!("{base}/api/v1/executions/{}/events", execution.id);

    // The subscribers: each records when it first saw each concurrency.
    let (stop, stopped) = watch::channel(false);
    let connected = Arc::new(tokio::sync::Semaphore::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut tasks = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let (client, url, key, mut stopped, connected) = (
            client.clone(),
            url.clone(),
            key.clone(),
            stopped.clone(),
            connected.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut seen: Vec<(i64, Instant)> = Vec::new();
            let mut events = 0u64;
            let Ok(mut res) = client.get(&url).bearer_auth(&key).send().await else {
                connected.add_permits(1);
                return (seen, events, false);
            };
            let mut first = true;
            let mut buf = Vec::<u8>::new();
            loop {
                let chunk = tokio::select! {
                    c = res.chunk() => c,
                    _ = stopped.changed() => break,
                };
                let Ok(Some(chunk)) = chunk else { break };
                let now = Instant::now();
                buf.extend_from_slice(&chunk);
                while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = buf.drain(..end + 2).collect();
                    let text = String::from_utf8_lossy(&block);
                    // Only the number is needed: no full parse per event.
                    if let Some(at) = text.find("\"concurrency\":") {
                        let digits: String = text[at + 14..]
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .collect();
                        if let Ok(c) = digits.parse::<i64>() {
                            events += 1;
                            if seen.last().map(|(v, _)| *v) != Some(c) {
                                seen.push((c, now));
                            }
                            if first {
                                first = false;
                                connected.add_permits(1);
                            }
                        }
                    }
                }
            }
            if first {
                connected.add_permits(1);
            }
            (seen, events, !first)
        }));
    }
    let t = Instant::now();
    let _all = connected.acquire_many(subscribers as u32).await?;
    let connect_secs = t.elapsed().as_secs_f64();

    // The changes.
    let mut changed_at = Vec::new();
    let window = Instant::now();
    for k in 1..=CHANGES {
        let value = BASE_CONCURRENCY + k;
        let before = Instant::now();
        executions::set_concurrency(&db, ctx.actor(), execution.id, value)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        changed_at.push((value as i64, before));
        tokio::time::sleep(GAP).await;
    }
    let window_secs = window.elapsed().as_secs_f64();
    let server_peak_kib = child
        .id()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let _ = stop.send(true);
    let mut latencies = Vec::new();
    let mut missed = 0usize;
    let mut events = 0u64;
    let mut failed = 0usize;
    for task in tasks {
        let (seen, n, ok) = task.await?;
        events += n;
        if !ok {
            failed += 1;
            continue;
        }
        for (value, at) in &changed_at {
            match seen.iter().find(|(v, _)| v == value) {
                Some((_, got)) => latencies.push(got.saturating_duration_since(*at)),
                None => missed += 1,
            }
        }
    }
    let _ = executions::control(
        &db,
        ctx.actor(),
        execution.id,
        mino::model::ControlAction::Stop,
    )
    .await;
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{subscribers} subscribers connected in {connect_secs:.2} s ({failed} failed); {CHANGES} concurrency changes {} ms apart while {ROWS} jobs run",
        GAP.as_millis()
    );
    println!(
        "change → receipt: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} deliveries; changes never seen: {missed}",
        ms(pick(0.5)),
        ms(pick(0.95)),
        ms(latencies.last().copied().unwrap_or_default()),
        latencies.len()
    );
    println!(
        "events delivered: {events} ({:.0}/s); server peak memory {:.1} MB",
        events as f64 / window_secs,
        server_peak_kib as f64 / 1024.0
    );
    let _ = child.kill().await;
    db.close().await;
    Ok(())
}
