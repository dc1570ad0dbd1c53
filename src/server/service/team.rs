//! Members, roles and invitations. The last owner can't be removed, demoted
//! or leave; only owners can make or unmake owners.

use chrono::{Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use serde_json::json;

use super::audit::{self, Change};
use super::parse_email;
use crate::error::{AppError, FieldError};
use crate::model::{Invitation, InvitationPreview, Member, Organization, Role};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::auth::secret;
use crate::server::db;

/// How long an invitation link stays valid.
pub const INVITATION_TTL_DAYS: i64 = 7;

/// A role from a form or request body; the field error says what's allowed.
pub fn parse_role(raw: &str) -> Result<Role, AppError> {
    Role::parse(raw.trim()).ok_or_else(|| {
        AppError::field(
            "role",
            format!("Unknown role {raw:?}; use viewer, member, admin or owner."),
        )
    })
}

fn member_not_found() -> AppError {
    AppError::NotFound("Member".into())
}

fn last_owner() -> AppError {
    AppError::Conflict(
        "An organization needs at least one owner: make someone else owner first.".into(),
    )
}

/// The organization's members.
pub async fn list_members(db: &PgPool, ctx: &OrgCtx) -> Result<Vec<Member>, AppError> {
    require(ctx, Permission::ViewMembers)?;
    Ok(db::memberships::fetch_members(db, ctx.org_id()).await?)
}

/// Owners can do anything to anyone; admins can't touch owners or make one.
fn check_owner_rules(ctx: &OrgCtx, target: Role, new: Option<Role>) -> Result<(), AppError> {
    let caller_is_owner = ctx.role() == Some(Role::Owner);
    if !caller_is_owner && (target == Role::Owner || new == Some(Role::Owner)) {
        return Err(AppError::forbidden(
            "Only an owner can change an owner or make one.",
        ));
    }
    Ok(())
}

/// Changes a member's role (never leaving the organization without an owner).
pub async fn change_role(
    db: &PgPool,
    ctx: &OrgCtx,
    user_id: Uuid,
    role: Role,
) -> Result<Member, AppError> {
    require(ctx, Permission::ChangeRoles)?;
    let mut tx = db.begin().await?;
    let current = db::memberships::fetch_role_for_update(&mut *tx, ctx.org_id(), user_id)
        .await?
        .ok_or_else(member_not_found)?;
    check_owner_rules(ctx, current, Some(role))?;
    if current == Role::Owner
        && role != Role::Owner
        && db::memberships::count_owners_for_update(&mut *tx, ctx.org_id()).await? <= 1
    {
        return Err(last_owner());
    }
    db::memberships::update_role(&mut *tx, ctx.org_id(), user_id, role).await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("member.change_role", "member", user_id)
            .before(json!({"role": current.as_str()}))
            .after(json!({"role": role.as_str()})),
    )
    .await?;
    tx.commit().await?;
    db::memberships::fetch_member(db, ctx.org_id(), user_id)
        .await?
        .ok_or_else(member_not_found)
}

/// Removes a member, or — when the caller names themself — leaves.
pub async fn remove_member(db: &PgPool, ctx: &OrgCtx, user_id: Uuid) -> Result<(), AppError> {
    let leaving = ctx.actor().user_id() == Some(user_id);
    if leaving {
        require(ctx, Permission::ViewOrganization)?;
    } else {
        require(ctx, Permission::RemoveMembers)?;
    }
    let mut tx = db.begin().await?;
    let current = db::memberships::fetch_role_for_update(&mut *tx, ctx.org_id(), user_id)
        .await?
        .ok_or_else(member_not_found)?;
    if !leaving {
        check_owner_rules(ctx, current, None)?;
    }
    if current == Role::Owner
        && db::memberships::count_owners_for_update(&mut *tx, ctx.org_id()).await? <= 1
    {
        return Err(last_owner());
    }
    db::memberships::delete_membership(&mut *tx, ctx.org_id(), user_id).await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new(
            if leaving {
                "member.leave"
            } else {
                "member.remove"
            },
            "member",
            user_id,
        )
        .before(json!({"role": current.as_str()})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Creates an invitation and returns it with its link, which is shown once:
/// only a digest of the token is stored.
pub async fn invite(
    db: &PgPool,
    ctx: &OrgCtx,
    email: &str,
    role: Role,
    public_url: &str,
) -> Result<Invitation, AppError> {
    require(ctx, Permission::InviteMembers)?;
    if role == Role::Owner && ctx.role() != Some(Role::Owner) {
        return Err(AppError::forbidden("Only an owner can invite an owner."));
    }
    let email = parse_email(email, "email")?;
    if db::memberships::email_is_member(db, ctx.org_id(), &email).await? {
        return Err(AppError::AlreadyExists(FieldError::new(
            "email",
            format!("{email} is already a member of this organization."),
        )));
    }
    // Invitations are made by people; a key acts for whoever created it.
    let invited_by = ctx.actor().user_id();
    let token = secret::random_token();
    let expires_at = Utc::now() + Duration::days(INVITATION_TTL_DAYS);
    let mut tx = db.begin().await?;
    let id = db::invitations::insert_invitation(
        &mut *tx,
        ctx.org_id(),
        &email,
        role,
        &secret::sha256_hex(&token),
        invited_by,
        expires_at,
    )
    .await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("invitation.create", "invitation", id)
            .after(json!({"email": email, "role": role.as_str(), "expires_at": expires_at})),
    )
    .await?;
    tx.commit().await?;
    let row = db::invitations::fetch_by_id(db, ctx.org_id(), id)
        .await?
        .ok_or_else(|| AppError::NotFound("Invitation".into()))?;
    let mut inv = row.into_model();
    inv.link = Some(format!("{public_url}/invite/{token}"));
    inv.token = Some(token);
    Ok(inv)
}

/// Sends a new invitation's link to the invited address (when the server
/// has a mailer), noting on it whether that worked.
pub async fn email_invitation(
    mailer: Option<&crate::server::mail::Mailer>,
    db: &PgPool,
    ctx: &OrgCtx,
    inv: &mut Invitation,
) -> Result<(), AppError> {
    let (Some(mailer), Some(link)) = (mailer, inv.link.clone()) else {
        return Ok(());
    };
    let org = db::orgs::fetch_one(db, ctx.org_id())
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let by = inv.invited_by.clone().unwrap_or_else(|| "Someone".into());
    let body = format!(
        "{by} invited you to join {org} on Mino as {role}.\n\n\
         Accept the invitation: {link}\n\n\
         The link works once and expires on {expires} (UTC). If you did not expect this, ignore this message.\n",
        role = inv.role.label().to_lowercase(),
        expires = inv.expires_at.format("%Y-%m-%d %H:%M"),
    );
    match mailer
        .send(&inv.email, &format!("Join {org} on Mino"), body)
        .await
    {
        Ok(()) => inv.emailed = Some(true),
        Err(e) => {
            tracing::warn!(to = %inv.email, error = %e, "invitation email not sent");
            inv.emailed = Some(false);
            inv.email_error = Some(e);
        }
    }
    Ok(())
}

/// The organization's pending invitations.
pub async fn list_invitations(db: &PgPool, ctx: &OrgCtx) -> Result<Vec<Invitation>, AppError> {
    require(ctx, Permission::InviteMembers)?;
    Ok(db::invitations::fetch_pending(db, ctx.org_id())
        .await?
        .into_iter()
        .map(|r| r.into_model())
        .collect())
}

/// Revokes a pending invitation.
pub async fn revoke_invitation(db: &PgPool, ctx: &OrgCtx, id: Uuid) -> Result<(), AppError> {
    require(ctx, Permission::InviteMembers)?;
    let mut tx = db.begin().await?;
    if !db::invitations::mark_revoked(&mut *tx, ctx.org_id(), id).await? {
        return Err(AppError::NotFound("Pending invitation".into()));
    }
    audit::record(
        &mut *tx,
        ctx,
        Change::new("invitation.revoke", "invitation", id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn check_usable(row: &db::invitations::InvitationRow) -> Result<(), AppError> {
    if row.revoked_at.is_some() {
        return Err(AppError::InvalidToken(
            "This invitation was withdrawn. Ask for a new one.".into(),
        ));
    }
    if row.accepted_at.is_some() {
        return Err(AppError::InvalidToken(
            "This invitation was already used. Sign in to reach the organization.".into(),
        ));
    }
    if row.expires_at <= Utc::now() {
        return Err(AppError::InvalidToken(
            "This invitation has expired. Ask for a new one.".into(),
        ));
    }
    Ok(())
}

/// What the invitation offers; anyone holding the link may look.
pub async fn preview_invitation(db: &PgPool, token: &str) -> Result<InvitationPreview, AppError> {
    let mut tx = db.begin().await?;
    let row = db::invitations::fetch_by_token_for_update(&mut *tx, &secret::sha256_hex(token))
        .await?
        .ok_or_else(|| AppError::NotFound("Invitation".into()))?;
    tx.commit().await?;
    check_usable(&row)?;
    Ok(InvitationPreview {
        org_name: row.org_name.clone(),
        role: row.role(),
        email: row.email,
        invited_by: row.invited_by,
        expires_at: row.expires_at,
    })
}

/// Joins the organization. The signed-in account's email must be the one the
/// invitation was sent to, so a leaked link can't be used by someone else.
pub async fn accept_invitation(
    db: &PgPool,
    actor: &Actor,
    token: &str,
) -> Result<Organization, AppError> {
    let user_id = actor.require_user()?;
    let user = db::users::fetch_by_id(db, user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Sign in to continue.".into()))?;
    let mut tx = db.begin().await?;
    let row = db::invitations::fetch_by_token_for_update(&mut *tx, &secret::sha256_hex(token))
        .await?
        .ok_or_else(|| AppError::NotFound("Invitation".into()))?;
    check_usable(&row)?;
    if !row.email.eq_ignore_ascii_case(&user.email) {
        return Err(AppError::forbidden(format!(
            "This invitation was sent to {}; sign in with that address to accept it.",
            row.email
        )));
    }
    db::memberships::upsert_membership(&mut *tx, row.org_id, user_id, row.role()).await?;
    db::invitations::mark_accepted(&mut *tx, row.id, user_id).await?;
    audit::record_at(
        &mut *tx,
        Some(row.org_id),
        actor,
        Change::new("invitation.accept", "invitation", row.id)
            .after(json!({"email": row.email, "role": row.role().as_str()})),
    )
    .await?;
    tx.commit().await?;
    db::orgs::fetch_one_for_user(db, user_id, row.org_id)
        .await?
        .map(Organization::from)
        .ok_or_else(|| AppError::NotFound("Organization".into()))
}
