//! Sign in and sign up: standalone pages that work without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use crate::api::account::{get_me, SignIn, SignUp};
use crate::app::components::{action_error, invalid, FieldError, FormError};

fn next_param() -> Signal<String> {
    let query = use_query_map();
    Signal::derive(move || query.read().get("next").unwrap_or_else(|| "/".into()))
}

/// Someone already signed in goes straight on to where they were headed.
#[component]
fn RedirectIfSignedIn(next: Signal<String>) -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(_)) => {
                        let target = crate::nav::safe_next(Some(next.get_untracked()));
                        Some(view! { <Redirect path=target /> })
                    }
                    _ => None,
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let error = action_error(action);
    let query = use_query_map();
    // Set when a form posted without JavaScript was refused.
    let redirected_error = move || match query.read().get("error").as_deref() {
        Some("credentials") => Some("The email or password is incorrect."),
        Some("throttled") => Some("Too many failed attempts. Wait a few minutes and try again."),
        _ => None,
    };
    let next = next_param();
    view! {
        <Title text="Sign in" />
        <RedirectIfSignedIn next />
        <div class="centered">
            <div class="card narrow">
                <h1 class="brandmark">"Mino"</h1>
                <h2>"Sign in"</h2>
                <Show when=move || redirected_error().is_some() && error.get().is_none()>
                    <div class="alert alert-error" role="alert">{redirected_error}</div>
                </Show>
                <FormError error />
                <ActionForm action>
                    <input type="hidden" name="next" value=next />
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required
                        aria-invalid=invalid(error, "email") />
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required />
                    <button type="submit" class="button primary wide" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <p class="muted">
                    "New to Mino? "
                    <a href=move || format!("/signup?next={}", next.get())>"Create an account"</a>
                </p>
            </div>
        </div>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let error = action_error(action);
    let next = next_param();
    let query = use_query_map();
    let email = move || query.read().get("email").unwrap_or_default();
    // Set when a form posted without JavaScript was refused.
    let redirected_error = move || match query.read().get("error").as_deref() {
        Some("taken") => Some("An account with this email already exists. Sign in instead."),
        Some("invalid") => Some(
            "Check the form: a name of 1 to 100 characters, a valid email address and a \
             password of at least 10 characters.",
        ),
        _ => None,
    };
    view! {
        <Title text="Create an account" />
        <RedirectIfSignedIn next />
        <div class="centered">
            <div class="card narrow">
                <h1 class="brandmark">"Mino"</h1>
                <h2>"Create your account"</h2>
                <Show when=move || query.read().get("deleted").is_some()>
                    <div class="alert alert-ok" role="status" data-testid="account-deleted">"Your account was deleted."</div>
                </Show>
                <Show when=move || redirected_error().is_some() && error.get().is_none()>
                    <div class="alert alert-error" role="alert">{redirected_error}</div>
                </Show>
                <FormError error />
                <ActionForm action>
                    <input type="hidden" name="next" value=next />
                    <label for="name">"Your name"</label>
                    <input id="name" name="name" autocomplete="name" required maxlength="100"
                        aria-invalid=invalid(error, "name") aria-describedby="name-error" />
                    <FieldError error field="name" />
                    <label for="email">"Work email"</label>
                    <input id="email" name="email" type="email" autocomplete="email" required
                        value=email
                        aria-invalid=invalid(error, "email") aria-describedby="email-error" />
                    <FieldError error field="email" />
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="new-password"
                        required minlength="10"
                        aria-invalid=invalid(error, "password") aria-describedby="password-error password-hint" />
                    <p class="hint" id="password-hint">"At least 10 characters."</p>
                    <FieldError error field="password" />
                    <button type="submit" class="button primary wide" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Creating…" } else { "Create account" }}
                    </button>
                </ActionForm>
                <p class="muted">
                    "Already have an account? "
                    <a href=move || format!("/login?next={}", next.get())>"Sign in"</a>
                </p>
            </div>
        </div>
    }
}
