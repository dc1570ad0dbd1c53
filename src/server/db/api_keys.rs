//! api_keys: an organization's keys, stored as a prefix (to find one) and
//! a SHA-256 hash (to check it); revoked keys stay for the audit log.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::{ApiKey, Scope};

#[derive(sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Vec<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    pub fn scopes(&self) -> Vec<Scope> {
        self.scopes.iter().filter_map(|s| Scope::parse(s)).collect()
    }

    pub fn into_model(self) -> ApiKey {
        ApiKey {
            id: self.id,
            scopes: self.scopes(),
            name: self.name,
            prefix: self.prefix,
            created_by: self.created_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        }
    }
}

const SELECT: &str = "select k.id, k.org_id, k.name, k.prefix, k.key_hash, k.scopes,
        u.name as created_by, k.created_at, k.expires_at, k.last_used_at, k.revoked_at
    from api_keys k left join users u on u.id = k.created_by";

/// Stores a new key (its prefix and hash, never the secret).
#[allow(clippy::too_many_arguments)]
pub async fn insert_key(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    name: &str,
    prefix: &str,
    key_hash: &str,
    scopes: &[Scope],
    created_by: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
) -> sqlx::Result<Uuid> {
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    sqlx::query_scalar(
        "insert into api_keys (org_id, name, prefix, key_hash, scopes, created_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(org_id)
    .bind(name)
    .bind(prefix)
    .bind(key_hash)
    .bind(&scopes)
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(db)
    .await
}

/// The organization's keys, newest first.
pub async fn fetch_for_org(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as(&format!(
        "{SELECT} where k.org_id = $1 order by k.revoked_at is not null, k.created_at desc"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// One key of the organization.
pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(&format!("{SELECT} where k.org_id = $1 and k.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The organization a key belongs to (to build the caller's context before
/// anything else is read).
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from api_keys where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The key a bearer token names, found by its prefix (the caller checks the hash).
pub async fn fetch_by_prefix(
    db: impl PgExecutor<'_>,
    prefix: &str,
) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(&format!("{SELECT} where k.prefix = $1"))
        .bind(prefix)
        .fetch_optional(db)
        .await
}

/// Records use at most once a minute per key, so busy keys don't turn
/// every read into a write.
pub async fn touch_last_used(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update api_keys set last_used_at = now()
         where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes a key (kept, for the audit log).
pub async fn mark_revoked(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update api_keys set revoked_at = coalesce(revoked_at, now()) where org_id = $1 and id = $2",
    )
    .bind(org_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}
