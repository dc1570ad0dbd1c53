//! The first-run guide (F18): seven steps through the whole loop, each
//! ticked by the real event — the steps that change something by the
//! person's own entries in the audit log, the two that only read by the
//! pages recording that the person opened them.

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{Guide, GuideStep};
use crate::server::auth::rbac::OrgCtx;

/// A read-only step the pages record.
#[derive(Clone, Copy)]
pub enum Seen {
    /// A run's page, with its results.
    Results,
    /// Two runs compared.
    Comparison,
}

/// Records that `user` opened a run's results or a comparison in the
/// organization `org_slug` — called after the page's data was read, so
/// access is already checked (for API keys, `None`: nothing to record).
pub async fn record(
    db: &PgPool,
    user: Option<Uuid>,
    org_slug: &str,
    seen: Seen,
) -> Result<(), AppError> {
    let Some(user) = user else {
        return Ok(());
    };
    let column = match seen {
        Seen::Results => "read_results_at",
        Seen::Comparison => "compared_at",
    };
    // Written once: later views leave the row alone (no write per page view).
    sqlx::query(&format!(
        "insert into guide_progress (user_id, org_id, {column})
         select $1, id, now() from organizations where slug = $2
         on conflict (user_id, org_id) do update set {column} = now()
         where guide_progress.{column} is null"
    ))
    .bind(user)
    .bind(org_slug)
    .execute(db)
    .await?;
    Ok(())
}

/// Puts the guide away, or (with `false`) brings it back.
pub async fn set_dismissed(db: &PgPool, ctx: &OrgCtx, dismissed: bool) -> Result<Guide, AppError> {
    let user = ctx
        .actor()
        .user_id()
        .ok_or_else(|| AppError::forbidden("The guide belongs to people, not API keys."))?;
    sqlx::query(
        "insert into guide_progress (user_id, org_id, dismissed) values ($1, $2, $3)
         on conflict (user_id, org_id) do update set dismissed = $3",
    )
    .bind(user)
    .bind(ctx.org_id())
    .bind(dismissed)
    .execute(db)
    .await?;
    progress(db, ctx).await
}

#[derive(sqlx::FromRow, Default)]
struct Done {
    project: Option<bool>,
    batch: Option<bool>,
    test_run: Option<bool>,
    fixed_at: Option<i64>,
    last_run_at: Option<i64>,
    runs: Option<i64>,
}

/// Where the person is in the guide, with links to where each step
/// happens in this organization now.
pub async fn progress(db: &PgPool, ctx: &OrgCtx) -> Result<Guide, AppError> {
    let org = ctx.org_id();
    let user = ctx.actor().user_id().unwrap_or(Uuid::nil());
    // The organization-and-user index of the audit log serves this.
    let done: Done = sqlx::query_as(
        "select bool_or(action = 'project.create') as project,
                bool_or(action = 'batch.create') as batch,
                bool_or(action = 'execution.start' and after->>'mode' = 'test') as test_run,
                max(id) filter (where action = 'ground_truth.edit') as fixed_at,
                max(id) filter (where action in ('execution.start', 'execution.rerun'))
                    as last_run_at,
                count(*) filter (where action in ('execution.start', 'execution.rerun')) as runs
         from audit_log
         where org_id = $1 and actor_user_id = $2
           and action in ('project.create', 'batch.create', 'execution.start',
                          'execution.rerun', 'ground_truth.edit')",
    )
    .bind(org)
    .bind(user)
    .fetch_optional(db)
    .await?
    .unwrap_or_default();
    let seen: Option<(bool, bool, bool)> = sqlx::query_as(
        "select read_results_at is not null, compared_at is not null, dismissed
         from guide_progress where user_id = $1 and org_id = $2",
    )
    .bind(user)
    .bind(org)
    .fetch_optional(db)
    .await?;
    let (read, compared, dismissed) = seen.unwrap_or_default();

    // Links into what exists now: the latest project, batch and runs.
    let slug: String = sqlx::query_scalar("select slug from organizations where id = $1")
        .bind(org)
        .fetch_one(db)
        .await?;
    let base = format!("/o/{slug}");
    let project: Option<Uuid> = sqlx::query_scalar(
        "select id from projects where org_id = $1 order by created_at desc limit 1",
    )
    .bind(org)
    .fetch_optional(db)
    .await?;
    let batch: Option<Uuid> = sqlx::query_scalar(
        "select id from batches where org_id = $1 order by created_at desc limit 1",
    )
    .bind(org)
    .fetch_optional(db)
    .await?;
    let runs: Vec<Uuid> = match batch {
        None => vec![],
        Some(b) => {
            sqlx::query_scalar(
                "select id from executions where org_id = $1 and batch_id = $2
             order by created_at desc limit 2",
            )
            .bind(org)
            .bind(b)
            .fetch_all(db)
            .await?
        }
    };
    let projects = format!("{base}/projects");
    let project_page = project.map_or(projects.clone(), |p| format!("{base}/projects/{p}"));
    let batch_page = batch.map_or(project_page.clone(), |b| format!("{base}/batches/{b}"));
    let run_page = runs
        .first()
        .map_or(batch_page.clone(), |r| format!("{base}/executions/{r}"));
    let compare = match runs.as_slice() {
        [newer, older] => format!("{base}/compare?a={older}&b={newer}"),
        _ => batch_page.clone(),
    };
    let fixed = done.fixed_at.is_some();
    let step = |key: &str, title: &str, help: &str, href: String, done: bool| GuideStep {
        key: key.into(),
        title: title.into(),
        help: help.into(),
        href,
        done,
    };
    let steps = vec![
        step("project", "Create a project",
            "A project holds the instructions and the fields to extract; “Load the demo project” makes one with everything filled in.",
            format!("{projects}#demo"), done.project.unwrap_or(false)),
        step("batch", "Load a batch of sites",
            "A batch is a CSV of sites with the values you expect in gt_ columns (e.g. gt_price); the demo project comes with 200 products of the built-in shop.",
            project_page, done.batch.unwrap_or(false)),
        step("test_run", "Run a test",
            "A test run takes a sample of the batch (say 20 rows), so you see results in seconds before running everything.",
            format!("{batch_page}#run"), done.test_run.unwrap_or(false)),
        step("results", "Read the results",
            "The run page shows every row's values against the expected ones; the “With wrong fields” tab lists what to look at first.",
            run_page.clone(), read),
        step("fix", "Fix an expected value",
            "Some demo products carry a wrong expected price on purpose: open one under “With wrong fields” and correct the expected value.",
            format!("{run_page}?jobs=wrong#results"), fixed),
        step("rerun", "Run again",
            "Run the batch again after your fix (or rerun the failed jobs): the new run is judged against the corrected values.",
            format!("{batch_page}#run"),
            fixed && done.last_run_at > done.fixed_at && done.runs.unwrap_or(0) >= 2),
        step("compare", "Compare the two runs",
            "Compare shows what changed between two runs of a batch, on the rows both judged: fixed rows, new failures and each field's accuracy.",
            compare, compared),
    ];
    Ok(Guide { steps, dismissed })
}
