//! Security headers on every response.
//!
//! Pages get a Content-Security-Policy naming the per-response nonce that
//! Leptos puts on its hydration and resource scripts (set while the shell
//! renders, see [`provide_page_policy`]); everything else — REST, server
//! functions, bundle files, health checks — gets a policy that allows
//! nothing, since none of it is meant to be rendered as a document. The
//! built-in demo shop stands in for a third-party site with its own inline
//! scripts, so it gets a policy of its own.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::state::AppState;

/// For responses that are not pages: nothing may load, nothing may frame it.
const NOTHING: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The demo shop's pages run inline scripts (they render products late, as
/// JavaScript shops do) and must still never be framed.
const DEMO: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                    style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                    frame-ancestors 'none'; base-uri 'none'";

/// Powerful browser features Mino never uses.
const PERMISSIONS: &str =
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()";

/// The policy of a page rendered with `nonce`. Scripts: our bundle and the
/// inline scripts carrying the nonce; `wasm-unsafe-eval` lets the browser
/// compile the WebAssembly bundle. Styles: our stylesheet, plus `style`
/// attributes (progress bars and chart widths are set inline) but never
/// `<style>` elements. `connect-src 'self'` covers the server functions and
/// the live-updates socket.
pub fn page_policy(nonce: &str, watching: bool) -> String {
    // `cargo leptos watch` reloads pages over a socket on another port.
    let connect = if watching { "'self' ws:" } else { "'self'" };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
         connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Called while the page shell renders: sets the page's policy with the
/// nonce Leptos generated for this response.
pub fn provide_page_policy() {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let watching = std::env::var_os("LEPTOS_WATCH").is_some();
    if let Ok(value) = HeaderValue::from_str(&page_policy(&nonce, watching)) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Middleware: the headers every response carries. A policy already set
/// (by a page) is kept.
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let demo = req.uri().path().starts_with("/demo/") || req.uri().path() == "/demo";
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if demo { DEMO } else { NOTHING };
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("permissions-policy", HeaderValue::from_static(PERMISSIONS));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if state.config.https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_policy_names_its_nonce_and_forbids_framing() {
        let p = page_policy("abc123", false);
        assert!(p.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"));
        assert!(p.contains("frame-ancestors 'none'"));
        let scripts = p
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        assert!(!scripts.contains("unsafe-inline"), "{scripts}");
        assert!(!p.contains("ws:"));
        assert!(page_policy("n", true).contains("connect-src 'self' ws:"));
    }
}
