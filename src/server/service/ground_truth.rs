//! Editing a row's expected values (F11): optimistic concurrency on the
//! row's `gt_version` (a stale edit answers CONFLICT with the current
//! values), every change recorded with who and when, the batch's coverage
//! kept current, and every finished job of the row judged again at once.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{BatchRow, GroundTruthChange, OutputField, RowGroundTruth, ROW_ID_BASE};
use crate::server::auth::rbac::{require, Actor, Permission};
use crate::server::{db, evaluate, live};

/// `PATCH /rows/{id}/ground-truth`: the version the editor saw, and the
/// fields to set (a string) or clear (null or "").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthEdit {
    pub version: i32,
    pub values: BTreeMap<String, Option<String>>,
}

/// field, before, after, who, when
type ChangeRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    chrono::DateTime<chrono::Utc>,
);
/// ground truth, version, file line, URL, inputs
type RowState = (
    Json<Map<String, Value>>,
    i32,
    i32,
    String,
    Json<Map<String, Value>>,
);
/// job, execution, extracted values, the execution's fields
type JobToJudge = (
    i64,
    Uuid,
    Option<Json<Map<String, Value>>>,
    Json<Vec<OutputField>>,
);

fn not_found() -> AppError {
    AppError::NotFound("Row".into())
}

/// The row's batch (org, project, batch id) from a row id.
async fn locate(db: &PgPool, row_id: i64) -> Result<(i64, i32, Uuid, Uuid, Uuid), AppError> {
    if row_id <= 0 {
        return Err(not_found());
    }
    let (seq, index) = (row_id / ROW_ID_BASE, (row_id % ROW_ID_BASE) as i32);
    let found: Option<(Uuid, Uuid, Uuid)> =
        sqlx::query_as("select org_id, project_id, id from batches where seq = $1")
            .bind(seq)
            .fetch_optional(db)
            .await?;
    let (org, project, batch) = found.ok_or_else(not_found)?;
    Ok((seq, index, org, project, batch))
}

pub async fn history(
    db: &PgPool,
    actor: &Actor,
    row_id: i64,
) -> Result<Vec<GroundTruthChange>, AppError> {
    let (seq, index, org, _, _) = locate(db, row_id).await?;
    let ctx = super::orgs::resource_ctx(db, actor, org, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    read_history(db, org, seq, index).await
}

async fn read_history(
    db: &PgPool,
    org: Uuid,
    seq: i64,
    index: i32,
) -> Result<Vec<GroundTruthChange>, AppError> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "select field, before, after, changed_by_name, changed_at from gt_changes
             where org_id = $1 and batch_seq = $2 and row_index = $3 order by id desc limit 100",
    )
    .bind(org)
    .bind(seq)
    .bind(index)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(field, before, after, changed_by, changed_at)| GroundTruthChange {
                field,
                before,
                after,
                changed_by,
                changed_at,
            },
        )
        .collect())
}

pub async fn edit(
    db: &PgPool,
    actor: &Actor,
    row_id: i64,
    edit: GroundTruthEdit,
) -> Result<RowGroundTruth, AppError> {
    let (seq, index, org, project, batch) = locate(db, row_id).await?;
    let ctx = super::orgs::resource_ctx(db, actor, org, not_found).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    if edit.values.is_empty() {
        return Err(AppError::field(
            "values",
            "Give at least one field to set or clear.",
        ));
    }
    let fields = db::projects::fetch_fields(db, org, project).await?;
    for (name, value) in &edit.values {
        if !fields.iter().any(|f| &f.name == name) {
            return Err(AppError::field(
                "values",
                format!("{name:?} is not an output field of this project."),
            ));
        }
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > 10_000 || v.contains('\0'))
        {
            return Err(AppError::field(
                "values",
                format!("The value for {name:?} is too long or not text."),
            ));
        }
    }
    let who = super::projects::actor_name(db, &ctx).await?;

    let mut tx = db.begin().await?;
    let current: Option<RowState> = sqlx::query_as(
        "select ground_truth, gt_version, line, site_url, inputs from batch_rows
         where batch_seq = $1 and row_index = $2 for update",
    )
    .bind(seq)
    .bind(index)
    .fetch_optional(&mut *tx)
    .await?;
    let (Json(mut truth), version, line, site_url, Json(inputs)) = current.ok_or_else(not_found)?;
    if version != edit.version {
        return Err(AppError::Conflict(format!(
            "Someone changed this row's expected values since you loaded it (version {version}, yours {}); reload to see theirs.",
            edit.version
        )));
    }
    let mut coverage: BTreeMap<String, i64> = BTreeMap::new();
    let mut changed = 0;
    for (name, value) in &edit.values {
        let after = value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let before = truth.get(name).and_then(|v| v.as_str()).map(str::to_string);
        if before == after {
            continue;
        }
        changed += 1;
        *coverage.entry(name.clone()).or_default() += match (&before, &after) {
            (None, Some(_)) => 1,
            (Some(_), None) => -1,
            _ => 0,
        };
        match &after {
            Some(v) => truth.insert(name.clone(), Value::String(v.clone())),
            None => truth.remove(name),
        };
        sqlx::query(
            "insert into gt_changes (org_id, batch_seq, row_index, field, before, after, changed_by, changed_by_name)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(org)
        .bind(seq)
        .bind(index)
        .bind(name)
        .bind(&before)
        .bind(&after)
        .bind(ctx.actor.user_id())
        .bind(&who)
        .execute(&mut *tx)
        .await?;
    }
    let new_version = if changed > 0 { version + 1 } else { version };
    let mut reevaluated = 0;
    if changed > 0 {
        sqlx::query("update batch_rows set ground_truth = $3, gt_version = $4 where batch_seq = $1 and row_index = $2")
            .bind(seq)
            .bind(index)
            .bind(Json(&truth))
            .bind(new_version)
            .execute(&mut *tx)
            .await?;
        for (field, delta) in coverage.iter().filter(|(_, d)| **d != 0) {
            sqlx::query(
                "update batches set gt_coverage = jsonb_set(gt_coverage, array[$2],
                        to_jsonb(greatest(0, coalesce((gt_coverage->>$2)::bigint, 0) + $3)))
                 where id = $1",
            )
            .bind(batch)
            .bind(field)
            .bind(delta)
            .execute(&mut *tx)
            .await?;
        }
        // Judge this row's finished jobs again, each with its execution's
        // fields.
        let jobs: Vec<JobToJudge> = sqlx::query_as(
            "select j.id, j.execution_id, j.extracted, e.fields from jobs j
             join executions e on e.id = j.execution_id
             where e.batch_id = $1 and j.row_index = $2 and j.state = 'succeeded'",
        )
        .bind(batch)
        .bind(index)
        .fetch_all(&mut *tx)
        .await?;
        let mut moved = Vec::new();
        for (id, execution, extracted, Json(fields)) in jobs {
            let extracted = extracted.map(|j| j.0).unwrap_or_default();
            let v = evaluate::evaluate_job(&fields, &extracted, &truth);
            sqlx::query(
                "update jobs set verdict = $2, field_results = $3, accuracy = $4 where id = $1",
            )
            .bind(id)
            .bind(v.verdict)
            .bind(Json(Value::Object(v.fields)))
            .bind(v.accuracy)
            .execute(&mut *tx)
            .await?;
            reevaluated += 1;
            if !moved.contains(&execution) {
                moved.push(execution);
            }
        }
        for execution in moved {
            live::notify(&mut *tx, live::EXECUTION, &execution.to_string()).await?;
        }
    }
    tx.commit().await?;
    let to_map = |m: &Map<String, Value>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect()
    };
    Ok(RowGroundTruth {
        row: BatchRow {
            id: row_id,
            row_index: index,
            line,
            site_url,
            inputs: to_map(&inputs),
            ground_truth: to_map(&truth),
            gt_version: new_version,
        },
        history: read_history(db, org, seq, index).await?,
        reevaluated_jobs: reevaluated,
    })
}
