//! Editing expected values (F11). One row at a time with optimistic
//! concurrency on the row's `gt_version` (a stale edit answers CONFLICT),
//! or many at once: bulk set (values keyed by row or URL, from JSON, a CSV
//! file or two pasted columns) and bulk edit (set, clear, find and replace,
//! accept the extracted values) over chosen rows or jobs, the jobs matching
//! a filter, or the whole batch, with a preview. Every change is recorded
//! with who and when, the batch's coverage is kept current, and every
//! finished job of a changed row is judged again in the same transaction.
//!
//! The rooms: `edit` (one row), `bulk` (bulk edit and bulk set), `parse`
//! (files and pasted columns of expected values), `rejudge` (judging
//! finished jobs again after a change); planning and storing changes,
//! shared by all, live here.

mod bulk;
mod edit;
mod parse;
mod rejudge;

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::audit;
use crate::error::AppError;
use crate::model::{
    BulkGroundTruthResult, GroundTruthChange, GroundTruthSample, OutputField, ROW_ID_BASE,
};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;

pub use bulk::{bulk_edit, bulk_set, bulk_set_file, BulkEdit};
pub use edit::{edit, edit_from_job, GroundTruthEdit};
pub use parse::{parse_pasted, parse_set_file, BulkSet, BulkSetRow, Expected};
pub use rejudge::judge_again;
pub(crate) use rejudge::rejudge_comparator;

/// At most this many ids in one call (rows or jobs); a filter reaches any
/// number.
pub const MAX_IDS: usize = 1_000;
/// At most this many rows in one bulk set.
pub const MAX_SET_ROWS: usize = 100_000;
/// Samples returned with a bulk result.
const SAMPLES: usize = 20;
/// Longest expected value.
const MAX_VALUE_CHARS: usize = 10_000;

fn not_found() -> AppError {
    AppError::NotFound("Row".into())
}

/// The row's batch (seq, row index, org, project, batch id) from a row id.
async fn locate(db: &PgPool, row_id: i64) -> Result<(i64, i32, Uuid, Uuid, Uuid), AppError> {
    if row_id <= 0 {
        return Err(not_found());
    }
    let (seq, index) = (row_id / ROW_ID_BASE, (row_id % ROW_ID_BASE) as i32);
    let place = db::ground_truth::fetch_batch_by_seq(db, seq)
        .await?
        .ok_or_else(not_found)?;
    Ok((seq, index, place.org_id, place.project_id, place.id))
}

/// A row's expected-value changes, newest first.
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

/// A row's latest changes, newest first (the caller checked access).
pub(crate) async fn read_history(
    db: &PgPool,
    org: Uuid,
    seq: i64,
    index: i32,
) -> Result<Vec<GroundTruthChange>, AppError> {
    Ok(db::ground_truth::history(db, org, seq, index).await?)
}

/// Most acceptable values one expected cell may list.
const MAX_VALUES: usize = 100;

/// Field → the separator that splits its expected cells into several
/// acceptable values (fields without one are absent).
pub(super) type Separators = std::collections::HashMap<String, String>;

pub(super) fn separators(fields: &[OutputField]) -> Separators {
    fields
        .iter()
        .filter_map(|f| Some((f.name.clone(), f.multi_value_separator.clone()?)))
        .collect()
}

/// A value as stored: trimmed, empty means none; a text split at the
/// field's separator (when it has one), and a list of several acceptable
/// values stored as a JSON list (one left is stored as itself).
fn clean(value: Option<Expected>, separator: Option<&String>) -> Option<Value> {
    let parts: Vec<String> = match value {
        None => Vec::new(),
        Some(Expected::Text(t)) => match separator {
            Some(sep) if t.contains(sep.as_str()) => {
                t.split(sep.as_str()).map(str::to_string).collect()
            }
            _ => vec![t],
        },
        Some(Expected::List(l)) => l,
    };
    let mut values: Vec<String> = Vec::with_capacity(parts.len());
    for p in parts {
        let p = p.trim();
        if !p.is_empty() && !values.iter().any(|v| v == p) {
            values.push(p.to_string());
        }
    }
    match values.len() {
        0 => None,
        1 => values.pop().map(Value::String),
        _ => Some(Value::Array(
            values.into_iter().map(Value::String).collect(),
        )),
    }
}

fn check_value(field: &str, name: &str, value: &Expected) -> Result<(), AppError> {
    let too_long = |v: &str| v.chars().count() > MAX_VALUE_CHARS || v.contains('\0');
    let bad = match value {
        Expected::Text(v) => too_long(v),
        Expected::List(l) => l.len() > MAX_VALUES || l.iter().any(|v| too_long(v)),
    };
    if bad {
        return Err(AppError::field(
            field,
            format!("The value for {name:?} is too long or not text (at most {MAX_VALUE_CHARS} characters, and at most {MAX_VALUES} values in a list)."),
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

/// A stored value as text: several acceptable values joined by " | ".
fn as_text(v: &Value) -> Option<String> {
    crate::model::expected_text(v)
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
/// expected values; None when nothing changes. The changes are told as
/// text (a list joined by " | ").
fn plan(
    index: i32,
    url: String,
    mut truth: Map<String, Value>,
    wanted: impl IntoIterator<Item = (String, Option<Expected>)>,
    separators: &Separators,
) -> Option<Planned> {
    let mut changes = Vec::new();
    for (name, value) in wanted {
        let after = clean(value, separators.get(&name));
        let current = truth
            .get(&name)
            .filter(|v| as_text(v).is_some_and(|t| !t.is_empty()));
        if current == after.as_ref() {
            continue;
        }
        let before = current.and_then(as_text);
        let after_text = after.as_ref().and_then(as_text);
        match after {
            Some(v) => truth.insert(name.clone(), v),
            None => truth.remove(&name),
        };
        changes.push((name, before, after_text));
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
        db::ground_truth::update_rows(tx, batch.seq, &indexes, &truths).await?;
        let mut changes = db::ground_truth::NewChanges::default();
        for p in chunk {
            for (name, b, a) in &p.changes {
                changes.rows.push(p.index);
                changes.fields.push(name.clone());
                changes.before.push(b.clone());
                changes.after.push(a.clone());
            }
        }
        db::ground_truth::insert_changes(
            tx,
            batch.org,
            batch.seq,
            ctx.actor().user_id(),
            who,
            &changes,
        )
        .await?;
    }
    for (field, delta) in coverage.iter().filter(|(_, d)| **d != 0) {
        db::ground_truth::adjust_coverage(tx, batch.id, field, *delta).await?;
    }
    let executions = db::ground_truth::executions_of_batch(&mut **tx, batch.id).await?;
    let rows: Vec<i32> = planned.iter().map(|p| p.index).collect();
    rejudge::judge_again(tx, &executions, Some(&rows)).await
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
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        }
    }

    #[test]
    fn set_files_name_line_and_column() {
        let fields = [field("price"), field("title")];
        let rows = parse_set_file(b"row,gt_price,title\n1,9.99,\n2,,Shoe\n", &fields, 1).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, Some(1));
        assert_eq!(
            rows[0].values.get("price"),
            Some(&Some(Expected::Text("9.99".into())))
        );
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
        let none = Separators::new();
        let text = |s: &str| Some(Expected::Text(s.into()));
        assert!(plan(
            1,
            "u".into(),
            truth.clone(),
            [("price".into(), text(" 1 "))],
            &none
        )
        .is_none());
        let p = plan(
            1,
            "u".into(),
            truth.clone(),
            [("price".into(), None), ("title".into(), text("T"))],
            &none,
        )
        .unwrap();
        assert_eq!(p.changes.len(), 2);
        assert!(!p.truth.contains_key("price"));
    }

    #[test]
    fn several_acceptable_values_are_a_list() {
        let seps: Separators = [("color".to_string(), "|".to_string())].into();
        let text = |s: &str| Some(Expected::Text(s.into()));
        // Split at the field's separator, trimmed, empties and repeats dropped.
        let p = plan(
            1,
            "u".into(),
            Map::new(),
            [("color".into(), text("Navy | Blue || Navy"))],
            &seps,
        )
        .unwrap();
        assert_eq!(p.truth["color"], serde_json::json!(["Navy", "Blue"]));
        assert_eq!(p.changes[0].2.as_deref(), Some("Navy | Blue"));
        // The same list again changes nothing; one value left is a text.
        assert!(plan(
            1,
            "u".into(),
            p.truth.clone(),
            [("color".into(), text("Navy|Blue"))],
            &seps
        )
        .is_none());
        let p = plan(
            1,
            "u".into(),
            p.truth,
            [("color".into(), text("Navy|"))],
            &seps,
        )
        .unwrap();
        assert_eq!(p.truth["color"], "Navy");
        // Without a separator a text is one value; a JSON list is a list.
        let p = plan(
            1,
            "u".into(),
            Map::new(),
            [("size".into(), text("S|M"))],
            &seps,
        )
        .unwrap();
        assert_eq!(p.truth["size"], "S|M");
        let list = Some(Expected::List(vec!["S".into(), "M".into()]));
        let p = plan(1, "u".into(), Map::new(), [("size".into(), list)], &seps).unwrap();
        assert_eq!(p.truth["size"], serde_json::json!(["S", "M"]));
    }
}
