//! The remote agent protocol ("mino-agent/1", README) against a local
//! agent service: what Mino sends, streamed progress and logs, a plain JSON
//! answer, error events (retryable or not), 429 with Retry-After, a refusal,
//! a malformed line, a stream cut short — and the demo agent service run
//! through the executor like any remote agent.

#![cfg(feature = "ssr")]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use common::spawn_app;
use mino::model::{Comparator, ExtractionRule, OutputField, ValueType};
use mino::server::agents::fetch::{client, FetchPolicy};
use mino::server::agents::remote::RemoteAgent;
use mino::server::agents::{Agent, ErrorClass, JobInput, Progress};
use mino::server::executor::{self, Settings};
use mino::server::live::Hub;
use serde_json::{json, Value};
use sqlx::PgPool;

fn ndjson(lines: &[Value]) -> Response {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

async fn agent_service() -> (String, Arc<Mutex<Option<Value>>>) {
    let seen = Arc::new(Mutex::new(None));
    let app = Router::new()
        .route(
            "/ok",
            post(|State(seen): State<Arc<Mutex<Option<Value>>>>, Json(job): Json<Value>| async move {
                *seen.lock().unwrap() = Some(job.clone());
                // Progress arrives while the agent works, not all at the end.
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::convert::Infallible>>(4);
                tokio::spawn(async move {
                    let url = job["url"].clone();
                    let _ = tx.send(Ok(format!("{}\n", json!({"type": "progress", "step": "Opening", "url": url, "percent": 20})))).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = tx.send(Ok(format!("{}\n", json!({"type": "log", "level": "warn", "message": "Cookie banner closed"})))).await;
                    // The last line has no newline: still read.
                    let _ = tx.send(Ok(json!({"type": "result", "values": {"title": "Blue mug", "price": 12.5, "extra": 1}, "output": {"steps": 3}}).to_string())).await;
                });
                let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) });
                ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response()
            }),
        )
        .route("/json", post(|| async { Json(json!({"values": {"title": "Plain"}})) }))
        .route(
            "/retry",
            post(|| async { ndjson(&[json!({"type": "error", "retryable": true, "kind": "timeout", "message": "page too slow"})]) }),
        )
        .route(
            "/final",
            post(|| async { ndjson(&[json!({"type": "error", "retryable": false, "kind": "not_found", "message": "no such product"})]) }),
        )
        .route(
            "/busy",
            post(|| async { (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")], "busy").into_response() }),
        )
        .route(
            "/refuse",
            post(|| async { (StatusCode::BAD_REQUEST, "fields missing").into_response() }),
        )
        .route(
            "/broken",
            post(|| async {
                ([(header::CONTENT_TYPE, "application/x-ndjson")],
                 "{\"type\":\"progress\",\"step\":\"a\"}\n{not json}\n").into_response()
            }),
        )
        .route(
            "/cut",
            post(|| async { ndjson(&[json!({"type": "progress", "step": "Opening"})]) }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn job() -> JobInput {
    let field = |name: &str, t: ValueType| OutputField {
        name: name.into(),
        field_type: t,
        comparator: Comparator::Exact,
        comparator_options: Default::default(),
        rule: ExtractionRule::Auto,
        source: "manual".into(),
        description: String::new(),
        empty_means: Default::default(),
        multi_value_separator: None,
    };
    JobInput {
        job_id: 7,
        attempt: 2,
        url: "https://shop.example/mug".into(),
        inputs: json!({"sku": "M-1"}).as_object().unwrap().clone(),
        instructions: "Find the mug's title and price.".into(),
        instruction_version: 3,
        fields: vec![
            field("title", ValueType::Text),
            field("price", ValueType::Number),
        ],
        timeout_secs: 10,
        row_index: 0,
        wait_for: None,
        steps: Vec::new(),
    }
}

fn agent(base: &str, path: &str, allow_private: bool) -> RemoteAgent {
    let policy = FetchPolicy {
        allow_private,
        ..Default::default()
    };
    RemoteAgent {
        client: client(&policy),
        policy,
        endpoint: format!("{base}{path}"),
    }
}

#[tokio::test]
async fn the_remote_protocol_streams_progress_and_results() {
    let (base, seen) = agent_service().await;
    let progress = Progress::default();
    let out = agent(&base, "/ok", true)
        .run(&job(), &progress)
        .await
        .unwrap();
    assert_eq!(out.values["title"], "Blue mug");
    assert_eq!(
        out.values["price"], "12.5",
        "numbers arrive as text, like the http agent's"
    );
    assert_eq!(out.raw["output"], json!({"steps": 3}));
    let sent = seen.lock().unwrap().clone().unwrap();
    assert_eq!(sent["protocol"], "mino-agent/1");
    assert_eq!(sent["job"], json!({"id": 7, "attempt": 2}));
    assert_eq!(sent["url"], "https://shop.example/mug");
    assert_eq!(sent["inputs"], json!({"sku": "M-1"}));
    assert_eq!(sent["instructions"], "Find the mug's title and price.");
    assert_eq!(sent["instruction_version"], 3);
    assert_eq!(
        sent["fields"][1],
        json!({"name": "price", "type": "number", "rule": {"kind": "auto"}})
    );
    let (_, step) = progress.current();
    assert_eq!(step.unwrap().step, "Opening");
    let log: Vec<String> = progress
        .log_lines()
        .into_iter()
        .map(|l| format!("{} {}", l.level, l.message))
        .collect();
    assert!(
        log.contains(&"warn Cookie banner closed".to_string()),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("info Opening: https://shop.example/mug")),
        "{log:?}"
    );

    let out = agent(&base, "/json", true)
        .run(&job(), &Progress::default())
        .await
        .unwrap();
    assert_eq!(out.values["title"], "Plain");
}

#[tokio::test]
async fn remote_failures_are_classified() {
    let (base, _) = agent_service().await;
    let run = |path: &'static str| {
        let base = base.clone();
        async move {
            agent(&base, path, true)
                .run(&job(), &Progress::default())
                .await
                .unwrap_err()
        }
    };
    let e = run("/retry").await;
    assert_eq!((e.kind, e.class), ("timeout", ErrorClass::Transient));
    assert!(e.message.contains("page too slow"), "{}", e.message);
    let e = run("/final").await;
    assert_eq!((e.kind, e.class), ("not_found", ErrorClass::Permanent));
    let e = run("/busy").await;
    assert_eq!((e.kind, e.class), ("http_429", ErrorClass::Transient));
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    let e = run("/refuse").await;
    assert_eq!((e.kind, e.class), ("agent_rejected", ErrorClass::Permanent));
    assert!(e.message.contains("fields missing"), "{}", e.message);
    let e = run("/broken").await;
    assert_eq!((e.kind, e.class), ("agent_protocol", ErrorClass::Permanent));
    assert!(e.message.contains("Line 2"), "{}", e.message);
    let e = run("/cut").await;
    assert_eq!((e.kind, e.class), ("agent_protocol", ErrorClass::Transient));

    // The agent service's address obeys the private-address rule.
    let e = agent(&base, "/ok", false)
        .run(&job(), &Progress::default())
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.class), ("private_target", ErrorClass::Permanent));
}

#[sqlx::test]
async fn the_demo_agent_service_runs_as_a_remote_agent(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let project = r.body["project"]["id"].as_str().unwrap().to_string();
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();

    // The demo project comes pointed at the demo agent service.
    let remote = app
        .get(&c, &format!("/api/v1/projects/{project}"))
        .await
        .body["agent"]["remote_url"]
        .clone();
    assert_eq!(remote, json!(app.url("/demo/agent")));
    // Without a URL the remote agent can't start.
    sqlx::query("update projects set remote_url = null where id = $1::uuid")
        .bind(&project)
        .execute(&app.db)
        .await
        .unwrap();
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "agent": "remote"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.field("agent").is_some()),
        (400, true),
        "{:?}",
        r.body
    );

    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "remote", "remote_url": app.url("/demo/agent")}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    executor::spawn(
        app.db.clone(),
        Settings {
            slots: 10,
            allow_private_targets: true,
            demo_origin: None,
            worker_id: "w".into(),
            lease: executor::LEASE,
        },
        Hub::start(app.db.clone(), stopped.clone()),
        stopped,
    );
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 14, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["agent"], "remote");
    let id = r.body["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    let e = loop {
        let e = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;
        if e["state"] == "completed" {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Product 13 is missing (404): the agent says so, and it isn't retried.
    assert_eq!(
        (e["completed"].as_i64(), e["errors"].as_i64()),
        (Some(13), Some(1)),
        "{e}"
    );
    let (extracted, log): (sqlx::types::Json<Value>, sqlx::types::Json<Value>) = sqlx::query_as(
        "select j.extracted, a.log from jobs j join attempts a on a.job_id = j.id
         where j.execution_id = $1::uuid and j.row_index = 1",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let p = mino::server::demo::product(1);
    assert_eq!(extracted.0["title"], p.title);
    assert_eq!(extracted.0["price"], p.price());
    let messages: Vec<&str> = log
        .0
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("Reading the fields")),
        "{messages:?}"
    );
    let class: String = sqlx::query_scalar(
        "select error_class from jobs where execution_id = $1::uuid and row_index = 13",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(class, "not_found");
    let _ = stop.send(true);
}
