//! Webhooks against a local receiver: deliveries are signed (checked here
//! with an independent HMAC), retried on 500, a hook is disabled after 5
//! failures in a row and delivers again once re-enabled, a test event goes
//! at once, private addresses are refused unless allowed, other
//! organizations get 404, and deliveries pending when a `mino` process is
//! killed are sent by the next one.

#![cfg(feature = "ssr")]

use crate::common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::{spawn_app, spawn_app_with, TestApp, SECRET_KEY};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;

const SECRET: &str = "whsec_test_0123456789abcdef";

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_string()
    }
}

/// What the receiver answers with, and what it was sent.
type ReceiverState = (Arc<AtomicU16>, Arc<Mutex<Vec<Received>>>);

/// A receiver answering with whatever status `answer` holds.
struct Receiver {
    url: String,
    answer: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let answer = Arc::new(AtomicU16::new(status));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = (answer.clone(), seen.clone());
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State((answer, seen)): State<ReceiverState>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        seen.lock().unwrap().push(Received { headers, body });
                        let status = StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap();
                        (status, format!("receiver says {}", status.as_u16()))
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hook"),
            answer,
            seen,
        }
    }
    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
    fn of(&self, event: &str) -> Vec<Received> {
        self.seen()
            .into_iter()
            .filter(|r| r.header("mino-event") == event)
            .collect()
    }
}

/// The receiver's side of the signature: HMAC-SHA256 over `t.body`.
fn verify(r: &Received, secret: &str) {
    let header = r.header("mino-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("malformed signature header {header:?}"));
    let t: i64 = t.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - t).abs() < 300,
        "signed now"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    assert_eq!(hex::encode(mac.finalize().into_bytes()), v1, "signature");
}

/// Runs a dispatcher for the app's database until the test ends.
fn dispatcher(app: &TestApp) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut settings = mino::server::webhooks::Settings::new(true, Duration::from_millis(150));
    settings.timeout = Duration::from_secs(5);
    mino::server::webhooks::spawn(
        app.db.clone(),
        settings,
        mino::server::live::Hub::start(app.db.clone(), stopped.clone()),
        stopped,
    );
    stop
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hook(app: &TestApp, c: &reqwest::Client, org: &str, url: &str, events: Value) -> String {
    let r = app
        .post(
            c,
            &format!("/api/v1/orgs/{org}/webhooks"),
            json!({"url": url, "events": events, "secret": SECRET, "description": "test"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["secret"],
        Value::Null,
        "a given secret is not echoed"
    );
    assert_eq!(r.body["webhook"]["secret_hint"], "…cdef");
    r.body["webhook"]["id"].as_str().unwrap().to_string()
}

/// A batch of two rows in a new organization: (owner client, org, batch).
async fn org_with_batch(app: &TestApp) -> (reqwest::Client, String, String) {
    let (c, _) = app.user("owner@example.com", "Olive").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Shop").await;
    let b = app
        .upload(
            &c,
            &project,
            "url,gt_price\nhttps://a.example.com,1\nhttps://b.example.com,2\n",
            "name=B",
        )
        .await;
    assert_eq!(b.status, 201, "{:?}", b.body);
    (c, org, b.body["id"].as_str().unwrap().to_string())
}

/// Starting a run queues `execution.started` (the workers need not run).
async fn start_run(app: &TestApp, c: &reqwest::Client, batch: &str) -> String {
    let r = app
        .post(
            c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[sqlx::test]
async fn a_run_sends_signed_started_completed_and_job_failed_events(db: PgPool) {
    let app = spawn_app(db).await;
    let receiver = Receiver::start(200).await;
    let _stop = dispatcher(&app);
    // The demo run's owner and org come from the shared helper; register
    // the hook in that org before the run by creating the org first.
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let all = json!([
        "execution.started",
        "execution.completed",
        "execution.failed",
        "job.failed"
    ]);
    let id = hook(&app, &c, &org, &receiver.url, all).await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let stop_workers = common::spawn_workers(&app);
    // Rows 1–30 of the demo shop include #13 (404) and #29 (500).
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 30, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let execution = r.body["id"].as_str().unwrap().to_string();
    wait_for("execution.completed", 60, || {
        !receiver.of("execution.completed").is_empty()
    })
    .await;
    let _ = stop_workers.send(true);

    let failed: Vec<i64> = sqlx::query_scalar(
        "select id from jobs where execution_id = $1::uuid and state = 'failed' order by id",
    )
    .bind(&execution)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        failed.len() >= 2,
        "the demo rows #13 and #29 fail: {failed:?}"
    );
    wait_for("a job.failed per failed job", 20, || {
        receiver.of("job.failed").len() == failed.len()
    })
    .await;

    for r in receiver.seen() {
        verify(&r, SECRET);
        let body = r.json();
        assert_eq!(body["type"], r.header("mino-event"));
        assert_eq!(body["id"].as_str().unwrap(), r.header("mino-event-id"));
        assert_eq!(body["organization"]["id"], org.as_str());
        assert_eq!(r.header("content-type"), "application/json");
    }
    let started = receiver.of("execution.started");
    assert_eq!(started.len(), 1);
    assert_eq!(
        started[0].json()["data"]["execution"]["id"],
        execution.as_str()
    );
    let completed = receiver.of("execution.completed");
    assert_eq!(completed.len(), 1, "one event, however many processes");
    let body = completed[0].json();
    assert_eq!(body["data"]["execution"]["state"], "completed");
    let summary = &body["data"]["summary"];
    assert_eq!(summary["jobs"], 30);
    assert_eq!(summary["errors"], failed.len() as i64);
    assert!(summary["accuracy"].as_f64().is_some(), "{summary}");
    assert!(
        summary["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "price"),
        "{summary}"
    );
    let mut job_ids: Vec<i64> = receiver
        .of("job.failed")
        .iter()
        .map(|r| r.json()["data"]["job"]["id"].as_i64().unwrap())
        .collect();
    job_ids.sort();
    assert_eq!(job_ids, failed);
    let job = receiver.of("job.failed")[0].json();
    assert!(job["data"]["job"]["url"]
        .as_str()
        .unwrap()
        .contains("/demo/"));
    assert!(job["data"]["job"]["error_class"].is_string());
    assert!(receiver.of("execution.failed").is_empty());

    // The log says what happened, attempt by attempt.
    let log = app
        .get(&c, &format!("/api/v1/webhooks/{id}/deliveries?limit=100"))
        .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), receiver.seen().len());
    for d in items {
        assert_eq!(d["state"], "succeeded");
        assert_eq!(d["attempt_log"][0]["status"], 200);
        assert_eq!(d["attempt_log"][0]["response_excerpt"], "receiver says 200");
    }
    let hook = app.get(&c, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(hook.body["last_delivery_state"], "succeeded");
}

#[sqlx::test]
async fn a_failing_receiver_is_retried_and_disabled_after_five_failures(db: PgPool) {
    let app = spawn_app(db).await;
    let receiver = Receiver::start(500).await;
    let _stop = dispatcher(&app);
    let (c, org, batch) = org_with_batch(&app).await;
    let id = hook(&app, &c, &org, &receiver.url, json!(["execution.started"])).await;

    // Fails twice, then the receiver recovers: delivered on the third try.
    start_run(&app, &c, &batch).await;
    wait_for("two failed attempts", 20, || receiver.seen().len() >= 2).await;
    receiver.answer.store(200, Ordering::SeqCst);
    wait_for("the retry that succeeds", 20, || receiver.seen().len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = app
        .get(&c, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    let d = &log.body["items"][0];
    assert_eq!(d["state"], "succeeded", "{d}");
    let statuses: Vec<i64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses.len(), receiver.seen().len());
    assert_eq!(*statuses.last().unwrap(), 200);
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 500));
    // Every retry sent the same bytes, under one delivery id.
    let seen = receiver.seen();
    assert!(seen.iter().all(|r| r.body == seen[0].body));
    assert!(seen
        .iter()
        .all(|r| r.header("mino-delivery") == seen[0].header("mino-delivery")));
    let h = app.get(&c, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(
        h.body["consecutive_failures"], 0,
        "a success resets the count"
    );

    // Now it fails for good: five failures in a row disable the hook.
    receiver.answer.store(500, Ordering::SeqCst);
    let before = receiver.seen().len();
    start_run(&app, &c, &batch).await;
    wait_for("five failures", 30, || receiver.seen().len() >= before + 5).await;
    // Unless disabled, the sixth try would come within 2.5 s.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        receiver.seen().len(),
        before + 5,
        "a disabled hook gets nothing more"
    );
    let h = app.get(&c, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(h.body["enabled"], false, "{:?}", h.body);
    assert_eq!(h.body["consecutive_failures"], 5);
    let reason = h.body["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("5 failed deliveries in a row") && reason.contains("HTTP 500"),
        "{reason}"
    );
    let log = app
        .get(&c, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    assert_eq!(log.body["items"][0]["state"], "pending", "kept for later");

    // Fixed and turned on again: the kept delivery goes out.
    receiver.answer.store(200, Ordering::SeqCst);
    let r = app
        .patch(
            &c,
            &format!("/api/v1/webhooks/{id}"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["disabled_reason"], Value::Null);
    wait_for("the kept delivery", 20, || {
        receiver.seen().len() > before + 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = app
        .get(&c, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    assert_eq!(log.body["items"][0]["state"], "succeeded");

    // Redelivering a finished delivery sends it again.
    let delivery = log.body["items"][0]["id"].as_str().unwrap().to_string();
    let n = receiver.seen().len();
    let r = app
        .post(
            &c,
            &format!("/api/v1/webhook-deliveries/{delivery}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    wait_for("the redelivery", 20, || receiver.seen().len() > n).await;

    // Operators see the attempts and the backlog in /metrics.
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert!(sample("mino_webhook_attempts_total{outcome=\"retrying\"}") >= 7.0);
    assert!(sample("mino_webhook_attempts_total{outcome=\"succeeded\"}") >= 2.0);
    assert!(sample("mino_webhook_deliveries_pending") >= 0.0);
}

#[sqlx::test]
async fn a_test_event_goes_at_once_even_to_a_disabled_hook(db: PgPool) {
    let app = spawn_app(db).await;
    let receiver = Receiver::start(200).await;
    let _stop = dispatcher(&app);
    let (c, org, _) = org_with_batch(&app).await;
    let id = hook(&app, &c, &org, &receiver.url, json!(["job.failed"])).await;
    let r = app
        .patch(
            &c,
            &format!("/api/v1/webhooks/{id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["disabled_reason"], "Disabled by Olive");
    let r = app
        .post(&c, &format!("/api/v1/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["event"], "webhook.test");
    wait_for("the test event", 10, || !receiver.seen().is_empty()).await;
    let got = &receiver.seen()[0];
    verify(got, SECRET);
    assert_eq!(got.json()["type"], "webhook.test");
    assert_eq!(got.json()["data"]["webhook_id"], id.as_str());

    // A failing test is tried once and does not count towards disabling.
    receiver.answer.store(503, Ordering::SeqCst);
    let r = app
        .patch(
            &c,
            &format!("/api/v1/webhooks/{id}"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    app.post(&c, &format!("/api/v1/webhooks/{id}/test"), json!({}))
        .await;
    wait_for("the second test", 10, || receiver.seen().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.seen().len(), 2, "no retry for a test");
    let log = app
        .get(&c, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    assert_eq!(log.body["items"][0]["state"], "failed");
    assert_eq!(log.body["items"][0]["last_status"], 503);
    let h = app.get(&c, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(h.body["consecutive_failures"], 0);
}

#[sqlx::test]
async fn registration_checks_its_input_and_who_asks(db: PgPool) {
    // As in production with an external database: private targets refused.
    let app = spawn_app_with(db, None, |c| c.allow_private_targets = false).await;
    let (c, org, _) = org_with_batch(&app).await;
    let path = format!("/api/v1/orgs/{org}/webhooks");
    for (body, field) in [
        (json!({"url": "http://127.0.0.1:9/hook"}), "url"),
        (json!({"url": "http://localhost/hook"}), "url"),
        (json!({"url": "http://192.168.1.5/hook"}), "url"),
        (json!({"url": "ftp://example.com/x"}), "url"),
        (
            json!({"url": "https://example.com/h", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["run.exploded"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com/h", "secret": "short"}),
            "secret",
        ),
    ] {
        let r = app.post(&c, &path, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert_eq!(r.code(), "VALIDATION_ERROR");
        assert!(r.field(field).is_some(), "{body}: {:?}", r.body);
    }
    let r = app
        .post(
            &c,
            &path,
            json!({"url": "https://example.com/h", "extra": 1}),
        )
        .await;
    assert_eq!(r.status, 400, "unknown fields are refused: {:?}", r.body);

    // No secret given: Mino makes one and shows it once.
    let r = app
        .post(&c, &path, json!({"url": "https://hooks.example.com/mino"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        r.body["webhook"]["events"].as_array().unwrap().len(),
        mino::model::WEBHOOK_EVENTS.len(),
        "every event by default"
    );
    let id = r.body["webhook"]["id"].as_str().unwrap().to_string();
    let listed = app.get(&c, &path).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(!listed.body.to_string().contains(secret), "never listed");

    // Members can't manage hooks; another organization can't see them.
    let (member, _) = app.user("member@example.com", "Mem").await;
    app.join(&c, &org, &member, "member@example.com", "member")
        .await;
    assert_eq!(app.get(&member, &path).await.status, 403);
    assert_eq!(
        app.get(&member, &format!("/api/v1/webhooks/{id}"))
            .await
            .status,
        403
    );
    let (outsider, _) = app.user("out@example.com", "Out").await;
    app.org(&outsider, "Other").await;
    for path in [
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
    ] {
        assert_eq!(app.get(&outsider, &path).await.status, 404, "{path}");
    }
    let r = app
        .post(&outsider, &format!("/api/v1/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        app.delete(&outsider, &format!("/api/v1/webhooks/{id}"))
            .await
            .status,
        404
    );
    // An admin key manages them.
    let key = app.key(&c, &org, &["admin"]).await;
    let r = app
        .with_key(
            reqwest::Method::GET,
            &format!("/api/v1/webhooks/{id}"),
            None,
            &key,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app.delete(&c, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        app.get(&c, &format!("/api/v1/webhooks/{id}")).await.status,
        404
    );
}

/// A `mino worker` that runs no jobs, only the webhook dispatcher, whose
/// first retry waits `retry_secs`.
fn mino_worker(db: &PgPool, retry_secs: &str) -> tokio::process::Child {
    let url = mino::server::db::url_for(&db.connect_options());
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mino"))
        .arg("worker")
        .env("DATABASE_URL", url)
        .env("MINO_SECRET_KEY", SECRET_KEY)
        .env("MINO_WORKER_SLOTS", "0")
        .env("MINO_ALLOW_PRIVATE_TARGETS", "1")
        .env("MINO_WEBHOOK_RETRY_SECS", retry_secs)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start mino worker")
}

#[sqlx::test]
async fn deliveries_pending_when_mino_is_killed_are_sent_after_a_restart(db: PgPool) {
    let app = spawn_app(db).await;
    let receiver = Receiver::start(500).await;
    let (c, org, batch) = org_with_batch(&app).await;
    let id = hook(&app, &c, &org, &receiver.url, json!(["execution.started"])).await;

    // Queued while no dispatcher runs anywhere: it waits in Postgres.
    start_run(&app, &c, &batch).await;
    // Its first retry is 20 s away, so it is killed with the delivery
    // waiting in the queue, not in the middle of sending it (a claim cut
    // off mid-send is taken again when its 60 s lease runs out).
    let mut first = mino_worker(&app.db, "20");
    let start = Instant::now();
    loop {
        let attempts: Option<i32> = sqlx::query_scalar(
            "select attempts from webhook_deliveries where state = 'pending' and attempts > 0",
        )
        .fetch_optional(&app.db)
        .await
        .unwrap();
        if attempts.is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no failed attempt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.seen().len(), 1);
    first.kill().await.unwrap();
    first.wait().await.unwrap();
    let log = app
        .get(&c, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    let pending = &log.body["items"][0];
    assert_eq!(pending["state"], "pending", "{pending}");
    let delivery = pending["id"].as_str().unwrap().to_string();

    receiver.answer.store(200, Ordering::SeqCst);
    let tried = receiver.seen().len();
    // Due now: the restarted process needn't wait out the first's backoff.
    sqlx::query("update webhook_deliveries set next_attempt_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    let mut second = mino_worker(&app.db, "0.2");
    wait_for("the delivery after the restart", 30, || {
        receiver
            .seen()
            .iter()
            .skip(tried)
            .any(|r| r.headers["mino-delivery"] == delivery.as_str())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.kill().await.unwrap();
    let log = app
        .get(&c, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    assert_eq!(log.body["items"][0]["id"], delivery.as_str());
    assert_eq!(log.body["items"][0]["state"], "succeeded");
    assert_eq!(
        log.body["items"].as_array().unwrap().len(),
        1,
        "sent once, not duplicated"
    );
}
