//! An execution's jobs read as results: the filtered, keyset-paged list
//! (with each row's current expected values) and one job's detail with its
//! attempts. The queue's own reads and writes are in `jobs`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::literal;
use crate::model::{AttemptView, JobState, JobSummary, Verdict};

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    execution_id: Uuid,
    row_index: i32,
    site_url: String,
    state: JobState,
    verdict: Option<Verdict>,
    accuracy: Option<f32>,
    attempt: i32,
    error_class: Option<String>,
    error: Option<String>,
    extracted: Option<Json<Map<String, Value>>>,
    field_results: Option<Json<Map<String, Value>>>,
    batch_seq: i64,
    ground_truth: Json<Map<String, Value>>,
    gt_version: i32,
}

impl JobRow {
    fn into_model(self) -> JobSummary {
        JobSummary {
            id: self.id,
            execution_id: self.execution_id,
            row_index: self.row_index,
            url: self.site_url,
            state: self.state,
            verdict: self.verdict,
            accuracy: self.accuracy.map(f64::from),
            attempt: self.attempt,
            error_class: self.error_class,
            error: self.error,
            extracted: self.extracted.map(|j| j.0).unwrap_or_default(),
            field_results: self.field_results.map(|j| j.0).unwrap_or_default(),
            row_id: crate::model::row_id(self.batch_seq, self.row_index),
            expected: self.ground_truth.0,
            gt_version: self.gt_version,
        }
    }
}

const SELECT: &str = "select j.id, j.execution_id, j.row_index, r.site_url, j.state, j.verdict,
        j.accuracy, j.attempt, j.error_class, j.error, j.extracted, j.field_results,
        b.seq as batch_seq, r.ground_truth, r.gt_version
    from jobs j
    join executions e on e.id = j.execution_id
    join batches b on b.id = e.batch_id
    join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index";

/// Which jobs of an execution, checked by the service; every part optional.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    pub state: Option<JobState>,
    /// Jobs with any of these verdicts (`wrong` asks for partial and fail).
    pub verdicts: Option<Vec<Verdict>>,
    /// Judged against expected values (or not).
    pub has_ground_truth: Option<bool>,
    pub accuracy_min: Option<f64>,
    pub accuracy_max: Option<f64>,
    /// An ILIKE pattern over the URL and the extracted values.
    pub pattern: Option<String>,
    /// Jobs where this field was judged and failed.
    pub failed_field: Option<String>,
    /// Lowest accuracy first (jobs without one last) instead of run order.
    pub by_accuracy: bool,
}

/// The accuracy order's key for jobs without one: after every share.
pub const NO_ACCURACY: f32 = 2.0;

/// Where a page starts: after a job in the list's order.
#[derive(Debug, Clone, Copy)]
pub enum After {
    Id(i64),
    /// The sort key (accuracy, [`NO_ACCURACY`] when none) and id of the
    /// last job.
    Accuracy(f32, i64),
}

impl JobQuery {
    /// The query as SQL conditions (each starting with ` and `) with its
    /// values as literals, for queries that can't take parameters (an
    /// export also runs as `COPY (…)`). The same conditions as [`jobs`]'s;
    /// a test checks a filtered export against the list.
    pub fn sql_conditions(&self) -> String {
        let mut sql = String::new();
        if let Some(s) = self.state {
            sql += &format!(" and j.state = {}", literal(s.as_str()));
        }
        if let Some(vs) = &self.verdicts {
            let list: Vec<String> = vs.iter().map(|v| literal(v.as_str())).collect();
            sql += &format!(" and j.verdict in ({})", list.join(", "));
        }
        if let Some(b) = self.has_ground_truth {
            sql += &format!(
                " and (j.field_results is not null and j.verdict <> 'no_ground_truth') = {b}"
            );
        }
        if let Some(a) = self.accuracy_min {
            sql += &format!(" and j.accuracy >= {a}::float8");
        }
        if let Some(a) = self.accuracy_max {
            sql += &format!(" and j.accuracy <= {a}::float8");
        }
        if let Some(p) = &self.pattern {
            let p = literal(p);
            sql += &format!(" and (r.site_url ilike {p} or j.extracted::text ilike {p})");
        }
        if let Some(f) = &self.failed_field {
            sql += &format!(
                " and (j.field_results -> {} ->> 'pass') = 'false'",
                literal(f)
            );
        }
        sql
    }
}

/// The jobs of an execution (of `batch_id`) that match, in the query's
/// order after `after`, at most `limit`.
pub async fn jobs(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    batch_id: Uuid,
    f: &JobQuery,
    after: Option<After>,
    limit: i64,
) -> sqlx::Result<Vec<JobSummary>> {
    // Both orders are ranges over an index of the execution's jobs
    // ((execution_id, id) or (execution_id, accuracy key, id)), so a deep
    // page costs what the first does.
    let (keyset, order) = if f.by_accuracy {
        (
            "(coalesce(j.accuracy, 2::real), j.id) > ($12::real, $3)",
            "coalesce(j.accuracy, 2::real), j.id",
        )
    } else {
        ("j.id > $3", "j.id")
    };
    let sql = format!(
        "{SELECT}
         where j.execution_id = $1 and r.batch_seq = (select seq from batches where id = $2)
           and {keyset}
           and ($4::text is null or j.state = $4)
           -- One verdict (the usual tab) as an equality, so the
           -- (execution_id, verdict, id) index gives the range and the
           -- order; `= any` over one value made the planner fetch and
           -- sort all of a deep cursor's rows (380 ms at 1M jobs).
           and ($5::text[] is null or (cardinality($5) = 1 and j.verdict = $5[1])
                or (cardinality($5) > 1 and j.verdict = any($5)))
           and ($6::boolean is null or (j.field_results is not null and j.verdict <> 'no_ground_truth') = $6)
           and ($7::float8 is null or j.accuracy >= $7)
           and ($8::float8 is null or j.accuracy <= $8)
           and ($9::text is null or r.site_url ilike $9 or j.extracted::text ilike $9)
           and ($11::text is null or (j.field_results -> $11 ->> 'pass') = 'false')
         order by {order} limit $10"
    );
    // Ids start at 1 and accuracies at 0: the first page is the one after
    // (−1, 0), so the condition stays a range the planner can use.
    let (key, id) = match after {
        None => (-1.0, 0),
        Some(After::Id(id)) => (-1.0, id),
        Some(After::Accuracy(key, id)) => (key, id),
    };
    // Planned for its values every time (an unnamed statement): only then
    // does the planner fold the filters that are not set away and see one
    // verdict as an equality (a cached generic plan keeps every branch).
    let mut q = sqlx::query_as::<_, JobRow>(&sql)
        .persistent(false)
        .bind(execution_id)
        .bind(batch_id)
        .bind(id)
        .bind(f.state.map(JobState::as_str))
        .bind(
            f.verdicts
                .as_ref()
                .map(|vs| vs.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        )
        .bind(f.has_ground_truth)
        .bind(f.accuracy_min)
        .bind(f.accuracy_max)
        .bind(f.pattern.as_deref())
        .bind(limit)
        .bind(f.failed_field.as_deref());
    if f.by_accuracy {
        q = q.bind(key);
    }
    let rows = q.fetch_all(db).await?;
    Ok(rows.into_iter().map(JobRow::into_model).collect())
}

/// The organization a job belongs to, to check the caller's access.
pub async fn fetch_job_org_id(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from jobs where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One job of the organization with its row's current expected values.
pub async fn fetch_job(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: i64,
) -> sqlx::Result<Option<JobSummary>> {
    let row: Option<JobRow> =
        sqlx::query_as(&format!("{SELECT} where j.id = $1 and j.org_id = $2"))
            .bind(id)
            .bind(org_id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(JobRow::into_model))
}

/// Where a job is and what it read: its organization's slug, its batch,
/// its row's inputs and its raw output.
#[derive(sqlx::FromRow)]
pub struct JobPlace {
    pub slug: String,
    pub project_id: Uuid,
    pub project_name: String,
    pub mode: crate::model::ExecutionMode,
    pub instruction_version: i32,
    pub created_at: DateTime<Utc>,
    pub batch_id: Uuid,
    pub batch_name: String,
    pub inputs: Json<Map<String, Value>>,
    pub raw_output: Option<String>,
    pub seq: i64,
    pub agent: crate::model::AgentKind,
}

/// Where a job is (see [`JobPlace`]).
pub async fn fetch_job_place(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<JobPlace> {
    sqlx::query_as(
        "select o.slug, p.id as project_id, p.name as project_name, e.mode,
                e.instruction_version, e.created_at,
                b.id as batch_id, b.name as batch_name, r.inputs, j.raw_output, b.seq, e.agent
         from jobs j join executions e on e.id = j.execution_id
         join organizations o on o.id = e.org_id
         join projects p on p.id = e.project_id
         join batches b on b.id = e.batch_id
         join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index
         where j.id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    n: i32,
    worker: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
    error_class: Option<String>,
    error: Option<String>,
    duration_ms: Option<i32>,
    cost_micros: i64,
    provider: Option<String>,
    model: Option<String>,
    input_tokens: i32,
    output_tokens: i32,
    log: Json<Value>,
    has_screenshot: bool,
    has_page: bool,
}

/// A job's attempts with their logs, first first.
pub async fn attempts(db: impl PgExecutor<'_>, job_id: i64) -> sqlx::Result<Vec<AttemptView>> {
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "select a.id, a.n, a.worker, a.started_at, a.finished_at, a.outcome, a.error_class,
                a.error, a.duration_ms, a.cost_micros, a.provider, a.model, a.input_tokens,
                a.output_tokens, a.log,
                exists (select 1 from attempt_screenshots s where s.job_id = a.job_id and s.n = a.n)
                    as has_screenshot,
                exists (select 1 from attempt_pages p where p.job_id = a.job_id and p.n = a.n)
                    as has_page
         from attempts a where a.job_id = $1 order by a.n",
    )
    .bind(job_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|a| AttemptView {
            screenshot_url: a
                .has_screenshot
                .then(|| format!("/api/v1/attempts/{}/screenshot", a.id)),
            page_url: a
                .has_page
                .then(|| format!("/api/v1/attempts/{}/page", a.id)),
            id: a.id,
            n: a.n,
            worker: a.worker,
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome,
            error_class: a.error_class,
            error: a.error,
            duration_ms: a.duration_ms,
            cost_micros: a.cost_micros,
            cost: a.cost_micros as f64 / 1_000_000.0,
            provider: a.provider,
            model: a.model,
            input_tokens: a.input_tokens,
            output_tokens: a.output_tokens,
            log: a.log.0,
        })
        .collect())
}

/// The jobs just before and after `id` in its execution's run order.
pub async fn neighbours(
    db: impl PgExecutor<'_>,
    execution_id: Uuid,
    id: i64,
) -> sqlx::Result<(Option<i64>, Option<i64>)> {
    sqlx::query_as(
        "select (select max(id) from jobs where execution_id = $1 and id < $2),
                (select min(id) from jobs where execution_id = $1 and id > $2)",
    )
    .bind(execution_id)
    .bind(id)
    .fetch_one(db)
    .await
}
