//! Workers: claim jobs from the queue (`db::jobs`), run the agent, write the
//! result under the attempt's lease. One dispatcher per process claims
//! while it has free slots; each running job renews its lease and watches
//! its execution's state (a stop cancels it within a second). A reaper
//! returns the jobs of dead workers to the queue. No transaction is open
//! while an agent works.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use sqlx::PgPool;
use tokio::sync::{watch, Semaphore};

use super::agents::extract::Page;
use super::agents::fetch::{self, ErrorClass, FetchError, FetchPolicy};
use super::db;
use super::db::jobs::{Claimed, Failed};

pub const LEASE: Duration = Duration::from_secs(30);
const IDLE_POLL: Duration = Duration::from_millis(250);
/// After losing a claim race while work is waiting.
const BUSY_RETRY: Duration = Duration::from_millis(5);
const CLAIM_BATCH: usize = 25;
const STATE_CHECK: Duration = Duration::from_millis(500);
const REAP_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Settings {
    pub slots: usize,
    pub allow_private_targets: bool,
    /// Names this process in leases and attempts.
    pub worker_id: String,
}

/// Starts the dispatcher and the reaper; they stop when `shutdown` turns
/// true, handing running jobs back to the queue.
pub fn spawn(
    db: PgPool,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if settings.slots == 0 {
            return;
        }
        let reaper = tokio::spawn(reap_loop(db.clone(), shutdown.clone()));
        dispatch(db, settings, shutdown).await;
        reaper.abort();
    })
}

async fn reap_loop(db: PgPool, mut shutdown: watch::Receiver<bool>) {
    loop {
        match db::jobs::reap_expired(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "returned jobs with expired leases to the queue"),
            Err(e) => tracing::error!(error = %e, "reaping expired leases failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REAP_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn dispatch(db: PgPool, settings: Settings, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(settings.slots));
    let policy = FetchPolicy {
        allow_private: settings.allow_private_targets,
        ..Default::default()
    };
    let client = fetch::client(&policy);
    let mut running = tokio::task::JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("never closed"),
            _ = shutdown.changed() => break,
        };
        // Claim for every free slot at once (up to a batch): one claim
        // transaction per job would cap a process at a few hundred jobs/s.
        let mut permits = vec![first];
        while permits.len() < CLAIM_BATCH {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        match db::jobs::claim_many(&db, &settings.worker_id, LEASE, permits.len() as i64).await {
            Ok(jobs) if !jobs.is_empty() => {
                for job in jobs {
                    let permit = permits.pop().expect("no more jobs than permits");
                    let (db, worker, client, policy, stop) = (
                        db.clone(),
                        settings.worker_id.clone(),
                        client.clone(),
                        policy.clone(),
                        shutdown.clone(),
                    );
                    running.spawn(async move {
                        run(&db, &worker, &client, &policy, job, stop).await;
                        drop(permit);
                    });
                }
                drop(permits);
            }
            Ok(_) => {
                drop(permits);
                // Nothing claimed. If work is waiting, another process holds
                // the execution's lock for a moment: try again soon.
                let pause = match db::jobs::work_waiting(&db).await {
                    Ok(true) => BUSY_RETRY,
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => break,
                }
            }
            Err(e) => {
                drop(permits);
                tracing::error!(error = %e, "claiming a job failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        while running.try_join_next().is_some() {}
    }
    // Running jobs see the shutdown and hand themselves back.
    while running.join_next().await.is_some() {}
}

/// Why a job stopped before its agent finished.
enum Interrupted {
    LeaseLost,
    Stopped,
    Shutdown,
}

async fn run(
    db: &PgPool,
    worker: &str,
    client: &reqwest::Client,
    policy: &FetchPolicy,
    job: Claimed,
    mut shutdown: watch::Receiver<bool>,
) {
    let outcome = tokio::select! {
        r = work(db, client, policy, &job) => Ok(r),
        i = watch_job(db, worker, &job) => Err(i),
        _ = shutdown.changed() => Err(Interrupted::Shutdown),
    };
    let written = match outcome {
        Ok(Ok((extracted, raw))) => db::jobs::complete(db, &job, worker, &extracted, &raw)
            .await
            .map(|ok| if ok { "succeeded" } else { "stale" }),
        Ok(Err(e)) => {
            let retry_at = match e.class {
                ErrorClass::Permanent => None,
                ErrorClass::Transient => {
                    let wait = e.retry_after.unwrap_or_else(|| {
                        fetch::backoff(job.attempt.max(1) as u32 - 1, BACKOFF_BASE, BACKOFF_CAP)
                    });
                    Some(chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
                }
            };
            db::jobs::fail(db, &job, worker, e.kind, &e.message, retry_at)
                .await
                .map(|f| match f {
                    Failed::Retrying => "retrying",
                    Failed::Final => "failed",
                    Failed::Stale => "stale",
                })
        }
        Err(Interrupted::Stopped) => db::jobs::cancel_running(db, &job, worker)
            .await
            .map(|_| "cancelled"),
        Err(Interrupted::LeaseLost) => Ok("stale"),
        Err(Interrupted::Shutdown) => {
            // Handing back: expire the lease now so another worker (or this
            // one after a restart) takes it at once.
            sqlx::query(
                "update jobs set lease_expires_at = now() - interval '1 second'
                 where id = $1 and attempt = $2 and lease_owner = $3 and state = 'running'",
            )
            .bind(job.id)
            .bind(job.attempt)
            .bind(worker)
            .execute(db)
            .await
            .map(|_| "handed back")
        }
    };
    match written {
        Ok(result) => tracing::debug!(job = job.id, attempt = job.attempt, result, "job ended"),
        Err(e) => tracing::error!(job = job.id, error = %e, "recording a job's result failed"),
    }
    if let Err(e) = db::jobs::settle(db, job.execution_id).await {
        tracing::error!(execution = %job.execution_id, error = %e, "settling an execution failed");
    }
}

/// Renews the lease every LEASE/3 and watches the execution's state;
/// returns when the job must stop.
async fn watch_job(db: &PgPool, worker: &str, job: &Claimed) -> Interrupted {
    let mut since_renewal = Duration::ZERO;
    loop {
        tokio::time::sleep(STATE_CHECK).await;
        since_renewal += STATE_CHECK;
        if since_renewal >= LEASE / 3 {
            since_renewal = Duration::ZERO;
            if let Ok(false) = db::jobs::renew(db, job, worker, LEASE).await {
                return Interrupted::LeaseLost;
            }
        }
        if let Ok(Some(state)) = db::jobs::execution_state(db, job.execution_id).await {
            if matches!(state.as_str(), "stopping" | "cancelled") {
                return Interrupted::Stopped;
            }
        }
    }
}

/// Runs the http agent: fetch the page, extract every output field.
/// Returns the extracted values and the raw output to keep.
async fn work(
    db: &PgPool,
    client: &reqwest::Client,
    policy: &FetchPolicy,
    job: &Claimed,
) -> Result<(Value, String), FetchError> {
    let internal = |e: sqlx::Error| FetchError {
        class: ErrorClass::Transient,
        kind: "internal",
        message: format!("Mino could not read the job: {e}"),
        retry_after: None,
    };
    let ctx = db::jobs::context(db, job)
        .await
        .map_err(internal)?
        .ok_or_else(|| FetchError {
            class: ErrorClass::Permanent,
            kind: "internal",
            message: "The job's row no longer exists.".into(),
            retry_after: None,
        })?;
    let fields = db::projects::fetch_fields(db, ctx.org_id, ctx.project_id)
        .await
        .map_err(internal)?;
    if ctx.agent != "http" {
        return Err(FetchError {
            class: ErrorClass::Permanent,
            kind: "unsupported_agent",
            message: format!(
                "The {} agent is not available yet; use the http agent.",
                ctx.agent
            ),
            retry_after: None,
        });
    }
    let policy = FetchPolicy {
        timeout: Duration::from_secs(ctx.timeout_secs.max(1) as u64),
        ..policy.clone()
    };
    let page = fetch::fetch(client, &ctx.site_url, &policy).await?;
    let parsed = Page::parse(&page.body);
    let mut values = Map::new();
    for f in &fields {
        values.insert(
            f.name.clone(),
            parsed.extract(f).map(Value::String).unwrap_or(Value::Null),
        );
    }
    let raw = json!({
        "agent": "http",
        "url": page.url,
        "status": page.status,
        "redirects": page.hops,
        "bytes": page.body.len(),
        "elapsed_ms": page.elapsed.as_millis() as u64,
        "values": values,
    });
    Ok((Value::Object(values), raw.to_string()))
}
