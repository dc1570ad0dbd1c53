//! Cross-site request forgery guard for cookie-authenticated writes.
//!
//! Server functions do no origin check of their own, so this middleware sits
//! on the server-function prefix and on `/api/v1`: a state-changing request
//! whose `Sec-Fetch-Site` says cross-site, or whose `Origin` is not this
//! host, is refused. Requests with a bearer key carry no cookie a third
//! party could ride on, so they are exempt.

use axum::extract::Request;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

pub async fn guard(req: Request, next: Next) -> Response {
    if is_forged(&req) {
        return AppError::forbidden(
            "Cross-site request refused: this call must come from Mino's own pages.",
        )
        .into_response();
    }
    next.run(req).await
}

fn is_forged(req: &Request) -> bool {
    let path = req.uri().path();
    let guarded = path.starts_with("/api/v1/") || path.starts_with(crate::api::RPC_PREFIX);
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !guarded || safe || super::http::bearer(req.headers()).is_some() {
        return false;
    }
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        // "none" is a user typing the URL or using a bookmark.
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split("://").nth(1).unwrap_or("");
        if origin == "null" || origin_host != host {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "mino.test");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn foreign_writes_are_refused() {
        assert!(is_forged(&req(
            "POST",
            "/api/v1/orgs",
            &[("origin", "https://evil.test")]
        )));
        assert!(is_forged(&req(
            "POST",
            "/rpc/sign_out",
            &[("sec-fetch-site", "cross-site")]
        )));
        assert!(is_forged(&req(
            "DELETE",
            "/api/v1/orgs/x",
            &[("origin", "null")]
        )));
    }

    #[test]
    fn own_pages_reads_and_keys_pass() {
        assert!(!is_forged(&req(
            "POST",
            "/api/v1/orgs",
            &[("origin", "http://mino.test")]
        )));
        assert!(!is_forged(&req(
            "POST",
            "/rpc/sign_in",
            &[("sec-fetch-site", "same-origin")]
        )));
        assert!(!is_forged(&req(
            "GET",
            "/api/v1/orgs",
            &[("origin", "https://evil.test")]
        )));
        assert!(!is_forged(&req(
            "POST",
            "/api/v1/orgs",
            &[
                ("origin", "https://evil.test"),
                ("authorization", "Bearer mino_pk_x")
            ]
        )));
        assert!(!is_forged(&req("POST", "/api/v1/orgs", &[])));
    }
}
