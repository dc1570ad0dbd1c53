//! Usage (F20) and the monthly budget.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::error::AppError;
use crate::model::{Budget, UsageReport};
use crate::server::http::{Caller, Json, Query};
use crate::server::service::{orgs, usage};
use crate::server::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (UTC); default the first of this month.
    pub from: Option<String>,
    /// Last day, included; default today. At most 400 days in all.
    pub to: Option<String>,
    /// day (default), month, project, execution, agent or model.
    pub group_by: Option<String>,
}

async fn read(
    state: &AppState,
    actor: crate::server::auth::rbac::Actor,
    org: &str,
    q: &UsageQuery,
) -> Result<UsageReport, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, org).await?;
    let (from, to) =
        usage::parse_period(q.from.as_deref(), q.to.as_deref(), Utc::now().date_naive())?;
    let group = usage::parse_group(q.group_by.as_deref())?;
    usage::report(&state.db, &ctx, from, to, group).await
}

/// `GET /orgs/{org}/usage?from=&to=&group_by=`
pub async fn report(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Query(q): Query<UsageQuery>,
) -> Result<Json<UsageReport>, AppError> {
    Ok(Json(read(&state, actor, &org, &q).await?))
}

/// `GET /orgs/{org}/usage/export`: the same report as CSV.
pub async fn export(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Query(q): Query<UsageQuery>,
) -> Result<Response, AppError> {
    let r = read(&state, actor, &org, &q).await?;
    let name = format!("usage-{}-{}-by-{}.csv", r.from, r.to, r.group_by.as_str());
    let mut res = usage::report_csv(&r).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// `GET /orgs/{org}/budget`
pub async fn get_budget(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Budget>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(Json(usage::budget(&state.db, &ctx).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    /// Money a month, as a number or text (`250`, `"1,200.50"`); `null`
    /// removes the budget.
    pub monthly: Option<serde_json::Value>,
    /// Pause running executions and refuse new ones at 100% (default false).
    #[serde(default)]
    pub hard_stop: bool,
}

/// `PUT /orgs/{org}/budget {monthly, hard_stop}` (owners).
pub async fn put_budget(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<BudgetBody>,
) -> Result<Json<Budget>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let monthly = match body.monthly {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => usage::parse_money(&s, "monthly")?,
        Some(serde_json::Value::Number(n)) => usage::parse_money(&n.to_string(), "monthly")?,
        Some(_) => {
            return Err(AppError::field(
                "monthly",
                "Give the budget as a number, e.g. 250.",
            ))
        }
    };
    Ok(Json(
        usage::set_budget(&state.db, &ctx, monthly, body.hard_stop).await?,
    ))
}
