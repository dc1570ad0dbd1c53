//! Organizations, members, invitations and API keys for the browser.

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{ApiKey, CreatedApiKey, Invitation, InvitationPreview, Member, Organization};

#[cfg(feature = "ssr")]
use crate::server::{auth::rbac::OrgCtx, state::AppState};

/// The caller inside `org` (id or slug), or 401/404.
#[cfg(feature = "ssr")]
async fn org_ctx(org: &str) -> Result<(AppState, OrgCtx), AppError> {
    let (state, actor) = crate::server::rpc::user().await?;
    let ctx = crate::server::service::orgs::org_ctx(&state.db, &actor, org).await?;
    Ok((state, ctx))
}

#[server(prefix = "/rpc", endpoint = "create_org")]
pub async fn create_org(name: String) -> Result<Organization, AppError> {
    use crate::server::{rpc, service::orgs};
    let (state, actor) = rpc::user().await?;
    let org = orgs::create(&state.db, &actor, &name).await?;
    leptos_axum::redirect(&format!("/o/{}", org.slug));
    Ok(org)
}

#[server(prefix = "/rpc", endpoint = "get_org")]
pub async fn get_org(org: String) -> Result<Organization, AppError> {
    use crate::server::{rpc, service::orgs};
    let (state, ctx) = org_ctx(&org).await?;
    let org = orgs::get(&state.db, &ctx).await?;
    crate::server::auth::session::remember_org(&rpc::session().await?, &org.slug).await?;
    Ok(org)
}

#[server(prefix = "/rpc", endpoint = "rename_org")]
pub async fn rename_org(org: String, name: String) -> Result<Organization, AppError> {
    use crate::server::service::orgs;
    let (state, ctx) = org_ctx(&org).await?;
    orgs::rename(&state.db, &ctx, &name).await
}

/// How many days the organization keeps attempt screenshots and kept
/// pages (admins). From a form, so the number arrives as text.
#[server(prefix = "/rpc", endpoint = "set_retention")]
pub async fn set_retention(org: String, retention_days: String) -> Result<Organization, AppError> {
    use crate::server::service::orgs;
    let (state, ctx) = org_ctx(&org).await?;
    let days = retention_days
        .trim()
        .parse::<i32>()
        .map_err(|_| AppError::field("retention_days", "Give a whole number of days, e.g. 30."))?;
    let changes = orgs::OrgChanges {
        name: None,
        retention_days: Some(days),
    };
    orgs::update(&state.db, &ctx, changes).await
}

/// Plan limits (owners). The numbers come from a form, so they arrive as
/// text and a bad one is a field error.
#[server(prefix = "/rpc", endpoint = "update_limits")]
pub async fn update_limits(
    org: String,
    max_projects: String,
    max_executions_per_month: String,
    api_requests_per_minute: Option<String>,
    key_requests_per_minute: Option<String>,
    max_concurrency: Option<String>,
) -> Result<Organization, AppError> {
    use crate::server::service::orgs;
    let (state, ctx) = org_ctx(&org).await?;
    let number = |raw: &str, field: &str| {
        raw.trim()
            .replace([',', '_', ' '], "")
            .parse::<i32>()
            .map_err(|_| AppError::field(field, "Enter a whole number from 0 to 1,000,000."))
    };
    let projects = number(&max_projects, "max_projects");
    let executions = number(&max_executions_per_month, "max_executions_per_month");
    let optional = |raw: Option<String>, field: &str| {
        raw.filter(|r| !r.trim().is_empty())
            .map(|r| number(&r, field))
            .transpose()
    };
    let per_org = optional(api_requests_per_minute, "api_requests_per_minute");
    let per_key = optional(key_requests_per_minute, "key_requests_per_minute");
    let concurrency = optional(max_concurrency, "max_concurrency");
    crate::server::service::collect_fields([
        projects.as_ref().map(|_| ()).map_err(Clone::clone),
        executions.as_ref().map(|_| ()).map_err(Clone::clone),
        per_org.as_ref().map(|_| ()).map_err(Clone::clone),
        per_key.as_ref().map(|_| ()).map_err(Clone::clone),
        concurrency.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    orgs::update_limits(
        &state.db,
        &ctx,
        projects?,
        executions?,
        (per_org?, per_key?),
        concurrency?,
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "delete_org")]
pub async fn delete_org(org: String, confirm: String) -> Result<(), AppError> {
    use crate::server::service::orgs;
    let (state, ctx) = org_ctx(&org).await?;
    orgs::delete(&state.db, &ctx, Some(&confirm)).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "list_members")]
pub async fn list_members(org: String) -> Result<Vec<Member>, AppError> {
    use crate::server::service::team;
    let (state, ctx) = org_ctx(&org).await?;
    team::list_members(&state.db, &ctx).await
}

#[server(prefix = "/rpc", endpoint = "change_role")]
pub async fn change_role(org: String, user_id: Uuid, role: String) -> Result<Member, AppError> {
    use crate::server::service::team;
    let (state, ctx) = org_ctx(&org).await?;
    team::change_role(&state.db, &ctx, user_id, team::parse_role(&role)?).await
}

/// Removes a member; with the caller's own id, leaves the organization.
#[server(prefix = "/rpc", endpoint = "remove_member")]
pub async fn remove_member(org: String, user_id: Uuid) -> Result<(), AppError> {
    use crate::server::service::team;
    let (state, ctx) = org_ctx(&org).await?;
    let leaving = ctx.actor().user_id() == Some(user_id);
    team::remove_member(&state.db, &ctx, user_id).await?;
    if leaving {
        leptos_axum::redirect("/");
    }
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "invite_member")]
pub async fn invite_member(
    org: String,
    email: String,
    role: String,
) -> Result<Invitation, AppError> {
    use crate::server::service::team;
    let (state, ctx) = org_ctx(&org).await?;
    let role = team::parse_role(&role)?;
    let mut inv = team::invite(&state.db, &ctx, &email, role, &state.config.public_url).await?;
    team::email_invitation(state.mailer.as_deref(), &state.db, &ctx, &mut inv).await?;
    Ok(inv)
}

#[server(prefix = "/rpc", endpoint = "list_invitations")]
pub async fn list_invitations(org: String) -> Result<Vec<Invitation>, AppError> {
    use crate::server::service::team;
    let (state, ctx) = org_ctx(&org).await?;
    team::list_invitations(&state.db, &ctx).await
}

#[server(prefix = "/rpc", endpoint = "revoke_invitation")]
pub async fn revoke_invitation(org: String, id: Uuid) -> Result<(), AppError> {
    use crate::server::service::team;
    let (state, ctx) = org_ctx(&org).await?;
    team::revoke_invitation(&state.db, &ctx, id).await
}

#[server(prefix = "/rpc", endpoint = "get_invitation")]
pub async fn get_invitation(token: String) -> Result<InvitationPreview, AppError> {
    use crate::server::{rpc, service::team};
    let state = rpc::state()?;
    team::preview_invitation(&state.db, &token).await
}

#[server(prefix = "/rpc", endpoint = "accept_invitation")]
pub async fn accept_invitation(token: String) -> Result<Organization, AppError> {
    use crate::server::{rpc, service::team};
    let (state, actor) = rpc::user().await?;
    let org = team::accept_invitation(&state.db, &actor, &token).await?;
    leptos_axum::redirect(&format!("/o/{}", org.slug));
    Ok(org)
}

#[server(prefix = "/rpc", endpoint = "list_api_keys")]
pub async fn list_api_keys(org: String) -> Result<Vec<ApiKey>, AppError> {
    use crate::server::service::api_keys;
    let (state, ctx) = org_ctx(&org).await?;
    api_keys::list(&state.db, &ctx).await
}

/// Scopes come as checkboxes (present = checked); `expires_in_days` empty
/// means the key never expires.
#[server(prefix = "/rpc", endpoint = "create_api_key")]
pub async fn create_api_key(
    org: String,
    name: String,
    scope_read: Option<String>,
    scope_write: Option<String>,
    scope_execute: Option<String>,
    scope_admin: Option<String>,
    expires_in_days: Option<String>,
) -> Result<CreatedApiKey, AppError> {
    use crate::server::service::api_keys;
    let (state, ctx) = org_ctx(&org).await?;
    let scopes = [
        (scope_read, "read"),
        (scope_write, "write"),
        (scope_execute, "execute"),
        (scope_admin, "admin"),
    ]
    .into_iter()
    .filter(|(v, _)| v.is_some())
    .map(|(_, s)| s.to_string())
    .collect();
    let expires_at = match expires_in_days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => match d.parse::<i64>() {
            Ok(days) if (1..=3650).contains(&days) => {
                Some(chrono::Utc::now() + chrono::Duration::days(days))
            }
            _ => {
                return Err(AppError::field(
                    "expires_in_days",
                    "Enter a number of days from 1 to 3650, or leave it empty.",
                ))
            }
        },
    };
    api_keys::create(
        &state.db,
        &ctx,
        api_keys::NewApiKey {
            name,
            scopes,
            expires_at,
        },
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: Uuid) -> Result<(), AppError> {
    use crate::server::{rpc, service::api_keys};
    let (state, actor) = rpc::user().await?;
    api_keys::revoke(&state.db, &actor, id).await
}

/// The audit log, newest first, filtered as on the page: `actor` a user or
/// key id, `action` exact or a prefix ending in `.`, `since`/`until` dates
/// (YYYY-MM-DD, whole days in UTC).
#[server(prefix = "/rpc", endpoint = "list_audit_log")]
pub async fn list_audit_log(
    org: String,
    actor: Option<String>,
    action: Option<String>,
    resource_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
) -> Result<crate::model::Page<crate::model::AuditEntry>, AppError> {
    use crate::server::service::audit;
    let (state, ctx) = org_ctx(&org).await?;
    let filter = audit::AuditFilter {
        actor: actor.filter(|a| !a.is_empty()),
        action,
        resource_type,
        resource_id: None,
        since: audit::parse_day(since.as_deref(), "since", 0)?,
        until: audit::parse_day(until.as_deref(), "until", 1)?,
        cursor: cursor.filter(|c| !c.is_empty()),
        limit: Some(50),
    };
    audit::list(&state.db, &ctx, &filter).await
}
