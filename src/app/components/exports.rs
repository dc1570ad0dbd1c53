//! Exporting results: the export card of a run's page (format, columns,
//! the current tab's filter, progress, download) and a batch's export
//! history with re-downloads.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use crate::api::results::{export_columns, get_export, list_exports, start_export};
use crate::app::components::{when, ErrorBox, FormError, Loading};
use crate::app::hooks::use_query;
use crate::error::AppError;
use crate::model::Export;

fn size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.0} KB", (b / 1024.0).max(1.0))
    }
}

fn format_label(f: &str) -> &'static str {
    match f {
        "csv" => "CSV",
        "json" => "JSON",
        _ => "Excel (XLSX)",
    }
}

/// Reads the export again every half second while it runs.
fn follow(id: Uuid, export: RwSignal<Option<Export>>, error: RwSignal<Option<AppError>>) {
    spawn_local(async move {
        match get_export(id).await {
            Ok(e) => {
                let running = e.state == "running";
                export.set(Some(e));
                if running {
                    set_timeout(
                        move || follow(id, export, error),
                        std::time::Duration::from_millis(500),
                    );
                }
            }
            Err(e) => error.set(Some(e)),
        }
    });
}

/// Where an export stands: a progress bar, the download, or why it failed.
#[component]
fn ExportStatus(export: Export) -> impl IntoView {
    match export.state.as_str() {
        "running" => {
            let (done, total) = (export.row_count, export.total_rows.max(1));
            view! {
                <div class="export-status" role="status" aria-live="polite">
                    <progress max=total value=done aria-label="Export progress"></progress>
                    <span class="muted small">{format!(" Writing {done} of {} rows…", export.total_rows)}</span>
                </div>
            }
            .into_any()
        }
        "ready" => view! {
            <p class="banner ok" role="status" data-testid="export-ready">
                {format!("{} rows exported. ", export.row_count)}
                <a href=export.download_url.clone().unwrap_or_default() download="" data-testid="export-download">
                    {format!("Download the {} file ({})", format_label(&export.format), size(export.bytes.unwrap_or(0)))}
                </a>
            </p>
        }
        .into_any(),
        _ => view! {
            <p class="banner bad" role="alert">
                {format!("The export failed: {}", export.error.clone().unwrap_or_else(|| "unknown reason".into()))}
            </p>
        }
        .into_any(),
    }
}

/// The export card of a run's page: pick a format and columns, optionally
/// only the jobs of the grid's current tab, watch it being written, then
/// download it. Large runs work the same; the file is written on the
/// server and kept for a week (the batch page lists it).
#[component]
pub fn ExportCard(id: Uuid) -> impl IntoView {
    let tab = use_query("jobs");
    let columns = Resource::new(move || id, export_columns);
    let chosen = RwSignal::new(None::<BTreeSet<String>>);
    let format = RwSignal::new("csv".to_string());
    let only_tab = RwSignal::new(true);
    let export = RwSignal::new(None::<Export>);
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let tab_name = move || {
        crate::app::components::results::TABS
            .iter()
            .find(|(k, _)| tab.get().unwrap_or_default() == *k)
            .map(|(_, l)| *l)
            .unwrap_or("All")
    };
    let start = move |_| {
        let (status, evaluation) = if only_tab.get_untracked() {
            crate::app::components::results::filter_of(tab.get_untracked().as_deref())
        } else {
            (None, None)
        };
        let cols = chosen
            .get_untracked()
            .map(|set| {
                // In the offered order, not alphabetical.
                let offered = columns
                    .get_untracked()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                offered
                    .into_iter()
                    .filter(|(n, _)| set.contains(n))
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let fmt = format.get_untracked();
        busy.set(true);
        error.set(None);
        export.set(None);
        spawn_local(async move {
            match start_export(id, fmt, cols, status, evaluation).await {
                Ok(e) => {
                    let eid = e.id;
                    export.set(Some(e));
                    follow(eid, export, error);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let running = move || export.with(|e| e.as_ref().is_some_and(|e| e.state == "running"));
    view! {
        <section class="card" aria-labelledby="export-heading">
            <h2 id="export-heading">"Export"</h2>
            <div class="export-form">
                <fieldset class="inline">
                    <legend>"Format"</legend>
                    {["csv", "json", "xlsx"].into_iter().map(|f| view! {
                        <label class="choice">
                            <input type="radio" name="export-format" value=f
                                prop:checked=move || format.get() == f
                                on:change=move |_| format.set(f.to_string()) />
                            {format_label(f)}
                        </label>
                    }).collect_view()}
                </fieldset>
                // On the All tab there is nothing to narrow to.
                <Show when=move || !tab.get().unwrap_or_default().is_empty()>
                    <label class="choice">
                        <input type="checkbox" prop:checked=move || only_tab.get()
                            on:change=move |ev| only_tab.set(event_target_checked(&ev)) data-testid="export-only-tab" />
                        {move || format!("Only the jobs of the “{}” tab", tab_name())}
                    </label>
                </Show>
                <Transition fallback=|| view! { <Loading /> }>
                    {move || Suspend::new(async move {
                        match columns.await {
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                            Ok(cols) => {
                                if chosen.get_untracked().is_none() {
                                    chosen.set(Some(cols.iter().filter(|(_, on)| *on).map(|(n, _)| n.clone()).collect()));
                                }
                                let count = move || chosen.with(|c| c.as_ref().map_or(0, |c| c.len()));
                                view! {
                                    <details class="export-columns">
                                        <summary>{move || format!("Columns ({} chosen)", count())}</summary>
                                        <div class="column-choices">
                                            {cols.into_iter().map(|(name, _)| {
                                                let n = name.clone();
                                                let on = move || chosen.with(|c| c.as_ref().is_some_and(|c| c.contains(&n)));
                                                let n2 = name.clone();
                                                view! {
                                                    <label class="choice">
                                                        <input type="checkbox" prop:checked=on
                                                            on:change=move |ev| {
                                                                let checked = event_target_checked(&ev);
                                                                let n = n2.clone();
                                                                chosen.update(|c| {
                                                                    let c = c.get_or_insert_with(BTreeSet::new);
                                                                    if checked { c.insert(n); } else { c.remove(&n); }
                                                                });
                                                            } />
                                                        <code>{name.clone()}</code>
                                                    </label>
                                                }
                                            }).collect_view()}
                                        </div>
                                    </details>
                                }.into_any()
                            }
                        }
                    })}
                </Transition>
                <button type="button" class="button" on:click=start
                    disabled=move || busy.get() || running() || chosen.with(|c| c.as_ref().is_some_and(|c| c.is_empty()))
                    data-testid="export-start">
                    {move || if running() { "Exporting…" } else { "Export" }}
                </button>
            </div>
            <FormError error=Signal::from(error) />
            {move || export.get().map(|e| view! { <ExportStatus export=e /> })}
        </section>
    }
}

/// A batch's exports: who exported what, when, and the file while kept.
#[component]
pub fn ExportHistory(batch_id: Uuid) -> impl IntoView {
    let data = Resource::new(move || batch_id, list_exports);
    view! {
        <section class="card">
            <h2>"Exports"</h2>
            <Transition fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(p) if p.items.is_empty() => view! {
                            <p class="empty">"No exports yet. Open a run and use its Export card: CSV, JSON or Excel, with the columns you choose."</p>
                        }.into_any(),
                        Ok(p) => view! {
                            <div class="table-wrap">
                                <table data-testid="export-history">
                                    <thead><tr>
                                        <th scope="col">"When"</th><th scope="col">"By"</th><th scope="col">"Format"</th>
                                        <th scope="col" class="num">"Rows"</th><th scope="col">"Filters"</th><th scope="col">"File"</th>
                                    </tr></thead>
                                    <tbody>
                                        {p.items.into_iter().map(|e| {
                                            let filters = if e.filters.is_empty() {
                                                "every job".to_string()
                                            } else {
                                                e.filters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
                                            };
                                            let file = match (e.state.as_str(), e.download_url.clone()) {
                                                ("ready", Some(url)) => view! {
                                                    <a href=url download="">{format!("Download ({})", size(e.bytes.unwrap_or(0)))}</a>
                                                }.into_any(),
                                                ("running", _) => view! { <span class="muted">"being written…"</span> }.into_any(),
                                                ("expired", _) => view! { <span class="muted">"expired"</span> }.into_any(),
                                                _ => view! { <span class="bad-text" title=e.error.clone().unwrap_or_default()>"failed"</span> }.into_any(),
                                            };
                                            view! {
                                                <tr>
                                                    <td>{when(e.created_at)}</td>
                                                    <td>{e.created_by.clone()}</td>
                                                    <td>{format_label(&e.format)}</td>
                                                    <td class="num">{e.row_count}</td>
                                                    <td class="small">{filters}</td>
                                                    <td>{file}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
