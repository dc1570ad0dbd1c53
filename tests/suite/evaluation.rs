//! Evaluation against ground truth on a real run of the demo shop: every
//! finished job gets a verdict and per-field results, failed jobs count as
//! errors, and the metrics endpoint adds them up per field.

#![cfg(feature = "ssr")]

use crate::common;

use common::{finished_demo_run, spawn_app, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

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
    // "With wrong fields" on the run page: partial and fail together.
    assert_eq!(rows(&list("evaluation=wrong").await), vec![17, 34]);
    assert_eq!(rows(&list("evaluation=partial,fail").await), vec![17, 34]);
    assert_eq!(rows(&list("evaluation=pass,partial").await).len(), 32);
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
    // Lowest accuracy first, in keyset pages of 3: the partial rows lead,
    // then the passing ones in row order, the failed jobs (no accuracy)
    // last; every job once.
    let (mut sorted, mut cursor) = (vec![], String::new());
    loop {
        let r = list(&format!("sort=accuracy&limit=3&cursor={cursor}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        sorted.extend(rows(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let passing: Vec<i64> = (1..=34).filter(|n| ![13, 17, 29, 34].contains(n)).collect();
    assert_eq!(sorted[..2], [17, 34]);
    assert_eq!(sorted[2..32], passing[..]);
    assert_eq!(sorted[32..], [13, 29]);
    let r = list("sort=worst").await;
    assert!(r.field("sort").is_some(), "{:?}", r.body);
    let r = list("sort=accuracy&cursor=17").await;
    assert!(r.field("cursor").is_some(), "{:?}", r.body);

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
    // A finished run's aggregates are kept after the first read …
    let price_passed = |m: &Value| {
        m["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == "price")
            .map(|f| f["passed"].as_i64().unwrap())
            .unwrap()
    };
    let price_wrong = |p: &Value| {
        p["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == "price")
            .map(|f| {
                f["patterns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["pattern"] != "agent_error")
                    .map(|p| p["count"].as_i64().unwrap())
                    .sum::<i64>()
            })
            .unwrap()
    };
    let metrics = app
        .get(&c, &format!("/api/v1/executions/{id}/metrics"))
        .await
        .body;
    let patterns = app
        .get(&c, &format!("/api/v1/executions/{id}/failure-patterns"))
        .await
        .body;
    let kept: Vec<String> = sqlx::query_scalar(
        "select kind from execution_summaries where execution_id = $1::uuid order by kind",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(kept, ["counts", "metrics", "patterns"]);
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
    // … and the edit outdates them: every view shows the row passing.
    let now = app
        .get(&c, &format!("/api/v1/executions/{id}/metrics"))
        .await
        .body;
    assert_eq!(price_passed(&now), price_passed(&metrics) + 1, "{now}");
    let now = app
        .get(&c, &format!("/api/v1/executions/{id}/failure-patterns"))
        .await
        .body;
    assert_eq!(price_wrong(&now), price_wrong(&patterns) - 1, "{now}");
    let trends = app
        .get(&c, &format!("/api/v1/batches/{batch}/trends"))
        .await
        .body;
    assert_eq!(trends["points"][0]["accuracy"], e["accuracy"], "{trends}");

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
            // SPEC's name for the values.
            json!({"version": 2, "ground_truth": {"currency": null}}),
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

/// The results grid saves one expected value in one round trip: the
/// answer carries the job judged again and the run's counts, metrics and
/// failure patterns after the change, so the page reads nothing else.
#[sqlx::test]
async fn saving_one_value_from_the_grid_answers_with_the_run_s_new_figures(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let job = job_of(&app, &id, 17).await;
    let right = mino::server::demo::product(17).price();
    let save = |version: i32, value: String| {
        let c = c.clone();
        let url = app.url("/rpc/save_expected_value");
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("job", job.to_string()),
                    ("version", version.to_string()),
                    ("field", "price".to_string()),
                    ("value", value),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, saved) = save(1, right.clone()).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["job"]["id"], job);
    assert_eq!(saved["job"]["verdict"], "pass", "{saved}");
    assert_eq!(saved["job"]["gt_version"], 2);
    assert_eq!(saved["job"]["expected"]["price"], right);
    assert_eq!(
        (
            saved["execution"]["passed"].as_i64(),
            saved["execution"]["failed"].as_i64()
        ),
        (Some(31), Some(1)),
        "{saved}"
    );
    // The figures in the answer are the ones the API reads now.
    let metrics = app
        .get(&c, &format!("/api/v1/executions/{id}/metrics"))
        .await
        .body;
    assert_eq!(saved["metrics"]["fields"], metrics["fields"]);
    assert_eq!(saved["metrics"]["verdicts"], metrics["verdicts"]);
    let patterns = app
        .get(&c, &format!("/api/v1/executions/{id}/failure-patterns"))
        .await
        .body;
    assert_eq!(saved["patterns"], patterns);
    // A stale version is a conflict, and nothing changes.
    let (status, body) = save(1, "1".into()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(verdict_of(&app, &id, 17).await, "pass");
}

/// The batch id and seq of an execution.
async fn batch_of(app: &TestApp, execution: &str) -> (String, i64, String) {
    sqlx::query_as(
        "select b.id::text, b.seq, b.project_id::text from executions e
         join batches b on b.id = e.batch_id where e.id = $1::uuid",
    )
    .bind(execution)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn verdict_of(app: &TestApp, execution: &str, row: i32) -> String {
    sqlx::query_scalar("select verdict from jobs where execution_id = $1::uuid and row_index = $2")
        .bind(execution)
        .bind(row)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn job_of(app: &TestApp, execution: &str, row: i32) -> i64 {
    sqlx::query_scalar("select id from jobs where execution_id = $1::uuid and row_index = $2")
        .bind(execution)
        .bind(row)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn bulk_edits_preview_then_judge_every_changed_row_again(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let (batch, seq, _) = batch_of(&app, &id).await;
    let edit = format!("/api/v1/batches/{batch}/ground-truth/bulk-edit");
    let (j17, j34) = (job_of(&app, &id, 17).await, job_of(&app, &id, 34).await);

    // Accepting the extracted values of rows 17 and 34 (their expected
    // prices are the deliberately wrong ones): a preview stores nothing.
    let body = json!({"operation": "accept_extracted", "job_ids": [j17, j34], "preview": true});
    let r = app.post(&c, &edit, body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["preview"], true);
    assert_eq!(
        (
            r.body["rows_matched"].as_i64(),
            r.body["values_changed"].as_i64()
        ),
        (Some(2), Some(2)),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["samples"][0]["field"], "price");
    assert_eq!(verdict_of(&app, &id, 17).await, "partial");
    let r = app
        .post(
            &c,
            &edit,
            json!({"operation": "accept_extracted", "job_ids": [j17, j34]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["reevaluated_jobs"], 2);
    assert_eq!(verdict_of(&app, &id, 17).await, "pass");
    assert_eq!(verdict_of(&app, &id, 34).await, "pass");
    let e = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;
    assert_eq!(
        (e["passed"].as_i64(), e["failed"].as_i64()),
        (Some(32), Some(0))
    );
    let h = app
        .get(
            &c,
            &format!("/api/v1/rows/{}/history", mino::model::row_id(seq, 17)),
        )
        .await;
    assert_eq!(h.body[0]["changed_by"], "Owen", "{:?}", h.body);

    // Set a field for chosen rows, then find and replace over the whole
    // batch: the rows whose expected currency is the one found.
    let rows = [mino::model::row_id(seq, 1), mino::model::row_id(seq, 2)];
    let r = app
        .post(
            &c,
            &edit,
            json!({"operation": "set", "field": "title", "value": "Wrong", "row_ids": rows}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["rows_changed"].as_i64()),
        (200, Some(2)),
        "{:?}",
        r.body
    );
    assert_eq!(verdict_of(&app, &id, 1).await, "partial");
    let currency = mino::server::demo::product(1).currency.to_string();
    let r = app
        .post(
            &c,
            &edit,
            json!({"operation": "replace", "field": "currency", "find": currency, "replace": "XXX", "preview": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let matched = r.body["rows_changed"].as_i64().unwrap();
    let expected: i64 = sqlx::query_scalar(
        "select count(*) from batch_rows where batch_seq = $1 and ground_truth->>'currency' like '%' || $2 || '%'",
    )
    .bind(seq)
    .bind(&currency)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(matched, expected);
    assert!(matched > 0);

    // Bulk set from a CSV keyed by row: restores row 1's title; an empty
    // cell leaves a value alone.
    let title = mino::server::demo::product(1).title;
    let set = format!("/api/v1/batches/{batch}/ground-truth/bulk-set");
    let csv = format!("row,gt_title,price\n1,\"{title}\",\n");
    let r = app
        .send_bytes(&c, &set, csv.into_bytes(), "text/csv", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["values_changed"], 1);
    assert_eq!(verdict_of(&app, &id, 1).await, "pass");
    // By URL, as JSON.
    let url: String = sqlx::query_scalar(
        "select site_url from batch_rows where batch_seq = $1 and row_index = 2",
    )
    .bind(seq)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let title2 = mino::server::demo::product(2).title;
    let r = app
        .post(
            &c,
            &set,
            json!({"rows": [{"url": url, "values": {"title": title2}}]}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["rows_changed"].as_i64()),
        (200, Some(1)),
        "{:?}",
        r.body
    );
    assert_eq!(verdict_of(&app, &id, 2).await, "pass");

    // Refusals name where: a file's line and column, a body's field.
    let r = app
        .send_bytes(&c, &set, b"row,colour\n1,red\n".to_vec(), "text/csv", None)
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.field("file").unwrap().contains("Line 1, column 2"),
        "{:?}",
        r.body
    );
    let r = app
        .post(
            &c,
            &set,
            json!({"rows": [{"row": 9999, "values": {"title": "x"}}]}),
        )
        .await;
    assert!(
        r.field("rows[0]").unwrap().contains("no row 9999"),
        "{:?}",
        r.body
    );
    // A file's row that isn't in the batch is named by its line.
    let r = app
        .send_bytes(
            &c,
            &set,
            b"row,title\n1,A\n9999,B\n".to_vec(),
            "text/csv",
            None,
        )
        .await;
    assert!(
        r.field("file")
            .unwrap()
            .contains("Line 3: This batch has no row 9999"),
        "{:?}",
        r.body
    );
    let many: Vec<i64> = (1..=1001).map(|i| mino::model::row_id(seq, i)).collect();
    let r = app
        .post(
            &c,
            &edit,
            json!({"operation": "clear", "field": "title", "row_ids": many}),
        )
        .await;
    assert!(r.field("row_ids").unwrap().contains("1000"), "{:?}", r.body);
    let r = app
        .post(&c, &edit, json!({"operation": "paint", "field": "title"}))
        .await;
    assert!(r.field("operation").is_some(), "{:?}", r.body);
    // Nothing half-written: a refused bulk set left row 1 alone.
    assert_eq!(verdict_of(&app, &id, 1).await, "pass");
}

#[sqlx::test]
async fn a_new_comparator_judges_every_run_again(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let (_, _, project) = batch_of(&app, &id).await;
    assert_eq!(verdict_of(&app, &id, 17).await, "partial");
    // The wrong expected prices are off by 1: a tolerance of 1.5 passes them.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/price"),
            json!({"comparator": "number", "comparator_options": {"tolerance": 1.5}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(verdict_of(&app, &id, 17).await, "pass");
    let e = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;
    assert_eq!(e["failed"], 0, "{e}");
}

#[sqlx::test]
async fn failure_patterns_trends_and_comparing_two_runs(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, a) = finished_demo_run(&app, 34).await;
    let (batch, _, _) = batch_of(&app, &a).await;

    let p = app
        .get(&c, &format!("/api/v1/executions/{a}/failure-patterns"))
        .await;
    assert_eq!(p.status, 200, "{:?}", p.body);
    let price = p.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "price")
        .unwrap()
        .clone();
    let count = |name: &str| {
        price["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pattern"] == name)
            .map(|p| p["count"].as_i64().unwrap())
            .unwrap_or(0)
    };
    // Rows 13 (404) and 29 (500) failed; rows 17 and 34 are off by 1.
    assert_eq!(count("agent_error"), 2, "{price}");
    assert_eq!(count("partial") + count("wrong_value"), 2, "{price}");
    assert_eq!(count("missing"), 0, "{price}");

    // A second run of the same rows, then hand-made differences: row 1
    // regresses (a wrong price) and row 17 gets fixed.
    let r = app
        .post(
            &c,
            &format!("/api/v1/executions/{a}/rerun"),
            json!({"jobs": "all"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = r.body["id"].as_str().unwrap().to_string();
    sqlx::query(
        "update jobs set state = 'succeeded', verdict = case row_index when 1 then 'partial' else 'pass' end,
                extracted = case row_index when 1 then '{\"price\": \"0.01\"}'::json else '{}'::json end,
                accuracy = case row_index when 1 then 0.75 else 1 end, finished_at = now()
         where execution_id = $1::uuid",
    )
    .bind(&b)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "update executions set state = 'completed', finished_at = now() where id = $1::uuid",
    )
    .bind(&b)
    .execute(&app.db)
    .await
    .unwrap();
    let r = app
        .get(&c, &format!("/api/v1/executions/compare?a={a}&b={b}"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rows = |k: &str| -> Vec<i64> {
        r.body[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["row_index"].as_i64().unwrap())
            .collect()
    };
    // Fixed: the two partial rows and the two errors now pass.
    assert_eq!(rows("fixed"), vec![13, 17, 29, 34], "{:?}", r.body["fixed"]);
    assert_eq!(r.body["fixed_count"], 4);
    assert_eq!(rows("regressed"), vec![1]);
    assert_eq!(r.body["regressed"][0]["differences"]["price"][1], "0.01");
    assert!(r.body["instructions_diff"].is_null());
    // 4 rows pass only in B, 1 only in A: McNemar's exact p = 2 × 6/32.
    assert_eq!(
        (
            r.body["passes_only_b"].as_i64(),
            r.body["passes_only_a"].as_i64()
        ),
        (Some(4), Some(1))
    );
    assert_eq!(r.body["test"], "mcnemar_exact");
    assert_eq!(r.body["p_value"], 0.375);
    assert_eq!(r.body["significant"], false);
    // Runs of different batches, or one run with itself, are refused.
    let same = app
        .get(&c, &format!("/api/v1/executions/compare?a={a}&b={a}"))
        .await;
    assert!(same.field("b").is_some(), "{:?}", same.body);
    let missing = app
        .get(&c, &format!("/api/v1/executions/compare?a={a}"))
        .await;
    assert!(missing.field("b").is_some(), "{:?}", missing.body);
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    let r = app
        .get(&other, &format!("/api/v1/executions/compare?a={a}&b={b}"))
        .await;
    assert_eq!(r.status, 404);

    let t = app
        .get(&c, &format!("/api/v1/batches/{batch}/trends"))
        .await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    let points = t.body["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["execution_id"], a.as_str());
    assert!(points[0]["fields"]["price"].as_f64().unwrap() < 1.0);
    assert!(points[0]["f1"]["price"].as_f64().unwrap() < 1.0);
    assert_eq!(
        points[1]["accuracy_interval"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(t.body["fields"].as_array().unwrap().len(), 4);
}

#[sqlx::test]
async fn bulk_job_operations_by_hand_and_by_filter(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let (j1, j2) = (job_of(&app, &id, 1).await, job_of(&app, &id, 2).await);

    // Rerun two chosen jobs: a new execution over their rows.
    let r = app
        .post(&c, "/api/v1/jobs/bulk/rerun", json!({"job_ids": [j1, j2]}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["affected"], 2);
    let new = r.body["execution_id"].as_str().unwrap().to_string();
    let e = app.get(&c, &format!("/api/v1/executions/{new}")).await.body;
    assert_eq!(
        (e["total"].as_i64(), e["rerun_of"].as_str()),
        (Some(2), Some(id.as_str())),
        "{e}"
    );
    // Cancel the new run's queued jobs (nothing runs them here).
    let r = app
        .post(
            &c,
            "/api/v1/jobs/bulk/update",
            json!({"execution_id": new, "state": "cancelled"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["affected"].as_i64()),
        (200, Some(2)),
        "{:?}",
        r.body
    );
    let e = app.get(&c, &format!("/api/v1/executions/{new}")).await.body;
    assert_eq!(e["state"], "completed", "{e}");
    let r = app
        .post(
            &c,
            "/api/v1/jobs/bulk/update",
            json!({"job_ids": [j1], "state": "running"}),
        )
        .await;
    assert!(r.field("state").is_some(), "{:?}", r.body);

    // A preview counts without acting.
    let r = app
        .post(
            &c,
            "/api/v1/jobs/bulk/delete",
            json!({"execution_id": id, "filter": {"evaluation": "partial"}, "preview": true}),
        )
        .await;
    assert_eq!(
        (r.body["matched"].as_i64(), r.body["affected"].as_i64()),
        (Some(2), Some(0)),
        "{:?}",
        r.body
    );
    // Delete every job matching a filter: the two partial ones.
    let r = app
        .post(
            &c,
            "/api/v1/jobs/bulk/delete",
            json!({"execution_id": id, "filter": {"evaluation": "partial"}}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["affected"].as_i64()),
        (200, Some(2)),
        "{:?}",
        r.body
    );
    let e = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;
    assert_eq!(
        (e["total"].as_i64(), e["failed"].as_i64()),
        (Some(32), Some(0)),
        "{e}"
    );

    // Limits and mistakes are field errors.
    let many: Vec<i64> = (0..1001).map(|i| j1 + i).collect();
    let r = app
        .post(&c, "/api/v1/jobs/bulk/delete", json!({"job_ids": many}))
        .await;
    assert!(r.field("job_ids").unwrap().contains("1000"), "{:?}", r.body);
    let r = app.post(&c, "/api/v1/jobs/bulk/delete", json!({})).await;
    assert!(r.field("job_ids").is_some(), "{:?}", r.body);
    let r = app
        .post(&c, "/api/v1/jobs/bulk/explode", json!({"job_ids": [j1]}))
        .await;
    assert_eq!(r.status, 404);
    // Another organization's jobs are not found.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    let r = app
        .post(&other, "/api/v1/jobs/bulk/rerun", json!({"job_ids": [j1]}))
        .await;
    assert_eq!(r.status, 404);
}

/// One field's figures from the metrics endpoint.
async fn field_metrics(app: &TestApp, c: &reqwest::Client, execution: &str, field: &str) -> Value {
    let m = app
        .get(c, &format!("/api/v1/executions/{execution}/metrics"))
        .await;
    assert_eq!(m.status, 200, "{:?}", m.body);
    m.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == field)
        .cloned()
        .unwrap_or_else(|| panic!("no {field} in {}", m.body))
}

fn close(v: &Value, want: f64) -> bool {
    (v.as_f64().unwrap() - want).abs() < 1e-9
}

#[sqlx::test]
async fn precision_recall_and_f1_by_hand(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 10).await;
    let (batch, seq, project) = batch_of(&app, &id).await;
    // Rows 1–10 all pass on price as run (the first wrong price is row 17).
    // Row 4's job found no price, as an agent that missed it would have
    // left it (the field is judged again below).
    sqlx::query(
        "update jobs set extracted = (extracted::jsonb - 'price')::json
         where execution_id = $1::uuid and row_index = 4",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    let right = |row: u32| mino::server::demo::product(row).price();
    // Row 1: a wrong expected price (fp and fn). Row 2: two acceptable
    // prices, the right one second (tp). Row 3: no expected price.
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/ground-truth/bulk-set"),
            json!({"rows": [
                {"row": 1, "values": {"price": "99999"}},
                {"row": 2, "values": {"price": ["99999", right(2)]}},
                {"row": 3, "values": {"price": null}},
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Shown as one text, the values joined by " | ".
    let rows = app
        .get(&c, &format!("/api/v1/batches/{batch}/rows?limit=3"))
        .await;
    let row2 = rows.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == mino::model::row_id(seq, 2))
        .cloned()
        .unwrap_or_else(|| panic!("{:?}", rows.body));
    assert_eq!(
        row2["ground_truth"]["price"],
        format!("99999 | {}", right(2))
    );
    // Judge row 4 again (a no-op comparator change judges every run again).
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/price"),
            json!({"comparator_options": {"tolerance": 0.001}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // "Expected empty" unknown: row 3 is not judged. 9 judged: 7 hits
    // (rows 2, 5–10), row 1 wrong (fp + fn), row 4 missed (fn).
    let f = field_metrics(&app, &c, &id, "price").await;
    assert_eq!(
        (f["compared"].as_i64(), f["passed"].as_i64()),
        (Some(9), Some(7)),
        "{f}"
    );
    assert_eq!(
        (f["tp"].as_f64(), f["fp"].as_f64(), f["fn"].as_f64()),
        (Some(7.0), Some(1.0), Some(2.0)),
        "{f}"
    );
    assert!(
        close(&f["precision"], 7.0 / 8.0) && close(&f["recall"], 7.0 / 9.0),
        "{f}"
    );
    let f1 = 2.0 * (7.0 / 8.0) * (7.0 / 9.0) / (7.0 / 8.0 + 7.0 / 9.0);
    assert!(close(&f["f1"], f1), "{f}");
    let [lo, hi] = [
        f["accuracy_interval"][0].as_f64().unwrap(),
        f["accuracy_interval"][1].as_f64().unwrap(),
    ];
    assert!(lo <= 7.0 / 9.0 && 7.0 / 9.0 <= hi && hi - lo > 0.1, "{f}");
    // The same run gives the same interval.
    let again = field_metrics(&app, &c, &id, "price").await;
    assert_eq!(again["f1_interval"], f["f1_interval"]);

    // "Expected empty" absent: row 3's extracted price is a false positive.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/price"),
            json!({"empty_means": "absent"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let field = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "price")
        .unwrap()
        .clone();
    assert_eq!(field["empty_means"], "absent");
    assert_eq!(verdict_of(&app, &id, 3).await, "partial");
    let f = field_metrics(&app, &c, &id, "price").await;
    assert_eq!(
        (f["compared"].as_i64(), f["passed"].as_i64()),
        (Some(10), Some(7)),
        "{f}"
    );
    assert_eq!(
        (f["tp"].as_f64(), f["fp"].as_f64(), f["fn"].as_f64()),
        (Some(7.0), Some(2.0), Some(2.0)),
        "{f}"
    );
    assert!(
        close(&f["precision"], 7.0 / 9.0) && close(&f["recall"], 7.0 / 9.0),
        "{f}"
    );

    // Text similarity on titles: row 1 as extracted (1, 1), row 2 a
    // different text (precision 0, recall 0), row 3 cleared (not judged);
    // the other seven rows expect what was extracted (1, 1).
    let titles: Vec<(i32, String)> = sqlx::query_as(
        "select row_index, extracted->>'title' from jobs where execution_id = $1::uuid order by row_index",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let rows: Vec<Value> = titles
        .iter()
        .map(|(row, t)| match row {
            2 => json!({"row": row, "values": {"title": "zz yy xx ww vv"}}),
            3 => json!({"row": row, "values": {"title": null}}),
            _ => json!({"row": row, "values": {"title": t}}),
        })
        .collect();
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/ground-truth/bulk-set"),
            json!({"rows": rows}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/title"),
            json!({"comparator": "text_similarity", "comparator_options": {"threshold": 0.5}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let f = field_metrics(&app, &c, &id, "title").await;
    assert_eq!(
        (f["compared"].as_i64(), f["passed"].as_i64()),
        (Some(9), Some(8)),
        "{f}"
    );
    // Precision: mean over the 9 rows with tp+fp > 0 = 8/9; recall the same.
    assert!(
        close(&f["precision"], 8.0 / 9.0) && close(&f["recall"], 8.0 / 9.0),
        "{f}"
    );
    assert!(close(&f["f1"], 8.0 / 9.0), "{f}");
    // tp: 1 per identical row; row 2's shares are all fp and fn.
    assert!(close(&f["tp"], 8.0), "{f}");
    assert!(
        (f["fp"].as_f64().unwrap() + f["fn"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{f}"
    );
    let m = app
        .get(&c, &format!("/api/v1/executions/{id}/metrics"))
        .await
        .body;
    let [lo, hi] = [
        m["accuracy_interval"][0].as_f64().unwrap(),
        m["accuracy_interval"][1].as_f64().unwrap(),
    ];
    let acc = m["accuracy"].as_f64().unwrap();
    assert!(lo <= acc && acc <= hi, "{m}");
}

async fn executions_of(app: &TestApp, batch: &str) -> i64 {
    sqlx::query_scalar("select count(*) from executions where batch_id = $1::uuid")
        .bind(batch)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn an_imported_run_is_judged_like_the_same_values_from_a_real_run(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 17).await;
    let (batch, _, _) = batch_of(&app, &id).await;
    // The real run's values (row 13 failed: a 404), as a JSON Lines file.
    let jobs: Vec<(i32, Option<sqlx::types::Json<Value>>, Option<String>)> = sqlx::query_as(
        "select row_index, extracted, error from jobs where execution_id = $1::uuid order by row_index",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let mut jsonl = String::new();
    for (row, extracted, error) in &jobs {
        let mut line = json!({"row": row, "cost": 0.001, "duration_ms": 250});
        match (extracted, error) {
            (Some(x), _) => {
                for (k, v) in x.0.as_object().unwrap() {
                    line[k] = v.clone();
                }
            }
            (None, e) => line["error"] = json!(e.clone().unwrap_or_else(|| "failed".into())),
        }
        jsonl.push_str(&line.to_string());
        jsonl.push('\n');
    }
    let r = app
        .send_bytes(
            &c,
            &format!("/api/v1/batches/{batch}/imports?name=elsewhere.jsonl"),
            jsonl.into_bytes(),
            "application/x-ndjson",
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (r.body["agent"].as_str(), r.body["state"].as_str()),
        (Some("imported"), Some("completed"))
    );
    assert_eq!(
        (r.body["total"].as_i64(), r.body["passed"].as_i64()),
        (Some(17), Some(15)),
        "{:?}",
        r.body
    );
    let imported = r.body["id"].as_str().unwrap().to_string();
    let real = app
        .get(&c, &format!("/api/v1/executions/{id}/metrics"))
        .await
        .body;
    let mine = app
        .get(&c, &format!("/api/v1/executions/{imported}/metrics"))
        .await
        .body;
    for k in ["fields", "verdicts", "accuracy", "accuracy_interval"] {
        assert_eq!(mine[k], real[k], "{k}: {mine} vs {real}");
    }
    // 17 attempts of 0.001 each.
    assert_eq!(mine["cost_micros"], 17_000);
    // It compares with the real run: nothing fixed or regressed.
    let cmp = app
        .get(
            &c,
            &format!("/api/v1/executions/compare?a={id}&b={imported}"),
        )
        .await;
    assert_eq!(
        (
            cmp.body["fixed_count"].as_i64(),
            cmp.body["regressed_count"].as_i64()
        ),
        (Some(0), Some(0)),
        "{:?}",
        cmp.body
    );

    // A CSV keyed by URL, with a value list expected nowhere: a partial run.
    let url = |n: u32| app.url(&format!("/demo/products/{n}"));
    let csv = format!("url,price,title\n{},1,Wrong title\n", url(1));
    let r = app
        .send_bytes(
            &c,
            &format!("/api/v1/batches/{batch}/imports?key=url"),
            csv.into_bytes(),
            "text/csv",
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (
            r.body["mode"].as_str(),
            r.body["total"].as_i64(),
            r.body["failed"].as_i64()
        ),
        (Some("test"), Some(1), Some(1))
    );

    // Refusals name the line and column, and leave nothing behind.
    let before = executions_of(&app, &batch).await;
    let bad: [(&str, &str, &str, &str); 5] = [
        (
            "row",
            "text/csv",
            "row,price\n1,9\n999,9\n",
            "Line 3, column 1",
        ),
        (
            "row",
            "text/csv",
            "row,price\n1,9\n1,8\n",
            "Line 3, column 1",
        ),
        ("row", "text/csv", "row,colour\n1,red\n", "Line 1, column 2"),
        (
            "row",
            "application/x-ndjson",
            "{\"row\": 1}\n{\"row\": 2, \"price\": }\n",
            "Line 2, column",
        ),
        (
            "url",
            "application/x-ndjson",
            "{\"url\": \"https://nowhere.example/x\"}\n",
            "Line 1, column 2",
        ),
    ];
    for (key, kind, body, want) in bad {
        let r = app
            .send_bytes(
                &c,
                &format!("/api/v1/batches/{batch}/imports?key={key}"),
                body.as_bytes().to_vec(),
                kind,
                None,
            )
            .await;
        assert!(r.status.is_client_error(), "{body}: {:?}", r.body);
        let message = r
            .field("file")
            .unwrap_or_else(|| panic!("{body}: {:?}", r.body));
        assert!(message.contains(want), "{body}: {message}");
    }
    assert_eq!(executions_of(&app, &batch).await, before);
    let r = app
        .send_bytes(
            &c,
            &format!("/api/v1/batches/{batch}/imports?key=sku"),
            b"row\n1\n".to_vec(),
            "text/csv",
            None,
        )
        .await;
    assert!(r.field("key").is_some(), "{:?}", r.body);

    // Another organization's caller: the batch does not exist for them.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    let r = app
        .send_bytes(
            &other,
            &format!("/api/v1/batches/{batch}/imports"),
            b"row,price\n1,9\n".to_vec(),
            "text/csv",
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(executions_of(&app, &batch).await, before);
}

#[sqlx::test]
async fn compare_measures_a_test_run_and_a_production_run_on_their_shared_rows(db: PgPool) {
    let app = spawn_app(db).await;
    // A: a 34-row test run of the demo batch (rows 17 and 34 partial,
    // rows 13 and 29 errors).
    let (c, a) = finished_demo_run(&app, 34).await;
    let (batch, _, _) = batch_of(&app, &a).await;
    // B: a production run of all 200 rows that reads the first 34 right
    // and gets every other row's price wrong.
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "production"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["total"], 200);
    sqlx::query(
        "update jobs j set state = 'succeeded', finished_at = now(),
                extracted = case when j.row_index <= 34 then r.ground_truth
                                 else (r.ground_truth::jsonb || '{\"price\": \"0.01\"}')::json end
         from executions e, batches bt, batch_rows r
         where j.execution_id = $1::uuid and e.id = j.execution_id and bt.id = e.batch_id
           and r.batch_seq = bt.seq and r.row_index = j.row_index",
    )
    .bind(&b)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "update executions set state = 'completed', finished_at = now() where id = $1::uuid",
    )
    .bind(&b)
    .execute(&app.db)
    .await
    .unwrap();
    // Judged as a worker would: a comparator setting re-judges every run.
    let project: String =
        sqlx::query_scalar("select project_id::text from executions where id = $1::uuid")
            .bind(&b)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/price"),
            json!({"comparator_options": {"tolerance": 0.001}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let r = app
        .get(&c, &format!("/api/v1/executions/compare?a={a}&b={b}"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = &r.body;
    // The whole runs: A 30 × 1 + 2 × 0.75 over 32 judged rows; B 34 × 1 +
    // 166 × 0.75 over 200. Taken alone they say B is worse.
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&body["a"]["accuracy"], 31.5 / 32.0), "{}", body["a"]);
    assert!(
        close(&body["b"]["accuracy"], 158.5 / 200.0),
        "{}",
        body["b"]
    );
    // On the rows both judged, B is better: 32 rows (13 and 29 errored in
    // A), where A has 31.5 / 32 and B all right.
    assert_eq!(body["shared_rows"], 34);
    assert_eq!(body["judged_in_both"], 32);
    assert!(close(&body["shared_accuracy_a"], 31.5 / 32.0), "{body}");
    assert!(close(&body["shared_accuracy_b"], 1.0), "{body}");
    assert_eq!(
        (body["only_a"].as_i64(), body["only_b"].as_i64()),
        (Some(0), Some(166))
    );
    let price = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "price")
        .unwrap();
    assert_eq!(price["shared_compared"], 32, "{price}");
    assert!(close(&price["shared_accuracy_a"], 30.0 / 32.0), "{price}");
    assert!(close(&price["shared_accuracy_b"], 1.0), "{price}");
    assert!(close(&price["shared_f1_b"], 1.0), "{price}");
    // Each run's own figure is still there: B's price on its 200 rows.
    assert!(close(&price["accuracy_b"], 34.0 / 200.0), "{price}");

    // The page says on how many rows it compares.
    let page = app
        .open(&c, &format!("/o/acme/compare?a={a}&b={b}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(
            "Compared on the 34 rows both runs have (32 judged in both); A has 34 rows, B 200."
        ),
        "{}",
        &page[page.find("Compare runs").unwrap_or(0)..][..600.min(page.len())]
    );
    assert!(page.contains("Accuracy on the 32 rows both judged"));
}
