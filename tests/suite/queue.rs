//! The jobs queue against a real Postgres: no job is claimed twice however
//! many workers claim at once, an execution's concurrency is never
//! exceeded, a stale worker can't overwrite a newer attempt, expired leases
//! return to the queue, retries wait for their backoff, and a small
//! execution started after a big one is not starved.

#![cfg(feature = "ssr")]

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{spawn_app, TestApp};
use mino::server::db::jobs::{self, Failed, NewExecution, Sample};
use sqlx::PgPool;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);

/// A batch of `rows` sites and a running execution over all of them.
async fn execution(app: &TestApp, rows: usize, concurrency: i32, max_retries: i32) -> Uuid {
    let (c, _) = app
        .user(&format!("u{}@example.com", Uuid::new_v4().simple()), "U")
        .await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "P").await;
    let mut csv = String::from("url\n");
    for i in 0..rows {
        csv.push_str(&format!("https://s{i}.example.com/\n"));
    }
    let b = app.upload(&c, &project, &csv, "").await;
    let batch = Uuid::parse_str(b.body["id"].as_str().unwrap()).unwrap();
    let (seq, org_id): (i64, Uuid) =
        sqlx::query_as("select seq, org_id from batches where id = $1")
            .bind(batch)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let mut conn = app.db.acquire().await.unwrap();
    let id = jobs::insert_execution(
        &mut conn,
        &NewExecution {
            org_id,
            project_id: Uuid::parse_str(&project).unwrap(),
            batch_id: batch,
            instruction_version: 1,
            mode: mino::model::ExecutionMode::Production,
            sample_size: None,
            agent: mino::model::AgentKind::Http,
            concurrency,
            max_retries,
            timeout_secs: 30,
            price_per_job_micros: 0,
            estimated_job_cost_micros: None,
            state: mino::model::ExecutionState::Running,
            created_by: None,
            fields: &[],
            remote_url: None,
            rerun_of: None,
            extractor: mino::model::Extractor::Rules,
            wait_for: None,
            steps: &[],
            keep_pages: false,
            pages_from: None,
            model_route: &[],
            page_token_budget: 6000,
        },
    )
    .await
    .unwrap();
    let n = jobs::enqueue_rows(&mut conn, id, org_id, seq, Sample::All)
        .await
        .unwrap();
    assert_eq!(n as usize, rows);
    id
}

#[sqlx::test]
async fn concurrent_claimers_never_take_the_same_job(db: PgPool) {
    let app = spawn_app(db).await;
    execution(&app, 300, 1000, 0).await;
    let mut tasks = vec![];
    for w in 0..8 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = vec![];
            while let Some(c) = jobs::claim(&db, &format!("w{w}"), LEASE).await.unwrap() {
                mine.push(c.id);
            }
            mine
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "every job claimed");
    assert_eq!(unique.len(), 300, "no job claimed twice");
}

#[sqlx::test]
async fn concurrency_is_never_exceeded(db: PgPool) {
    let app = spawn_app(db).await;
    let e = execution(&app, 50, 3, 0).await;
    // Ten workers race to fill it; nobody completes anything.
    let mut tasks = vec![];
    for w in 0..10 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            for _ in 0..5 {
                if let Some(c) = jobs::claim(&db, &format!("w{w}"), LEASE).await.unwrap() {
                    got.push((c, format!("w{w}")));
                }
            }
            got
        }));
    }
    let mut running = vec![];
    for t in tasks {
        running.extend(t.await.unwrap());
    }
    assert_eq!(running.len(), 3);
    assert_eq!(jobs::counts(&app.db, e).await.unwrap()["running"], 3);
    // Finishing one frees one slot.
    let (done, worker) = &running[0];
    assert!(
        jobs::complete(&app.db, done, worker, &serde_json::json!({}), "")
            .await
            .unwrap()
    );
    assert!(jobs::claim(&app.db, "late", LEASE).await.unwrap().is_some());
    assert!(jobs::claim(&app.db, "later", LEASE)
        .await
        .unwrap()
        .is_none());
}

#[sqlx::test]
async fn a_stale_worker_cannot_overwrite_a_newer_attempt(db: PgPool) {
    let app = spawn_app(db).await;
    let e = execution(&app, 1, 1, 3).await;
    let first = jobs::claim(&app.db, "dead", LEASE).await.unwrap().unwrap();
    // The worker stops renewing (killed); its lease runs out.
    sqlx::query("update jobs set lease_expires_at = now() - interval '1 second' where id = $1")
        .bind(first.id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(jobs::reap_expired(&app.db).await.unwrap(), 1);
    let second = jobs::claim(&app.db, "alive", LEASE).await.unwrap().unwrap();
    assert_eq!((second.id, second.attempt), (first.id, 2));
    // The dead worker wakes up: every write of its attempt is refused.
    assert!(!jobs::renew(&app.db, &first, "dead", LEASE).await.unwrap());
    assert!(!jobs::complete(
        &app.db,
        &first,
        "dead",
        &serde_json::json!({"price": "1"}),
        "old"
    )
    .await
    .unwrap());
    assert_eq!(
        jobs::fail(&app.db, &first, "dead", "timeout", "x", None)
            .await
            .unwrap(),
        Failed::Stale
    );
    assert!(jobs::renew(&app.db, &second, "alive", LEASE).await.unwrap());
    assert!(jobs::complete(
        &app.db,
        &second,
        "alive",
        &serde_json::json!({"price": "2"}),
        "new"
    )
    .await
    .unwrap());
    let (state, raw): (String, String) =
        sqlx::query_as("select state, raw_output from jobs where id = $1")
            .bind(first.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), raw.as_str()), ("succeeded", "new"));
    let outcomes: Vec<(i32, String)> =
        sqlx::query_as("select n, outcome from attempts where job_id = $1 order by n")
            .bind(first.id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        [(1, "lease_expired".into()), (2, "succeeded".into())]
    );
    assert_eq!(jobs::counts(&app.db, e).await.unwrap()["succeeded"], 1);
}

#[sqlx::test]
async fn retries_wait_for_their_backoff_and_stop_at_the_limit(db: PgPool) {
    let app = spawn_app(db).await;
    let e = execution(&app, 1, 1, 1).await;
    let a1 = jobs::claim(&app.db, "w", LEASE).await.unwrap().unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(
        jobs::fail(&app.db, &a1, "w", "http_5xx", "500", Some(later))
            .await
            .unwrap(),
        Failed::Retrying
    );
    // Not claimable until the backoff has passed.
    assert!(jobs::claim(&app.db, "w", LEASE).await.unwrap().is_none());
    sqlx::query("update jobs set available_at = now() where id = $1")
        .bind(a1.id)
        .execute(&app.db)
        .await
        .unwrap();
    let a2 = jobs::claim(&app.db, "w", LEASE).await.unwrap().unwrap();
    assert_eq!(a2.attempt, 2);
    // One retry allowed: the second failure is final.
    assert_eq!(
        jobs::fail(
            &app.db,
            &a2,
            "w",
            "http_5xx",
            "500",
            Some(chrono::Utc::now())
        )
        .await
        .unwrap(),
        Failed::Final
    );
    assert_eq!(jobs::counts(&app.db, e).await.unwrap()["failed"], 1);
    // A permanent error is final at once.
    let e2 = execution(&app, 1, 1, 5).await;
    let b1 = jobs::claim(&app.db, "w", LEASE).await.unwrap().unwrap();
    assert_eq!(
        jobs::fail(&app.db, &b1, "w", "http_4xx", "404", None)
            .await
            .unwrap(),
        Failed::Final
    );
    assert_eq!(jobs::counts(&app.db, e2).await.unwrap()["failed"], 1);
}

#[sqlx::test]
async fn a_small_execution_is_not_starved_by_a_big_one(db: PgPool) {
    let app = spawn_app(db).await;
    let big = execution(&app, 2000, 50, 0).await;
    let small = execution(&app, 10, 50, 0).await;
    // One worker claims and completes one job at a time.
    let mut served = 0;
    let mut small_done_after = None;
    while served < 200 {
        let c = jobs::claim(&app.db, "w", LEASE).await.unwrap().unwrap();
        assert!(jobs::complete(&app.db, &c, "w", &serde_json::json!({}), "")
            .await
            .unwrap());
        served += 1;
        let left = jobs::counts(&app.db, small)
            .await
            .unwrap()
            .get("queued")
            .copied()
            .unwrap_or(0);
        if left == 0 && small_done_after.is_none() {
            small_done_after = Some(served);
        }
    }
    // Round robin: the ten small jobs are done within the first ~20 claims.
    assert!(
        small_done_after.unwrap() <= 21,
        "small finished after {small_done_after:?}"
    );
    assert!(jobs::counts(&app.db, big).await.unwrap()["queued"] > 1000);
}

#[sqlx::test]
async fn organizations_take_turns_however_many_executions_they_run(db: PgPool) {
    let app = spawn_app(db).await;
    // Organization A runs three executions, organization B one.
    let a1 = execution(&app, 30, 50, 0).await;
    let (org_a, project, batch, seq): (Uuid, Uuid, Uuid, i64) = sqlx::query_as(
        "select e.org_id, e.project_id, e.batch_id, b.seq from executions e
         join batches b on b.id = e.batch_id where e.id = $1",
    )
    .bind(a1)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let mut conn = app.db.acquire().await.unwrap();
    for _ in 0..2 {
        let id = jobs::insert_execution(
            &mut conn,
            &NewExecution {
                org_id: org_a,
                project_id: project,
                batch_id: batch,
                instruction_version: 1,
                mode: mino::model::ExecutionMode::Production,
                sample_size: None,
                agent: mino::model::AgentKind::Http,
                concurrency: 50,
                max_retries: 0,
                timeout_secs: 30,
                price_per_job_micros: 0,
                estimated_job_cost_micros: None,
                state: mino::model::ExecutionState::Running,
                created_by: None,
                fields: &[],
                remote_url: None,
                rerun_of: None,
                extractor: mino::model::Extractor::Rules,
                wait_for: None,
                steps: &[],
                keep_pages: false,
                pages_from: None,
                model_route: &[],
                page_token_budget: 6000,
            },
        )
        .await
        .unwrap();
        jobs::enqueue_rows(&mut conn, id, org_a, seq, Sample::All)
            .await
            .unwrap();
    }
    drop(conn);
    let b = execution(&app, 30, 50, 0).await;
    // One claim of one job at a time: B gets every other turn, not one in
    // four.
    let mut for_b = 0;
    for _ in 0..20 {
        let c = jobs::claim(&app.db, "w", LEASE).await.unwrap().unwrap();
        if c.execution_id == b {
            for_b += 1;
        }
    }
    assert_eq!(for_b, 10, "organization B got {for_b} of 20 claims");
}
