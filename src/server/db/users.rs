//! users: accounts by email or id, and their password hashes.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::User;

#[derive(sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub session_epoch: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str = "id, email, name, password_hash, session_epoch, created_at";

/// Creates an account; returns it.
pub async fn insert_user(
    db: impl PgExecutor<'_>,
    email: &str,
    name: &str,
    password_hash: &str,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(&format!(
        "insert into users (email, name, password_hash) values ($1, $2, $3) returning {COLUMNS}"
    ))
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .fetch_one(db)
    .await
}

/// An account by its email (any case).
pub async fn fetch_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from users where lower(email) = lower($1)"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

/// An account by id.
pub async fn fetch_by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!("select {COLUMNS} from users where id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Sets a new hash and bumps the session epoch; returns the new epoch.
pub async fn update_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
    password_hash: &str,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "update users set password_hash = $2, session_epoch = session_epoch + 1 \
         where id = $1 returning session_epoch",
    )
    .bind(id)
    .bind(password_hash)
    .fetch_one(db)
    .await
}
