//! `/account`: change password (which signs out every other session).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::account::ChangePassword;
use crate::app::components::{action_error, invalid, FieldError, FormError};

#[component]
pub fn AccountPage() -> impl IntoView {
    let action = ServerAction::<ChangePassword>::new();
    let error = action_error(action);
    let done = move || matches!(action.value().get(), Some(Ok(())));
    view! {
        <Title text="Account" />
        <h1>"Account"</h1>
        <section class="card">
            <h2>"Change password"</h2>
            <p class="muted">"Changing your password signs you out everywhere else."</p>
            <Show when=done>
                <div class="alert alert-ok" role="status">"Password changed. Other sessions were signed out."</div>
            </Show>
            <FormError error />
            <ActionForm action>
                <label for="current_password">"Current password"</label>
                <input id="current_password" name="current_password" type="password"
                    autocomplete="current-password" required
                    aria-invalid=invalid(error, "current_password") aria-describedby="current_password-error" />
                <FieldError error field="current_password" />
                <label for="new_password">"New password"</label>
                <input id="new_password" name="new_password" type="password" autocomplete="new-password"
                    required minlength="10"
                    aria-invalid=invalid(error, "new_password") aria-describedby="new_password-error" />
                <FieldError error field="new_password" />
                <button type="submit" class="button primary" disabled=move || action.pending().get()>
                    "Change password"
                </button>
            </ActionForm>
        </section>
    }
}
