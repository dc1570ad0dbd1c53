//! Judging finished jobs again against their rows' current expected values
//! (after an edit) or with a field's new comparator (after a settings
//! change), a page at a time, verdicts stored where the executor stores
//! them.

use std::collections::HashMap;

use serde_json::Map;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::error::AppError;
use crate::model::OutputField;
use crate::server::db::{self, ground_truth::ToJudge};
use crate::server::evaluate::{self, JobVerdict};
use crate::server::live;

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
    let verdicts: Vec<(i64, JobVerdict)> = jobs
        .iter()
        .map(|j| {
            let extracted = j.extracted.as_ref().map(|e| &e.0);
            let v = evaluate::evaluate_job(
                fields.get(&j.execution_id).unwrap_or(&empty),
                extracted.unwrap_or(&Map::new()),
                &j.ground_truth.0,
            );
            (j.id, v)
        })
        .collect();
    let judged: Vec<(i64, &JobVerdict)> = verdicts.iter().map(|(id, v)| (*id, v)).collect();
    db::jobs::store_verdicts(tx, &judged).await?;
    Ok(jobs.len() as i64)
}

/// Judges the finished jobs of `executions` again (only those of `rows`,
/// when given) against their rows' current expected values, each with its
/// execution's fields, and tells the live views. Returns how many.
pub async fn judge_again(
    tx: &mut Transaction<'_, Postgres>,
    executions: &[Uuid],
    rows: Option<&[i32]>,
) -> Result<i64, AppError> {
    if executions.is_empty() || rows.is_some_and(|r| r.is_empty()) {
        return Ok(0);
    }
    let fields = db::ground_truth::execution_fields(&mut **tx, executions).await?;
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
                let jobs = db::ground_truth::succeeded_jobs_of_rows(tx, executions, chunk).await?;
                judged += judge_page(tx, &fields, &jobs).await?;
            }
        }
        None => {
            let mut after = 0i64;
            loop {
                let jobs =
                    db::ground_truth::succeeded_jobs_after(tx, executions, after, PAGE as i64)
                        .await?;
                let Some(last) = jobs.last().map(|j| j.id) else {
                    break;
                };
                judged += judge_page(tx, &fields, &jobs).await?;
                after = last;
            }
        }
    }
    db::summaries::invalidate(&mut **tx, executions).await?;
    for execution in executions {
        live::notify(&mut **tx, live::EXECUTION, &execution.to_string()).await?;
    }
    Ok(judged)
}

/// After a field's comparator (or its options, or what an empty expected
/// value means) changed: every execution of
/// the project judges that field with the new comparator from now on (the
/// extraction it ran with stays as it was), and its finished jobs are
/// judged again, so runs stay comparable. Returns how many jobs.
pub(crate) async fn rejudge_comparator(
    tx: &mut Transaction<'_, Postgres>,
    org: Uuid,
    project: Uuid,
    field: &OutputField,
) -> Result<i64, AppError> {
    let runs = db::ground_truth::lock_project_runs(tx, org, project).await?;
    let mut changed = Vec::new();
    for (id, mut fields) in runs {
        let mut touched = false;
        for f in fields.iter_mut().filter(|f| f.name == field.name) {
            if f.comparator != field.comparator
                || f.comparator_options != field.comparator_options
                || f.empty_means != field.empty_means
            {
                f.comparator = field.comparator;
                f.comparator_options = field.comparator_options.clone();
                f.empty_means = field.empty_means;
                touched = true;
            }
        }
        if touched {
            db::ground_truth::set_execution_fields(tx, id, &fields).await?;
            changed.push(id);
        }
    }
    judge_again(tx, &changed, None).await
}
