//! auth_failures: failed sign-ins per account and per address, for the
//! sign-in throttle.

use sqlx::PgExecutor;

/// Failures in the window for this account and for this address.
pub async fn count_recent(
    db: impl PgExecutor<'_>,
    account: &str,
    ip: &str,
    window_secs: i64,
) -> sqlx::Result<(i64, i64, Option<f64>, Option<f64>)> {
    // Also returns how long until the oldest failure of each kind leaves the
    // window, which is the Retry-After when throttled.
    sqlx::query_as(
        "select
            count(*) filter (where account = $1),
            count(*) filter (where ip = $2),
            extract(epoch from (min(at) filter (where account = $1)
                + make_interval(secs => $3) - now()))::float8,
            extract(epoch from (min(at) filter (where ip = $2)
                + make_interval(secs => $3) - now()))::float8
         from auth_failures
         where (account = $1 or ip = $2) and at > now() - make_interval(secs => $3)",
    )
    .bind(account)
    .bind(ip)
    .bind(window_secs as f64)
    .fetch_one(db)
    .await
}

/// Records a failed sign-in for the account and the address.
pub async fn insert_failure(db: impl PgExecutor<'_>, account: &str, ip: &str) -> sqlx::Result<()> {
    sqlx::query("insert into auth_failures (account, ip) values ($1, $2)")
        .bind(account)
        .bind(ip)
        .execute(db)
        .await?;
    Ok(())
}

/// Forgets an account's failures (after a successful sign-in).
pub async fn delete_for_account(db: impl PgExecutor<'_>, account: &str) -> sqlx::Result<()> {
    sqlx::query("delete from auth_failures where account = $1")
        .bind(account)
        .execute(db)
        .await?;
    Ok(())
}

/// Drops failures older than `secs` seconds.
pub async fn delete_older_than(db: impl PgExecutor<'_>, secs: i64) -> sqlx::Result<()> {
    sqlx::query("delete from auth_failures where at < now() - make_interval(secs => $1)")
        .bind(secs as f64)
        .execute(db)
        .await?;
    Ok(())
}
