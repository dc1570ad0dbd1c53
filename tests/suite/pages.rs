//! Kept pages and the snapshot source over the real router and Postgres:
//! a test run keeps the page of every attempt (served sandboxed, to its
//! organization only); a snapshot run re-reads those pages without a
//! single request to the site, reproduces the values, and gives new ones
//! after a rule change. Also the browser settings' validation and the
//! retention of pages and screenshots.

#![cfg(feature = "ssr")]

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::response::Html;
use common::{counting_shop, spawn_app, spawn_workers, TestApp};
use mino::server::demo::product;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn finish(app: &TestApp, c: &reqwest::Client, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let e = app.get(c, &format!("/api/v1/executions/{id}")).await.body;
        if e["state"] == "completed" {
            return e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run did not finish: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each job's extracted values, in row order.
async fn values(app: &TestApp, c: &reqwest::Client, id: &str) -> Vec<Value> {
    let jobs = app
        .get(c, &format!("/api/v1/executions/{id}/jobs"))
        .await
        .body;
    let mut items = jobs["items"].as_array().unwrap().clone();
    items.sort_by_key(|j| j["row_index"].as_i64());
    items.iter().map(|j| j["extracted"].clone()).collect()
}

#[sqlx::test]
async fn a_snapshot_run_rereads_kept_pages_without_fetching(db: PgPool) {
    let app = spawn_app(db).await;
    let (shop, hits) = counting_shop().await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Shop").await;
    let mut csv = String::from("url,gt_title,gt_price\n");
    for n in [1, 2, 3] {
        let p = product(n);
        csv.push_str(&format!("{shop}/p/{n},{},{}\n", p.title, p.price()));
    }
    let r = app.upload(&c, &project, &csv, "").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let stop = spawn_workers(&app);

    // A test run keeps every page it read.
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let first = r.body["id"].as_str().unwrap().to_string();
    let e = finish(&app, &c, &first).await;
    assert_eq!(e["keeps_pages"], true);
    assert_eq!(e["extractor"], "rules");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let fetched = values(&app, &c, &first).await;
    assert_eq!(fetched[0]["price"], json!(product(1).price()));

    // The kept page, sandboxed, to the organization only.
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{first}/jobs"))
        .await
        .body;
    let job = &jobs["items"][0];
    let detail = app
        .get(&c, &format!("/api/v1/jobs/{}", job["id"]))
        .await
        .body;
    let attempt = &detail["attempts"][0];
    assert_eq!(
        attempt["screenshot_url"],
        Value::Null,
        "http takes no picture"
    );
    let page_url = attempt["page_url"]
        .as_str()
        .expect("a kept page")
        .to_string();
    let r = app.open(&c, &page_url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("sandbox"), "{csp}");
    assert!(csp.contains("script-src 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    let row_url = job["url"].as_str().unwrap();
    assert!(
        html.contains(&format!("<base href=\"{row_url}\">")),
        "{}",
        &html[..300.min(html.len())]
    );
    assert!(html.contains(&product(1).title));
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    assert_eq!(app.open(&other, &page_url).await.status(), 404);
    assert_eq!(
        app.open(&c, "/api/v1/attempts/999999999/page")
            .await
            .status(),
        404
    );

    // Re-extracted from those pages: the same values, no request made.
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "agent": "snapshot", "from_execution": first}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["agent"], "snapshot");
    assert_eq!(r.body["pages_from"], json!(first));
    let again = r.body["id"].as_str().unwrap().to_string();
    let e = finish(&app, &c, &again).await;
    assert_eq!(
        (e["total"].as_i64(), e["completed"].as_i64()),
        (Some(3), Some(3))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the snapshot run fetched");
    assert_eq!(values(&app, &c, &again).await, fetched);
    // Its attempts say where the page came from.
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{again}/jobs"))
        .await
        .body;
    let detail = app
        .get(&c, &format!("/api/v1/jobs/{}", jobs["items"][0]["id"]))
        .await
        .body;
    let log = detail["attempts"][0]["log"].to_string();
    assert!(log.contains("nothing fetched"), "{log}");

    // After a rule change, the same pages give the new values.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/title"),
            json!({"rule": {"kind": "css", "selector": "footer p"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "from_execution": again}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["pages_from"],
        json!(first),
        "a snapshot of a snapshot reads the original pages"
    );
    let third = r.body["id"].as_str().unwrap().to_string();
    finish(&app, &c, &third).await;
    let changed = values(&app, &c, &third).await;
    assert_eq!(
        changed[0]["title"],
        json!("Free shipping over $50. Prices include VAT.")
    );
    assert_eq!(changed[0]["price"], fetched[0]["price"]);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let _ = stop.send(true);

    // What a snapshot run needs, named.
    for (body, field) in [
        (
            json!({"mode": "test", "agent": "snapshot"}),
            "from_execution",
        ),
        (
            json!({"mode": "test", "agent": "snapshot", "from_execution": uuid::Uuid::new_v4()}),
            "from_execution",
        ),
        (
            json!({"mode": "test", "agent": "http", "from_execution": first}),
            "from_execution",
        ),
        (json!({"mode": "test", "extractor": "magic"}), "extractor"),
    ] {
        let r = app
            .post(
                &c,
                &format!("/api/v1/batches/{batch}/executions"),
                body.clone(),
            )
            .await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.field(field).is_some(), "{body}: {:?}", r.body);
    }
    // Pages of another batch's run don't fit this one.
    let r = app.upload(&c, &project, &csv, "").await;
    let other_batch = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{other_batch}/executions"),
            json!({"mode": "test", "from_execution": first}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.field("from_execution").unwrap().contains("another batch"),
        "{:?}",
        r.body
    );
}

#[sqlx::test]
async fn browser_settings_are_checked_field_by_field(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Shop").await;
    let path = format!("/api/v1/projects/{project}/agent");
    let r = app
        .patch(
            &c,
            &path,
            json!({"kind": "browser", "wait_for": "#price", "keep_pages": true,
                   "steps": [{"action": "click", "selector": "#show-price"},
                             {"action": "scroll", "times": 2},
                             {"action": "wait", "ms": 300},
                             {"action": "fill", "selector": "input[name=q]", "value": "mug"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["agent"]["wait_for"], "#price");
    assert_eq!(r.body["agent"]["keep_pages"], true);
    assert_eq!(r.body["agent"]["steps"].as_array().unwrap().len(), 4);
    assert_eq!(r.body["agent"]["extractor"], "rules");
    for (body, field) in [
        (json!({"steps": [{"action": "click"}]}), "steps[0].selector"),
        (
            json!({"steps": [{"action": "wait", "ms": 100}, {"action": "click", "selector": "a[["}]}),
            "steps[1].selector",
        ),
        (json!({"steps": [{"action": "wait"}]}), "steps[0].ms"),
        (
            json!({"steps": [{"action": "scroll", "times": 500}]}),
            "steps[0].times",
        ),
        (
            json!({"steps": [{"action": "fill", "selector": "#q"}]}),
            "steps[0].value",
        ),
        (json!({"wait_for": "##"}), "wait_for"),
        (json!({"kind": "snapshot"}), "kind"),
    ] {
        let r = app.patch(&c, &path, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.field(field).is_some(), "{body}: {:?}", r.body);
    }
    // Nothing half-written: the settings are as last saved.
    let p = app
        .get(&c, &format!("/api/v1/projects/{project}"))
        .await
        .body;
    assert_eq!(p["agent"]["steps"].as_array().unwrap().len(), 4);
    // A step the API doesn't know is refused by name.
    let r = app
        .patch(
            &c,
            &path,
            json!({"steps": [{"action": "hover", "selector": "a"}]}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[sqlx::test]
async fn retention_removes_old_pages_and_screenshots(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Shop").await;
    let (shop, _) = counting_shop().await;
    let csv = format!("url,gt_title\n{shop}/p/1,x\n{shop}/p/2,y\n");
    let batch = app.upload(&c, &project, &csv, "").await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = spawn_workers(&app);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    finish(&app, &c, &id).await;
    let _ = stop.send(true);
    let jobs: Vec<i64> = sqlx::query_scalar("select job_id from attempt_pages order by job_id")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        mino::server::db::screenshots::store(&db, *job, 1, &[0xff, 0xd8, 0xff])
            .await
            .unwrap();
    }
    // One of each is older than the retention.
    sqlx::query(
        "update attempt_pages set created_at = now() - interval '31 days' where job_id = $1",
    )
    .bind(jobs[0])
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "update attempt_screenshots set created_at = now() - interval '31 days' where job_id = $1",
    )
    .bind(jobs[0])
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(
        mino::server::db::pages::delete_expired(&db).await.unwrap(),
        1
    );
    assert_eq!(
        mino::server::db::screenshots::delete_expired(&db)
            .await
            .unwrap(),
        1
    );
    // A second cleanup (another process) finds nothing left to do.
    assert_eq!(
        mino::server::db::pages::delete_expired(&db).await.unwrap(),
        0
    );
    let left: Vec<i64> = sqlx::query_scalar("select job_id from attempt_pages")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(left, vec![jobs[1]]);

    // Retention is the organization's: ten days old is kept under the
    // default 30, removed once its admins say 7.
    for table in ["attempt_pages", "attempt_screenshots"] {
        sqlx::query(&format!(
            "update {table} set created_at = now() - interval '10 days' where job_id = $1"
        ))
        .bind(jobs[1])
        .execute(&db)
        .await
        .unwrap();
    }
    assert_eq!(
        mino::server::db::pages::delete_expired(&db).await.unwrap(),
        0
    );
    let path = format!("/api/v1/orgs/{org}");
    for bad in [
        json!({"retention_days": 0}),
        json!({"retention_days": 4000}),
    ] {
        let r = app.patch(&c, &path, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert!(r.field("retention_days").is_some(), "{:?}", r.body);
    }
    // A bad day count leaves the name unchanged too (all or nothing).
    let r = app
        .patch(&c, &path, json!({"name": "Renamed", "retention_days": -1}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(app.get(&c, &path).await.body["name"], "Acme");
    let r = app.patch(&c, &path, json!({"retention_days": 7})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["retention_days"], 7);
    assert_eq!(
        mino::server::db::pages::delete_expired(&db).await.unwrap(),
        1
    );
    assert_eq!(
        mino::server::db::screenshots::delete_expired(&db)
            .await
            .unwrap(),
        1
    );
    let entry: String = sqlx::query_scalar(
        "select action from audit_log where action = 'organization.set_retention'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(entry, "organization.set_retention");
}

/// A news page: the story between a menu, a sidebar, reader comments and
/// a footer.
fn news_page(headline: &str, paragraphs: &[&str]) -> String {
    let story: String = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    format!(
        "<html><head><title>{headline} | Daily Tide</title></head><body>\
         <header><nav><a href=\"/\">Home</a> <a href=\"/world\">World</a> <a href=\"/sport\">Sport</a></nav></header>\
         <aside class=\"sidebar\"><h3>Most read</h3><ul><li><a href=\"/a\">Ten things to do this weekend</a></li></ul></aside>\
         <article><h1>{headline}</h1>{story}</article>\
         <section class=\"comments\"><h3>Comments</h3><p>Finally!</p></section>\
         <footer><p>Copyright Daily Tide.</p></footer></body></html>"
    )
}

const STORY: [&str; 3] = [
    "The harbour bridge reopened to traffic on Monday morning, two years after engineers closed it when cracks were found in two of its steel cables.",
    "The repairs replaced all twelve cables and resurfaced the deck, and cost the city forty million euros, slightly less than the budget approved last spring.",
    "Commuters who had taken the ferry or driven around the bay said the reopening would save them close to an hour every day.",
];

#[sqlx::test]
async fn the_article_rule_reads_a_story_and_text_similarity_scores_it(db: PgPool) {
    let app = spawn_app(db).await;
    let site = axum::Router::new().route(
        "/news/{n}",
        axum::routing::get(|Path(n): Path<u32>| async move {
            Html(match n {
                1 => news_page("Harbour bridge reopens", &STORY),
                // The second story lost its last paragraph on the site.
                _ => news_page("Harbour bridge reopens", &STORY[..2]),
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, site).await.unwrap() });

    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "News").await;
    let expected = STORY.join(" ");
    let csv = format!(
        "url,gt_body\nhttp://{addr}/news/1,\"{expected}\"\nhttp://{addr}/news/2,\"{expected}\"\n"
    );
    let r = app.upload(&c, &project, &csv, "").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/body"),
            json!({"rule": {"kind": "article"}, "comparator": "text_similarity",
                   "comparator_options": {"threshold": 0.9}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body_field = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "body")
        .unwrap()
        .clone();
    assert_eq!(body_field["rule"], json!({"kind": "article"}));

    let stop = spawn_workers(&app);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    finish(&app, &c, &id).await;
    let _ = stop.send(true);
    let found = values(&app, &c, &id).await;
    let body = found[0]["body"].as_str().expect("a main text");
    // The story alone: none of the menu, sidebar, comments or footer, and
    // not the headline either, which repeats the page's title.
    assert_eq!(body, expected);
    let short = found[1]["body"].as_str().unwrap();
    assert_eq!(short, format!("{} {}", STORY[0], STORY[1]));

    // Story 1: the 70 expected shingles, all found (precision 1, recall
    // 1). Story 2: 47 shingles, all expected, of 70 (precision 1, recall
    // 47/70, score 0.8034: below 0.9, a fail).
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{id}/jobs"))
        .await
        .body;
    let mut items = jobs["items"].as_array().unwrap().clone();
    items.sort_by_key(|j| j["row_index"].as_i64());
    assert_eq!(items[0]["verdict"], "pass", "{}", items[0]);
    assert_eq!(items[1]["verdict"], "fail", "{}", items[1]);
    let metrics = app
        .get(&c, &format!("/api/v1/executions/{id}/metrics"))
        .await
        .body;
    let field = metrics["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "body")
        .unwrap_or_else(|| panic!("{metrics}"))
        .clone();
    let (p, r) = (1.0, (1.0 + 47.0 / 70.0) / 2.0);
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-6;
    assert!(close(&field["precision"], p), "{field}");
    assert!(close(&field["recall"], r), "{field}");
    assert!(close(&field["f1"], 2.0 * p * r / (p + r)), "{field}");
}
