//! Helpers for server functions: the shared state, the session, the caller,
//! and setting the HTTP status of an error so it is not always 500.

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use leptos::prelude::*;
use std::net::SocketAddr;
use tower_sessions::Session;

use super::auth::{rbac::Actor, session};
use super::state::AppState;
use crate::error::AppError;

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::internal_bug("state missing"))
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|_| AppError::internal_bug("session layer missing"))
}

/// The signed-in user found for this request, once: a server-rendered page
/// calls a dozen server functions, and each would read the session's user
/// again. Provided fresh for every request (see `startup`); only a found
/// user is kept, so signing in within a request is seen.
#[derive(Clone, Default)]
pub struct RequestUser(std::sync::Arc<std::sync::OnceLock<uuid::Uuid>>);

/// The signed-in user (server functions are for the browser: no API keys).
pub async fn user() -> Result<(AppState, Actor), AppError> {
    let state = state()?;
    let memo = use_context::<RequestUser>();
    if let Some(id) = memo.as_ref().and_then(|m| m.0.get()) {
        return Ok((state, Actor::User { id: *id }));
    }
    let session = session().await?;
    match session::current_user(&session, &state.db).await? {
        Some(id) => {
            if let Some(memo) = memo {
                let _ = memo.0.set(id);
            }
            Ok((state, Actor::User { id }))
        }
        None => Err(AppError::Unauthorized("Sign in to continue.".into())),
    }
}

pub async fn client_ip() -> String {
    let state = use_context::<AppState>();
    let parts = use_context::<axum::http::request::Parts>();
    let peer = leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|c| c.0);
    match parts {
        Some(p) => super::http::client_ip(
            &p.headers,
            peer,
            state.map(|s| s.config.trust_proxy).unwrap_or(false),
        ),
        None => "unknown".into(),
    }
}

/// True for a form posted by a browser without JavaScript: it gets a
/// redirect back rather than a status code.
pub fn is_plain_form_post() -> bool {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.contains("text/html"))
        })
        .unwrap_or(false)
}

/// After a sign-in or sign-up form: on success go to `next`. A form posted
/// without JavaScript can't show its own error, so on failure send that
/// browser to `back(error)`, a page that explains it with a fixed code in
/// the query (never free text).
pub fn redirect_after_form(
    result: &Result<(), AppError>,
    next: &str,
    back: impl FnOnce(&AppError) -> String,
) {
    match result {
        Ok(()) => leptos_axum::redirect(next),
        Err(e) if is_plain_form_post() => leptos_axum::redirect(&back(e)),
        Err(_) => {}
    }
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    crate::nav::encode(s)
}

/// Middleware for server functions: they answer 500 for every error,
/// including a malformed form that never reached our code. This gives each
/// `AppError` its own status (400, 401, 403, 404, …).
pub async fn error_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let is_rpc = req.uri().path().starts_with(crate::api::RPC_PREFIX);
    let res = next.run(req).await;
    if !is_rpc || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status =
            StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

pub use crate::nav::safe_next;
