//! `mino-bench llm [JOBS] [ANSWER_MS]`: the llm extractor's overhead. An
//! endpoint (a test server in this process, speaking the OpenAI format,
//! answering every request after ANSWER_MS — default 0, at once — with
//! fixed values; not a model) and the demo shop serve JOBS demo pages
//! (default 1,000).
//!
//! 1. Mino: a real execution with the http source and the llm extractor,
//!    run by this process's workers at concurrency 10 and 50 — fetch,
//!    rules, page reduction, prompt, the breaker and rate checks, the call,
//!    parsing, the call's record, results and verdicts written.
//! 2. The plain loop, at the same concurrency: for each page, fetch it and
//!    post the same prompt Mino sends (built before the clock starts) to
//!    the same endpoint; nothing else.
//! 3. Mino's rules-only executor on the same pages at the same concurrency:
//!    no model, so it shows what the executor's own bookkeeping (claims,
//!    results, verdicts in Postgres) allows; the llm extractor can't be
//!    faster than that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::routing::post;
use serde_json::json;
use sqlx::Executor;

use mino::server::agents::extract::llm as extractor;
use mino::server::agents::extract::reduce::reduce;
use mino::server::agents::llm::{openai, ChatRequest, Speaker};
use mino::server::demo::{behaviour, Behaviour};
use mino::server::service::{batches, executions, model_providers, projects};

pub async fn run(
    server: sqlx::postgres::PgConnectOptions,
    jobs: u32,
    answer_ms: u64,
) -> anyhow::Result<()> {
    crate::results::in_scratch_database(server, "llm", |options| measure(options, jobs, answer_ms))
        .await
}

/// The endpoint: counts requests, answers fixed values after `answer_ms`.
async fn endpoint(answer_ms: u64) -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let answer = json!({
        "id": "chatcmpl-bench", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content":
            "{\"title\": \"Bench\", \"price\": \"9.99\", \"currency\": \"EUR\", \"in_stock\": \"yes\"}"},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 400, "completion_tokens": 30},
    });
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |_body: axum::body::Bytes| {
            seen.fetch_add(1, Ordering::Relaxed);
            let answer = answer.clone();
            async move {
                if answer_ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(answer_ms)).await;
                }
                axum::Json(answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/v1"), count))
}

async fn measure(
    options: sqlx::postgres::PgConnectOptions,
    jobs: u32,
    answer_ms: u64,
) -> anyhow::Result<()> {
    let db = mino::server::startup::connect(options).await?;
    mino::server::startup::migrate(&db).await?;
    let data_dir = std::env::temp_dir().join(format!("mino-bench-llm-{}", std::process::id()));
    mino::server::secrets::prepare(&db, None, &data_dir).await?;
    let shop: axum::Router = axum::Router::new().nest("/demo", mino::server::demo::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, shop).await });
    let base = format!("http://{addr}/demo");
    let urls: Vec<String> = (1..)
        .filter(|n| behaviour(*n) == Behaviour::Normal)
        .take(jobs as usize)
        .map(|n| format!("{base}/products/{n}"))
        .collect();
    let (model_url, answered) = endpoint(answer_ms).await?;

    let user: uuid::Uuid = sqlx::query_scalar("insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id").fetch_one(&db).await?;
    let (ctx, _) = crate::common::bench_org(&db, user).await?;
    let err = |e: mino::error::AppError| anyhow::anyhow!("{e}");
    let provider = model_providers::create(
        &db,
        &ctx,
        model_providers::ProviderInput {
            name: Some("Instant test endpoint".into()),
            kind: Some(mino::model::ProviderKind::OpenAi),
            base_url: Some(model_url.clone()),
            api_key: Some("sk-bench-0000".into()),
            models: Some(vec![mino::model::ProviderModel {
                name: "instant".into(),
                input_price_per_million: 0.15,
                output_price_per_million: 0.6,
            }]),
            max_in_flight: Some(256),
            ..Default::default()
        },
    )
    .await
    .map_err(err)?;
    let instructions = "Extract the product's title, price, currency and whether it is in stock.";
    let project = projects::create(&db, &ctx, "Bench llm", "", instructions)
        .await
        .map_err(err)?;
    let mut csv = String::from("url,gt_title,gt_price,gt_currency,gt_in_stock\n");
    for u in &urls {
        csv.push_str(&format!("{u},Bench,9.99,EUR,yes\n"));
    }
    let batch = batches::ingest_text(&db, &ctx, project.id, Default::default(), csv)
        .await
        .map_err(err)?;
    let project = projects::get(&db, ctx.actor(), project.id)
        .await
        .map_err(err)?;
    let settings = mino::model::AgentSettings {
        extractor: mino::model::Extractor::Llm,
        model_route: vec![mino::model::RouteEntry {
            provider: provider.id,
            model: "instant".into(),
        }],
        ..project.agent.clone()
    };
    let project = projects::update_agent(&db, ctx.actor(), project.id, settings, None)
        .await
        .map_err(err)?;

    // The prompts Mino sends, built before the plain loop's clock starts.
    let fields: Vec<_> = project.fields.iter().collect();
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();
    for u in &urls {
        let html = client.get(u).send().await?.text().await?;
        let job = mino::server::agents::JobInput {
            job_id: 0,
            attempt: 1,
            url: u.clone(),
            inputs: Default::default(),
            instructions: instructions.into(),
            instruction_version: 1,
            fields: project.fields.clone(),
            timeout_secs: 30,
            row_index: 0,
            wait_for: None,
            steps: vec![],
        };
        let page = reduce(&html, project.agent.page_token_budget as usize);
        let req = ChatRequest {
            system: extractor::system_text(&job),
            turns: vec![(Speaker::User, extractor::user_text(&job, &fields, &page))],
            schema: extractor::schema(&fields),
            max_output_tokens: 1024,
        };
        bodies.push(openai::body("instant", &req, true));
    }
    println!(
        "{} demo pages, an OpenAI-format endpoint answering after {answer_ms} ms, {} fields",
        urls.len(),
        fields.len()
    );

    for concurrency in [10usize, 50] {
        // The plain loop: fetch the page, post the prompt.
        let work: Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>> = Arc::new(
            std::sync::Mutex::new(urls.iter().cloned().zip(bodies.iter().cloned()).collect()),
        );
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (work, client, url) = (work.clone(), client.clone(), model_url.clone());
            tasks.spawn(async move {
                loop {
                    let next = work.lock().unwrap().pop();
                    let Some((page, body)) = next else { break };
                    let _ = client.get(&page).send().await?.text().await?;
                    let r = client
                        .post(format!("{url}/chat/completions"))
                        .bearer_auth("sk-bench-0000")
                        .json(&body)
                        .send()
                        .await?;
                    let _ = r.bytes().await?;
                }
                Ok::<_, reqwest::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let plain = urls.len() as f64 / started.elapsed().as_secs_f64();
        println!("concurrency {concurrency}: plain loop (fetch + post)  {plain:>7.1} jobs/s");

        let before = answered.load(Ordering::Relaxed);
        let (stop, handle) =
            crate::browser::workers(&db, concurrency, &format!("bench-llm-{concurrency}"));
        let run = |extractor: &'static str| {
            let (db, ctx) = (&db, &ctx);
            async move {
                let started = Instant::now();
                let e = executions::start(
                    db,
                    ctx.actor(),
                    batch.id,
                    executions::StartRequest {
                        mode: "production".into(),
                        concurrency: Some(concurrency as i32),
                        max_retries: Some(0),
                        extractor: Some(extractor.into()),
                        ..Default::default()
                    },
                )
                .await
                .map_err(err)?;
                let secs = crate::browser::finish(db, e.id, started).await?;
                anyhow::Ok((e, secs))
            }
        };
        let (_, rules_secs) = run("rules").await?;
        let rules = urls.len() as f64 / rules_secs;
        println!(
            "concurrency {concurrency}: Mino rules only (ceiling) {rules:>7.1} jobs/s (ratio {:.2})",
            rules / plain
        );
        let (e, secs) = run("llm").await?;
        let counts = mino::server::db::jobs::counts(&db, e.id).await?;
        let rate = urls.len() as f64 / secs;
        let done = executions::get(&db, ctx.actor(), e.id).await.map_err(err)?;
        println!(
            "concurrency {concurrency}: Mino llm extractor      {rate:>7.1} jobs/s (ratio {:.2}; {:.2} of rules only; succeeded {}, failed {}; {} model requests; {} input and {} output tokens; cost {})",
            rate / plain,
            rate / rules,
            counts.get("succeeded").copied().unwrap_or(0),
            counts.get("failed").copied().unwrap_or(0),
            answered.load(Ordering::Relaxed) - before,
            done.tokens.input,
            done.tokens.output,
            mino::model::format_price(done.cost_micros),
        );
        let _ = stop.send(true);
        let _ = handle.await;
    }
    db.execute("select 1").await?;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}
