//! `mino-bench experiment [ROWS]`: an experiment of 4 variants × ROWS rows
//! (default 10,000) from stored snapshots with the rules extractor, against
//! one 4 × ROWS-row snapshot run of the same kept pages (the same number of
//! jobs, the same workers); and the experiment's REST read (what its page
//! shows) under 20 clients while it runs.

use std::time::{Duration, Instant};

use mino::server::demo::{pages_html, product};
use mino::server::service::{batches, executions, experiments, projects};

use crate::browser::{finish, workers};
use crate::results::{in_scratch_database, load, serve};

/// Workers and per-run concurrency (as the other executor benchmarks).
const SLOTS: usize = 50;

pub async fn run(server: sqlx::postgres::PgConnectOptions, rows: u32) -> anyhow::Result<()> {
    in_scratch_database(server, "experiment", |options| measure(options, rows)).await
}

async fn measure(options: sqlx::postgres::PgConnectOptions, rows: u32) -> anyhow::Result<()> {
    let db = mino::server::startup::connect(options.clone()).await?;
    mino::server::startup::migrate(&db).await?;
    let err = |e: mino::error::AppError| anyhow::anyhow!("{e}");

    // A shop of well-behaved demo product pages, served by this process.
    let shop = axum::Router::new().route(
        "/p/{n}",
        axum::routing::get(
            |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                axum::response::Html(pages_html(&product(n)))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, shop).await });

    let user: uuid::Uuid = sqlx::query_scalar(
        "insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id",
    )
    .fetch_one(&db)
    .await?;
    let (ctx, key) = crate::common::bench_org(&db, user).await?;
    let project = projects::create(
        &db,
        &ctx,
        "Bench experiment",
        "",
        "Extract title and price.",
    )
    .await
    .map_err(err)?;
    // 4 × ROWS rows, so one run of the whole batch has as many jobs as the
    // experiment; the experiment's variants take its first ROWS.
    let total = rows * 4;
    let mut csv = String::from("url,gt_title,gt_price\n");
    for n in 1..=total {
        let p = product(n);
        csv.push_str(&format!(
            "http://{addr}/p/{n},{},{}\n",
            p.title.replace(',', " "),
            p.price()
        ));
    }
    let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv)
        .await
        .map_err(err)?;
    // Versions 2–4: the title field's description changes each time (a
    // run-configuration change that leaves the rules extractor's output
    // as it is, so every variant does the same work).
    for v in 2..=4 {
        let mut field = projects::get(&db, ctx.actor(), project.id)
            .await
            .map_err(err)?
            .fields
            .into_iter()
            .find(|f| f.name == "title")
            .ok_or_else(|| anyhow::anyhow!("no title field"))?;
        field.description = format!("The product's name (version {v}).");
        projects::update_field(&db, ctx.actor(), project.id, field, None)
            .await
            .map_err(err)?;
    }

    let (stop, handle) = workers(&db, SLOTS, "bench-experiment");
    let start = |agent: &str, from: Option<uuid::Uuid>| executions::StartRequest {
        mode: "production".into(),
        agent: Some(agent.into()),
        from_execution: from,
        concurrency: Some(SLOTS as i32),
        max_retries: Some(0),
        ..Default::default()
    };
    // Every page fetched once and kept.
    let mut settings = projects::get(&db, ctx.actor(), project.id)
        .await
        .map_err(err)?
        .agent;
    settings.keep_pages = true;
    projects::update_agent(&db, ctx.actor(), project.id, settings, None)
        .await
        .map_err(err)?;
    let t = Instant::now();
    let fetched = executions::start(&db, ctx.actor(), batch.id, start("http", None))
        .await
        .map_err(err)?;
    let secs = finish(&db, fetched.id, t).await?;
    println!(
        "kept {total} pages with the http source in {secs:.1} s ({:.0} pages/s)",
        total as f64 / secs
    );

    // Baseline: one snapshot run of all 4 × ROWS rows.
    let t = Instant::now();
    let one = executions::start(
        &db,
        ctx.actor(),
        batch.id,
        start("snapshot", Some(fetched.id)),
    )
    .await
    .map_err(err)?;
    let one_secs = finish(&db, one.id, t).await?;
    let one_rate = total as f64 / one_secs;
    println!("one snapshot run of {total} rows          {one_rate:>8.0} jobs/s  ({one_secs:.1} s)");

    // The experiment alone, then again read by 20 clients through a `mino
    // serve` child while it runs: its view, then its per-row grid.
    let (mut child, base) = serve(&options).await?;
    let new_experiment = || experiments::NewExperiment {
        name: Some("Bench".into()),
        batch: Some(batch.id),
        rows: experiments::RowChoice {
            size: Some(rows as i32),
            ..Default::default()
        },
        variants: (1..=4)
            .map(|v| experiments::VariantRequest {
                version: Some(v),
                ..Default::default()
            })
            .collect(),
        from_execution: Some(fetched.id),
        concurrency: Some(SLOTS as i32),
        max_retries: Some(0),
    };
    let finished = |id: uuid::Uuid| {
        let db = db.clone();
        async move {
            loop {
                let done: bool = sqlx::query_scalar(
                    "select finished_at is not null from experiments where id = $1",
                )
                .bind(id)
                .fetch_one(&db)
                .await?;
                if done {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let t = Instant::now();
    let x = experiments::create(&db, ctx.actor(), project.id, new_experiment())
        .await
        .map_err(err)?;
    finished(x.id).await?;
    let x_secs = t.elapsed().as_secs_f64();
    let x_rate = total as f64 / x_secs;
    println!(
        "experiment, 4 variants × {rows} rows    {x_rate:>8.0} jobs/s  ({x_secs:.1} s; ratio to one run {:.2})",
        x_rate / one_rate
    );

    let t = Instant::now();
    let x = experiments::create(&db, ctx.actor(), project.id, new_experiment())
        .await
        .map_err(err)?;
    let http = reqwest::Client::new();
    let mut lines = Vec::new();
    for (what, path) in [
        (
            "GET /experiments/{id}",
            format!("/api/v1/experiments/{}", x.id),
        ),
        (
            "GET /experiments/{id}/rows",
            format!("/api/v1/experiments/{}/rows", x.id),
        ),
    ] {
        let url = format!("{base}{path}");
        let (http, key) = (http.clone(), key.clone());
        let stats = load(8, move || {
            let (http, url, key) = (http.clone(), url.clone(), key.clone());
            async move {
                let r = http.get(&url).bearer_auth(&key).send().await?;
                anyhow::ensure!(r.status().is_success(), "{}", r.status());
                r.bytes().await?;
                Ok(())
            }
        })
        .await?;
        let running: bool =
            sqlx::query_scalar("select finished_at is null from experiments where id = $1")
                .bind(x.id)
                .fetch_one(&db)
                .await?;
        lines.push(format!(
            "{} ({})",
            stats.line(&format!("{what}, 20 clients")),
            if running {
                "while it ran"
            } else {
                "it had finished before the end"
            }
        ));
    }
    finished(x.id).await?;
    let x_secs = t.elapsed().as_secs_f64();
    println!(
        "the same, read by 20 clients           {:>8.0} jobs/s  ({x_secs:.1} s)",
        total as f64 / x_secs
    );
    for l in lines {
        println!("{l}");
    }
    let done = experiments::get(&db, ctx.actor(), x.id)
        .await
        .map_err(err)?;
    for v in &done.variants {
        println!(
            "  variant {} (v{}): {} jobs, accuracy {:.3}",
            v.label,
            v.version,
            v.execution.total,
            v.execution.accuracy.unwrap_or(0.0)
        );
    }
    let _ = stop.send(true);
    let _ = handle.await;
    let _ = child.kill().await;
    db.close().await;
    Ok(())
}
