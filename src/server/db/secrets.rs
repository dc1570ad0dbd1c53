//! secret_key_check, and sealing the secrets stored before they were
//! sealed (see `server::secrets`).

use sqlx::PgPool;
use uuid::Uuid;

use crate::server::secrets::{is_sealed, SecretKey};

/// The database's sealed check value, if a key was ever used with it.
pub async fn key_check(db: &PgPool) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select sealed from secret_key_check")
        .fetch_optional(db)
        .await
}

/// Records the check value of the first key used with this database (a
/// concurrent start that wrote one first wins; prepare reads it again next
/// time).
pub async fn set_key_check(db: &PgPool, sealed: &str) -> sqlx::Result<()> {
    sqlx::query("insert into secret_key_check (sealed) values ($1) on conflict (id) do nothing")
        .bind(sealed)
        .execute(db)
        .await?;
    Ok(())
}

/// Seals every webhook secret still stored in clear text (written before
/// secrets were sealed); how many.
pub async fn seal_clear_webhook_secrets(db: &PgPool, key: &SecretKey) -> sqlx::Result<u64> {
    let clear: Vec<(Uuid, String)> =
        sqlx::query_as("select id, secret from webhooks where secret not like 'v1:%'")
            .fetch_all(db)
            .await?;
    let mut sealed = 0;
    for (id, secret) in clear {
        if is_sealed(&secret) {
            continue;
        }
        sealed += sqlx::query("update webhooks set secret = $2 where id = $1 and secret = $3")
            .bind(id)
            .bind(key.seal(&secret))
            .bind(&secret)
            .execute(db)
            .await?
            .rows_affected();
    }
    Ok(sealed)
}
