//! How `AppError` becomes an HTTP response, and how a request becomes a
//! caller: an API key (`Authorization: Bearer mino_pk_…`) or a session.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use tower_sessions::Session;

use super::auth::rbac::Actor;
use super::auth::session;
use super::service;
use super::state::AppState;
use crate::error::AppError;

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> AppError {
        AppError::internal("database", &e)
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> AppError {
        AppError::internal("internal", e.as_ref())
    }
}

/// Logs the cause with a short reference the user can quote; the client
/// sees only the reference.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let details = match &self {
            AppError::Validation { fields, .. } => json!({ "fields": fields }),
            AppError::AlreadyExists(f) => json!({ "fields": [f] }),
            AppError::RateLimited { retry_after_secs } => {
                json!({ "retry_after_secs": retry_after_secs })
            }
            AppError::BadFile(problem) => json!(problem),
            _ => serde_json::Value::Null,
        };
        let body = json!({ "error": self.to_string(), "code": self.code(), "details": details });
        let mut res = (status, axum::Json(body)).into_response();
        if let AppError::RateLimited { retry_after_secs } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
        }
        res
    }
}

/// A JSON body whose problems answer 400 with `INVALID_JSON` or a field
/// error naming the missing/invalid field, never axum's plain-text default.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                let text = e.body_text();
                // serde says "missing field `email`" / "unknown variant …";
                // point at the field when it names one.
                let detail = text.rsplit(": ").next().unwrap_or(&text).to_string();
                match detail.split('`').nth(1) {
                    Some(field) if detail.starts_with("missing field") => {
                        Err(AppError::field(field, format!("{field} is required.")))
                    }
                    _ => Err(AppError::Validation {
                        message: format!("The body has an invalid value: {detail}"),
                        fields: vec![],
                    }),
                }
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::InvalidJson(
                "Send the body as JSON with `Content-Type: application/json`.".into(),
            )),
            Err(e) => Err(AppError::InvalidJson(format!(
                "The body is not valid JSON: {}",
                e.body_text().rsplit(": ").next().unwrap_or_default()
            ))),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Middleware: makes the request's address and user agent available to the
/// audit entries its handler writes.
pub async fn capture_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let meta = service::audit::RequestMeta {
        ip: Some(client_ip(req.headers(), peer, state.config.trust_proxy)),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(500).collect()),
    };
    service::audit::with_request(meta, next.run(req)).await
}

/// The client's address: the TCP peer, or the first `X-Forwarded-For` hop
/// when `MINO_TRUST_PROXY=1`.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trust_proxy: bool) -> String {
    if trust_proxy {
        if let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
        {
            return first.trim().to_string();
        }
    }
    peer.map(|p| p.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The authenticated caller of a REST request.
pub struct Caller(pub Actor);

/// The caller as the rate limiter already authenticated it, left in the
/// request's extensions so handlers don't authenticate twice.
#[derive(Clone)]
pub struct Authenticated(pub Actor);

/// The bearer token, if the request carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(Authenticated(actor)) = parts.extensions.get::<Authenticated>() {
            return Ok(Caller(actor.clone()));
        }
        if let Some(token) = bearer(&parts.headers) {
            return Ok(Caller(
                service::api_keys::authenticate(&state.db, token).await?,
            ));
        }
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::internal_bug("session layer missing"))?;
        match session::current_user(&session, &state.db).await? {
            Some(id) => Ok(Caller(Actor::User { id })),
            None => Err(AppError::Unauthorized(
                "Sign in, or send an API key as `Authorization: Bearer mino_pk_…`.".into(),
            )),
        }
    }
}

/// The client address of a request, for throttling.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(ClientIp(client_ip(
            &parts.headers,
            peer,
            state.config.trust_proxy,
        )))
    }
}

/// A query string whose problems answer 400 naming the parameter, not
/// axum's plain-text default.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => {
                let text = e.body_text();
                let detail = text.rsplit(": ").next().unwrap_or(&text).to_string();
                Err(AppError::Validation {
                    message: format!("The query string has an invalid value: {detail}"),
                    fields: vec![],
                })
            }
        }
    }
}

/// A response body streamed from chunks a task sends as it produces them
/// (exports, the audit log's CSV); an `Err` chunk ends the response early.
pub fn channel_body(
    rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
) -> axum::body::Body {
    axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}
