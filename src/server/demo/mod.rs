//! The demo site (F19): a deterministic shop to try agents on with no
//! internet. Product `n` always has the same title, price, currency, stock
//! and rating, in one of four markup styles (JSON-LD, microdata, an HTML
//! table, labelled text with Open Graph tags), and some products misbehave
//! on purpose: slow, missing (404), broken (500), rate-limited (429 with
//! Retry-After) or flaky (503 on the first request, fine afterwards).
//!
//! Served under `/demo` by `mino serve` and alone by `mino demo-site`, with
//! a demo agent service for the remote agent at `POST /demo/agent`.

mod agent;
mod pages;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub use pages::{product, product_page as pages_html, Markup, Product, Stock};

/// How many products the shop has.
pub const PRODUCTS: u32 = 10_000;

/// What a product page does instead of (or before) answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// Answers after [`SLOW_DELAY`].
    Slow,
    NotFound,
    ServerError,
    /// 429 with `Retry-After: 5`, every time.
    RateLimited,
    /// 503 on the first request to this process, 200 after.
    Flaky,
}

pub const SLOW_DELAY: Duration = Duration::from_millis(1500);

/// The schedule of misbehaviour, by product number (out of every 100).
pub fn behaviour(n: u32) -> Behaviour {
    match n % 100 {
        13 => Behaviour::NotFound,
        29 => Behaviour::ServerError,
        41 => Behaviour::RateLimited,
        57 => Behaviour::Flaky,
        71 => Behaviour::Slow,
        _ => Behaviour::Normal,
    }
}

#[derive(Clone, Default)]
struct DemoState {
    /// Flaky products already asked for once.
    seen: Arc<Mutex<HashSet<u32>>>,
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/products/{n}", get(product_page))
        .route("/rendered/{n}", get(rendered_page))
        .route("/reveal/{n}", get(reveal_page))
        .route("/api/products/{n}", get(product_json))
        .route("/go/{n}", get(go))
        .route("/sites.csv", get(sites_csv))
        .route("/agent", axum::routing::post(agent::run))
        .with_state(DemoState::default())
}

async fn index() -> Html<String> {
    Html(pages::index_page())
}

async fn product_page(State(state): State<DemoState>, Path(n): Path<String>) -> Response {
    let Some(n) = n.parse::<u32>().ok().filter(|n| (1..=PRODUCTS).contains(n)) else {
        return (StatusCode::NOT_FOUND, Html(pages::not_found_page())).into_response();
    };
    match behaviour(n) {
        Behaviour::NotFound => {
            return (StatusCode::NOT_FOUND, Html(pages::not_found_page())).into_response()
        }
        Behaviour::ServerError => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
        Behaviour::RateLimited => {
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, 5.into());
            return (StatusCode::TOO_MANY_REQUESTS, headers, "Too Many Requests").into_response();
        }
        Behaviour::Flaky => {
            let first = state.seen.lock().map(|mut s| s.insert(n)).unwrap_or(false);
            if first {
                return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
            }
        }
        Behaviour::Slow => tokio::time::sleep(SLOW_DELAY).await,
        Behaviour::Normal => {}
    }
    Html(pages::product_page(&product(n))).into_response()
}

/// Product `n` written into the page by script (see `pages::rendered_page`):
/// only a browser reads it.
async fn rendered_page(Path(n): Path<String>) -> Response {
    match n.parse::<u32>().ok().filter(|n| (1..=PRODUCTS).contains(n)) {
        Some(n) => Html(pages::rendered_page(n)).into_response(),
        None => (StatusCode::NOT_FOUND, Html(pages::not_found_page())).into_response(),
    }
}

/// Product `n` with its price behind a "Show price" button (see
/// `pages::reveal_page`): read by a browser with a click step.
async fn reveal_page(Path(n): Path<String>) -> Response {
    match n.parse::<u32>().ok().filter(|n| (1..=PRODUCTS).contains(n)) {
        Some(n) => Html(pages::reveal_page(&product(n))).into_response(),
        None => (StatusCode::NOT_FOUND, Html(pages::not_found_page())).into_response(),
    }
}

/// The data the script-rendered page fetches: the product's title and the
/// HTML a normal product page shows.
async fn product_json(Path(n): Path<String>) -> Response {
    match n.parse::<u32>().ok().filter(|n| (1..=PRODUCTS).contains(n)) {
        Some(n) => {
            let p = product(n);
            axum::Json(serde_json::json!({"title": p.title, "html": pages::product_main(&p)}))
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A short link that redirects (302) to product `n`, for redirect handling.
async fn go(Path(n): Path<u32>) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/demo/products/{n}"))],
    )
        .into_response()
}

#[derive(Deserialize)]
struct CsvQuery {
    rows: Option<u32>,
    base: Option<String>,
}

/// A batch for the demo shop: `rows` products (default 200) with their
/// expected title, price and stock, a few of them deliberately wrong (every
/// 17th price is off by one), so evaluation has something to find.
async fn sites_csv(headers: HeaderMap, Query(q): Query<CsvQuery>) -> Response {
    let rows = q.rows.unwrap_or(200).clamp(1, PRODUCTS);
    let base = q.base.unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1:3000");
        format!("http://{host}/demo")
    });
    let body = sites_csv_text(&base, rows);
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// How the demo batch serves product `n`: most as plain pages; a few only
/// a browser reads (written by script, or behind a "Show price" button),
/// so an http run misses them and a browser run with the demo project's
/// click step gets them.
pub fn demo_page_path(n: u32) -> String {
    match n % 50 {
        45 => format!("rendered/{n}"),
        48 => format!("reveal/{n}"),
        _ => format!("products/{n}"),
    }
}

/// The demo project's browser step: reveal the price where a button hides it.
pub const DEMO_STEP: &str = "click #show-price";

/// The demo batch as CSV text; `base` is where the shop is served.
pub fn sites_csv_text(base: &str, rows: u32) -> String {
    let mut out = String::from("url,sku,gt_title,gt_price,gt_currency,gt_in_stock\n");
    for n in 1..=rows {
        let p = product(n);
        let mut price = p.price_cents;
        if n.is_multiple_of(17) {
            price += 100;
        }
        out.push_str(&format!(
            "{base}/{},{},\"{}\",{}.{:02},{},{}\n",
            demo_page_path(n),
            p.sku(),
            p.title.replace('"', "\"\""),
            price / 100,
            price % 100,
            p.currency,
            if p.stock.in_stock() { "yes" } else { "no" },
        ));
    }
    out
}

/// `mino demo-site`: the shop alone, under `/demo`.
pub async fn serve(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let app: Router = Router::new().nest("/demo", router());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("demo shop on http://{addr}/demo/");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
