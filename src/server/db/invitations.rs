//! invitations: pending invitations by id or by their (hashed) token, and
//! marking them accepted or revoked.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{Invitation, Role};

#[derive(sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_name: String,
    pub email: String,
    pub role: String,
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl InvitationRow {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }

    pub fn into_model(self) -> Invitation {
        Invitation {
            id: self.id,
            role: self.role(),
            email: self.email,
            invited_by: self.invited_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
            link: None,
            token: None,
            emailed: None,
            email_error: None,
        }
    }
}

const SELECT: &str = "select i.id, i.org_id, o.name as org_name, i.email, i.role,
        u.name as invited_by, i.created_at, i.expires_at, i.accepted_at, i.revoked_at
    from invitations i
    join organizations o on o.id = i.org_id
    left join users u on u.id = i.invited_by";

/// Stores an invitation (its token hashed).
pub async fn insert_invitation(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    email: &str,
    role: Role,
    token_hash: &str,
    invited_by: Option<Uuid>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into invitations (org_id, email, role, token_hash, invited_by, expires_at)
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(org_id)
    .bind(email)
    .bind(role.as_str())
    .bind(token_hash)
    .bind(invited_by)
    .bind(expires_at)
    .fetch_one(db)
    .await
}

/// One invitation of the organization.
pub async fn fetch_by_id(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(&format!("{SELECT} where i.org_id = $1 and i.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Pending ones: not accepted, not revoked, not expired.
pub async fn fetch_pending(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
) -> sqlx::Result<Vec<InvitationRow>> {
    sqlx::query_as(&format!(
        "{SELECT} where i.org_id = $1 and i.accepted_at is null and i.revoked_at is null
           and i.expires_at > now() order by i.created_at desc"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// By token digest; `for update` so two accepts of one link serialize.
pub async fn fetch_by_token_for_update(
    db: impl PgExecutor<'_>,
    token_hash: &str,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(&format!("{SELECT} where i.token_hash = $1 for update of i"))
        .bind(token_hash)
        .fetch_optional(db)
        .await
}

/// Marks an invitation accepted by `user_id`.
pub async fn mark_accepted(db: impl PgExecutor<'_>, id: Uuid, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update invitations set accepted_at = now(), accepted_by = $2 where id = $1")
        .bind(id)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Revokes a pending invitation; false when there was none.
pub async fn mark_revoked(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "update invitations set revoked_at = now()
         where org_id = $1 and id = $2 and revoked_at is null and accepted_at is null",
    )
    .bind(org_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}
