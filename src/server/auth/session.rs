//! Browser sessions on top of tower-sessions: what we keep in a session, and
//! the inactivity/absolute/password-change rules that end one.

use chrono::Utc;
use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

use crate::error::AppError;
use crate::server::db::{self, users::UserRow};

/// A session unused for this long ends (enforced by the cookie expiry and
/// the store).
pub const IDLE_HOURS: i64 = 72;
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_DAYS: i64 = 14;

const USER_ID: &str = "user_id";
const EPOCH: &str = "epoch";
const SIGNED_IN_AT: &str = "signed_in_at";
const TOUCHED_AT: &str = "touched_at";

/// tower-sessions saves a session (and pushes its expiry and the cookie's
/// Max-Age forward) only when it changed. To make "inactive for IDLE_HOURS"
/// mean inactive — not "IDLE_HOURS after sign-in" — a session in use is
/// touched at most this often: one write an hour, not one per request.
const TOUCH_EVERY_SECS: i64 = 3600;

/// Whether a session last touched at `touched_at` should be saved again.
fn needs_touch(touched_at: i64, now: i64) -> bool {
    now - touched_at >= TOUCH_EVERY_SECS
}

fn internal(e: tower_sessions::session::Error) -> AppError {
    AppError::internal("session store", &e)
}

/// Starts a signed-in session under a fresh id (no fixation).
pub async fn start(session: &Session, user: &UserRow) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    session.insert(USER_ID, user.id).await.map_err(internal)?;
    session
        .insert(EPOCH, user.session_epoch)
        .await
        .map_err(internal)?;
    let now = Utc::now().timestamp();
    session.insert(SIGNED_IN_AT, now).await.map_err(internal)?;
    session.insert(TOUCHED_AT, now).await.map_err(internal)?;
    Ok(())
}

/// Keeps this session valid after a password change ended the others.
pub async fn renew_epoch(session: &Session, epoch: i32) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    session.insert(EPOCH, epoch).await.map_err(internal)
}

const LAST_ORG: &str = "last_org";

/// Remembers the organization the user is looking at (only when it
/// changes, so ordinary page views don't write the session).
pub async fn remember_org(session: &Session, slug: &str) -> Result<(), AppError> {
    let current: Option<String> = session.get(LAST_ORG).await.map_err(internal)?;
    if current.as_deref() != Some(slug) {
        session.insert(LAST_ORG, slug).await.map_err(internal)?;
    }
    Ok(())
}

pub async fn last_org(session: &Session) -> Result<Option<String>, AppError> {
    session.get(LAST_ORG).await.map_err(internal)
}

pub async fn end(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(internal)
}

/// The signed-in user, if the session is still valid.
pub async fn current_user(session: &Session, db: &PgPool) -> Result<Option<Uuid>, AppError> {
    let Some(user_id) = session.get::<Uuid>(USER_ID).await.map_err(internal)? else {
        return Ok(None);
    };
    let signed_in_at: i64 = session
        .get(SIGNED_IN_AT)
        .await
        .map_err(internal)?
        .unwrap_or(0);
    if Utc::now().timestamp() - signed_in_at > ABSOLUTE_DAYS * 86_400 {
        end(session).await?;
        return Ok(None);
    }
    let epoch: i32 = session.get(EPOCH).await.map_err(internal)?.unwrap_or(-1);
    match db::users::fetch_by_id(db, user_id).await? {
        Some(user) if user.session_epoch == epoch => {
            let now = Utc::now().timestamp();
            let touched_at: i64 = session
                .get(TOUCHED_AT)
                .await
                .map_err(internal)?
                .unwrap_or(signed_in_at);
            if needs_touch(touched_at, now) {
                session.insert(TOUCHED_AT, now).await.map_err(internal)?;
            }
            Ok(Some(user_id))
        }
        _ => {
            // Password changed elsewhere, or the account is gone.
            end(session).await?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_in_use_is_saved_at_most_hourly() {
        let t = 1_800_000_000;
        assert!(!needs_touch(t, t));
        assert!(!needs_touch(t, t + TOUCH_EVERY_SECS - 1));
        assert!(needs_touch(t, t + TOUCH_EVERY_SECS));
        // Far below the idle limit, so an active user is never signed out.
        const { assert!(TOUCH_EVERY_SECS * 24 <= IDLE_HOURS * 3600) };
    }
}
