//! Experiments over the real router, Postgres and in-process workers: two
//! versions run from one run's kept pages over the same 30 rows (no request
//! reaches the shop), the matrix equals the versions' separate runs, the
//! fixed and regressed rows are the known ones, and promoting a variant
//! sets production with an audit entry and `experiment.completed` queued.

#![cfg(feature = "ssr")]

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{counting_shop, spawn_app, spawn_workers, TestApp};
use mino::server::demo::product;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn wait_for(
    app: &TestApp,
    c: &reqwest::Client,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let v = app.get(c, path).await.body;
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{path} did not finish: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(app: &TestApp, c: &reqwest::Client, batch: &str, body: Value) -> Value {
    let r = app
        .post(c, &format!("/api/v1/batches/{batch}/executions"), body)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap();
    wait_for(app, c, &format!("/api/v1/executions/{id}"), |e| {
        e["state"] == "completed"
    })
    .await
}

/// The product number of a shop url (`…/p/7` → 7).
fn product_of(url: &Value) -> u32 {
    url.as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn an_experiment_of_two_versions_reads_kept_pages_and_matches_their_runs(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (shop, hits) = counting_shop().await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Shop").await;
    let mut csv = String::from("url,gt_title\n");
    for n in 1..=30 {
        csv.push_str(&format!("{shop}/p/{n},{}\n", product(n).title));
    }
    let r = app.upload(&c, &project, &csv, "").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/webhooks"),
            json!({"url": "http://127.0.0.1:9/hook", "events": ["experiment.completed"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let stop = spawn_workers(&app);

    // One fetching run keeps the 30 pages.
    let fetched = run(
        &app,
        &c,
        &batch,
        json!({"mode": "test", "sample_size": 30, "max_retries": 0}),
    )
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 30);
    let pages = fetched["id"].as_str().unwrap().to_string();

    // Version 2 reads titles of microdata pages only (products 1, 5, 9…),
    // version 3 of table pages only (2, 6, 10…).
    for (selector, version) in [("h1[itemprop=name]", 2), ("h1.product-title", 3)] {
        let r = app
            .patch(
                &c,
                &format!("/api/v1/projects/{project}/fields/title"),
                json!({"rule": {"kind": "css", "selector": selector}}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["latest_version"], version);
    }
    // Their separate runs, from the same pages.
    let mut separate = vec![];
    for version in [2, 3] {
        let e = run(
            &app,
            &c,
            &batch,
            json!({"mode": "test", "from_execution": pages, "instruction_version": version}),
        )
        .await;
        separate.push(e["accuracy"].as_f64().unwrap());
    }
    assert!((separate[0] - 8.0 / 30.0).abs() < 1e-9, "{separate:?}");

    // The experiment: the same two versions over all 30 rows.
    let r = app
        .post(
            &c,
            &format!("/api/v1/projects/{project}/experiments"),
            json!({
                "name": "Microdata vs table titles",
                "batch": batch,
                "rows": {"sample": "random", "size": 30, "seed": 7},
                "from_execution": pages,
                "variants": [{"version": 2}, {"version": 3}],
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["rows"], 30);
    assert_eq!(r.body["variants"][0]["label"], "A");
    assert_eq!(r.body["variants"][1]["agent"], "snapshot");
    let x = wait_for(&app, &c, &format!("/api/v1/experiments/{id}"), |x| {
        x["state"] == "completed"
    })
    .await;
    let _ = stop.send(true);
    assert_eq!(hits.load(Ordering::SeqCst), 30, "a variant fetched a page");
    for (i, accuracy) in separate.iter().enumerate() {
        let v = &x["variants"][i];
        assert_eq!(v["execution"]["accuracy"].as_f64(), Some(*accuracy), "{v}");
        assert_eq!(v["execution"]["total"], 30);
        assert_eq!(v["execution"]["experiment_id"], json!(id));
        assert!(v["accuracy_interval"].is_array(), "{v}");
        assert_eq!(v["fields"][0]["field"], "title");
        assert!(v["latency_p95_ms"].as_f64().is_some(), "{v}");
    }
    assert_eq!(x["fields"], json!(["title"]));
    // B fixes the 8 table rows and regresses the 8 microdata rows: even,
    // so not beyond noise.
    let pair = &x["pairs"][0];
    assert_eq!(
        (&pair["a"], &pair["b"], &pair["fixed"], &pair["regressed"]),
        (&json!(1), &json!(2), &json!(8), &json!(8)),
        "{pair}"
    );
    assert_eq!(pair["judged_in_both"], 30);
    assert_eq!(pair["significant"], false);

    // The grid: the 16 rows where they disagree come first, and are the
    // known products.
    let grid = app
        .get(&c, &format!("/api/v1/experiments/{id}/rows?limit=20"))
        .await
        .body;
    assert_eq!(
        (grid["total"].as_i64(), grid["disagreements"].as_i64()),
        (Some(30), Some(16))
    );
    let mut disagreeing: Vec<u32> = grid["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["disagree"] == true)
        .map(|r| product_of(&r["url"]))
        .collect();
    disagreeing.sort();
    let known: Vec<u32> = (1..=30).filter(|n| n % 4 == 1 || n % 4 == 2).collect();
    assert_eq!(disagreeing, known);
    let first = &grid["items"][0];
    let n = product_of(&first["url"]);
    assert_eq!(first["expected"]["title"], json!(product(n).title));
    assert_eq!(first["cells"].as_array().unwrap().len(), 2);

    // The disagreements become an evaluation set.
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/evaluation-sets"),
            json!({"name": "Title styles", "experiment_id": id}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["size"], 16);
    assert_eq!(r.body["source"]["experiment_id"], json!(id));

    // Promote B: production is version 3, audited, and the completion
    // went out as a webhook event.
    let r = app
        .post(
            &c,
            &format!("/api/v1/experiments/{id}/promote"),
            json!({"variant": "B"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["promoted_variant"], 2);
    assert_eq!(r.body["production_version"], 3);
    let p = app
        .get(&c, &format!("/api/v1/projects/{project}"))
        .await
        .body;
    assert_eq!(p["production_version"], 3);
    let log = app
        .get(
            &c,
            &format!("/api/v1/orgs/{org}/audit-log?action=experiment."),
        )
        .await
        .body;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["experiment.promote", "experiment.create"]);
    let events: Vec<(String, String)> =
        sqlx::query_as("select event, resource_id from webhook_deliveries order by id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(events, [("experiment.completed".to_string(), id.clone())]);

    // The project lists it; a bad variant names the field.
    let list = app
        .get(&c, &format!("/api/v1/projects/{project}/experiments"))
        .await
        .body;
    assert_eq!(list["items"][0]["state"], "completed");
    assert_eq!(list["items"][0]["promoted_variant"], 2);
    let r = app
        .post(
            &c,
            &format!("/api/v1/experiments/{id}/promote"),
            json!({"variant": 5}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("variant").is_some(), "{:?}", r.body);
}

#[sqlx::test]
async fn bad_experiments_name_what_is_wrong_and_start_nothing(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let project = r.body["project"]["id"].as_str().unwrap().to_string();
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let url = format!("/api/v1/projects/{project}/experiments");
    for (body, field) in [
        (
            json!({"batch": batch, "variants": [{"version": 1}]}),
            "variants",
        ),
        (
            json!({"variants": [{"version": 1}, {"version": 1}]}),
            "batch",
        ),
        (
            json!({"batch": batch, "variants": [{"version": 1}, {"version": 9}]}),
            "variants.2.instruction_version",
        ),
        (
            json!({"batch": batch, "variants": [{"version": 1}, {}]}),
            "variants.2.version",
        ),
        (
            json!({"batch": batch, "rows": {"sample": "odd"}, "variants": [{"version": 1}, {"version": 1}]}),
            "rows.sample",
        ),
        (
            json!({"batch": batch, "rows": {"size": 0}, "variants": [{"version": 1}, {"version": 1}]}),
            "rows.size",
        ),
        (
            json!({"batch": batch, "rows": {"execution_id": uuid::Uuid::new_v4()}, "variants": [{"version": 1}, {"version": 1}]}),
            "rows.execution_id",
        ),
        (
            json!({"batch": batch, "variants": [{"version": 1, "extractor": "magic"}, {"version": 1}]}),
            "variants.1.extractor",
        ),
        // The experiment's own settings are named once, not per variant.
        (
            json!({"batch": batch, "concurrency": 0, "variants": [{"version": 1}, {"version": 1}]}),
            "concurrency",
        ),
    ] {
        let r = app.post(&c, &url, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.field(field).is_some(), "{body}: {:?}", r.body);
    }
    let (runs,): (i64,) = sqlx::query_as("select count(*) from executions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(runs, 0, "a refused experiment started a variant");

    // Another organization's member sees none of it.
    let r = app
        .post(
            &c,
            &url,
            json!({"batch": batch, "rows": {"size": 2}, "variants": [{"version": 1, "agent": "remote"}, {"version": 1, "agent": "remote"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    for path in [
        format!("/api/v1/experiments/{id}"),
        format!("/api/v1/experiments/{id}/rows"),
    ] {
        assert_eq!(app.get(&other, &path).await.status, 404, "{path}");
    }
    let r = app
        .post(&other, &format!("/api/v1/experiments/{id}/stop"), json!({}))
        .await;
    assert_eq!(r.status, 404);
    // Stopping stops every variant.
    let r = app
        .post(&c, &format!("/api/v1/experiments/{id}/stop"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let x = wait_for(&app, &c, &format!("/api/v1/experiments/{id}"), |x| {
        x["state"] == "stopped"
    })
    .await;
    for v in x["variants"].as_array().unwrap() {
        assert_eq!(v["execution"]["state"], "cancelled", "{v}");
    }
}
