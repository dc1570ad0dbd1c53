//! Request rate limits: per API key, per organization (shared by its keys),
//! per signed-in person; the headers on every counted response; 429 with
//! Retry-After past the limit; and one limit across two servers on one
//! database.

#![cfg(feature = "ssr")]

use crate::common;

use common::{spawn_app, spawn_app_with, TestApp};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

fn header(r: &common::Res, name: &str) -> i64 {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits out the end of the current minute when it is close, so a test's
/// requests fall in one window.
async fn fresh_window(db: &PgPool) {
    let left: f64 = sqlx::query_scalar(
        "select extract(epoch from date_trunc('minute', now()) + interval '1 minute' - now())::float8",
    )
    .fetch_one(db)
    .await
    .unwrap();
    if left < 10.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(left + 0.2)).await;
    }
}

/// An owner, their org with the given limits, and `keys` read keys.
async fn org_with_limits(
    app: &TestApp,
    per_org: i32,
    per_key: i32,
    keys: usize,
) -> (String, Vec<String>) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .call(
            &c,
            Method::PUT,
            &format!("/api/v1/orgs/{org}/limits"),
            Some(json!({"max_projects": 10, "max_executions_per_month": 10,
                        "api_requests_per_minute": per_org, "key_requests_per_minute": per_key})),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["key_requests_per_minute"], per_key);
    let mut secrets = vec![];
    for _ in 0..keys {
        secrets.push(app.key(&c, &org, &["read"]).await);
    }
    (org, secrets)
}

#[sqlx::test]
async fn a_key_past_its_limit_gets_429_with_headers(db: PgPool) {
    let app = spawn_app(db).await;
    let (org, keys) = org_with_limits(&app, 1000, 3, 1).await;
    fresh_window(&app.db).await;
    let path = format!("/api/v1/orgs/{org}/projects");
    for remaining in [2, 1, 0] {
        let r = app.with_key(Method::GET, &path, None, &keys[0]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(header(&r, "ratelimit-limit"), 3);
        assert_eq!(header(&r, "ratelimit-remaining"), remaining);
        let reset = header(&r, "ratelimit-reset");
        assert!((1..=60).contains(&reset), "{reset}");
    }
    let r = app.with_key(Method::GET, &path, None, &keys[0]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.code(), "RATE_LIMIT_EXCEEDED");
    assert_eq!(header(&r, "ratelimit-remaining"), 0);
    let retry = header(&r, "retry-after");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.body["details"]["retry_after_secs"], retry);
}

#[sqlx::test]
async fn keys_share_their_organizations_limit(db: PgPool) {
    let app = spawn_app(db).await;
    let (org, keys) = org_with_limits(&app, 4, 100, 2).await;
    fresh_window(&app.db).await;
    let path = format!("/api/v1/orgs/{org}");
    for key in [&keys[0], &keys[1], &keys[0], &keys[1]] {
        let r = app.with_key(Method::GET, &path, None, key).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // The organization's budget is spent for both keys; the tighter limit
    // is the one reported.
    for key in &keys {
        let r = app.with_key(Method::GET, &path, None, key).await;
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "ratelimit-limit"), 4);
    }
}

#[sqlx::test]
async fn two_servers_on_one_database_enforce_one_limit(db: PgPool) {
    let first = spawn_app(db.clone()).await;
    let second = spawn_app(db).await;
    let (org, keys) = org_with_limits(&first, 1000, 4, 1).await;
    fresh_window(&first.db).await;
    let path = format!("/api/v1/orgs/{org}");
    for app in [&first, &second, &first, &second] {
        let r = app.with_key(Method::GET, &path, None, &keys[0]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for app in [&first, &second] {
        let r = app.with_key(Method::GET, &path, None, &keys[0]).await;
        assert_eq!(r.status, 429);
    }
}

#[sqlx::test]
async fn people_have_a_limit_of_their_own_and_anonymous_calls_are_not_counted(db: PgPool) {
    let app = spawn_app_with(db, None, |c| c.user_requests_per_minute = 2).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    fresh_window(&app.db).await;
    for remaining in [1, 0] {
        let r = app.get(&c, "/api/v1/me").await;
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "ratelimit-remaining"), remaining);
    }
    let r = app.get(&c, "/api/v1/me").await;
    assert_eq!(r.status, 429);
    // No caller, no count (signing in has its own throttle).
    let anon = common::client();
    let r = app.get(&anon, "/api/v1/me").await;
    assert_eq!(r.status, 401);
    assert!(r.headers.get("ratelimit-limit").is_none());
}

#[sqlx::test]
async fn limits_are_checked_like_any_input(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .call(
            &c,
            Method::PUT,
            &format!("/api/v1/orgs/{org}/limits"),
            Some(json!({"max_projects": 10, "max_executions_per_month": 10,
                        "api_requests_per_minute": 0, "key_requests_per_minute": -1})),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("api_requests_per_minute").is_some(), "{:?}", r.body);
    assert!(r.field("key_requests_per_minute").is_some(), "{:?}", r.body);
}
