//! Request rate limits for `/api/v1` (F14). Each API key has its own budget
//! per minute and shares its organization's; a signed-in person has a
//! budget of their own. The counters live in Postgres (one upsert per
//! request), so several `mino serve` processes on one database enforce one
//! limit together. Every limited response carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`; past the limit the answer
//! is 429 `RATE_LIMIT_EXCEEDED` with `Retry-After`.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use tower_sessions::Session;

use crate::error::AppError;
use crate::server::auth::rbac::Actor;
use crate::server::auth::session;
use crate::server::db;
use crate::server::http::{bearer, Authenticated};
use crate::server::service::api_keys;
use crate::server::state::AppState;

/// Where a request stands in its windows: the tightest of its budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub limit: i64,
    pub remaining: i64,
    /// Seconds until the window ends.
    pub reset_secs: u64,
}

impl Standing {
    pub fn exceeded(&self) -> bool {
        self.remaining < 0
    }
}

/// Counts one request against each (bucket, limit) and returns the
/// tightest standing.
async fn count(db: &PgPool, buckets: &[(String, i64)]) -> Result<Standing, AppError> {
    let names: Vec<&str> = buckets.iter().map(|(b, _)| b.as_str()).collect();
    let rows = db::rate_limits::hit(db, &names).await?;
    let mut standing: Option<Standing> = None;
    for db::rate_limits::Hits {
        bucket,
        hits,
        reset_secs: reset,
    } in rows
    {
        let limit = buckets
            .iter()
            .find(|(b, _)| *b == bucket)
            .map(|(_, l)| *l)
            .unwrap_or(0);
        let s = Standing {
            limit,
            remaining: limit - hits as i64,
            reset_secs: reset.ceil().max(1.0) as u64,
        };
        if standing.is_none_or(|t| s.remaining < t.remaining) {
            standing = Some(s);
        }
    }
    standing.ok_or_else(|| AppError::internal_bug("rate limit: no window counted"))
}

/// The budgets of a caller: (bucket, requests per minute).
async fn budgets(state: &AppState, actor: &Actor) -> Result<Vec<(String, i64)>, AppError> {
    Ok(match actor {
        Actor::ApiKey { id, org_id, .. } => {
            let b = db::rate_limits::org_budgets(&state.db, *org_id).await?;
            vec![
                (format!("key:{id}"), b.key_requests_per_minute as i64),
                (format!("org:{org_id}"), b.api_requests_per_minute as i64),
            ]
        }
        Actor::User { id } => vec![(
            format!("user:{id}"),
            state.config.user_requests_per_minute as i64,
        )],
        // Mino's own work makes no requests.
        Actor::System => Vec::new(),
    })
}

/// Middleware for `/api/v1`: authenticates the caller once (handlers find
/// the result in the request's extensions), counts the request and answers
/// 429 past a limit. Anonymous requests pass uncounted; signing in has a
/// throttle of its own.
pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Taken out of the request first: a borrowed request (whose body isn't
    // Sync) can't be held across an await in a Send future.
    let token = bearer(req.headers()).map(str::to_string);
    let session = req.extensions().get::<Session>().cloned();
    let actor = match caller(&state, token, session).await {
        Ok(Some(a)) => a,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let standing = match budgets(&state, &actor).await {
        Ok(b) => count(&state.db, &b).await,
        Err(e) => Err(e),
    };
    let standing = match standing {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(Authenticated(actor));
    let mut res = if standing.exceeded() {
        AppError::RateLimited {
            retry_after_secs: standing.reset_secs,
        }
        .into_response()
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(standing.limit));
    h.insert(
        "ratelimit-remaining",
        HeaderValue::from(standing.remaining.max(0)),
    );
    h.insert("ratelimit-reset", HeaderValue::from(standing.reset_secs));
    res
}

async fn caller(
    state: &AppState,
    token: Option<String>,
    session: Option<Session>,
) -> Result<Option<Actor>, AppError> {
    if let Some(token) = token {
        return api_keys::authenticate(&state.db, &token).await.map(Some);
    }
    let Some(session) = session else {
        return Ok(None);
    };
    Ok(session::current_user(&session, &state.db)
        .await?
        .map(|id| Actor::User { id }))
}

/// Prunes old windows every ten minutes for as long as the server runs.
pub fn spawn_prune(db: PgPool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            if let Err(e) = db::rate_limits::prune(&db).await {
                tracing::warn!(error = %e, "pruning rate-limit windows failed");
            }
        }
    });
}
