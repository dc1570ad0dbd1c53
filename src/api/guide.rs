//! The first-run guide for the browser.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::Guide;

#[server(prefix = "/rpc", endpoint = "get_guide")]
pub async fn get_guide(org: String) -> Result<Guide, AppError> {
    use crate::server::service::{guide, orgs};
    let (state, actor) = crate::server::rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    guide::progress(&state.db, &ctx).await
}

/// Puts the guide away (`dismissed` true) or brings it back.
#[server(prefix = "/rpc", endpoint = "set_guide_dismissed")]
pub async fn set_guide_dismissed(org: String, dismissed: bool) -> Result<Guide, AppError> {
    use crate::server::service::{guide, orgs};
    let (state, actor) = crate::server::rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    guide::set_dismissed(&state.db, &ctx, dismissed).await
}
