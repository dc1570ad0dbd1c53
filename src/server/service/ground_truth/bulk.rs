//! Many expected values at once: bulk edit (set, clear, find and replace,
//! accept the extracted values) over chosen rows or jobs, the jobs matching
//! a filter, or the whole batch; and bulk set (values keyed by row or URL,
//! from JSON, a CSV file or pasted columns). Both can be previewed.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::parse::{parse_set_file, BulkSet, Expected, RowKey, Values};
use super::{
    as_text, check_field_name, check_value, finish, plan, separators, BatchRef, Planned, MAX_IDS,
    MAX_SET_ROWS, MAX_VALUE_CHARS,
};
use crate::error::AppError;
use crate::model::{BulkGroundTruthResult, OutputField, ROW_ID_BASE};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db::{self, ground_truth::Narrow, ground_truth::RowValues};

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
    pub filter: Option<crate::server::service::jobs::JobFilter>,
    /// Work out the changes without storing them.
    #[serde(default)]
    pub preview: bool,
}

enum Operation {
    Set(String, Option<String>),
    Replace(String, String, String),
    Accept(Option<String>),
}

/// A row the selection reached, and (when reached through a job) the
/// job's extracted values.
struct Candidate {
    index: i32,
    url: String,
    truth: Map<String, Value>,
    extracted: Option<Map<String, Value>>,
}

/// Sets, clears, replaces or accepts extracted values over the chosen rows (see [`BulkEdit`]).
pub async fn bulk_edit(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    req: BulkEdit,
) -> Result<BulkGroundTruthResult, AppError> {
    let (ctx, b) = crate::server::service::batches::batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    let fields = db::projects::fetch_fields(db, ctx.org_id(), b.project_id).await?;
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
            let v = req
                .value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    AppError::field(
                        "value",
                        "Enter the value to set (to remove values, use clear).",
                    )
                })?;
            check_value("value", &f, &Expected::Text(v.clone()))?;
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
            check_value("find", &f, &Expected::Text(find.clone()))?;
            check_value("replace", &f, &Expected::Text(with.clone()))?;
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
            if !db::ground_truth::execution_in_batch(db, ctx.org_id(), batch_id, *e).await? {
                return Err(AppError::field(
                    "execution_id",
                    "This batch has no such execution.",
                ));
            }
            Some(crate::server::service::jobs::check_filter(
                &req.filter.clone().unwrap_or_default(),
            )?)
        }
        None => None,
    };
    let who = ctx.actor_name(db).await?.to_string();
    let batch = BatchRef {
        org: ctx.org_id(),
        id: batch_id,
        seq: b.seq,
    };

    let mut tx = db.begin().await?;
    // Jobs first (their rows, with what they extracted), then the rows,
    // locked for the rest of the transaction.
    let by_job: Option<Vec<(i32, Map<String, Value>)>> = if let Some(ids) = &req.job_ids {
        let found = db::ground_truth::jobs_of_batch(&mut tx, ctx.org_id(), batch_id, ids).await?;
        if let Some(missing) = ids.iter().find(|id| !found.iter().any(|j| j.id == **id)) {
            return Err(AppError::field(
                "job_ids",
                format!("Job {missing} is not a job of this batch."),
            ));
        }
        Some(
            found
                .into_iter()
                .map(|j| (j.row_index, j.extracted.map(|e| e.0).unwrap_or_default()))
                .collect(),
        )
    } else if let (Some(e), Some(f)) = (&req.execution_id, &checked_filter) {
        let jobs = db::results::jobs(&mut *tx, *e, batch_id, f, None, i64::MAX).await?;
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
    let narrow = match (&indexes, &op) {
        (None, Operation::Set(f, Some(v))) => Narrow::Differs(f, v),
        (None, Operation::Set(f, None)) => Narrow::Present(f),
        (None, Operation::Replace(f, find, _)) => Narrow::Contains(f, find),
        _ => Narrow::All,
    };
    let rows = db::ground_truth::lock_rows(&mut tx, b.seq, indexes.as_deref(), narrow).await?;
    if let (Some(ids), Some(idx)) = (&req.row_ids, &indexes) {
        if let Some(missing) = idx
            .iter()
            .position(|i| !rows.iter().any(|r| r.row_index == *i))
        {
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
        .map(|r| Candidate {
            extracted: extracted.get(&r.row_index).cloned(),
            index: r.row_index,
            url: r.site_url,
            truth: r.ground_truth.0,
        })
        .collect();
    let matched = if indexes.is_none() {
        b.row_count as i64
    } else {
        candidates.len() as i64
    };
    let field_names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    let seps = separators(&fields);
    let planned: Vec<Planned> = candidates
        .into_iter()
        .filter_map(|c| {
            let Candidate {
                index,
                url,
                truth,
                extracted: ex,
            } = c;
            let wanted: Vec<(String, Option<Expected>)> = match &op {
                Operation::Set(f, v) => vec![(f.clone(), v.clone().map(Expected::Text))],
                // In a list of acceptable values, in each of them.
                Operation::Replace(f, find, with) => match truth.get(f) {
                    Some(Value::Array(items)) => {
                        let items: Vec<String> = items.iter().filter_map(as_text).collect();
                        if items.iter().any(|i| i.contains(find.as_str())) {
                            let replaced = items
                                .iter()
                                .map(|i| i.replace(find.as_str(), with))
                                .collect();
                            vec![(f.clone(), Some(Expected::List(replaced)))]
                        } else {
                            vec![]
                        }
                    }
                    current => match current.and_then(as_text) {
                        Some(current) if current.contains(find.as_str()) => vec![(
                            f.clone(),
                            Some(Expected::Text(current.replace(find.as_str(), with))),
                        )],
                        _ => vec![],
                    },
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
                                // As extracted: never split at a separator.
                                .map(|v| (n.clone(), Some(Expected::List(vec![v]))))
                        })
                        .collect()
                }
            };
            plan(index, url, truth, wanted, &seps)
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

/// Sets expected values keyed by row or URL (see [`BulkSet`]).
pub async fn bulk_set(
    db: &PgPool,
    actor: &Actor,
    batch_id: Uuid,
    req: BulkSet,
) -> Result<BulkGroundTruthResult, AppError> {
    let (ctx, b) = crate::server::service::batches::batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    let fields = db::projects::fetch_fields(db, ctx.org_id(), b.project_id).await?;
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
    let (ctx, b) = crate::server::service::batches::batch_ctx(db, actor, batch_id).await?;
    require(&ctx, Permission::EditGroundTruth)?;
    let fields = db::projects::fetch_fields(db, ctx.org_id(), b.project_id).await?;
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
    let who = ctx.actor_name(db).await?.to_string();
    let batch = BatchRef {
        org: ctx.org_id(),
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
    let rows = db::ground_truth::lock_rows_by_index_or_url(&mut tx, b.seq, &indexes, &urls).await?;
    let mut by_index: HashMap<i32, usize> = HashMap::new();
    let mut by_url: HashMap<&str, Vec<usize>> = HashMap::new();
    for (n, r) in rows.iter().enumerate() {
        by_index.insert(r.row_index, n);
        by_url.entry(r.site_url.as_str()).or_default().push(n);
    }
    // Every entry must reach a row; later entries for one row win.
    let mut wanted: BTreeMap<usize, Values> = BTreeMap::new();
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
    let seps = separators(fields);
    let mut rows: Vec<Option<RowValues>> = rows.into_iter().map(Some).collect();
    let planned: Vec<Planned> = wanted
        .into_iter()
        .filter_map(|(n, values)| {
            let r = rows[n].take()?;
            plan(r.row_index, r.site_url, r.ground_truth.0, values, &seps)
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
