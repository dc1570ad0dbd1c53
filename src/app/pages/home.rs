//! `/`: sends signed-out visitors to sign in, members to their first
//! organization, and new users to create one.

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::api::account::get_me;
use crate::app::components::{ErrorBox, Loading};

#[component]
pub fn Home() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(None) => view! { <Redirect path="/login" /> }.into_any(),
                    Ok(Some(me)) => match me
                        .orgs
                        .iter()
                        .find(|o| Some(&o.slug) == me.last_org.as_ref())
                        .or(me.orgs.first())
                    {
                        Some(org) => view! { <Redirect path=format!("/o/{}", org.slug) /> }.into_any(),
                        None => view! { <Redirect path="/orgs/new" /> }.into_any(),
                    },
                    Err(e) => view! { <main class="page"><ErrorBox error=e /></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}
