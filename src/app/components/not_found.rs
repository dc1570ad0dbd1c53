//! The "not found" page and the response status it sets.

use leptos::prelude::*;
use leptos_meta::Title;

/// Sets the response status during server rendering.
pub fn set_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
        r.set_status(axum::http::StatusCode::from_u16(code).unwrap_or_default());
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Not found" />
        <div class="centered">
            <div class="card narrow">
                <h1>"Page not found"</h1>
                <p>"There is nothing here, or it belongs to an organization you are not in."</p>
                <p><a href="/" class="button">"Go to your dashboard"</a></p>
            </div>
        </div>
    }
}
