//! `mino-bench browser [PAGES]`: the browser source against a plain loop
//! with the same CDP crate and the same Chromium, and the snapshot source
//! against the http source.
//!
//! 1. PAGES demo pages (default 500; every fifth one written by script
//!    after a delay) through Mino's browser source — a real execution run
//!    by this process's workers: a fresh context per job, request
//!    policing, the network-quiet wait, extraction, a screenshot stored in
//!    Postgres, results written — at concurrency 4 and 8.
//! 2. In the same run, the plain loop: the same pages, a fresh context
//!    each, navigate, wait for the same quiet (500 ms without a request),
//!    read the DOM; nothing else.
//! 3. What a screenshot costs: 20 in a row of one rendered page.
//! 4. 10,000 demo pages through the http source keeping their pages, then
//!    re-read by the snapshot source.
//!
//! Memory: this process's peak (Mino's workers run in it) and the peak of
//! the summed resident memory of its Chromium processes, sampled every
//! 200 ms.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent,
};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::page::ScreenshotParams;
use futures_util::StreamExt;
use sqlx::{Connection, Executor};

use mino::model::{AgentKind, AgentSettings};
use mino::server::agents::sources::browser;
use mino::server::demo::{behaviour, Behaviour};
use mino::server::service::{batches, executions, projects};

const QUIET: Duration = Duration::from_millis(500);
const SNAPSHOT_PAGES: u32 = 10_000;

pub async fn run(server: sqlx::postgres::PgConnectOptions, pages: u32) -> anyhow::Result<()> {
    if let Some(why) = browser::unavailable() {
        anyhow::bail!(why);
    }
    let scratch = format!("mino_bench_browser_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&server).await?;
    admin
        .execute(format!("create database {scratch}").as_str())
        .await?;
    let result = measure(server.clone().database(&scratch), pages).await;
    admin
        .execute(format!("drop database if exists {scratch} with (force)").as_str())
        .await?;
    result
}

/// Resident memory (KiB) of this process's Chromium descendants, summed.
fn chromium_rss_kib() -> u64 {
    let me = std::process::id();
    let mut parent = HashMap::new();
    let mut rss = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let is_chromium = status
            .lines()
            .next()
            .is_some_and(|l| l.to_ascii_lowercase().contains("chrom"));
        if let Some(ppid) = field("PPid:") {
            parent.insert(pid, ppid as u32);
        }
        if is_chromium {
            rss.insert(pid, field("VmRSS:").unwrap_or(0));
        }
    }
    let descends = |mut pid: u32| {
        for _ in 0..64 {
            match parent.get(&pid) {
                Some(&p) if p == me => return true,
                Some(&p) if p > 1 => pid = p,
                _ => return false,
            }
        }
        false
    };
    rss.iter()
        .filter(|(pid, _)| descends(**pid))
        .map(|(_, kib)| kib)
        .sum()
}

/// Samples [`chromium_rss_kib`] until dropped; `peak()` is the highest.
struct MemorySampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl MemorySampler {
    fn start() -> MemorySampler {
        let peak = Arc::new(AtomicU64::new(0));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                let now = tokio::task::spawn_blocking(chromium_rss_kib)
                    .await
                    .unwrap_or(0);
                p.fetch_max(now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        MemorySampler { peak, task }
    }
    fn peak_mb(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for MemorySampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn launch(
    profile: &std::path::Path,
) -> anyhow::Result<(Browser, tokio::task::JoinHandle<()>)> {
    let config = BrowserConfig::builder()
        .chrome_executable(browser::chromium_path())
        .no_sandbox()
        .user_data_dir(profile)
        .window_size(1280, 800)
        .args([
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .build()
        .map_err(|e| anyhow::anyhow!(e))?;
    let (browser, mut handler) = Browser::launch(config).await?;
    let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });
    Ok((browser, driver))
}

/// The plain loop's wait: until no request started or ended for [`QUIET`].
async fn quiet(page: &chromiumoxide::Page) -> anyhow::Result<()> {
    let last = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut sent = page.event_listener::<EventRequestWillBeSent>().await?;
    let mut done = page.event_listener::<EventLoadingFinished>().await?;
    let mut failed = page.event_listener::<EventLoadingFailed>().await?;
    loop {
        let since = last.lock().expect("last").elapsed();
        if since >= QUIET {
            return Ok(());
        }
        tokio::select! {
            Some(_) = sent.next() => *last.lock().expect("last") = Instant::now(),
            Some(_) = done.next() => *last.lock().expect("last") = Instant::now(),
            Some(_) = failed.next() => *last.lock().expect("last") = Instant::now(),
            _ = tokio::time::sleep(QUIET - since) => {}
        }
    }
}

/// The baseline: `urls` through a plain CDP loop at `concurrency`; pages/s.
async fn plain_loop(urls: &[String], concurrency: usize) -> anyhow::Result<(f64, f64, usize)> {
    let profile = std::env::temp_dir().join(format!("mino-bench-plain-{}", uuid::Uuid::new_v4()));
    let memory = MemorySampler::start();
    let (browser, driver) = launch(&profile).await?;
    let browser = Arc::new(browser);
    let next = Arc::new(AtomicUsize::new(0));
    let urls = Arc::new(urls.to_vec());
    let t = Instant::now();
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let (browser, next, urls) = (browser.clone(), next.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let mut read = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(url) = urls.get(i) else { break };
                let one = async {
                    let context = browser
                        .create_browser_context(CreateBrowserContextParams::default())
                        .await?;
                    let page = browser
                        .new_page(
                            CreateTargetParams::builder()
                                .url("about:blank")
                                .browser_context_id(context.clone())
                                .build()
                                .map_err(|e| anyhow::anyhow!(e))?,
                        )
                        .await?;
                    let waiting = quiet(&page);
                    page.goto(url.as_str()).await?;
                    waiting.await?;
                    let html = page.content().await?;
                    browser.dispose_browser_context(context).await?;
                    anyhow::Ok(html.len())
                };
                if one.await.is_ok() {
                    read += 1;
                }
            }
            read
        }));
    }
    let mut read = 0;
    for task in tasks {
        read += task.await.unwrap_or(0);
    }
    let secs = t.elapsed().as_secs_f64();
    let peak = memory.peak_mb();
    drop(browser);
    driver.abort();
    let _ = std::fs::remove_dir_all(&profile);
    Ok((urls.len() as f64 / secs, peak, read))
}

/// Waits for an execution to complete; its wall time.
pub(crate) async fn finish(
    db: &sqlx::PgPool,
    id: uuid::Uuid,
    started: Instant,
) -> anyhow::Result<f64> {
    loop {
        let state: String = sqlx::query_scalar("select state from executions where id = $1")
            .bind(id)
            .fetch_one(db)
            .await?;
        if state == "completed" {
            return Ok(started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// In-process workers with `slots` slots, named `worker`.
pub(crate) fn workers(
    db: &sqlx::PgPool,
    slots: usize,
    worker: &str,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let hub = mino::server::live::Hub::start(db.clone(), stopped.clone());
    let handle = mino::server::executor::spawn(
        db.clone(),
        mino::server::executor::Settings {
            slots,
            allow_private_targets: true,
            demo_origin: None,
            worker_id: worker.into(),
            lease: mino::server::executor::LEASE,
        },
        hub,
        stopped,
    );
    (stop, handle)
}

async fn measure(options: sqlx::postgres::PgConnectOptions, pages: u32) -> anyhow::Result<()> {
    let db = mino::server::startup::connect(options.clone()).await?;
    mino::server::startup::migrate(&db).await?;

    // The demo shop, served by this process.
    let shop: axum::Router = axum::Router::new().nest("/demo", mino::server::demo::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, shop).await });
    let base = format!("http://{addr}/demo");
    // Well-behaved products only (no 404s, 5xx or slow ones), every fifth
    // written by script.
    let urls: Vec<String> = (1..)
        .filter(|n| behaviour(*n) == Behaviour::Normal)
        .take(pages as usize)
        .map(|n| {
            if n % 5 == 0 {
                format!("{base}/rendered/{n}")
            } else {
                format!("{base}/products/{n}")
            }
        })
        .collect();

    let user: uuid::Uuid = sqlx::query_scalar("insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id").fetch_one(&db).await?;
    let (ctx, _) = crate::common::bench_org(&db, user).await?;
    let err = |e: mino::error::AppError| anyhow::anyhow!("{e}");
    let project = projects::create(&db, &ctx, "Bench browser", "", "")
        .await
        .map_err(err)?;
    let settings = AgentSettings {
        kind: AgentKind::Browser,
        ..project.agent.clone()
    };
    projects::update_agent(&db, ctx.actor(), project.id, settings, None)
        .await
        .map_err(err)?;
    let mut csv = String::from("url\n");
    for u in &urls {
        csv.push_str(u);
        csv.push('\n');
    }
    let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv)
        .await
        .map_err(err)?;
    println!(
        "{} demo pages ({} written by script), Chromium {}",
        urls.len(),
        urls.iter().filter(|u| u.contains("/rendered/")).count(),
        browser::chromium_path().display()
    );

    for concurrency in [4usize, 8] {
        let (plain_rate, plain_mb, read) = plain_loop(&urls, concurrency).await?;
        println!(
            "concurrency {concurrency}: plain CDP loop   {plain_rate:>6.1} pages/s  ({read} read; Chromium peak {plain_mb:.0} MB)"
        );
        // Mino's browser source: an execution, run by this process's workers,
        // with as many browser slots as the concurrency.
        std::env::set_var("MINO_BROWSER_SLOTS", concurrency.to_string());
        let (stop, handle) = workers(&db, concurrency, &format!("bench-browser-{concurrency}"));
        let memory = MemorySampler::start();
        let started = Instant::now();
        let e = executions::start(
            &db,
            ctx.actor(),
            batch.id,
            executions::StartRequest {
                mode: "production".into(),
                concurrency: Some(concurrency as i32),
                max_retries: Some(0),
                ..Default::default()
            },
        )
        .await
        .map_err(err)?;
        let secs = finish(&db, e.id, started).await?;
        let counts = mino::server::db::jobs::counts(&db, e.id).await?;
        let (shots, shot_bytes): (i64, Option<f64>) = sqlx::query_as(
            "select count(*), avg(length(s.jpeg))::float8 from attempt_screenshots s
             join jobs j on j.id = s.job_id where j.execution_id = $1",
        )
        .bind(e.id)
        .fetch_one(&db)
        .await?;
        let rate = urls.len() as f64 / secs;
        println!(
            "concurrency {concurrency}: Mino browser source {rate:>6.1} pages/s  (ratio {:.2}; succeeded {}, failed {}; {shots} screenshots of {:.0} KB on average; Chromium peak {:.0} MB)",
            rate / plain_rate,
            counts.get("succeeded").copied().unwrap_or(0),
            counts.get("failed").copied().unwrap_or(0),
            shot_bytes.unwrap_or(0.0) / 1024.0,
            memory.peak_mb(),
        );
        drop(memory);
        let _ = stop.send(true);
        let _ = handle.await;
    }
    println!(
        "peak memory of this process (Mino's workers, the shop and the plain loop's driver): {:.0} MB",
        crate::common::peak_rss_kib() as f64 / 1024.0
    );

    // One screenshot, as every browser attempt takes at its end.
    let profile = std::env::temp_dir().join(format!("mino-bench-shot-{}", uuid::Uuid::new_v4()));
    let (chromium, driver) = launch(&profile).await?;
    let page = chromium.new_page(urls[0].as_str()).await?;
    page.wait_for_navigation().await?;
    let mut took = Duration::ZERO;
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let jpeg = page
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Jpeg)
                    .quality(70)
                    .build(),
            )
            .await?;
        took += t.elapsed();
        bytes += jpeg.len();
    }
    println!(
        "a 1280×800 JPEG screenshot: {:.1} ms, {:.0} KB (mean of 20)",
        took.as_secs_f64() * 1000.0 / 20.0,
        bytes as f64 / 20.0 / 1024.0
    );
    drop(page);
    drop(chromium);
    driver.abort();
    let _ = std::fs::remove_dir_all(&profile);

    // The snapshot source against the http source over the same pages.
    let project = projects::create(&db, &ctx, "Bench snapshot", "", "")
        .await
        .map_err(err)?;
    let settings = AgentSettings {
        keep_pages: true,
        ..project.agent.clone()
    };
    projects::update_agent(&db, ctx.actor(), project.id, settings, None)
        .await
        .map_err(err)?;
    let csv = mino::server::demo::sites_csv_text(&base, SNAPSHOT_PAGES);
    let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv)
        .await
        .map_err(err)?;
    let (stop, handle) = workers(&db, 50, "bench-snapshot");
    let mut http_rate = 0.0;
    let mut from = None;
    for agent in ["http", "snapshot"] {
        let started = Instant::now();
        let e = executions::start(
            &db,
            ctx.actor(),
            batch.id,
            executions::StartRequest {
                mode: "production".into(),
                agent: Some(agent.into()),
                from_execution: from,
                concurrency: Some(50),
                max_retries: Some(0),
                ..Default::default()
            },
        )
        .await
        .map_err(err)?;
        let secs = finish(&db, e.id, started).await?;
        let counts = mino::server::db::jobs::counts(&db, e.id).await?;
        let rate = e.total as f64 / secs;
        if agent == "http" {
            http_rate = rate;
            from = Some(e.id);
            let (kept, mb): (i64, Option<f64>) = sqlx::query_as(
                "select count(*), sum(length(html_gz))::float8 / 1048576 from attempt_pages",
            )
            .fetch_one(&db)
            .await?;
            println!(
                "http source, keeping pages  {rate:>8.1} pages/s  ({} jobs, succeeded {}, failed {}; {kept} pages kept, {:.1} MB compressed)",
                e.total,
                counts.get("succeeded").copied().unwrap_or(0),
                counts.get("failed").copied().unwrap_or(0),
                mb.unwrap_or(0.0)
            );
        } else {
            println!(
                "snapshot source             {rate:>8.1} pages/s  ({} jobs, succeeded {}; ratio to http {:.2})",
                e.total,
                counts.get("succeeded").copied().unwrap_or(0),
                rate / http_rate
            );
        }
    }
    let _ = stop.send(true);
    let _ = handle.await;
    db.close().await;
    Ok(())
}
