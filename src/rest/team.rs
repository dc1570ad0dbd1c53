//! `/api/v1/orgs/{org}/members` and invitations: list members, change a
//! role, remove someone; invite, list and revoke invitations; preview and
//! accept one by its token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{page, parse_id};
use crate::error::AppError;
use crate::model::{Invitation, InvitationPreview, Member, Organization, Page};
use crate::server::http::{Caller, Json};
use crate::server::service::{orgs, team};
use crate::server::state::AppState;

pub async fn list_members(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Page<Member>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(page(team::list_members(&state.db, &ctx).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RoleBody {
    role: String,
}

pub async fn change_role(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((org, user)): Path<(String, String)>,
    Json(body): Json<RoleBody>,
) -> Result<Json<Member>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let user = parse_id(&user, "Member")?;
    let role = team::parse_role(&body.role)?;
    Ok(Json(team::change_role(&state.db, &ctx, user, role).await?))
}

pub async fn remove_member(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let user = parse_id(&user, "Member")?;
    team::remove_member(&state.db, &ctx, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct InviteBody {
    email: String,
    role: String,
}

pub async fn invite(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<InviteBody>,
) -> Result<(StatusCode, Json<Invitation>), AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let role = team::parse_role(&body.role)?;
    let mut inv =
        team::invite(&state.db, &ctx, &body.email, role, &state.config.public_url).await?;
    team::email_invitation(state.mailer.as_deref(), &state.db, &ctx, &mut inv).await?;
    Ok((StatusCode::CREATED, Json(inv)))
}

pub async fn list_invitations(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<Json<Page<Invitation>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(page(team::list_invitations(&state.db, &ctx).await?))
}

pub async fn revoke_invitation(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let id = parse_id(&id, "Pending invitation")?;
    team::revoke_invitation(&state.db, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Public: the token in the link is the credential.
pub async fn preview_invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<InvitationPreview>, AppError> {
    Ok(Json(team::preview_invitation(&state.db, &token).await?))
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(token): Path<String>,
) -> Result<Json<Organization>, AppError> {
    Ok(Json(
        team::accept_invitation(&state.db, &actor, &token).await?,
    ))
}
