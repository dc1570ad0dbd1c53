//! Queries, one module per table. Functions take any executor so services
//! can run them inside a transaction. SQL lives only here.

pub mod analysis;
pub mod api_keys;
pub mod audit;
pub mod auth_failures;
pub mod batches;
pub mod evaluation_sets;
pub mod executions;
pub mod experiments;
pub mod exports;
pub mod ground_truth;
pub mod imports;
pub mod invitations;
pub mod jobs;
pub mod live_frames;
pub mod memberships;
pub mod model_providers;
pub mod orgs;
pub mod pages;
pub mod projects;
pub mod rate_limits;
pub mod results;
pub mod screenshots;
pub mod secrets;
pub mod summaries;
pub mod usage;
pub mod users;
pub mod webhooks;

/// A string literal for SQL that reads the same whatever
/// `standard_conforming_strings` says (E'' with quotes and backslashes
/// doubled), for statements that can't take parameters (`COPY (…)`).
/// Values are checked to hold no NUL before they get here.
pub fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Sends a notification on `channel`; inside a transaction it is delivered
/// at commit (and not at all on rollback).
pub async fn notify(
    db: impl sqlx::PgExecutor<'_>,
    channel: &str,
    payload: &str,
) -> sqlx::Result<()> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(db)
        .await?;
    Ok(())
}

/// Whether the database answers.
pub async fn ping(db: &sqlx::PgPool) -> sqlx::Result<()> {
    sqlx::query_scalar::<_, i32>("select 1")
        .fetch_one(db)
        .await?;
    Ok(())
}

/// Creates database `name` (a plain identifier) on the server unless it
/// exists: the embedded server's first start.
pub async fn create_database_if_missing(
    conn: &mut sqlx::PgConnection,
    name: &str,
) -> sqlx::Result<()> {
    debug_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        sqlx::query(&format!("create database {name}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The name of the unique constraint/index a failed insert hit, if any, so
/// services can turn it into a field error instead of a 500.
pub fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint().map(str::to_string)
        }
        _ => None,
    }
}

/// A postgres:// URL for `options` (host or socket directory, port, user,
/// database), for child processes.
pub fn url_for(options: &sqlx::postgres::PgConnectOptions) -> String {
    let host = options.get_host();
    let user = options.get_username();
    let db = options.get_database().unwrap_or("postgres");
    let port = options.get_port();
    if host.starts_with('/') {
        format!("postgres://{user}@/{db}?host={host}&port={port}")
    } else {
        format!("postgres://{user}@{host}:{port}/{db}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_survive_quotes_and_backslashes() {
        assert_eq!(literal("O'Brien\\"), "E'O''Brien\\\\'");
    }
}
