//! Starting an experiment (from a run page, or from a saved suggestion)
//! and a project's list of experiments.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use uuid::Uuid;

use crate::api::experiments::{create_experiment, list_experiments};
use crate::api::projects::{list_evaluation_sets, list_versions};
use crate::app::components::{when, ErrorBox};
use crate::model::{variant_label, EXPERIMENT_VARIANTS};

/// One variant as the form edits it: a version and optional overrides
/// ("" keeps the version's own).
#[derive(Clone, Default, PartialEq)]
struct Draft {
    version: String,
    agent: String,
    extractor: String,
}

/// The run an experiment starts from: its rows and, when it kept pages,
/// its pages.
#[derive(Clone, PartialEq)]
pub struct FromRun {
    pub id: Uuid,
    pub keeps_pages: bool,
    /// Its jobs that passed only partly, failed or errored.
    pub failing: i64,
}

/// "Start an experiment": rows, the pages to read, and 2–6 variants.
#[component]
pub fn ExperimentForm(
    project_id: Uuid,
    batch_id: Uuid,
    org_slug: String,
    /// The run page's run (its failing rows and kept pages are offered).
    #[prop(optional)]
    run: Option<FromRun>,
    /// The versions the first variants start on (e.g. production and a
    /// new suggestion).
    versions: Vec<i32>,
) -> impl IntoView {
    let known = Resource::new(
        move || project_id,
        |id| async move { list_versions(id, None).await },
    );
    let sets = Resource::new(move || batch_id, list_evaluation_sets);
    let name = RwSignal::new(String::new());
    let has_failing = run.as_ref().is_some_and(|r| r.failing > 0);
    let rows = RwSignal::new(if has_failing { "failing" } else { "first" }.to_string());
    let size = RwSignal::new("30".to_string());
    let seed = RwSignal::new("1".to_string());
    let keeps_pages = run.as_ref().is_some_and(|r| r.keeps_pages);
    let from_pages = RwSignal::new(keeps_pages);
    let drafts = RwSignal::new(
        (0..2)
            .map(|i| Draft {
                version: versions
                    .get(i)
                    .or(versions.first())
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                ..Default::default()
            })
            .collect::<Vec<_>>(),
    );
    let run_id = run.as_ref().map(|r| r.id);
    let navigate = use_navigate();
    let start = Action::new(move |body: &String| {
        let body = body.clone();
        async move { create_experiment(project_id, body).await }
    });
    let slug = org_slug.clone();
    Effect::new(move |_| {
        if let Some(Ok(x)) = start.value().get() {
            navigate(
                &format!("/o/{slug}/experiments/{}", x.id),
                Default::default(),
            );
        }
    });
    let error = Signal::derive(move || start.value().get().and_then(|r| r.err()));
    let field_error = move |f: &'static str| {
        Signal::derive(move || {
            error.get().and_then(|e| {
                e.field_errors()
                    .into_iter()
                    .find(|x| x.field == f)
                    .map(|x| x.message)
            })
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut choice = serde_json::Map::new();
        let kind = rows.get_untracked();
        let number = |s: String| s.trim().parse::<i64>().ok().map(serde_json::Value::from);
        match kind.as_str() {
            "failing" => {
                choice.insert("execution_id".into(), serde_json::json!(run_id));
                choice.insert("evaluation".into(), "failing".into());
            }
            "first" | "random" => {
                choice.insert("sample".into(), kind.clone().into());
                if let Some(n) = number(size.get_untracked()) {
                    choice.insert("size".into(), n);
                }
                if kind == "random" {
                    if let Some(n) = number(seed.get_untracked()) {
                        choice.insert("seed".into(), n);
                    }
                }
            }
            set => {
                if let Some(id) = set.strip_prefix("set:") {
                    choice.insert("set".into(), id.into());
                }
            }
        }
        let variants: Vec<serde_json::Value> = drafts
            .get_untracked()
            .into_iter()
            .map(|d| {
                let mut v = serde_json::Map::new();
                if let Ok(n) = d.version.parse::<i32>() {
                    v.insert("version".into(), n.into());
                }
                if !d.agent.is_empty() {
                    v.insert("agent".into(), d.agent.into());
                }
                if !d.extractor.is_empty() {
                    v.insert("extractor".into(), d.extractor.into());
                }
                serde_json::Value::Object(v)
            })
            .collect();
        let mut body = serde_json::json!({
            "batch": batch_id,
            "rows": choice,
            "variants": variants,
        });
        let n = name.get_untracked();
        if !n.trim().is_empty() {
            body["name"] = n.into();
        }
        if from_pages.get_untracked() {
            body["from_execution"] = serde_json::json!(run_id);
        }
        start.dispatch(body.to_string());
    };
    let version_options = move |chosen: String| {
        known.get().and_then(|r| r.ok()).map(|page| {
            page.items
                .into_iter()
                .map(|v| {
                    let value = v.version.to_string();
                    let selected = value == chosen;
                    let label = format!(
                        "v{}{} — {}",
                        v.version,
                        if v.is_production { " (production)" } else { "" },
                        v.note
                    );
                    view! { <option value=value selected=selected>{label}</option> }
                })
                .collect_view()
        })
    };
    // Re-rendered when a variant is added or removed, not when one is
    // edited (a select keeps its focus).
    let count = Memo::new(move |_| drafts.with(Vec::len));
    let variant_rows = move || {
        let count = count.get();
        (0..count)
            .map(|i| {
                let label = variant_label(i as i32 + 1);
                let current = drafts.with_untracked(|d| d[i].clone());
                let set = move |f: fn(&mut Draft, String), value: String| {
                    drafts.update(|d| {
                        if let Some(x) = d.get_mut(i) {
                            f(x, value)
                        }
                    })
                };
                let vid = format!("variant-{}-version", i + 1);
                let aid = format!("variant-{}-agent", i + 1);
                let xid = format!("variant-{}-extractor", i + 1);
                let chosen = current.version.clone();
                view! {
                    <fieldset class="variant" data-testid="variant">
                        <legend>{format!("Variant {label}")}</legend>
                        <div class="field">
                            <label for=vid.clone()>"Version"</label>
                            <select id=vid on:change=move |ev| set(|d, v| d.version = v, event_target_value(&ev))>
                                <Transition fallback=|| view! { <option>"Loading versions…"</option> }>
                                    {let chosen = chosen.clone(); move || version_options(chosen.clone())}
                                </Transition>
                            </select>
                        </div>
                        <div class="field">
                            <label for=aid.clone()>"Source"</label>
                            <select id=aid on:change=move |ev| set(|d, v| d.agent = v, event_target_value(&ev))>
                                <option value="" selected=current.agent.is_empty()>"The version's (or the kept pages)"</option>
                                <option value="http">"http"</option>
                                <option value="browser">"browser"</option>
                                <option value="remote">"remote"</option>
                            </select>
                        </div>
                        <div class="field">
                            <label for=xid.clone()>"Extractor"</label>
                            <select id=xid on:change=move |ev| set(|d, v| d.extractor = v, event_target_value(&ev))>
                                <option value="" selected=current.extractor.is_empty()>"The version's"</option>
                                <option value="rules">"rules"</option>
                                <option value="llm">"llm (the version's model route)"</option>
                            </select>
                        </div>
                        {(i >= *EXPERIMENT_VARIANTS.start()).then(|| view! {
                            <button type="button" class="button small" aria-label=format!("Remove variant {label}")
                                on:click=move |_| drafts.update(|d| { if i < d.len() { d.remove(i); } })>"Remove"</button>
                        })}
                    </fieldset>
                }
            })
            .collect_view()
    };
    let set_options = move || {
        sets.get().and_then(|r| r.ok()).map(|sets| {
            sets.into_iter()
                .map(|s| {
                    view! { <option value=format!("set:{}", s.id)>{format!("Evaluation set “{}” v{} ({} rows)", s.name, s.version, s.size)}</option> }
                })
                .collect_view()
        })
    };
    let failing = run.as_ref().map(|r| r.failing).unwrap_or(0);
    let full = move || drafts.with(Vec::len) >= *EXPERIMENT_VARIANTS.end();
    view! {
        <section class="card" id="experiment">
            <h2>"Start an experiment"</h2>
            <p class="hint">"Run 2 to 6 variants — each a version of the project, optionally with another source or extractor — over exactly the same rows, then read their accuracy side by side, which rows each fixed or broke, and whether the difference is beyond noise."</p>
            <form on:submit=submit>
                {move || error.get().filter(|e| e.field_errors().is_empty()).map(|e| view! { <ErrorBox error=e /> })}
                {move || error.get().filter(|e| !e.field_errors().is_empty()).map(|e| view! {
                    <div class="alert alert-error" role="alert" data-testid="experiment-errors">
                        <ul>{e.field_errors().into_iter().map(|f| view! { <li>{format!("{}: {}", f.field, f.message)}</li> }).collect_view()}</ul>
                    </div>
                })}
                <div class="field">
                    <label for="experiment-name">"Name (optional)"</label>
                    <input id="experiment-name" maxlength="100" placeholder="e.g. v3 vs v4 on the failures"
                        prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                </div>
                <div class="field">
                    <label for="experiment-rows">"Rows"</label>
                    <select id="experiment-rows" on:change=move |ev| rows.set(event_target_value(&ev))>
                        {has_failing.then(|| view! { <option value="failing" selected=true>{format!("This run's {failing} failing jobs (partial, fail or error)")}</option> })}
                        <option value="first" selected=!has_failing>"The first N rows"</option>
                        <option value="random">"N random rows (seeded: the same rows again with the same seed)"</option>
                        <Transition fallback=|| ()>{set_options}</Transition>
                    </select>
                    <span class="field-error" role="alert">{move || field_error("rows").get()}</span>
                </div>
                <Show when=move || matches!(rows.get().as_str(), "first" | "random")>
                    <div class="field-row">
                        <div class="field">
                            <label for="experiment-size">"N"</label>
                            <input id="experiment-size" type="number" min="1" max=crate::model::MAX_EXPERIMENT_ROWS.to_string()
                                prop:value=move || size.get() on:input=move |ev| size.set(event_target_value(&ev)) />
                            <span class="field-error" role="alert">{move || field_error("rows.size").get()}</span>
                        </div>
                        <Show when=move || rows.get() == "random">
                            <div class="field">
                                <label for="experiment-seed">"Seed"</label>
                                <input id="experiment-seed" type="number"
                                    prop:value=move || seed.get() on:input=move |ev| seed.set(event_target_value(&ev)) />
                            </div>
                        </Show>
                    </div>
                </Show>
                {keeps_pages.then(|| view! {
                    <label class="check">
                        <input type="checkbox" id="experiment-pages" prop:checked=move || from_pages.get()
                            on:change=move |ev| from_pages.set(event_target_checked(&ev)) />
                        " Read this run's kept pages: every variant sees the same content and no request reaches the sites"
                    </label>
                })}
                <div class="variants">{variant_rows}</div>
                <div class="controls">
                    <button type="button" class="button"
                        disabled=full
                        on:click=move |_| drafts.update(|d| {
                            let last = d.last().cloned().unwrap_or_default();
                            d.push(last);
                        })>"Add a variant"</button>
                    <button type="submit" class="button primary" data-testid="start-experiment" disabled=move || start.pending().get()>
                        {move || if start.pending().get() { "Starting…" } else { "Start the experiment" }}
                    </button>
                </div>
            </form>
        </section>
    }
}

/// A project's experiments, newest first, or what to do to start one.
#[component]
pub fn ExperimentsCard(project_id: Uuid, org_slug: String) -> impl IntoView {
    let list = Resource::new(move || project_id, list_experiments);
    view! {
        <section class="card" id="experiments">
            <h2>"Experiments"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading experiments…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(items) if items.is_empty() => view! {
                        <p class="empty" data-testid="no-experiments">"No experiments yet. Open a run and use “Start an experiment” to run two or more versions over the same rows and compare them."</p>
                    }.into_any(),
                    Ok(items) => {
                        let slug = org_slug.clone();
                        view! {
                            <table class="table">
                                <thead><tr><th scope="col">"Experiment"</th><th scope="col">"State"</th><th scope="col">"Batch"</th><th scope="col" class="num">"Rows"</th><th scope="col" class="num">"Variants"</th><th scope="col">"Started"</th></tr></thead>
                                <tbody>
                                    {items.into_iter().map(|x| view! {
                                        <tr>
                                            <td><a href=format!("/o/{slug}/experiments/{}", x.id)>{x.name.clone()}</a>
                                                {x.promoted_variant.map(|p| view! { <span class="badge ok">{format!("promoted {}", variant_label(p))}</span> })}</td>
                                            <td><span class=state_class(&x.state)>{x.state.clone()}</span></td>
                                            <td>{x.batch_name.clone()}</td>
                                            <td class="num">{crate::model::thousands(x.rows as i64)}</td>
                                            <td class="num">{x.variants}</td>
                                            <td>{format!("{} by {}", when(x.created_at), x.created_by_name)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

/// The badge class of an experiment's state.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "completed" => "badge ok",
        "running" => "badge run",
        "paused" => "badge warn",
        _ => "badge",
    }
}
