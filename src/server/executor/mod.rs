//! Workers: claim jobs from the queue (`db::jobs`), run the agent, write the
//! result under the attempt's lease. One dispatcher per process claims
//! while it has free slots; each running job renews its lease, reports its
//! agent's progress and listens for its execution being stopped (LISTEN/
//! NOTIFY through `live::Hub`, with a slow poll as a safety net). Results
//! are written in batches by one writer task. A reaper returns the jobs of
//! dead workers to the queue. No transaction is open while an agent works.

mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::{broadcast, watch, Semaphore};
use uuid::Uuid;

use super::agents::extract::llm;
use super::agents::fetch::{self, FetchPolicy};
use super::agents::llm::route::Target;
use super::agents::remote::RemoteAgent;
use super::agents::sources::browser::{self, BrowserAgent};
use super::agents::sources::http::HttpAgent;
use super::agents::sources::snapshot::{self, SnapshotAgent};
use super::agents::{Agent, AgentError, AgentOutput, ErrorClass, JobInput, PageCopy, Progress};
use super::db;
use super::db::jobs::{Claimed, Failed, Plan};
use super::evaluate;
use super::live::{self, Control, Hub};
use crate::model::{AgentKind, ExecutionMode, ExtractionRule, Extractor, OutputField};

/// How long a claim holds a job without renewal.
pub const LEASE: Duration = Duration::from_secs(30);
/// When there is nothing to claim; a NOTIFY wakes the dispatcher sooner.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// After losing a claim race while work is waiting.
const BUSY_RETRY: Duration = Duration::from_millis(5);
const CLAIM_BATCH: usize = 25;
/// After "jobs finished somewhere" wakes a dispatcher whose claim found
/// every run full (see `dispatch`).
const FREED_COALESCE: Duration = Duration::from_millis(3);
/// How often a running job looks at its progress and lease.
const TICK: Duration = Duration::from_millis(250);
/// Safety net under LISTEN/NOTIFY: re-read the execution's state this often.
const STATE_POLL: Duration = Duration::from_secs(5);
const REAP_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Plans of this many executions are cached per process.
const PLAN_CACHE: usize = 1_000;

#[derive(Clone)]
pub struct Settings {
    pub slots: usize,
    pub allow_private_targets: bool,
    /// The demo shop, fetchable when other private targets are not.
    pub demo_origin: Option<crate::server::agents::fetch::DemoOrigin>,
    /// Names this process in leases and attempts.
    pub worker_id: String,
    /// Tests shorten it to see a dead worker's jobs come back quickly.
    pub lease: Duration,
}

/// Counters of this process's executor, for benchmarks and metrics.
pub mod stats {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub static CLAIMS: AtomicU64 = AtomicU64::new(0);
    pub static CLAIMED: AtomicU64 = AtomicU64::new(0);
    pub static EMPTY_CLAIMS: AtomicU64 = AtomicU64::new(0);
    pub static WRITES: AtomicU64 = AtomicU64::new(0);
    pub static WRITTEN: AtomicU64 = AtomicU64::new(0);
    /// Time spent in claim and write statements, in microseconds.
    pub static CLAIM_MICROS: AtomicU64 = AtomicU64::new(0);
    pub static WRITE_MICROS: AtomicU64 = AtomicU64::new(0);

    /// (claims, jobs claimed, claims that got nothing, result writes,
    /// results written) so far.
    pub fn snapshot() -> [u64; 7] {
        [
            &CLAIMS,
            &CLAIMED,
            &EMPTY_CLAIMS,
            &WRITES,
            &WRITTEN,
            &CLAIM_MICROS,
            &WRITE_MICROS,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }

    pub(super) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every job task of this process shares.
struct Shared {
    db: PgPool,
    worker: String,
    lease: Duration,
    hub: Hub,
    http: HttpAgent,
    /// Started on the first browser job.
    browser: BrowserAgent,
    client: reqwest::Client,
    /// For model providers: addresses an admin configured, private ones
    /// included (a vLLM inside the network), no redirects.
    models: reqwest::Client,
    policy: FetchPolicy,
    plans: Mutex<HashMap<Uuid, Arc<Plan>>>,
    writer: writer::Writer,
}

/// Starts the dispatcher, the result writer and the reaper; they stop
/// when `shutdown` turns true, handing running jobs back to the queue.
pub fn spawn(
    db: PgPool,
    settings: Settings,
    hub: Hub,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if settings.slots == 0 {
            return;
        }
        let policy = FetchPolicy {
            allow_private: settings.allow_private_targets,
            demo_origin: settings.demo_origin.clone(),
            ..Default::default()
        };
        let client = fetch::client(&policy);
        let (writer, writing) = writer::start(db.clone(), settings.worker_id.clone());
        let shared = Arc::new(Shared {
            db: db.clone(),
            worker: settings.worker_id.clone(),
            lease: settings.lease,
            hub,
            http: HttpAgent {
                client: client.clone(),
                policy: policy.clone(),
            },
            browser: BrowserAgent::new(
                db.clone(),
                policy.clone(),
                browser::default_slots(),
                &settings.worker_id,
            ),
            client,
            models: model_client(),
            policy,
            plans: Mutex::new(HashMap::new()),
            writer,
        });
        let reaper = tokio::spawn(reap_loop(db.clone(), shutdown.clone()));
        dispatch(shared, settings.slots, shutdown).await;
        reaper.abort();
        // The writer ends when the last job task drops its handle.
        let _ = writing.await;
    })
}

/// The client model requests go through.
pub fn model_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("Mino/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these settings always builds")
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

async fn dispatch(shared: Arc<Shared>, slots: usize, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(slots));
    let work = shared.hub.work();
    let moved = shared.hub.moved();
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
        // Registered before claiming, so a NOTIFY that arrives while the
        // claim runs is not missed.
        let woken = work.notified();
        let freed = moved.notified();
        tokio::pin!(woken, freed);
        woken.as_mut().enable();
        freed.as_mut().enable();
        let claim_started = std::time::Instant::now();
        let claimed = db::jobs::claim_many(
            &shared.db,
            &shared.worker,
            shared.lease,
            permits.len() as i64,
        )
        .await;
        stats::add(
            &stats::CLAIM_MICROS,
            claim_started.elapsed().as_micros() as u64,
        );
        match claimed {
            Ok(jobs) if !jobs.is_empty() => {
                stats::add(&stats::CLAIMS, 1);
                stats::add(&stats::CLAIMED, jobs.len() as u64);
                for job in jobs {
                    let permit = permits.pop().expect("no more jobs than permits");
                    let (shared, stop) = (shared.clone(), shutdown.clone());
                    running.spawn(async move {
                        run(&shared, job, stop).await;
                        drop(permit);
                    });
                }
                drop(permits);
            }
            Ok(_) => {
                stats::add(&stats::EMPTY_CLAIMS, 1);
                drop(permits);
                // Nothing claimed. If an execution has ready jobs and free
                // slots, another process holds its lock for a moment: try
                // again soon. Otherwise wait for a NOTIFY (new work, or
                // jobs finished somewhere so a full execution has room)
                // or the poll.
                let pause = match db::jobs::work_waiting(&shared.db).await {
                    Ok(true) => BUSY_RETRY,
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = &mut woken => {}
                    _ = &mut freed => {
                        // Every result write in every process says jobs
                        // finished; waiting a moment lets several such
                        // wake-ups make one claim instead of one each
                        // (most of which would find the runs full again).
                        tokio::time::sleep(FREED_COALESCE).await;
                    }
                    _ = shutdown.changed() => break,
                }
            }
            Err(e) => {
                drop(permits);
                // Two claims can deadlock on an execution's row when
                // Postgres follows its update chain (SKIP LOCKED does not
                // skip there); one is aborted and simply claims again.
                let deadlock =
                    matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("40P01"));
                if deadlock {
                    tracing::debug!("a claim deadlocked with another; claiming again");
                    tokio::time::sleep(BUSY_RETRY).await;
                } else {
                    tracing::error!(error = %e, "claiming a job failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        while running.try_join_next().is_some() {}
    }
    // Running jobs see the shutdown and hand themselves back.
    while running.join_next().await.is_some() {}
}

impl Shared {
    /// The execution's plan, from the cache or the database.
    async fn plan(&self, execution_id: Uuid) -> Result<Arc<Plan>, AgentError> {
        if let Some(p) = self.plans.lock().expect("plans").get(&execution_id) {
            return Ok(p.clone());
        }
        let plan = db::jobs::plan(&self.db, execution_id)
            .await
            .map_err(|e| {
                AgentError::transient("internal", format!("Mino could not read the job: {e}"))
            })?
            .ok_or_else(|| AgentError::permanent("internal", "The execution no longer exists."))?;
        let plan = Arc::new(plan);
        let mut plans = self.plans.lock().expect("plans");
        if plans.len() >= PLAN_CACHE {
            plans.clear();
        }
        plans.insert(execution_id, plan.clone());
        Ok(plan)
    }

    async fn run_agent(
        &self,
        job: &Claimed,
        progress: &Progress,
    ) -> Result<AgentOutput, AgentError> {
        let plan = self.plan(job.execution_id).await?;
        let input = JobInput {
            job_id: job.id,
            attempt: job.attempt,
            url: job.site_url.clone(),
            inputs: job.inputs.0.clone(),
            instructions: plan.instructions.clone(),
            instruction_version: plan.instruction_version,
            fields: plan.fields.0.clone(),
            timeout_secs: plan.timeout_secs,
            row_index: job.row_index,
            wait_for: plan.wait_for.clone(),
            steps: plan.steps.0.clone(),
        };
        let mut out = match plan.agent {
            AgentKind::Http => self.http.run(&input, progress).await,
            AgentKind::Browser => self.browser.run(&input, progress).await,
            AgentKind::Imported => return Err(AgentError::permanent(
                "agent_rejected",
                "An imported run has no agent to run: rerun it, which uses the project's agent.",
            )),
            AgentKind::Snapshot => {
                let Some(from) = plan.pages_from else {
                    return Err(AgentError::permanent(
                        "no_snapshot",
                        "This snapshot run names no run to read pages from.",
                    ));
                };
                let agent = SnapshotAgent {
                    db: self.db.clone(),
                    from,
                };
                agent.run(&input, progress).await
            }
            AgentKind::Remote => {
                let Some(endpoint) = plan.remote_url.clone() else {
                    return Err(AgentError::permanent(
                        "agent_rejected",
                        "The project's remote agent has no URL; set one in the project's agent settings.",
                    ));
                };
                let agent = RemoteAgent {
                    client: self.client.clone(),
                    policy: self.policy.clone(),
                    endpoint,
                };
                let mut out = agent.run(&input, progress).await?;
                // Keep exactly the execution's fields, in order.
                let mut values = serde_json::Map::new();
                for f in &input.fields {
                    values.insert(
                        f.name.clone(),
                        out.values.remove(&f.name).unwrap_or(Value::Null),
                    );
                }
                out.values = values;
                Ok(out)
            }
        }?;
        // Test runs keep every page they read; production runs when the
        // project asks. A snapshot run's page is already kept.
        let page = out.page.take();
        if let Some(page) = &page {
            let keep = plan.mode == ExecutionMode::Test || plan.keep_pages;
            if keep && plan.agent != AgentKind::Snapshot {
                keep_page(&self.db, job, page.clone(), progress).await;
            }
        }
        if plan.extractor == Extractor::Llm && plan.agent != AgentKind::Remote {
            let Some(page) = page else {
                return Err(AgentError::permanent(
                    "internal",
                    "The source returned no page for the llm extractor.",
                ));
            };
            self.extract_with_model(&plan, &input, &page, &mut out, progress)
                .await?;
        }
        Ok(out)
    }

    /// The llm extractor: fields with the automatic rule go to the model
    /// route; fields with an explicit rule keep the value their rule found.
    async fn extract_with_model(
        &self,
        plan: &Plan,
        input: &JobInput,
        page: &PageCopy,
        out: &mut AgentOutput,
        progress: &Progress,
    ) -> Result<(), AgentError> {
        let fields: Vec<&OutputField> = input
            .fields
            .iter()
            .filter(|f| f.rule == ExtractionRule::Auto)
            .collect();
        if fields.is_empty() {
            progress.log(
                "info",
                "Every field has its own rule; the model was not asked.",
            );
            return Ok(());
        }
        let route = route_targets(&self.db, plan).await?;
        let found = llm::extract(
            &self.db,
            &self.models,
            &route,
            input,
            &fields,
            &page.html,
            plan.page_token_budget.max(1) as usize,
            progress,
        )
        .await?;
        let by_rules = out.values.clone();
        for (name, value) in found.values {
            out.values.insert(name, value);
        }
        if let Value::Object(raw) = &mut out.raw {
            raw.insert("llm".into(), found.raw);
            raw.insert("rules_values".into(), Value::Object(by_rules));
            raw.insert("values".into(), Value::Object(out.values.clone()));
        }
        out.usage = Some(found.usage);
        progress.step("Done", Some(&page.url), Some(100));
        Ok(())
    }
}

/// The plan's model route as callable targets (see
/// [`llm::route::targets_of`]); an error when nothing is left.
async fn route_targets(db: &PgPool, plan: &Plan) -> Result<Vec<Target>, AgentError> {
    let targets =
        crate::server::agents::llm::route::targets_of(db, plan.org_id, &plan.model_route.0)
            .await
            .map_err(|e| AgentError::transient("internal", e))?;
    if targets.is_empty() {
        return Err(AgentError::permanent(
            "no_model",
            "Every provider of the project's model route is deleted or disabled; choose another in the project's agent settings.",
        ));
    }
    Ok(targets)
}

/// Pages larger than this (compressed) are not kept.
const MAX_KEPT_PAGE: usize = 5 * 1024 * 1024;

/// Stores the page an attempt read, compressed; a failure to keep it is
/// logged, never the job's failure.
async fn keep_page(db: &PgPool, job: &Claimed, page: PageCopy, progress: &Progress) {
    let bytes = page.html.len();
    let html = page.html;
    let Ok(packed) = tokio::task::spawn_blocking(move || snapshot::gzip(&html)).await else {
        return;
    };
    if packed.len() > MAX_KEPT_PAGE {
        progress.log(
            "warn",
            &format!(
                "The page was not kept: {} MB compressed, more than the 5 MB kept per page.",
                packed.len() / (1024 * 1024)
            ),
        );
        return;
    }
    match db::pages::store(db, job.id, job.attempt, &page.url, &packed, bytes as i32).await {
        Ok(()) => progress.log(
            "info",
            &format!("Kept the page ({bytes} bytes, {} compressed)", packed.len()),
        ),
        Err(e) => tracing::warn!(job = job.id, error = %e, "keeping a page failed"),
    }
}

/// Why a job stopped before its agent finished.
enum Interrupted {
    LeaseLost,
    Stopped,
    Shutdown,
}

async fn run(shared: &Shared, job: Claimed, mut shutdown: watch::Receiver<bool>) {
    let progress = Progress::default();
    let control = shared.hub.control();
    let outcome = tokio::select! {
        r = shared.run_agent(&job, &progress) => Ok(r),
        i = watch_job(shared, &job, &progress, control) => Err(i),
        _ = shutdown.changed() => Err(Interrupted::Shutdown),
    };
    let db = &shared.db;
    let worker = shared.worker.as_str();
    let written = match outcome {
        Ok(Ok(out)) => {
            // Judge the result against the row's expected values now, so
            // the job is written once, with its verdict.
            let fields = shared
                .plans
                .lock()
                .expect("plans")
                .get(&job.execution_id)
                .map(|p| p.fields.0.clone())
                .unwrap_or_default();
            let verdict = evaluate::evaluate_job(&fields, &out.values, &job.ground_truth.0);
            shared
                .writer
                .complete(&job, out, json!(progress.log_lines()), verdict)
                .await
                .map(|ok| if ok { "succeeded" } else { "stale" })
        }
        Ok(Err(e)) => {
            progress.log("error", &format!("{}: {}", e.kind, e.message));
            let retry_at = match e.class {
                ErrorClass::Permanent => None,
                ErrorClass::Transient => {
                    let wait = e.retry_after.unwrap_or_else(|| {
                        fetch::backoff(job.attempt.max(1) as u32 - 1, BACKOFF_BASE, BACKOFF_CAP)
                    });
                    Some(chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
                }
            };
            let log = json!(progress.log_lines());
            let result =
                db::jobs::fail_logged(db, &job, worker, e.kind, &e.message, retry_at, &log)
                    .await
                    .map(|f| match f {
                        Failed::Retrying => "retrying",
                        Failed::Final => "failed",
                        Failed::Stale => "stale",
                    });
            if let (Ok("retrying" | "failed"), Some(usage)) = (&result, &e.usage) {
                if let Err(err) = db::jobs::charge_usage(db, &job, usage).await {
                    tracing::warn!(job = job.id, error = %err, "recording a failed attempt's model usage failed");
                }
            }
            shared.writer.moved(job.execution_id).await;
            result
        }
        Err(Interrupted::Stopped) => {
            progress.log("warn", "The execution was stopped.");
            let result = db::jobs::cancel_running(db, &job, worker, &json!(progress.log_lines()))
                .await
                .map(|_| "cancelled");
            shared.writer.moved(job.execution_id).await;
            result
        }
        Err(Interrupted::LeaseLost) => Ok("stale"),
        Err(Interrupted::Shutdown) => {
            progress.log(
                "warn",
                "The worker shut down; the job went back to the queue.",
            );
            let result = db::jobs::hand_back(db, &job, worker, &json!(progress.log_lines()))
                .await
                .map(|_| "handed back");
            // Other processes may pick it up at once.
            let _ = live::notify(db, live::WORK, "").await;
            result
        }
    };
    match written {
        Ok(result) => {
            crate::server::metrics::attempt_ended(result);
            tracing::debug!(job = job.id, attempt = job.attempt, result, "job ended")
        }
        Err(e) => tracing::error!(job = job.id, error = %e, "recording a job's result failed"),
    }
}

/// Renews the lease every lease/3, saves the agent's latest progress, and
/// returns when the job must stop: its execution was stopped (heard
/// through NOTIFY, or seen by the slow poll) or its lease was lost.
async fn watch_job(
    shared: &Shared,
    job: &Claimed,
    progress: &Progress,
    mut control: broadcast::Receiver<Control>,
) -> Interrupted {
    let stopped = |state: &str| matches!(state, "stopping" | "cancelled");
    let mut since_renewal = Duration::ZERO;
    let mut since_poll = Duration::ZERO;
    let mut saved_version = 0;
    let mut tick = tokio::time::interval(TICK);
    tick.tick().await;
    loop {
        let mut recheck = false;
        tokio::select! {
            _ = tick.tick() => {
                since_renewal += TICK;
                since_poll += TICK;
                if since_renewal >= shared.lease / 3 {
                    since_renewal = Duration::ZERO;
                    if let Ok(false) = db::jobs::renew(&shared.db, job, &shared.worker, shared.lease).await {
                        return Interrupted::LeaseLost;
                    }
                }
                // Fast jobs never get here, so they write no progress.
                let (version, step) = progress.current();
                if version != saved_version {
                    saved_version = version;
                    if let Some(step) = step {
                        let value = serde_json::to_value(&step).unwrap_or(Value::Null);
                        let _ = db::jobs::set_progress(&shared.db, job, &shared.worker, &value).await;
                        shared.writer.moved(job.execution_id).await;
                    }
                }
                if since_poll >= STATE_POLL {
                    since_poll = Duration::ZERO;
                    recheck = true;
                }
            }
            signal = control.recv() => match signal {
                Ok(Control::State(id, state)) if id == job.execution_id => {
                    if stopped(&state) {
                        return Interrupted::Stopped;
                    }
                }
                Ok(Control::State(..)) => {}
                Ok(Control::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => recheck = true,
                Err(broadcast::error::RecvError::Closed) => {}
            },
        }
        if recheck {
            if let Ok(Some(state)) = db::jobs::execution_state(&shared.db, job.execution_id).await {
                if stopped(&state) {
                    return Interrupted::Stopped;
                }
            }
        }
    }
}
