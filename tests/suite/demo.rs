//! The demo shop served by the real router, fetched by the agent's fetcher
//! and read by its extractor; its CSV uploaded as a batch.

#![cfg(feature = "ssr")]

use crate::common;

use std::time::Duration;

use common::spawn_app;
use mino::model::{Comparator, ComparatorOptions, ExtractionRule, OutputField, ValueType};
use mino::server::agents::extract::Page;
use mino::server::agents::fetch::{client, fetch, ErrorClass, FetchPolicy};
use mino::server::demo::{behaviour, product, Behaviour};
use sqlx::PgPool;

fn local() -> FetchPolicy {
    FetchPolicy {
        allow_private: true,
        timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn first(b: Behaviour) -> u32 {
    (1..).find(|n| behaviour(*n) == b).unwrap()
}

#[sqlx::test]
async fn pages_fetch_and_extract_with_the_expected_values(db: PgPool) {
    let app = spawn_app(db).await;
    let policy = local();
    let c = client(&policy);
    for n in [1, 2, 3, 4, 5, 10, 20] {
        let p = product(n);
        let got = fetch(&c, &app.url(&format!("/demo/products/{n}")), &policy)
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        let page = Page::parse(&got.body);
        let field = |name: &str, t| OutputField {
            name: name.into(),
            field_type: t,
            comparator: Comparator::Exact,
            comparator_options: ComparatorOptions::default(),
            rule: ExtractionRule::Auto,
            source: "csv".into(),
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        };
        assert_eq!(
            page.extract(&field("title", ValueType::Text)),
            Some(p.title.clone()),
            "{n}"
        );
        assert_eq!(
            page.extract(&field("price", ValueType::Number)),
            Some(p.price()),
            "{n}"
        );
        assert_eq!(
            page.extract(&field("currency", ValueType::Text)).as_deref(),
            Some(p.currency),
            "{n}"
        );
    }
}

#[sqlx::test]
async fn failures_are_classified(db: PgPool) {
    let app = spawn_app(db).await;
    let policy = local();
    let c = client(&policy);
    let url = |n: u32| app.url(&format!("/demo/products/{n}"));

    let e = fetch(&c, &url(first(Behaviour::NotFound)), &policy)
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.class), ("http_4xx", ErrorClass::Permanent));
    let e = fetch(&c, &url(first(Behaviour::ServerError)), &policy)
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.class), ("http_5xx", ErrorClass::Transient));
    let e = fetch(&c, &url(first(Behaviour::RateLimited)), &policy)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.class, e.retry_after),
        (
            "http_429",
            ErrorClass::Transient,
            Some(Duration::from_secs(5))
        )
    );
    // Flaky: fails once, then answers.
    let flaky = url(first(Behaviour::Flaky));
    let e = fetch(&c, &flaky, &policy).await.unwrap_err();
    assert_eq!(e.kind, "http_5xx");
    assert_eq!(fetch(&c, &flaky, &policy).await.unwrap().status, 200);
    // Slow pages hit a short timeout as a transient error.
    let short = FetchPolicy {
        timeout: Duration::from_millis(300),
        ..local()
    };
    let e = fetch(&c, &url(first(Behaviour::Slow)), &short)
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.class), ("timeout", ErrorClass::Transient));
    // Nothing listening: a transient connection error.
    let e = fetch(&c, "http://127.0.0.1:9/", &policy).await.unwrap_err();
    assert_eq!((e.kind, e.class), ("connection", ErrorClass::Transient));
}

#[sqlx::test]
async fn redirects_are_followed_within_the_limit(db: PgPool) {
    let app = spawn_app(db).await;
    let policy = local();
    let c = client(&policy);
    let got = fetch(&c, &app.url("/demo/go/8"), &policy).await.unwrap();
    assert!(got.url.ends_with("/demo/products/8"));
    assert_eq!(got.hops.len(), 1);
    let none = FetchPolicy {
        max_redirects: 0,
        ..local()
    };
    let e = fetch(&c, &app.url("/demo/go/8"), &none).await.unwrap_err();
    assert_eq!(
        (e.kind, e.class),
        ("too_many_redirects", ErrorClass::Permanent)
    );
    // Without permission, the local shop is a private target, and so is a
    // redirect into it.
    let strict = FetchPolicy::default();
    let sc = client(&strict);
    let e = fetch(&sc, &app.url("/demo/products/8"), &strict)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "private_target");
}

#[sqlx::test]
async fn the_demo_csv_uploads_as_a_batch_with_ground_truth(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let p = app.project(&c, &org, "Demo").await;
    let csv = c
        .get(app.url("/demo/sites.csv?rows=200"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("url,sku,gt_title,gt_price,gt_currency,gt_in_stock\n"));
    let r = app.upload(&c, &p, &csv, "name=Demo").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["row_count"], 200);
    assert_eq!(r.body["gt_coverage"]["price"], 200);
    let price = r.body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gt_price")
        .unwrap();
    assert_eq!(price["type"], "number");
}

#[sqlx::test]
async fn loading_the_demo_project_makes_a_project_and_its_batch(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/demo-project"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["project"]["name"], "Demo shop");
    assert_eq!(r.body["batch"]["row_count"], 200);
    let fields: Vec<&str> = r.body["project"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "price", "currency", "in_stock"]);
    let batch = r.body["batch"]["id"].as_str().unwrap();
    let rows = app
        .get(&c, &format!("/api/v1/batches/{batch}/rows?limit=1"))
        .await;
    assert_eq!(
        rows.body["items"][0]["site_url"],
        format!("{}/demo/products/1", app.base)
    );
    // A few rows only a browser reads, and the step that reveals them.
    let rows = app
        .get(&c, &format!("/api/v1/batches/{batch}/rows?limit=100"))
        .await;
    let urls: Vec<&str> = rows.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["site_url"].as_str().unwrap())
        .collect();
    let base = &app.base;
    assert!(
        urls.contains(&format!("{base}/demo/rendered/45").as_str()),
        "{urls:?}"
    );
    assert!(
        urls.contains(&format!("{base}/demo/reveal/48").as_str()),
        "{urls:?}"
    );
    assert!(urls.contains(&format!("{base}/demo/products/47").as_str()));
    assert_eq!(
        r.body["project"]["agent"]["steps"],
        serde_json::json!([{"action": "click", "selector": "#show-price"}])
    );
    // Loading again makes a second one rather than failing on the name.
    let again = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/demo-project"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(again.body["project"]["name"], "Demo shop 2");
}

#[sqlx::test]
async fn the_http_agent_says_where_each_value_came_from(db: PgPool) {
    use mino::server::agents::sources::http::HttpAgent;
    use mino::server::agents::{Agent, JobInput, Progress};
    let app = spawn_app(db).await;
    let policy = local();
    let agent = HttpAgent {
        client: client(&policy),
        policy,
    };
    let n = (1..)
        .find(|n| product(*n).markup == mino::server::demo::Markup::JsonLd)
        .unwrap();
    let field = |name: &str, t| OutputField {
        name: name.into(),
        field_type: t,
        comparator: t.comparator_for(name),
        comparator_options: ComparatorOptions::default(),
        rule: ExtractionRule::Auto,
        source: "csv".into(),
        description: String::new(),
        empty_means: Default::default(),
        multi_value_separator: None,
    };
    let job = JobInput {
        job_id: 1,
        attempt: 1,
        url: app.url(&format!("/demo/products/{n}")),
        inputs: Default::default(),
        instructions: String::new(),
        instruction_version: 1,
        fields: vec![
            field("price", ValueType::Number),
            field("colour", ValueType::Text),
        ],
        timeout_secs: 10,
        row_index: 0,
        wait_for: None,
        steps: Vec::new(),
    };
    let progress = Progress::default();
    let out = agent.run(&job, &progress).await.unwrap();
    assert_eq!(out.values["price"], product(n).price());
    assert!(out.values["colour"].is_null());
    let source = out.raw["sources"]["price"]["source"].as_str().unwrap();
    assert!(source.starts_with("JSON-LD"), "{source}");
    let log: Vec<String> = progress
        .log_lines()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert!(
        log.iter()
            .any(|l| l.starts_with("price: ") && l.contains("from JSON-LD")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l == "colour: no value found"), "{log:?}");
}
