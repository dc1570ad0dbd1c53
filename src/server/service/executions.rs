//! Executions: start one over a batch (a test sample or every row), read
//! it with its counts, list a batch's, and steer it: pause (no new jobs
//! start; running ones finish), resume, stop (queued jobs are cancelled and
//! running ones stop within a second), change concurrency (new claims obey
//! it at once; running jobs are not preempted).

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use serde_json::json;

use super::audit::{self, Change};
use super::batches::batch_ctx;
use super::collect_fields;
use crate::error::AppError;
use crate::model::{AgentKind, Execution, ExecutionEvent, Page, RunningJob};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;
use crate::server::db::jobs::{NewExecution, Sample};
use crate::server::live;

pub const MAX_CONCURRENCY: i32 = 50;

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
    pub agent: Option<String>,
    pub concurrency: Option<i32>,
    pub max_retries: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    batch_id: Uuid,
    batch_name: String,
    project_id: Uuid,
    project_name: String,
    org_slug: String,
    mode: String,
    sample_size: Option<i32>,
    instruction_version: i32,
    agent: String,
    concurrency: i32,
    max_retries: i32,
    state: String,
    price_per_job_micros: i64,
    rerun_of: Option<Uuid>,
    created_at: chrono::DateTime<chrono::Utc>,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The kept counts, when current (see `summaries`).
    counts: Option<Json<serde_json::Value>>,
}

/// An execution's jobs counted: by state, by verdict, accuracy and cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, sqlx::FromRow, schemars::JsonSchema)]
#[serde(default)]
pub(crate) struct Counts {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub passed_jobs: i64,
    pub failing_jobs: i64,
    /// Jobs with an accuracy (finished, with expected values).
    pub judged: i64,
    pub accuracy: Option<f64>,
    pub cost_micros: i64,
}

const COUNTS: &str = "select count(*) as total,
           count(*) filter (where state = 'queued') as queued,
           count(*) filter (where state = 'running') as running,
           count(*) filter (where state = 'succeeded') as succeeded,
           count(*) filter (where state = 'failed') as failed,
           count(*) filter (where state = 'cancelled') as cancelled,
           count(*) filter (where verdict = 'pass') as passed_jobs,
           count(*) filter (where verdict in ('partial', 'fail')) as failing_jobs,
           count(accuracy) as judged,
           avg(accuracy)::float8 as accuracy,
           coalesce((select sum(a.cost_micros) from attempts a join jobs j on j.id = a.job_id
                     where j.execution_id = $1), 0)::bigint as cost_micros
    from jobs where execution_id = $1";

/// The counts of one execution: kept while it is finished and unchanged.
pub(crate) async fn counts(db: &PgPool, id: Uuid) -> Result<Counts, AppError> {
    super::summaries::memo(db, id, "counts", || async move {
        Ok(sqlx::query_as::<_, Counts>(COUNTS)
            .bind(id)
            .fetch_one(db)
            .await?)
    })
    .await
}

const SELECT: &str = "select e.id, e.batch_id, b.name as batch_name, e.project_id,
        p.name as project_name, o.slug as org_slug, e.mode, e.sample_size,
        e.instruction_version, e.agent, e.concurrency, e.max_retries, e.state,
        e.price_per_job_micros, e.rerun_of, e.created_at, e.started_at, e.finished_at,
        s.value as counts
    from executions e
    join batches b on b.id = e.batch_id
    join projects p on p.id = e.project_id
    join organizations o on o.id = e.org_id
    left join execution_summaries s on s.execution_id = e.id and s.kind = 'counts'
                                   and s.results_version = e.results_version";

/// Rows to executions, counting the jobs of those without kept counts.
async fn to_models(db: &PgPool, rows: Vec<Row>, ctx: &OrgCtx) -> Result<Vec<Execution>, AppError> {
    let mut out = Vec::with_capacity(rows.len());
    for mut r in rows {
        let kept = r
            .counts
            .take()
            .and_then(|v| serde_json::from_value(v.0).ok());
        let c = match kept {
            Some(c) => c,
            None => counts(db, r.id).await?,
        };
        out.push(to_model(r, c, ctx));
    }
    Ok(out)
}

fn to_model(r: Row, c: Counts, ctx: &OrgCtx) -> Execution {
    Execution {
        id: r.id,
        batch_id: r.batch_id,
        batch_name: r.batch_name,
        project_id: r.project_id,
        project_name: r.project_name,
        org_slug: r.org_slug,
        mode: r.mode,
        sample_size: r.sample_size,
        instruction_version: r.instruction_version,
        agent: r.agent,
        concurrency: r.concurrency,
        max_retries: r.max_retries,
        state: r.state,
        estimated_cost_micros: c.total * r.price_per_job_micros,
        total: c.total,
        queued: c.queued,
        running: c.running,
        completed: c.succeeded,
        errors: c.failed,
        cancelled: c.cancelled,
        passed: c.passed_jobs,
        failed: c.failing_jobs,
        accuracy: c.accuracy,
        cost_micros: c.cost_micros,
        rerun_of: r.rerun_of,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        role: ctx.role,
    }
}

pub(crate) async fn execution_ctx(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<(OrgCtx, Execution), AppError> {
    let org_id: Uuid = sqlx::query_scalar("select org_id from executions where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    let row: Row = sqlx::query_as(&format!("{SELECT} where e.org_id = $1 and e.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
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
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where e.org_id = $1 and e.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let ctx = OrgCtx {
        org_id,
        actor: Actor::User { id: Uuid::nil() },
        role: None,
    };
    Ok(Some(to_models(db, vec![row], &ctx).await?.remove(0)))
}

/// The checks of reading an execution (401, or 404 across tenants) and
/// its batch, without counting its jobs: for callers on a hot path (the
/// job list) that need only where it is.
pub(crate) async fn batch_of(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Uuid, AppError> {
    let found: Option<(Uuid, Uuid)> =
        sqlx::query_as("select org_id, batch_id from executions where id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    let (org_id, batch_id) = found.ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    Ok(batch_id)
}

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
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} where e.org_id = $1 and e.project_id = $2
         order by e.state in ('queued', 'running', 'paused', 'stopping') desc, e.created_at desc
         limit 10"
    ))
    .bind(ctx.org_id)
    .bind(project_id)
    .fetch_all(db)
    .await?;
    Ok(Page {
        items: to_models(db, rows, &ctx).await?,
        next_cursor: None,
    })
}

pub async fn list_for_batch(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
) -> Result<Page<Execution>, AppError> {
    let (ctx, _) = batch_ctx(db, actor, batch_id).await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} where e.org_id = $1 and e.batch_id = $2 order by e.created_at desc limit 100"
    ))
    .bind(ctx.org_id)
    .bind(batch_id)
    .fetch_all(db)
    .await?;
    Ok(Page {
        items: to_models(db, rows, &ctx).await?,
        next_cursor: None,
    })
}

pub async fn start(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    req: StartRequest,
) -> Result<Execution, AppError> {
    let (ctx, batch) = batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::RunExecution)?;
    let project = db::projects::fetch_one(db, ctx.org_id, batch.project_id)
        .await?
        .ok_or_else(not_found)?;
    let mode = match req.mode.as_str() {
        "test" | "production" => Ok(req.mode.clone()),
        _ => Err(AppError::field(
            "mode",
            "Choose test (a sample) or production (every row).",
        )),
    };
    let sample_size = match (req.mode.as_str(), req.sample_size) {
        ("test", None) => Ok(Some(20.min(batch.row_count.max(1)))),
        ("test", Some(n)) if (1..=1000).contains(&n) => Ok(Some(n)),
        ("test", Some(_)) => Err(AppError::field(
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
        None => Ok(project.agent().kind),
        Some(a) => {
            AgentKind::parse(a).ok_or_else(|| AppError::field("agent", "Use http or remote."))
        }
    }
    .and_then(|kind| match (kind, &project.remote_url) {
        (AgentKind::Remote, None) => Err(AppError::field(
            "agent",
            "The remote agent needs its URL: set it in the project's agent settings.",
        )),
        _ => Ok(kind),
    });
    let concurrency = match req.concurrency {
        None => Ok(10),
        Some(c) if (1..=MAX_CONCURRENCY).contains(&c) => Ok(c),
        Some(_) => Err(AppError::field(
            "concurrency",
            format!("Use a concurrency from 1 to {MAX_CONCURRENCY}."),
        )),
    };
    let max_retries = match req.max_retries {
        None => Ok(project.max_retries),
        Some(r) if (0..=10).contains(&r) => Ok(r),
        Some(_) => Err(AppError::field("max_retries", "Use 0 to 10 retries.")),
    };
    let version = req
        .instruction_version
        .unwrap_or(project.production_version);
    let version_ok = if db::projects::fetch_version(db, ctx.org_id, project.id, Some(version))
        .await?
        .is_some()
    {
        Ok(())
    } else {
        Err(AppError::field(
            "instruction_version",
            format!("This project has no instruction version {version}."),
        ))
    };
    collect_fields([
        unit(&mode),
        unit(&sample_size),
        unit(&random),
        unit(&agent),
        unit(&concurrency),
        unit(&max_retries),
        version_ok,
    ])?;
    if batch.row_count == 0 {
        return Err(AppError::Conflict("This batch has no rows to run.".into()));
    }

    let mut tx = db.begin().await?;
    check_monthly_quota(&mut tx, ctx.org_id).await?;
    let mode = mode?;
    let sample_size = sample_size?;
    let fields = db::projects::fetch_fields(&mut *tx, ctx.org_id, project.id).await?;
    let agent = agent?;
    let id = db::jobs::insert_execution(
        &mut tx,
        &NewExecution {
            org_id: ctx.org_id,
            project_id: project.id,
            batch_id,
            instruction_version: version,
            mode: &mode,
            sample_size,
            agent: agent.as_str(),
            concurrency: concurrency?,
            max_retries: max_retries?,
            timeout_secs: project.timeout_secs,
            price_per_job_micros: project.price_per_job_micros,
            state: "running",
            created_by: ctx.actor.user_id(),
            fields: &fields,
            remote_url: match agent {
                AgentKind::Remote => project.remote_url.as_deref(),
                AgentKind::Http => None,
            },
            rerun_of: None,
        },
    )
    .await?;
    let sample = match (sample_size, random?) {
        (None, _) => Sample::All,
        (Some(n), false) => Sample::First(n as i64),
        (Some(n), true) => Sample::Random(n as i64),
    };
    db::jobs::enqueue_rows(&mut tx, id, ctx.org_id, batch.seq, sample).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("execution.start", "execution", id).after(json!({
            "batch_id": batch_id, "mode": mode, "sample_size": sample_size,
            "instruction_version": version, "agent": agent.as_str(),
        })),
    )
    .await?;
    live::notify(&mut *tx, live::WORK, "").await?;
    tx.commit().await?;
    get(db, actor, id).await
}

/// Refuses a new execution past the organization's monthly quota. Locks
/// the organization's row so two starts can't both take the last one.
async fn check_monthly_quota(tx: &mut sqlx::PgConnection, org_id: Uuid) -> Result<(), AppError> {
    let limit: i32 = sqlx::query_scalar(
        "select max_executions_per_month from organizations where id = $1 for update",
    )
    .bind(org_id)
    .fetch_one(&mut *tx)
    .await?;
    let this_month: i64 = sqlx::query_scalar(
        "select count(*) from executions where org_id = $1 and created_at >= date_trunc('month', now())",
    )
    .bind(org_id)
    .fetch_one(&mut *tx)
    .await?;
    if this_month >= limit as i64 {
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
/// rows, with the same instruction version, agent, concurrency and retry
/// limit, and the project's current fields and agent settings (a rerun
/// usually follows a fix: a longer timeout, a better field rule).
pub async fn rerun(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    req: RerunRequest,
) -> Result<Execution, AppError> {
    let (ctx, e) = execution_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    let states: &[&str] = match (req.jobs.as_deref(), &req.job_ids) {
        (Some(_), Some(_)) => {
            return Err(AppError::field(
                "jobs",
                "Give either jobs (failed, unfinished, all) or job_ids, not both.",
            ))
        }
        (None, None) | (Some("failed"), None) => &["failed"],
        (Some("unfinished"), None) => &["failed", "cancelled"],
        (Some("all"), None) => &["queued", "running", "succeeded", "failed", "cancelled"],
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
        Some(c) if (1..=MAX_CONCURRENCY).contains(&c) => c,
        Some(_) => {
            return Err(AppError::field(
                "concurrency",
                format!("Use a concurrency from 1 to {MAX_CONCURRENCY}."),
            ))
        }
    };
    let rows: Vec<i32> = match &req.job_ids {
        Some(ids) => {
            let found: Vec<(i64, i32)> = sqlx::query_as(
                "select id, row_index from jobs where execution_id = $1 and id = any($2)",
            )
            .bind(id)
            .bind(ids)
            .fetch_all(db)
            .await?;
            let known: std::collections::HashSet<i64> = found.iter().map(|(i, _)| *i).collect();
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
            found.into_iter().map(|(_, r)| r).collect()
        }
        None => sqlx::query_scalar(
            "select row_index from jobs where execution_id = $1 and state = any($2) order by row_index",
        )
        .bind(id)
        .bind(states)
        .fetch_all(db)
        .await?,
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
    let project = db::projects::fetch_one(db, ctx.org_id, e.project_id)
        .await?
        .ok_or_else(not_found)?;
    let agent = AgentKind::parse(&e.agent).unwrap_or(AgentKind::Http);
    if agent == AgentKind::Remote && project.remote_url.is_none() {
        return Err(AppError::Conflict(
            "The project's remote agent has no URL any more; set one in its agent settings.".into(),
        ));
    }
    let mut tx = db.begin().await?;
    check_monthly_quota(&mut tx, ctx.org_id).await?;
    let fields = db::projects::fetch_fields(&mut *tx, ctx.org_id, project.id).await?;
    let new_id = db::jobs::insert_execution(
        &mut tx,
        &NewExecution {
            org_id: ctx.org_id,
            project_id: project.id,
            batch_id: e.batch_id,
            instruction_version: e.instruction_version,
            mode: &e.mode,
            sample_size: Some(rows.len() as i32),
            agent: agent.as_str(),
            concurrency,
            max_retries: e.max_retries,
            timeout_secs: project.timeout_secs,
            price_per_job_micros: project.price_per_job_micros,
            state: "running",
            created_by: ctx.actor.user_id(),
            fields: &fields,
            remote_url: match agent {
                AgentKind::Remote => project.remote_url.as_deref(),
                AgentKind::Http => None,
            },
            rerun_of: Some(id),
        },
    )
    .await?;
    sqlx::query(
        "insert into jobs (execution_id, org_id, row_index)
         select $1, $2, r from unnest($3::int[]) r order by r",
    )
    .bind(new_id)
    .bind(ctx.org_id)
    .bind(&rows)
    .execute(&mut *tx)
    .await?;
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

/// pause | resume | stop.
pub async fn control(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    action: &str,
) -> Result<Execution, AppError> {
    let (ctx, e) = execution_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    let (from, to): (&[&str], &str) = match action {
        "pause" => (&["running", "queued"], "paused"),
        "resume" => (&["paused"], "running"),
        "stop" => (&["running", "queued", "paused"], "stopping"),
        _ => return Err(AppError::field("action", "Use pause, resume or stop.")),
    };
    if !from.contains(&e.state.as_str()) {
        return Err(AppError::Conflict(format!(
            "The execution is {}; it can't {action}.",
            e.state
        )));
    }
    let mut tx = db.begin().await?;
    sqlx::query("update executions set state = $2 where id = $1")
        .bind(id)
        .bind(to)
        .execute(&mut *tx)
        .await?;
    if action == "stop" {
        sqlx::query("update jobs set state = 'cancelled', finished_at = now() where execution_id = $1 and state = 'queued'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let who = super::projects::actor_name(db, &ctx).await?;
    let (kind, message) = match action {
        "pause" => (
            "paused",
            format!("{who} paused the run; running jobs finish, no new ones start."),
        ),
        "resume" => ("resumed", format!("{who} resumed the run.")),
        _ => (
            "stopped",
            format!("{who} stopped the run; queued jobs were cancelled."),
        ),
    };
    record_event(&mut tx, id, kind, &message, &who).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new(&format!("execution.{action}"), "execution", id)
            .before(json!({"state": e.state}))
            .after(json!({"state": to})),
    )
    .await?;
    // Delivered at commit: running jobs of a stopped execution end, idle
    // workers wake for a resumed one, viewers refresh.
    live::notify_state(&mut *tx, id, to).await?;
    live::notify(&mut *tx, live::EXECUTION, &id.to_string()).await?;
    if action == "resume" {
        live::notify(&mut *tx, live::WORK, "").await?;
    }
    tx.commit().await?;
    // Ends it at once when nothing runs (a stop with no running job);
    // settling tells every process.
    db::jobs::settle(db, id).await?;
    get(db, actor, id).await
}

pub async fn set_concurrency(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    concurrency: i32,
) -> Result<Execution, AppError> {
    let (ctx, e) = execution_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(AppError::field(
            "concurrency",
            format!("Use a concurrency from 1 to {MAX_CONCURRENCY}."),
        ));
    }
    if !e.is_active() {
        return Err(AppError::Conflict(format!("The execution is {}.", e.state)));
    }
    let who = super::projects::actor_name(db, &ctx).await?;
    let mut tx = db.begin().await?;
    sqlx::query("update executions set concurrency = $2 where id = $1")
        .bind(id)
        .bind(concurrency)
        .execute(&mut *tx)
        .await?;
    if concurrency != e.concurrency {
        let message = format!(
            "{who} changed concurrency from {} to {concurrency}.",
            e.concurrency
        );
        record_event(&mut tx, id, "concurrency", &message, &who).await?;
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

async fn record_event(
    tx: &mut sqlx::PgConnection,
    execution_id: Uuid,
    kind: &str,
    message: &str,
    actor_name: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "insert into execution_events (execution_id, kind, message, actor_name)
         values ($1, $2, $3, $4)",
    )
    .bind(execution_id)
    .bind(kind)
    .bind(message)
    .bind(actor_name)
    .execute(&mut *tx)
    .await?;
    Ok(())
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
    let parts = metric_parts(db, id).await?;
    Ok(crate::model::ExecutionMetrics {
        execution_id: id,
        accuracy: e.accuracy,
        verdicts: parts.verdicts,
        fields: parts.fields,
        errors_by_class: parts.errors_by_class,
        cost_micros: e.cost_micros,
        duration_secs: e
            .started_at
            .map(|s| (e.finished_at.unwrap_or_else(chrono::Utc::now) - s).num_seconds()),
    })
}

/// The parts of an execution's metrics that scan its jobs.
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct MetricParts {
    pub verdicts: std::collections::BTreeMap<String, i64>,
    pub fields: Vec<crate::model::FieldAccuracy>,
    pub errors_by_class: std::collections::BTreeMap<String, i64>,
}

/// Verdict counts, accuracy per field and errors by class: kept while the
/// execution is finished and unchanged.
pub(crate) async fn metric_parts(db: &PgPool, id: Uuid) -> Result<MetricParts, AppError> {
    super::summaries::memo(db, id, "metrics", || async move {
        let verdicts: Vec<(String, i64)> = sqlx::query_as(
            "select verdict, count(*) from jobs
             where execution_id = $1 and verdict is not null group by verdict",
        )
        .bind(id)
        .fetch_all(db)
        .await?;
        let fields: Vec<(String, i64, i64)> = sqlx::query_as(
            "select f.key, count(*), count(*) filter (where (f.value->>'pass')::boolean)
             from jobs j cross join lateral json_each(j.field_results) f
             where j.execution_id = $1 and j.field_results is not null
             group by f.key order by f.key",
        )
        .bind(id)
        .fetch_all(db)
        .await?;
        let errors: Vec<(String, i64)> = sqlx::query_as(
            "select coalesce(error_class, 'unknown'), count(*) from jobs
             where execution_id = $1 and state = 'failed' group by 1",
        )
        .bind(id)
        .fetch_all(db)
        .await?;
        Ok(MetricParts {
            verdicts: verdicts.into_iter().collect(),
            fields: fields
                .into_iter()
                .map(|(field, compared, passed)| crate::model::FieldAccuracy {
                    accuracy: if compared > 0 {
                        passed as f64 / compared as f64
                    } else {
                        0.0
                    },
                    field,
                    compared,
                    passed,
                })
                .collect(),
            errors_by_class: errors.into_iter().collect(),
        })
    })
    .await
}

/// at, kind, message, job, actor
type EventRow = (
    chrono::DateTime<chrono::Utc>,
    String,
    String,
    Option<i64>,
    Option<String>,
);

/// A live view's first snapshot for `actor` (their role set, no rate yet).
pub async fn live_snapshot(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<crate::model::LiveSnapshot, AppError> {
    let e = get(db, actor, id).await?;
    let (mut execution, running_jobs, events) = live_parts(db, id).await?.ok_or_else(not_found)?;
    execution.role = e.role;
    Ok(crate::model::LiveSnapshot {
        seq: 0,
        last: !execution.is_active(),
        execution,
        per_minute: 0.0,
        eta_secs: None,
        running_jobs,
        events,
    })
}

/// What a live view shows, without the caller's checks (the stream checked
/// them when it opened) or the rate (the watcher computes it): the
/// execution with its counts, its running jobs and its latest events.
pub async fn live_parts(
    db: &PgPool,
    id: Uuid,
) -> Result<Option<(Execution, Vec<RunningJob>, Vec<ExecutionEvent>)>, AppError> {
    let Some(row) = sqlx::query_as::<_, Row>(&format!("{SELECT} where e.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
    else {
        return Ok(None);
    };
    let mut e = to_models(
        db,
        vec![row],
        &OrgCtx {
            org_id: Uuid::nil(),
            actor: Actor::User { id: Uuid::nil() },
            role: None,
        },
    )
    .await?
    .remove(0);
    e.role = None;
    #[derive(sqlx::FromRow)]
    struct JobRow {
        id: i64,
        row_index: i32,
        site_url: String,
        attempt: i32,
        started_at: Option<chrono::DateTime<chrono::Utc>>,
        progress: Option<sqlx::types::Json<serde_json::Value>>,
    }
    let jobs: Vec<JobRow> = sqlx::query_as(
        "select j.id, j.row_index, r.site_url, j.attempt,
                (select a.started_at from attempts a where a.job_id = j.id and a.n = j.attempt)
                    as started_at,
                j.progress
         from jobs j
         join batch_rows r on r.batch_seq = (select b.seq from batches b where b.id = $2)
                          and r.row_index = j.row_index
         where j.execution_id = $1 and j.state = 'running'
         order by j.id limit 50",
    )
    .bind(id)
    .bind(e.batch_id)
    .fetch_all(db)
    .await?;
    let running = jobs
        .into_iter()
        .map(|j| {
            let p = j.progress.map(|p| p.0).unwrap_or_default();
            RunningJob {
                id: j.id,
                row_index: j.row_index,
                url: j.site_url,
                attempt: j.attempt,
                started_at: j.started_at.unwrap_or_else(chrono::Utc::now),
                step: p.get("step").and_then(|s| s.as_str()).map(str::to_string),
                percent: p
                    .get("percent")
                    .and_then(|s| s.as_u64())
                    .map(|n| n.min(100) as u8),
            }
        })
        .collect();
    let events: Vec<EventRow> = sqlx::query_as(
        "select at, kind, message, job_id, actor_name from execution_events
             where execution_id = $1 order by id desc limit 12",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    let events = events
        .into_iter()
        .map(|(at, kind, message, job_id, actor_name)| ExecutionEvent {
            at,
            kind,
            message,
            job_id,
            actor_name,
        })
        .collect();
    Ok(Some((e, running, events)))
}

fn unit<T>(r: &Result<T, AppError>) -> Result<(), AppError> {
    r.as_ref().map(|_| ()).map_err(Clone::clone)
}
