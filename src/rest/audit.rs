//! The audit log: admins read it a page at a time, filtered, or download
//! the filtered log as CSV.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::model::{AuditEntry, Page};
use crate::server::http::{Caller, Json, Query};
use crate::server::service::audit::{self, AuditFilter};
use crate::server::service::orgs;
use crate::server::state::AppState;

/// `GET /orgs/{org}/audit-log?actor=&action=&resource_type=&resource_id=&since=&until=&cursor=&limit=`
pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<Page<AuditEntry>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    Ok(Json(audit::list(&state.db, &ctx, &filter).await?))
}

/// `GET /orgs/{org}/audit-log/export` with the same filters: a CSV file.
pub async fn export(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let rx = audit::export_csv(&state.db, &ctx, filter).await?;
    let mut res = crate::server::http::channel_body(rx).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-log.csv\""),
    );
    Ok(res)
}
