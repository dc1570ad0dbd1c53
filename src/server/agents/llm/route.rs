//! A project's model route: an ordered list of (provider, model); the
//! first entry serves and the rest are tried, within the same attempt,
//! when it fails with a rate limit, a server error, a timeout, a
//! connection error or a refused key. Every call is recorded
//! (`model_calls`) and moves the provider's circuit breaker, which every
//! process reads, so a failing provider is skipped by all workers at
//! once. A refused key (401/403) marks the provider for admins; a
//! context-length refusal fails the job for good (the next model would get
//! the same page).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::{call, CallError, CallFailure, ChatAnswer, ChatRequest, Endpoint};
use crate::model::ProviderModel;
use crate::server::agents::{AgentError, Progress};
use crate::server::db::model_providers::{self as db, Admission, CallRecord, ProviderRow};

/// The longest a 429's `Retry-After` delays the job's next attempt.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

/// A route's entries as callable targets, in order, keys opened; entries
/// whose provider is gone or disabled are left out (the caller says so when
/// nothing is left). A model the provider no longer lists is called at no
/// price rather than dropped (its calls still count). Errors are reading
/// the providers or opening a key, worded for the person.
pub async fn targets_of(
    db: &PgPool,
    org_id: Uuid,
    route: &[crate::model::RouteEntry],
) -> Result<Vec<Target>, String> {
    let ids: Vec<Uuid> = route.iter().map(|r| r.provider).collect();
    let rows = db::fetch_many(db, org_id, &ids)
        .await
        .map_err(|e| format!("Mino could not read the model providers: {e}"))?;
    let mut targets = Vec::new();
    for entry in route {
        let Some(row) = rows.iter().find(|r| r.id == entry.provider && r.enabled) else {
            continue;
        };
        let model = row
            .models
            .0
            .iter()
            .find(|m| m.name == entry.model)
            .cloned()
            .unwrap_or(ProviderModel {
                name: entry.model.clone(),
                input_price_per_million: 0.0,
                output_price_per_million: 0.0,
            });
        let key = match &row.api_key {
            Some(sealed) => Some(
                crate::server::secrets::open(sealed).map_err(|e| format!("{}: {e}", row.name))?,
            ),
            None => None,
        };
        targets.push(Target::new(row, model, key));
    }
    Ok(targets)
}

/// One entry of a route, ready to call.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider_id: Uuid,
    pub provider_name: String,
    pub endpoint: Endpoint,
    pub model: ProviderModel,
    pub max_in_flight: usize,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
}

impl Target {
    /// A target from a provider's row (key opened) and one of its models.
    pub fn new(row: &ProviderRow, model: ProviderModel, api_key: Option<String>) -> Target {
        Target {
            provider_id: row.id,
            provider_name: row.name.clone(),
            endpoint: Endpoint {
                kind: row.kind,
                base_url: row.base_url.clone(),
                api_key,
                timeout: Duration::from_secs(row.timeout_secs.max(1) as u64),
            },
            model,
            max_in_flight: row.max_in_flight.max(1) as usize,
            requests_per_minute: row.requests_per_minute.map(i64::from),
            tokens_per_minute: row.tokens_per_minute.map(i64::from),
        }
    }
}

/// The answer and who gave it.
#[derive(Debug, Clone)]
pub struct Served {
    pub answer: ChatAnswer,
    pub target: Target,
    pub latency_ms: i64,
}

/// Each provider's in-flight limit and the semaphore that keeps it.
type Slots = HashMap<Uuid, (usize, Arc<Semaphore>)>;

/// Requests in flight per provider in this process.
fn in_flight(id: Uuid, max: usize) -> Arc<Semaphore> {
    static SLOTS: OnceLock<Mutex<Slots>> = OnceLock::new();
    let mut slots = SLOTS.get_or_init(Default::default).lock().expect("slots");
    let entry = slots
        .entry(id)
        .or_insert_with(|| (max, Arc::new(Semaphore::new(max))));
    if entry.0 != max {
        // The limit was changed: new requests use the new one.
        *entry = (max, Arc::new(Semaphore::new(max)));
    }
    entry.1.clone()
}

/// Sends `req` along `route`, failing over as the module says. Each try
/// is logged; the error names every entry's failure.
pub async fn complete(
    db: &PgPool,
    client: &reqwest::Client,
    route: &[Target],
    req: &ChatRequest,
    progress: &Progress,
) -> Result<Served, AgentError> {
    if route.is_empty() {
        return Err(AgentError::permanent(
            "no_model",
            "The project uses the llm extractor but its model route is empty: choose a provider and model in the project's agent settings.",
        ));
    }
    let mut failures = Vec::new();
    let mut retry_after: Option<Duration> = None;
    for target in route {
        let who = format!("{} / {}", target.provider_name, target.model.name);
        match db::admit(db, target.provider_id).await {
            Ok(Admission::Skip) => {
                progress.log("warn", &format!("Skipped {who}: its circuit is open (recent failures) or its key was refused."));
                failures.push(format!("{who}: skipped (unhealthy)"));
                continue;
            }
            Ok(Admission::Probe) => progress.log(
                "info",
                &format!("{who} is cooling down; this request is its probe."),
            ),
            Ok(Admission::Send) => {}
            Err(e) => {
                return Err(AgentError::transient(
                    "internal",
                    format!("Mino could not read the provider's health: {e}"),
                ));
            }
        }
        if let Some(wait) = over_rate_limit(db, target).await {
            progress.log(
                "warn",
                &format!("Skipped {who}: its requests or tokens per minute are used up."),
            );
            failures.push(format!("{who}: rate limit reached"));
            retry_after = Some(retry_after.map_or(wait, |w: Duration| w.min(wait)));
            continue;
        }
        match call_target(db, client, target, req, progress).await {
            Ok(served) => return Ok(served),
            Err(e) => {
                failures.push(format!("{who}: {}", e.message));
                match e.failure {
                    CallFailure::ContextLength => {
                        return Err(AgentError::permanent(
                            "context_length",
                            format!("The page and instructions are longer than {who} accepts ({}); lower the project's page token budget.", e.message),
                        ));
                    }
                    CallFailure::RateLimited(wait) => {
                        let wait = wait.unwrap_or(Duration::from_secs(5)).min(RETRY_AFTER_CAP);
                        retry_after = Some(retry_after.map_or(wait, |w: Duration| w.min(wait)));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut error = AgentError::transient(
        "model_unavailable",
        format!("No model of the route answered: {}.", failures.join("; ")),
    );
    error.retry_after = retry_after;
    Err(error)
}

/// One call to one target, whatever its breaker says (the route asked
/// first; a manual check is the admin's probe), within the provider's
/// in-flight limit; recorded, and logged to `progress`.
pub async fn call_target(
    db: &PgPool,
    client: &reqwest::Client,
    target: &Target,
    req: &ChatRequest,
    progress: &Progress,
) -> Result<Served, CallError> {
    let who = format!("{} / {}", target.provider_name, target.model.name);
    let slots = in_flight(target.provider_id, target.max_in_flight);
    let _slot = slots.acquire_owned().await.expect("never closed");
    progress.step("Asking the model", None, None);
    progress.log("info", &format!("Asking {who}"));
    let started = Instant::now();
    let result = call(client, &target.endpoint, &target.model.name, req).await;
    let latency_ms = started.elapsed().as_millis() as i64;
    crate::server::metrics::model_call(
        &target.provider_name,
        &target.model.name,
        match &result {
            Ok(_) => "ok",
            Err(e) => e.failure.outcome(),
        },
        started.elapsed().as_secs_f64(),
        result.as_ref().map_or(0, |a| a.input_tokens),
        result.as_ref().map_or(0, |a| a.output_tokens),
    );
    let mut record = CallRecord {
        provider_id: target.provider_id,
        model: &target.model.name,
        outcome: "ok",
        latency_ms,
        input_tokens: 0,
        output_tokens: 0,
        error: None,
        counts_as_failure: false,
        auth_failed: false,
    };
    match result {
        Ok(answer) => {
            record.input_tokens = answer.input_tokens;
            record.output_tokens = answer.output_tokens;
            let _ = db::record_call(db, record).await;
            progress.log(
                "info",
                &format!(
                    "{who} answered in {latency_ms} ms ({} input, {} output tokens)",
                    answer.input_tokens, answer.output_tokens
                ),
            );
            Ok(Served {
                answer,
                target: target.clone(),
                latency_ms,
            })
        }
        Err(e) => {
            record.outcome = e.failure.outcome();
            record.error = Some(&e.message);
            record.counts_as_failure = counts_against_health(&e.failure);
            record.auth_failed = matches!(e.failure, CallFailure::Auth(_));
            let _ = db::record_call(db, record).await;
            progress.log(
                "warn",
                &format!("{who} failed after {latency_ms} ms: {}", e.message),
            );
            Err(e)
        }
    }
}

/// A manual check: one call, the failure in words.
pub async fn complete_one(
    db: &PgPool,
    client: &reqwest::Client,
    target: &Target,
    req: &ChatRequest,
    progress: &Progress,
) -> Result<Served, String> {
    call_target(db, client, target, req, progress)
        .await
        .map_err(|e| e.message)
}

/// Whether a failure says something about the provider (and so moves
/// its breaker) rather than about this request.
fn counts_against_health(f: &CallFailure) -> bool {
    matches!(
        f,
        CallFailure::RateLimited(_)
            | CallFailure::Server(_)
            | CallFailure::Timeout
            | CallFailure::Connection
            | CallFailure::Auth(_)
            | CallFailure::BadAnswer
    )
}

/// When the provider's per-minute limits (counted over every process's
/// calls) are used up, how long until the window frees.
async fn over_rate_limit(db: &PgPool, t: &Target) -> Option<Duration> {
    if t.requests_per_minute.is_none() && t.tokens_per_minute.is_none() {
        return None;
    }
    let (requests, tokens) = db::last_minute(db, t.provider_id).await.ok()?;
    let over = t.requests_per_minute.is_some_and(|max| requests >= max)
        || t.tokens_per_minute.is_some_and(|max| tokens >= max);
    over.then_some(Duration::from_secs(60))
}
