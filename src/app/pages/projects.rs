//! Projects: the list (with creation), a project's overview with its
//! batches, the instruction editor, the version history with side-by-side
//! diffs, and settings (details, agent, output fields, deletion).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::orgs::get_org;
use crate::api::projects::{
    diff_versions, get_instructions, get_project, list_batches, list_projects, list_versions,
    CreateProject, DeleteField, DeleteProject, LoadDemoProject, SaveField, SaveInstructions,
    SetProductionVersion, UpdateAgent, UpdateProject,
};
use crate::api::providers::list_model_choices;
use crate::app::components::diff::VersionDiffView;
use crate::app::components::project_head::ProjectHead;
use crate::app::components::{
    action_error, invalid, when, ErrorBox, FieldError, FormError, Loading,
};
use crate::app::hooks::{use_id, use_query, use_slug};
use crate::error::AppError;
use crate::model::{
    format_price, AgentKind, Comparator, EmptyMeans, ExtractionRule, Extractor, OutputField,
    Project, ProviderChoice, Role, RouteEntry, ValueType,
};

fn not_found(what: &str) -> AppError {
    AppError::NotFound(what.into())
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let slug = use_slug();
    let after = use_query("after");
    let create = ServerAction::<CreateProject>::new();
    let error = action_error(create);
    let demo = ServerAction::<LoadDemoProject>::new();
    let demo_error = action_error(demo);
    let data = Resource::new(
        move || (slug.get(), after.get()),
        |(slug, after)| async move {
            let org = get_org(slug.clone()).await?;
            let page = list_projects(slug, after).await?;
            Ok::<_, AppError>((org, page))
        },
    );
    view! {
        <Title text="Projects" />
        <div class="page-head"><h1>"Projects"</h1></div>
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((org, page)) => {
                        let can_create = org.role >= Role::Member;
                        let base = format!("/o/{}", org.slug);
                        let empty = page.items.is_empty() && after.get_untracked().is_none();
                        let rows = page.items.into_iter().map(|p| {
                            let href = format!("{base}/projects/{}", p.id);
                            view! {
                                <tr>
                                    <td>
                                        <a href=href><strong>{p.name.clone()}</strong></a>
                                        <div class="muted small clip" title=p.description.clone()>{p.description.clone()}</div>
                                    </td>
                                    <td class="num">{p.batch_count}</td>
                                    <td class="num hide-narrow">{p.row_count}</td>
                                    <td class="hide-narrow">"v" {p.production_version} {(p.latest_version != p.production_version).then(|| format!(" (latest v{})", p.latest_version))}</td>
                                    <td class="small hide-narrow">{when(p.updated_at)}</td>
                                </tr>
                            }
                        }).collect_view();
                        let next = page.next_cursor.map(|c| format!("{base}/projects?after={c}"));
                        let org_id = org.id.to_string();
                        view! {
                            {can_create.then(|| view! {
                                <FormError error=demo_error />
                                <ActionForm action=demo attr:class="demo-form" attr:id="demo">
                                    <input type="hidden" name="org" value=org_id.clone() />
                                    <button type="submit" class="button" disabled=move || demo.pending().get()>
                                        {move || if demo.pending().get() { "Loading the demo…" } else { "Load the demo project" }}
                                    </button>
                                    <span class="hint">" 200 products of the built-in demo shop, with expected values — a few deliberately wrong."</span>
                                </ActionForm>
                            })}
                            {can_create.then(|| view! {
                                <details class="card create" id="new-project" open=empty>
                                    <summary class="button primary">"New project"</summary>
                                    <FormError error />
                                    <ActionForm action=create>
                                        <input type="hidden" name="org" value=org.id.to_string() />
                                        <label for="project-name">"Name"</label>
                                        <input id="project-name" name="name" required maxlength="100" placeholder="e.g. Product prices"
                                            aria-invalid=invalid(error, "name") aria-describedby="name-error" />
                                        <FieldError error field="name" />
                                        <label for="project-description">"Description " <span class="muted">"(optional)"</span></label>
                                        <textarea id="project-description" name="description" rows="2" maxlength="2000"
                                            aria-describedby="description-error"></textarea>
                                        <FieldError error field="description" />
                                        <button type="submit" class="button primary" disabled=move || create.pending().get()>"Create project"</button>
                                    </ActionForm>
                                </details>
                            })}
                            {if empty {
                                view! {
                                    <section class="card callout">
                                        <h2>"No projects yet"</h2>
                                        <p>"A project holds the instructions an agent follows, the fields it extracts, and the batches of sites it runs on."</p>
                                        {if can_create {
                                            "Create one above, then upload a CSV of sites with the values you expect."
                                        } else {
                                            "Members of this organization create projects; you will see them here."
                                        }}
                                    </section>
                                }.into_any()
                            } else {
                                view! {
                                    <section class="card">
                                        <div class="table-wrap">
                                            <table>
                                                <thead><tr>
                                                    <th scope="col">"Project"</th>
                                                    <th scope="col" class="num">"Batches"</th>
                                                    <th scope="col" class="num hide-narrow">"Rows"</th>
                                                    <th scope="col" class="hide-narrow">"Instructions"</th>
                                                    <th scope="col" class="hide-narrow">"Updated"</th>
                                                </tr></thead>
                                                <tbody>{rows}</tbody>
                                            </table>
                                        </div>
                                        <nav class="pager" aria-label="Pages">
                                            {after.get_untracked().is_some().then(|| view! { <a href=format!("{base}/projects")>"← First page"</a> })}
                                            {next.map(|n| view! { <a href=n>"Next page →"</a> })}
                                        </nav>
                                    </section>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Loads the project of the route, reloading when `version` changes.
fn project_resource(
    version: impl Fn() -> usize + Send + Sync + 'static,
) -> Resource<Result<Project, AppError>> {
    let id = use_id();
    Resource::new(
        move || (id.get(), version()),
        |(id, _)| async move {
            match id {
                Some(id) => get_project(id).await,
                None => Err(not_found("Project")),
            }
        },
    )
}

#[component]
pub fn ProjectPage() -> impl IntoView {
    let id = use_id();
    let after = use_query("after");
    let data = Resource::new(
        move || (id.get(), after.get()),
        |(id, after)| async move {
            let id = id.ok_or_else(|| not_found("Project"))?;
            let project = get_project(id).await?;
            let batches = list_batches(id, after).await?;
            let production = get_instructions(id, Some(project.production_version)).await?;
            let runs = crate::api::projects::list_project_executions(id).await?;
            Ok::<_, AppError>((project, batches, production, runs))
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((project, batches, production, runs)) => {
                        let base = format!("/o/{}", project.org_slug);
                        let upload = format!("{base}/projects/{}/upload", project.id);
                        let can_edit = project.can_edit();
                        let fields = project.fields.len();
                        let first_page = after.get_untracked().is_none();
                        let rows = batches.items.iter().map(|b| view! {
                            <tr>
                                <td><a href=format!("{base}/batches/{}", b.id)><strong>{b.name.clone()}</strong></a>
                                    <div class="muted small">{b.file_name.clone()}</div></td>
                                <td class="num">{b.row_count}</td>
                                <td class="num hide-narrow">{b.gt_fields}</td>
                                <td class="small hide-narrow">{when(b.created_at)}</td>
                            </tr>
                        }).collect_view();
                        let empty = batches.items.is_empty() && first_page;
                        let next = batches.next_cursor.clone().map(|c| format!("{base}/projects/{}?after={c}", project.id));
                        let instructions_href = format!("{base}/projects/{}/instructions", project.id);
                        let excerpt: String = production.instructions.chars().take(600).collect();
                        let more = production.instructions.chars().count() > 600;
                        view! {
                            <ProjectHead project=project.clone() current="overview" />
                            <div class="grid">
                                <section class="card">
                                    <h2>"Instructions"</h2>
                                    {if production.instructions.trim().is_empty() {
                                        view! { <p class="muted">"No instructions yet. Describe what the agent should extract and how."</p> }.into_any()
                                    } else {
                                        view! { <pre class="instructions-excerpt">{excerpt}{more.then_some("…")}</pre> }.into_any()
                                    }}
                                    <a href=instructions_href>{if can_edit { "Edit instructions" } else { "Read instructions" }}</a>
                                </section>
                                <section class="card">
                                    <h2>"Output fields"</h2>
                                    <p class="stat">{fields}</p>
                                    <p class="muted">{if fields == 0 { "Fields come from the gt_ columns of uploaded batches, or add them by hand." } else { "extracted and compared per row" }}</p>
                                    <a href=format!("{base}/projects/{}/settings", project.id)>"Fields & settings"</a>
                                </section>
                            </div>
                            {(!runs.items.is_empty()).then(|| view! {
                                <section class="card">
                                    <h2>"Recent runs"</h2>
                                    <div class="table-wrap">
                                        <table data-testid="project-runs">
                                            <thead><tr><th scope="col">"Run"</th><th scope="col">"Batch"</th><th scope="col">"State"</th>
                                                <th scope="col" class="num">"Progress"</th><th scope="col" class="num hide-narrow">"Errors"</th>
                                                <th scope="col" class="hide-narrow">"Started"</th></tr></thead>
                                            <tbody>
                                                {runs.items.iter().map(|e| view! { <crate::app::components::runs::RunRow execution=e.clone() show_batch=true /> }).collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                </section>
                            })}
                            {(!runs.items.is_empty()).then(|| view! {
                                <crate::app::components::experiments::ExperimentsCard project_id=project.id org_slug=project.org_slug.clone() />
                            })}
                            <section class="card">
                                <div class="section-head">
                                    <h2>"Batches"</h2>
                                    {can_edit.then(|| view! { <a class="button primary" href=upload.clone()>"Upload a batch"</a> })}
                                </div>
                                {if empty {
                                    view! {
                                        <div class="empty">
                                            <p><strong>"No batches yet."</strong></p>
                                            <p>"A batch is a CSV of sites: one column with the URL, columns named "
                                                <code>"gt_<field>"</code> " with the values you expect, and any other columns as inputs."</p>
                                            <pre class="sample">"url,name,gt_price,gt_in_stock\nhttps://shop.example.com/p/1,Lamp,19.99,yes"</pre>
                                            {if can_edit { "Upload one to start." } else { "Members upload batches." }}
                                        </div>
                                    }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap">
                                            <table>
                                                <thead><tr>
                                                    <th scope="col">"Batch"</th>
                                                    <th scope="col" class="num">"Rows"</th>
                                                    <th scope="col" class="num hide-narrow">"Fields with expected values"</th>
                                                    <th scope="col" class="hide-narrow">"Uploaded"</th>
                                                </tr></thead>
                                                <tbody>{rows}</tbody>
                                            </table>
                                        </div>
                                        <nav class="pager" aria-label="Pages">
                                            {(!first_page).then(|| view! { <a href=format!("{base}/projects/{}", project.id)>"← Newest batches"</a> })}
                                            {next.map(|n| view! { <a href=n>"Older batches →"</a> })}
                                        </nav>
                                    }.into_any()
                                }}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn InstructionsPage() -> impl IntoView {
    let id = use_id();
    let save = ServerAction::<SaveInstructions>::new();
    let error = action_error(save);
    let data = Resource::new(
        move || (id.get(), save.version().get()),
        |(id, _)| async move {
            let id = id.ok_or_else(|| not_found("Project"))?;
            let project = get_project(id).await?;
            let latest = get_instructions(id, None).await?;
            Ok::<_, AppError>((project, latest))
        },
    );
    let saved = move || save.value().get().and_then(|r| r.ok());
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((project, latest)) => {
                        let can_edit = project.can_edit();
                        let chars = RwSignal::new(latest.instructions.chars().count());
                        let history = format!("/o/{}/projects/{}/history", project.org_slug, project.id);
                        let meta = format!(
                            "Version {} by {}, {}{}",
                            latest.version,
                            latest.author_name,
                            when(latest.created_at),
                            if latest.is_production { " · in production" } else { "" }
                        );
                        view! {
                            <ProjectHead project=project.clone() current="instructions" />
                            <section class="card">
                                <p class="muted small">{meta} " · " <a href=history>"history"</a></p>
                                {move || saved().map(|v| view! {
                                    <p class="alert alert-ok" role="status">"Saved as version " {v.version}
                                        {v.is_production.then_some(", now in production")} "."</p>
                                })}
                                <FormError error />
                                {if can_edit {
                                    view! {
                                        <ActionForm action=save>
                                            <input type="hidden" name="id" value=project.id.to_string() />
                                            <label for="instructions">"Instructions for the agent"</label>
                                            <textarea id="instructions" name="instructions" rows="18" class="mono"
                                                aria-invalid=invalid(error, "instructions") aria-describedby="instructions-error instructions-count"
                                                on:input=move |ev| chars.set(event_target_value(&ev).chars().count())>
                                                {latest.instructions.clone()}
                                            </textarea>
                                            <p id="instructions-count" class=move || { if chars.get() > 50_000 { "hint over" } else { "hint" } }>
                                                {move || chars.get()} " / 50,000 characters"
                                            </p>
                                            <FieldError error field="instructions" />
                                            <label for="note">"Change note " <span class="muted">"(optional)"</span></label>
                                            <input id="note" name="note" maxlength="500" placeholder="What changed, and why"
                                                aria-invalid=invalid(error, "note") aria-describedby="note-error" />
                                            <FieldError error field="note" />
                                            <label class="check" for="production">
                                                <input type="checkbox" id="production" name="production" />
                                                "Make this version the production version"
                                            </label>
                                            <button type="submit" class="button primary" disabled=move || save.pending().get()>"Save as a new version"</button>
                                            <p class="hint">"Every save is kept as a numbered version; older versions never change. A version also records the fields' extraction rules and the agent settings: changing those saves a new version too, so a run of any version extracts as it did then."</p>
                                        </ActionForm>
                                    }.into_any()
                                } else {
                                    view! {
                                        <pre class="instructions-full">{latest.instructions.clone()}</pre>
                                        <p class="muted">"Viewers read instructions; members edit them."</p>
                                    }.into_any()
                                }}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn HistoryPage() -> impl IntoView {
    let id = use_id();
    let query = use_query_map();
    let promote = ServerAction::<SetProductionVersion>::new();
    let promote_error = action_error(promote);
    let data = Resource::new(
        move || {
            let q = query.read();
            let num = |k: &str| q.get(k).and_then(|v| v.parse::<i32>().ok());
            (
                id.get(),
                num("a"),
                num("b"),
                num("view"),
                promote.version().get(),
            )
        },
        |(id, a, b, view, _)| async move {
            let id = id.ok_or_else(|| not_found("Project"))?;
            let project = get_project(id).await?;
            let versions = list_versions(id, None).await?;
            let diff = match (a, b) {
                (Some(a), Some(b)) => Some(diff_versions(id, a, b).await?),
                _ => None,
            };
            let shown = match view {
                Some(v) => Some(get_instructions(id, Some(v)).await?),
                None => None,
            };
            Ok::<_, AppError>((project, versions, diff, shown))
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((project, versions, diff, shown)) => {
                        let can_edit = project.can_edit();
                        let here = format!("/o/{}/projects/{}/history", project.org_slug, project.id);
                        let latest = versions.items.first().map(|v| v.version).unwrap_or(1);
                        let (def_a, def_b) = diff.as_ref().map(|d| (d.a, d.b)).unwrap_or(((latest - 1).max(1), latest));
                        let all = versions.items.clone();
                        let several = all.len() > 1;
                        let options = move |selected: i32| all.clone().into_iter().map(|v| view! {
                            <option value=v.version.to_string() selected=v.version == selected>
                                "v" {v.version} {(!v.note.is_empty()).then(|| format!(" — {}", v.note))}
                            </option>
                        }).collect_view();
                        let (opts_a, opts_b) = (options(def_a), options(def_b));
                        let project_id = project.id.to_string();
                        let rows = versions.items.into_iter().map(|v| {
                            let view_href = format!("{here}?view={}", v.version);
                            let prev_href = format!("{here}?a={}&b={}", (v.version - 1).max(1), v.version);
                            let pid = project_id.clone();
                            view! {
                                <tr>
                                    <td><strong>"v" {v.version}</strong>
                                        {v.is_production.then(|| view! { " " <span class="badge ok">"production"</span> })}</td>
                                    <td>{if v.note.is_empty() { view! { <span class="muted">"—"</span> }.into_any() } else { view! { <span>{v.note.clone()}</span> }.into_any() }}
                                        <span class="version-parts">{v.parts.iter().filter(|_| v.version > 1).map(|p| {
                                            let label = match p.as_str() { "fields" => "field rules", "agent" => "agent settings", other => other };
                                            view! { " " <span class="badge">{label.to_string()}</span> }
                                        }).collect_view()}</span></td>
                                    <td class="hide-narrow">{v.author_name.clone()}</td>
                                    <td class="small hide-narrow">{when(v.created_at)}</td>
                                    <td class="num hide-narrow">{crate::app::components::results::plural(v.lines as i64, "line")}</td>
                                    <td class="actions">
                                        <a href=view_href>"View"</a>
                                        {(v.version > 1).then(|| view! { " · " <a href=prev_href>"Changes"</a> })}
                                        {(can_edit && !v.is_production).then(|| view! {
                                            <ActionForm action=promote attr:class="inline">
                                                <input type="hidden" name="id" value=pid.clone() />
                                                <input type="hidden" name="version" value=v.version.to_string() />
                                                <button type="submit" class="button small">"Make production"</button>
                                            </ActionForm>
                                        })}
                                    </td>
                                </tr>
                            }
                        }).collect_view();
                        view! {
                            <ProjectHead project=project.clone() current="history" />
                            <FormError error=promote_error />
                            // With one version there is nothing to compare.
                            {(several || shown.is_some()).then(|| view! {
                            <section class="card">
                                {several.then(|| view! { <h2>"Compare versions"</h2> })}
                                {several.then(|| view! {
                                <form method="get" action=here.clone() class="inline-form">
                                    <div class="field">
                                        <label for="diff-a">"Old"</label>
                                        <select id="diff-a" name="a">{opts_a}</select>
                                    </div>
                                    <div class="field">
                                        <label for="diff-b">"New"</label>
                                        <select id="diff-b" name="b">{opts_b}</select>
                                    </div>
                                    <button type="submit" class="button">"Compare"</button>
                                </form>
                                })}
                                {diff.map(|d| view! { <VersionDiffView diff=d /> })}
                                {shown.map(|v| view! {
                                    <h3>"Version " {v.version}</h3>
                                    <p class="muted small">{v.author_name.clone()} ", " {when(v.created_at)}
                                        {(!v.note.is_empty()).then(|| format!(" — {}", v.note))}</p>
                                    <pre class="instructions-full" data-testid="version-text">{v.instructions.clone()}</pre>
                                    <h4>"Field rules"</h4>
                                    {if v.fields.is_empty() {
                                        view! { <p class="muted small">"Every field uses the automatic rule, with no description."</p> }.into_any()
                                    } else {
                                        view! { <ul class="small" data-testid="version-fields">{v.fields.iter().map(|(name, c)| view! {
                                            <li><strong>{name.clone()}</strong>": " <code>{c.rule.describe()}</code>
                                                {(!c.description.is_empty()).then(|| format!(" — “{}”", c.description))}</li>
                                        }).collect_view()}</ul> }.into_any()
                                    }}
                                    <h4>"Agent settings"</h4>
                                    <p class="small" data-testid="version-agent">{
                                        v.agent.settings(|_| "provider".into()).into_iter()
                                            .filter(|(name, value)| !value.is_empty() && *name != "model_route")
                                            .map(|(name, value)| format!("{}: {value}", name.replace('_', " ")))
                                            .collect::<Vec<_>>().join(" · ")
                                    }</p>
                                })}
                            </section>
                            })}
                            <section class="card">
                                <h2>"Versions"</h2>
                                <div class="table-wrap">
                                    <table>
                                        <thead><tr>
                                            <th scope="col">"Version"</th><th scope="col">"Note"</th>
                                            <th scope="col" class="hide-narrow">"Author"</th><th scope="col" class="hide-narrow">"Saved"</th>
                                            <th scope="col" class="num hide-narrow">"Size"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
                                        </tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn ProjectSettingsPage() -> impl IntoView {
    let update = ServerAction::<UpdateProject>::new();
    let agent = ServerAction::<UpdateAgent>::new();
    let save_field = ServerAction::<SaveField>::new();
    let delete_field = ServerAction::<DeleteField>::new();
    let delete = ServerAction::<DeleteProject>::new();
    let project = project_resource(move || {
        update.version().get()
            + agent.version().get()
            + save_field.version().get()
            + delete_field.version().get()
    });
    let update_error = action_error(update);
    let agent_error = action_error(agent);
    let field_error = action_error(save_field);
    let delete_field_error = action_error(delete_field);
    let delete_error = action_error(delete);
    let slug = use_slug();
    let choices = Resource::new(move || slug.get(), list_model_choices);
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                let choices = choices.await.unwrap_or_default();
                match project.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(p) => {
                        let can_edit = p.can_edit();
                        let can_delete = p.can_delete();
                        let id = p.id.to_string();
                        let (agent_id, details_id, delete_id, add_id) = (id.clone(), id.clone(), id.clone(), id.clone());
                        let a = p.agent.clone();
                        let fields = p.fields.clone();
                        let name = p.name.clone();
                        view! {
                            <ProjectHead project=p.clone() current="settings" />
                            {(!can_edit).then(|| view! { <p class="alert">"You can read these settings; members and above change them."</p> })}
                            <section class="card">
                                <h2>"Output fields"</h2>
                                <p class="muted">"What the agent extracts from each site, how its value is compared with the expected one, and — for the built-in http agent — where on the page to find it."</p>
                                <FormError error=delete_field_error />
                                {if fields.is_empty() {
                                    view! { <p class="empty">"No fields yet. Upload a batch with " <code>"gt_<field>"</code> " columns, or add a field below."</p> }.into_any()
                                } else {
                                    let rows = fields.into_iter().map(|f| {
                                        let id = id.clone();
                                        view! { <FieldRow field=f project_id=id can_edit save=save_field remove=delete_field error=field_error /> }
                                    }).collect_view();
                                    view! {
                                        <div class="table-wrap">
                                            <table>
                                                <thead><tr>
                                                    <th scope="col">"Field"</th><th scope="col">"Type"</th>
                                                    <th scope="col" class="hide-narrow">"Comparator"</th><th scope="col" class="hide-narrow">"Extraction rule"</th>
                                                    <th scope="col"><span class="sr-only">"Actions"</span></th>
                                                </tr></thead>
                                                <tbody>{rows}</tbody>
                                            </table>
                                        </div>
                                    }.into_any()
                                }}
                                {can_edit.then(move || view! {
                                    <details class="add-field">
                                        <summary class="button">"Add a field"</summary>
                                        <FieldForm project_id=add_id field=None action=save_field error=field_error />
                                    </details>
                                })}
                            </section>
                            <section class="card">
                                <h2>"Agent"</h2>
                                <FormError error=agent_error />
                                <ActionForm action=agent>
                                    <input type="hidden" name="id" value=agent_id />
                                    <fieldset class="plain" disabled=!can_edit>
                                        <label for="kind">"Agent"</label>
                                        <select id="kind" name="kind">
                                            {AgentKind::FOR_PROJECTS.into_iter().map(|k| view! {
                                                <option value=k.as_str() selected=k == a.kind>{k.label()}</option>
                                            }).collect_view()}
                                        </select>
                                        <label for="remote_url">"Remote agent address " <span class="muted">"(remote agent only)"</span></label>
                                        <input id="remote_url" name="remote_url" type="url" placeholder="https://agents.example.com/run"
                                            value=a.remote_url.clone().unwrap_or_default()
                                            aria-invalid=invalid(agent_error, "remote_url") aria-describedby="remote_url-error" />
                                        <FieldError error=agent_error field="remote_url" />
                                        <label for="wait_for">"Wait for element " <span class="muted">"(browser agent: a CSS selector to wait for instead of a quiet network)"</span></label>
                                        <input id="wait_for" name="wait_for" placeholder="#price"
                                            value=a.wait_for.clone().unwrap_or_default()
                                            aria-invalid=invalid(agent_error, "wait_for") aria-describedby="wait_for-error" />
                                        <FieldError error=agent_error field="wait_for" />
                                        <label for="steps">"Steps " <span class="muted">"(browser agent, one per line: click <selector> · scroll <times> · wait <ms> · fill <selector> -> <text>)"</span></label>
                                        <textarea id="steps" name="steps" rows="3" placeholder="click #show-price"
                                            aria-invalid=invalid(agent_error, "steps") aria-describedby="steps-error">
                                            {a.steps.iter().map(|s| s.to_line()).collect::<Vec<_>>().join("\n")}
                                        </textarea>
                                        <FieldError error=agent_error field="steps" />
                                        <label class="inline-check">
                                            <input type="checkbox" name="keep_pages" value="on" checked=a.keep_pages />
                                            " Keep the pages of production runs (test runs always keep them), to view and re-extract"
                                        </label>
                                        <label for="extractor">"Extractor " <span class="muted">"(built-in agents)"</span></label>
                                        <select id="extractor" name="extractor" aria-describedby="extractor-error">
                                            <option value="rules" selected=a.extractor == Extractor::Rules>"Rules: each field's rule, or the automatic rule"</option>
                                            <option value="llm" selected=a.extractor == Extractor::Llm>"LLM: “Automatic” fields go to a model with the instructions"</option>
                                        </select>
                                        <FieldError error=agent_error field="extractor" />
                                        <RouteChoices route=a.model_route.clone() choices=choices.clone() />
                                        <FieldError error=agent_error field="model_route" />
                                        <label for="page_token_budget">"Page token budget " <span class="muted">"(llm extractor: how much of the page the model reads; the rest is cut with a marker)"</span></label>
                                        <input id="page_token_budget" name="page_token_budget" inputmode="numeric" value=a.page_token_budget.to_string()
                                            aria-invalid=invalid(agent_error, "page_token_budget") aria-describedby="page_token_budget-error" />
                                        <FieldError error=agent_error field="page_token_budget" />
                                        <div class="inline-form">
                                            <div class="field">
                                                <label for="timeout_secs">"Timeout (seconds)"</label>
                                                <input id="timeout_secs" name="timeout_secs" inputmode="numeric" value=a.timeout_secs.to_string()
                                                    aria-invalid=invalid(agent_error, "timeout_secs") aria-describedby="timeout_secs-error" />
                                            </div>
                                            <div class="field">
                                                <label for="max_retries">"Retries"</label>
                                                <input id="max_retries" name="max_retries" inputmode="numeric" value=a.max_retries.to_string()
                                                    aria-invalid=invalid(agent_error, "max_retries") aria-describedby="max_retries-error" />
                                            </div>
                                            <div class="field">
                                                <label for="price_per_job">"Price per job"</label>
                                                <input id="price_per_job" name="price_per_job" inputmode="decimal" value=format_price(a.price_per_job_micros)
                                                    aria-invalid=invalid(agent_error, "price_per_job") aria-describedby="price_per_job-error" />
                                            </div>
                                        </div>
                                        <FieldError error=agent_error field="timeout_secs" />
                                        <FieldError error=agent_error field="max_retries" />
                                        <FieldError error=agent_error field="price_per_job" />
                                        {can_edit.then(|| view! {
                                            <label for="agent-version-note">"Version note " <span class="muted">"(a change to what runs extract — source, extractor, timeout, steps, model route, page budget — saves a new version; blank: Mino names what changed)"</span></label>
                                            <input id="agent-version-note" name="version_note" maxlength="500" placeholder="e.g. longer timeout for slow shops" />
                                            <button type="submit" class="button">"Save agent settings"</button>
                                        })}
                                    </fieldset>
                                </ActionForm>
                                <Show when=move || matches!(agent.value().get(), Some(Ok(_)))>
                                    <p class="alert alert-ok" role="status">"Agent settings saved."</p>
                                </Show>
                            </section>
                            <section class="card">
                                <h2>"Details"</h2>
                                <FormError error=update_error />
                                <ActionForm action=update>
                                    <input type="hidden" name="id" value=details_id />
                                    <fieldset class="plain" disabled=!can_edit>
                                        <label for="project-name">"Name"</label>
                                        <input id="project-name" name="name" required maxlength="100" value=p.name.clone()
                                            aria-invalid=invalid(update_error, "name") aria-describedby="name-error" />
                                        <FieldError error=update_error field="name" />
                                        <label for="project-description">"Description"</label>
                                        <textarea id="project-description" name="description" rows="3" maxlength="2000">{p.description.clone()}</textarea>
                                        <FieldError error=update_error field="description" />
                                        {can_edit.then(|| view! { <button type="submit" class="button">"Save details"</button> })}
                                    </fieldset>
                                </ActionForm>
                            </section>
                            {can_delete.then(move || view! {
                                <section class="card danger">
                                    <h2>"Delete project"</h2>
                                    <p>"Deleting removes the project, its instruction history, its batches and all their rows and results. This cannot be undone."</p>
                                    <details class="confirm">
                                        <summary class="button danger">"Delete project…"</summary>
                                        <FormError error=delete_error />
                                        <ActionForm action=delete>
                                            <input type="hidden" name="id" value=delete_id />
                                            <label for="confirm">"Type " <strong>{name.clone()}</strong> " to confirm"</label>
                                            <input id="confirm" name="confirm" required autocomplete="off" aria-describedby="confirm-error" />
                                            <FieldError error=delete_error field="confirm" />
                                            <button type="submit" class="button danger">"Delete forever"</button>
                                        </ActionForm>
                                    </details>
                                </section>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The llm extractor's route: a first choice and two fallbacks, each a
/// provider's model (`<provider id>|<model>`).
#[component]
fn RouteChoices(route: Vec<RouteEntry>, choices: Vec<ProviderChoice>) -> impl IntoView {
    if choices.is_empty() {
        return view! {
            <fieldset>
                <legend>"Model route (llm extractor)"</legend>
                <p class="muted">"No model providers yet. An admin adds them under " <strong>"Models"</strong>
                    " (OpenAI-compatible servers such as Ollama or vLLM, Anthropic, Gemini); then choose one here."</p>
            </fieldset>
        }
        .into_any();
    }
    // As many as the server keeps (services::projects::MAX_ROUTE), so a
    // route saved through the API is never cut short by this form.
    let labels = [
        "First choice",
        "Fallback 1",
        "Fallback 2",
        "Fallback 3",
        "Fallback 4",
    ];
    let selects = labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| {
            let current = route.get(i).cloned();
            let unset = current.is_none();
            let id = format!("route_{}", i + 1);
            let options = choices
                .iter()
                .flat_map(|c| {
                    let current = current.clone();
                    c.models.iter().map(move |m| {
                        let value = format!("{}|{m}", c.id);
                        let chosen = current
                            .as_ref()
                            .is_some_and(|r| r.provider == c.id && &r.model == m);
                        let text = format!(
                            "{} — {m}{}",
                            c.name,
                            if c.enabled { "" } else { " (disabled)" }
                        );
                        view! { <option value=value selected=chosen>{text}</option> }
                    })
                })
                .collect_view();
            view! {
                <div class="field grow">
                    <label for=id.clone()>{label}</label>
                    <select id=id.clone() name=id aria-describedby="model_route-error">
                        <option value="" selected=unset>"—"</option>
                        {options}
                    </select>
                </div>
            }
        })
        .collect_view();
    view! {
        <fieldset>
            <legend>"Model route (llm extractor): the first serves, the others take over when it fails"</legend>
            <div class="inline-form">{selects}</div>
        </fieldset>
    }
    .into_any()
}

#[component]
fn FieldRow(
    field: OutputField,
    project_id: String,
    can_edit: bool,
    save: ServerAction<SaveField>,
    remove: ServerAction<DeleteField>,
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    let name = field.name.clone();
    let rule = field.rule.describe();
    let comparator = field.comparator.label();
    let options = &field.comparator_options;
    let tolerance = [
        options.tolerance.map(|t| format!(" ±{t}")),
        options
            .relative_tolerance
            .map(|t| format!(" ±{}%", (t * 10_000.0).round() / 100.0)),
        options.threshold.map(|t| format!(" ≥{t}")),
        options.locale.as_ref().map(|l| format!(" ({l})")),
        (field.empty_means == EmptyMeans::Absent).then(|| " · empty = absent".to_string()),
        field
            .multi_value_separator
            .as_ref()
            .map(|s| format!(" · values split at {s}")),
    ]
    .into_iter()
    .flatten()
    .collect::<String>();
    view! {
        <tr>
            <td><strong>{field.name.clone()}</strong>
                {(field.source == "csv").then(|| view! { <div class="muted small">"from " <code>"gt_" {field.name.clone()}</code></div> })}</td>
            <td>{field.field_type.as_str()}</td>
            <td class="small hide-narrow">{comparator}{tolerance}</td>
            <td class="small hide-narrow"><code>{rule}</code></td>
            <td class="actions">
                {can_edit.then(|| {
                    let pid = project_id.clone();
                    let n = name.clone();
                    view! {
                        <details class="edit-field">
                            <summary class="button small">"Edit"</summary>
                            <FieldForm project_id=pid.clone() field=Some(field.clone()) action=save error />
                        </details>
                        <details class="confirm">
                            <summary class="button small danger">"Remove…"</summary>
                            <ActionForm action=remove>
                                <input type="hidden" name="id" value=pid />
                                <input type="hidden" name="name" value=n.clone() />
                                <p>"Remove the field " <strong>{n.clone()}</strong> "? Expected values in batches stay; the field is no longer extracted or compared."</p>
                                <button type="submit" class="button small danger">"Remove field"</button>
                            </ActionForm>
                        </details>
                    }
                })}
            </td>
        </tr>
    }
}

/// Adds a field (`field` is `None`) or edits one.
#[component]
fn FieldForm(
    project_id: String,
    field: Option<OutputField>,
    action: ServerAction<SaveField>,
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    let existing = field.as_ref().map(|f| f.name.clone()).unwrap_or_default();
    // Ids must be unique on the page: one form per field plus the add form.
    let key = if existing.is_empty() {
        "new".to_string()
    } else {
        existing.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    };
    let fid = move |part: &str| format!("field-{key}-{part}");
    let f = field.unwrap_or(OutputField {
        name: String::new(),
        field_type: ValueType::Text,
        comparator: Comparator::NormalizedText,
        comparator_options: Default::default(),
        rule: ExtractionRule::Auto,
        source: "manual".into(),
        description: String::new(),
        empty_means: Default::default(),
        multi_value_separator: None,
    });
    let adding = existing.is_empty();
    // The comparator shown (the browser shows the first when adding), so
    // the sentence under it explains the one chosen.
    let chosen_comparator = RwSignal::new(if adding {
        Comparator::ALL[0]
    } else {
        f.comparator
    });
    let (selector, attribute, path, meta_name, pattern) = match &f.rule {
        ExtractionRule::Css {
            selector,
            attribute,
        } => (
            selector.clone(),
            attribute.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
        ),
        ExtractionRule::JsonLd { path } => (
            String::new(),
            String::new(),
            path.clone(),
            String::new(),
            String::new(),
        ),
        ExtractionRule::Meta { name } => (
            String::new(),
            String::new(),
            String::new(),
            name.clone(),
            String::new(),
        ),
        ExtractionRule::Regex { pattern } => (
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            pattern.clone(),
        ),
        ExtractionRule::Auto | ExtractionRule::Article => Default::default(),
    };
    let rule_kind = f.rule.kind();
    let rule_kinds = [
        ("auto", "Automatic (JSON-LD, microdata, Open Graph, labels)"),
        ("css", "CSS selector"),
        ("json_ld", "JSON-LD path"),
        ("meta", "Meta tag"),
        ("regex", "Regular expression"),
        ("article", "Main text (article body, description)"),
    ];
    view! {
        <ActionForm action attr:class="field-form">
            <input type="hidden" name="id" value=project_id />
            <input type="hidden" name="existing" value=existing.clone() />
            {if adding {
                view! {
                    <label for=fid("name")>"Field name"</label>
                    <input id=fid("name") name="name" required maxlength="64" placeholder="e.g. price"
                        aria-invalid=invalid(error, "name") aria-describedby="name-error" />
                    <FieldError error field="name" />
                }.into_any()
            } else {
                view! { <input type="hidden" name="name" value=existing.clone() /> }.into_any()
            }}
            <div class="inline-form">
                <div class="field">
                    <label for=fid("type")>"Type"</label>
                    <select id=fid("type") name="field_type">
                        {ValueType::ALL.into_iter().map(|t| view! { <option value=t.as_str() selected=t == f.field_type>{t.as_str()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field grow">
                    <label for=fid("comparator")>"Comparator"</label>
                    <select id=fid("comparator") name="comparator" aria-describedby=fid("comparator-hint")
                        on:change=move |ev| {
                            if let Some(c) = Comparator::parse(&event_target_value(&ev)) {
                                chosen_comparator.set(c);
                            }
                        }>
                        {Comparator::ALL.into_iter().map(|c| view! { <option value=c.as_str() selected=!adding && c == f.comparator>{c.label()}</option> }).collect_view()}
                    </select>
                    <p class="hint" id=fid("comparator-hint")>{move || chosen_comparator.get().example()}</p>
                </div>
            </div>
            {adding.then(|| view! { <p class="hint">"New fields start with the comparator that suits their type unless you pick one."</p> })}
            <div class="inline-form">
                <div class="field">
                    <label for=fid("tolerance")>"Number tolerance"</label>
                    <input id=fid("tolerance") name="tolerance" inputmode="decimal" placeholder="0.01"
                        value=f.comparator_options.tolerance.map(|t| t.to_string()).unwrap_or_default()
                        aria-invalid=invalid(error, "tolerance") aria-describedby="tolerance-error" />
                </div>
                <div class="field">
                    <label for=fid("relative_tolerance")>"Relative tolerance (0.01 = 1 %)"</label>
                    <input id=fid("relative_tolerance") name="relative_tolerance" inputmode="decimal" placeholder="0.01"
                        value=f.comparator_options.relative_tolerance.map(|t| t.to_string()).unwrap_or_default()
                        aria-invalid=invalid(error, "relative_tolerance") aria-describedby="relative_tolerance-error" />
                </div>
                <div class="field">
                    <label for=fid("threshold")>"Score threshold " <span class="muted">"(token F1, text similarity)"</span></label>
                    <input id=fid("threshold") name="threshold" inputmode="decimal" placeholder="0.8"
                        value=f.comparator_options.threshold.map(|t| t.to_string()).unwrap_or_default()
                        aria-invalid=invalid(error, "threshold") aria-describedby="threshold-error" />
                </div>
            </div>
            <div class="field">
                <label for=fid("locale")>"Currency locale " <span class="muted">"(says which dollar $ is, e.g. en-CA)"</span></label>
                <input id=fid("locale") name="locale" placeholder="en-US" maxlength="35"
                    value=f.comparator_options.locale.clone().unwrap_or_default()
                    aria-invalid=invalid(error, "locale") aria-describedby="locale-error" />
            </div>
            <FieldError error field="tolerance" />
            <FieldError error field="relative_tolerance" />
            <FieldError error field="threshold" />
            <FieldError error field="locale" />
            <div class="inline-form">
                <div class="field grow">
                    <label for=fid("empty_means")>"An empty expected value means"</label>
                    <select id=fid("empty_means") name="empty_means" aria-describedby=fid("empty_means-hint")>
                        <option value="unknown" selected=f.empty_means == EmptyMeans::Unknown>"Unknown: the row is not judged on this field"</option>
                        <option value="absent" selected=f.empty_means == EmptyMeans::Absent>"Absent: the page has no such value"</option>
                    </select>
                    <p class="hint" id=fid("empty_means-hint")>"With “absent”, extracting a value where the cell is empty is a false positive (e.g. a sale price on a page without a sale), and extracting nothing passes. Changing it judges every run again."</p>
                </div>
                <div class="field">
                    <label for=fid("multi_value_separator")>"Several acceptable values, separated by " <span class="muted">"(e.g. |; blank: off)"</span></label>
                    <input id=fid("multi_value_separator") name="multi_value_separator" maxlength="5" placeholder="|"
                        value=f.multi_value_separator.clone().unwrap_or_default()
                        aria-invalid=invalid(error, "multi_value_separator") aria-describedby="multi_value_separator-error" />
                </div>
            </div>
            <FieldError error field="multi_value_separator" />
            <label for=fid("description")>"Description for the model " <span class="muted">"(llm extractor: what the value is, e.g. “the price a buyer pays today, without shipping”)"</span></label>
            <textarea id=fid("description") name="description" rows="2" maxlength="1000"
                aria-invalid=invalid(error, "description") aria-describedby="description-error">{f.description.clone()}</textarea>
            <FieldError error field="description" />
            <fieldset>
                <legend>"Extraction rule (built-in agents; with the llm extractor, “Automatic” fields go to the model)"</legend>
                <label for=fid("rule")>"Find the value by"</label>
                <select id=fid("rule") name="rule_kind">
                    {rule_kinds.into_iter().map(|(k, label)| view! { <option value=k selected=k == rule_kind>{label}</option> }).collect_view()}
                </select>
                <div class="inline-form">
                    <div class="field grow">
                        <label for=fid("selector")>"CSS selector"</label>
                        <input id=fid("selector") name="selector" value=selector placeholder=".product .price"
                            aria-invalid=invalid(error, "selector") aria-describedby="selector-error" />
                    </div>
                    <div class="field">
                        <label for=fid("attribute")>"Attribute " <span class="muted">"(blank: text)"</span></label>
                        <input id=fid("attribute") name="attribute" value=attribute placeholder="content" />
                    </div>
                </div>
                <FieldError error field="selector" />
                <FieldError error field="attribute" />
                <div class="inline-form">
                    <div class="field grow">
                        <label for=fid("path")>"JSON-LD path"</label>
                        <input id=fid("path") name="path" value=path placeholder="offers.price"
                            aria-invalid=invalid(error, "path") aria-describedby="path-error" />
                    </div>
                    <div class="field grow">
                        <label for=fid("meta")>"Meta tag"</label>
                        <input id=fid("meta") name="meta_name" value=meta_name placeholder="og:title"
                            aria-invalid=invalid(error, "meta_name") aria-describedby="meta_name-error" />
                    </div>
                </div>
                <FieldError error field="path" />
                <FieldError error field="meta_name" />
                <label for=fid("pattern")>"Regular expression " <span class="muted">"(first capture group)"</span></label>
                <input id=fid("pattern") name="pattern" value=pattern class="mono" placeholder="Price: ([0-9.]+)"
                    aria-invalid=invalid(error, "pattern") aria-describedby="pattern-error" />
                <FieldError error field="pattern" />
            </fieldset>
            <label for=fid("version-note")>"Version note " <span class="muted">"(a new rule or description saves a new version; blank: Mino names what changed)"</span></label>
            <input id=fid("version-note") name="version_note" maxlength="500" />
            <FormError error />
            <button type="submit" class="button primary" disabled=move || action.pending().get()>
                {if adding { "Add field" } else { "Save field" }}
            </button>
        </ActionForm>
    }
}
