//! Evaluation sets: named, versioned sets of a batch's rows, chosen by
//! number, by row id or from a run's jobs; a run of a set runs exactly its
//! rows; bad choices name the field; another organization gets 404.

#![cfg(feature = "ssr")]

use crate::common;

use std::time::{Duration, Instant};

use common::{spawn_app, spawn_workers};
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn sets_are_saved_versioned_and_run_exactly_their_rows(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let sets = format!("/api/v1/batches/{batch}/evaluation-sets");

    // By row number: sorted, repeats dropped; the same name again is v2.
    let r = app
        .post(
            &c,
            &sets,
            json!({"name": "Hard rows", "rows": [7, 3, 5, 5]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (
            r.body["version"].clone(),
            r.body["rows"].clone(),
            r.body["size"].clone()
        ),
        (json!(1), json!([3, 5, 7]), json!(3))
    );
    let first = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &c,
            &sets,
            json!({"name": "Hard rows", "rows": [2, 4, 6, 8]}),
        )
        .await;
    assert_eq!(r.body["version"], 2, "{:?}", r.body);
    let second = r.body["id"].as_str().unwrap().to_string();
    let list = app.get(&c, &sets).await.body;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], second.as_str());
    let v1 = app
        .get(&c, &format!("/api/v1/evaluation-sets/{first}"))
        .await;
    assert_eq!(v1.body["rows"], json!([3, 5, 7]), "the old version stays");

    // Bad choices name the field and save nothing.
    for (body, field) in [
        (json!({"name": "x", "rows": [0, 1]}), "rows"),
        (json!({"name": "x", "rows": [100000]}), "rows"),
        (json!({"name": "x", "rows": [1], "row_ids": [1]}), "rows"),
        (json!({"name": "x", "row_ids": [1]}), "row_ids"),
        (json!({"name": "", "rows": [1]}), "name"),
        (
            json!({"name": "x", "execution_id": uuid::Uuid::new_v4()}),
            "execution_id",
        ),
        (
            json!({"name": "x", "rows": [1], "filter": {"status": "failed"}}),
            "filter",
        ),
    ] {
        let r = app.post(&c, &sets, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.field(field).is_some(), "{body}: {:?}", r.body);
    }
    assert_eq!(app.get(&c, &sets).await.body.as_array().unwrap().len(), 1);

    // A run of the set runs exactly its rows.
    let stop = spawn_workers(&app);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "evaluation_set": second, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["total"], 4);
    let run = r.body["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while app.get(&c, &format!("/api/v1/executions/{run}")).await.body["state"] != "completed" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{run}/jobs"))
        .await
        .body;
    let rows: Vec<i64> = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["row_index"].as_i64().unwrap())
        .collect();
    assert_eq!(rows, [2, 4, 6, 8]);

    // From a run's jobs matching a filter: the rows of its passing jobs.
    let passing = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["verdict"] == "pass")
        .count();
    let r = app
        .post(
            &c,
            &sets,
            json!({"name": "Passing", "execution_id": run, "filter": {"evaluation": "pass"}}),
        )
        .await;
    if passing == 0 {
        assert!(r.field("rows").is_some(), "{:?}", r.body);
    } else {
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.body["size"], passing as i64);
        assert_eq!(r.body["source"]["execution_id"], run.as_str());
    }
    // By row id, as the rows API gives them.
    let row_id: i64 = app
        .get(&c, &format!("/api/v1/batches/{batch}/rows?limit=1"))
        .await
        .body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(&c, &sets, json!({"name": "First", "row_ids": [row_id]}))
        .await;
    assert_eq!(r.body["rows"], json!([1]), "{:?}", r.body);

    // Another organization's member gets 404; a viewer can't delete.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Other").await;
    let r = app
        .get(&other, &format!("/api/v1/evaluation-sets/{second}"))
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .delete(&other, &format!("/api/v1/evaluation-sets/{second}"))
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .delete(&c, &format!("/api/v1/evaluation-sets/{second}"))
        .await;
    assert_eq!(r.status, 204);
    let list: Value = app.get(&c, &sets).await.body;
    let hard = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Hard rows")
        .unwrap();
    assert_eq!(hard["version"], 1, "deleting v2 leaves v1 as the latest");
}
