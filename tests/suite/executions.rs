//! Executions end to end against the served demo shop: workers claim the
//! jobs, the http agent fetches and extracts, transient failures retry with
//! backoff (429 waits for Retry-After), permanent ones don't, and pause /
//! resume / stop steer a running execution.

#![cfg(feature = "ssr")]

use crate::common;

use std::time::{Duration, Instant};

use common::{spawn_app, TestApp};
use mino::server::demo::product;
use mino::server::executor::{self, Settings};
use mino::server::live::Hub;
use serde_json::{json, Value};
use sqlx::PgPool;

/// outcome, error class, started, finished
type AttemptRow = (
    String,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
);

async fn demo(app: &TestApp) -> (reqwest::Client, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (c, r.body["batch"]["id"].as_str().unwrap().to_string())
}

fn workers(app: &TestApp, slots: usize) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let hub = Hub::start(app.db.clone(), stopped.clone());
    executor::spawn(
        app.db.clone(),
        Settings {
            slots,
            allow_private_targets: true,
            demo_origin: None,
            worker_id: "test-worker".into(),
            lease: executor::LEASE,
        },
        hub,
        stopped,
    );
    stop
}

async fn wait_for(
    app: &TestApp,
    c: &reqwest::Client,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let e = app.get(c, &format!("/api/v1/executions/{id}")).await.body;
        if done(&e) {
            return e;
        }
        assert!(start.elapsed() < limit, "timed out waiting; last state {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test]
async fn a_test_run_fetches_extracts_and_retries_by_error_class(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, batch) = demo(&app).await;
    let _workers = workers(&app, 10);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 60, "concurrency": 10, "max_retries": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["total"], 60);
    let id = r.body["id"].as_str().unwrap().to_string();
    let e = wait_for(&app, &c, &id, Duration::from_secs(40), |e| {
        e["state"] == "completed"
    })
    .await;
    // 13 is missing (404), 29 always fails (500), 41 is always rate-limited;
    // 57 fails once and then succeeds.
    assert_eq!(
        (e["completed"].as_i64(), e["errors"].as_i64()),
        (Some(57), Some(3)),
        "{e}"
    );

    let job = |row: i32| {
        let db = app.db.clone();
        let id = id.clone();
        async move {
            let (state, class, extracted): (String, Option<String>, Option<sqlx::types::Json<Value>>) = sqlx::query_as(
                "select state, error_class, extracted from jobs where execution_id = $1::uuid and row_index = $2",
            )
            .bind(&id)
            .bind(row)
            .fetch_one(&db)
            .await
            .unwrap();
            let attempts: Vec<AttemptRow> = sqlx::query_as(
                "select a.outcome, a.error_class, a.started_at, a.finished_at from attempts a
                 join jobs j on j.id = a.job_id where j.execution_id = $1::uuid and j.row_index = $2 order by a.n",
            )
            .bind(&id)
            .bind(row)
            .fetch_all(&db)
            .await
            .unwrap();
            (state, class, extracted.map(|j| j.0), attempts)
        }
    };
    let (state, _, extracted, attempts) = job(1).await;
    assert_eq!(state, "succeeded");
    let p = product(1);
    assert_eq!(
        extracted.unwrap(),
        json!({"title": p.title, "price": p.price(), "currency": p.currency, "in_stock": if p.stock.in_stock() { "yes" } else { "no" }})
    );
    assert_eq!(attempts.len(), 1);

    let (state, class, _, attempts) = job(13).await;
    assert_eq!(
        (state.as_str(), class.as_deref(), attempts.len()),
        ("failed", Some("http_4xx"), 1),
        "permanent: no retry"
    );
    let (state, class, _, attempts) = job(29).await;
    assert_eq!(
        (state.as_str(), class.as_deref(), attempts.len()),
        ("failed", Some("http_5xx"), 2),
        "transient: retried once"
    );
    let (state, class, _, attempts) = job(41).await;
    assert_eq!(
        (state.as_str(), class.as_deref(), attempts.len()),
        ("failed", Some("http_429"), 2)
    );
    let waited = attempts[1].2 - attempts[0].3.unwrap();
    assert!(
        waited >= chrono::Duration::milliseconds(4900),
        "429 waited only {waited}"
    );
    let (state, _, _, attempts) = job(57).await;
    assert_eq!(state, "succeeded");
    assert_eq!(
        attempts.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        ["retrying", "succeeded"]
    );
}

#[sqlx::test]
async fn pause_resume_and_stop(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, batch) = demo(&app).await;
    let _workers = workers(&app, 4);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "production", "concurrency": 1, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    wait_for(&app, &c, &id, Duration::from_secs(10), |e| {
        e["completed"].as_i64() > Some(2)
    })
    .await;

    let r = app
        .post(&c, &format!("/api/v1/executions/{id}/pause"), json!({}))
        .await;
    assert_eq!(r.body["state"], "paused");
    // The running job (at most one) finishes; nothing new starts.
    let paused = wait_for(&app, &c, &id, Duration::from_secs(5), |e| e["running"] == 0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let still = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;
    assert_eq!(
        still["queued"], paused["queued"],
        "no job started while paused"
    );
    assert_eq!(
        app.post(&c, &format!("/api/v1/executions/{id}/pause"), json!({}))
            .await
            .status,
        409
    );

    let r = app
        .post(&c, &format!("/api/v1/executions/{id}/resume"), json!({}))
        .await;
    assert_eq!(r.body["state"], "running");
    let r = app
        .call(
            &c,
            reqwest::Method::PUT,
            &format!("/api/v1/executions/{id}/concurrency"),
            Some(json!({"concurrency": 3})),
            None,
        )
        .await;
    assert_eq!(r.body["concurrency"], 3);
    wait_for(&app, &c, &id, Duration::from_secs(10), |e| {
        e["completed"].as_i64() > paused["completed"].as_i64().map(|n| n + 3)
    })
    .await;

    let r = app
        .post(&c, &format!("/api/v1/executions/{id}/stop"), json!({}))
        .await;
    assert!(
        matches!(
            r.body["state"].as_str(),
            Some("stopping") | Some("cancelled")
        ),
        "{:?}",
        r.body
    );
    let e = wait_for(&app, &c, &id, Duration::from_secs(5), |e| {
        e["state"] == "cancelled"
    })
    .await;
    assert_eq!(e["queued"], 0);
    assert_eq!(e["running"], 0);
    assert!(e["cancelled"].as_i64().unwrap() > 100, "{e}");
    let r = app
        .post(&c, &format!("/api/v1/executions/{id}/resume"), json!({}))
        .await;
    assert_eq!(r.status, 409);
}

#[sqlx::test]
async fn starting_checks_its_inputs_and_the_monthly_quota(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, batch) = demo(&app).await;
    let path = format!("/api/v1/batches/{batch}/executions");
    let r = app
        .post(
            &c,
            &path,
            json!({"mode": "test", "sample_size": 1001, "concurrency": 51}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.field("sample_size").is_some() && r.field("concurrency").is_some(),
        "{:?}",
        r.body
    );
    assert!(
        r.field("concurrency")
            .unwrap()
            .contains("from 1 to 50 (your organization's plan limit)"),
        "{:?}",
        r.body
    );
    let r = app.post(&c, &path, json!({"mode": "sometimes"})).await;
    assert!(r.field("mode").is_some());
    let r = app
        .post(&c, &path, json!({"mode": "test", "instruction_version": 9}))
        .await;
    assert!(r.field("instruction_version").is_some());
    let org: String = sqlx::query_scalar("select org_id::text from batches where id = $1::uuid")
        .bind(&batch)
        .fetch_one(&app.db)
        .await
        .unwrap();
    app.call(
        &c,
        reqwest::Method::PUT,
        &format!("/api/v1/orgs/{org}/limits"),
        Some(json!({"max_projects": 10, "max_executions_per_month": 1})),
        None,
    )
    .await;
    assert_eq!(
        app.post(&c, &path, json!({"mode": "test", "sample_size": 5}))
            .await
            .status,
        201
    );
    let r = app
        .post(&c, &path, json!({"mode": "test", "sample_size": 5}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (402, "QUOTA_EXCEEDED"));
    let list = app.get(&c, &path).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["total"], 5);
}

#[sqlx::test]
async fn failed_or_chosen_jobs_rerun_as_a_new_execution(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, batch) = demo(&app).await;
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 15, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let rerun = |body: Value| {
        let (app, c, id) = (&app, &c, id.clone());
        async move {
            app.post(c, &format!("/api/v1/executions/{id}/rerun"), body)
                .await
        }
    };
    // Nothing has failed yet (no workers run).
    let r = rerun(json!({})).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "CONFLICT"),
        "{:?}",
        r.body
    );
    let _workers = workers(&app, 10);
    wait_for(&app, &c, &id, Duration::from_secs(30), |e| {
        e["state"] == "completed"
    })
    .await;

    // Product 13 is missing: the one failed job runs again.
    let r = rerun(json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (r.body["total"].as_i64(), r.body["rerun_of"].as_str()),
        (Some(1), Some(id.as_str()))
    );
    let again = r.body["id"].as_str().unwrap().to_string();
    let e = wait_for(&app, &c, &again, Duration::from_secs(30), |e| {
        e["state"] == "completed"
    })
    .await;
    assert_eq!(e["errors"], 1);
    let row: i32 = sqlx::query_scalar("select row_index from jobs where execution_id = $1::uuid")
        .bind(&again)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(row, 13);

    // Chosen jobs, by id; ids of other executions are refused by name.
    let ids: Vec<i64> = sqlx::query_scalar(
        "select id from jobs where execution_id = $1::uuid and row_index in (1, 2) order by id",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let r = rerun(json!({"job_ids": ids, "concurrency": 2})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (r.body["total"].as_i64(), r.body["concurrency"].as_i64()),
        (Some(2), Some(2))
    );
    let r = rerun(json!({"job_ids": [ids[0], 999_999_999]})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.field("job_ids").unwrap().contains("999999999"),
        "{:?}",
        r.body
    );
    let r = rerun(json!({"job_ids": (1..=1001).collect::<Vec<i64>>()})).await;
    assert!(r.field("job_ids").unwrap().contains("1000"), "{:?}", r.body);
    let r = rerun(json!({"jobs": "some"})).await;
    assert_eq!(
        r.field("jobs").as_deref(),
        Some("Use failed, unfinished or all.")
    );
}

/// Pages that take `delay` to answer.
async fn slow_pages(delay: Duration) -> String {
    let app = axum::Router::new().route(
        "/p/{n}",
        axum::routing::get(
            move |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                tokio::time::sleep(delay).await;
                axum::response::Html(format!("<h1>Item {n}</h1>"))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[sqlx::test]
async fn concurrency_changes_and_stops_reach_running_workers_at_once(db: PgPool) {
    let app = spawn_app(db).await;
    let pages = slow_pages(Duration::from_secs(3)).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Slow").await;
    let mut csv = String::from("url\n");
    for n in 1..=200 {
        csv.push_str(&format!("{pages}/p/{n}\n"));
    }
    let r = app.upload(&c, &project, &csv, "name=slow").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let _workers = workers(&app, 10);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "production", "concurrency": 1}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    wait_for(&app, &c, &id, Duration::from_secs(10), |e| {
        e["running"] == 1
    })
    .await;

    // More concurrency: idle workers hear it and fill the new slots.
    let asked = Instant::now();
    let r = app
        .call(
            &c,
            reqwest::Method::PUT,
            &format!("/api/v1/executions/{id}/concurrency"),
            Some(json!({"concurrency": 4})),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    wait_for(&app, &c, &id, Duration::from_secs(5), |e| e["running"] == 4).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "took {:?}",
        asked.elapsed()
    );

    // Stop: the four running fetches are interrupted, not waited for.
    let asked = Instant::now();
    app.post(&c, &format!("/api/v1/executions/{id}/stop"), json!({}))
        .await;
    let e = wait_for(&app, &c, &id, Duration::from_secs(5), |e| {
        e["state"] == "cancelled"
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "stopping took {:?}",
        asked.elapsed()
    );
    assert_eq!(e["running"], 0);
    let interrupted: i64 = sqlx::query_scalar(
        "select count(*) from attempts a join jobs j on j.id = a.job_id
         where j.execution_id = $1::uuid and a.outcome = 'cancelled'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(interrupted >= 1, "no running attempt was cancelled");
}
