//! Project versions are whole run configurations: a change to a field's
//! extraction rule or to the agent settings saves a new version (a
//! comparator or a price does not); a run of an older version extracts
//! with that version's rules; the versions' diff and compare show what
//! changed in all three parts.

#![cfg(feature = "ssr")]

use crate::common;

use std::time::{Duration, Instant};

use common::{spawn_app, spawn_workers, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn run_version(app: &TestApp, c: &reqwest::Client, batch: &str, version: i64) -> Value {
    let r = app
        .post(
            c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 3, "max_retries": 0, "instruction_version": version}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["version"], version, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
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

/// The extracted prices of a run's jobs, in row order.
async fn prices(app: &TestApp, c: &reqwest::Client, execution: &str) -> Vec<Value> {
    let jobs = app
        .get(c, &format!("/api/v1/executions/{execution}/jobs"))
        .await
        .body;
    jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["extracted"]["price"].clone())
        .collect()
}

async fn versions(app: &TestApp, c: &reqwest::Client, project: &str) -> Value {
    app.get(c, &format!("/api/v1/projects/{project}/versions"))
        .await
        .body["items"]
        .clone()
}

#[sqlx::test]
async fn a_field_rule_change_is_a_new_version_that_runs_and_compares_as_such(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let project = r.body["project"]["id"].as_str().unwrap().to_string();
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let v = versions(&app, &c, &project).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    // The demo's first version is its whole set-up (the browser step).
    let first = app
        .get(&c, &format!("/api/v1/projects/{project}/instructions/1"))
        .await
        .body;
    assert_eq!(
        first["agent"]["steps"].as_array().map(Vec::len),
        Some(1),
        "{first}"
    );

    // Only a field rule changes: version 2, production follows.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/price"),
            json!({"rule": {"kind": "css", "selector": ".no-such-price"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["latest_version"], 2);
    assert_eq!(r.body["production_version"], 2);
    let v = versions(&app, &c, &project).await;
    assert_eq!(v[0]["version"], 2);
    assert_eq!(v[0]["parts"], json!(["fields"]));
    assert_eq!(v[0]["note"], "Fields: price (rule).");

    // Judging and operating settings are not run configuration.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/price"),
            json!({"comparator": "exact"}),
        )
        .await;
    assert_eq!(r.body["latest_version"], 2, "{:?}", r.body);
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"price_per_job": "0.5", "max_retries": 1}),
        )
        .await;
    assert_eq!(r.body["latest_version"], 2, "{:?}", r.body);
    // An agent setting that shapes output is, with the author's note.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"timeout_secs": 25, "note": "Slow pages need longer"}),
        )
        .await;
    assert_eq!(r.body["latest_version"], 3, "{:?}", r.body);
    let v = versions(&app, &c, &project).await;
    assert_eq!(v[0]["parts"], json!(["agent"]));
    // A bad note is a field error, and the change it came with is not saved.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"timeout_secs": 40, "note": "nul \0 here"}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.field("note").is_some(), "{:?}", r.body);
    let p = app
        .get(&c, &format!("/api/v1/projects/{project}"))
        .await
        .body;
    assert_eq!(
        (
            p["agent"]["timeout_secs"].clone(),
            p["latest_version"].clone()
        ),
        (json!(25), json!(3))
    );
    assert_eq!(v[0]["note"], "Slow pages need longer");
    let audit: Value = sqlx::query_scalar(
        "select after from audit_log where action = 'project.update_agent' order by id desc limit 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audit["version"], 3, "{audit}");

    // The diff of versions 1 and 2 is the rule, nothing else.
    let d = app
        .get(
            &c,
            &format!("/api/v1/projects/{project}/versions/diff?a=1&b=2"),
        )
        .await
        .body;
    assert_eq!(
        d["fields"],
        json!([{"field": "price",
                "before": {"rule": {"kind": "auto"}, "description": ""},
                "after": {"rule": {"kind": "css", "selector": ".no-such-price"}, "description": ""}}]),
        "{d}"
    );
    assert_eq!(d["agent"], json!([]), "{d}");
    assert_eq!(d["instructions"]["added"], 0, "{d}");
    let d = app
        .get(
            &c,
            &format!("/api/v1/projects/{project}/versions/diff?a=2&b=3"),
        )
        .await
        .body;
    assert_eq!(
        d["agent"],
        json!([{"setting": "timeout_secs", "before": "30", "after": "25"}]),
        "{d}"
    );

    // A run of version 1 extracts with version 1's rule (the automatic
    // one finds the demo prices); a run of version 2 with its own.
    let stop = spawn_workers(&app);
    let one = run_version(&app, &c, &batch, 1).await;
    let two = run_version(&app, &c, &batch, 2).await;
    let _ = stop.send(true);
    let (one, two) = (
        one["id"].as_str().unwrap().to_string(),
        two["id"].as_str().unwrap().to_string(),
    );
    let p1 = prices(&app, &c, &one).await;
    let p2 = prices(&app, &c, &two).await;
    assert!(p1.iter().all(|p| p.is_string() || p.is_number()), "{p1:?}");
    assert!(p2.iter().all(Value::is_null), "{p2:?}");

    // Compare names the rule's change.
    let cmp = app
        .get(&c, &format!("/api/v1/executions/compare?a={one}&b={two}"))
        .await
        .body;
    assert_eq!(
        cmp["version_diff"]["fields"][0]["after"]["rule"]["selector"], ".no-such-price",
        "{cmp}"
    );
    assert!(cmp["regressed_count"].as_i64().unwrap() > 0, "{cmp}");
}
