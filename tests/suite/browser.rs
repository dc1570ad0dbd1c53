//! The browser agent with the real Chromium against the demo shop: pages
//! whose product is written by script are read by the browser and missed
//! by the http agent; every browser attempt leaves a screenshot, served to
//! the organization and to nobody else.

#![cfg(feature = "ssr")]

use crate::common;

use std::time::{Duration, Instant};

use common::{spawn_app, spawn_workers};
use mino::model::{
    BrowserStep, Comparator, ComparatorOptions, ExtractionRule, OutputField, ValueType,
};
use mino::server::agents::fetch::{client, FetchPolicy};
use mino::server::agents::sources::browser::BrowserAgent;
use mino::server::agents::sources::http::HttpAgent;
use mino::server::agents::{Agent, JobInput, Progress};
use mino::server::demo::product;
use serde_json::{json, Value};
use sqlx::PgPool;

fn local() -> FetchPolicy {
    FetchPolicy {
        allow_private: true,
        timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

fn field(name: &str, t: ValueType) -> OutputField {
    OutputField {
        name: name.into(),
        field_type: t,
        comparator: Comparator::Exact,
        comparator_options: ComparatorOptions::default(),
        rule: ExtractionRule::Auto,
        source: "test".into(),
        description: String::new(),
        empty_means: Default::default(),
        multi_value_separator: None,
    }
}

fn job(url: String) -> JobInput {
    JobInput {
        job_id: 0,
        attempt: 1,
        url,
        inputs: Default::default(),
        instructions: String::new(),
        instruction_version: 1,
        fields: vec![
            field("title", ValueType::Text),
            field("price", ValueType::Number),
        ],
        timeout_secs: 20,
        row_index: 0,
        wait_for: None,
        steps: Vec::new(),
    }
}

#[sqlx::test]
async fn script_rendered_products_are_read_by_the_browser_and_missed_by_http(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let browser = BrowserAgent::new(db, local(), 2, "agent-test");
    let http = HttpAgent {
        client: client(&local()),
        policy: local(),
    };
    for n in [3, 4] {
        let p = product(n);
        let input = job(app.url(&format!("/demo/rendered/{n}")));
        let progress = Progress::default();
        let seen = browser.run(&input, &progress).await.unwrap();
        assert_eq!(seen.values["title"], json!(p.title), "{n}: {:?}", seen.raw);
        assert_eq!(
            seen.values["price"],
            json!(p.price()),
            "{n}: {:?}",
            seen.raw
        );
        let log: Vec<String> = progress
            .log_lines()
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert!(
            log.iter().any(|l| l.starts_with("Network quiet after")),
            "{log:?}"
        );
        let fetched = http.run(&input, &Progress::default()).await.unwrap();
        assert_eq!(
            fetched.values["price"],
            Value::Null,
            "{n}: {:?}",
            fetched.raw
        );
    }
    // One browser for the process, however many jobs; a dead one is
    // started again on the next job.
    assert_eq!(
        browser.launches.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    browser.kill_browser().await;
    let again = browser
        .run(&job(app.url("/demo/rendered/5")), &Progress::default())
        .await
        .unwrap();
    assert_eq!(again.values["price"], json!(product(5).price()));
    assert_eq!(
        browser.launches.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[sqlx::test]
async fn a_click_step_reveals_what_only_a_click_shows(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let browser = BrowserAgent::new(db, local(), 2, "agent-test");
    let http = HttpAgent {
        client: client(&local()),
        policy: local(),
    };
    let n = 8;
    let p = product(n);
    let url = app.url(&format!("/demo/reveal/{n}"));
    // Without the click, neither the browser nor http sees a price.
    let plain = browser
        .run(&job(url.clone()), &Progress::default())
        .await
        .unwrap();
    assert_eq!(plain.values["title"], json!(p.title));
    assert_eq!(plain.values["price"], Value::Null, "{:?}", plain.raw);
    let fetched = http
        .run(&job(url.clone()), &Progress::default())
        .await
        .unwrap();
    assert_eq!(fetched.values["price"], Value::Null);
    // With it (and a step whose element is missing, skipped), it does.
    let mut input = job(url);
    input.steps = vec![
        BrowserStep::parse_line("click #no-such-button").unwrap(),
        BrowserStep::parse_line("click #show-price").unwrap(),
    ];
    let progress = Progress::default();
    let seen = browser.run(&input, &progress).await.unwrap();
    assert_eq!(seen.values["price"], json!(p.price()), "{:?}", seen.raw);
    let log: Vec<String> = progress
        .log_lines()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert!(
        log.iter()
            .any(|l| l
                .starts_with("Step 1 of 2: click #no-such-button: no element matches; skipped")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("Step 2 of 2: click #show-price: done in")),
        "{log:?}"
    );
    // The rendered DOM, as read, comes back for keeping.
    let page = seen.page.expect("a copy of the page");
    assert!(
        page.html.contains(&p.price()),
        "the revealed details are in the copy"
    );
    assert!(
        !page.html.contains("<button"),
        "the copy is the DOM after the click"
    );

    // Waiting for an element instead of a quiet network.
    let mut input = job(app.url("/demo/rendered/9"));
    input.wait_for = Some("main h1".into());
    let progress = Progress::default();
    let seen = browser.run(&input, &progress).await.unwrap();
    assert_eq!(seen.values["price"], json!(product(9).price()));
    let log: Vec<String> = progress
        .log_lines()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert!(
        log.iter().any(|l| l.starts_with("main h1 appeared after")),
        "{log:?}"
    );
}

#[sqlx::test]
async fn a_browser_run_keeps_a_screenshot_of_every_attempt_for_its_organization(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Rendered shop").await;
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "browser"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let p = product(6);
    let csv = format!(
        "url,gt_title,gt_price\n{},{},{}\n{},,\n",
        app.url("/demo/rendered/6"),
        p.title,
        p.price(),
        app.url("/demo/rendered/999999"),
    );
    let r = app.upload(&c, &project, &csv, "").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let stop = spawn_workers(&app);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "production", "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["agent"], "browser");
    let id = r.body["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while app.get(&c, &format!("/api/v1/executions/{id}")).await.body["state"] != "completed" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{id}/jobs"))
        .await
        .body;
    let items = jobs["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["verdict"], "pass", "{:?}", items[0]);
    // A page that isn't there fails as the http agent's would.
    assert_eq!(
        (items[1]["state"].as_str(), items[1]["error_class"].as_str()),
        (Some("failed"), Some("not_found")),
        "{:?}",
        items[1]
    );
    // Both attempts have a picture: the product, and the shop's 404 page.
    let mut shots = vec![];
    for j in items {
        let detail = app.get(&c, &format!("/api/v1/jobs/{}", j["id"])).await.body;
        let url = detail["attempts"][0]["screenshot_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no screenshot: {detail}"))
            .to_string();
        shots.push(url);
    }
    for url in &shots {
        let r = app.open(&c, url).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(&bytes[..2], &[0xff, 0xd8], "a JPEG");
    }
    // Another organization's member sees nothing there.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    assert_eq!(app.open(&other, &shots[0]).await.status(), 404);
}

/// In-process workers named `worker` (their browser's profile carries the
/// name, so this test can find its own Chromium among the others').
fn named_workers(app: &common::TestApp, worker: &str) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    mino::server::executor::spawn(
        app.db.clone(),
        mino::server::executor::Settings {
            slots: 8,
            allow_private_targets: true,
            demo_origin: None,
            worker_id: worker.into(),
            lease: mino::server::executor::LEASE,
        },
        mino::server::live::Hub::start(app.db.clone(), stopped.clone()),
        stopped,
    );
    stop
}

/// Polls the execution until `done` says so, within `limit`; the last
/// state seen, and the most jobs seen running at once.
async fn watch(
    app: &common::TestApp,
    c: &reqwest::Client,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, i64) {
    let start = Instant::now();
    let mut peak = 0;
    loop {
        let e = app.get(c, &format!("/api/v1/executions/{id}")).await.body;
        peak = peak.max(e["running"].as_i64().unwrap_or(0));
        if done(&e) {
            return (e, peak);
        }
        assert!(start.elapsed() < limit, "gave up waiting: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn browser_jobs_obey_stop_concurrency_and_survive_a_browser_crash(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Slow pages").await;
    // Every job lingers on its page for a while.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "browser", "timeout_secs": 30,
                   "steps": [{"action": "wait", "ms": 1500}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut csv = String::from("url,gt_price\n");
    for n in 1..=6 {
        csv.push_str(&format!(
            "{},{}\n",
            app.url(&format!("/demo/products/{n}")),
            product(n).price()
        ));
    }
    let batch = app.upload(&c, &project, &csv, "").await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let _workers = named_workers(&app, "browser-executor-test");
    let start = |body: Value| {
        let (app, c, batch) = (&app, &c, &batch);
        async move {
            let r = app
                .post(c, &format!("/api/v1/batches/{batch}/executions"), body)
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            r.body["id"].as_str().unwrap().to_string()
        }
    };

    // The execution's concurrency holds for browser jobs.
    let id = start(json!({"mode": "production", "concurrency": 2, "max_retries": 0})).await;
    let (e, peak) = watch(&app, &c, &id, Duration::from_secs(60), |e| {
        e["state"] == "completed"
    })
    .await;
    assert_eq!(e["completed"], 6, "{e}");
    assert_eq!(peak, 2, "at most (and at best) two pages at once");

    // Stop interrupts running browser jobs at once.
    let id = start(json!({"mode": "production", "concurrency": 3, "max_retries": 0})).await;
    watch(&app, &c, &id, Duration::from_secs(30), |e| {
        e["running"] == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let r = app
        .post(&c, &format!("/api/v1/executions/{id}/stop"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (e, _) = watch(&app, &c, &id, Duration::from_secs(5), |e| {
        e["running"] == 0 && e["state"] == "cancelled"
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "stopping took {:?}",
        asked.elapsed()
    );
    assert_eq!(e["completed"], 0, "{e}");

    // Chromium killed in the middle of a job: the job is retried on a new
    // browser and completes.
    let id = start(json!({"mode": "test", "sample_size": 1, "max_retries": 2})).await;
    watch(&app, &c, &id, Duration::from_secs(30), |e| {
        e["running"] == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", "mino-chromium-.*browser-executor-test"])
        .status()
        .unwrap();
    assert!(killed.success(), "no Chromium of this test was running");
    let (e, _) = watch(&app, &c, &id, Duration::from_secs(40), |e| {
        e["state"] == "completed"
    })
    .await;
    assert_eq!(e["completed"], 1, "{e}");
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{id}/jobs"))
        .await
        .body;
    let job = &jobs["items"][0];
    assert_eq!(job["verdict"], "pass", "{job}");
    let detail = app
        .get(&c, &format!("/api/v1/jobs/{}", job["id"]))
        .await
        .body;
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["error_class"], "browser_crashed", "{detail}");
}

#[sqlx::test]
async fn watchers_of_a_running_browser_job_get_live_frames_and_nobody_else_does(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Watched").await;
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "browser", "timeout_secs": 30,
                   "steps": [{"action": "wait", "ms": 15000}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let csv = format!("url\n{}\n", app.url("/demo/products/2"));
    let batch = app.upload(&c, &project, &csv, "").await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let _workers = spawn_workers(&app);
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    watch(&app, &c, &id, Duration::from_secs(30), |e| {
        e["running"] == 1
    })
    .await;
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{id}/jobs"))
        .await
        .body;
    let frame_url = format!("/api/v1/jobs/{}/live-frame", jobs["items"][0]["id"]);
    // The page is open once the job is at its wait step (starting Chromium
    // takes a while on a busy machine).
    let at_step = Instant::now();
    loop {
        let step: Option<String> =
            sqlx::query_scalar("select progress->>'step' from jobs where execution_id = $1::uuid")
                .bind(&id)
                .fetch_one(&db)
                .await
                .unwrap();
        if step
            .as_deref()
            .is_some_and(|s| s.starts_with("Step 1 of 1"))
        {
            break;
        }
        assert!(at_step.elapsed() < Duration::from_secs(60), "{step:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nobody has watched yet: no frame was taken.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(mino::server::db::live_frames::count(&db).await.unwrap(), 0);
    // A viewer asks; frames follow within a moment, and keep coming.
    let start = Instant::now();
    let mut taken = vec![];
    while taken.len() < 2 {
        let r = app.open(&c, &frame_url).await;
        match r.status().as_u16() {
            204 => {}
            200 => {
                assert_eq!(r.headers()["content-type"], "image/jpeg");
                let at = r.headers()["x-mino-frame-at"].to_str().unwrap().to_string();
                let jpeg = r.bytes().await.unwrap();
                assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
                if taken.last() != Some(&at) {
                    taken.push(at);
                }
            }
            other => panic!("{other}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(7),
            "frames: {taken:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another organization sees no frame of it.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    assert_eq!(app.open(&other, &frame_url).await.status(), 404);
    // Once the job ended, its frame is gone.
    watch(&app, &c, &id, Duration::from_secs(30), |e| {
        e["state"] == "completed"
    })
    .await;
    assert_eq!(app.open(&c, &frame_url).await.status(), 204);
    assert_eq!(mino::server::db::live_frames::count(&db).await.unwrap(), 0);
}

#[sqlx::test]
async fn a_private_subresource_is_blocked_and_logged_and_the_job_completes(db: PgPool) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // A server on a private address (loopback) that counts what reaches it.
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "{}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let private = format!("http://{}", listener.local_addr().unwrap());
    let ws = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // The document itself is not on a private address (a data: URL); its
    // image, its script's fetch and its WebSocket are.
    let html = format!(
        "<html><head><title>Mug</title></head><body><h1>Blue mug</h1>\
         <p class=\"price\">$12.50</p><img src=\"{private}/pixel.png\">\
         <script>fetch('{private}/api/track').catch(function () {{}});\
         try {{ new WebSocket('{ws}/socket'); }} catch (e) {{}}</script></body></html>"
    );
    let url = format!(
        "data:text/html;charset=utf-8,{}",
        url::form_urlencoded::byte_serialize(html.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    );
    let closed = FetchPolicy {
        allow_private: false,
        timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let browser = BrowserAgent::new(db, closed, 1, "private-test");
    let progress = Progress::default();
    let out = browser.run(&job(url), &progress).await.unwrap();
    assert_eq!(out.values["title"], json!("Blue mug"), "{:?}", out.raw);
    assert_eq!(out.values["price"], json!("12.50"), "{:?}", out.raw);
    assert_eq!(out.raw["blocked"], 3, "{:?}", out.raw);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a blocked request got through"
    );
    let log: Vec<String> = progress
        .log_lines()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("Blocked a request to {private}/pixel.png"))),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("Blocked a WebSocket to {ws}/socket"))),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.contains("3 blocked")), "{log:?}");
}
