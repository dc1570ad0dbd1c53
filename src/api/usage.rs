//! Usage and the monthly budget for the browser.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{Budget, UsageReport};

/// The usage report; `from`/`to` as YYYY-MM-DD, `group_by` as in REST.
#[server(prefix = "/rpc", endpoint = "get_usage")]
pub async fn get_usage(
    org: String,
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
) -> Result<UsageReport, AppError> {
    use crate::server::service::{orgs, usage};
    let (state, actor) = crate::server::rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let (from, to) = usage::parse_period(
        from.as_deref(),
        to.as_deref(),
        chrono::Utc::now().date_naive(),
    )?;
    let group = usage::parse_group(group_by.as_deref())?;
    usage::report(&state.db, &ctx, from, to, group).await
}

#[server(prefix = "/rpc", endpoint = "get_budget")]
pub async fn get_budget(org: String) -> Result<Budget, AppError> {
    use crate::server::service::{orgs, usage};
    let (state, actor) = crate::server::rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    usage::budget(&state.db, &ctx).await
}

/// Sets the budget from the form: an empty amount removes it; the hard
/// stop is a checkbox (present when ticked).
#[server(prefix = "/rpc", endpoint = "set_budget")]
pub async fn set_budget(
    org: String,
    monthly: String,
    hard_stop: Option<String>,
) -> Result<Budget, AppError> {
    use crate::server::service::{orgs, usage};
    let (state, actor) = crate::server::rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let monthly = usage::parse_money(&monthly, "monthly")?;
    usage::set_budget(&state.db, &ctx, monthly, hard_stop.is_some()).await
}
