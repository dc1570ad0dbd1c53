//! Building blocks shared by pages, which import components and never each
//! other: here field errors, form-level errors, loading and error states,
//! dates; in the submodules badges, diffs, the not-found page, runs rows,
//! the project header, exports, the live view of browser jobs and the
//! results views.

pub mod badges;
pub mod copy;
pub mod crumbs;
pub mod diff;
pub mod experiments;
pub mod exports;
pub mod live_frame;
pub mod not_found;
pub mod project_head;
pub mod results;
pub mod runs;
pub mod suggest;

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::error::AppError;

/// The latest error of an action, if its last run failed.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
    ServerAction<I>: Clone,
{
    let value = action.value();
    Signal::derive(move || value.get().and_then(|r| r.err()))
}

/// The message under one input, linked to it with `aria-describedby`.
#[component]
pub fn FieldError(error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    let message = move || error.get().and_then(|e| e.message_for(field));
    view! {
        <Show when=move || message().is_some()>
            <p class="field-error" id=format!("{field}-error") role="alert">
                {message}
            </p>
        </Show>
    }
}

/// An error that belongs to the whole form (not one field).
#[component]
pub fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
    let message = move || {
        error
            .get()
            .filter(|e| e.field_errors().is_empty())
            .map(|e| e.to_string())
    };
    view! {
        <Show when=move || message().is_some()>
            <div class="alert alert-error" role="alert">{message}</div>
        </Show>
    }
}

/// What a page shows when loading its data failed, with the matching HTTP
/// status when rendered on the server. Something missing — or in another
/// organization, which looks the same — gets the 404 page.
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    if let AppError::NotFound(_) = error {
        return view! { <not_found::NotFound /> }.into_any();
    }
    // 401 is left to the shell, which redirects to sign in.
    if !matches!(error, AppError::Unauthorized(_)) {
        not_found::set_status(error.status());
    }
    view! {
        <div class="alert alert-error" role="alert">
            <strong>{error.to_string()}</strong>
            <span class="muted">" (" {error.code()} ")"</span>
        </div>
    }
    .into_any()
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="loading" aria-live="polite">"Loading…"</p> }
}

/// A UTC timestamp, readable and exact.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Says why a form's button is disabled until the page is live. Not a
/// `<noscript>`: with JavaScript on, its content is raw text that hydration
/// can't walk. Rendered on the server, removed once hydrated.
#[component]
pub fn NeedsJavascript(what: &'static str) -> impl IntoView {
    let hydrated = crate::app::hooks::use_hydrated();
    view! {
        <Show when=move || !hydrated.get()>
            <p class="hint">{what} " needs JavaScript: the result is shown only once, in this page."</p>
        </Show>
    }
}

/// `aria-invalid` for an input whose field has an error.
pub fn invalid(error: Signal<Option<AppError>>, field: &'static str) -> impl Fn() -> &'static str {
    move || {
        if error.get().and_then(|e| e.message_for(field)).is_some() {
            "true"
        } else {
            "false"
        }
    }
}
