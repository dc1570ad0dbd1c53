//! Executions: start one over a batch (a test sample or every row), read
//! it with its counts, list a batch's, and steer it: pause (no new jobs
//! start; running ones finish), resume, stop (queued jobs are cancelled and
//! running ones stop within a second), change concurrency (new claims obey
//! it at once; running jobs are not preempted).

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::batches::batch_ctx;
use super::collect_fields;
use crate::error::AppError;
use crate::model::{AgentKind, Execution, Page};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;
use crate::server::db::jobs::{NewExecution, Sample};

pub const MAX_CONCURRENCY: i32 = 50;

fn not_found() -> AppError {
    AppError::NotFound("Execution".into())
}

/// What starting an execution takes (SPEC's body).
#[derive(Debug, Clone, Default, Deserialize)]
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
    created_at: chrono::DateTime<chrono::Utc>,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    total: i64,
    queued: i64,
    running: i64,
    succeeded: i64,
    failed: i64,
    cancelled: i64,
    cost_micros: i64,
}

const SELECT: &str = "select e.id, e.batch_id, b.name as batch_name, e.project_id,
        p.name as project_name, o.slug as org_slug, e.mode, e.sample_size,
        e.instruction_version, e.agent, e.concurrency, e.max_retries, e.state,
        e.price_per_job_micros, e.created_at, e.started_at, e.finished_at,
        c.total, c.queued, c.running, c.succeeded, c.failed, c.cancelled,
        coalesce((select sum(a.cost_micros) from attempts a join jobs j on j.id = a.job_id
                  where j.execution_id = e.id), 0)::bigint as cost_micros
    from executions e
    join batches b on b.id = e.batch_id
    join projects p on p.id = e.project_id
    join organizations o on o.id = e.org_id
    cross join lateral (
        select count(*) as total,
               count(*) filter (where state = 'queued') as queued,
               count(*) filter (where state = 'running') as running,
               count(*) filter (where state = 'succeeded') as succeeded,
               count(*) filter (where state = 'failed') as failed,
               count(*) filter (where state = 'cancelled') as cancelled
        from jobs where execution_id = e.id) c";

fn to_model(r: Row, ctx: &OrgCtx) -> Execution {
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
        estimated_cost_micros: r.total * r.price_per_job_micros,
        total: r.total,
        queued: r.queued,
        running: r.running,
        completed: r.succeeded,
        errors: r.failed,
        cancelled: r.cancelled,
        passed: 0,
        failed: 0,
        cost_micros: r.cost_micros,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        role: ctx.role,
    }
}

async fn execution_ctx(
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
    let e = to_model(row, &ctx);
    Ok((ctx, e))
}

pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Execution, AppError> {
    Ok(execution_ctx(db, actor, id).await?.1)
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
        items: rows.into_iter().map(|r| to_model(r, &ctx)).collect(),
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
    };
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
    let limit: i32 = sqlx::query_scalar(
        "select max_executions_per_month from organizations where id = $1 for update",
    )
    .bind(ctx.org_id)
    .fetch_one(&mut *tx)
    .await?;
    let this_month: i64 = sqlx::query_scalar(
        "select count(*) from executions where org_id = $1 and created_at >= date_trunc('month', now())",
    )
    .bind(ctx.org_id)
    .fetch_one(&mut *tx)
    .await?;
    if this_month >= limit as i64 {
        return Err(AppError::QuotaExceeded(format!(
            "This organization has used its {limit} executions for this month. An owner can raise the limit."
        )));
    }
    let mode = mode?;
    let sample_size = sample_size?;
    let id = db::jobs::insert_execution(
        &mut tx,
        &NewExecution {
            org_id: ctx.org_id,
            project_id: project.id,
            batch_id,
            instruction_version: version,
            mode: &mode,
            sample_size,
            agent: agent?.as_str(),
            concurrency: concurrency?,
            max_retries: max_retries?,
            timeout_secs: project.timeout_secs,
            price_per_job_micros: project.price_per_job_micros,
            state: "running",
            created_by: ctx.actor.user_id(),
        },
    )
    .await?;
    let sample = match (sample_size, random?) {
        (None, _) => Sample::All,
        (Some(n), false) => Sample::First(n as i64),
        (Some(n), true) => Sample::Random(n as i64),
    };
    db::jobs::enqueue_rows(&mut tx, id, ctx.org_id, batch.seq, sample).await?;
    tx.commit().await?;
    get(db, actor, id).await
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
    tx.commit().await?;
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
    sqlx::query("update executions set concurrency = $2 where id = $1")
        .bind(id)
        .bind(concurrency)
        .execute(db)
        .await?;
    get(db, actor, id).await
}

fn unit<T>(r: &Result<T, AppError>) -> Result<(), AppError> {
    r.as_ref().map(|_| ()).map_err(Clone::clone)
}
