//! `/account`: change password (which signs out every other session), and
//! delete the account.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::account::{get_account_deletion, ChangePassword, DeleteAccount};
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
        <DeleteAccountCard />
    }
}

/// Says what deleting takes with it (or what stands in the way) before
/// asking for the password.
#[component]
fn DeleteAccountCard() -> impl IntoView {
    let delete = ServerAction::<DeleteAccount>::new();
    let error = action_error(delete);
    let plan = Resource::new(|| (), |_| get_account_deletion());
    view! {
        <section class="card danger" aria-labelledby="delete-account-title">
            <h2 id="delete-account-title">"Delete account"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match plan.await {
                        Err(e) => view! { <crate::app::components::ErrorBox error=e /> }.into_any(),
                        Ok((_, blocking)) if !blocking.is_empty() => view! {
                            <p data-testid="delete-account-blocked">{format!(
                                "You are the only owner of {}, which {} other members. Make one of them an owner on the Team page, or delete the organization, before deleting your account.",
                                blocking.join(", "),
                                if blocking.len() == 1 { "has" } else { "have" }
                            )}</p>
                        }.into_any(),
                        Ok((with_it, _)) => view! {
                            <p>"Your sign-in, sessions and memberships end, API keys you created are revoked, and your entries in audit logs stay, signed \u{201c}deleted user\u{201d}. This cannot be undone."</p>
                            {(!with_it.is_empty()).then(|| view! {
                                <p><strong>{format!("Deleted with it, as you are their only member: {}.", with_it.join(", "))}</strong></p>
                            })}
                            <details class="confirm">
                                <summary class="button danger">"Delete my account…"</summary>
                                <FormError error />
                                <ActionForm action=delete>
                                    <label for="delete-password">"Your password"</label>
                                    <input id="delete-password" name="password" type="password" required
                                        autocomplete="current-password"
                                        aria-invalid=invalid(error, "password") aria-describedby="password-error" />
                                    <FieldError error field="password" />
                                    <button type="submit" class="button danger">"Delete my account forever"</button>
                                </ActionForm>
                            </details>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
