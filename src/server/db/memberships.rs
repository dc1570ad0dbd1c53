//! memberships: who belongs to which organization with which role, and the
//! row locks that keep an organization from losing its last owner.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{Member, Role};

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: Uuid,
    email: String,
    name: String,
    role: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<MemberRow> for Member {
    fn from(r: MemberRow) -> Member {
        Member {
            user_id: r.user_id,
            email: r.email,
            name: r.name,
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            joined_at: r.created_at,
        }
    }
}

const SELECT_MEMBERS: &str = "select u.id as user_id, u.email, u.name, m.role, m.created_at
    from memberships m join users u on u.id = m.user_id";

/// The user's role in the organization, if a member.
pub async fn fetch_role(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<Role>> {
    let role: Option<String> =
        sqlx::query_scalar("select role from memberships where org_id = $1 and user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(db)
            .await?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// Same as [`fetch_role`], but locks the membership row for the rest of the
/// transaction (role changes and removals check "last owner" under it).
pub async fn fetch_role_for_update(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<Role>> {
    let role: Option<String> = sqlx::query_scalar(
        "select role from memberships where org_id = $1 and user_id = $2 for update",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// The organization's members: owners first, then by name.
pub async fn fetch_members(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<Member>> {
    let rows: Vec<MemberRow> = sqlx::query_as(&format!(
        "{SELECT_MEMBERS} where m.org_id = $1
         order by case m.role when 'owner' then 0 when 'admin' then 1 when 'member' then 2 else 3 end,
                  lower(u.name), u.id"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Member::from).collect())
}

/// One member of the organization.
pub async fn fetch_member(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<Member>> {
    let row: Option<MemberRow> = sqlx::query_as(&format!(
        "{SELECT_MEMBERS} where m.org_id = $1 and m.user_id = $2"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Member::from))
}

/// Whether someone with this email (any case) already belongs to the org.
pub async fn email_is_member(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    email: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from memberships m join users u on u.id = m.user_id
                        where m.org_id = $1 and lower(u.email) = lower($2))",
    )
    .bind(org_id)
    .bind(email)
    .fetch_one(db)
    .await
}

/// Locks the organization's owner rows and counts them, so two concurrent
/// demotions can't both see "another owner remains".
pub async fn count_owners_for_update(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<i64> {
    let owners: Vec<Uuid> = sqlx::query_scalar(
        "select user_id from memberships where org_id = $1 and role = 'owner' for update",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?;
    Ok(owners.len() as i64)
}

/// Adds a membership; if one exists, keeps the higher of the two roles.
pub async fn upsert_membership(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into memberships (org_id, user_id, role) values ($1, $2, $3)
         on conflict (org_id, user_id) do update set role =
           case when array_position(array['viewer','member','admin','owner'], excluded.role)
                   > array_position(array['viewer','member','admin','owner'], memberships.role)
                then excluded.role else memberships.role end",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(db)
    .await?;
    Ok(())
}

/// Changes a member's role.
pub async fn update_role(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> sqlx::Result<()> {
    sqlx::query("update memberships set role = $3 where org_id = $1 and user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// Removes a member from the organization.
pub async fn delete_membership(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("delete from memberships where org_id = $1 and user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}
