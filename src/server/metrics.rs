//! `/metrics` in the Prometheus text format (F17): HTTP requests by route,
//! method and status with latency histograms, job attempts by outcome
//! (counted in this process), and, read when scraped, jobs queued and
//! running, live-view subscribers and the database pool.
//!
//! Routes are labelled by their pattern (`/api/v1/projects/{id}`), server
//! functions by name and pages as `page`, so the number of series stays
//! bounded whatever URLs clients send.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bucket's bound (cumulative on output).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    /// (method, route, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latency.
    latency: BTreeMap<(String, String), Histogram>,
    /// Job attempts by how they ended.
    attempts: BTreeMap<&'static str, u64>,
    /// Webhook delivery attempts by how they ended.
    webhook_attempts: BTreeMap<&'static str, u64>,
    /// (provider, model, outcome) → model requests.
    model_requests: BTreeMap<(String, String, &'static str), u64>,
    /// (provider, model) → latency of model requests.
    model_latency: BTreeMap<(String, String), Histogram>,
    /// (provider, model, direction) → tokens.
    model_tokens: BTreeMap<(String, String, &'static str), u64>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Counts a job attempt that ended as `outcome` (succeeded, retrying,
/// failed, cancelled, handed back, stale).
pub fn attempt_ended(outcome: &'static str) {
    *registry()
        .lock()
        .expect("metrics")
        .attempts
        .entry(outcome)
        .or_default() += 1;
}

/// Counts a webhook delivery attempt that ended as `outcome` (succeeded,
/// retrying, failed: given up or a failed test).
pub fn webhook_attempt_ended(outcome: &'static str) {
    *registry()
        .lock()
        .expect("metrics")
        .webhook_attempts
        .entry(outcome)
        .or_default() += 1;
}

/// Counts a request to a model provider: its outcome (ok, rate_limited,
/// server_error, timeout, …), latency and tokens.
pub fn model_call(
    provider: &str,
    model: &str,
    outcome: &'static str,
    secs: f64,
    input_tokens: i64,
    output_tokens: i64,
) {
    let mut r = registry().lock().expect("metrics");
    let key = (provider.to_string(), model.to_string());
    *r.model_requests
        .entry((key.0.clone(), key.1.clone(), outcome))
        .or_default() += 1;
    for (direction, n) in [("input", input_tokens), ("output", output_tokens)] {
        *r.model_tokens
            .entry((key.0.clone(), key.1.clone(), direction))
            .or_default() += n.max(0) as u64;
    }
    let h = r.model_latency.entry(key).or_default();
    h.count += 1;
    h.sum += secs;
    for (i, bound) in BUCKETS.iter().enumerate() {
        if secs <= *bound {
            h.buckets[i] += 1;
        }
    }
}

/// The route pattern a router matched, carried out to [`track`] on the
/// response (the outer layer runs before routing, so it can't see it).
#[derive(Clone)]
struct RouteLabel(String);

/// Route layer for routers whose patterns label their requests.
pub async fn label_route(req: Request, next: Next) -> Response {
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut res = next.run(req).await;
    if let Some(l) = label {
        res.extensions_mut().insert(RouteLabel(l));
    }
    res
}

/// A bounded label for requests no route pattern labelled.
fn fallback_label(path: &str) -> String {
    if let Some(name) = path.strip_prefix("/rpc/") {
        // Server function names are a fixed set; anything else is one label.
        if crate::api::ENDPOINTS.contains(&name) {
            return format!("/rpc/{name}");
        }
        return "/rpc/other".into();
    }
    for prefix in ["/pkg/", "/demo/", "/api/v1/"] {
        if path.starts_with(prefix) {
            return format!("{}*", prefix);
        }
    }
    match path {
        "/healthz" | "/readyz" | "/metrics" => path.into(),
        _ => "page".into(),
    }
}

/// Outermost middleware: counts every request and times it to its
/// response head.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|l| l.0.clone())
        .unwrap_or_else(|| fallback_label(&path));
    let status = res.status().as_u16();
    let mut r = registry().lock().expect("metrics");
    *r.requests
        .entry((method.clone(), route.clone(), status))
        .or_default() += 1;
    let h = r.latency.entry((method, route)).or_default();
    h.count += 1;
    h.sum += secs;
    for (i, bound) in BUCKETS.iter().enumerate() {
        if secs <= *bound {
            h.buckets[i] += 1;
        }
    }
    res
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    // Read before taking the lock: the database may be slow.
    let jobs = crate::server::db::jobs::count_unfinished(&state.db).await;
    let pending_webhooks = crate::server::db::webhooks::count_unsent(&state.db).await;
    let mut out = String::with_capacity(16 * 1024);
    {
        let r = registry().lock().expect("metrics");
        out.push_str(
            "# HELP mino_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE mino_http_requests_total counter\n");
        for ((method, route, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "mino_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                label(method),
                label(route)
            );
        }
        out.push_str("# HELP mino_http_request_duration_seconds Time to the response head.\n");
        out.push_str("# TYPE mino_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &r.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", label(method), label(route));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "mino_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "mino_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "mino_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "mino_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP mino_job_attempts_total Job attempts this process ended, by outcome.\n",
        );
        out.push_str("# TYPE mino_job_attempts_total counter\n");
        for (outcome, n) in &r.attempts {
            let _ = writeln!(out, "mino_job_attempts_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str(
            "# HELP mino_webhook_attempts_total Webhook delivery attempts this process made, by outcome.\n",
        );
        out.push_str("# TYPE mino_webhook_attempts_total counter\n");
        for (outcome, n) in &r.webhook_attempts {
            let _ = writeln!(
                out,
                "mino_webhook_attempts_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP mino_model_requests_total Requests this process sent to model providers, by provider, model and outcome.\n");
        out.push_str("# TYPE mino_model_requests_total counter\n");
        for ((provider, model, outcome), n) in &r.model_requests {
            let _ = writeln!(
                out,
                "mino_model_requests_total{{provider=\"{}\",model=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(provider),
                label(model)
            );
        }
        out.push_str("# HELP mino_model_tokens_total Tokens providers counted for this process's requests, by direction.\n");
        out.push_str("# TYPE mino_model_tokens_total counter\n");
        for ((provider, model, direction), n) in &r.model_tokens {
            let _ = writeln!(
                out,
                "mino_model_tokens_total{{provider=\"{}\",model=\"{}\",direction=\"{direction}\"}} {n}",
                label(provider),
                label(model)
            );
        }
        out.push_str("# HELP mino_model_request_duration_seconds Model request latency.\n");
        out.push_str("# TYPE mino_model_request_duration_seconds histogram\n");
        for ((provider, model), h) in &r.model_latency {
            let labels = format!(
                "provider=\"{}\",model=\"{}\"",
                label(provider),
                label(model)
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "mino_model_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "mino_model_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "mino_model_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "mino_model_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
    match pending_webhooks {
        Ok(n) => {
            out.push_str("# HELP mino_webhook_deliveries_pending Webhook deliveries not yet sent or given up (all processes).\n");
            out.push_str("# TYPE mino_webhook_deliveries_pending gauge\n");
            let _ = writeln!(out, "mino_webhook_deliveries_pending {n}");
        }
        Err(e) => tracing::warn!(error = %e, "metrics: counting webhook deliveries failed"),
    }
    match jobs {
        Ok(rows) => {
            out.push_str(
                "# HELP mino_jobs Jobs waiting in the queue and running now (all processes).\n",
            );
            out.push_str("# TYPE mino_jobs gauge\n");
            for (s, n) in &rows {
                let _ = writeln!(out, "mino_jobs{{state=\"{s}\"}} {n}");
            }
            let queued = rows.iter().find(|(s, _)| s == "queued").map_or(0, |r| r.1);
            out.push_str("# HELP mino_queue_depth Jobs waiting to be claimed.\n");
            out.push_str("# TYPE mino_queue_depth gauge\n");
            let _ = writeln!(out, "mino_queue_depth {queued}");
        }
        Err(e) => tracing::warn!(error = %e, "metrics: counting jobs failed"),
    }
    out.push_str("# HELP mino_sse_subscribers Live views this process is streaming.\n");
    out.push_str("# TYPE mino_sse_subscribers gauge\n");
    let _ = writeln!(out, "mino_sse_subscribers {}", state.watchers.subscribers());
    let (size, idle) = (state.db.size(), state.db.num_idle() as u32);
    out.push_str("# HELP mino_db_pool_connections Database connections of this process, by use.\n");
    out.push_str("# TYPE mino_db_pool_connections gauge\n");
    let _ = writeln!(out, "mino_db_pool_connections{{state=\"idle\"}} {idle}");
    let _ = writeln!(
        out,
        "mino_db_pool_connections{{state=\"in_use\"}} {}",
        size.saturating_sub(idle)
    );
    out.push_str("# HELP mino_db_pool_max_connections The most connections this process opens.\n");
    out.push_str("# TYPE mino_db_pool_max_connections gauge\n");
    let _ = writeln!(
        out,
        "mino_db_pool_max_connections {}",
        state.db.options().get_max_connections()
    );
    let mut res = out.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmatched_paths_get_bounded_labels() {
        assert_eq!(fallback_label("/o/acme/projects/123"), "page");
        assert_eq!(fallback_label("/rpc/get_me"), "/rpc/get_me");
        assert_eq!(fallback_label("/rpc/made-up-123"), "/rpc/other");
        assert_eq!(fallback_label("/pkg/mino.wasm"), "/pkg/*");
        assert_eq!(fallback_label("/metrics"), "/metrics");
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
