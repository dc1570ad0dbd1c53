//! Separate `mino worker` processes sharing one Postgres: an execution's
//! concurrency cap holds across three of them (the peak is recorded inside
//! the database on every change), and a worker killed with -9 mid-job
//! loses nothing: its job runs again after the lease expires and ends with
//! exactly one result, while the dead worker's attempt can no longer write.

#![cfg(feature = "ssr")]

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use common::{spawn_app, TestApp, SECRET_KEY};
use mino::server::db::jobs::{self, Claimed};
use serde_json::json;
use sqlx::PgPool;
use tokio::process::{Child, Command};

/// Pages that answer after `delay`; `/hang/{n}` hangs on its first request
/// only (the worker running it will be killed). Also returns how many
/// `/hang` requests arrived.
pub(crate) async fn page_server(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/p/{n}",
            get(move |Path(n): Path<u32>| async move {
                tokio::time::sleep(delay).await;
                Html(format!("<html><head><title>Item {n}</title></head><body><h1>Item {n}</h1></body></html>"))
            }),
        )
        .route(
            "/hang/{n}",
            get(|State(hits): State<Arc<AtomicUsize>>, Path(n): Path<u32>| async move {
                if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
                Html(format!("<html><head><title>Item {n}</title></head></html>"))
            }),
        )
        .with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), counted)
}

pub(crate) fn worker_process(db: &PgPool, slots: usize) -> Child {
    let url = mino::server::db::url_for(&db.connect_options());
    Command::new(env!("CARGO_BIN_EXE_mino"))
        .arg("worker")
        .env("DATABASE_URL", url)
        .env("MINO_SECRET_KEY", SECRET_KEY)
        .env("MINO_WORKER_SLOTS", slots.to_string())
        .env("MINO_ALLOW_PRIVATE_TARGETS", "1")
        .env("MINO_LEASE_SECS", "6")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start mino worker")
}

/// A batch of `urls` in a new project; returns (client, batch id).
async fn batch(app: &TestApp, urls: &[String]) -> (reqwest::Client, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Items").await;
    let mut csv = String::from("url,gt_title\n");
    for (i, u) in urls.iter().enumerate() {
        csv.push_str(&format!("{u},Item {}\n", i + 1));
    }
    let r = app.upload(&c, &project, &csv, "name=items").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (c, r.body["id"].as_str().unwrap().to_string())
}

pub(crate) async fn wait_state(db: &PgPool, id: &str, state: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let now: String = sqlx::query_scalar("select state from executions where id = $1::uuid")
            .bind(id)
            .fetch_one(db)
            .await
            .unwrap();
        if now == state {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "still {now} after {limit:?}, waiting for {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test]
async fn three_worker_processes_never_exceed_the_concurrency_cap(db: PgPool) {
    let app = spawn_app(db).await;
    let (pages, _) = page_server(Duration::from_millis(60)).await;
    let urls: Vec<String> = (1..=240).map(|n| format!("{pages}/p/{n}")).collect();
    let (c, batch) = batch(&app, &urls).await;
    // Every change to jobs records how many are running at that moment,
    // inside the database: no sample can miss a peak.
    sqlx::raw_sql(
        "create table running_samples (n bigint not null);
         create function sample_running() returns trigger language plpgsql as $$
         begin
             insert into running_samples select count(*) from jobs where state = 'running';
             return null;
         end $$;
         create trigger sample_running after update on jobs
             for each statement execute function sample_running();",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let mut workers: Vec<Child> = (0..3).map(|_| worker_process(&app.db, 10)).collect();
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "production", "concurrency": 7}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    wait_state(&app.db, &id, "completed", Duration::from_secs(90)).await;

    let (peak, samples): (i64, i64) =
        sqlx::query_as("select max(n), count(*) from running_samples")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let owners: i64 = sqlx::query_scalar(
        "select count(distinct worker) from attempts a join jobs j on j.id = a.job_id
         where j.execution_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let succeeded: i64 = sqlx::query_scalar(
        "select count(*) from jobs where execution_id = $1::uuid and state = 'succeeded'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    eprintln!("3 processes x 10 slots, cap 7: peak {peak} running over {samples} samples; {owners} workers ran jobs");
    assert_eq!(succeeded, 240);
    assert_eq!(owners, 3, "every process took part");
    assert!(
        peak <= 7,
        "the cap of 7 was exceeded: {peak} running at once"
    );
    assert!(
        peak >= 5,
        "the workers barely ran in parallel (peak {peak})"
    );
    for w in &mut workers {
        w.start_kill().unwrap();
    }
}

#[sqlx::test]
async fn a_killed_worker_loses_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (pages, hang_hits) = page_server(Duration::ZERO).await;
    let (c, batch) = batch(&app, &[format!("{pages}/hang/1")]).await;
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "production", "max_retries": 2}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();

    // The first worker takes the job and hangs on the page.
    let mut first = worker_process(&app.db, 5);
    let start = Instant::now();
    let dead_owner: String = loop {
        let owner: Option<String> = sqlx::query_scalar(
            "select lease_owner from jobs where execution_id = $1::uuid and state = 'running'",
        )
        .bind(&id)
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .flatten();
        if let Some(o) = owner {
            break o;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the job was never claimed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Killed only once its request is in flight (a claim comes before the
    // fetch; killing in between would leave the hanging first request to
    // the second worker).
    while hang_hits.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the page was never requested"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    // Another process finds the expired lease and runs the job again.
    let _second = worker_process(&app.db, 5);
    wait_state(&app.db, &id, "completed", Duration::from_secs(40)).await;
    let attempts: Vec<(i32, String, Option<String>)> = sqlx::query_as(
        "select a.n, a.worker, a.outcome from attempts a join jobs j on j.id = a.job_id
         where j.execution_id = $1::uuid order by a.n",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        (attempts[0].1.as_str(), attempts[0].2.as_deref()),
        (dead_owner.as_str(), Some("lease_expired"))
    );
    assert_ne!(attempts[1].1, dead_owner);
    assert_eq!(attempts[1].2.as_deref(), Some("succeeded"));
    let (job_id, state, extracted): (i64, String, sqlx::types::Json<serde_json::Value>) =
        sqlx::query_as("select id, state, extracted from jobs where execution_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(state, "succeeded");
    assert_eq!(extracted.0["title"], "Item 1");

    // Had the dead worker woken up, its first attempt could not write.
    let late = Claimed {
        id: job_id,
        execution_id: id.parse().unwrap(),
        row_index: 0,
        attempt: 1,
        site_url: String::new(),
        inputs: Default::default(),
        ground_truth: Default::default(),
    };
    assert!(
        !jobs::complete(&app.db, &late, &dead_owner, &json!({"title": "stale"}), "")
            .await
            .unwrap()
    );
    let extracted: sqlx::types::Json<serde_json::Value> =
        sqlx::query_scalar("select extracted from jobs where id = $1")
            .bind(job_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(extracted.0["title"], "Item 1");
}
