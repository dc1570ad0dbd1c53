//! Live execution monitoring over server-sent events: a subscriber sees
//! complete snapshots with increasing ids while an execution runs, ending
//! with the final one; a reconnect with Last-Event-ID gets the current
//! state at once; other organizations get 404 and strangers 401.

#![cfg(feature = "ssr")]

use crate::common;

use std::time::{Duration, Instant};

use common::{client, spawn_app, TestApp};
use mino::server::executor::{self, Settings};
use mino::server::live::Hub;
use serde_json::{json, Value};
use sqlx::PgPool;

/// (event name, id, data) of each event until the stream closes or
/// `limit` passes.
async fn read_events(res: reqwest::Response, limit: Duration) -> Vec<(String, u64, Value)> {
    let mut res = res;
    let mut buf = String::new();
    let mut events = vec![];
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        let chunk = match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(c))) => c,
            _ => break,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut name, mut id, mut data) = (String::from("message"), 0, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !data.is_empty() {
                events.push((name, id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

async fn demo_execution(app: &TestApp) -> (reqwest::Client, String, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 40, "concurrency": 4, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (c, org, r.body["id"].as_str().unwrap().to_string())
}

#[sqlx::test]
async fn a_subscriber_follows_an_execution_to_its_end(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, id) = demo_execution(&app).await;
    let res = c
        .get(app.url(&format!("/api/v1/executions/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // Workers start after the subscription: every change is seen live.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    executor::spawn(
        app.db.clone(),
        Settings {
            slots: 4,
            allow_private_targets: true,
            demo_origin: None,
            worker_id: "w".into(),
            lease: executor::LEASE,
        },
        Hub::start(app.db.clone(), stopped.clone()),
        stopped,
    );
    let events = read_events(res, Duration::from_secs(40)).await;
    let _ = stop.send(true);
    assert!(events.len() >= 3, "only {} events", events.len());
    let ids: Vec<u64> = events.iter().map(|e| e.1).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not increasing: {ids:?}"
    );
    let done: Vec<i64> = events
        .iter()
        .map(|e| {
            e.2["execution"]["completed"].as_i64().unwrap()
                + e.2["execution"]["errors"].as_i64().unwrap()
        })
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {done:?}"
    );
    assert!(done[0] < 40, "the first snapshot was already final");
    let (name, last_id, last) = events.last().unwrap().clone();
    assert_eq!(name, "end");
    assert_eq!(last["last"], true);
    assert_eq!(last["execution"]["state"], "completed");
    // Counts come from the database: product 13 is missing, 29 is broken.
    assert_eq!(
        (
            last["execution"]["completed"].as_i64(),
            last["execution"]["errors"].as_i64()
        ),
        (Some(38), Some(2))
    );
    assert!(
        last["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "job_failed"),
        "{}",
        last["events"]
    );
    assert!(events.iter().all(|e| e.0 == "snapshot" || e.1 == last_id));

    // Reconnecting with the last id seen: the current state at once, then
    // the stream closes (the execution is over).
    let t = Instant::now();
    let res = c
        .get(app.url(&format!("/api/v1/executions/{id}/events")))
        .header("Last-Event-ID", last_id.to_string())
        .send()
        .await
        .unwrap();
    let again = read_events(res, Duration::from_secs(5)).await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the stream did not close"
    );
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0, "end");
    assert_eq!(again[0].2["execution"]["completed"], 38);
}

#[sqlx::test]
async fn control_actions_reach_subscribers_with_who_did_them(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, id) = demo_execution(&app).await;
    let res = c
        .get(app.url(&format!("/api/v1/executions/{id}/events")))
        .send()
        .await
        .unwrap();
    let reading = tokio::spawn(read_events(res, Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app
        .post(&c, &format!("/api/v1/executions/{id}/pause"), json!({}))
        .await;
    assert_eq!(r.body["state"], "paused");
    let events = reading.await.unwrap();
    let paused = events
        .iter()
        .find(|e| e.2["execution"]["state"] == "paused")
        .expect("a paused snapshot");
    assert_eq!(paused.2["events"][0]["kind"], "paused");
    assert_eq!(paused.2["events"][0]["actor_name"], "Owen");
}

#[sqlx::test]
async fn strangers_and_other_organizations_cannot_watch(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, _, id) = demo_execution(&app).await;
    let anon = client();
    let r = anon
        .get(app.url(&format!("/api/v1/executions/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    let r = other
        .get(app.url(&format!("/api/v1/executions/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[sqlx::test]
async fn jobs_waiting_out_a_back_off_are_said_to_wait(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org, id) = demo_execution(&app).await;
    // 39 of 40 jobs done; the other failed an attempt with a 429 and may
    // not be tried again for a minute.
    sqlx::query(
        "update jobs set state = 'succeeded', attempt = 1, finished_at = now()
         where execution_id = $1::uuid
           and row_index <> (select min(row_index) from jobs where execution_id = $1::uuid)",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "update jobs set attempt = 1, available_at = now() + interval '60 seconds',
                error = 'HTTP 429 Too Many Requests (Retry-After: 60)'
         where execution_id = $1::uuid
           and row_index = (select min(row_index) from jobs where execution_id = $1::uuid)",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    let res = c
        .get(app.url(&format!("/api/v1/executions/{id}/events")))
        .send()
        .await
        .unwrap();
    let events = read_events(res, Duration::from_secs(2)).await;
    let first = &events.first().expect("a snapshot").2;
    assert_eq!(first["execution"]["queued"], 1, "{first}");
    assert_eq!(first["waiting_retry"]["jobs"], 1, "{first}");
    assert!(
        first["waiting_retry"]["reason"]
            .as_str()
            .unwrap()
            .contains("429"),
        "{first}"
    );
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(first["waiting_retry"]["until"].clone()).unwrap();
    let left = (until - chrono::Utc::now()).num_seconds();
    assert!((50..=60).contains(&left), "{left}");
    // No rate from one snapshot, so no time left either.
    assert_eq!(first["per_minute"], 0.0);
    assert!(first["eta_secs"].is_null());

    // The run page: 97%, not rounded up; the wait said with its reason.
    let slug: String = sqlx::query_scalar("select slug from organizations where id = $1::uuid")
        .bind(&org)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let page = c
        .get(app.url(&format!("/o/{slug}/executions/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("39 of 40 jobs done (97%)"), "{page}");
    assert!(
        page.contains("1 job is waiting to retry") && page.contains("HTTP 429 Too Many Requests"),
        "{page}"
    );
    let eta = page
        .find("data-testid=\"eta\">")
        .map(|at| &page[at..(at + 80).min(page.len())])
        .unwrap_or("");
    assert!(
        eta.contains(">waiting to retry<"),
        "the time left says so: {eta}"
    );
}
