//! Editing expected values (F11). One row at a time with optimistic
//! concurrency on the row's `gt_version` (a stale edit answers CONFLICT),
//! or many at once: bulk set (values keyed by row or URL, from JSON, a CSV
//! file or two pasted columns) and bulk edit (set, clear, find and replace,
//! accept the extracted values) over chosen rows or jobs, the jobs matching
//! a filter, or the whole batch, with a preview. Every change is recorded
//! with who and when, the batch's coverage is kept current, and every
//! finished job of a changed row is judged again in the same transaction.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::audit;
use crate::error::AppError;
use crate::model::{
    BatchRow, BulkGroundTruthResult, GroundTruthChange, GroundTruthSample, OutputField,
    RowGroundTruth, ROW_ID_BASE,
};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::{db, evaluate, live};

/// `PATCH /rows/{id}/ground-truth`: the version the editor saw, and the
/// fields to set (a string) or clear (null or ""), as `values` or, in
/// SPEC's words, `ground_truth`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthEdit {
    pub version: i32,
    #[serde(alias = "ground_truth")]
    pub values: BTreeMap<String, Option<String>>,
}

/// At most this many ids in one call (rows or jobs); a filter reaches any
/// number.
pub const MAX_IDS: usize = 1_000;
/// At most this many rows in one bulk set.
pub const MAX_SET_ROWS: usize = 100_000;
/// Samples returned with a bulk result.
const SAMPLES: usize = 20;
/// Longest expected value.
const MAX_VALUE_CHARS: usize = 10_000;

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

/// job, row index, extracted values
type JobValues = (i64, i32, Option<Json<Map<String, Value>>>);
/// row index, URL, expected values
type RowValues = (i32, String, Json<Map<String, Value>>);

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

pub(crate) async fn read_history(
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

/// A value as stored: trimmed, empty means none.
fn clean(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn check_value(field: &str, name: &str, value: &str) -> Result<(), AppError> {
    if value.chars().count() > MAX_VALUE_CHARS || value.contains('\0') {
        return Err(AppError::field(
            field,
            format!("The value for {name:?} is too long or not text (at most {MAX_VALUE_CHARS} characters)."),
        ));
    }
    Ok(())
}

fn check_field_name(fields: &[OutputField], field: &str, name: &str) -> Result<(), AppError> {
    if fields.iter().any(|f| f.name == name) {
        Ok(())
    } else {
        let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        Err(AppError::field(
            field,
            format!(
                "{name:?} is not an output field of this project (its fields: {}).",
                if known.is_empty() {
                    "none yet".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ))
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// One row's changes, worked out from its current expected values.
struct Planned {
    index: i32,
    url: String,
    truth: Map<String, Value>,
    /// field, before, after
    changes: Vec<(String, Option<String>, Option<String>)>,
}

/// Applies `wanted` (field → new value, None clears) to a row's current
/// expected values; None when nothing changes.
fn plan(
    index: i32,
    url: String,
    mut truth: Map<String, Value>,
    wanted: impl IntoIterator<Item = (String, Option<String>)>,
) -> Option<Planned> {
    let mut changes = Vec::new();
    for (name, value) in wanted {
        let after = clean(value.as_deref());
        let before = truth.get(&name).and_then(as_text);
        if before == after {
            continue;
        }
        match &after {
            Some(v) => truth.insert(name.clone(), Value::String(v.clone())),
            None => truth.remove(&name),
        };
        changes.push((name, before, after));
    }
    (!changes.is_empty()).then_some(Planned {
        index,
        url,
        truth,
        changes,
    })
}

/// Where a batch is: its org, seq and id.
#[derive(Clone, Copy)]
struct BatchRef {
    org: Uuid,
    id: Uuid,
    seq: i64,
}

/// Stores planned changes (rows, history, coverage) and judges the changed
/// rows' finished jobs again. Returns how many jobs were judged.
async fn store(
    tx: &mut Transaction<'_, Postgres>,
    batch: BatchRef,
    ctx: &OrgCtx,
    who: &str,
    planned: &[Planned],
) -> Result<i64, AppError> {
    let mut coverage: BTreeMap<&str, i64> = BTreeMap::new();
    for p in planned {
        for (name, before, after) in &p.changes {
            *coverage.entry(name.as_str()).or_default() += match (before, after) {
                (None, Some(_)) => 1,
                (Some(_), None) => -1,
                _ => 0,
            };
        }
    }
    for chunk in planned.chunks(5_000) {
        let indexes: Vec<i32> = chunk.iter().map(|p| p.index).collect();
        let truths: Vec<String> = chunk
            .iter()
            .map(|p| Value::Object(p.truth.clone()).to_string())
            .collect();
        sqlx::query(
            "update batch_rows r set ground_truth = u.gt::json, gt_version = r.gt_version + 1
             from unnest($2::int[], $3::text[]) u(idx, gt)
             where r.batch_seq = $1 and r.row_index = u.idx",
        )
        .bind(batch.seq)
        .bind(&indexes)
        .bind(&truths)
        .execute(&mut **tx)
        .await?;
        let (mut idx, mut field, mut before, mut after) = (vec![], vec![], vec![], vec![]);
        for p in chunk {
            for (name, b, a) in &p.changes {
                idx.push(p.index);
                field.push(name.clone());
                before.push(b.clone());
                after.push(a.clone());
            }
        }
        sqlx::query(
            "insert into gt_changes (org_id, batch_seq, row_index, field, before, after,
                                     changed_by, changed_by_name)
             select $1, $2, u.idx, u.field, u.before, u.after, $3, $4
             from unnest($5::int[], $6::text[], $7::text[], $8::text[]) u(idx, field, before, after)",
        )
        .bind(batch.org)
        .bind(batch.seq)
        .bind(ctx.actor.user_id())
        .bind(who)
        .bind(&idx)
        .bind(&field)
        .bind(&before)
        .bind(&after)
        .execute(&mut **tx)
        .await?;
    }
    for (field, delta) in coverage.iter().filter(|(_, d)| **d != 0) {
        sqlx::query(
            "update batches set gt_coverage = jsonb_set(gt_coverage, array[$2],
                    to_jsonb(greatest(0, coalesce((gt_coverage->>$2)::bigint, 0) + $3)))
             where id = $1",
        )
        .bind(batch.id)
        .bind(field)
        .bind(delta)
        .execute(&mut **tx)
        .await?;
    }
    let executions: Vec<Uuid> = sqlx::query_scalar("select id from executions where batch_id = $1")
        .bind(batch.id)
        .fetch_all(&mut **tx)
        .await?;
    let rows: Vec<i32> = planned.iter().map(|p| p.index).collect();
    judge_again(tx, &executions, Some(&rows)).await
}

/// A succeeded job to judge: (id, execution, extracted, expected).
type ToJudge = (
    i64,
    Uuid,
    Option<Json<Map<String, Value>>>,
    Json<Map<String, Value>>,
);

/// The succeeded jobs of executions `$1`, with their rows' expected values;
/// callers add the page's condition and order.
const JUDGE_SELECT: &str = "select j.id, j.execution_id, j.extracted, r.ground_truth
     from jobs j
     join executions e on e.id = j.execution_id
     join batches b on b.id = e.batch_id
     join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index
     where j.execution_id = any($1) and j.state = 'succeeded'";

/// Judges one page of jobs and stores the verdicts in one statement.
async fn judge_page(
    tx: &mut Transaction<'_, Postgres>,
    fields: &HashMap<Uuid, Vec<OutputField>>,
    jobs: &[ToJudge],
) -> Result<i64, AppError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let empty = Vec::new();
    let (mut ids, mut verdicts, mut results, mut accuracies) =
        (Vec::with_capacity(jobs.len()), vec![], vec![], vec![]);
    for (id, execution, extracted, Json(truth)) in jobs {
        let extracted = extracted.as_ref().map(|j| &j.0);
        let v = evaluate::evaluate_job(
            fields.get(execution).unwrap_or(&empty),
            extracted.unwrap_or(&Map::new()),
            truth,
        );
        ids.push(*id);
        verdicts.push(v.verdict);
        results.push(Value::Object(v.fields).to_string());
        accuracies.push(v.accuracy.map(|a| a as f32));
    }
    sqlx::query(
        "update jobs j set verdict = u.verdict, field_results = u.fr::json, accuracy = u.acc
         from unnest($1::bigint[], $2::text[], $3::text[], $4::float4[]) u(id, verdict, fr, acc)
         where j.id = u.id",
    )
    .bind(&ids)
    .bind(&verdicts)
    .bind(&results)
    .bind(&accuracies)
    .execute(&mut **tx)
    .await?;
    Ok(jobs.len() as i64)
}

/// Judges the finished jobs of `executions` again (only those of `rows`,
/// when given) against their rows' current expected values, each with its
/// execution's fields, and tells the live views. Returns how many.
pub(crate) async fn judge_again(
    tx: &mut Transaction<'_, Postgres>,
    executions: &[Uuid],
    rows: Option<&[i32]>,
) -> Result<i64, AppError> {
    if executions.is_empty() || rows.is_some_and(|r| r.is_empty()) {
        return Ok(0);
    }
    let fields: HashMap<Uuid, Vec<OutputField>> =
        sqlx::query_as::<_, (Uuid, Json<Vec<OutputField>>)>(
            "select id, fields from executions where id = any($1)",
        )
        .bind(executions)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(id, Json(f))| (id, f))
        .collect();
    // A page at a time, so re-judging a million-job run holds only one
    // page in memory: for chosen rows, 10,000 rows at a time through the
    // (execution, row) index; for all jobs, 10,000 at a time by job id.
    const PAGE: usize = 10_000;
    let mut judged = 0i64;
    match rows {
        Some(rows) => {
            let mut rows = rows.to_vec();
            rows.sort_unstable();
            rows.dedup();
            for chunk in rows.chunks(PAGE) {
                let jobs: Vec<ToJudge> = sqlx::query_as(&format!(
                    "{JUDGE_SELECT} and j.row_index = any($2) order by j.id"
                ))
                .bind(executions)
                .bind(chunk)
                .fetch_all(&mut **tx)
                .await?;
                judged += judge_page(tx, &fields, &jobs).await?;
            }
        }
        None => {
            let mut after = 0i64;
            loop {
                let jobs: Vec<ToJudge> = sqlx::query_as(&format!(
                    "{JUDGE_SELECT} and j.id > $2 order by j.id limit $3"
                ))
                .bind(executions)
                .bind(after)
                .bind(PAGE as i64)
                .fetch_all(&mut **tx)
                .await?;
                let Some(last) = jobs.last().map(|j| j.0) else {
                    break;
                };
                judged += judge_page(tx, &fields, &jobs).await?;
                after = last;
            }
        }
    }
    super::summaries::invalidate(&mut **tx, executions).await?;
    for execution in executions {
        live::notify(&mut **tx, live::EXECUTION, &execution.to_string()).await?;
    }
    Ok(judged)
}

/// After a field's comparator (or its options) changed: every execution of
/// the project judges that field with the new comparator from now on (the
/// extraction it ran with stays as it was), and its finished jobs are
/// judged again, so runs stay comparable. Returns how many jobs.
pub(crate) async fn rejudge_comparator(
    tx: &mut Transaction<'_, Postgres>,
    org: Uuid,
    project: Uuid,
    field: &OutputField,
) -> Result<i64, AppError> {
    let runs: Vec<(Uuid, Json<Vec<OutputField>>)> = sqlx::query_as(
        "select id, fields from executions where org_id = $1 and project_id = $2 for update",
    )
    .bind(org)
    .bind(project)
    .fetch_all(&mut **tx)
    .await?;
    let mut changed = Vec::new();
    for (id, Json(mut fields)) in runs {
        let mut touched = false;
        for f in fields.iter_mut().filter(|f| f.name == field.name) {
            if f.comparator != field.comparator || f.comparator_options != field.comparator_options
            {
                f.comparator = field.comparator;
                f.comparator_options = field.comparator_options.clone();
                touched = true;
            }
        }
        if touched {
            sqlx::query("update executions set fields = $2 where id = $1")
                .bind(id)
                .bind(Json(&fields))
                .execute(&mut **tx)
                .await?;
            changed.push(id);
        }
    }
    judge_again(tx, &changed, None).await
}

fn samples(batch: BatchRef, planned: &[Planned]) -> Vec<GroundTruthSample> {
    planned
        .iter()
        .flat_map(|p| {
            p.changes
                .iter()
                .map(|(field, before, after)| GroundTruthSample {
                    row_id: crate::model::row_id(batch.seq, p.index),
                    row_index: p.index,
                    url: p.url.clone(),
                    field: field.clone(),
                    before: before.clone(),
                    after: after.clone(),
                })
        })
        .take(SAMPLES)
        .collect()
}

fn json_text(v: &Option<String>) -> Value {
    v.clone().map(Value::String).unwrap_or(Value::Null)
}

/// Ends a bulk change: a preview (or nothing to change) rolls back and
/// reports; otherwise the changes are stored, the rows' jobs judged again,
/// and the transaction committed.
// Each argument is a distinct part of the outcome; a struct for one call
// site pair would only rename them.
#[allow(clippy::too_many_arguments)]
async fn finish(
    mut tx: Transaction<'_, Postgres>,
    action: &str,
    batch: BatchRef,
    ctx: &OrgCtx,
    who: &str,
    planned: Vec<Planned>,
    matched: i64,
    preview: bool,
) -> Result<BulkGroundTruthResult, AppError> {
    let mut result = BulkGroundTruthResult {
        preview,
        rows_matched: matched,
        rows_changed: planned.len() as i64,
        values_changed: planned.iter().map(|p| p.changes.len() as i64).sum(),
        reevaluated_jobs: 0,
        samples: samples(batch, &planned),
    };
    if preview || planned.is_empty() {
        tx.rollback().await?;
        return Ok(result);
    }
    result.reevaluated_jobs = store(&mut tx, batch, ctx, who, &planned).await?;
    // Each row's own history has the values; the log says what was done.
    audit::record(
        &mut *tx,
        ctx,
        audit::Change::new(action, "batch", batch.id).after(serde_json::json!({
            "rows_matched": result.rows_matched,
            "rows_changed": result.rows_changed,
            "values_changed": result.values_changed,
            "reevaluated_jobs": result.reevaluated_jobs,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(result)
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
        check_field_name(&fields, "values", name)?;
        if let Some(v) = value {
            check_value("values", name, v)?;
        }
    }
    let who = super::projects::actor_name(db, &ctx).await?;
    let batch = BatchRef {
        org,
        id: batch,
        seq,
    };

    let mut tx = db.begin().await?;
    let current: Option<RowState> = sqlx::query_as(
        "select ground_truth, gt_version, line, site_url, inputs from batch_rows
         where batch_seq = $1 and row_index = $2 for update",
    )
    .bind(seq)
    .bind(index)
    .fetch_optional(&mut *tx)
    .await?;
    let (Json(truth), version, line, site_url, Json(inputs)) = current.ok_or_else(not_found)?;
    if version != edit.version {
        return Err(AppError::Conflict(format!(
            "Someone changed this row's expected values since you loaded it (version {version}, yours {}); reload to see theirs.",
            edit.version
        )));
    }
    let planned = plan(index, site_url.clone(), truth.clone(), edit.values);
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

// ---------------------------------------------------------------------------
// Bulk edit

/// `POST /batches/{id}/ground-truth/bulk-edit`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkEdit {
    /// `set`, `clear`, `replace` or `accept_extracted`.
    pub operation: String,
    /// The field to change (`accept_extracted`: optional, else every
    /// extracted output field).
    pub field: Option<String>,
    /// `set`: the new value.
    pub value: Option<String>,
    /// `replace`: the text to find (case-sensitive) and what replaces it.
    pub find: Option<String>,
    pub replace: Option<String>,
    /// Which rows: by id, by job (their rows), or the jobs of
    /// `execution_id` matching `filter`; none of these: every row.
    pub row_ids: Option<Vec<i64>>,
    pub job_ids: Option<Vec<i64>>,
    pub execution_id: Option<Uuid>,
    pub filter: Option<super::jobs::JobFilter>,
    /// Work out the changes without storing them.
    #[serde(default)]
    pub preview: bool,
}

enum Operation {
    Set(String, Option<String>),
    Replace(String, String, String),
    Accept(Option<String>),
}

/// A row the selection reached: index, URL, expected values, and (when
/// reached through a job) the job's extracted values.
type Candidate = (i32, String, Map<String, Value>, Option<Map<String, Value>>);

pub async fn bulk_edit(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    req: BulkEdit,
) -> Result<BulkGroundTruthResult, AppError> {
    let (ctx, b) = super::batches::batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    let fields = db::projects::fetch_fields(db, ctx.org_id, b.project_id).await?;
    let field = req
        .field
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty());
    let need_field = || -> Result<String, AppError> {
        let f = field.ok_or_else(|| AppError::field("field", "Choose the field to change."))?;
        check_field_name(&fields, "field", f)?;
        Ok(f.to_string())
    };
    let op = match req.operation.as_str() {
        "set" => {
            let f = need_field()?;
            let v = clean(req.value.as_deref()).ok_or_else(|| {
                AppError::field(
                    "value",
                    "Enter the value to set (to remove values, use clear).",
                )
            })?;
            check_value("value", &f, &v)?;
            Operation::Set(f, Some(v))
        }
        "clear" => Operation::Set(need_field()?, None),
        "replace" => {
            let f = need_field()?;
            let find = req
                .find
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| AppError::field("find", "Enter the text to find."))?;
            let with = req.replace.clone().unwrap_or_default();
            check_value("find", &f, &find)?;
            check_value("replace", &f, &with)?;
            Operation::Replace(f, find, with)
        }
        "accept_extracted" => {
            if field.is_some() {
                need_field()?;
            }
            if req.job_ids.is_none() && req.execution_id.is_none() {
                return Err(AppError::field(
                    "job_ids",
                    "Accepting extracted values needs the jobs they come from: give job_ids or an execution_id.",
                ));
            }
            Operation::Accept(field.map(str::to_string))
        }
        other => {
            return Err(AppError::field(
                "operation",
                format!(
                    "{other:?} is not an operation; use set, clear, replace or accept_extracted."
                ),
            ))
        }
    };
    let given = [
        req.row_ids.is_some(),
        req.job_ids.is_some(),
        req.execution_id.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(AppError::field(
            "row_ids",
            "Choose rows one way: row_ids, job_ids, or execution_id with a filter.",
        ));
    }
    if req.filter.is_some() && req.execution_id.is_none() {
        return Err(AppError::field(
            "filter",
            "A filter needs the execution_id whose jobs it filters.",
        ));
    }
    for (name, ids) in [("row_ids", &req.row_ids), ("job_ids", &req.job_ids)] {
        if let Some(ids) = ids {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(AppError::field(
                    name,
                    format!(
                        "Give from 1 to {MAX_IDS} ids ({} given); to change more, use a filter.",
                        ids.len()
                    ),
                ));
            }
        }
    }
    let checked_filter = match &req.execution_id {
        Some(e) => {
            let found: Option<Uuid> = sqlx::query_scalar(
                "select id from executions where id = $1 and batch_id = $2 and org_id = $3",
            )
            .bind(e)
            .bind(batch_id)
            .bind(ctx.org_id)
            .fetch_optional(db)
            .await?;
            if found.is_none() {
                return Err(AppError::field(
                    "execution_id",
                    "This batch has no such execution.",
                ));
            }
            Some(super::jobs::check_filter(
                &req.filter.clone().unwrap_or_default(),
            )?)
        }
        None => None,
    };
    let who = super::projects::actor_name(db, &ctx).await?;
    let batch = BatchRef {
        org: ctx.org_id,
        id: batch_id,
        seq: b.seq,
    };

    let mut tx = db.begin().await?;
    // Jobs first (their rows, with what they extracted), then the rows,
    // locked for the rest of the transaction.
    let by_job: Option<Vec<(i32, Map<String, Value>)>> = if let Some(ids) = &req.job_ids {
        let found: Vec<JobValues> = sqlx::query_as(
            "select j.id, j.row_index, j.extracted from jobs j
             join executions e on e.id = j.execution_id
             where j.id = any($1) and e.batch_id = $2 and j.org_id = $3",
        )
        .bind(ids)
        .bind(batch_id)
        .bind(ctx.org_id)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(missing) = ids
            .iter()
            .find(|id| !found.iter().any(|(j, _, _)| j == *id))
        {
            return Err(AppError::field(
                "job_ids",
                format!("Job {missing} is not a job of this batch."),
            ));
        }
        Some(
            found
                .into_iter()
                .map(|(_, idx, ex)| (idx, ex.map(|j| j.0).unwrap_or_default()))
                .collect(),
        )
    } else if let (Some(e), Some(f)) = (&req.execution_id, &checked_filter) {
        let jobs = super::jobs::query(&mut *tx, *e, batch_id, f, None, i64::MAX).await?;
        Some(
            jobs.into_iter()
                .map(|j| (j.row_index, j.extracted))
                .collect(),
        )
    } else {
        None
    };
    let indexes: Option<Vec<i32>> = match (&req.row_ids, &by_job) {
        (Some(ids), _) => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if *id <= 0 || id / ROW_ID_BASE != b.seq {
                    return Err(AppError::field(
                        "row_ids",
                        format!("Row {id} is not a row of this batch."),
                    ));
                }
                out.push((id % ROW_ID_BASE) as i32);
            }
            Some(out)
        }
        (None, Some(jobs)) => Some(jobs.iter().map(|(i, _)| *i).collect()),
        (None, None) => None,
    };
    // Over the whole batch, only the rows the operation may change are read
    // and locked (`plan` below decides exactly); chosen rows are all read,
    // so a missing one can be named.
    let (narrow_field, narrow_kind, narrow_value) = match (&indexes, &op) {
        (None, Operation::Set(f, Some(v))) => (Some(f.as_str()), "differs", Some(v.as_str())),
        (None, Operation::Set(f, None)) => (Some(f.as_str()), "present", None),
        (None, Operation::Replace(f, find, _)) => {
            (Some(f.as_str()), "contains", Some(find.as_str()))
        }
        _ => (None, "", None),
    };
    let rows: Vec<RowValues> = sqlx::query_as(
        "select row_index, site_url, ground_truth from batch_rows
         where batch_seq = $1 and ($2::int[] is null or row_index = any($2))
           and ($3::text is null or case $4
                 when 'differs' then (ground_truth->>$3) is distinct from $5
                 when 'present' then (ground_truth->>$3) is not null
                 else strpos(ground_truth->>$3, $5) > 0 end)
         order by row_index for update",
    )
    .bind(b.seq)
    .bind(indexes.as_deref())
    .bind(narrow_field)
    .bind(narrow_kind)
    .bind(narrow_value)
    .fetch_all(&mut *tx)
    .await?;
    if let (Some(ids), Some(idx)) = (&req.row_ids, &indexes) {
        if let Some(missing) = idx.iter().position(|i| !rows.iter().any(|r| r.0 == *i)) {
            return Err(AppError::field(
                "row_ids",
                format!("Row {} is not a row of this batch.", ids[missing]),
            ));
        }
    }
    // When reached through jobs, a row may have several (jobs of different
    // executions): the last one listed wins.
    let extracted: HashMap<i32, Map<String, Value>> =
        by_job.unwrap_or_default().into_iter().collect();
    let candidates: Vec<Candidate> = rows
        .into_iter()
        .map(|(i, url, Json(gt))| {
            let ex = extracted.get(&i).cloned();
            (i, url, gt, ex)
        })
        .collect();
    let matched = if indexes.is_none() {
        b.row_count as i64
    } else {
        candidates.len() as i64
    };
    let field_names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    let planned: Vec<Planned> = candidates
        .into_iter()
        .filter_map(|(index, url, truth, ex)| {
            let wanted: Vec<(String, Option<String>)> = match &op {
                Operation::Set(f, v) => vec![(f.clone(), v.clone())],
                Operation::Replace(f, find, with) => match truth.get(f).and_then(as_text) {
                    Some(current) if current.contains(find.as_str()) => {
                        vec![(f.clone(), Some(current.replace(find.as_str(), with)))]
                    }
                    _ => vec![],
                },
                Operation::Accept(only) => {
                    let ex = ex.unwrap_or_default();
                    field_names
                        .iter()
                        .filter(|n| only.as_ref().is_none_or(|o| o == *n))
                        .filter_map(|n| {
                            ex.get(n)
                                .and_then(as_text)
                                .filter(|v| {
                                    !v.trim().is_empty() && v.chars().count() <= MAX_VALUE_CHARS
                                })
                                .map(|v| (n.clone(), Some(v)))
                        })
                        .collect()
                }
            };
            plan(index, url, truth, wanted)
        })
        .collect();
    finish(
        tx,
        "ground_truth.bulk_edit",
        batch,
        &ctx,
        &who,
        planned,
        matched,
        req.preview,
    )
    .await
}

// ---------------------------------------------------------------------------
// Bulk set

/// `POST /batches/{id}/ground-truth/bulk-set` as JSON: rows keyed by
/// `row_id`, `row` (the row number shown in the UI) or `url`, each with
/// the values to set (null clears).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSet {
    pub rows: Vec<BulkSetRow>,
    #[serde(default)]
    pub preview: bool,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSetRow {
    /// The file line this row came from (a CSV upload), for errors.
    #[serde(skip)]
    pub line: Option<u64>,
    pub row_id: Option<i64>,
    pub row: Option<i32>,
    pub url: Option<String>,
    pub values: BTreeMap<String, Option<String>>,
}

/// Field → new value (None clears).
type Values = BTreeMap<String, Option<String>>;

/// How an entry names its row(s).
#[derive(Debug, Clone, PartialEq)]
enum RowKey {
    Index(i32),
    Url(String),
}

/// Reads a CSV (or tab-separated) file of expected values: a header with
/// `row_id`, `row` or `url`, and one column per output field (named as the
/// field or `gt_<field>`); an empty cell leaves that value as it is.
/// Errors name the line and column.
pub fn parse_set_file(
    bytes: &[u8],
    fields: &[OutputField],
    seq: i64,
) -> Result<Vec<BulkSetRow>, AppError> {
    use crate::server::ingest::{detect, parser::Parser};
    let located = |line: u64, column: usize, message: String| {
        AppError::field(
            "file",
            if column > 0 {
                format!("Line {line}, column {column}: {message}")
            } else {
                format!("Line {line}: {message}")
            },
        )
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(AppError::field("file", "The file is empty."));
    }
    let delimiter = detect::sniff_delimiter(&bytes[..bytes.len().min(64 * 1024)]);
    let mut records: Vec<(u64, Vec<String>)> = Vec::new();
    let mut bad: Option<AppError> = None;
    let mut emit = |r: crate::server::ingest::parser::Record<'_>| -> Result<(), ()> {
        let mut cells = Vec::with_capacity(r.len());
        for i in 0..r.len() {
            match std::str::from_utf8(r.get(i)) {
                Ok(s) if !s.contains('\0') => cells.push(s.to_string()),
                _ => {
                    bad = Some(located(
                        r.line,
                        i + 1,
                        "this cell is not UTF-8 text.".into(),
                    ));
                    return Err(());
                }
            }
        }
        if records.len() > MAX_SET_ROWS {
            bad = Some(AppError::field(
                "file",
                format!("Set at most {MAX_SET_ROWS} rows at once."),
            ));
            return Err(());
        }
        records.push((r.line, cells));
        Ok(())
    };
    let mut parser = Parser::new(delimiter);
    let fed = parser.feed(bytes, &mut emit);
    let finished = if fed.is_ok() {
        parser.finish(false, &mut emit)
    } else {
        Ok(Ok(()))
    };
    if let Some(e) = bad {
        return Err(e);
    }
    if let Ok(Err(q)) = finished {
        return Err(located(
            q.line,
            q.column as usize,
            "a quote opened here is never closed.".into(),
        ));
    }
    let mut records = records.into_iter();
    let (header_line, header) = records
        .next()
        .ok_or_else(|| AppError::field("file", "The file is empty."))?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    let key_col = ["row_id", "row", "url"]
        .iter()
        .find_map(|k| names.iter().position(|n| n == k).map(|i| (*k, i)))
        .ok_or_else(|| {
            located(
                header_line,
                0,
                "the header needs a column named row_id, row or url saying which row each line sets."
                    .into(),
            )
        })?;
    let mut value_cols: Vec<(usize, String)> = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        if i == key_col.1 {
            continue;
        }
        let name = raw.trim();
        let name = name.strip_prefix("gt_").unwrap_or(name);
        if name.is_empty() {
            return Err(located(
                header_line,
                i + 1,
                "this column has no name.".into(),
            ));
        }
        match fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)) {
            Some(f) => value_cols.push((i, f.name.clone())),
            None => {
                return Err(located(
                    header_line,
                    i + 1,
                    format!("{name:?} is not an output field of this project."),
                ))
            }
        }
    }
    if value_cols.is_empty() {
        return Err(located(
            header_line,
            0,
            "the header names no output field to set.".into(),
        ));
    }
    let mut out = Vec::new();
    for (line, cells) in records {
        if cells.len() != header.len() {
            return Err(located(
                line,
                cells.len().min(header.len()) + 1,
                format!(
                    "this line has {} fields; the header has {}.",
                    cells.len(),
                    header.len()
                ),
            ));
        }
        let key = cells[key_col.1].trim();
        let mut row = BulkSetRow {
            line: Some(line),
            ..Default::default()
        };
        let bad_key = || {
            located(
                line,
                key_col.1 + 1,
                format!(
                    "{key:?} is not a {} of this batch.",
                    key_col.0.replace('_', " ")
                ),
            )
        };
        if key.is_empty() {
            return Err(bad_key());
        }
        match key_col.0 {
            "row_id" => {
                let id: i64 = key.parse().map_err(|_| bad_key())?;
                if id / ROW_ID_BASE != seq {
                    return Err(bad_key());
                }
                row.row_id = Some(id);
            }
            "row" => row.row = Some(key.parse().map_err(|_| bad_key())?),
            _ => row.url = Some(key.to_string()),
        }
        for (i, name) in &value_cols {
            let v = cells[*i].trim();
            if !v.is_empty() {
                if v.chars().count() > MAX_VALUE_CHARS {
                    return Err(located(line, i + 1, "this value is too long.".into()));
                }
                row.values.insert(name.clone(), Some(v.to_string()));
            }
        }
        if !row.values.is_empty() {
            out.push(row);
        }
    }
    Ok(out)
}

/// Two pasted columns (as copied from a spreadsheet: tab-separated, or
/// comma-separated) of row number or URL, and the value for `field`.
pub fn parse_pasted(text: &str, field: &str) -> Result<Vec<BulkSetRow>, AppError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('\t')
            .or_else(|| line.split_once(','))
            .ok_or_else(|| {
                AppError::field(
                    "text",
                    format!(
                        "Line {}: put the row number or URL, a tab (or comma), then the value.",
                        n + 1
                    ),
                )
            })?;
        let (key, value) = (key.trim(), value.trim());
        let mut row = BulkSetRow::default();
        if let Ok(i) = key.parse::<i32>() {
            row.row = Some(i);
        } else if key.contains('.') || key.contains("://") {
            row.url = Some(key.to_string());
        } else if n == 0 {
            // A header line ("row<TAB>price").
            continue;
        } else {
            return Err(AppError::field(
                "text",
                format!("Line {}: {key:?} is neither a row number nor a URL.", n + 1),
            ));
        }
        row.values
            .insert(field.to_string(), Some(value.to_string()));
        out.push(row);
    }
    if out.len() > MAX_SET_ROWS {
        return Err(AppError::field(
            "text",
            format!("Set at most {MAX_SET_ROWS} rows at once."),
        ));
    }
    Ok(out)
}

pub async fn bulk_set(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    req: BulkSet,
) -> Result<BulkGroundTruthResult, AppError> {
    let (ctx, b) = super::batches::batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    let fields = db::projects::fetch_fields(db, ctx.org_id, b.project_id).await?;
    if req.rows.is_empty() {
        return Err(AppError::field("rows", "Give at least one row to set."));
    }
    apply_set(db, &ctx, &b, &fields, req).await
}

/// A bulk set from a CSV file (see [`parse_set_file`]); errors name the
/// file's line.
pub async fn bulk_set_file(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    file: &[u8],
    preview: bool,
) -> Result<BulkGroundTruthResult, AppError> {
    let (ctx, b) = super::batches::batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    let fields = db::projects::fetch_fields(db, ctx.org_id, b.project_id).await?;
    let rows = parse_set_file(file, &fields, b.seq)?;
    if rows.is_empty() {
        return Err(AppError::field(
            "file",
            "The file sets no value: every cell below the header is empty.",
        ));
    }
    apply_set(db, &ctx, &b, &fields, BulkSet { rows, preview }).await
}

async fn apply_set(
    db: &PgPool,
    ctx: &OrgCtx,
    b: &db::batches::BatchDbRow,
    fields: &[OutputField],
    req: BulkSet,
) -> Result<BulkGroundTruthResult, AppError> {
    let batch_id = b.id;
    if req.rows.len() > MAX_SET_ROWS {
        return Err(AppError::field(
            "rows",
            format!(
                "Set at most {MAX_SET_ROWS} rows at once ({} given).",
                req.rows.len()
            ),
        ));
    }
    // Where an entry's problem is reported: its file line, or its place in
    // the body.
    let place = |n: usize, line: Option<u64>| -> (String, String) {
        match line {
            Some(l) => ("file".into(), format!("Line {l}: ")),
            None => (format!("rows[{n}]"), String::new()),
        }
    };
    let mut keyed: Vec<(RowKey, Option<u64>, Values)> = Vec::with_capacity(req.rows.len());
    for (n, r) in req.rows.into_iter().enumerate() {
        let (at, line) = place(n, r.line);
        let key = match (r.row_id, r.row, r.url.as_deref().map(str::trim)) {
            (Some(id), None, None) if id > 0 && id / ROW_ID_BASE == b.seq => {
                RowKey::Index((id % ROW_ID_BASE) as i32)
            }
            (Some(id), None, None) => {
                return Err(AppError::field(
                    &at,
                    format!("{line}Row {id} is not a row of this batch."),
                ))
            }
            (None, Some(i), None) => RowKey::Index(i),
            (None, None, Some(u)) if !u.is_empty() && !u.contains('\0') => RowKey::Url(
                crate::server::ingest::detect::normalize_site_url(u)
                    .unwrap_or_else(|| u.to_string()),
            ),
            _ => {
                return Err(AppError::field(
                    &at,
                    format!("{line}Name the row with exactly one of row_id, row or url."),
                ))
            }
        };
        if r.values.is_empty() {
            return Err(AppError::field(
                &at,
                format!("{line}Give at least one value to set."),
            ));
        }
        for (name, v) in &r.values {
            check_field_name(fields, &at, name)?;
            if let Some(v) = v {
                check_value(&at, name, v)?;
            }
        }
        keyed.push((key, r.line, r.values));
    }
    let who = super::projects::actor_name(db, ctx).await?;
    let batch = BatchRef {
        org: ctx.org_id,
        id: batch_id,
        seq: b.seq,
    };

    let mut tx = db.begin().await?;
    let indexes: Vec<i32> = keyed
        .iter()
        .filter_map(|(k, _, _)| match k {
            RowKey::Index(i) => Some(*i),
            RowKey::Url(_) => None,
        })
        .collect();
    let urls: Vec<String> = keyed
        .iter()
        .filter_map(|(k, _, _)| match k {
            RowKey::Url(u) => Some(u.clone()),
            RowKey::Index(_) => None,
        })
        .collect();
    let rows: Vec<RowValues> = sqlx::query_as(
        "select row_index, site_url, ground_truth from batch_rows
         where batch_seq = $1 and (row_index = any($2) or site_url = any($3))
         order by row_index for update",
    )
    .bind(b.seq)
    .bind(&indexes)
    .bind(&urls)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_index: HashMap<i32, usize> = HashMap::new();
    let mut by_url: HashMap<&str, Vec<usize>> = HashMap::new();
    for (n, (i, url, _)) in rows.iter().enumerate() {
        by_index.insert(*i, n);
        by_url.entry(url.as_str()).or_default().push(n);
    }
    // Every entry must reach a row; later entries for one row win.
    let mut wanted: BTreeMap<usize, BTreeMap<String, Option<String>>> = BTreeMap::new();
    for (n, (key, line, values)) in keyed.iter().enumerate() {
        let reached: Vec<usize> = match key {
            RowKey::Index(i) => by_index.get(i).copied().into_iter().collect(),
            RowKey::Url(u) => by_url.get(u.as_str()).cloned().unwrap_or_default(),
        };
        if reached.is_empty() {
            let what = match key {
                RowKey::Index(i) => format!("row {i}"),
                RowKey::Url(u) => format!("URL {u}"),
            };
            let (at, line) = place(n, *line);
            return Err(AppError::field(
                &at,
                format!("{line}This batch has no {what}."),
            ));
        }
        for r in reached {
            wanted.entry(r).or_default().extend(values.clone());
        }
    }
    let matched = wanted.len() as i64;
    let mut rows: Vec<Option<RowValues>> = rows.into_iter().map(Some).collect();
    let planned: Vec<Planned> = wanted
        .into_iter()
        .filter_map(|(n, values)| {
            let (index, url, Json(truth)) = rows[n].take()?;
            plan(index, url, truth, values)
        })
        .collect();
    finish(
        tx,
        "ground_truth.bulk_set",
        batch,
        ctx,
        &who,
        planned,
        matched,
        req.preview,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Comparator, ComparatorOptions, ExtractionRule, ValueType};

    fn field(name: &str) -> OutputField {
        OutputField {
            name: name.into(),
            field_type: ValueType::Text,
            comparator: Comparator::Exact,
            comparator_options: ComparatorOptions::default(),
            rule: ExtractionRule::Auto,
            source: "manual".into(),
        }
    }

    #[test]
    fn set_files_name_line_and_column() {
        let fields = [field("price"), field("title")];
        let rows = parse_set_file(b"row,gt_price,title\n1,9.99,\n2,,Shoe\n", &fields, 1).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, Some(1));
        assert_eq!(rows[0].values.get("price"), Some(&Some("9.99".into())));
        assert!(!rows[0].values.contains_key("title"));
        let e = parse_set_file(b"row,colour\n1,red\n", &fields, 1).unwrap_err();
        assert!(e.to_string().contains("Line 1, column 2"), "{e}");
        let e = parse_set_file(b"row,price\n1,2\n3\n", &fields, 1).unwrap_err();
        assert!(e.to_string().contains("Line 3"), "{e}");
        let e = parse_set_file(b"price\n1\n", &fields, 1).unwrap_err();
        assert!(e.to_string().contains("row_id, row or url"), "{e}");
        let e = parse_set_file(b"row_id,price\n20000001,2\n", &fields, 1).unwrap_err();
        assert!(e.to_string().contains("Line 2, column 1"), "{e}");
        let e = parse_set_file(b"row,price\n1,\"open\n", &fields, 1).unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
    }

    #[test]
    fn pasted_columns_take_rows_or_urls() {
        let rows = parse_pasted("row\tprice\n3\t1.50\nshop.example/p/4\t2\n\n", "price").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, Some(3));
        assert_eq!(rows[1].url.as_deref(), Some("shop.example/p/4"));
        assert!(parse_pasted("3 1.50", "price").is_err());
        assert!(parse_pasted("3\t1\nabc\t2", "price").is_err());
    }

    #[test]
    fn planning_skips_unchanged_values() {
        let mut truth = Map::new();
        truth.insert("price".into(), Value::String("1".into()));
        assert!(plan(
            1,
            "u".into(),
            truth.clone(),
            [("price".into(), Some(" 1 ".into()))]
        )
        .is_none());
        let p = plan(
            1,
            "u".into(),
            truth,
            [("price".into(), None), ("title".into(), Some("T".into()))],
        )
        .unwrap();
        assert_eq!(p.changes.len(), 2);
        assert!(!p.truth.contains_key("price"));
    }
}
