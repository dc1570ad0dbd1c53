//! Bulk operations on an execution's jobs (F12): chosen by id (at most
//! 1,000) or every job matching a job-list filter (any number), then
//! deleted (finished jobs only; admins), rerun as a new execution, or
//! updated (queued jobs cancelled).

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use serde_json::json;

use super::audit::{self, Change};
use crate::error::AppError;
use crate::model::{BulkJobsResult, BulkOperation, JobState};
use crate::server::auth::rbac::{require, Actor, Permission};
use crate::server::service::jobs::{self, JobFilter};
use crate::server::{db, live};

pub const MAX_IDS: usize = 1_000;

/// `POST /jobs/bulk/{delete|rerun|update}`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkJobs {
    /// These jobs (one execution's, at most 1,000)…
    pub job_ids: Option<Vec<i64>>,
    /// …or every job of this execution matching `filter` (no filter: all).
    pub execution_id: Option<Uuid>,
    pub filter: Option<JobFilter>,
    /// `update`: the new state (`cancelled`, for queued jobs).
    pub state: Option<String>,
    /// `rerun`: the new execution's concurrency (default: the same).
    pub concurrency: Option<i32>,
    /// Count the jobs the selection reaches without acting (for a
    /// confirmation).
    #[serde(default)]
    pub preview: bool,
}

fn not_found() -> AppError {
    AppError::NotFound("Execution".into())
}

/// Deletes, reruns or cancels the chosen jobs (see [`BulkJobs`]), or with `preview` counts them.
pub async fn run(
    db: &PgPool,
    actor: &Actor,
    action: BulkOperation,
    req: BulkJobs,
) -> Result<BulkJobsResult, AppError> {
    let execution_id = match (&req.job_ids, req.execution_id) {
        (Some(_), Some(_)) => {
            return Err(AppError::field(
                "job_ids",
                "Choose jobs one way: job_ids, or execution_id with a filter.",
            ))
        }
        (None, None) => {
            return Err(AppError::field(
                "job_ids",
                "Choose the jobs: job_ids, or execution_id with an optional filter.",
            ))
        }
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(AppError::field(
                    "job_ids",
                    format!(
                        "Give from 1 to {MAX_IDS} job ids ({} given); for more, use execution_id and a filter.",
                        ids.len()
                    ),
                ));
            }
            // The execution of the first job; a job of another
            // organization is simply not found.
            db::jobs::fetch_execution_id(db, ids[0])
                .await?
                .ok_or_else(|| AppError::NotFound("Job".into()))?
        }
        (None, Some(e)) => e,
    };
    if req.filter.is_some() && req.job_ids.is_some() {
        return Err(AppError::field(
            "filter",
            "A filter applies to execution_id, not to job_ids.",
        ));
    }
    let (ctx, e) = match super::executions::execution_ctx(db, actor, execution_id).await {
        Err(AppError::NotFound(_)) if req.job_ids.is_some() => {
            return Err(AppError::NotFound("Job".into()))
        }
        other => other?,
    };
    require(
        &ctx,
        match action {
            BulkOperation::Delete => Permission::DeleteProject,
            _ => Permission::RunExecution,
        },
    )?;
    let state = match action {
        BulkOperation::Update => match req.state.as_deref() {
            Some("cancelled") => Some(JobState::Cancelled),
            Some(other) => {
                return Err(AppError::field(
                    "state",
                    format!("{other:?} can't be set; use cancelled (it cancels queued jobs)."),
                ))
            }
            None => return Err(AppError::field("state", "Give the new state: cancelled.")),
        },
        _ if req.state.is_some() => {
            return Err(AppError::field("state", "Only update takes a state."))
        }
        _ => None,
    };
    // The chosen jobs and their rows.
    let chosen: Vec<db::executions::JobRowIndex> = match &req.job_ids {
        Some(ids) => {
            let found = db::executions::jobs_among(db, execution_id, ids).await?;
            let unknown: Vec<String> = ids
                .iter()
                .filter(|i| !found.iter().any(|f| f.id == **i))
                .take(5)
                .map(|i| i.to_string())
                .collect();
            if !unknown.is_empty() {
                return Err(AppError::field(
                    "job_ids",
                    format!(
                        "All jobs must be of one execution; not of {}: {}.",
                        e.id,
                        unknown.join(", ")
                    ),
                ));
            }
            found
        }
        None => {
            let filter = jobs::check_filter(&req.filter.clone().unwrap_or_default())?;
            db::results::jobs(db, execution_id, e.batch_id, &filter, None, i64::MAX)
                .await?
                .into_iter()
                .map(|j| db::executions::JobRowIndex {
                    id: j.id,
                    row_index: j.row_index,
                })
                .collect()
        }
    };
    let matched = chosen.len() as i64;
    if chosen.is_empty() || req.preview {
        return Ok(BulkJobsResult {
            action,
            matched,
            affected: 0,
            execution_id: None,
        });
    }
    match action {
        BulkOperation::Rerun => {
            let concurrency = match req.concurrency {
                None => e.concurrency,
                Some(c) => super::executions::parse_concurrency(db, ctx.org_id(), c)
                    .await?
                    .get(),
            };
            let mut rows: Vec<i32> = chosen.iter().map(|j| j.row_index).collect();
            rows.sort_unstable();
            rows.dedup();
            let n = rows.len() as i64;
            let new = super::executions::rerun_rows(db, actor, &ctx, &e, rows, concurrency).await?;
            Ok(BulkJobsResult {
                action,
                matched,
                affected: n,
                execution_id: Some(new.id),
            })
        }
        BulkOperation::Delete => {
            let ids: Vec<i64> = chosen.iter().map(|j| j.id).collect();
            let mut tx = db.begin().await?;
            let mut affected = 0;
            for chunk in ids.chunks(10_000) {
                affected += db::jobs::delete_finished(&mut *tx, execution_id, chunk).await? as i64;
            }
            db::summaries::invalidate(&mut *tx, &[execution_id]).await?;
            audit::record(
                &mut *tx,
                &ctx,
                Change::new("jobs.delete", "execution", execution_id)
                    .before(selection(&ids, &req.filter))
                    .after(json!({"deleted": affected})),
            )
            .await?;
            live::notify(&mut *tx, live::EXECUTION, &execution_id.to_string()).await?;
            tx.commit().await?;
            Ok(BulkJobsResult {
                action,
                matched,
                affected,
                execution_id: None,
            })
        }
        BulkOperation::Update => {
            let ids: Vec<i64> = chosen.iter().map(|j| j.id).collect();
            let state = state.ok_or_else(not_found)?;
            let mut tx = db.begin().await?;
            let mut affected = 0;
            for chunk in ids.chunks(10_000) {
                affected +=
                    db::jobs::finish_queued(&mut *tx, execution_id, chunk, state).await? as i64;
            }
            audit::record(
                &mut *tx,
                &ctx,
                Change::new("jobs.update", "execution", execution_id)
                    .before(selection(&ids, &req.filter))
                    .after(json!({"state": state, "updated": affected})),
            )
            .await?;
            tx.commit().await?;
            // The execution may have nothing left to run.
            db::jobs::settle_and_notify(db, &[execution_id]).await?;
            Ok(BulkJobsResult {
                action,
                matched,
                affected,
                execution_id: None,
            })
        }
    }
}

/// What a bulk action chose, for its audit entry: the job ids when they are
/// few enough to read (an API call names at most 1,000), else the filter.
fn selection(ids: &[i64], filter: &Option<JobFilter>) -> serde_json::Value {
    if ids.len() <= MAX_IDS {
        json!({"job_ids": ids})
    } else {
        json!({"jobs": ids.len(), "filter": filter})
    }
}
