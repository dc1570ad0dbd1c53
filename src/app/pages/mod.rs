//! Pages, one module per area, plus the signed-in shell and the 404 page.

pub mod account;
pub mod audit;
pub mod auth;
pub mod batches;
pub mod compare;
pub mod executions;
pub mod experiments;
pub mod guide;
pub mod home;
pub mod keys;
pub mod orgs;
pub mod projects;
pub mod providers;
pub mod team;
pub mod usage;
pub mod webhooks;

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect, A};
use leptos_router::hooks::{use_location, use_params_map};

use crate::api::account::{get_me, SignOut};
use crate::app::components::ErrorBox;
use crate::model::{Me, Role};

/// The signed-in frame: header with organization switcher, navigation and
/// user menu. Sends visitors who are not signed in to the sign-in page.
///
/// Only the header depends on the `me` resource. The page (`Outlet`) is its
/// sibling, not its child: `me` is re-read on every navigation, and a page
/// inside that branch would be rebuilt — and its data loaded twice, out of
/// step with hydration — whenever `me` resolves again.
#[component]
pub fn AppShell() -> impl IntoView {
    let location = use_location();
    // Re-read on every navigation: organizations appear and disappear as
    // the user creates, joins and leaves them.
    let me = Resource::new(move || location.pathname.get(), |_| get_me());
    view! {
        <a class="skip" href="#content">"Skip to content"</a>
        <Suspense fallback=|| view! { <header class="topbar"><span class="brand">"Mino"</span></header> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => view! { <TopBar me /> }.into_any(),
                    Ok(None) => {
                        let next = location.pathname.get_untracked();
                        view! { <Redirect path=format!("/login?next={next}") /> }.into_any()
                    }
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                }
            })}
        </Suspense>
        <main class="page" id="content" tabindex="-1">
            <usage::BudgetBanner />
            <Outlet />
        </main>
    }
}

#[component]
fn TopBar(me: Me) -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug");
    let current = {
        let orgs = me.orgs.clone();
        move || slug().and_then(|s| orgs.iter().find(|o| o.slug == s).cloned())
    };
    let sign_out = ServerAction::<SignOut>::new();
    let orgs = me.orgs.clone();
    let current_for_nav = current.clone();
    view! {
        <header class="topbar">
            <a href="/" class="brand" aria-label="Mino home">"Mino"</a>
            <details class="menu switcher">
                <summary aria-label="Switch organization">
                    {
                        let current = current.clone();
                        move || current().map(|o| o.name).unwrap_or_else(|| "Organizations".into())
                    }
                </summary>
                <ul role="list">
                    {orgs
                        .into_iter()
                        .map(|o| {
                            view! {
                                <li>
                                    <a href=format!("/o/{}", o.slug)>
                                        {o.name} <span class="muted small">" · " {o.role.label()}</span>
                                    </a>
                                </li>
                            }
                        })
                        .collect_view()}
                    <li class="sep"><a href="/orgs/new">"+ New organization"</a></li>
                </ul>
            </details>
            <nav class="mainnav" aria-label="Organization">
                {move || {
                    current_for_nav()
                        .map(|o| {
                            let base = format!("/o/{}", o.slug);
                            let is_admin = o.role >= Role::Admin;
                            let usage = format!("{base}/usage");
                            let (projects, members, keys, hooks, models, audit, settings) = (
                                format!("{base}/projects"),
                                format!("{base}/members"),
                                format!("{base}/api-keys"),
                                format!("{base}/webhooks"),
                                format!("{base}/model-providers"),
                                format!("{base}/audit-log"),
                                format!("{base}/settings"),
                            );
                            view! {
                                <A href=base exact=true>"Overview"</A>
                                <A href=projects>"Projects"</A>
                                <A href=members>"Team"</A>
                                <A href=usage>"Usage"</A>
                                <Show when=move || is_admin>
                                    <A href=keys.clone()>"API keys"</A>
                                    <A href=hooks.clone()>"Webhooks"</A>
                                    <A href=models.clone()>"Models"</A>
                                    <A href=audit.clone()>"Audit log"</A>
                                </Show>
                                <A href=settings>"Settings"</A>
                            }
                        })
                }}
            </nav>
            <details class="menu usermenu">
                <summary aria-label="Account menu">{me.user.name.clone()}</summary>
                <ul role="list">
                    <li class="muted small">{me.user.email.clone()}</li>
                    <li><a href="/account">"Account and password"</a></li>
                    {move || slug().map(|s| view! {
                        <li><a href=format!("/o/{s}?guide=1") data-testid="open-guide">"Getting-started guide"</a></li>
                    })}
                    <li>
                        <ActionForm action=sign_out>
                            <button type="submit" class="linklike">"Sign out"</button>
                        </ActionForm>
                    </li>
                </ul>
            </details>
        </header>
    }
}
