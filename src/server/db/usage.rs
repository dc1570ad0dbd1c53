//! usage (`usage_now`: the `usage_daily` rollup plus the deltas the
//! triggers on attempts appended and the compactor has not folded yet),
//! org_budgets and
//! budget_alerts.

use chrono::NaiveDate;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{ExecutionMode, UsageFigures, UsageGroup};

/// One group's sums, with what it takes to name it.
#[derive(sqlx::FromRow)]
pub struct GroupRow {
    pub key: String,
    pub project_name: Option<String>,
    pub mode: Option<ExecutionMode>,
    pub instruction_version: Option<i32>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub rerun: Option<bool>,
    pub jobs: i64,
    pub attempts: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

impl GroupRow {
    pub fn figures(&self) -> UsageFigures {
        UsageFigures {
            jobs: self.jobs,
            attempts: self.attempts,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_micros: self.cost_micros,
        }
    }
}

/// The organization's usage from `from` to `to` (days, inclusive) by
/// `group`. Rows are grouped by their own columns first (no per-row
/// formatting), and only the project and run groupings join for names —
/// of projects and executions that still exist.
pub async fn grouped(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    group: UsageGroup,
) -> sqlx::Result<Vec<GroupRow>> {
    const SUMS: &str = "sum(u.jobs)::bigint as jobs, sum(u.attempts)::bigint as attempts,
        sum(u.input_tokens)::bigint as input_tokens,
        sum(u.output_tokens)::bigint as output_tokens,
        sum(u.cost_micros)::bigint as cost_micros";
    const WHERE: &str = "from usage_now u where u.org_id = $1 and u.day between $2 and $3";
    const NO_NAMES: &str = "null::text as project_name, null::text as mode,
        null::int as instruction_version, null::timestamptz as created_at, null::bool as rerun";
    const BY_COST: &str = "order by cost_micros desc, attempts desc, key";
    let sql = match group {
        UsageGroup::Day => format!(
            "select g.day::text as key, {NO_NAMES}, g.jobs, g.attempts, g.input_tokens,
                    g.output_tokens, g.cost_micros
             from (select u.day, {SUMS} {WHERE} group by u.day) g order by g.day"
        ),
        UsageGroup::Month => format!(
            "select to_char(g.month, 'YYYY-MM') as key, {NO_NAMES}, g.jobs, g.attempts,
                    g.input_tokens, g.output_tokens, g.cost_micros
             from (select date_trunc('month', u.day) as month, {SUMS} {WHERE} group by 1) g
             order by g.month"
        ),
        UsageGroup::Project => format!(
            "select g.project_id::text as key, p.name as project_name, null::text as mode,
                    null::int as instruction_version, null::timestamptz as created_at,
                    null::bool as rerun, g.jobs, g.attempts, g.input_tokens, g.output_tokens,
                    g.cost_micros
             from (select u.project_id, {SUMS} {WHERE} group by u.project_id) g
             left join projects p on p.id = g.project_id and p.org_id = $1
             {BY_COST}"
        ),
        UsageGroup::Execution => format!(
            "select g.execution_id::text as key, p.name as project_name, x.mode,
                    x.instruction_version, x.created_at, x.rerun_of is not null as rerun,
                    g.jobs, g.attempts, g.input_tokens, g.output_tokens, g.cost_micros
             from (select u.execution_id, {SUMS} {WHERE} group by u.execution_id) g
             left join executions x on x.id = g.execution_id and x.org_id = $1
             left join projects p on p.id = x.project_id
             {BY_COST}"
        ),
        UsageGroup::Agent => format!(
            "select g.agent || ' · ' || g.extractor as key, {NO_NAMES}, g.jobs, g.attempts,
                    g.input_tokens, g.output_tokens, g.cost_micros
             from (select u.agent, u.extractor, {SUMS} {WHERE} group by 1, 2) g
             {BY_COST}"
        ),
        UsageGroup::Model => format!(
            "select g.model as key, {NO_NAMES}, g.jobs, g.attempts, g.input_tokens,
                    g.output_tokens, g.cost_micros
             from (select u.model, {SUMS} {WHERE} group by 1) g
             {BY_COST}"
        ),
    };
    sqlx::query_as(&sql)
        .bind(org_id)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await
}

/// Cost per day from `from` to `to`, days without any left out.
pub async fn cost_by_day(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<(NaiveDate, i64)>> {
    sqlx::query_as(
        "select day, sum(cost_micros)::bigint from usage_now
         where org_id = $1 and day between $2 and $3 group by day order by day",
    )
    .bind(org_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Cost since `from` (the month's first day).
pub async fn cost_since(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    from: NaiveDate,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce(sum(cost_micros), 0)::bigint from usage_now
         where org_id = $1 and day >= $2",
    )
    .bind(org_id)
    .bind(from)
    .fetch_one(db)
    .await
}

/// Executions created since `from` and projects now.
pub async fn counts(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    from: NaiveDate,
) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "select (select count(*) from executions
                 where org_id = $1 and created_at >= $2::date::timestamp at time zone 'UTC'),
                (select count(*) from projects where org_id = $1)",
    )
    .bind(org_id)
    .bind(from)
    .fetch_one(db)
    .await
}

#[derive(sqlx::FromRow, Clone, Copy)]
pub struct BudgetRow {
    pub monthly_micros: i64,
    pub hard_stop: bool,
}

pub async fn budget(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Option<BudgetRow>> {
    sqlx::query_as("select monthly_micros, hard_stop from org_budgets where org_id = $1")
        .bind(org_id)
        .fetch_optional(db)
        .await
}

/// The budget, locked until the transaction ends: checks of one
/// organization take turns.
pub async fn budget_locked(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
) -> sqlx::Result<Option<BudgetRow>> {
    sqlx::query_as("select monthly_micros, hard_stop from org_budgets where org_id = $1 for update")
        .bind(org_id)
        .fetch_optional(db)
        .await
}

pub async fn set_budget(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    budget: Option<BudgetRow>,
) -> sqlx::Result<()> {
    match budget {
        None => {
            sqlx::query("delete from org_budgets where org_id = $1")
                .bind(org_id)
                .execute(db)
                .await?;
        }
        Some(b) => {
            sqlx::query(
                "insert into org_budgets (org_id, monthly_micros, hard_stop) values ($1, $2, $3)
                 on conflict (org_id) do update
                     set monthly_micros = $2, hard_stop = $3, updated_at = now()",
            )
            .bind(org_id)
            .bind(b.monthly_micros)
            .bind(b.hard_stop)
            .execute(db)
            .await?;
        }
    }
    Ok(())
}

/// Thresholds alerted in the month starting `month`.
pub async fn reached(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    month: NaiveDate,
) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar(
        "select threshold from budget_alerts where org_id = $1 and month = $2 order by threshold",
    )
    .bind(org_id)
    .bind(month)
    .fetch_all(db)
    .await
}

/// Records that `threshold` was reached; false when it already was this
/// month (someone else alerted).
pub async fn record_alert(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    month: NaiveDate,
    threshold: i32,
    spent: i64,
    budget: i64,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "insert into budget_alerts (org_id, month, threshold, spent_micros, budget_micros)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(org_id)
    .bind(month)
    .bind(threshold)
    .bind(spent)
    .bind(budget)
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Organizations with a budget, for the periodic check.
pub async fn budgeted_orgs(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar("select org_id from org_budgets")
        .fetch_all(db)
        .await
}

/// Pauses the organization's active executions for the budget; their ids.
pub async fn pause_for_budget(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "update executions set state = 'paused', paused_by_budget = true
         where org_id = $1 and state in ('running', 'queued') returning id",
    )
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// Resumes what the budget paused; their ids.
pub async fn resume_after_budget(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "update executions set state = 'running', paused_by_budget = false
         where org_id = $1 and state = 'paused' and paused_by_budget returning id",
    )
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// Folds the appended deltas into `usage_daily`, if no other process is
/// doing it right now: how many deltas were folded.
pub async fn compact(db: &sqlx::PgPool) -> sqlx::Result<i64> {
    let mut tx = db.begin().await?;
    // One compactor at a time (the key is arbitrary but fixed).
    let ours: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock(7310021)")
        .fetch_one(&mut *tx)
        .await?;
    if !ours {
        return Ok(0);
    }
    let n: i64 = sqlx::query_scalar("select usage_compact()")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n)
}
