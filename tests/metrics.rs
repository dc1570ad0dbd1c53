//! `/metrics`: Prometheus text with requests by route pattern and status,
//! latency histograms, job attempts by outcome, queue gauges, live-view
//! subscribers and the database pool.

#![cfg(feature = "ssr")]

mod common;

use std::collections::HashMap;

use common::{finished_demo_run, spawn_app, TestApp};
use sqlx::PgPool;

/// The samples of a scrape: `name{labels}` → value.
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let res = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        samples.insert(name.to_string(), value.parse::<f64>().unwrap());
    }
    // Every sample has its TYPE line.
    for name in samples.keys() {
        let base = name.split('{').next().unwrap();
        let family = base
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            text.contains(&format!("# TYPE {family} "))
                || text.contains(&format!("# TYPE {base} ")),
            "{name} has no TYPE"
        );
    }
    samples
}

#[sqlx::test]
async fn requests_are_counted_by_route_pattern_and_timed(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Shop").await;
    let before = scrape(&app).await;
    let key = |status: u16| {
        format!("mino_http_requests_total{{method=\"GET\",route=\"/api/v1/projects/{{id}}\",status=\"{status}\"}}")
    };
    for _ in 0..3 {
        assert_eq!(
            app.get(&c, &format!("/api/v1/projects/{project}"))
                .await
                .status,
            200
        );
    }
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&c, &format!("/api/v1/projects/{missing}"))
            .await
            .status,
        404
    );
    let after = scrape(&app).await;
    let n = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    // Counters are per process and tests share one: compare differences.
    assert_eq!(n(&after, &key(200)) - n(&before, &key(200)), 3.0);
    assert_eq!(n(&after, &key(404)) - n(&before, &key(404)), 1.0);
    // The id never becomes a label.
    assert!(!after.keys().any(|k| k.contains(&project)));

    let h = "mino_http_request_duration_seconds";
    let labels = "method=\"GET\",route=\"/api/v1/projects/{id}\"";
    let count = n(&after, &format!("{h}_count{{{labels}}}"));
    assert!(count >= 4.0);
    assert_eq!(
        n(&after, &format!("{h}_bucket{{{labels},le=\"+Inf\"}}")),
        count
    );
    let mut last = 0.0;
    for le in ["0.001", "0.005", "0.01", "0.05", "0.1", "1", "10"] {
        let v = n(&after, &format!("{h}_bucket{{{labels},le=\"{le}\"}}"));
        assert!(v >= last, "buckets are cumulative");
        last = v;
    }
    assert!(n(&after, &format!("{h}_sum{{{labels}}}")) > 0.0);
    // Pages share one label, whatever their address.
    let page = "mino_http_requests_total{method=\"GET\",route=\"page\",status=\"200\"}";
    let res = app.open(&c, "/o/acme/projects").await;
    assert_eq!(res.status(), 200);
    let later = scrape(&app).await;
    assert_eq!(n(&later, page) - n(&after, page), 1.0);
    assert!(n(&after, "mino_db_pool_max_connections") >= 1.0);
    assert!(after.contains_key("mino_db_pool_connections{state=\"idle\"}"));
    assert!(after.contains_key("mino_sse_subscribers"));
}

#[sqlx::test]
async fn job_attempts_and_the_queue_are_reported(db: PgPool) {
    let app = spawn_app(db).await;
    let before = scrape(&app).await;
    let n = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    // 34 demo rows: most succeed, a few fail for good (retries are off).
    let _ = finished_demo_run(&app, 34).await;
    let after = scrape(&app).await;
    let ended: f64 = ["succeeded", "failed"]
        .iter()
        .map(|o| {
            let k = format!("mino_job_attempts_total{{outcome=\"{o}\"}}");
            n(&after, &k) - n(&before, &k)
        })
        .sum();
    assert!(ended >= 34.0, "{ended}");
    assert_eq!(n(&after, "mino_jobs{state=\"queued\"}"), 0.0);
    assert_eq!(n(&after, "mino_queue_depth"), 0.0);
    assert!(after.contains_key("mino_jobs{state=\"running\"}"));
}
