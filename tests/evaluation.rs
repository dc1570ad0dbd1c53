//! Evaluation against ground truth on a real run of the demo shop: every
//! finished job gets a verdict and per-field results, failed jobs count as
//! errors, and the metrics endpoint adds them up per field.

#![cfg(feature = "ssr")]

mod common;

use std::time::{Duration, Instant};

use common::{spawn_app, TestApp};
use mino::server::executor::{self, Settings};
use mino::server::live::Hub;
use serde_json::{json, Value};
use sqlx::PgPool;

/// A test run of the first `rows` demo rows, retries off, run to its end
/// by in-process workers: (owner's client, execution id).
async fn finished_demo_run(app: &TestApp, rows: i32) -> (reqwest::Client, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    executor::spawn(
        app.db.clone(),
        Settings {
            slots: 8,
            allow_private_targets: true,
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
            json!({"mode": "test", "sample_size": rows, "max_retries": 0}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while app.get(&c, &format!("/api/v1/executions/{id}")).await.body["state"] != "completed" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    (c, id)
}

#[sqlx::test]
async fn a_run_is_judged_job_by_job_and_field_by_field(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let e = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;

    // Every 17th expected price is deliberately wrong (rows 17 and 34);
    // products 13 (404) and 29 (500) fail.
    let verdict = |row: i32| {
        let (db, id) = (app.db.clone(), id.clone());
        async move {
            sqlx::query_as::<_, (Option<String>, Option<sqlx::types::Json<Value>>, Option<f32>)>(
                "select verdict, field_results, accuracy from jobs where execution_id = $1::uuid and row_index = $2",
            )
            .bind(&id)
            .bind(row)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let (v, fields, accuracy) = verdict(1).await;
    assert_eq!(v.as_deref(), Some("pass"));
    assert_eq!(accuracy, Some(1.0));
    assert_eq!(fields.unwrap().0.as_object().unwrap().len(), 4);
    let (v, fields, accuracy) = verdict(17).await;
    assert_eq!(v.as_deref(), Some("partial"));
    assert_eq!(accuracy, Some(0.75));
    let price = &fields.unwrap().0["price"];
    assert_eq!(price["pass"], false, "{price}");
    assert!(
        price["explanation"].as_str().unwrap().contains("off by 1"),
        "{price}"
    );
    assert_eq!(verdict(13).await.0.as_deref(), Some("error"));

    assert_eq!(
        (e["passed"].as_i64(), e["failed"].as_i64()),
        (Some(30), Some(2)),
        "{e}"
    );
    let m = app
        .get(&c, &format!("/api/v1/executions/{id}/metrics"))
        .await;
    assert_eq!(m.status, 200, "{:?}", m.body);
    assert_eq!(
        m.body["verdicts"],
        json!({"pass": 30, "partial": 2, "error": 2})
    );
    assert_eq!(
        m.body["errors_by_class"],
        json!({"http_4xx": 1, "http_5xx": 1})
    );
    let fields = m.body["fields"].as_array().unwrap();
    let price = fields.iter().find(|f| f["field"] == "price").unwrap();
    assert_eq!(
        (price["compared"].as_i64(), price["passed"].as_i64()),
        (Some(32), Some(30))
    );
    let title = fields.iter().find(|f| f["field"] == "title").unwrap();
    assert_eq!(title["accuracy"], 1.0);
    let accuracy = m.body["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - (30.0 + 2.0 * 0.75) / 32.0).abs() < 1e-6,
        "{accuracy}"
    );
}

#[sqlx::test]
async fn jobs_are_listed_filtered_and_explained(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let list = |q: &str| {
        let (app, c, id) = (&app, &c, id.clone());
        let q = q.to_string();
        async move {
            app.get(c, &format!("/api/v1/executions/{id}/jobs?{q}"))
                .await
        }
    };
    // Keyset pages of 10 cover all 34 jobs once.
    let mut seen = vec![];
    let mut cursor = String::new();
    loop {
        let r = list(&format!("limit=10&cursor={cursor}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        seen.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["row_index"].as_i64().unwrap()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, (1..=34).collect::<Vec<i64>>());
    let rows = |r: &common::Res| {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["row_index"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&list("evaluation=partial").await), vec![17, 34]);
    assert_eq!(rows(&list("status=failed").await), vec![13, 29]);
    assert_eq!(rows(&list("accuracy_max=0.8").await), vec![17, 34]);
    assert_eq!(rows(&list("q=products/21").await), vec![21]);
    let r = list("evaluation=great").await;
    assert_eq!(
        (r.status.as_u16(), r.field("evaluation").is_some()),
        (400, true)
    );
    let r = list("accuracy_min=2").await;
    assert!(r.field("accuracy_min").is_some());

    // One job, with its attempts, results and a suggestion.
    let items = list("evaluation=partial").await.body["items"].clone();
    let job = items[0]["id"].as_i64().unwrap();
    let d = app.get(&c, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(d.body["job"]["field_results"]["price"]["pass"], false);
    assert_eq!(d.body["attempts"].as_array().unwrap().len(), 1);
    assert!(d.body["attempts"][0]["log"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["message"]
            .as_str()
            .unwrap()
            .starts_with("Fetching the page")));
    assert!(d.body["suggestion"]
        .as_str()
        .unwrap()
        .contains("expected value"));
    let failed = list("status=failed").await.body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let d = app.get(&c, &format!("/api/v1/jobs/{failed}")).await;
    assert!(
        d.body["suggestion"]
            .as_str()
            .unwrap()
            .contains("check the URL"),
        "{:?}",
        d.body["suggestion"]
    );
    // Another organization can't see it.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    assert_eq!(
        app.get(&other, &format!("/api/v1/jobs/{job}")).await.status,
        404
    );
    assert_eq!(
        app.get(&other, &format!("/api/v1/executions/{id}/jobs"))
            .await
            .status,
        404
    );
}

#[sqlx::test]
async fn editing_an_expected_value_judges_the_row_again(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let (batch, seq): (String, i64) = sqlx::query_as(
        "select b.id::text, b.seq from executions e join batches b on b.id = e.batch_id where e.id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    // Row 17's expected price is deliberately wrong: fix it to the page's.
    let row = mino::model::row_id(seq, 17);
    let right = mino::server::demo::product(17).price();
    let coverage =
        app.get(&c, &format!("/api/v1/batches/{batch}")).await.body["gt_coverage"].clone();
    let r = app
        .patch(
            &c,
            &format!("/api/v1/rows/{row}/ground-truth"),
            json!({"version": 1, "values": {"price": right}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["row"]["gt_version"], 2);
    assert_eq!(r.body["reevaluated_jobs"], 1);
    assert_eq!(r.body["history"][0]["field"], "price");
    assert_eq!(r.body["history"][0]["changed_by"], "Owen");
    assert_eq!(r.body["history"][0]["after"], right);
    let e = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;
    assert_eq!(
        (e["passed"].as_i64(), e["failed"].as_i64()),
        (Some(31), Some(1)),
        "{e}"
    );
    let v: String = sqlx::query_scalar(
        "select verdict from jobs where execution_id = $1::uuid and row_index = 17",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(v, "pass");

    // The same edit on the version the editor loaded first: a conflict.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/rows/{row}/ground-truth"),
            json!({"version": 1, "values": {"price": "1"}}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "CONFLICT"),
        "{:?}",
        r.body
    );
    // Clearing a value lowers the coverage; an unknown field is named.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/rows/{row}/ground-truth"),
            json!({"version": 2, "values": {"currency": null}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let after = app.get(&c, &format!("/api/v1/batches/{batch}")).await.body["gt_coverage"].clone();
    assert_eq!(
        after["currency"].as_i64().unwrap(),
        coverage["currency"].as_i64().unwrap() - 1
    );
    let r = app
        .patch(
            &c,
            &format!("/api/v1/rows/{row}/ground-truth"),
            json!({"version": 3, "values": {"colour": "red"}}),
        )
        .await;
    assert!(
        r.field("values").unwrap().contains("colour"),
        "{:?}",
        r.body
    );
    let h = app.get(&c, &format!("/api/v1/rows/{row}/history")).await;
    assert_eq!(h.body.as_array().unwrap().len(), 2);
    // Another organization sees nothing.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    let r = app
        .patch(
            &other,
            &format!("/api/v1/rows/{row}/ground-truth"),
            json!({"version": 3, "values": {"price": "1"}}),
        )
        .await;
    assert_eq!(r.status, 404);
}
