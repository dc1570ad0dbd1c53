//! An execution's jobs: the filtered, keyset-paged list and one job with
//! its attempts, logs, per-field results and a suggested next step.

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{AttemptView, JobDetail, JobSummary, Page};
use crate::server::auth::rbac::{require, Actor, Permission};
use crate::server::service::paging;

/// The list's filters (SPEC's query parameters).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
pub struct JobFilter {
    pub status: Option<String>,
    pub evaluation: Option<String>,
    pub has_ground_truth: Option<bool>,
    pub accuracy_min: Option<f64>,
    pub accuracy_max: Option<f64>,
    pub q: Option<String>,
    /// Jobs where this output field was judged and failed.
    pub field: Option<String>,
    /// `id` (run order, the default) or `accuracy` (lowest first, jobs
    /// without an accuracy last).
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// Where a page starts: after a job in the list's order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum After {
    Id(i64),
    /// The sort key (accuracy, 2 when none) and id of the last job.
    Accuracy(f32, i64),
}

/// The accuracy sort's key for jobs without one: after every share.
const NO_ACCURACY: f32 = 2.0;

const STATES: &[&str] = &["queued", "running", "succeeded", "failed", "cancelled"];
const VERDICTS: &[&str] = &["pass", "partial", "fail", "no_ground_truth", "error"];

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    execution_id: Uuid,
    row_index: i32,
    site_url: String,
    state: String,
    verdict: Option<String>,
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

fn summary(r: Row) -> JobSummary {
    JobSummary {
        id: r.id,
        execution_id: r.execution_id,
        row_index: r.row_index,
        url: r.site_url,
        state: r.state,
        verdict: r.verdict,
        accuracy: r.accuracy.map(f64::from),
        attempt: r.attempt,
        error_class: r.error_class,
        error: r.error,
        extracted: r.extracted.map(|j| j.0).unwrap_or_default(),
        field_results: r.field_results.map(|j| j.0).unwrap_or_default(),
        row_id: crate::model::row_id(r.batch_seq, r.row_index),
        expected: r.ground_truth.0,
        gt_version: r.gt_version,
    }
}

const SELECT: &str = "select j.id, j.execution_id, j.row_index, r.site_url, j.state, j.verdict,
        j.accuracy, j.attempt, j.error_class, j.error, j.extracted, j.field_results,
        b.seq as batch_seq, r.ground_truth, r.gt_version
    from jobs j
    join executions e on e.id = j.execution_id
    join batches b on b.id = e.batch_id
    join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index";

/// A filter whose values were checked, ready to bind.
pub(crate) struct CheckedFilter {
    status: Option<String>,
    evaluation: Option<String>,
    has_ground_truth: Option<bool>,
    accuracy_min: Option<f64>,
    accuracy_max: Option<f64>,
    /// An ILIKE pattern for `q`.
    pattern: Option<String>,
    /// Jobs where this field was judged and failed.
    failed_field: Option<String>,
    by_accuracy: bool,
}

impl CheckedFilter {
    /// The filter as SQL conditions (each starting with ` and `) with its
    /// values as literals, for queries that can't take parameters (an
    /// export is also run as `COPY (…)`). The same conditions as
    /// [`query`]'s; a test checks a filtered export against the list.
    pub(crate) fn sql_conditions(&self) -> String {
        use super::exports::literal;
        let mut sql = String::new();
        if let Some(s) = &self.status {
            sql += &format!(" and j.state = {}", literal(s));
        }
        if let Some(v) = &self.evaluation {
            sql += &format!(" and j.verdict = {}", literal(v));
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

/// Checks a filter's values, naming the parameter that is wrong.
pub(crate) fn check_filter(filter: &JobFilter) -> Result<CheckedFilter, AppError> {
    if let Some(s) = filter.status.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(AppError::field(
            "status",
            format!("{s:?} is not a state; use {}.", STATES.join(", ")),
        ));
    }
    if let Some(v) = filter
        .evaluation
        .as_deref()
        .filter(|v| !VERDICTS.contains(v))
    {
        return Err(AppError::field(
            "evaluation",
            format!("{v:?} is not a verdict; use {}.", VERDICTS.join(", ")),
        ));
    }
    for (name, value) in [
        ("accuracy_min", filter.accuracy_min),
        ("accuracy_max", filter.accuracy_max),
    ] {
        if value.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
            return Err(AppError::field(name, "Use a share from 0 to 1, e.g. 0.75."));
        }
    }
    let text = |v: &Option<String>, name: &str| -> Result<Option<String>, AppError> {
        match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) if v.contains('\0') || v.chars().count() > 500 => {
                Err(AppError::field(name, "Use at most 500 characters of text."))
            }
            other => Ok(other.map(str::to_string)),
        }
    };
    let pattern = text(&filter.q, "q")?.map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let by_accuracy = match filter.sort.as_deref().map(str::trim) {
        None | Some("" | "id") => false,
        Some("accuracy") => true,
        Some(other) => {
            return Err(AppError::field(
                "sort",
                format!("{other:?} is not a sort; use id or accuracy."),
            ))
        }
    };
    Ok(CheckedFilter {
        by_accuracy,
        status: filter.status.clone(),
        evaluation: filter.evaluation.clone(),
        has_ground_truth: filter.has_ground_truth,
        accuracy_min: filter.accuracy_min,
        accuracy_max: filter.accuracy_max,
        pattern,
        failed_field: text(&filter.field, "field")?,
    })
}

/// The jobs of an execution (of `batch_id`) that match, in the filter's
/// order after `after`, at most `limit`.
pub(crate) async fn query(
    db: impl sqlx::PgExecutor<'_>,
    execution_id: Uuid,
    batch_id: Uuid,
    f: &CheckedFilter,
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
           and ($5::text is null or j.verdict = $5)
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
    let mut q = sqlx::query_as::<_, Row>(&sql)
        .bind(execution_id)
        .bind(batch_id)
        .bind(id)
        .bind(f.status.as_deref())
        .bind(f.evaluation.as_deref())
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
    Ok(rows.into_iter().map(summary).collect())
}

/// A page's cursor: the id, or for the accuracy order `a<key>_<id>` (the
/// key's shortest exact form, so the next page starts exactly after).
fn cursor_of(j: &JobSummary, by_accuracy: bool) -> String {
    if by_accuracy {
        let key = j.accuracy.map_or(NO_ACCURACY, |a| a as f32);
        format!("a{key}_{}", j.id)
    } else {
        j.id.to_string()
    }
}

fn parse_cursor(raw: &str, by_accuracy: bool) -> Result<After, AppError> {
    let bad = || AppError::field("cursor", "This cursor is not one the API gave out.");
    let id = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
    if by_accuracy {
        let (key, rest) = raw
            .strip_prefix('a')
            .and_then(|r| r.split_once('_'))
            .ok_or_else(bad)?;
        let key: f32 = key
            .parse()
            .ok()
            .filter(|k: &f32| k.is_finite())
            .ok_or_else(bad)?;
        Ok(After::Accuracy(key, id(rest)?))
    } else {
        Ok(After::Id(id(raw)?))
    }
}

pub async fn list(
    db: &PgPool,
    actor: &Actor,
    execution_id: Uuid,
    filter: JobFilter,
) -> Result<Page<JobSummary>, AppError> {
    // The execution's checks: 401, or 404 across tenants (without
    // counting its jobs: this is every page of the list).
    let batch_id = super::executions::batch_of(db, actor, execution_id).await?;
    let limit = paging::parse_limit(filter.limit, 50, 200)?;
    let checked = check_filter(&filter)?;
    let after = match filter.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(parse_cursor(c, checked.by_accuracy)?),
    };
    let items = query(db, execution_id, batch_id, &checked, after, limit + 1).await?;
    let by_accuracy = checked.by_accuracy;
    Ok(paging::page(items, limit, |j| cursor_of(j, by_accuracy)))
}

pub async fn get(db: &PgPool, actor: &Actor, id: i64) -> Result<JobDetail, AppError> {
    let not_found = || AppError::NotFound("Job".into());
    let org_id: Uuid = sqlx::query_scalar("select org_id from jobs where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    let row: Row = sqlx::query_as(&format!("{SELECT} where j.id = $1 and j.org_id = $2"))
        .bind(id)
        .bind(org_id)
        .fetch_optional(db)
        .await?
        .ok_or_else(not_found)?;
    // The row's values and version came with the job (`SELECT`).
    #[derive(sqlx::FromRow)]
    struct Place {
        slug: String,
        batch_id: Uuid,
        batch_name: String,
        inputs: Json<Map<String, Value>>,
        raw_output: Option<String>,
        seq: i64,
    }
    let place: Place = sqlx::query_as(
        "select o.slug, b.id as batch_id, b.name as batch_name, r.inputs, j.raw_output, b.seq
         from jobs j join executions e on e.id = j.execution_id
         join organizations o on o.id = e.org_id
         join batches b on b.id = e.batch_id
         join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index
         where j.id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    #[derive(sqlx::FromRow)]
    struct AttemptRow {
        n: i32,
        worker: String,
        started_at: chrono::DateTime<chrono::Utc>,
        finished_at: Option<chrono::DateTime<chrono::Utc>>,
        outcome: Option<String>,
        error_class: Option<String>,
        error: Option<String>,
        duration_ms: Option<i32>,
        cost_micros: i64,
        log: Json<Value>,
    }
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "select n, worker, started_at, finished_at, outcome, error_class, error, duration_ms,
                cost_micros, log
         from attempts where job_id = $1 order by n",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    let job = summary(row);
    let suggestion = suggest(&job);
    let history = super::ground_truth::read_history(db, org_id, place.seq, job.row_index).await?;
    Ok(JobDetail {
        row_id: job.row_id,
        gt_version: job.gt_version,
        can_edit_ground_truth: require(&ctx, Permission::EditGroundTruth).is_ok(),
        org_slug: place.slug,
        batch_id: place.batch_id,
        batch_name: place.batch_name,
        inputs: place.inputs.0,
        expected: job.expected.clone(),
        history,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                n: a.n,
                worker: a.worker,
                started_at: a.started_at,
                finished_at: a.finished_at,
                outcome: a.outcome,
                error_class: a.error_class,
                error: a.error,
                duration_ms: a.duration_ms,
                cost_micros: a.cost_micros,
                log: a.log.0,
            })
            .collect(),
        raw_output: place.raw_output,
        suggestion,
        job,
    })
}

/// What to try next for a job that went wrong.
fn suggest(job: &JobSummary) -> Option<String> {
    if job.state == "failed" {
        let hint = match job.error_class.as_deref().unwrap_or("") {
            "timeout" => "The site was too slow: raise the project's timeout, or lower concurrency if the site slows down under load.",
            "http_4xx" | "not_found" => "The site refused or doesn't have the page: check the URL in the batch.",
            "http_429" => "The site is rate-limiting: lower the concurrency and rerun the failed jobs.",
            "http_5xx" | "connection" | "dns" | "lease_expired" => "The site or the network failed: rerun the failed jobs later.",
            "too_large" => "The page is larger than 5 MB: the http agent can't read it; try a remote agent.",
            "private_target" => "The address is on a private network: only allowed when MINO_ALLOW_PRIVATE_TARGETS=1.",
            "agent_rejected" | "agent_protocol" | "agent_error" => "The remote agent service failed: check its logs and the protocol in the README.",
            _ => "Rerun the failed jobs; if it fails again, open the attempt log below.",
        };
        return Some(hint.to_string());
    }
    let missing: Vec<&str> = job
        .field_results
        .iter()
        .filter(|(_, r)| r["pass"] == false && r["extracted"].is_null())
        .map(|(k, _)| k.as_str())
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "Nothing was found for {}: edit the field's extraction rule in the project's settings.",
            missing.join(", ")
        ));
    }
    if job
        .verdict
        .as_deref()
        .is_some_and(|v| v == "partial" || v == "fail")
    {
        return Some("A value differs from the expected one: if the page is right, fix the expected value; otherwise refine the field's rule or the instructions.".into());
    }
    None
}
