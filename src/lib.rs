//! Mino: a team portal for running web-extraction agents over batches of
//! websites and measuring them against ground truth.
//!
//! Layers: `app` (UI) → `api` (server functions) / `rest` (REST API) →
//! `server::service` (rules and permissions) → `server::db` (queries).

pub mod api;
pub mod app;
pub mod error;
pub mod model;

#[cfg(feature = "ssr")]
pub mod rest;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Lets end-to-end tests (and curious users) tell a hydrated page from a
    // server-rendered one.
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
