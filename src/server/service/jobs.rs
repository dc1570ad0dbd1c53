//! An execution's jobs: the filtered, keyset-paged list and one job with
//! its attempts, logs, per-field results and a suggested next step.

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{JobDetail, JobState, JobSummary, Page, Verdict};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db::{self, results::After, results::JobQuery, results::NO_ACCURACY};
use crate::server::service::paging;

/// The list's filters (SPEC's query parameters).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
pub struct JobFilter {
    pub status: Option<String>,
    /// A verdict (pass, partial, fail, no_ground_truth, error), several
    /// separated by commas, or `wrong` (partial and fail).
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

/// Checks a filter's values, naming the parameter that is wrong.
pub(crate) fn check_filter(filter: &JobFilter) -> Result<JobQuery, AppError> {
    let words = |all: &[&str]| all.join(", ");
    let state = filter
        .status
        .as_deref()
        .map(|s| {
            JobState::parse(s).ok_or_else(|| {
                let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                AppError::field(
                    "status",
                    format!("{s:?} is not a state; use {}.", words(&all)),
                )
            })
        })
        .transpose()?;
    // One verdict, several separated by commas, or `wrong` (partial and
    // fail: the jobs the run page counts "with wrong fields").
    let verdicts = filter
        .evaluation
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            if v == "wrong" {
                return Ok(vec![Verdict::Partial, Verdict::Fail]);
            }
            v.split(',')
                .map(|one| {
                    Verdict::parse(one.trim()).ok_or_else(|| {
                        let all: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
                        AppError::field(
                            "evaluation",
                            format!(
                                "{one:?} is not a verdict; use {}, wrong (partial and fail), or several separated by commas.",
                                words(&all)
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
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
    Ok(JobQuery {
        by_accuracy,
        state,
        verdicts,
        has_ground_truth: filter.has_ground_truth,
        accuracy_min: filter.accuracy_min,
        accuracy_max: filter.accuracy_max,
        pattern,
        failed_field: text(&filter.field, "field")?,
    })
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

/// An execution's jobs, filtered and a page at a time.
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
    let items = db::results::jobs(db, execution_id, batch_id, &checked, after, limit + 1).await?;
    let by_accuracy = checked.by_accuracy;
    Ok(paging::page(items, limit, |j| cursor_of(j, by_accuracy)))
}

/// Every hour, screenshots and kept pages older than their organization's
/// retention (`retention_days`, 30 unless its admins change it) are
/// removed. Any number of processes may run it: each removes what is due,
/// none twice.
pub fn spawn_screenshot_cleanup(db: PgPool) {
    tokio::spawn(async move {
        loop {
            match db::screenshots::delete_expired(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired screenshots removed"),
                Err(e) => tracing::warn!(error = %e, "screenshot cleanup failed"),
            }
            match db::pages::delete_expired(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired kept pages removed"),
                Err(e) => tracing::warn!(error = %e, "kept page cleanup failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}

/// The JPEG an attempt (by its id) ended on: 404 without one, or across
/// organizations.
pub async fn screenshot(db: &PgPool, actor: &Actor, attempt_id: i64) -> Result<Vec<u8>, AppError> {
    let not_found = || AppError::NotFound("Screenshot".into());
    let org_id = db::screenshots::fetch_org_id(db, attempt_id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    db::screenshots::fetch(db, org_id, attempt_id)
        .await?
        .ok_or_else(not_found)
}

/// The page an attempt (by its id) read, as kept, with a `<base>` so its
/// relative addresses resolve against where it was read: 404 without one,
/// or across organizations.
pub async fn kept_page(db: &PgPool, actor: &Actor, attempt_id: i64) -> Result<String, AppError> {
    let not_found = || AppError::NotFound("Page".into());
    let org_id = db::screenshots::fetch_org_id(db, attempt_id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    let stored = db::pages::fetch(db, org_id, attempt_id)
        .await?
        .ok_or_else(not_found)?;
    let html = crate::server::agents::sources::snapshot::gunzip(&stored.html_gz)
        .map_err(|e| AppError::internal("reading a kept page", &e))?;
    Ok(with_base(&html, &stored.url))
}

/// `html` with `<base href=url>` as the first thing in its head.
fn with_base(html: &str, url: &str) -> String {
    let base = format!(
        "<base href=\"{}\">",
        url.replace('&', "&amp;").replace('"', "&quot;")
    );
    let lower = html.to_ascii_lowercase();
    match lower.find("<head") {
        Some(i) => match lower[i..].find('>') {
            Some(j) => {
                let at = i + j + 1;
                format!("{}{base}{}", &html[..at], &html[at..])
            }
            None => format!("{base}{html}"),
        },
        None => format!("{base}{html}"),
    }
}

/// How long a viewer's fetch of a frame keeps frames coming.
const WATCH_SECS: i32 = 5;

/// The latest live frame of a running browser job (None before the first
/// one, or once the job stopped running); fetching it says the caller
/// watches, which is what makes the worker take frames.
pub async fn live_frame(
    db: &PgPool,
    actor: &Actor,
    id: i64,
) -> Result<Option<db::live_frames::Frame>, AppError> {
    let (ctx, job) = job_ctx(db, actor, id).await?;
    if job.state == crate::model::JobState::Running {
        db::live_frames::watch(db, job.execution_id, WATCH_SECS).await?;
    }
    Ok(db::live_frames::latest(db, ctx.org_id(), id).await?)
}

/// The caller inside the job's organization, allowed to see results, and
/// the job with its row's current expected values: 404 across tenants.
async fn job_ctx(db: &PgPool, actor: &Actor, id: i64) -> Result<(OrgCtx, JobSummary), AppError> {
    let not_found = || AppError::NotFound("Job".into());
    let org_id = db::results::fetch_job_org_id(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    let job = db::results::fetch_job(db, org_id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok((ctx, job))
}

/// One job as the job list shows it (no attempts or history).
pub async fn summary(db: &PgPool, actor: &Actor, id: i64) -> Result<JobSummary, AppError> {
    Ok(job_ctx(db, actor, id).await?.1)
}

/// One job with its attempts, logs, raw output, row history and a
/// suggested next step.
pub async fn get(db: &PgPool, actor: &Actor, id: i64) -> Result<JobDetail, AppError> {
    // The row's values and version come with the job.
    let (ctx, job) = job_ctx(db, actor, id).await?;
    let org_id = ctx.org_id();
    let place = db::results::fetch_job_place(db, id).await?;
    let attempts = db::results::attempts(db, id).await?;
    let suggestion = suggest(&job);
    let (previous_job, next_job) = db::results::neighbours(db, job.execution_id, id).await?;
    let history = super::ground_truth::read_history(db, org_id, place.seq, job.row_index).await?;
    Ok(JobDetail {
        row_id: job.row_id,
        gt_version: job.gt_version,
        can_edit_ground_truth: require(&ctx, Permission::EditGroundTruth).is_ok(),
        agent: place.agent,
        org_slug: place.slug,
        project_id: place.project_id,
        project_name: place.project_name,
        execution_mode: place.mode,
        instruction_version: place.instruction_version,
        execution_created_at: place.created_at,
        batch_id: place.batch_id,
        batch_name: place.batch_name,
        inputs: place.inputs.0,
        expected: job.expected.clone(),
        history,
        attempts,
        raw_output: place.raw_output,
        suggestion,
        previous_job,
        next_job,
        job,
    })
}

/// What to try next for a job that went wrong.
fn suggest(job: &JobSummary) -> Option<String> {
    if job.state == JobState::Failed {
        let hint = match job.error_class.as_deref().unwrap_or("") {
            "timeout" => "The site was too slow: raise the project's timeout, or lower concurrency if the site slows down under load.",
            "http_4xx" | "not_found" => "The site refused or doesn't have the page: check the URL in the batch.",
            "http_429" => "The site is rate-limiting: lower the concurrency and rerun the failed jobs.",
            "http_5xx" | "connection" | "dns" | "lease_expired" => "The site or the network failed: rerun the failed jobs later.",
            "too_large" => "The page is larger than 5 MB: the http agent can't read it; try a remote agent.",
            "browser_crashed" => "Chromium crashed or went away during the page: rerun the failed jobs; if it repeats, lower MINO_BROWSER_SLOTS or the concurrency (each page takes 100–300 MB).",
            "browser_unavailable" => "This machine has no Chromium: install it (apt-get install chromium) or set MINO_CHROMIUM.",
            "no_snapshot" => "The run these pages come from kept none for this row: rerun it with the http or browser agent.",
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
    if matches!(job.verdict, Some(Verdict::Partial | Verdict::Fail)) {
        return Some("A value differs from the expected one: if the page is right, fix the expected value; otherwise refine the field's rule or the instructions.".into());
    }
    None
}
