//! A browser run on a server without Chromium is refused when it starts,
//! with BROWSER_UNAVAILABLE and what to install. Its own test binary: it
//! points `MINO_CHROMIUM` at nothing for the whole process.

#![cfg(feature = "ssr")]

mod common;

use common::spawn_app;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test]
async fn a_browser_run_without_chromium_is_refused_when_it_starts(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    std::env::set_var("MINO_CHROMIUM", "/nonexistent/chromium");
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 1, "agent": "browser"}),
        )
        .await;
    std::env::remove_var("MINO_CHROMIUM");
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "BROWSER_UNAVAILABLE"),
        "{:?}",
        r.body
    );
    let message = r.body["error"].as_str().unwrap();
    assert!(
        message.contains("apt-get install chromium") && message.contains("MINO_CHROMIUM"),
        "{message}"
    );
    let runs: i64 = sqlx::query_scalar("select count(*) from executions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(runs, 0, "nothing half-written");
}
