//! Evaluation sets: named, versioned sets of a batch's rows that a team
//! runs every change against (a stable regression set). Rows are chosen by
//! hand (row numbers or row ids) or from a run's jobs matching a job-list
//! filter (its failures, say). A run started with `evaluation_set` runs
//! exactly those rows; `mino eval --set NAME` does so from CI.

use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::jobs::{check_filter, JobFilter};
use crate::error::AppError;
use crate::model::{EvaluationSet, ROW_ID_BASE};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;

/// The largest set (a regression set is run often; a whole batch is a
/// production run).
pub const MAX_ROWS: usize = 100_000;

/// How a set's rows are chosen: exactly one of `rows`, `row_ids` or
/// `execution_id` (with an optional job-list `filter`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSet {
    pub name: String,
    /// Row numbers, as the grid shows them (1, 2, …).
    pub rows: Option<Vec<i64>>,
    /// Row ids, as the API gives them (`/api/v1/rows/{id}`).
    pub row_ids: Option<Vec<i64>>,
    /// A run of this batch whose jobs matching `filter` give the rows.
    pub execution_id: Option<Uuid>,
    /// The job list's filter (status, evaluation, field, q, …); none: all.
    pub filter: Option<JobFilter>,
    /// The rows this experiment's variants disagree on (verdict or values).
    pub experiment_id: Option<Uuid>,
}

fn not_found() -> AppError {
    AppError::NotFound("Evaluation set".into())
}

async fn set_ctx(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<(OrgCtx, EvaluationSet), AppError> {
    let org_id = db::evaluation_sets::fetch_org_id(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewProjects)?;
    let set = db::evaluation_sets::fetch(db, org_id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok((ctx, set))
}

/// The latest version of each of the batch's sets.
pub async fn list(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
) -> Result<Vec<EvaluationSet>, AppError> {
    let (ctx, _) = super::batches::batch_ctx(db, actor, batch_id).await?;
    Ok(db::evaluation_sets::list_latest(db, ctx.org_id(), batch_id).await?)
}

/// One set (any version).
pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<EvaluationSet, AppError> {
    Ok(set_ctx(db, actor, id).await?.1)
}

/// The set named `name` in the batch, its latest version (for `mino eval
/// --set`, through the list).
pub fn latest_named<'a>(sets: &'a [EvaluationSet], name: &str) -> Option<&'a EvaluationSet> {
    sets.iter().find(|s| s.name == name)
}

/// Row numbers as people type them: "1-20, 35, 40" (ranges inclusive).
pub fn parse_row_list(text: &str) -> Result<Vec<i64>, AppError> {
    let mut rows = Vec::new();
    for part in text
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let bad = || {
            AppError::field(
                "rows",
                format!("{part:?} is not a row number or a range such as 1-20."),
            )
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let (a, b): (i64, i64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a < 1 || b < a {
            return Err(bad());
        }
        if (b - a) as usize + rows.len() > MAX_ROWS {
            return Err(AppError::field(
                "rows",
                format!("A set holds at most {MAX_ROWS} rows."),
            ));
        }
        rows.extend(a..=b);
    }
    if rows.is_empty() {
        return Err(AppError::field(
            "rows",
            "Give row numbers, such as 1-20, 35.",
        ));
    }
    Ok(rows)
}

/// Saves a set (a new name's first version, or an existing name's next).
pub async fn create(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    req: NewSet,
) -> Result<EvaluationSet, AppError> {
    let (ctx, batch) = super::batches::batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::RunExecution)?;
    let name = super::parse_name(&req.name, "name")?;
    let name = name.as_str();
    let row_count = batch.row_count as i64;
    let ways = [
        req.rows.is_some(),
        req.row_ids.is_some(),
        req.execution_id.is_some(),
        req.experiment_id.is_some(),
    ]
    .iter()
    .filter(|w| **w)
    .count();
    if ways != 1 {
        return Err(AppError::field(
            "rows",
            "Choose the rows one way: rows (row numbers), row_ids, execution_id with an optional filter, or experiment_id.",
        ));
    }
    if req.filter.is_some() && req.execution_id.is_none() {
        return Err(AppError::field(
            "filter",
            "A filter applies to execution_id's jobs.",
        ));
    }
    let (mut rows, source): (Vec<i32>, serde_json::Value) = if let Some(numbers) = &req.rows {
        let bad: Vec<String> = numbers
            .iter()
            .filter(|n| !(1..=row_count).contains(n))
            .take(5)
            .map(i64::to_string)
            .collect();
        if !bad.is_empty() {
            return Err(AppError::field(
                "rows",
                format!(
                    "This batch has rows 1 to {row_count}; not {}.",
                    bad.join(", ")
                ),
            ));
        }
        (
            numbers.iter().map(|n| *n as i32).collect(),
            json!({"rows": numbers.len()}),
        )
    } else if let Some(ids) = &req.row_ids {
        let of_batch = |id: i64| {
            let index = id - batch.seq * ROW_ID_BASE;
            (id / ROW_ID_BASE == batch.seq && (1..=row_count).contains(&index)).then_some(index)
        };
        let bad: Vec<String> = ids
            .iter()
            .filter(|id| of_batch(**id).is_none())
            .take(5)
            .map(i64::to_string)
            .collect();
        if !bad.is_empty() {
            return Err(AppError::field(
                "row_ids",
                format!("Not rows of this batch: {}.", bad.join(", ")),
            ));
        }
        (
            ids.iter()
                .filter_map(|id| of_batch(*id))
                .map(|i| i as i32)
                .collect(),
            json!({"rows": ids.len()}),
        )
    } else if let Some(experiment) = req.experiment_id {
        match db::experiments::fetch_one(db, ctx.org_id(), experiment).await? {
            Some(x) if x.batch_id == batch_id => {}
            _ => {
                return Err(AppError::field(
                    "experiment_id",
                    "Not an experiment over this batch.",
                ))
            }
        }
        (
            db::experiments::disagreeing_rows(db, experiment).await?,
            json!({"experiment_id": experiment, "rows": "disagreements"}),
        )
    } else {
        let execution_id = req.execution_id.unwrap_or_default();
        let e = db::executions::fetch_one(db, ctx.org_id(), execution_id).await?;
        if e.as_ref().is_none_or(|e| e.batch_id != batch_id) {
            return Err(AppError::field("execution_id", "Not a run of this batch."));
        }
        let filter = req.filter.clone().unwrap_or_default();
        let query = check_filter(&filter)?;
        let jobs = db::results::jobs(
            db,
            execution_id,
            batch_id,
            &query,
            None,
            MAX_ROWS as i64 + 1,
        )
        .await?;
        (
            jobs.iter().map(|j| j.row_index).collect(),
            json!({"execution_id": execution_id, "filter": filter}),
        )
    };
    rows.sort_unstable();
    rows.dedup();
    if rows.is_empty() {
        return Err(AppError::field(
            "rows",
            "No rows chosen: the set would be empty.",
        ));
    }
    if rows.len() > MAX_ROWS {
        return Err(AppError::field(
            "rows",
            format!("A set holds at most {MAX_ROWS} rows; run the whole batch instead."),
        ));
    }
    let author = ctx.actor_name(db).await?.to_string();
    let mut tx = db.begin().await?;
    sqlx::query("select 1 from batches where id = $1 for update")
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
    let set = db::evaluation_sets::insert(
        &mut *tx,
        ctx.org_id(),
        batch_id,
        name,
        &rows,
        &source,
        ctx.actor().user_id(),
        &author,
    )
    .await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("evaluation_set.create", "batch", batch_id).after(json!({
            "id": set.id, "name": set.name, "version": set.version, "rows": set.size,
            "source": set.source,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(set)
}

/// Deletes one version of a set.
pub async fn delete(db: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AppError> {
    let (ctx, set) = set_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    let mut tx = db.begin().await?;
    if !db::evaluation_sets::delete(&mut *tx, ctx.org_id(), id).await? {
        return Err(not_found());
    }
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("evaluation_set.delete", "batch", set.batch_id)
            .before(json!({"id": id, "name": set.name, "version": set.version})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The rows of set `id` for a run of `batch_id` (the caller checked the
/// batch): a field error when the set is of another batch or gone.
pub async fn rows_for_run(
    db: &PgPool,
    org_id: Uuid,
    batch_id: Uuid,
    id: Uuid,
) -> Result<Vec<i32>, AppError> {
    match db::evaluation_sets::fetch(db, org_id, id).await? {
        Some(s) if s.batch_id == batch_id => Ok(s.rows),
        _ => Err(AppError::field(
            "evaluation_set",
            "Not an evaluation set of this batch.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_lists_read_as_people_type_them() {
        assert_eq!(parse_row_list("1-3, 7\n9").unwrap(), vec![1, 2, 3, 7, 9]);
        for bad in ["", "0", "3-1", "a", "1-b", "-4"] {
            assert!(parse_row_list(bad).is_err(), "{bad}");
        }
    }
}
