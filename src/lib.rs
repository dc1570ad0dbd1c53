//! Mino: a team portal for running web-extraction agents over batches of
//! websites and measuring them against ground truth.
//!
//! Layers: `app` (UI) → `api` (server functions) / `rest` (REST API) →
//! `server::service` (rules and permissions) → `server::db` (queries).

// Leptos views are deeply nested types; release builds (which don't erase
// component types) need more room than the default 128.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod error;
pub mod model;
pub mod nav;

#[cfg(feature = "ssr")]
pub mod rest;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Lets end-to-end tests tell a hydrated page from a server-rendered one.
    // Suspense content hydrates on the microtask queue after hydrate_body
    // returns, so mark the page on the next macrotask, when that is done.
    leptos::prelude::set_timeout(
        || {
            if let Some(body) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.body())
            {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}
