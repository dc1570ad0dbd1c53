//! The demo agent service: a small implementation of the remote agent
//! protocol (README, "Remote agents"), served at `POST /demo/agent`, so the
//! remote agent can be tried with nothing else running. It only knows the
//! demo shop: it reads the product number from the URL's path and renders
//! the page in-process — it never fetches anything, so it can't be used to
//! reach other addresses. It streams progress events as it goes and keeps
//! the shop's misbehaviour (404, 500, 429, slow).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{behaviour, pages, product, Behaviour, PRODUCTS};
use crate::model::{ExtractionRule, OutputField, ValueType};
use crate::server::agents::extract::Page;

#[derive(Deserialize)]
pub struct AgentRequest {
    url: String,
    #[serde(default)]
    fields: Vec<FieldSpec>,
}

#[derive(Deserialize)]
struct FieldSpec {
    name: String,
    #[serde(rename = "type")]
    field_type: ValueType,
    rule: ExtractionRule,
}

/// Pause between progress events, so a watcher sees the steps.
const STEP_PAUSE: Duration = Duration::from_millis(150);

fn product_number(url: &str) -> Option<u32> {
    let path = reqwest::Url::parse(url).ok()?.path().to_string();
    let n = path.strip_prefix("/demo/products/")?.trim_end_matches('/');
    n.parse().ok().filter(|n| (1..=PRODUCTS).contains(n))
}

fn line(v: Value) -> Result<Bytes, Infallible> {
    let mut s = v.to_string();
    s.push('\n');
    Ok(Bytes::from(s))
}

/// The fields' values on a product page (parsed pages can't be held
/// across an await: keep it in a plain function).
fn read_fields(html: &str, fields: Vec<FieldSpec>) -> Map<String, Value> {
    let page = Page::parse(html);
    let mut values = Map::new();
    for f in fields {
        let field = OutputField {
            name: f.name.clone(),
            field_type: f.field_type,
            comparator: f.field_type.default_comparator(),
            comparator_options: Default::default(),
            rule: f.rule,
            source: "manual".into(),
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        };
        values.insert(
            f.name,
            page.extract(&field)
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
    }
    values
}

pub async fn run(Json(req): Json<AgentRequest>) -> Response {
    let Some(n) = product_number(&req.url) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"type": "error", "retryable": false, "kind": "not_found",
                        "message": "The demo agent only knows the demo shop's product pages (…/demo/products/N)."})),
        )
            .into_response();
    };
    if behaviour(n) == Behaviour::RateLimited {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "5")],
            "busy",
        )
            .into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(8);
    tokio::spawn(async move {
        let send = |v: Value| {
            let tx = tx.clone();
            async move { tx.send(line(v)).await.is_ok() }
        };
        if !send(
            json!({"type": "progress", "step": "Opening the page", "url": req.url, "percent": 10}),
        )
        .await
        {
            return;
        }
        tokio::time::sleep(STEP_PAUSE).await;
        match behaviour(n) {
            Behaviour::NotFound => {
                send(
                    json!({"type": "error", "retryable": false, "kind": "not_found",
                            "message": format!("Product {n} does not exist (404).")}),
                )
                .await;
                return;
            }
            Behaviour::ServerError => {
                send(json!({"type": "log", "level": "warn", "message": "The shop answered 500."}))
                    .await;
                send(
                    json!({"type": "error", "retryable": true, "kind": "http_5xx",
                            "message": "The shop failed with 500."}),
                )
                .await;
                return;
            }
            Behaviour::Slow => tokio::time::sleep(super::SLOW_DELAY).await,
            _ => {}
        }
        send(json!({"type": "progress", "step": "Reading the fields", "url": req.url, "percent": 60})).await;
        tokio::time::sleep(STEP_PAUSE).await;
        let html = pages::product_page(&product(n));
        let values = read_fields(&html, req.fields);
        send(json!({"type": "log", "message": format!("Read {} field(s) from product {n}.", values.len())})).await;
        send(json!({"type": "result", "values": values, "output": {"product": n, "bytes": html.len()}})).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
