//! `mino bench-results [jobs]`: the results views at scale. Builds a batch
//! and a finished execution of `jobs` jobs (every 7th with a wrong price,
//! so `partial`), judges them all, then — against a `mino serve` child,
//! with `clients` concurrent clients for `MINO_BENCH_SECS` seconds each —
//! measures the first page and a deep cursor page of the filtered job
//! list over REST and as the server-rendered page, with the same keyset
//! query run straight against Postgres as the baseline. Last, the time to
//! set 100,000 expected values in one bulk set and judge their jobs again.

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

use mino::server::auth::rbac::OrgCtx;
use mino::server::service::{batches, executions, ground_truth};

const CLIENTS: usize = 20;
const BULK_ROWS: usize = 100_000;

pub async fn run(server: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    in_scratch_database(server, "results", |options| measure(options, jobs)).await
}

/// Runs `bench` against a database made for it, dropped afterwards.
pub(crate) async fn in_scratch_database<F, Fut>(
    server: sqlx::postgres::PgConnectOptions,
    name: &str,
    bench: F,
) -> anyhow::Result<()>
where
    F: FnOnce(sqlx::postgres::PgConnectOptions) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let scratch = format!("mino_bench_{name}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&server).await?;
    admin
        .execute(format!("create database {scratch}").as_str())
        .await?;
    let options = server.clone().database(&scratch);
    let result = bench(options).await;
    admin
        .execute(format!("drop database if exists {scratch} with (force)").as_str())
        .await?;
    result
}

/// Latencies of `CLIENTS` loops over `call` for `secs` seconds.
pub(crate) async fn load<F, Fut>(secs: u64, call: F) -> anyhow::Result<Stats>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let (mut took, mut failed) = (Vec::new(), 0usize);
            while Instant::now() < end {
                let t = Instant::now();
                match call().await {
                    Ok(()) => took.push(t.elapsed()),
                    // Counted and shown: a page that times out is a figure too.
                    Err(_) => failed += 1,
                }
            }
            anyhow::Ok((took, failed))
        }));
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (took, f) = t.await??;
        all.extend(took);
        failed += f;
    }
    all.sort();
    Ok(Stats {
        secs: secs as f64,
        took: all,
        failed,
    })
}

pub(crate) struct Stats {
    secs: f64,
    took: Vec<Duration>,
    failed: usize,
}

impl Stats {
    pub(crate) fn line(&self, what: &str) -> String {
        let ms = |q: f64| {
            self.took
                .get(((self.took.len() as f64 - 1.0) * q).round() as usize)
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        format!(
            "{what:<34} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  {:>6.0} req/s  {} failed",
            ms(0.5),
            ms(0.95),
            ms(1.0),
            self.took.len() as f64 / self.secs,
            self.failed
        )
    }
}

/// A scratch database with a person (a session cookie and a read key),
/// their organization, a batch of `jobs` rows and a finished execution
/// over it (every 7th price wrong, so `partial`), not judged yet; and a
/// `mino serve` child (no workers) over it.
pub(crate) struct Fixture {
    pub db: sqlx::PgPool,
    pub base: String,
    pub child: tokio::process::Child,
    pub http: reqwest::Client,
    pub cookie: String,
    pub key: String,
    pub ctx: OrgCtx,
    pub batch: mino::model::Batch,
    pub execution: mino::model::Execution,
}

/// A `mino serve` child (no workers: the execution's results are written
/// by this process) over `options`: (child, base URL).
pub(crate) async fn serve(
    options: &sqlx::postgres::PgConnectOptions,
) -> anyhow::Result<(tokio::process::Child, String)> {
    crate::common::serve(options, 0, false).await
}

pub(crate) use crate::common::peak_mb;

impl Fixture {
    pub(crate) async fn build(
        options: sqlx::postgres::PgConnectOptions,
        jobs: u32,
    ) -> anyhow::Result<Fixture> {
        let db = mino::server::startup::connect(options.clone()).await?;
        mino::server::startup::migrate(&db).await?;
        let (child, base) = serve(&options).await?;
        let http = reqwest::Client::builder().build()?;

        // A person (signed up over HTTP, for a session cookie), their
        // organization, a read key.
        let signup = http
            .post(format!("{base}/api/v1/auth/signup"))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"email": "bench@example.com", "password": "correct horse battery", "name": "Bench"})
                    .to_string(),
            )
            .send()
            .await?;
        anyhow::ensure!(signup.status().is_success(), "sign-up failed");
        let cookie = signup
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no session cookie"))?;
        let user: uuid::Uuid =
            sqlx::query_scalar("select id from users where email = 'bench@example.com'")
                .fetch_one(&db)
                .await?;
        let (ctx, key) = crate::common::bench_org(&db, user).await?;

        // The batch: a URL, an expected title and price per row.
        let project = mino::server::service::projects::create(&db, &ctx, "Bench", "", "").await?;
        let mut csv = String::with_capacity(jobs as usize * 60);
        csv.push_str("url,gt_title,gt_price\n");
        for n in 1..=jobs {
            csv.push_str(&format!(
                "https://shop{}.example.com/p/{n},Product {n},{}.{:02}\n",
                n % 97,
                n % 500,
                n % 100
            ));
        }
        let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let execution = executions::start(
            &db,
            ctx.actor(),
            batch.id,
            executions::StartRequest {
                mode: "production".into(),
                max_retries: Some(0),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Finished as if an agent had run: every 7th price is wrong.
        sqlx::query(
            "update jobs j set state = 'succeeded', finished_at = now(),
                    extracted = case when j.row_index % 7 = 0
                        then json_build_object('title', r.ground_truth->>'title', 'price', '0.01')
                        else r.ground_truth end
             from batch_rows r
             where j.execution_id = $1 and r.batch_seq = $2 and r.row_index = j.row_index",
        )
        .bind(execution.id)
        .bind(batch_seq(&db, batch.id).await?)
        .execute(&db)
        .await?;
        sqlx::query("update executions set state = 'completed', finished_at = now() where id = $1")
            .bind(execution.id)
            .execute(&db)
            .await?;
        Ok(Fixture {
            db,
            base,
            child,
            http,
            cookie,
            key,
            ctx,
            batch,
            execution,
        })
    }
}

async fn measure(options: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    let secs: u64 = std::env::var("MINO_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let t = Instant::now();
    let Fixture {
        db,
        base,
        mut child,
        http,
        cookie,
        key,
        ctx,
        batch,
        execution,
    } = Fixture::build(options, jobs).await?;
    let built = t.elapsed();
    let t = Instant::now();
    let mut tx = db.begin().await?;
    let judged = ground_truth::judge_again(&mut tx, &[execution.id], None).await?;
    tx.commit().await?;
    let judge_all = t.elapsed();
    sqlx::query("analyze jobs").execute(&db).await?;
    sqlx::query("analyze batch_rows").execute(&db).await?;
    println!(
        "built a batch and a finished execution of {jobs} jobs in {:.1} s; judged all {judged} in {:.1} s ({:.0} jobs/s)",
        built.as_secs_f64(),
        judge_all.as_secs_f64(),
        judged as f64 / judge_all.as_secs_f64()
    );

    // The filtered list: partial jobs; a deep cursor 90 % of the way in.
    let partial: i64 = sqlx::query_scalar(
        "select count(*) from jobs where execution_id = $1 and verdict = 'partial'",
    )
    .bind(execution.id)
    .fetch_one(&db)
    .await?;
    let deep: i64 = sqlx::query_scalar(
        "select id from jobs where execution_id = $1 and verdict = 'partial' order by id offset $2 limit 1",
    )
    .bind(execution.id)
    .bind(partial * 9 / 10)
    .fetch_one(&db)
    .await?;
    println!("filter: evaluation=partial ({partial} of {jobs} jobs); deep cursor after job {deep}, 90 % in");
    let seq = batch_seq(&db, batch.id).await?;
    let sql = "select j.id, j.row_index, r.site_url, j.state, j.verdict, j.accuracy, j.extracted,
                      j.field_results, r.ground_truth, r.gt_version
               from jobs j join batch_rows r on r.batch_seq = $2 and r.row_index = j.row_index
               where j.execution_id = $1 and j.verdict = 'partial' and j.id > $3
               order by j.id limit 51";
    for (what, after) in [("first page", 0i64), ("deep page", deep)] {
        let plan: Vec<(String,)> = sqlx::query_as(&format!("explain (analyze, costs off) {sql}"))
            .bind(execution.id)
            .bind(seq)
            .bind(after)
            .fetch_all(&db)
            .await?;
        let lines: Vec<&str> = plan
            .iter()
            .map(|(l,)| l.trim())
            .filter(|l| l.contains("Index") || l.starts_with("Execution Time"))
            .collect();
        println!("plan, {what}: {}", lines.join(" | "));
    }

    let mut out = Vec::new();
    for (what, after) in [("first page", 0i64), ("deep page", deep)] {
        let pool = db.clone();
        let id = execution.id;
        let stats = load(secs, move || {
            let pool = pool.clone();
            async move {
                let rows: Vec<sqlx::postgres::PgRow> = sqlx::query(sql)
                    .bind(id)
                    .bind(seq)
                    .bind(after)
                    .fetch_all(&pool)
                    .await?;
                anyhow::ensure!(!rows.is_empty(), "no rows");
                Ok(())
            }
        })
        .await?;
        out.push(stats.line(&format!("baseline SQL, {what}")));
    }
    for (what, cursor) in [("first page", None), ("deep page", Some(deep))] {
        let rest = format!(
            "{base}/api/v1/executions/{}/jobs?evaluation=partial&limit=50{}",
            execution.id,
            cursor.map(|c| format!("&cursor={c}")).unwrap_or_default()
        );
        let (client, key) = (http.clone(), key.clone());
        let stats = load(secs, move || {
            let (client, key, rest) = (client.clone(), key.clone(), rest.clone());
            async move {
                let r = client.get(&rest).bearer_auth(&key).send().await?;
                anyhow::ensure!(r.status().is_success(), "REST answered {}", r.status());
                r.bytes().await?;
                Ok(())
            }
        })
        .await?;
        out.push(stats.line(&format!("REST, {what}")));
    }
    // One client alone first: the page's size and its own time, no queueing.
    {
        let page = format!("{base}/o/bench/executions/{}?jobs=partial", execution.id);
        let mut times = vec![];
        let mut size = 0;
        for _ in 0..50 {
            let t = Instant::now();
            let r = http
                .get(&page)
                .header("cookie", cookie.clone())
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "page answered {}", r.status());
            let body = r.bytes().await?;
            size = body.len();
            // MINO_BENCH_SAVE_PAGE=file keeps the HTML, to see what it carries.
            if let Ok(file) = std::env::var("MINO_BENCH_SAVE_PAGE") {
                std::fs::write(file, &body)?;
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "server-rendered page alone (one client, 50 requests): p50 {:.1} ms, min {:.1} ms; {:.0} KB of HTML",
            times[25],
            times[0],
            size as f64 / 1024.0
        );
    }
    for (what, cursor) in [("first page", None), ("deep page", Some(deep))] {
        let page = format!(
            "{base}/o/bench/executions/{}?jobs=partial{}",
            execution.id,
            cursor.map(|c| format!("&after={c}")).unwrap_or_default()
        );
        let (client, cookie) = (http.clone(), cookie.clone());
        let stats = load(secs, move || {
            let (client, cookie, page) = (client.clone(), cookie.clone(), page.clone());
            async move {
                let r = client.get(&page).header("cookie", cookie).send().await?;
                anyhow::ensure!(r.status().is_success(), "page answered {}", r.status());
                r.bytes().await?;
                Ok(())
            }
        })
        .await?;
        out.push(stats.line(&format!("server-rendered page, {what}")));
    }
    println!("{CLIENTS} clients, {secs} s each:");
    for l in out {
        println!("  {l}");
    }

    // A bulk set of 100,000 expected prices, each row's job judged again.
    let rows: Vec<ground_truth::BulkSetRow> = (1..=BULK_ROWS.min(jobs as usize))
        .map(|n| ground_truth::BulkSetRow {
            row: Some(n as i32),
            values: [(
                "price".to_string(),
                Some(ground_truth::Expected::Text("1.00".to_string())),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        })
        .collect();
    let t = Instant::now();
    let r = ground_truth::bulk_set(
        &db,
        ctx.actor(),
        batch.id,
        ground_truth::BulkSet {
            rows,
            preview: false,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "bulk set of {} expected prices: {} values changed, {} jobs judged again in {:.2} s",
        BULK_ROWS.min(jobs as usize),
        r.values_changed,
        r.reevaluated_jobs,
        t.elapsed().as_secs_f64()
    );
    println!("server peak memory {:.1} MB", peak_mb(&child));
    let _ = child.kill().await;
    db.close().await;
    Ok(())
}

async fn batch_seq(db: &sqlx::PgPool, batch: uuid::Uuid) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("select seq from batches where id = $1")
        .bind(batch)
        .fetch_one(db)
        .await?)
}
