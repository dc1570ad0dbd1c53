//! `mino-bench run` and `mino-bench scale`: the executor against the demo
//! shop, which runs as a process of its own on a core of its own (a real
//! site is elsewhere), with this process, its workers and the local
//! Postgres on the other cores. Baselines in the same run, on the same
//! cores: a plain fetch loop, and a loop doing the least any executor that
//! keeps its results must do (fetch, extract, store the values in Postgres
//! in batches) — the ceiling Mino's bookkeeping is measured against.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sqlx::{Executor, PgPool};

use mino::server::auth::rbac::OrgCtx;
use mino::server::service::{batches, executions};

use crate::machine::{self, Split};

/// What a measured side did: its rate and the CPU it cost.
struct Side {
    secs: f64,
    postgres: Duration,
    local: Duration,
    shop: Duration,
    workers: Duration,
}

impl Side {
    fn per_job(&self, jobs: u32) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / jobs as f64;
        format!(
            "CPU per job: Postgres {:.0} µs, executor {:.0} µs, shop {:.0} µs",
            us(self.postgres),
            us(self.local + self.workers),
            us(self.shop)
        )
    }
}

/// CPU readings taken before a side runs.
struct Meter {
    started: Instant,
    postgres: Duration,
    local: Duration,
    shop: Duration,
}

impl Meter {
    async fn start(db: &PgPool, shop: u32) -> Meter {
        Meter {
            started: Instant::now(),
            postgres: machine::postgres_cpu(db).await,
            local: machine::cpu_time(std::process::id()),
            shop: machine::cpu_time(shop),
        }
    }

    async fn stop(self, db: &PgPool, shop: u32, workers: Duration) -> Side {
        Side {
            secs: self.started.elapsed().as_secs_f64(),
            postgres: machine::postgres_cpu(db)
                .await
                .saturating_sub(self.postgres),
            local: machine::cpu_time(std::process::id()).saturating_sub(self.local),
            shop: machine::cpu_time(shop).saturating_sub(self.shop),
            workers,
        }
    }
}

/// The scratch organization, project and batch of `jobs` shop rows.
struct Fixture {
    db: PgPool,
    ctx: OrgCtx,
    batch: uuid::Uuid,
    project: uuid::Uuid,
    urls: Vec<String>,
}

async fn fixture(
    options: &sqlx::postgres::PgConnectOptions,
    base: &str,
    jobs: u32,
) -> anyhow::Result<Fixture> {
    let db = mino::server::startup::connect(options.clone()).await?;
    mino::server::startup::migrate(&db).await?;
    let user: uuid::Uuid = sqlx::query_scalar(
        "insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id",
    )
    .fetch_one(&db)
    .await?;
    let (ctx, _key) = crate::common::bench_org(&db, user).await?;
    // Concurrency 200 (and `scale`'s 300) is above the plan's default cap.
    sqlx::query("update organizations set max_concurrency = 1000 where id = $1")
        .bind(ctx.org_id())
        .execute(&db)
        .await?;
    let project = mino::server::service::projects::create(&db, &ctx, "Bench", "", "").await?;
    let csv = mino::server::demo::sites_csv_text(base, jobs);
    let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let urls = (1..=jobs).map(|n| format!("{base}/products/{n}")).collect();
    Ok(Fixture {
        db,
        ctx,
        batch: batch.id,
        project: project.id,
        urls,
    })
}

/// The plain loop: fetch every URL, `concurrency` at a time.
async fn plain_loop(urls: &[String], concurrency: usize) -> usize {
    let client = reqwest::Client::new();
    futures_util::stream::iter(urls.iter().cloned())
        .map(|u| {
            let c = client.clone();
            async move {
                match c.get(&u).send().await {
                    Ok(r) => r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

/// The least an executor that keeps results does: fetch, extract the
/// fields, and store the values — one writer inserting whatever has piled
/// up, as Mino's does, into a table with no index.
async fn store_loop(f: &Fixture, concurrency: usize) -> anyhow::Result<u64> {
    f.db.execute("create table if not exists ceiling_results (n int, extracted json)")
        .await?;
    f.db.execute("truncate ceiling_results").await?;
    let fields = mino::server::db::projects::fetch_fields(&f.db, f.ctx.org_id(), f.project).await?;
    let fields = std::sync::Arc::new(fields);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(i32, String)>(1024);
    let db = f.db.clone();
    let writer = tokio::spawn(async move {
        let mut stored = 0u64;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let (ns, values): (Vec<i32>, Vec<String>) = batch.into_iter().unzip();
            sqlx::query(
                "insert into ceiling_results select * from unnest($1::int[], $2::text[]::json[])",
            )
            .bind(&ns)
            .bind(&values)
            .execute(&db)
            .await?;
            stored += ns.len() as u64;
        }
        anyhow::Ok(stored)
    });
    let client = reqwest::Client::new();
    futures_util::stream::iter(f.urls.iter().cloned().enumerate())
        .map(|(n, u)| {
            let (c, tx, fields) = (client.clone(), tx.clone(), fields.clone());
            async move {
                let Ok(r) = c.get(&u).send().await else {
                    return;
                };
                let Ok(body) = r.text().await else { return };
                let values = {
                    let page = mino::server::agents::extract::Page::parse(&body);
                    let mut values = serde_json::Map::new();
                    for field in fields.iter() {
                        values.insert(
                            field.name.clone(),
                            page.extract(field)
                                .map_or(serde_json::Value::Null, serde_json::Value::String),
                        );
                    }
                    serde_json::Value::Object(values).to_string()
                };
                let _ = tx.send((n as i32, values)).await;
            }
        })
        .buffer_unordered(concurrency)
        .collect::<()>()
        .await;
    drop(tx);
    writer.await?
}

/// Starts a production run of the fixture's batch and waits for it to end.
async fn mino_run(f: &Fixture, concurrency: usize) -> anyhow::Result<(uuid::Uuid, i64)> {
    let req = executions::StartRequest {
        mode: "production".into(),
        concurrency: Some(concurrency as i32),
        max_retries: Some(0),
        ..Default::default()
    };
    let e = executions::start(&f.db, f.ctx.actor(), f.batch, req)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut peak_conns = 0i64;
    loop {
        let conns: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database()",
        )
        .fetch_one(&f.db)
        .await?;
        peak_conns = peak_conns.max(conns);
        let state: String = sqlx::query_scalar("select state from executions where id = $1")
            .bind(e.id)
            .fetch_one(&f.db)
            .await?;
        if state == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((e.id, peak_conns))
}

/// Claim and write transactions of a run, from what they left behind:
/// a claim starts its attempts at one `now()`, a write finishes them at one.
async fn transactions(db: &PgPool, execution: uuid::Uuid) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "select count(distinct (a.worker, a.started_at)), count(distinct (a.worker, a.finished_at))
         from attempts a join jobs j on j.id = a.job_id where j.execution_id = $1",
    )
    .bind(execution)
    .fetch_one(db)
    .await?)
}

fn spawn_workers(
    options: &sqlx::postgres::PgConnectOptions,
    processes: usize,
    slots: usize,
) -> anyhow::Result<Vec<tokio::process::Child>> {
    let exe = crate::common::mino_exe()?;
    let url = mino::server::db::url_for(options);
    (0..processes)
        .map(|_| {
            Ok(tokio::process::Command::new(&exe)
                .arg("worker")
                .env("DATABASE_URL", &url)
                .env("MINO_WORKER_SLOTS", slots.to_string())
                .env("MINO_ALLOW_PRIVATE_TARGETS", "1")
                .env("RUST_LOG", "error")
                .kill_on_drop(true)
                .spawn()?)
        })
        .collect()
}

fn children_cpu(children: &[tokio::process::Child]) -> Duration {
    children
        .iter()
        .filter_map(|c| c.id())
        .map(machine::cpu_time)
        .sum()
}

/// Runs the batch with `processes` worker processes of `slots` slots (0:
/// this process's own executor) and prints the line.
#[allow(clippy::too_many_arguments)]
async fn measure_mino(
    f: &Fixture,
    options: &sqlx::postgres::PgConnectOptions,
    shop: u32,
    label: &str,
    processes: usize,
    concurrency: usize,
    jobs: u32,
    baseline: f64,
) -> anyhow::Result<Side> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut children = vec![];
    let mut local = None;
    if processes == 0 {
        let hub = mino::server::live::Hub::start(f.db.clone(), stopped.clone());
        local = Some(mino::server::executor::spawn(
            f.db.clone(),
            mino::server::executor::Settings {
                slots: concurrency,
                allow_private_targets: true,
                demo_origin: None,
                worker_id: "bench".into(),
                lease: mino::server::executor::LEASE,
            },
            hub,
            stopped,
        ));
    } else {
        children = spawn_workers(options, processes, concurrency)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let before = mino::server::executor::stats::snapshot();
    let workers_before = children_cpu(&children);
    let meter = Meter::start(&f.db, shop).await;
    let (execution, peak_conns) = mino_run(f, concurrency).await?;
    let side = meter
        .stop(
            &f.db,
            shop,
            children_cpu(&children).saturating_sub(workers_before),
        )
        .await;
    let after = mino::server::executor::stats::snapshot();
    let counts = mino::server::db::jobs::counts(&f.db, execution).await?;
    let rate = jobs as f64 / side.secs;
    println!(
        "  {label:<24} {rate:>8.1} jobs/s  ratio {:.2}  (succeeded {}, failed {}; up to {peak_conns} connections)",
        rate / baseline,
        counts.get("succeeded").copied().unwrap_or(0),
        counts.get("failed").copied().unwrap_or(0),
    );
    let (claims, writes) = transactions(&f.db, execution).await?;
    if processes == 0 {
        let d: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        println!(
            "      {} claims ({:.1} jobs each, {:.2} ms each), {} found nothing; {} writes ({:.1} results each, {:.2} ms each)",
            d[0],
            d[1] as f64 / d[0].max(1) as f64,
            d[5] as f64 / 1000.0 / (d[0] + d[2]).max(1) as f64,
            d[2],
            d[3],
            d[4] as f64 / d[3].max(1) as f64,
            d[6] as f64 / 1000.0 / d[3].max(1) as f64,
        );
    } else {
        println!(
            "      {claims} claims ({:.0}/s), {writes} writes ({:.0}/s); peak memory per worker {}",
            claims as f64 / side.secs,
            writes as f64 / side.secs,
            children
                .iter()
                .map(|c| format!("{:.1} MB", crate::common::peak_mb(c)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    println!("      {}", side.per_job(jobs));
    let _ = stop.send(true);
    if let Some(local) = local {
        let _ = local.await;
    }
    for mut c in children {
        let _ = c.kill().await;
    }
    Ok(side)
}

/// `mino-bench run [JOBS]`: at concurrency 10, 50 and 200, the plain loop,
/// the fetch-extract-store loop, Mino with this process's workers and Mino
/// with 3 `mino worker` processes, each over the same JOBS shop pages.
pub async fn run(server: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    crate::results::in_scratch_database(server, "run", |options| async move {
        let probe = mino::server::startup::connect(options.clone()).await?;
        let split = Split::new(&probe).await;
        probe.close().await;
        let (shop, base) = machine::start_shop(split.as_ref()).await?;
        let shop_pid = shop.id().unwrap_or(0);
        match &split {
            Some(s) => println!(
                "the shop runs on core {}; this process, its workers and Postgres on core(s) {}",
                s.shop_cpus, s.rest_cpus
            ),
            None => println!("one core: the shop shares it with everything else"),
        }
        let f = fixture(&options, &base, jobs).await?;
        extraction_cost(&f).await?;
        println!("{jobs} shop pages per run, retries off (one request per row on every side)");
        // MINO_BENCH_CONCURRENCY=50 (a comma list) measures fewer.
        let levels: Vec<usize> = std::env::var("MINO_BENCH_CONCURRENCY")
            .ok()
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .filter(|v: &Vec<usize>| !v.is_empty())
            .unwrap_or_else(|| vec![10, 50, 200]);
        for concurrency in levels {
            println!("concurrency {concurrency}:");
            let meter = Meter::start(&f.db, shop_pid).await;
            let fetched = plain_loop(&f.urls, concurrency).await;
            let plain = meter.stop(&f.db, shop_pid, Duration::ZERO).await;
            let plain_rate = jobs as f64 / plain.secs;
            println!(
                "  {:<24} {plain_rate:>8.1} jobs/s  ({fetched} answered 2xx)",
                "plain fetch loop"
            );
            println!("      {}", plain.per_job(jobs));

            let meter = Meter::start(&f.db, shop_pid).await;
            let stored = store_loop(&f, concurrency).await?;
            let ceiling = meter.stop(&f.db, shop_pid, Duration::ZERO).await;
            let ceiling_rate = jobs as f64 / ceiling.secs;
            println!(
                "  {:<24} {ceiling_rate:>8.1} jobs/s  ratio {:.2}  ({stored} stored)",
                "fetch+extract+store loop",
                ceiling_rate / plain_rate
            );
            println!("      {}", ceiling.per_job(jobs));

            measure_mino(
                &f,
                &options,
                shop_pid,
                "mino, 1 process",
                0,
                concurrency,
                jobs,
                plain_rate,
            )
            .await?;
            measure_mino(
                &f,
                &options,
                shop_pid,
                "mino, 3 worker procs",
                3,
                concurrency,
                jobs,
                plain_rate,
            )
            .await?;
        }
        println!(
            "peak memory (this process: workers and baselines): {:.1} MB",
            crate::common::peak_rss_kib() as f64 / 1024.0
        );
        f.db.close().await;
        drop(shop);
        drop(split);
        Ok(())
    })
    .await
}

/// The CPU Mino spends per page that the plain loop does not: parsing the
/// page and finding each field (one core).
async fn extraction_cost(f: &Fixture) -> anyhow::Result<()> {
    let fields = mino::server::db::projects::fetch_fields(&f.db, f.ctx.org_id(), f.project).await?;
    let pages: Vec<String> = (1..=1000u32)
        .map(|n| mino::server::demo::pages_html(&mino::server::demo::product(n)))
        .collect();
    let t = Instant::now();
    for html in &pages {
        let page = mino::server::agents::extract::Page::parse(html);
        for field in &fields {
            std::hint::black_box(page.extract(field));
        }
    }
    let per_page = t.elapsed().as_secs_f64() * 1e6 / pages.len() as f64;
    println!(
        "extraction alone {per_page:.0} µs per page ({} fields; {:.0} pages/s on one core)",
        fields.len(),
        1e6 / per_page
    );
    Ok(())
}

/// `mino-bench scale [JOBS]`: JOBS shop pages (default 100,000) run by 6
/// `mino worker` processes of 50 slots on one Postgres: jobs/s, claims and
/// writes per second, and the CPU each part used — what one Postgres can
/// feed.
pub async fn scale(server: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    const PROCESSES: usize = 6;
    const SLOTS: usize = 50;
    crate::results::in_scratch_database(server, "scale", |options| async move {
        let probe = mino::server::startup::connect(options.clone()).await?;
        let split = Split::new(&probe).await;
        probe.close().await;
        let (shop, base) = machine::start_shop(split.as_ref()).await?;
        let shop_pid = shop.id().unwrap_or(0);
        let f = fixture(&options, &base, jobs).await?;
        let children = spawn_workers(&options, PROCESSES, SLOTS)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let workers_before = children_cpu(&children);
        let meter = Meter::start(&f.db, shop_pid).await;
        let (execution, _) = mino_run(&f, PROCESSES * SLOTS).await?;
        let side = meter
            .stop(&f.db, shop_pid, children_cpu(&children).saturating_sub(workers_before))
            .await;
        let (claims, writes) = transactions(&f.db, execution).await?;
        let rate = jobs as f64 / side.secs;
        // The cores Postgres and the workers share: all but the shop's when
        // split (this process is pinned by then, so it can't ask the OS).
        let rest_cores = split.as_ref().map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |s| s.rest_core_count(),
        );
        let pg_share = side.postgres.as_secs_f64() / (side.secs * rest_cores as f64);
        let pg_us = side.postgres.as_secs_f64() * 1e6 / jobs as f64;
        let worker_us = side.workers.as_secs_f64() * 1e6 / jobs as f64;
        println!(
            "{PROCESSES} worker processes × {SLOTS} slots, one run of {jobs} jobs at concurrency {}; the shop on its own core",
            PROCESSES * SLOTS
        );
        println!("  {rate:.1} jobs/s over {:.1} s", side.secs);
        println!(
            "  {claims} claims ({:.0}/s, {:.1} jobs each), {writes} result writes ({:.0}/s, {:.1} results each)",
            claims as f64 / side.secs,
            jobs as f64 / claims.max(1) as f64,
            writes as f64 / side.secs,
            jobs as f64 / writes.max(1) as f64
        );
        println!(
            "  Postgres: {:.1} s of CPU = {:.0} % of the {rest_cores} core(s) it shares with the workers; {pg_us:.0} µs per job",
            side.postgres.as_secs_f64(),
            pg_share * 100.0
        );
        println!(
            "  workers: {:.1} s of CPU, {worker_us:.0} µs per job; shop {:.0} µs per job",
            side.workers.as_secs_f64(),
            side.shop.as_secs_f64() * 1e6 / jobs as f64
        );
        println!(
            "  so one Postgres core keeps up with about {:.0} jobs/s of this shape, which is {:.1} worker cores' work",
            1e6 / pg_us,
            worker_us / pg_us
        );
        for (i, c) in children.iter().enumerate() {
            println!("  worker {}: peak memory {:.1} MB", i + 1, crate::common::peak_mb(c));
        }
        drop(children);
        f.db.close().await;
        drop(shop);
        drop(split);
        Ok(())
    })
    .await
}
