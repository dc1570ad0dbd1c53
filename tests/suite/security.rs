//! Security headers on every kind of response, and the private-address
//! rule as a server applies it by default: its own demo shop is reachable,
//! nothing else on a private address is.

#![cfg(feature = "ssr")]

use crate::common;

use std::time::{Duration, Instant};

use common::{client, spawn_app, spawn_app_at, spawn_workers_with};
use serde_json::json;
use sqlx::PgPool;

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[sqlx::test]
async fn every_response_carries_the_security_headers(db: PgPool) {
    let app = spawn_app(db).await;
    let c = client();

    // A page: its policy names the nonce its inline scripts carry.
    let page = app.open(&c, "/login").await;
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    let html = page.text().await.unwrap();
    let csp = header(&h, "content-security-policy").to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no nonce in {csp}"));
    assert!(nonce.len() >= 16, "{csp}");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry another nonce than its policy"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    // A second page gets a fresh nonce.
    let again = app.open(&c, "/login").await;
    assert_ne!(header(again.headers(), "content-security-policy"), csp);

    // REST (refused and answered), a bundle file, a health check, a missing
    // page: all of them carry the headers.
    for path in [
        "/api/v1/me",
        "/api/v1/openapi.json",
        "/pkg/not-there.js",
        "/healthz",
        "/no/such/page",
    ] {
        let r = app.open(&c, path).await;
        let h = r.headers();
        assert_eq!(header(h, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(h, "x-frame-options"), "DENY", "{path}");
        assert_eq!(
            header(h, "referrer-policy"),
            "strict-origin-when-cross-origin",
            "{path}"
        );
        assert!(
            header(h, "permissions-policy").contains("camera=()"),
            "{path}"
        );
        assert!(
            header(h, "content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }
    // Not a page: nothing may load from it.
    let api = app.open(&c, "/api/v1/openapi.json").await;
    assert!(header(api.headers(), "content-security-policy").starts_with("default-src 'none'"));
    // The demo shop's inline scripts still run.
    let demo = app.open(&c, "/demo/products/3").await;
    assert!(header(demo.headers(), "content-security-policy").contains("'unsafe-inline'"));
}

#[sqlx::test]
async fn https_deployments_ask_for_https_only(db: PgPool) {
    let app = spawn_app_at(db, Some("https://mino.example.com")).await;
    let r = app.open(&client(), "/healthz").await;
    assert!(header(r.headers(), "strict-transport-security").starts_with("max-age=31536000"));
}

#[sqlx::test]
async fn by_default_only_the_demo_shop_is_a_private_target(db: PgPool) {
    let app = common::spawn_app_with(db, None, |c| c.allow_private_targets = false).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let demo = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let project = demo.body["project"]["id"].as_str().unwrap().to_string();
    let demo_batch = demo.body["batch"]["id"].as_str().unwrap().to_string();
    // Same host, other port; same host and port, not the shop; elsewhere
    // on loopback by name.
    let port = app.base.rsplit(':').next().unwrap();
    let other_port: u16 = port.parse::<u16>().unwrap().wrapping_add(1).max(1);
    let csv = format!(
        "url\nhttp://127.0.0.1:{other_port}/demo/products/1\n{}/api/v1/openapi.json\nhttp://localhost:{other_port}/demo/products/2\n",
        app.base
    );
    let other = app.upload(&c, &project, &csv, "name=Internal").await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    let other_batch = other.body["id"].as_str().unwrap().to_string();

    let _workers = spawn_workers_with(&app, false);
    let run = |batch: String, rows: i32| {
        let (app, c) = (&app, &c);
        async move {
            let r = app
                .post(
                    c,
                    &format!("/api/v1/batches/{batch}/executions"),
                    json!({"mode": "test", "sample_size": rows, "max_retries": 0}),
                )
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            let id = r.body["id"].as_str().unwrap().to_string();
            let start = Instant::now();
            loop {
                let e = app.get(c, &format!("/api/v1/executions/{id}")).await.body;
                if e["state"] == "completed" {
                    return (id, e);
                }
                assert!(start.elapsed() < Duration::from_secs(30), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (_, e) = run(demo_batch, 5).await;
    assert_eq!(
        (e["completed"].as_i64(), e["errors"].as_i64()),
        (Some(5), Some(0)),
        "{e}"
    );

    let (id, e) = run(other_batch, 3).await;
    assert_eq!(e["errors"].as_i64(), Some(3), "{e}");
    let classes: Vec<String> = sqlx::query_scalar(
        "select coalesce(error_class, '') from jobs where execution_id = $1::uuid order by row_index",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(classes, vec!["private_target"; 3]);
}
