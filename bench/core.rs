//! `mino bench`: prints the cost of the security primitives on this
//! machine, against a baseline measured in the same run, so the figures in
//! BENCHMARKS.md can be reproduced rather than trusted.

use std::time::{Duration, Instant};

use mino::server::auth::{password, secret};

fn stats(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    (ms(samples[0]), mean, ms(samples[samples.len() - 1]))
}

pub async fn run(rounds: usize) -> anyhow::Result<()> {
    println!(
        "Argon2id m={} KiB, t={}, p={}; {rounds} rounds each",
        password::MEMORY_KIB,
        password::ITERATIONS,
        password::PARALLELISM
    );

    // Baseline: the SHA-256 that authenticates every API-key request.
    let key = secret::new_api_key().0;
    let start = Instant::now();
    let n = 100_000;
    for _ in 0..n {
        std::hint::black_box(secret::sha256_hex(std::hint::black_box(&key)));
    }
    let sha_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("baseline  sha256(api key)        {sha_us:>9.2} µs");

    let mut hashes = Vec::new();
    let mut stored = String::new();
    for _ in 0..rounds {
        let pw = password::Password::parse("correct horse battery".into(), "password")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        stored = password::hash(pw).await?;
        hashes.push(t.elapsed());
    }
    let (min, mean, max) = stats(hashes);
    println!("argon2id  hash                   {mean:>9.2} ms  (min {min:.2}, max {max:.2})");

    let mut right = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        password::verify("correct horse battery".into(), Some(stored.clone())).await?;
        right.push(t.elapsed());
        let t = Instant::now();
        password::verify("correct horse battery".into(), None).await?;
        unknown.push(t.elapsed());
    }
    let (_, right_mean, _) = stats(right);
    let (_, unknown_mean, _) = stats(unknown);
    println!("argon2id  verify (known email)   {right_mean:>9.2} ms");
    println!("argon2id  verify (unknown email) {unknown_mean:>9.2} ms  (dummy hash; same work)");
    println!(
        "ratio     hash / sha256          {:>9.0}×",
        mean * 1000.0 / sha_us
    );
    Ok(())
}

/// `mino bench-ingest [rows]`: generates a CSV (URL, 3 inputs, 3 `gt_`
/// columns), loads it through the upload code path (parse, check, COPY into
/// `batch_rows`, one transaction), then loads the same file with
/// Postgres's own `COPY … (FORMAT csv)` into a plain table as the baseline,
/// and prints both rates, their ratio and this process's peak memory. Runs
/// in a scratch database that it drops afterwards.
pub async fn ingest(server: sqlx::postgres::PgConnectOptions, rows: u64) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    use std::io::Write;

    use mino::model::Role;
    use mino::server::auth::rbac::OrgCtx;
    use mino::server::service::batches::{self, Chunk, UploadMeta};

    let dir = std::env::temp_dir().join(format!("mino-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sites.csv");
    let t = Instant::now();
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "url,name,category,sku,gt_price,gt_title,gt_in_stock")?;
        for i in 0..rows {
            writeln!(
                w,
                "https://shop{}.example.com/products/{i},\"Product {i}, deluxe\",{},SKU-{i:08},{}.{:02},Product {i},{}",
                i % 97,
                ["lamps", "chairs", "desks", "rugs"][(i % 4) as usize],
                (i * 7) % 1000,
                i % 100,
                if i % 3 == 0 { "yes" } else { "no" },
            )?;
        }
    }
    let size = std::fs::metadata(&path)?.len();
    println!(
        "generated {rows} rows, {:.1} MB in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let scratch = format!("mino_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&server).await?;
    admin
        .execute(format!("create database {scratch}").as_str())
        .await?;
    let result = async {
        let db = mino::server::startup::connect(server.clone().database(&scratch)).await?;
        mino::server::startup::migrate(&db).await?;
        let user: uuid::Uuid = sqlx::query_scalar(
            "insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id",
        )
        .fetch_one(&db)
        .await?;
        let org: uuid::Uuid = sqlx::query_scalar(
            "insert into organizations (name, slug) values ('Bench', 'bench') returning id",
        )
        .fetch_one(&db)
        .await?;
        let project: uuid::Uuid = sqlx::query_scalar(
            "insert into projects (org_id, name) values ($1, 'Bench') returning id",
        )
        .bind(org)
        .fetch_one(&db)
        .await?;
        let rss_before = crate::common::peak_rss_kib();

        // Mino: the upload path, fed 64 KiB pieces as a request body is.
        let ctx = OrgCtx::member(org, user, Role::Owner);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let t = Instant::now();
        let task = tokio::spawn(batches::ingest(
            db.clone(),
            ctx,
            project,
            UploadMeta {
                name: Some("Bench".into()),
                ..Default::default()
            },
            rx,
        ));
        let mut file = tokio::fs::File::open(&path).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            use tokio::io::AsyncReadExt;
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            tx.send(Chunk::Data(axum::body::Bytes::copy_from_slice(&buf[..n])))
                .await
                .map_err(|_| anyhow::anyhow!("the ingest stopped early"))?;
        }
        tx.send(Chunk::End { name: None }).await.ok();
        let batch = task.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mino_secs = t.elapsed().as_secs_f64();
        let rss_peak = crate::common::peak_rss_kib();
        anyhow::ensure!(batch.row_count as u64 == rows, "stored {} rows", batch.row_count);

        // Baseline: Postgres parsing the same CSV itself.
        db.execute(
            "create table raw_copy (url text, name text, category text, sku text,
                                   gt_price text, gt_title text, gt_in_stock text)",
        )
        .await?;
        let t = Instant::now();
        let mut conn = db.acquire().await?;
        let mut copy = conn
            .copy_in_raw("copy raw_copy from stdin with (format csv, header true)")
            .await?;
        let mut file = tokio::fs::File::open(&path).await?;
        loop {
            use tokio::io::AsyncReadExt;
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            copy.send(&buf[..n]).await?;
        }
        let copied = copy.finish().await?;
        let raw_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(copied == rows, "raw COPY stored {copied} rows");
        drop(conn);
        db.close().await;

        let mino_rate = rows as f64 / mino_secs;
        let raw_rate = rows as f64 / raw_secs;
        println!("mino upload path   {mino_secs:>7.2} s  {mino_rate:>10.0} rows/s  (parse, check, json rows, primary key, one transaction)");
        println!("raw COPY (csv)     {raw_secs:>7.2} s  {raw_rate:>10.0} rows/s  (plain text table, no index)");
        println!("ratio              {:>7.2}  (mino / raw COPY; target ≥ 0.50)", mino_rate / raw_rate);
        println!(
            "peak memory        {:>7.1} MB  (process peak RSS; {:.1} MB before the upload; target < 300 MB)",
            rss_peak as f64 / 1024.0,
            rss_before as f64 / 1024.0
        );
        anyhow::Ok(())
    }
    .await;
    admin
        .execute(format!("drop database if exists {scratch} with (force)").as_str())
        .await?;
    std::fs::remove_dir_all(&dir).ok();
    result
}

/// `mino bench-run [jobs]`: a production execution of `jobs` rows against
/// the demo shop (served by this process on a free port) at concurrency
/// 50 — first with this process's workers, then with 3 `mino worker`
/// processes — and, as the baseline in the same run, a plain reqwest loop
/// fetching the same URLs at the same concurrency. Retries are off so both
/// do one request per row. Prints jobs/s, the ratio, the most database
/// connections seen, and peak memory.
pub async fn run_jobs(server: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use sqlx::{Connection, Executor};

    use mino::model::Role;
    use mino::server::auth::rbac::OrgCtx;
    use mino::server::service::{batches, executions};

    const CONCURRENCY: usize = 50;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shop: axum::Router = axum::Router::new().nest("/demo", mino::server::demo::router());
    tokio::spawn(async move { axum::serve(listener, shop).await });
    let base = format!("http://{addr}/demo");
    let urls: Vec<String> = (1..=jobs).map(|n| format!("{base}/products/{n}")).collect();

    // Baseline: plain fetches, CONCURRENCY at a time.
    let client = reqwest::Client::new();
    let t = Instant::now();
    let fetched = futures_util::stream::iter(urls.iter().cloned())
        .map(|u| {
            let c = client.clone();
            async move {
                match c.get(&u).send().await {
                    Ok(r) => r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let plain_secs = t.elapsed().as_secs_f64();
    let plain_rate = jobs as f64 / plain_secs;
    println!("plain reqwest loop     {plain_secs:>7.2} s  {plain_rate:>8.1} jobs/s  ({fetched} answered 2xx; concurrency {CONCURRENCY})");

    let scratch = format!("mino_bench_run_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&server).await?;
    admin
        .execute(format!("create database {scratch}").as_str())
        .await?;
    let scratch_options = server.clone().database(&scratch);
    let result = async {
        let db = mino::server::startup::connect(scratch_options.clone()).await?;
        mino::server::startup::migrate(&db).await?;
        let user: uuid::Uuid = sqlx::query_scalar("insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id").fetch_one(&db).await?;
        let org: uuid::Uuid = sqlx::query_scalar("insert into organizations (name, slug, max_executions_per_month) values ('Bench', 'bench', 1000) returning id").fetch_one(&db).await?;
        sqlx::query("insert into memberships (org_id, user_id, role) values ($1, $2, 'owner')").bind(org).bind(user).execute(&db).await?;
        let ctx = OrgCtx::member(org, user, Role::Owner);
        let project = mino::server::service::projects::create(&db, &ctx, "Bench", "", "").await?;
        let csv = mino::server::demo::sites_csv_text(&base, jobs);
        let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv).await.map_err(|e| anyhow::anyhow!("{e}"))?;

        // The CPU work Mino does per page and the plain loop doesn't:
        // parsing the page and finding each field (one core).
        let fields = mino::server::db::projects::fetch_fields(&db, org, project.id).await?;
        let pages: Vec<String> = (1..=1000u32)
            .map(|n| mino::server::demo::pages_html(&mino::server::demo::product(n)))
            .collect();
        let t = Instant::now();
        for html in &pages {
            let page = mino::server::agents::extract::Page::parse(html);
            for f in &fields {
                std::hint::black_box(page.extract(f));
            }
        }
        let per_page = t.elapsed().as_secs_f64() * 1e6 / pages.len() as f64;
        println!(
            "extraction alone       {per_page:>7.0} µs per page ({} fields; {:.0} pages/s on one core)",
            fields.len(),
            1e6 / per_page
        );

        let run = |label: &'static str| {
            let (db, ctx) = (db.clone(), ctx.clone());
            async move {
                let req = executions::StartRequest {
                    mode: "production".into(),
                    concurrency: Some(CONCURRENCY as i32),
                    max_retries: Some(0),
                    ..Default::default()
                };
                let t = Instant::now();
                let e = executions::start(&db, ctx.actor(), batch.id, req).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut peak_conns = 0i64;
                loop {
                    let conns: i64 = sqlx::query_scalar("select count(*) from pg_stat_activity where datname = current_database()").fetch_one(&db).await?;
                    peak_conns = peak_conns.max(conns);
                    let state: String = sqlx::query_scalar("select state from executions where id = $1").bind(e.id).fetch_one(&db).await?;
                    if state == "completed" {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let secs = t.elapsed().as_secs_f64();
                let counts = mino::server::db::jobs::counts(&db, e.id).await?;
                let rate = jobs as f64 / secs;
                println!(
                    "{label:<22} {secs:>7.2} s  {rate:>8.1} jobs/s  (ratio {:.2}; succeeded {}, failed {}; up to {peak_conns} database connections)",
                    rate / plain_rate,
                    counts.get("succeeded").copied().unwrap_or(0),
                    counts.get("failed").copied().unwrap_or(0),
                );
                anyhow::Ok(())
            }
        };

        // One process: this one's workers.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let hub = mino::server::live::Hub::start(db.clone(), stopped.clone());
        let workers = mino::server::executor::spawn(
            db.clone(),
            mino::server::executor::Settings {
                slots: CONCURRENCY,
                allow_private_targets: true,
                demo_origin: None,
                worker_id: "bench".into(),
                lease: mino::server::executor::LEASE,
            },
            hub,
            stopped,
        );
        run("mino, 1 process").await?;
        let [claims, claimed, empty, writes, written, claim_us, write_us] =
            mino::server::executor::stats::snapshot();
        println!(
            "  {claims} claims took {claimed} jobs ({:.1} per claim, {:.2} ms per claim), {empty} claims found nothing; {writes} writes stored {written} results ({:.1} per write, {:.2} ms per write)",
            claimed as f64 / claims.max(1) as f64,
            claim_us as f64 / 1000.0 / (claims + empty).max(1) as f64,
            written as f64 / writes.max(1) as f64,
            write_us as f64 / 1000.0 / writes.max(1) as f64,
        );
        let _ = stop.send(true);
        let _ = workers.await;
        println!("peak memory (this process, shop and baseline included): {:.1} MB", crate::common::peak_rss_kib() as f64 / 1024.0);

        // Three `mino worker` processes sharing the database.
        let exe = crate::common::mino_exe()?;
        let url = mino::server::db::url_for(&scratch_options);
        let mut children = vec![];
        for _ in 0..3 {
            children.push(
                tokio::process::Command::new(&exe)
                    .arg("worker")
                    .env("DATABASE_URL", &url)
                    .env("MINO_WORKER_SLOTS", CONCURRENCY.to_string())
                    .env("MINO_ALLOW_PRIVATE_TARGETS", "1")
                    .env("RUST_LOG", "warn")
                    .kill_on_drop(true)
                    .spawn()?,
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let outcome = run("mino, 3 worker procs").await;
        for c in &children {
            if let Some(pid) = c.id() {
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| {
                    s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok())
                });
                if let Some(kib) = rss {
                    println!("  worker process {pid}: peak memory {:.1} MB", kib as f64 / 1024.0);
                }
            }
        }
        for mut c in children {
            let _ = c.kill().await;
        }
        db.close().await;
        outcome
    }
    .await;
    admin
        .execute(format!("drop database if exists {scratch} with (force)").as_str())
        .await?;
    result
}
