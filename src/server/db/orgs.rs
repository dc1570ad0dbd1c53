//! organizations: the caller's organizations with their roles, by id or
//! slug, and their names and plan limits.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{Organization, Role};

#[derive(sqlx::FromRow)]
pub struct OrgRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub role: String,
    pub max_projects: i32,
    pub max_executions_per_month: i32,
    pub api_requests_per_minute: i32,
    pub key_requests_per_minute: i32,
    pub max_concurrency: i32,
    pub retention_days: i32,
    pub member_count: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<OrgRow> for Organization {
    fn from(r: OrgRow) -> Organization {
        Organization {
            id: r.id,
            name: r.name,
            slug: r.slug,
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            max_projects: r.max_projects,
            max_executions_per_month: r.max_executions_per_month,
            api_requests_per_minute: r.api_requests_per_minute,
            key_requests_per_minute: r.key_requests_per_minute,
            max_concurrency: r.max_concurrency,
            retention_days: r.retention_days,
            member_count: r.member_count,
            created_at: r.created_at,
        }
    }
}

/// `$1` is the caller's user id; `role` is their membership's role.
const SELECT_FOR_USER: &str = "select o.id, o.name, o.slug, m.role, o.max_projects,
        o.max_executions_per_month, o.api_requests_per_minute, o.key_requests_per_minute,
        o.max_concurrency, o.retention_days,
        (select count(*) from memberships c where c.org_id = o.id) as member_count,
        o.created_at
    from organizations o join memberships m on m.org_id = o.id and m.user_id = $1";

/// The user's organizations with their role in each.
pub async fn fetch_for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<OrgRow>> {
    sqlx::query_as(&format!("{SELECT_FOR_USER} order by lower(o.name), o.id"))
        .bind(user_id)
        .fetch_all(db)
        .await
}

/// One organization with the user's role in it.
pub async fn fetch_one_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    org_id: Uuid,
) -> sqlx::Result<Option<OrgRow>> {
    sqlx::query_as(&format!("{SELECT_FOR_USER} where o.id = $2"))
        .bind(user_id)
        .bind(org_id)
        .fetch_optional(db)
        .await
}

/// An organization seen through an API key (which has no membership role;
/// the row says "viewer" and callers use the key's scopes instead).
pub async fn fetch_one(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Option<OrgRow>> {
    sqlx::query_as(
        "select o.id, o.name, o.slug, 'viewer' as role, o.max_projects,
            o.max_executions_per_month, o.api_requests_per_minute, o.key_requests_per_minute,
            o.max_concurrency, o.retention_days, (select count(*) from memberships c where c.org_id = o.id) as member_count,
            o.created_at
         from organizations o where o.id = $1",
    )
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// Resolves an id or a slug to an id, without saying anything about access.
pub async fn fetch_id_by_ref(db: impl PgExecutor<'_>, org_ref: &str) -> sqlx::Result<Option<Uuid>> {
    // Postgres text can't hold NUL (it would be an error, not "no match").
    if org_ref.contains('\0') {
        return Ok(None);
    }
    match Uuid::parse_str(org_ref) {
        Ok(id) => {
            sqlx::query_scalar("select id from organizations where id = $1")
                .bind(id)
                .fetch_optional(db)
                .await
        }
        Err(_) => {
            sqlx::query_scalar("select id from organizations where slug = $1")
                .bind(org_ref)
                .fetch_optional(db)
                .await
        }
    }
}

/// Creates an organization; returns its id.
pub async fn insert_org(db: impl PgExecutor<'_>, name: &str, slug: &str) -> sqlx::Result<Uuid> {
    sqlx::query_scalar("insert into organizations (name, slug) values ($1, $2) returning id")
        .bind(name)
        .bind(slug)
        .fetch_one(db)
        .await
}

/// Whether an organization already has this slug.
pub async fn slug_taken(db: impl PgExecutor<'_>, slug: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from organizations where slug = $1)")
        .bind(slug)
        .fetch_one(db)
        .await
}

/// Renames an organization.
pub async fn update_name(db: impl PgExecutor<'_>, org_id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query("update organizations set name = $2 where id = $1")
        .bind(org_id)
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}

/// Sets how many days the organization keeps screenshots and kept pages.
pub async fn update_retention(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    days: i32,
) -> sqlx::Result<()> {
    sqlx::query("update organizations set retention_days = $2 where id = $1")
        .bind(org_id)
        .bind(days)
        .execute(db)
        .await?;
    Ok(())
}

/// Sets an organization's plan limits.
pub async fn update_limits(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    limits: &crate::model::PlanLimits,
) -> sqlx::Result<()> {
    sqlx::query(
        "update organizations set max_projects = $2, max_executions_per_month = $3,
             api_requests_per_minute = $4, key_requests_per_minute = $5, max_concurrency = $6
         where id = $1",
    )
    .bind(org_id)
    .bind(limits.max_projects)
    .bind(limits.max_executions_per_month)
    .bind(limits.api_requests_per_minute)
    .bind(limits.key_requests_per_minute)
    .bind(limits.max_concurrency)
    .execute(db)
    .await?;
    Ok(())
}

/// The organization's project limit, its row locked until commit so two
/// creations can't both slip under it.
pub async fn max_projects_locked(tx: &mut sqlx::PgConnection, org_id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar("select max_projects from organizations where id = $1 for update")
        .bind(org_id)
        .fetch_one(tx)
        .await
}

/// Deletes an organization and everything in it.
pub async fn delete_org(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from organizations where id = $1")
        .bind(org_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The organization's plan limit on one run's concurrency.
pub async fn max_concurrency(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar("select max_concurrency from organizations where id = $1")
        .bind(org_id)
        .fetch_one(db)
        .await
}
