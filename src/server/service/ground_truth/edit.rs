//! One row's expected values edited in place, with optimistic concurrency
//! on its `gt_version` (a stale edit answers CONFLICT).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::PgPool;

use super::{
    as_text, check_field_name, check_value, json_text, not_found, plan, read_history, separators,
    store, BatchRef, Expected,
};
use crate::error::AppError;
use crate::model::{BatchRow, ExpectedValueSaved, RowGroundTruth};
use crate::server::auth::rbac::{require, Actor, Permission};
use crate::server::db;
use crate::server::service::audit;

/// `PATCH /rows/{id}/ground-truth`: the version the editor saw, and the
/// fields to set (a string, split at the field's separator when it has
/// one, or a list of acceptable values) or clear (null, "" or []), as
/// `values` or, in SPEC's words, `ground_truth`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthEdit {
    pub version: i32,
    #[serde(alias = "ground_truth")]
    pub values: BTreeMap<String, Option<Expected>>,
}

/// Sets (or, empty, clears) one expected value of a job's row, as the
/// results grid does, and answers with the job judged again and the run's
/// counts, metrics and failure patterns after the change.
pub async fn edit_from_job(
    db: &PgPool,
    actor: &Actor,
    job_id: i64,
    version: i32,
    field: String,
    value: String,
) -> Result<ExpectedValueSaved, AppError> {
    use crate::server::service::{analysis, executions, jobs};
    let before = jobs::summary(db, actor, job_id).await?;
    let values = [(field, Some(Expected::Text(value)))].into_iter().collect();
    edit(
        db,
        actor,
        before.row_id,
        GroundTruthEdit { version, values },
    )
    .await?;
    let job = jobs::summary(db, actor, job_id).await?;
    let execution = executions::get(db, actor, job.execution_id).await?;
    let metrics = executions::metrics_of(db, &execution).await?;
    let patterns = analysis::failure_patterns(db, actor, execution.id).await?;
    Ok(ExpectedValueSaved {
        job,
        execution,
        metrics,
        patterns,
    })
}

/// Sets or clears expected values of one row.
pub async fn edit(
    db: &PgPool,
    actor: &Actor,
    row_id: i64,
    edit: GroundTruthEdit,
) -> Result<RowGroundTruth, AppError> {
    let (seq, index, org, project, batch) = super::locate(db, row_id).await?;
    let ctx = crate::server::service::orgs::resource_ctx(db, actor, org, not_found).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    if edit.values.is_empty() {
        return Err(AppError::field(
            "values",
            "Give at least one field to set or clear.",
        ));
    }
    let fields = db::projects::fetch_fields(db, org, project).await?;
    for (name, value) in &edit.values {
        check_field_name(&fields, "values", name)?;
        if let Some(v) = value {
            check_value("values", name, v)?;
        }
    }
    let who = ctx.actor_name(db).await?.to_string();
    let batch = BatchRef {
        org,
        id: batch,
        seq,
    };

    let mut tx = db.begin().await?;
    let current = db::ground_truth::lock_row(&mut tx, seq, index)
        .await?
        .ok_or_else(not_found)?;
    let (Json(truth), version, line, site_url, Json(inputs)) = (
        current.ground_truth,
        current.gt_version,
        current.line,
        current.site_url,
        current.inputs,
    );
    if version != edit.version {
        return Err(AppError::Conflict(format!(
            "Someone changed this row's expected values since you loaded it (version {version}, yours {}); reload to see theirs.",
            edit.version
        )));
    }
    let planned = plan(
        index,
        site_url.clone(),
        truth.clone(),
        edit.values,
        &separators(&fields),
    );
    let (truth, new_version, reevaluated) = match planned {
        None => (truth, version, 0),
        Some(p) => {
            let judged = store(&mut tx, batch, &ctx, &who, std::slice::from_ref(&p)).await?;
            let (before, after): (Map<String, Value>, Map<String, Value>) = (
                p.changes
                    .iter()
                    .map(|(f, b, _)| (f.clone(), json_text(b)))
                    .collect(),
                p.changes
                    .iter()
                    .map(|(f, _, a)| (f.clone(), json_text(a)))
                    .collect(),
            );
            audit::record(
                &mut *tx,
                &ctx,
                audit::Change::new("ground_truth.edit", "row", row_id)
                    .before(Value::Object(before))
                    .after(Value::Object(after)),
            )
            .await?;
            (p.truth, version + 1, judged)
        }
    };
    tx.commit().await?;
    let to_map = |m: &Map<String, Value>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.clone(), as_text(v).unwrap_or_default()))
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
