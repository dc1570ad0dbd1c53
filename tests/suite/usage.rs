//! Usage and budgets over the real router and Postgres: the rollup equals
//! the attempts (after runs, a late charge for model calls, two worker
//! pools counting at once and a restart), grouping by project and model,
//! the CSV, and a budget's thresholds (once each: audit entry, webhook
//! delivery, banner figures) and hard stop (pause, refuse, resume).

#![cfg(feature = "ssr")]

use crate::common;

use std::time::{Duration, Instant};

use common::{spawn_app, spawn_workers, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

/// An owner, the demo project at a price of 0.002 a job, and its batch.
async fn priced_demo(app: &TestApp) -> (reqwest::Client, String, String, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let demo = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let project = demo.body["project"]["id"].as_str().unwrap().to_string();
    let batch = demo.body["batch"]["id"].as_str().unwrap().to_string();
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"price_per_job": 0.002}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (c, org, project, batch)
}

async fn start(app: &TestApp, c: &reqwest::Client, batch: &str, rows: i32) -> String {
    let r = app
        .post(
            c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": rows, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn wait_state(app: &TestApp, c: &reqwest::Client, id: &str, state: &str) -> Value {
    let begun = Instant::now();
    loop {
        let e = app.get(c, &format!("/api/v1/executions/{id}")).await.body;
        if e["state"] == state {
            return e;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(40),
            "never {state}: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (attempts finished, jobs ended, input tokens, output tokens, cost)
/// counted straight from the attempts of the organization.
async fn from_attempts(db: &PgPool, org: &str) -> (i64, i64, i64, i64, i64) {
    sqlx::query_as(
        "select count(*) filter (where a.finished_at is not null),
                count(*) filter (where a.outcome in ('succeeded', 'failed')),
                coalesce(sum(a.input_tokens), 0)::bigint, coalesce(sum(a.output_tokens), 0)::bigint,
                coalesce(sum(a.cost_micros), 0)::bigint
         from attempts a join jobs j on j.id = a.job_id
         join executions e on e.id = j.execution_id where e.org_id = $1::uuid",
    )
    .bind(org)
    .fetch_one(db)
    .await
    .unwrap()
}

fn totals(r: &Value) -> (i64, i64, i64, i64, i64) {
    let t = &r["totals"];
    let n = |k: &str| t[k].as_i64().unwrap();
    (
        n("attempts"),
        n("jobs"),
        n("input_tokens"),
        n("output_tokens"),
        n("cost_micros"),
    )
}

#[sqlx::test]
async fn usage_equals_the_attempts_however_it_is_grouped(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (c, org, project, batch) = priced_demo(&app).await;

    // Two pools of workers (as two processes) count at once.
    let first = spawn_workers(&app);
    let second = spawn_workers(&app);
    let a = start(&app, &c, &batch, 30).await;
    let b = start(&app, &c, &batch, 20).await;
    wait_state(&app, &c, &a, "completed").await;
    wait_state(&app, &c, &b, "completed").await;
    let _ = (first.send(true), second.send(true));

    // Fold what was counted so far (as the background compactor does),
    // so the figures below come from the rollup and the deltas both.
    let folded = mino::server::db::usage::compact(&db).await.unwrap();
    // (One delta per statement and key, not per attempt: a result write
    // of many jobs of one run appends one.)
    assert!(folded > 0, "{folded} deltas folded");

    // A late charge for model calls (as the llm extractor's failed attempts
    // get): moves that attempt's cost and tokens under the model.
    sqlx::query(
        "update attempts set model = 'test-model', provider = 'test', input_tokens = 1200,
                output_tokens = 80, cost_micros = cost_micros + 3000
         where job_id = (select min(id) from jobs where execution_id = $1::uuid)",
    )
    .bind(&a)
    .execute(&db)
    .await
    .unwrap();

    let usage = |group: &'static str| {
        let (app, c, org) = (&app, &c, &org);
        async move {
            let r = app
                .get(c, &format!("/api/v1/orgs/{org}/usage?group_by={group}"))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body
        }
    };
    let want = from_attempts(&db, &org).await;
    assert_eq!(want.0, 50, "every job ran once");
    assert_eq!(want.4, 50 * 2000 + 3000);
    for group in ["day", "month", "project", "execution", "agent", "model"] {
        let r = usage(group).await;
        assert_eq!(totals(&r), want, "{group}");
        let sum: i64 = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["cost_micros"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, want.4, "{group}: the lines add up to the total");
    }
    let by_project = usage("project").await;
    assert_eq!(by_project["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_project["items"][0]["key"], project.as_str());
    assert_eq!(by_project["items"][0]["label"], "Demo shop");
    let by_model = usage("model").await;
    let models: Vec<(String, i64, i64)> = by_model["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["label"].as_str().unwrap().to_string(),
                i["input_tokens"].as_i64().unwrap(),
                i["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        models,
        vec![("No model".into(), 0, 49), ("test-model".into(), 1200, 1)],
        "ordered by cost: 49 × 0.002 against 0.005"
    );
    let by_run = usage("execution").await;
    assert_eq!(by_run["items"].as_array().unwrap().len(), 2);
    assert!(by_run["items"][0]["label"]
        .as_str()
        .unwrap()
        .starts_with("Demo shop · Test run v1 · "));
    assert_eq!(by_run["limits"]["executions_this_month"], 2);
    assert_eq!(
        by_run["this_month_by_day"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        &json!(want.4),
        "the chart's month-to-date ends at the month's cost"
    );

    // A restart changes nothing: the rollup is in the database.
    drop(app);
    let app = spawn_app(db.clone()).await;
    // Sessions live in Postgres too (and cookies ignore the port).
    let c2 = c;
    let r = app
        .get(&c2, &format!("/api/v1/orgs/{org}/usage?group_by=day"))
        .await;
    assert_eq!(totals(&r.body), want);

    // The CSV carries the same lines, money with six decimals.
    let csv = app
        .open(
            &c2,
            &format!("/api/v1/orgs/{org}/usage/export?group_by=model"),
        )
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "group,key,label,jobs,attempts,input_tokens,output_tokens,cost"
    );
    assert_eq!(lines[1], "model,,No model,49,49,0,0,0.098000");
    assert_eq!(lines[3], "model,total,Total,50,50,1200,80,0.103000");

    // Bad input names its field; another organization's usage is 404.
    let r = app
        .get(&c2, &format!("/api/v1/orgs/{org}/usage?from=2026-02-30"))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("from").is_some(), "{:?}", r.body);
    let r = app
        .get(&c2, &format!("/api/v1/orgs/{org}/usage?group_by=week"))
        .await;
    assert!(r.field("group_by").is_some(), "{:?}", r.body);
    let (eve, _) = app.user("eve@example.com", "Eve").await;
    assert_eq!(
        app.get(&eve, &format!("/api/v1/orgs/{org}/usage"))
            .await
            .status,
        404
    );
}

#[sqlx::test]
async fn a_budget_alerts_once_per_threshold_and_its_hard_stop_pauses_and_resumes(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (c, org, _, batch) = priced_demo(&app).await;
    let hook = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/webhooks"),
            json!({"url": "https://hooks.example.com/budget", "events": ["budget.threshold"]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{:?}", hook.body);

    // Ten jobs at 0.002: 0.02 spent.
    let workers = spawn_workers(&app);
    let first = start(&app, &c, &batch, 10).await;
    wait_state(&app, &c, &first, "completed").await;
    let _ = workers.send(true);

    // A budget of 0.03: 67% spent, so the 50% alert goes out at once.
    let r = app
        .call(
            &c,
            reqwest::Method::PUT,
            &format!("/api/v1/orgs/{org}/budget"),
            Some(json!({"monthly": "0.03", "hard_stop": true})),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["spent_micros"], 20_000);
    assert_eq!(r.body["reached"], json!([50]));
    assert_eq!(r.body["stopped"], false);

    // A long run starts; the checker (here called as every process does)
    // sees 100% pass and pauses it.
    let workers = spawn_workers(&app);
    let long = start(&app, &c, &batch, 200).await;
    let org_id: uuid::Uuid = org.parse().unwrap();
    let begun = Instant::now();
    loop {
        mino::server::service::usage::check(&db, org_id)
            .await
            .unwrap();
        let e = app
            .get(&c, &format!("/api/v1/executions/{long}"))
            .await
            .body;
        if e["state"] == "paused" {
            break;
        }
        assert!(
            e["state"] != "completed",
            "the run ended before the stop: {e}"
        );
        assert!(begun.elapsed() < Duration::from_secs(30), "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Checking again changes nothing: each threshold once.
    for _ in 0..3 {
        mino::server::service::usage::check(&db, org_id)
            .await
            .unwrap();
    }
    let b = app
        .get(&c, &format!("/api/v1/orgs/{org}/budget"))
        .await
        .body;
    assert_eq!(b["reached"], json!([50, 80, 100]));
    assert_eq!(b["stopped"], true);
    let audited: Vec<i64> = sqlx::query_scalar(
        "select (after->>'threshold')::bigint from audit_log
         where org_id = $1::uuid and action = 'organization.budget_threshold' order by id",
    )
    .bind(&org)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(audited, vec![50, 80, 100]);
    let sent: Vec<String> = sqlx::query_scalar(
        "select resource_id from webhook_deliveries
         where org_id = $1::uuid and event = 'budget.threshold' order by resource_id",
    )
    .bind(&org)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent
        .iter()
        .all(|s| s.ends_with(":100") || s.ends_with(":50") || s.ends_with(":80")));

    // Stopped: new runs and resuming by hand are refused.
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 1}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (402, "BUDGET_EXCEEDED"),
        "{:?}",
        r.body
    );
    let r = app
        .post(&c, &format!("/api/v1/executions/{long}/resume"), json!({}))
        .await;
    assert_eq!(r.code(), "BUDGET_EXCEEDED", "{:?}", r.body);
    // The page says so to everyone in the organization.
    let html = app.open(&c, "/o/acme/usage").await.text().await.unwrap();
    assert!(html.contains("data-testid=\"budget-banner\""));
    assert!(html.contains("The hard stop is in effect"));

    // Raising the budget lets the run go on and new ones start.
    let r = app
        .call(
            &c,
            reqwest::Method::PUT,
            &format!("/api/v1/orgs/{org}/budget"),
            Some(json!({"monthly": 100, "hard_stop": true})),
            None,
        )
        .await;
    assert_eq!(r.body["stopped"], false, "{:?}", r.body);
    wait_state(&app, &c, &long, "completed").await;
    let _ = workers.send(true);
    assert_eq!(
        app.post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 1}),
        )
        .await
        .status,
        201
    );
    // Bad amounts name the field.
    let r = app
        .call(
            &c,
            reqwest::Method::PUT,
            &format!("/api/v1/orgs/{org}/budget"),
            Some(json!({"monthly": "-5"})),
            None,
        )
        .await;
    assert!(r.field("monthly").is_some(), "{:?}", r.body);
}
