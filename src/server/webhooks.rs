//! Sends queued webhook deliveries (F15). Every `mino serve` and `mino
//! worker` process runs one dispatcher; they share the queue in Postgres
//! (`webhook_deliveries`, filled by triggers in the transaction that changed
//! a run or a job), claim due deliveries with `FOR UPDATE SKIP LOCKED` under
//! a lease, and record every attempt. A delivery that fails is retried with
//! exponential backoff; a hook whose deliveries fail [`WEBHOOK_FAILURE_LIMIT`]
//! times in a row is disabled with the reason. A process that dies mid-send
//! leaves its claim to expire, and another (or the restarted one) sends it.
//!
//! Each request carries `Mino-Signature: t=<unix seconds>,v1=<hex>`, where
//! the hex is HMAC-SHA256 with the hook's secret over `<t>.<body>`; a
//! receiver recomputes it and refuses timestamps more than five minutes
//! old, which stops replays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::{watch, Semaphore};
use uuid::Uuid;

use crate::model::WEBHOOK_TEST_EVENT;
use crate::server::agents::fetch::{self, FetchPolicy};
use crate::server::db::{self, webhooks::Claimed};
use crate::server::live::Hub;

#[derive(Debug, Clone)]
pub struct Settings {
    /// MINO_ALLOW_PRIVATE_TARGETS: may deliveries reach loopback/private
    /// addresses?
    pub allow_private: bool,
    /// The first retry's delay; each later one doubles, up to an hour.
    pub retry_base: Duration,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: i32,
    /// For one request, connection to last byte.
    pub timeout: Duration,
}

impl Settings {
    pub fn new(allow_private: bool, retry_base: Duration) -> Settings {
        Settings {
            allow_private,
            retry_base,
            max_attempts: 10,
            timeout: Duration::from_secs(10),
        }
    }
}

/// How long a claim lasts: longer than one request can take.
const LEASE_SECS: i64 = 60;
/// Deliveries this process sends at once.
const IN_FLIGHT: usize = 16;
/// Characters of the receiver's answer kept in the log.
const EXCERPT_CHARS: usize = 1000;

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The wait before retry number `attempt` (1 after the first failure):
/// `base · 2^(attempt-1)`, capped at an hour, plus up to 10 % jitter so
/// hooks that failed together don't retry together.
pub fn retry_delay(base: Duration, attempt: i32) -> Duration {
    let exp = (attempt.max(1) - 1).min(20) as u32;
    let delay = base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600));
    let jitter = delay.as_millis() as u64 / 10;
    delay
        + Duration::from_millis(if jitter == 0 {
            0
        } else {
            rand::random::<u64>() % jitter
        })
}

/// Runs the dispatcher until `stopped` turns true.
pub fn spawn(
    db: PgPool,
    settings: Settings,
    hub: Hub,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let policy = FetchPolicy {
            allow_private: settings.allow_private,
            // Webhooks go to receivers, never to the demo shop.
            demo_origin: None,
            connect_timeout: Duration::from_secs(5),
            timeout: settings.timeout,
            max_redirects: 0,
            max_bytes: 64 * 1024,
        };
        let client = fetch::client(&policy);
        let (policy, settings) = (Arc::new(policy), Arc::new(settings));
        let wake = hub.webhooks();
        // Sends in flight: a slow receiver holds one slot, not the others.
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = stopped.changed() => break,
            };
            if *stopped.borrow() {
                break;
            }
            let mut permits = vec![first];
            while let Ok(p) = slots.clone().try_acquire_owned() {
                permits.push(p);
            }
            // Registered before the claim, so a NOTIFY during it still wakes us.
            let notified = wake.notified();
            let claimed =
                match db::webhooks::claim(&db, permits.len() as i64, LEASE_SECS as f64).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming webhook deliveries failed");
                        Vec::new()
                    }
                };
            if claimed.is_empty() {
                drop(permits);
                // Retries come due without a notification: look again soon.
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stopped.changed() => break,
                }
                continue;
            }
            for (d, permit) in claimed.into_iter().zip(permits) {
                let (db, client) = (db.clone(), client.clone());
                let (policy, settings) = (policy.clone(), settings.clone());
                tokio::spawn(async move {
                    deliver(&db, &client, &policy, &settings, d).await;
                    drop(permit);
                });
            }
        }
        // Let sends in flight finish and record their attempts.
        let _ = slots.acquire_many(IN_FLIGHT as u32).await;
    })
}

/// What one attempt came to.
struct Outcome {
    status: Option<i32>,
    duration_ms: i32,
    excerpt: Option<String>,
    error: Option<String>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
    fn summary(&self) -> String {
        match (&self.error, self.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "no answer".into(),
        }
    }
}

async fn deliver(
    db: &PgPool,
    client: &reqwest::Client,
    policy: &FetchPolicy,
    settings: &Settings,
    d: Claimed,
) {
    let payload = match &d.payload {
        Some(p) => p.0.clone(),
        None => match build_payload(db, &d).await {
            Ok(p) => {
                // Kept, so every retry sends the same body.
                let _ = db::webhooks::keep_payload(db, d.id, &p).await;
                p
            }
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "building a webhook body failed; will retry");
                let _ = db::webhooks::release(db, d.id, d.attempts).await;
                return;
            }
        },
    };
    let outcome = send(client, policy, &d, &payload).await;
    if let Err(e) = record(db, settings, &d, &outcome).await {
        tracing::warn!(delivery = %d.id, error = %e, "recording a webhook attempt failed");
    }
}

async fn send(
    client: &reqwest::Client,
    policy: &FetchPolicy,
    d: &Claimed,
    payload: &Value,
) -> Outcome {
    let started = Instant::now();
    let elapsed = |started: Instant| started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let url = match reqwest::Url::parse(&d.url) {
        Ok(u) => u,
        Err(e) => {
            return Outcome {
                status: None,
                duration_ms: 0,
                excerpt: None,
                error: Some(format!("The URL is not valid: {e}")),
            }
        }
    };
    if let Err(e) = fetch::check_target(&url, policy) {
        return Outcome {
            status: None,
            duration_ms: 0,
            excerpt: None,
            error: Some(e.message),
        };
    }
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let timestamp = Utc::now().timestamp();
    let request = client
        .post(url)
        .timeout(policy.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("Mino-Webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("Mino-Event", &d.event)
        .header("Mino-Event-Id", d.event_id.to_string())
        .header("Mino-Delivery", d.id.to_string())
        .header("Mino-Signature", signature(&d.secret, timestamp, &body))
        .body(body);
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16() as i32;
            let excerpt = read_excerpt(response, policy.max_bytes).await;
            Outcome {
                status: Some(status),
                duration_ms: elapsed(started),
                excerpt: Some(excerpt),
                error: None,
            }
        }
        Err(e) => Outcome {
            status: None,
            duration_ms: elapsed(started),
            excerpt: None,
            error: Some(fetch::classify(&e).message),
        },
    }
}

/// The start of the answer, read up to `max_bytes` (a receiver that
/// streams forever can't hold the dispatcher).
async fn read_excerpt(mut response: reqwest::Response, max_bytes: usize) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= max_bytes {
            break;
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

/// Logs the attempt and moves the delivery and its hook on, in one
/// transaction, only while the claim is still ours (a claim that expired
/// and was taken again must not be overwritten).
async fn record(
    db: &PgPool,
    settings: &Settings,
    d: &Claimed,
    outcome: &Outcome,
) -> sqlx::Result<()> {
    let is_test = d.event == WEBHOOK_TEST_EVENT;
    let ok = outcome.succeeded();
    // A test is sent once; a real delivery until it succeeds or runs out.
    let next = if ok {
        "succeeded"
    } else if is_test || d.attempts >= settings.max_attempts {
        "failed"
    } else {
        "pending"
    };
    let delay = retry_delay(settings.retry_base, d.attempts);
    let summary = outcome.summary();
    let ours = db::webhooks::record_attempt(
        db,
        db::webhooks::AttemptRecord {
            delivery_id: d.id,
            attempt: d.attempts,
            next_state: next,
            retry_secs: delay.as_secs_f64(),
            status: outcome.status,
            duration_ms: outcome.duration_ms,
            excerpt: outcome.excerpt.as_deref(),
            error: outcome.error.as_deref(),
            succeeded: ok,
            is_test,
            summary: &summary,
        },
    )
    .await?;
    if ours {
        crate::server::metrics::webhook_attempt_ended(match next {
            "succeeded" => "succeeded",
            "pending" => "retrying",
            _ => "failed",
        });
    }
    Ok(())
}

/// The body of a delivery: `{id, type, created_at, organization, data}`.
/// Built when first sent, from the state then (a run's summary is final by
/// the time `execution.completed` goes out).
async fn build_payload(db: &PgPool, d: &Claimed) -> Result<Value, crate::error::AppError> {
    let resource = d.resource_id.clone().unwrap_or_default();
    let data = match d.event.as_str() {
        "execution.started" | "execution.completed" | "execution.failed" => {
            execution_data(db, d, &resource).await?
        }
        "job.failed" => job_data(db, d.org_id, &resource).await?,
        "experiment.completed" => experiment_data(db, d.org_id, &resource).await?,
        "budget.threshold" => budget_data(db, d.org_id, &resource).await?,
        _ => json!({
            "webhook_id": d.webhook_id,
            "message": "A test event from Mino: this webhook is reachable and its signature can be checked.",
        }),
    };
    Ok(json!({
        "id": d.event_id,
        "type": d.event,
        "created_at": d.created_at,
        "organization": {"id": d.org_id, "slug": d.org_slug, "name": d.org_name},
        "data": data,
    }))
}

async fn execution_data(
    db: &PgPool,
    d: &Claimed,
    resource: &str,
) -> Result<Value, crate::error::AppError> {
    use crate::server::service::executions;
    let Ok(id) = Uuid::parse_str(resource) else {
        return Ok(json!({"execution_id": resource, "deleted": true}));
    };
    let Some(execution) = executions::read_unchecked(db, d.org_id, id).await? else {
        return Ok(json!({"execution_id": id, "deleted": true}));
    };
    let mut data = json!({ "execution": execution });
    if d.event != "execution.started" {
        let metrics = executions::metrics_of(db, &execution).await?;
        data["summary"] = json!({
            "accuracy": metrics.accuracy,
            "accuracy_interval": metrics.accuracy_interval,
            "jobs": execution.total,
            "succeeded": execution.completed,
            "errors": execution.errors,
            "passed": execution.passed,
            "failed": execution.failed,
            "verdicts": metrics.verdicts,
            "fields": metrics.fields,
            "errors_by_class": metrics.errors_by_class,
            "cost_micros": metrics.cost_micros,
            "duration_secs": metrics.duration_secs,
        });
    }
    Ok(data)
}

/// The finished experiment whole: its variants' figures and every pair's
/// fixed/regressed rows and significance.
async fn experiment_data(
    db: &PgPool,
    org_id: Uuid,
    resource: &str,
) -> Result<Value, crate::error::AppError> {
    use crate::server::service::experiments;
    let Ok(id) = Uuid::parse_str(resource) else {
        return Ok(json!({"experiment_id": resource, "deleted": true}));
    };
    Ok(match experiments::read_unchecked(db, org_id, id).await? {
        Some(experiment) => json!({ "experiment": experiment }),
        None => json!({"experiment_id": id, "deleted": true}),
    })
}

/// `resource` is `2026-12:80`: the month and the threshold reached.
async fn budget_data(
    db: &PgPool,
    org_id: Uuid,
    resource: &str,
) -> Result<Value, crate::error::AppError> {
    let (month, threshold) = resource.split_once(':').unwrap_or((resource, ""));
    let row: Option<(i64, i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select spent_micros, budget_micros, at from budget_alerts
         where org_id = $1 and to_char(month, 'YYYY-MM') = $2 and threshold::text = $3",
    )
    .bind(org_id)
    .bind(month)
    .bind(threshold)
    .fetch_optional(db)
    .await?;
    let hard_stop: Option<bool> =
        sqlx::query_scalar("select hard_stop from org_budgets where org_id = $1")
            .bind(org_id)
            .fetch_optional(db)
            .await?;
    Ok(match row {
        None => json!({"month": month, "threshold": threshold.parse::<i32>().ok()}),
        Some((spent, budget, at)) => json!({
            "month": month,
            "threshold": threshold.parse::<i32>().ok(),
            "spent_micros": spent,
            "budget_micros": budget,
            "hard_stop": hard_stop.unwrap_or(false),
            "reached_at": at,
        }),
    })
}

async fn job_data(
    db: &PgPool,
    org_id: Uuid,
    resource: &str,
) -> Result<Value, crate::error::AppError> {
    let Ok(id) = resource.parse::<i64>() else {
        return Ok(json!({"job_id": resource, "deleted": true}));
    };
    let row = db::webhooks::fetch_failed_job(db, org_id, id).await?;
    Ok(match row {
        None => json!({"job_id": id, "deleted": true}),
        Some(j) => json!({
            "job": {
                "id": j.id, "execution_id": j.execution_id, "row": j.row_index, "url": j.site_url,
                "attempts": j.attempt, "error_class": j.error_class, "error": j.error,
            }
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        let s = signature("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(s, signature("whsec_other", 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(s, signature("whsec_test", 1_700_000_001, br#"{"a":1}"#));
    }

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let base = Duration::from_secs(30);
        let first = retry_delay(base, 1);
        assert!(first >= base && first <= base + base / 10);
        let third = retry_delay(base, 3);
        assert!(third >= base * 4 && third <= base * 4 + base * 4 / 10);
        let late = retry_delay(base, 15);
        assert!(late >= Duration::from_secs(3600) && late <= Duration::from_secs(3960));
    }
}
