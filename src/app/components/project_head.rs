//! The project's name, description and tabs, above each project page.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::model::Project;

/// The project's name, description and tabs, above each project page.
#[component]
pub fn ProjectHead(project: Project, current: &'static str) -> impl IntoView {
    let base = format!("/o/{}/projects/{}", project.org_slug, project.id);
    let tab = |href: String, label: &'static str, key: &'static str| {
        view! {
            <a href=href aria-current=(current == key).then_some("page")>{label}</a>
        }
    };
    view! {
        <Title text=project.name.clone() />
        <crate::app::components::crumbs::Crumbs items=vec![("Projects".to_string(), format!("/o/{}/projects", project.org_slug))] />
        <div class="page-head">
            <h1>{project.name.clone()}</h1>
            <span class="badge" title="The instruction version executions use by default">"production v" {project.production_version}</span>
        </div>
        {(!project.description.is_empty()).then(|| view! { <p class="muted">{project.description.clone()}</p> })}
        <nav class="tabs" aria-label="Project">
            {tab(base.clone(), "Batches", "overview")}
            {tab(format!("{base}/instructions"), "Instructions", "instructions")}
            {tab(format!("{base}/history"), "History", "history")}
            {tab(format!("{base}/settings"), "Fields & settings", "settings")}
        </nav>
    }
}
