//! Helpers for server functions: the shared state, the session, the caller,
//! and setting the HTTP status of an error so it is not always 500.

use axum::extract::ConnectInfo;
use leptos::prelude::*;
use std::net::SocketAddr;
use tower_sessions::Session;

use super::auth::{rbac::Actor, session};
use super::state::AppState;
use crate::error::AppError;

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::Internal("state missing".into()))
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|_| AppError::Internal("session layer missing".into()))
}

/// The signed-in user (server functions are for the browser: no API keys).
pub async fn user() -> Result<(AppState, Actor), AppError> {
    let state = state()?;
    let session = session().await?;
    match session::current_user(&session, &state.db).await? {
        Some(id) => Ok((state, Actor::User { id })),
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

/// Gives an error its HTTP status (401, 403, 404, …) on the way out.
pub fn finish<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        if !is_plain_form_post() {
            if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
                opts.set_status(
                    axum::http::StatusCode::from_u16(e.status())
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                );
            }
        }
    }
    result
}

pub use crate::nav::safe_next;
