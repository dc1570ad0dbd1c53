//! The UI: the HTML shell, the router and the pages. Every route renders
//! completely on the server (`SsrMode::Async`) so pages work before — and
//! without — hydration; forms are `ActionForm`s that post to server
//! functions, which redirect back when JavaScript is off.

pub mod components;
pub mod hooks;
pub mod live;
pub mod pages;
pub mod upload;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use pages::{
    account, audit, auth, batches, compare, executions, experiments, home, keys, orgs, projects,
    providers, team, usage, webhooks,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The page's Content-Security-Policy names the nonce Leptos put on this
    // response's inline scripts.
    #[cfg(feature = "ssr")]
    crate::server::security::provide_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                // In the shell (rendered on the server only): the hashed
                // name comes from hash.txt beside the server binary.
                <HashedStylesheet options=options.clone() id="leptos" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|text: String| {
            if text.is_empty() { "Mino".to_string() } else { format!("{text} · Mino") }
        } />
        <Router>
            <Routes fallback=|| view! { <components::not_found::NotFound /> }>
                <Route path=path!("/") view=home::Home ssr=SsrMode::Async />
                <Route path=path!("/login") view=auth::SignInPage ssr=SsrMode::Async />
                <Route path=path!("/signup") view=auth::SignUpPage ssr=SsrMode::Async />
                <Route path=path!("/invite/:token") view=team::AcceptInvitationPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=pages::AppShell ssr=SsrMode::Async>
                    <Route path=path!("/account") view=account::AccountPage />
                    <Route path=path!("/orgs/new") view=orgs::NewOrgPage />
                    <Route path=path!("/o/:slug") view=orgs::OrgOverviewPage />
                    <Route path=path!("/o/:slug/members") view=team::MembersPage />
                    <Route path=path!("/o/:slug/api-keys") view=keys::ApiKeysPage />
                    <Route path=path!("/o/:slug/audit-log") view=audit::AuditLogPage />
                    <Route path=path!("/o/:slug/usage") view=usage::UsagePage />
                    <Route path=path!("/o/:slug/webhooks") view=webhooks::WebhooksPage />
                    <Route path=path!("/o/:slug/model-providers") view=providers::ModelProvidersPage />
                    <Route path=path!("/o/:slug/settings") view=orgs::OrgSettingsPage />
                    <Route path=path!("/o/:slug/projects") view=projects::ProjectsPage />
                    <Route path=path!("/o/:slug/projects/:id") view=projects::ProjectPage />
                    <Route path=path!("/o/:slug/projects/:id/instructions") view=projects::InstructionsPage />
                    <Route path=path!("/o/:slug/projects/:id/history") view=projects::HistoryPage />
                    <Route path=path!("/o/:slug/projects/:id/settings") view=projects::ProjectSettingsPage />
                    <Route path=path!("/o/:slug/projects/:id/upload") view=batches::UploadPage />
                    <Route path=path!("/o/:slug/batches/:id") view=batches::BatchPage />
                    <Route path=path!("/o/:slug/executions/:id") view=executions::ExecutionPage />
                    <Route path=path!("/o/:slug/jobs/:job") view=executions::JobPage />
                    <Route path=path!("/o/:slug/compare") view=compare::ComparePage />
                    <Route path=path!("/o/:slug/experiments/:id") view=experiments::ExperimentPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
