//! Executions: start one over a batch (a test sample or every row), read
//! it with its counts, list a batch's, and steer it: pause (no new jobs
//! start; running ones finish), resume, stop (queued jobs are cancelled and
//! running ones stop within a second), change concurrency (new claims obey
//! it at once; running jobs are not preempted).

use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::batches::batch_ctx;
use super::collect_fields;
use crate::error::AppError;
use crate::model::{
    AgentKind, Concurrency, ControlAction, Execution, ExecutionMode, ExecutionState, Extractor,
    JobState, Page,
};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;
use crate::server::db::executions::{ExecutionRow, MetricParts};
use crate::server::db::jobs::{NewExecution, Sample};
use crate::server::live;

fn not_found() -> AppError {
    AppError::NotFound("Execution".into())
}

/// What starting an execution takes (SPEC's body).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub mode: String,
    pub sample_size: Option<i32>,
    pub sample: Option<String>,
    pub instruction_version: Option<i32>,
    /// http, browser or remote (default: the project's agent), or
    /// snapshot with `from_execution`.
    pub agent: Option<String>,
    /// rules or llm (default: the project's extractor; llm uses the
    /// project's model route).
    pub extractor: Option<String>,
    /// A snapshot run re-reads the pages this execution kept, over its rows.
    pub from_execution: Option<Uuid>,
    /// Run exactly the rows of this evaluation set of the batch (with a
    /// snapshot run: those of them whose page was kept).
    pub evaluation_set: Option<Uuid>,
    pub concurrency: Option<i32>,
    pub max_retries: Option<i32>,
    /// Exactly these rows (an experiment's; not part of the request body).
    #[serde(skip)]
    pub rows: Option<Vec<i32>>,
    /// Another model route than the version's (an experiment variant's).
    #[serde(skip)]
    pub model_route: Option<Vec<crate::model::RouteEntry>>,
}

/// Browser runs need Chromium on this machine: refused when the run starts
/// (naming what to install), never discovered job by job.
fn browser_ready() -> Result<(), AppError> {
    match crate::server::agents::sources::browser::unavailable() {
        None => Ok(()),
        Some(why) => Err(AppError::BrowserUnavailable(why)),
    }
}

/// The llm extractor needs a model route, and a remote agent extracts by
/// itself.
fn check_extractor(
    extractor: Extractor,
    agent: Option<AgentKind>,
    settings: &crate::model::AgentSettings,
) -> Result<Extractor, AppError> {
    if extractor != Extractor::Llm {
        return Ok(extractor);
    }
    if agent == Some(AgentKind::Remote) {
        return Err(AppError::field(
            "extractor",
            "The remote agent extracts by itself; the llm extractor goes with the http, browser or snapshot source.",
        ));
    }
    if settings.model_route.is_empty() {
        return Err(AppError::field(
            "extractor",
            "The llm extractor needs a model route: choose a provider and model in the project's agent settings.",
        ));
    }
    Ok(extractor)
}

/// A concurrency from a request, as a field error when outside the
/// organization's limit.
pub(crate) async fn parse_concurrency(
    db: &PgPool,
    org_id: Uuid,
    n: i32,
) -> Result<Concurrency, AppError> {
    let limit = concurrency_limit(db, org_id).await?;
    Concurrency::parse(n, limit).map_err(|message| AppError::field("concurrency", message))
}

/// The organization's plan limit, under the server's cap.
pub async fn concurrency_limit(db: &PgPool, org_id: Uuid) -> Result<i32, AppError> {
    let plan = db::orgs::max_concurrency(db, org_id).await?;
    Ok(server_concurrency_cap().map_or(plan, |cap| plan.min(cap)))
}

/// `MINO_MAX_CONCURRENCY`: no run on this server goes above it, whatever
/// the plan says (checked at start by [`crate::server::config::Config`]).
pub fn server_concurrency_cap() -> Option<i32> {
    static CAP: std::sync::OnceLock<Option<i32>> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("MINO_MAX_CONCURRENCY")
            .ok()
            .and_then(|v| parse_concurrency_cap(&v))
    })
}

/// A `MINO_MAX_CONCURRENCY` value: a whole number from 1 to the most any
/// plan allows.
pub fn parse_concurrency_cap(raw: &str) -> Option<i32> {
    raw.trim()
        .parse::<i32>()
        .ok()
        .filter(|n| (Concurrency::MIN..=Concurrency::MAX).contains(n))
}

/// Rows to executions as `ctx`'s caller sees them.
async fn to_models(
    db: &PgPool,
    rows: Vec<ExecutionRow>,
    ctx: &OrgCtx,
) -> Result<Vec<Execution>, AppError> {
    Ok(db::executions::with_counts(db, rows, ctx.role()).await?)
}

pub(crate) async fn execution_ctx(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<(OrgCtx, Execution), AppError> {
    let org_id = db::executions::fetch_org_id(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    let row = db::executions::fetch_one(db, org_id, id)
        .await?
        .ok_or_else(not_found)?;
    let e = to_models(db, vec![row], &ctx).await?.remove(0);
    Ok((ctx, e))
}

/// An execution as Mino itself reads it (no caller), for the webhook
/// bodies built outside any request; `None` once it was deleted.
pub(crate) async fn read_unchecked(
    db: &PgPool,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<Execution>, AppError> {
    let Some(row) = db::executions::fetch_one(db, org_id, id).await? else {
        return Ok(None);
    };
    Ok(Some(
        to_models(db, vec![row], &OrgCtx::system(org_id))
            .await?
            .remove(0),
    ))
}

/// The checks of reading an execution (401, or 404 across tenants) and
/// its batch, without counting its jobs: for callers on a hot path (the
/// job list) that need only where it is.
pub(crate) async fn batch_of(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Uuid, AppError> {
    let at = db::executions::fetch_placement(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, at.org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    Ok(at.batch_id)
}

/// One execution with its counts.
pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Execution, AppError> {
    Ok(execution_ctx(db, actor, id).await?.1)
}

/// A project's latest executions (active ones first), for its overview.
pub async fn list_for_project(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
) -> Result<Page<Execution>, AppError> {
    let (ctx, _) = super::projects::project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::ViewResults)?;
    let rows = db::executions::list_for_project(db, ctx.org_id(), project_id).await?;
    Ok(Page {
        items: to_models(db, rows, &ctx).await?,
        next_cursor: None,
    })
}

/// A batch's latest hundred executions.
pub async fn list_for_batch(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
) -> Result<Page<Execution>, AppError> {
    let (ctx, _) = batch_ctx(db, actor, batch_id).await?;
    let rows = db::executions::list_for_batch(db, ctx.org_id(), batch_id).await?;
    Ok(Page {
        items: to_models(db, rows, &ctx).await?,
        next_cursor: None,
    })
}

/// Starts an execution over a batch (a test sample or every row) after checking every field of the request and the monthly quota.
pub async fn start(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    req: StartRequest,
) -> Result<Execution, AppError> {
    let (ctx, batch) = batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::RunExecution)?;
    let prepared = prepare(db, &ctx, &batch, &req).await?;
    super::usage::refuse_when_stopped(db, ctx.org_id()).await?;
    let mut tx = db.begin().await?;
    let id = insert_prepared(&mut tx, &ctx, &batch, &prepared).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("execution.start", "execution", id).after(prepared.audit_details(batch.id)),
    )
    .await?;
    live::notify(&mut *tx, live::WORK, "").await?;
    tx.commit().await?;
    get(db, actor, id).await
}

/// A start request checked against the project, its version and the
/// organization's limits: everything the execution's row needs. Nothing is
/// written yet, so an experiment prepares all its variants before it
/// inserts any.
pub(crate) struct PreparedStart {
    project_id: Uuid,
    price_per_job_micros: i64,
    pub(crate) version: i32,
    fields: Vec<crate::model::OutputField>,
    settings: crate::model::AgentSettings,
    mode: ExecutionMode,
    sample_size: Option<i32>,
    random: bool,
    pub(crate) agent: AgentKind,
    pub(crate) extractor: Extractor,
    /// The run whose kept pages a snapshot run reads.
    pages_from: Option<Uuid>,
    /// Rows named rather than sampled (a set's, a snapshot's, an
    /// experiment's, or their intersection).
    named_rows: Option<Vec<i32>>,
    concurrency: i32,
    max_retries: i32,
    estimated_job_cost_micros: Option<i64>,
    evaluation_set: Option<Uuid>,
}

impl PreparedStart {
    pub(crate) fn pages_from(&self) -> Option<Uuid> {
        self.pages_from
    }
}

/// Checks a start request (every field's error at once) and resolves what
/// the run will use.
pub(crate) async fn prepare(
    db: &PgPool,
    ctx: &OrgCtx,
    batch: &db::batches::BatchDbRow,
    req: &StartRequest,
) -> Result<PreparedStart, AppError> {
    let batch_id = batch.id;
    let project = db::projects::fetch_one(db, ctx.org_id(), batch.project_id)
        .await?
        .ok_or_else(not_found)?;
    // A run uses its version's whole configuration: the instructions, the
    // fields' rules and descriptions, and the agent settings that shape
    // output (over the project's current price, retries and kept pages).
    let version_number = req
        .instruction_version
        .unwrap_or(project.production_version);
    let version =
        db::projects::fetch_version(db, ctx.org_id(), project.id, Some(version_number)).await?;
    let mut settings = match &version {
        Some(v) => v.agent.applied_to(&project.agent()),
        None => project.agent(),
    };
    if let Some(route) = &req.model_route {
        settings.model_route = route.clone();
    }
    let mode = ExecutionMode::parse(&req.mode).ok_or_else(|| {
        AppError::field("mode", "Choose test (a sample) or production (every row).")
    });
    let sample_size = match (mode.as_ref().ok(), req.sample_size) {
        (Some(ExecutionMode::Test), None) => Ok(Some(20.min(batch.row_count.max(1)))),
        (Some(ExecutionMode::Test), Some(n)) if (1..=1000).contains(&n) => Ok(Some(n)),
        (Some(ExecutionMode::Test), Some(_)) => Err(AppError::field(
            "sample_size",
            "A test runs 1 to 1,000 rows.",
        )),
        _ => Ok(None),
    };
    let random = match req.sample.as_deref() {
        None | Some("first") => Ok(false),
        Some("random") => Ok(true),
        Some(_) => Err(AppError::field("sample", "Use first or random.")),
    };
    let agent = match req.agent.as_deref() {
        None if req.from_execution.is_some() => Ok(AgentKind::Snapshot),
        None => Ok(settings.kind),
        Some(a) => AgentKind::parse(a)
            .ok_or_else(|| AppError::field("agent", "Use http, browser, remote or snapshot.")),
    }
    .and_then(|kind| match (kind, &settings.remote_url) {
        (AgentKind::Remote, None) => Err(AppError::field(
            "agent",
            "The remote agent needs its URL: set it in the project's agent settings.",
        )),
        (AgentKind::Browser, _) => browser_ready().map(|()| kind),
        (AgentKind::Imported, _) => Err(AppError::field(
            "agent",
            "Imported runs come from a file: POST it to /api/v1/batches/{id}/imports.",
        )),
        _ => Ok(kind),
    });
    let extractor = match req.extractor.as_deref() {
        // A remote agent extracts by itself.
        None if matches!(agent, Ok(AgentKind::Remote)) => Ok(Extractor::Rules),
        None => Ok(settings.extractor),
        Some(e) => {
            Extractor::parse(e).ok_or_else(|| AppError::field("extractor", "Use rules or llm."))
        }
    }
    .and_then(|x| check_extractor(x, agent.as_ref().ok().copied(), &settings));
    // A snapshot run reads the pages another run of this batch kept, over
    // the rows that have one.
    let snapshot_rows = match (agent.as_ref().ok(), req.from_execution) {
        (Some(AgentKind::Snapshot), None) => Err(AppError::field(
            "from_execution",
            "A snapshot run needs from_execution: the run whose kept pages it reads.",
        )),
        (Some(AgentKind::Snapshot), Some(from)) => snapshot_source(db, ctx, batch_id, from).await,
        (_, Some(_)) => Err(AppError::field(
            "from_execution",
            "from_execution goes with agent snapshot.",
        )),
        _ => Ok(None),
    };
    let set_rows = match req.evaluation_set {
        Some(set) => super::evaluation_sets::rows_for_run(db, ctx.org_id(), batch_id, set)
            .await
            .map(Some),
        None => Ok(None),
    };
    let concurrency = match req.concurrency {
        Some(n) => parse_concurrency(db, ctx.org_id(), n).await,
        // The default, within a plan that allows less.
        None => Concurrency::parse(
            Concurrency::DEFAULT
                .get()
                .min(concurrency_limit(db, ctx.org_id()).await?),
            Concurrency::MAX,
        )
        .map_err(|m| AppError::field("concurrency", m)),
    };
    let max_retries = match req.max_retries {
        None => Ok(project.max_retries),
        Some(r) if (0..=10).contains(&r) => Ok(r),
        Some(_) => Err(AppError::field("max_retries", "Use 0 to 10 retries.")),
    };
    let version_ok = match &version {
        Some(_) => Ok(()),
        None => Err(AppError::field(
            "instruction_version",
            format!("This project has no version {version_number}."),
        )),
    };
    collect_fields([
        unit(&mode),
        unit(&sample_size),
        unit(&random),
        unit(&agent),
        unit(&extractor),
        unit(&snapshot_rows),
        unit(&set_rows),
        unit(&concurrency),
        unit(&max_retries),
        version_ok,
    ])?;
    if batch.row_count == 0 {
        return Err(AppError::Conflict("This batch has no rows to run.".into()));
    }

    let extractor = extractor?;
    let estimated_job_cost_micros =
        llm_job_estimate(db, ctx.org_id(), project.id, extractor, &settings).await?;
    let fields = db::projects::fetch_fields(db, ctx.org_id(), project.id).await?;
    let fields = match &version {
        Some(v) => crate::model::fields_for_version(&fields, &v.fields),
        None => fields,
    };
    let snapshot_rows = snapshot_rows?;
    // Rows named rather than sampled: the intersection of those a set, an
    // experiment and a snapshot (its kept pages) name.
    let mut named_rows: Option<Vec<i32>> = None;
    for rows in [
        snapshot_rows.as_ref().map(|(_, kept)| kept.clone()),
        set_rows?,
        req.rows.clone(),
    ]
    .into_iter()
    .flatten()
    {
        named_rows = Some(match named_rows {
            None => rows,
            Some(so_far) => {
                let these: std::collections::HashSet<i32> = rows.into_iter().collect();
                so_far.into_iter().filter(|r| these.contains(r)).collect()
            }
        });
    }
    if named_rows.as_ref().is_some_and(Vec::is_empty) {
        return Err(AppError::field(
            "evaluation_set",
            "None of the set's rows has a kept page in that run.",
        ));
    }
    let sample_size = match &named_rows {
        Some(rows) => Some(rows.len() as i32),
        None => sample_size?,
    };
    Ok(PreparedStart {
        project_id: project.id,
        price_per_job_micros: project.price_per_job_micros,
        version: version_number,
        fields,
        settings,
        mode: mode?,
        sample_size,
        random: random?,
        agent: agent?,
        extractor,
        pages_from: snapshot_rows.map(|(from, _)| from),
        named_rows,
        concurrency: concurrency?.get(),
        max_retries: max_retries?,
        estimated_job_cost_micros,
        evaluation_set: req.evaluation_set,
    })
}

/// Inserts a prepared execution with its jobs inside `tx` (the caller
/// audits, commits and wakes the workers).
pub(crate) async fn insert_prepared(
    tx: &mut sqlx::PgConnection,
    ctx: &OrgCtx,
    batch: &db::batches::BatchDbRow,
    p: &PreparedStart,
) -> Result<Uuid, AppError> {
    check_monthly_quota(&mut *tx, ctx.org_id()).await?;
    let settings = &p.settings;
    let id = db::jobs::insert_execution(
        &mut *tx,
        &NewExecution {
            org_id: ctx.org_id(),
            project_id: p.project_id,
            batch_id: batch.id,
            instruction_version: p.version,
            mode: p.mode,
            sample_size: p.sample_size,
            agent: p.agent,
            extractor: p.extractor,
            wait_for: settings.wait_for.as_deref(),
            steps: &settings.steps,
            keep_pages: settings.keep_pages,
            pages_from: p.pages_from,
            model_route: &settings.model_route,
            page_token_budget: settings.page_token_budget,
            estimated_job_cost_micros: p.estimated_job_cost_micros,
            concurrency: p.concurrency,
            max_retries: p.max_retries,
            timeout_secs: settings.timeout_secs,
            price_per_job_micros: p.price_per_job_micros,
            state: ExecutionState::Running,
            created_by: ctx.actor().user_id(),
            fields: &p.fields,
            remote_url: match p.agent {
                AgentKind::Remote => settings.remote_url.as_deref(),
                _ => None,
            },
            rerun_of: None,
        },
    )
    .await?;
    match &p.named_rows {
        Some(rows) => {
            db::jobs::enqueue_row_indexes(&mut *tx, id, ctx.org_id(), rows).await?;
        }
        None => {
            let sample = match (p.sample_size, p.random) {
                (None, _) => Sample::All,
                (Some(n), false) => Sample::First(n as i64),
                (Some(n), true) => Sample::Random(n as i64),
            };
            db::jobs::enqueue_rows(&mut *tx, id, ctx.org_id(), batch.seq, sample).await?;
        }
    }
    Ok(id)
}

impl PreparedStart {
    /// What the audit entry of a start records.
    pub(crate) fn audit_details(&self, batch_id: Uuid) -> serde_json::Value {
        json!({
            "batch_id": batch_id, "mode": self.mode, "sample_size": self.sample_size,
            "instruction_version": self.version, "agent": self.agent.as_str(),
            "pages_from": self.pages_from,
            "evaluation_set": self.evaluation_set,
        })
    }
}

/// The execution a snapshot run reads pages from, and the rows it kept
/// pages for. It must be a run of the same batch; a snapshot of a
/// snapshot reads the original pages.
pub(crate) async fn snapshot_source(
    db: &PgPool,
    ctx: &OrgCtx,
    batch_id: Uuid,
    from: Uuid,
) -> Result<Option<(Uuid, Vec<i32>)>, AppError> {
    let field = |m: &str| AppError::field("from_execution", m);
    let Some(source) = db::executions::fetch_one(db, ctx.org_id(), from).await? else {
        return Err(field("There is no such execution in this organization."));
    };
    if source.batch_id != batch_id {
        return Err(field(
            "That execution ran over another batch; re-extract from a run of this batch.",
        ));
    }
    let from = source.pages_from.unwrap_or(source.id);
    let rows = db::pages::rows_with_pages(db, from).await?;
    if rows.is_empty() {
        return Err(field(
            "That run kept no pages (test runs keep them; production runs when the project's agent settings say so), or retention removed them.",
        ));
    }
    Ok(Some((from, rows)))
}

/// Refuses a new execution past the organization's monthly quota. Locks
/// the organization's row so two starts can't both take the last one.
async fn check_monthly_quota(tx: &mut sqlx::PgConnection, org_id: Uuid) -> Result<(), AppError> {
    let db::executions::MonthlyUsage { limit, used } =
        db::executions::monthly_usage_locked(tx, org_id).await?;
    if used >= limit as i64 {
        return Err(AppError::QuotaExceeded(format!(
            "This organization has used its {limit} executions for this month. An owner can raise the limit."
        )));
    }
    Ok(())
}

/// Most job ids one rerun request may name.
pub const MAX_RERUN_IDS: usize = 1_000;

/// Which jobs of an execution to run again.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// failed (default), unfinished (failed or cancelled) or all.
    pub jobs: Option<String>,
    /// Instead of `jobs`: these jobs (at most 1,000).
    pub job_ids: Option<Vec<i64>>,
    pub concurrency: Option<i32>,
}

/// Runs chosen jobs of an execution again as a new execution over the same
/// rows, with the same agent, concurrency and retry limit, and the
/// project's latest version (a rerun usually follows a fix: a longer
/// timeout, a better field rule, clearer instructions — each saved as a new
/// version, which the rerun records).
pub async fn rerun(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    req: RerunRequest,
) -> Result<Execution, AppError> {
    let (ctx, e) = execution_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    let states: &[JobState] = match (req.jobs.as_deref(), &req.job_ids) {
        (Some(_), Some(_)) => {
            return Err(AppError::field(
                "jobs",
                "Give either jobs (failed, unfinished, all) or job_ids, not both.",
            ))
        }
        (None, None) | (Some("failed"), None) => &[JobState::Failed],
        (Some("unfinished"), None) => &[JobState::Failed, JobState::Cancelled],
        (Some("all"), None) => JobState::ALL,
        (Some(_), None) => return Err(AppError::field("jobs", "Use failed, unfinished or all.")),
        (None, Some(ids)) if ids.is_empty() => {
            return Err(AppError::field("job_ids", "Choose at least one job."))
        }
        (None, Some(ids)) if ids.len() > MAX_RERUN_IDS => {
            return Err(AppError::field(
                "job_ids",
                format!("At most {MAX_RERUN_IDS} job ids per request; rerun by state for more."),
            ))
        }
        (None, Some(_)) => &[],
    };
    let concurrency = match req.concurrency {
        None => e.concurrency,
        Some(c) => parse_concurrency(db, ctx.org_id(), c).await?.get(),
    };
    let rows: Vec<i32> = match &req.job_ids {
        Some(ids) => {
            let found = db::executions::jobs_among(db, id, ids).await?;
            let known: std::collections::HashSet<i64> = found.iter().map(|j| j.id).collect();
            let unknown: Vec<String> = ids
                .iter()
                .filter(|i| !known.contains(i))
                .take(5)
                .map(|i| i.to_string())
                .collect();
            if !unknown.is_empty() {
                return Err(AppError::field(
                    "job_ids",
                    format!("Not jobs of this execution: {}.", unknown.join(", ")),
                ));
            }
            found.into_iter().map(|j| j.row_index).collect()
        }
        None => db::executions::rows_in_states(db, id, states).await?,
    };
    if rows.is_empty() {
        return Err(AppError::Conflict(format!(
            "This execution has no {} jobs to rerun.",
            req.jobs.as_deref().unwrap_or("failed")
        )));
    }
    rerun_rows(db, actor, &ctx, &e, rows, concurrency).await
}

/// Starts a new execution over `rows` of execution `e`'s batch, as a rerun
/// of it (the caller checked the permission and the rows).
pub(crate) async fn rerun_rows(
    db: &PgPool,
    actor: &Actor,
    ctx: &OrgCtx,
    e: &Execution,
    rows: Vec<i32>,
    concurrency: i32,
) -> Result<Execution, AppError> {
    let id = e.id;
    let project = db::projects::fetch_one(db, ctx.org_id(), e.project_id)
        .await?
        .ok_or_else(not_found)?;
    // An imported run is rerun by the project's own agent.
    let agent = match e.agent {
        AgentKind::Imported => project.agent().kind,
        a => a,
    };
    if agent == AgentKind::Browser {
        browser_ready()?;
    }
    if agent == AgentKind::Remote && project.remote_url.is_none() {
        return Err(AppError::Conflict(
            "The project's remote agent has no URL any more; set one in its agent settings.".into(),
        ));
    }
    let settings = project.agent();
    let extractor = check_extractor(
        match agent {
            AgentKind::Remote => Extractor::Rules,
            _ => e.extractor.unwrap_or(project.extractor),
        },
        Some(agent),
        &settings,
    )
    .map_err(|e| AppError::Conflict(e.to_string()))?;
    let estimated_job_cost_micros =
        llm_job_estimate(db, ctx.org_id(), project.id, extractor, &settings).await?;
    super::usage::refuse_when_stopped(db, ctx.org_id()).await?;
    let mut tx = db.begin().await?;
    check_monthly_quota(&mut tx, ctx.org_id()).await?;
    let fields = db::projects::fetch_fields(&mut *tx, ctx.org_id(), project.id).await?;
    let new_id = db::jobs::insert_execution(
        &mut tx,
        &NewExecution {
            org_id: ctx.org_id(),
            project_id: project.id,
            batch_id: e.batch_id,
            instruction_version: project.latest_version,
            mode: e.mode,
            sample_size: Some(rows.len() as i32),
            agent,
            concurrency,
            max_retries: e.max_retries,
            timeout_secs: project.timeout_secs,
            price_per_job_micros: project.price_per_job_micros,
            state: ExecutionState::Running,
            created_by: ctx.actor().user_id(),
            fields: &fields,
            remote_url: match agent {
                AgentKind::Remote => project.remote_url.as_deref(),
                _ => None,
            },
            rerun_of: Some(id),
            extractor,
            wait_for: settings.wait_for.as_deref(),
            steps: &settings.steps,
            keep_pages: settings.keep_pages,
            pages_from: e.pages_from,
            model_route: &settings.model_route,
            page_token_budget: settings.page_token_budget,
            estimated_job_cost_micros,
        },
    )
    .await?;
    db::jobs::enqueue_row_indexes(&mut tx, new_id, ctx.org_id(), &rows).await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("execution.rerun", "execution", new_id)
            .after(json!({"rerun_of": id, "rows": rows.len(), "concurrency": concurrency})),
    )
    .await?;
    live::notify(&mut *tx, live::WORK, "").await?;
    tx.commit().await?;
    get(db, actor, new_id).await
}

/// Pauses (no new jobs start; running ones finish), resumes or stops
/// (queued jobs cancelled, running ones end) an execution.
pub async fn control(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    action: ControlAction,
) -> Result<Execution, AppError> {
    let (ctx, e) = execution_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    let (from, to) = action.transition();
    if !from.contains(&e.state) {
        return Err(AppError::Conflict(format!(
            "The execution is {}; it can't {action}.",
            e.state
        )));
    }
    if action == ControlAction::Resume {
        super::usage::refuse_when_stopped(db, ctx.org_id()).await?;
    }
    let who = ctx.actor_name(db).await?.to_string();
    let mut tx = db.begin().await?;
    apply_control(&mut tx, id, action, &who).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new(&format!("execution.{action}"), "execution", id)
            .before(json!({"state": e.state}))
            .after(json!({"state": to})),
    )
    .await?;
    if action == ControlAction::Resume {
        live::notify(&mut *tx, live::WORK, "").await?;
    }
    tx.commit().await?;
    // Ends it at once when nothing runs (a stop with no running job);
    // settling tells every process.
    db::jobs::settle(db, id).await?;
    get(db, actor, id).await
}

/// Moves an execution whose state allows `action` (the caller checked),
/// with its event for the live view, inside `tx`; the caller audits.
pub(crate) async fn apply_control(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    action: ControlAction,
    who: &str,
) -> Result<(), AppError> {
    let (_, to) = action.transition();
    db::executions::set_state(&mut *tx, id, to).await?;
    if action == ControlAction::Stop {
        db::jobs::cancel_queued(&mut *tx, id).await?;
    }
    let (kind, message) = match action {
        ControlAction::Pause => (
            "paused",
            format!("{who} paused the run; running jobs finish, no new ones start."),
        ),
        ControlAction::Resume => ("resumed", format!("{who} resumed the run.")),
        ControlAction::Stop => (
            "stopped",
            format!("{who} stopped the run; queued jobs were cancelled."),
        ),
    };
    db::executions::insert_event(&mut *tx, id, kind, &message, who).await?;
    // Delivered at commit: running jobs of a stopped execution end, idle
    // workers wake for a resumed one, viewers refresh.
    live::notify_state(&mut *tx, id, to.as_str()).await?;
    live::notify(&mut *tx, live::EXECUTION, &id.to_string()).await?;
    Ok(())
}

/// Changes how many jobs run at once (new claims obey it at once).
pub async fn set_concurrency(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    concurrency: i32,
) -> Result<Execution, AppError> {
    let (ctx, e) = execution_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    let concurrency = parse_concurrency(db, ctx.org_id(), concurrency)
        .await?
        .get();
    if !e.is_active() {
        return Err(AppError::Conflict(format!("The execution is {}.", e.state)));
    }
    let who = ctx.actor_name(db).await?;
    let mut tx = db.begin().await?;
    db::executions::set_concurrency(&mut *tx, id, concurrency).await?;
    if concurrency != e.concurrency {
        let message = format!(
            "{who} changed concurrency from {} to {concurrency}.",
            e.concurrency
        );
        db::executions::insert_event(&mut *tx, id, "concurrency", &message, who).await?;
    }
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("execution.set_concurrency", "execution", id)
            .before(json!({"concurrency": e.concurrency}))
            .after(json!({"concurrency": concurrency})),
    )
    .await?;
    // More slots may mean claimable work for idle workers.
    live::notify(&mut *tx, live::WORK, "").await?;
    live::notify(&mut *tx, live::EXECUTION, &id.to_string()).await?;
    tx.commit().await?;
    get(db, actor, id).await
}

/// Accuracy overall and per field, verdict counts, errors by class.
pub async fn metrics(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<crate::model::ExecutionMetrics, AppError> {
    let (_, e) = execution_ctx(db, actor, id).await?;
    metrics_of(db, &e).await
}

/// The metrics of an execution the caller was already allowed to read.
pub(crate) async fn metrics_of(
    db: &PgPool,
    e: &Execution,
) -> Result<crate::model::ExecutionMetrics, AppError> {
    let id = e.id;
    let parts: MetricParts = db::executions::metric_parts(db, id).await?;
    Ok(crate::model::ExecutionMetrics {
        execution_id: id,
        accuracy: e.accuracy,
        accuracy_interval: parts.accuracy_interval,
        verdicts: parts.verdicts,
        fields: parts.fields,
        errors_by_class: parts.errors_by_class,
        cost_micros: e.cost_micros,
        duration_secs: e
            .started_at
            .map(|s| (e.finished_at.unwrap_or_else(chrono::Utc::now) - s).num_seconds()),
    })
}

/// A live view's first snapshot for `actor` (their role set, no rate yet).
pub async fn live_snapshot(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<crate::model::LiveSnapshot, AppError> {
    let e = get(db, actor, id).await?;
    let db::executions::LiveParts {
        mut execution,
        running_jobs,
        events,
        waiting_retry,
    } = db::executions::live_parts(db, id)
        .await?
        .ok_or_else(not_found)?;
    execution.role = e.role;
    Ok(crate::model::LiveSnapshot {
        seq: 0,
        last: !execution.is_active(),
        execution,
        per_minute: 0.0,
        eta_secs: None,
        running_jobs,
        events,
        waiting_retry,
    })
}

fn unit<T>(r: &Result<T, AppError>) -> Result<(), AppError> {
    r.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// An llm run's expected cost per job, from the project's last llm test
/// run (rules-only runs are estimated by their flat price).
async fn llm_job_estimate(
    db: &PgPool,
    org_id: Uuid,
    project_id: Uuid,
    extractor: Extractor,
    settings: &crate::model::AgentSettings,
) -> Result<Option<i64>, AppError> {
    if extractor != Extractor::Llm {
        return Ok(None);
    }
    Ok(
        super::model_providers::llm_cost_estimate(db, org_id, project_id, &settings.model_route)
            .await?
            .map(|e| e.per_job_micros),
    )
}
