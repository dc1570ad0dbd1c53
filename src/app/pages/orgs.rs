//! Creating an organization, its overview and its settings.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::orgs::{
    get_org, list_members, CreateOrg, DeleteOrg, RenameOrg, SetRetention, UpdateLimits,
};
use crate::app::components::{
    action_error, invalid, when, ErrorBox, FieldError, FormError, Loading,
};
use crate::app::hooks::use_slug;
use crate::model::Role;

#[component]
pub fn NewOrgPage() -> impl IntoView {
    let action = ServerAction::<CreateOrg>::new();
    let error = action_error(action);
    view! {
        <Title text="New organization" />
        <h1>"Create an organization"</h1>
        <section class="card">
            <p class="muted">
                "An organization holds your team's projects, batches and results. "
                "You will be its owner and can invite teammates next."
            </p>
            <FormError error />
            <ActionForm action>
                <label for="name">"Organization name"</label>
                <input id="name" name="name" required maxlength="100" placeholder="e.g. Acme Research"
                    aria-invalid=invalid(error, "name") aria-describedby="name-error" />
                <FieldError error field="name" />
                <button type="submit" class="button primary" disabled=move || action.pending().get()>
                    "Create organization"
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn OrgOverviewPage() -> impl IntoView {
    let slug = use_slug();
    let data = Resource::new(
        move || slug.get(),
        |slug| async move {
            let org = get_org(slug.clone()).await?;
            let members = list_members(slug.clone()).await?;
            let projects = crate::api::projects::list_projects(slug.clone(), None).await?;
            let guide = crate::api::guide::get_guide(slug).await?;
            Ok::<_, crate::error::AppError>((org, members, projects, guide))
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((org, members, projects, guide)) => {
                        let base = format!("/o/{}", org.slug);
                        let is_admin = org.role >= Role::Admin;
                        let alone = members.len() == 1;
                        view! {
                            <Title text=org.name.clone() />
                            <div class="page-head">
                                <h1>{org.name.clone()}</h1>
                                <span class="badge">{org.role.label()}</span>
                            </div>
                            // The guide through the whole loop, until done or put away;
                            // then the first call to action.
                            <crate::app::pages::guide::GuideCard slug=org.slug.clone() guide />
                            {match projects.items.first() {
                                None if org.role >= Role::Member => view! {
                                    <section class="card callout" data-testid="first-step">
                                        <h2>"Start here"</h2>
                                        <p>"Load the demo project: 200 products of the built-in shop with expected values, ready to run, review and compare. Or create your own project."</p>
                                        <a class="button primary" href=format!("{base}/projects#demo")>"Load the demo project"</a>
                                        " " <a class="button" href=format!("{base}/projects#new-project")>"Create a project"</a>
                                    </section>
                                }.into_any(),
                                None => view! {
                                    <section class="card callout" data-testid="first-step">
                                        <p>"No projects yet: a member or admin of this organization creates them."</p>
                                    </section>
                                }.into_any(),
                                Some(p) => view! {
                                    <section class="card callout" data-testid="first-step">
                                        <h2>"Continue"</h2>
                                        <a class="button primary" href=format!("{base}/projects/{}", p.id)>{format!("Open {}", p.name)}</a>
                                    </section>
                                }.into_any(),
                            }}
                            <div class="grid">
                                <section class="card">
                                    <h2>"Projects"</h2>
                                    <p class="stat">{projects.items.len()}{projects.next_cursor.is_some().then_some("+")}</p>
                                    <p class="muted">{match projects.items.first() {
                                        Some(p) => format!("latest: {}", p.name),
                                        None if org.role >= Role::Member => "Create one to start: instructions, fields and batches of sites.".to_string(),
                                        None => "None yet.".to_string(),
                                    }}</p>
                                    <a href=format!("{base}/projects")>"See the projects"</a>
                                </section>
                                <section class="card">
                                    <h2>"Team"</h2>
                                    <p class="stat">{members.len()}</p>
                                    <p class="muted">{if members.len() == 1 { "member" } else { "members" }}</p>
                                    <a href=format!("{base}/members")>"See the team"</a>
                                </section>
                                <section class="card">
                                    <h2>"Plan limits"</h2>
                                    <p>{crate::model::thousands(org.max_projects as i64)} " projects · " {crate::model::thousands(org.max_executions_per_month as i64)} " executions a month"</p>
                                    <p class="muted small">"Created " {when(org.created_at)}</p>
                                </section>
                            </div>
                            <Show when=move || is_admin && alone>
                                <section class="card callout">
                                    <h2>"Next: bring your team"</h2>
                                    <p>"You are the only member. Invite analysts and engineers with the role that fits them."</p>
                                    <a class="button primary" href=format!("/o/{}/members#invite", slug.get_untracked())>"Invite teammates"</a>
                                </section>
                            </Show>
                            <Show when=move || is_admin>
                                <section class="card">
                                    <h2>"Automate with the API"</h2>
                                    <p>"Programs and CI jobs use the REST API under " <code>"/api/v1"</code> " with an API key."</p>
                                    <a href=format!("/o/{}/api-keys", slug.get_untracked())>"Manage API keys"</a>
                                </section>
                            </Show>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn OrgSettingsPage() -> impl IntoView {
    let slug = use_slug();
    let rename = ServerAction::<RenameOrg>::new();
    let limits = ServerAction::<UpdateLimits>::new();
    let retention = ServerAction::<SetRetention>::new();
    let delete = ServerAction::<DeleteOrg>::new();
    let retention_error = action_error(retention);
    let rename_error = action_error(rename);
    let limits_error = action_error(limits);
    let delete_error = action_error(delete);
    let org = Resource::new(
        move || {
            (
                slug.get(),
                rename.version().get(),
                limits.version().get(),
                retention.version().get(),
            )
        },
        |(slug, ..)| get_org(slug),
    );
    view! {
        <Title text="Settings" />
        <h1>"Settings"</h1>
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match org.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(org) => {
                        let can_rename = org.role >= Role::Admin;
                        let is_owner = org.role == Role::Owner;
                        let name = org.name.clone();
                        let (org_id, org_name, org_slug) = (org.id.to_string(), org.name.clone(), org.slug.clone());
                        let (org_id2, org_name2) = (org_id.clone(), org_name.clone());
                        let (org_id3, org_id4) = (org_id.clone(), org_id.clone());
                        let days = org.retention_days;
                        view! {
                            <section class="card">
                                <h2>"Name"</h2>
                                {if !can_rename {
                                    view! { <p>{name}</p><p class="muted">"Admins and owners can rename the organization."</p> }.into_any()
                                } else {
                                    view! {
                                    <FormError error=rename_error />
                                    <ActionForm action=rename>
                                        <input type="hidden" name="org" value=org_id />
                                        <label for="org-name">"Organization name"</label>
                                        <input id="org-name" name="name" required maxlength="100" value=org_name
                                            aria-invalid=invalid(rename_error, "name") aria-describedby="name-error" />
                                        <FieldError error=rename_error field="name" />
                                        <button type="submit" class="button">"Rename"</button>
                                    </ActionForm>
                                    <Show when=move || matches!(rename.value().get(), Some(Ok(_)))>
                                        <p class="alert alert-ok" role="status">"Renamed."</p>
                                    </Show>
                                    }.into_any()
                                }}
                                <p class="muted small">"Address: /o/" {org_slug}</p>
                            </section>
                            <section class="card">
                                <h2>"Retention"</h2>
                                <p class="hint">"Browser runs keep a screenshot of every attempt, and test runs keep the page each attempt read (for “view the page as the agent saw it” and re-extracting from a run). Both are removed this many days after they were taken; results, logs and verdicts stay."</p>
                                {if can_rename {
                                    view! {
                                        <FormError error=retention_error />
                                        <ActionForm action=retention attr:class="inline-form">
                                            <input type="hidden" name="org" value=org_id4 />
                                            <div class="field">
                                                <label for="retention_days">"Keep screenshots and pages for (days)"</label>
                                                <input id="retention_days" name="retention_days" inputmode="numeric" required
                                                    value=days.to_string()
                                                    aria-invalid=invalid(retention_error, "retention_days") aria-describedby="retention_days-error" />
                                            </div>
                                            <button type="submit" class="button">"Save retention"</button>
                                        </ActionForm>
                                        <FieldError error=retention_error field="retention_days" />
                                        <Show when=move || matches!(retention.value().get(), Some(Ok(_)))>
                                            <p class="alert alert-ok" role="status">"Retention saved. Anything older goes at the next hourly cleanup."</p>
                                        </Show>
                                    }.into_any()
                                } else {
                                    view! {
                                        <p>{format!("Screenshots and kept pages are kept for {days} days.")}</p>
                                        <p class="muted">"Admins and owners can change this."</p>
                                    }.into_any()
                                }}
                            </section>
                            <section class="card">
                                <h2>"Plan limits"</h2>
                                {if is_owner {
                                    view! {
                                        <FormError error=limits_error />
                                        <ActionForm action=limits attr:class="inline-form">
                                            <input type="hidden" name="org" value=org_id3 />
                                            <div class="field">
                                                <label for="max_projects">"Projects"</label>
                                                <input id="max_projects" name="max_projects" inputmode="numeric" required
                                                    value=org.max_projects.to_string()
                                                    aria-invalid=invalid(limits_error, "max_projects") aria-describedby="max_projects-error" />
                                            </div>
                                            <div class="field">
                                                <label for="max_executions_per_month">"Executions a month"</label>
                                                <input id="max_executions_per_month" name="max_executions_per_month" inputmode="numeric" required
                                                    value=org.max_executions_per_month.to_string()
                                                    aria-invalid=invalid(limits_error, "max_executions_per_month") aria-describedby="max_executions_per_month-error" />
                                            </div>
                                            <div class="field">
                                                <label for="api_requests_per_minute">"API requests a minute, all keys"</label>
                                                <input id="api_requests_per_minute" name="api_requests_per_minute" inputmode="numeric" required
                                                    value=org.api_requests_per_minute.to_string()
                                                    aria-invalid=invalid(limits_error, "api_requests_per_minute") aria-describedby="api_requests_per_minute-error" />
                                            </div>
                                            <div class="field">
                                                <label for="key_requests_per_minute">"API requests a minute, per key"</label>
                                                <input id="key_requests_per_minute" name="key_requests_per_minute" inputmode="numeric" required
                                                    value=org.key_requests_per_minute.to_string()
                                                    aria-invalid=invalid(limits_error, "key_requests_per_minute") aria-describedby="key_requests_per_minute-error" />
                                            </div>
                                            <div class="field">
                                                <label for="max_concurrency">"Jobs in flight per run"</label>
                                                <input id="max_concurrency" name="max_concurrency" inputmode="numeric" required
                                                    value=org.max_concurrency.to_string()
                                                    aria-invalid=invalid(limits_error, "max_concurrency") aria-describedby="max_concurrency-error" />
                                            </div>
                                            <button type="submit" class="button">"Save limits"</button>
                                        </ActionForm>
                                        <FieldError error=limits_error field="max_projects" />
                                        <FieldError error=limits_error field="max_executions_per_month" />
                                        <FieldError error=limits_error field="api_requests_per_minute" />
                                        <FieldError error=limits_error field="key_requests_per_minute" />
                                        <FieldError error=limits_error field="max_concurrency" />
                                        <Show when=move || matches!(limits.value().get(), Some(Ok(_)))>
                                            <p class="alert alert-ok" role="status">"Limits saved."</p>
                                        </Show>
                                    }
                                    .into_any()
                                } else {
                                    view! {
                                        <p>{org.max_projects} " projects · " {org.max_executions_per_month} " executions a month · "
                                            {org.api_requests_per_minute} " API requests a minute (" {org.key_requests_per_minute} " per key) · "
                                            {org.max_concurrency} " jobs in flight per run"</p>
                                        <p class="muted">"Owners set the limits; reaching one answers QUOTA_EXCEEDED, or RATE_LIMIT_EXCEEDED for requests."</p>
                                    }
                                    .into_any()
                                }}
                            </section>
                            {is_owner.then(|| view! {
                                <section class="card" aria-labelledby="export-all-title">
                                    <h2 id="export-all-title">"Export all data"</h2>
                                    <p>"One zip of everything this organization has in Mino: projects and their instruction versions and fields, batches with every row, runs, jobs and attempts, the history of expected values, webhooks (without their secrets), the audit log and usage — CSV files, the organization as JSON, and a manifest listing each file with its row count. It is read from one consistent snapshot and streamed as it is made; the export is recorded in the audit log."</p>
                                    <form method="post" action=format!("/api/v1/orgs/{}/export", org_id2)>
                                        <button type="submit" class="button" data-testid="export-all">"Download everything (zip)"</button>
                                    </form>
                                </section>
                            })}
                            {is_owner.then(|| view! {
                                <section class="card danger">
                                    <h2>"Delete organization"</h2>
                                    <p>"Deleting removes the organization, its members' access, its API keys and everything in it. This cannot be undone."</p>
                                    <details class="confirm">
                                        <summary class="button danger">"Delete organization…"</summary>
                                        <FormError error=delete_error />
                                        <ActionForm action=delete>
                                            <input type="hidden" name="org" value=org_id2.clone() />
                                            <label for="confirm">"Type " <strong>{org_name2.clone()}</strong> " to confirm"</label>
                                            <input id="confirm" name="confirm" required autocomplete="off"
                                                aria-describedby="confirm-error" />
                                            <FieldError error=delete_error field="confirm" />
                                            <button type="submit" class="button danger">"Delete forever"</button>
                                        </ActionForm>
                                    </details>
                                </section>
                            })}
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
