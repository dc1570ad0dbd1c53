//! An execution's jobs as a grid, with selection and bulk actions.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use crate::api::projects::list_execution_jobs;
use crate::api::results::{BulkGroundTruth, BulkJobs};
use crate::app::components::badges::verdict_badge;
use crate::app::components::{ErrorBox, Loading};
use crate::app::hooks::use_query;
use crate::error::AppError;
use crate::model::{BulkOperation, ExpectedValueSaved, JobSummary, Role};

use super::cell::ExpectedCell;
use super::{
    done_message, filter_of, plural, send_bulk_ground_truth, send_bulk_jobs, Pending, SORTS, TABS,
};

/// An execution's jobs as a grid: one row per job, per field the extracted
/// value over the expected one (green when it passes, red when not).
/// Selected jobs (or every job matching the tab) can get their extracted
/// values accepted, a field set, cleared or find-and-replaced, be rerun,
/// cancelled or deleted, each after a preview with the count.
#[component]
pub fn ResultsGrid(
    id: Uuid,
    batch_id: Uuid,
    org_slug: String,
    role: Option<Role>,
    /// The run's progress: the list reads again as it moves on.
    progress: Memo<(bool, i64)>,
    /// Bumped when a bulk change alters expected values (other cards read
    /// again).
    changed: RwSignal<u32>,
    /// Set when one expected value is saved, with the run's new figures.
    edited: RwSignal<Option<ExpectedValueSaved>>,
) -> impl IntoView {
    let tab = use_query("jobs");
    let after = use_query("after");
    let sort = use_query("sort");
    let can_edit = role.is_none_or(|r| r >= Role::Member);
    let can_delete = role.is_none_or(|r| r >= Role::Admin);
    let reload = RwSignal::new(0u32);
    let jobs = Resource::new(
        move || {
            (
                tab.get(),
                sort.get(),
                after.get(),
                progress.get(),
                reload.get(),
            )
        },
        move |(tab, sort, after, _, _)| async move {
            let (status, evaluation) = filter_of(tab.as_deref());
            list_execution_jobs(id, status, evaluation, sort, after).await
        },
    );
    let selected = RwSignal::new(BTreeSet::<i64>::new());
    let all_matching = RwSignal::new(false);
    let pending = RwSignal::new(None::<Pending>);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<AppError>);
    let notice = RwSignal::new(None::<String>);
    // A new page or tab starts with nothing selected.
    Effect::new(move |_| {
        tab.track();
        sort.track();
        after.track();
        selected.set(BTreeSet::new());
        all_matching.set(false);
        pending.set(None);
    });
    let saved = Callback::new(move |s| edited.set(Some(s)));
    let slug_for_rows = StoredValue::new(org_slug);

    let ids = move || {
        selected
            .get_untracked()
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let scope = move || {
        if all_matching.get_untracked() {
            "every job matching this list".to_string()
        } else {
            plural(selected.get_untracked().len() as i64, "selected job")
        }
    };
    // Ground truth: preview, then confirm.
    let gt_action = move |operation: &'static str,
                          field: Option<String>,
                          value: Option<String>,
                          find: Option<String>,
                          replace: Option<String>| {
        let (status, evaluation) = filter_of(tab.get_untracked().as_deref());
        let scope = scope();
        let args = BulkGroundTruth {
            batch: batch_id,
            execution: id,
            operation: operation.to_string(),
            field,
            value,
            find,
            replace,
            job_ids: ids(),
            all_matching: all_matching.get_untracked(),
            status,
            evaluation,
            preview: true,
        };
        busy.set(true);
        error.set(None);
        notice.set(None);
        spawn_local(async move {
            let call = move |preview: bool| {
                send_bulk_ground_truth(BulkGroundTruth {
                    preview,
                    ..args.clone()
                })
            };
            match call(true).await {
                Err(e) => error.set(Some(e)),
                Ok(r) if r.values_changed == 0 => notice.set(Some(format!(
                    "Nothing to change: {} of {scope} already {}.",
                    plural(r.rows_matched, "row"),
                    if r.rows_matched == 1 {
                        "has these values"
                    } else {
                        "have these values"
                    }
                ))),
                Ok(r) => {
                    let apply = Callback::new(move |_| {
                        let call = call.clone();
                        busy.set(true);
                        spawn_local(async move {
                            match call(false).await {
                                Ok(done) => {
                                    pending.set(None);
                                    notice.set(Some(done_message(&done)));
                                    changed.update(|n| *n += 1);
                                    reload.update(|n| *n += 1);
                                }
                                Err(e) => error.set(Some(e)),
                            }
                            busy.set(false);
                        });
                    });
                    pending.set(Some(Pending {
                        question: format!(
                            "Change {} in {} ({scope})? Every run of this batch is judged again.",
                            plural(r.values_changed, "expected value"),
                            plural(r.rows_changed, "row"),
                        ),
                        samples: r.samples,
                        apply,
                        danger: false,
                    }));
                }
            }
            busy.set(false);
        });
    };
    let job_action = move |action: BulkOperation| {
        let (status, evaluation) = filter_of(tab.get_untracked().as_deref());
        let slug = slug_for_rows.get_value();
        let args = BulkJobs {
            execution: id,
            action,
            job_ids: ids(),
            all_matching: all_matching.get_untracked(),
            status,
            evaluation,
            preview: Some(true),
        };
        error.set(None);
        notice.set(None);
        let apply = Callback::new({
            let args = args.clone();
            move |_| {
                let (args, slug) = (args.clone(), slug.clone());
                busy.set(true);
                spawn_local(async move {
                    match send_bulk_jobs(BulkJobs {
                        preview: Some(false),
                        ..args
                    })
                    .await
                    {
                        Ok(r) => {
                            pending.set(None);
                            if let Some(new) = r.execution_id {
                                if let Some(w) = web_sys::window() {
                                    let _ = w
                                        .location()
                                        .set_href(&format!("/o/{slug}/executions/{new}"));
                                }
                            } else {
                                notice.set(Some(match action {
                                    BulkOperation::Delete => format!(
                                        "Deleted {} (of {} chosen).",
                                        plural(r.affected, "job"),
                                        r.matched
                                    ),
                                    _ => format!(
                                        "Cancelled {} (of {} chosen).",
                                        plural(r.affected, "queued job"),
                                        r.matched
                                    ),
                                }));
                                selected.set(BTreeSet::new());
                                reload.update(|n| *n += 1);
                                changed.update(|n| *n += 1);
                            }
                        }
                        Err(e) => error.set(Some(e)),
                    }
                    busy.set(false);
                });
            }
        });
        // Count first, so the confirmation names how many jobs it reaches.
        busy.set(true);
        spawn_local(async move {
            match send_bulk_jobs(args).await {
                Ok(r) => {
                    let n = plural(r.matched, "job");
                    let question = match action {
                        BulkOperation::Delete => format!("Delete the finished jobs among these {n}? Their results and attempts are removed for good; queued and running jobs are kept."),
                        BulkOperation::Rerun => format!("Rerun these {n} as a new execution?"),
                        _ => format!("Cancel the queued jobs among these {n}?"),
                    };
                    pending.set(Some(Pending {
                        question,
                        samples: vec![],
                        apply,
                        danger: action == BulkOperation::Delete,
                    }));
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    // The toolbar's "set a field" form.
    let op = RwSignal::new("set".to_string());
    let op_field = RwSignal::new(String::new());
    let op_value = RwSignal::new(String::new());
    let op_find = RwSignal::new(String::new());

    // Links keep the other choice: a tab keeps the sort, a sort the tab.
    let query_of = move |tab: Option<String>, sort: Option<String>| {
        let parts: Vec<String> = [("jobs", tab), ("sort", sort)]
            .into_iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| format!("{k}={v}")))
            .collect();
        format!("?{}", parts.join("&"))
    };
    let tabs = TABS
        .iter()
        .map(|(key, label)| {
            let href = move || query_of(Some(key.to_string()), sort.get());
            let current = move || tab.get().unwrap_or_default() == *key;
            view! { <a href=href class="tab" class:current=current aria-current=move || current().then_some("page")>{*label}</a> }
        })
        .collect_view();
    let sorts = SORTS
        .iter()
        .map(|(key, label)| {
            let href = move || query_of(tab.get(), Some(key.to_string()));
            let current = move || sort.get().unwrap_or_default() == *key;
            view! { <a href=href class="tab" class:current=current aria-current=move || current().then_some("page")>{*label}</a> }
        })
        .collect_view();
    view! {
        <section class="card">
            <h2>"Results"</h2>
            <div class="grid-controls">
                <nav class="tabs" aria-label="Filter jobs">{tabs}</nav>
                <nav class="tabs sorts" aria-label="Sort jobs"><span class="muted small">"Sort: "</span>{sorts}</nav>
            </div>
            {move || error.get().map(|e| {
                let conflict = matches!(e, AppError::Conflict(_));
                view! {
                    <div class="banner bad" role="alert">
                        {e.to_string()}
                        {conflict.then(|| view! {
                            " " <button type="button" class="button small" on:click=move |_| { error.set(None); reload.update(|n| *n += 1); }>"Reload the list"</button>
                        })}
                    </div>
                }
            })}
            {move || notice.get().map(|n| view! { <p class="banner ok" role="status" data-testid="bulk-notice">{n}</p> })}
            <Transition fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match jobs.await {
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! {
                            <p class="empty">{move || if tab.get().is_some() { "No jobs match this filter: try All." } else { "This run has no jobs yet." }}</p>
                        }.into_any(),
                        Ok(page) => {
                            let mut fields: Vec<String> = vec![];
                            for j in &page.items {
                                for k in j.extracted.keys().chain(j.expected.keys()) {
                                    if !fields.contains(k) {
                                        fields.push(k.clone());
                                    }
                                }
                            }
                            fields.sort();
                            let rows: Vec<RwSignal<JobSummary>> = page.items.into_iter().map(RwSignal::new).collect();
                            let page_ids: Vec<i64> = rows.iter().map(|r| r.with_untracked(|j| j.id)).collect();
                            let page_ids_all = page_ids.clone();
                            let all_on_page = move || {
                                let s = selected.get();
                                !page_ids_all.is_empty() && page_ids_all.iter().all(|i| s.contains(i))
                            };
                            let next = page.next_cursor.clone().map(|c| {
                                let q = query_of(tab.get_untracked(), sort.get_untracked());
                                let sep = if q.len() > 1 { "&" } else { "" };
                                format!("{q}{sep}after={c}")
                            });
                            let more = next.is_some();
                            let field_heads = fields.iter().map(|f| view! {
                                <th scope="col">{f.clone()}<span class="muted small">" extracted / expected"</span></th>
                            }).collect_view();
                            let fields_for_form = fields.clone();
                            let body = rows.iter().map(|job| {
                                let job = *job;
                                let (jid, row_index, url) = job.with_untracked(|j| (j.id, j.row_index, j.url.clone()));
                                let slug = slug_for_rows.get_value();
                                let badge = move || job.with(|j| verdict_badge(j.verdict, j.state.as_str()));
                                let accuracy = move || job.with(|j| j.accuracy.map(|a| format!("{:.0}%", a * 100.0)));
                                let checked = move || selected.with(|s| s.contains(&jid));
                                let cells = fields.iter().map(|f| view! {
                                    <ExpectedCell job field=f.clone() editable=can_edit saved error />
                                }).collect_view();
                                view! {
                                    <tr>
                                        <td class="pick">
                                            <input type="checkbox" aria-label=format!("Select row {row_index}") prop:checked=checked
                                                on:change=move |_| selected.update(|s| { if !s.remove(&jid) { s.insert(jid); } all_matching.set(false); }) />
                                        </td>
                                        <td class="num"><a href=format!("/o/{slug}/jobs/{jid}")>{row_index}</a></td>
                                        <td class="clip"><span title=url.clone()>{url.clone()}</span></td>
                                        <td><span class=move || badge().0>{move || badge().1}</span></td>
                                        <td class="num">{accuracy}</td>
                                        {cells}
                                    </tr>
                                }
                            }).collect_view();
                            let page_ids_toggle = page_ids.clone();
                            let n_page = page_ids.len();
                            view! {
                                <Show when=move || !selected.get().is_empty() || all_matching.get()>
                                    <div class="bulk-bar" role="region" aria-label="Bulk actions" data-testid="bulk-bar">
                                        <p>
                                            <strong data-testid="selection-count">{move || if all_matching.get() { "Every job matching this list".to_string() } else { format!("{} selected", selected.get().len()) }}</strong>
                                            {(more).then(|| view! {
                                                " · " <label class="inline-check"><input type="checkbox" prop:checked=move || all_matching.get()
                                                    on:change=move |_| all_matching.update(|a| *a = !*a) data-testid="all-matching" />
                                                    " all jobs matching this list, on every page"</label>
                                            })}
                                            " · " <button type="button" class="link" on:click=move |_| { selected.set(BTreeSet::new()); all_matching.set(false); }>"Clear selection"</button>
                                        </p>
                                        <div class="controls">
                                            {can_edit.then(|| view! {
                                                <button type="button" class="button primary" disabled=move || busy.get() data-testid="accept-selected"
                                                    on:click=move |_| gt_action("accept_extracted", None, None, None, None)>"Accept extracted values"</button>
                                            })}
                                            {can_edit.then(|| view! {
                                                <button type="button" class="button" disabled=move || busy.get() data-testid="rerun-selected"
                                                    on:click=move |_| job_action(BulkOperation::Rerun)>"Rerun"</button>
                                                <button type="button" class="button" disabled=move || busy.get()
                                                    on:click=move |_| job_action(BulkOperation::Update)>"Cancel queued"</button>
                                            })}
                                            {can_delete.then(|| view! {
                                                <button type="button" class="button danger" disabled=move || busy.get()
                                                    on:click=move |_| job_action(BulkOperation::Delete)>"Delete…"</button>
                                            })}
                                        </div>
                                        {can_edit.then(|| {
                                            let options = fields_for_form.iter().map(|f| view! { <option value=f.clone()>{f.clone()}</option> }).collect_view();
                                            if op_field.get_untracked().is_empty() {
                                                if let Some(f) = fields_for_form.first() { op_field.set(f.clone()); }
                                            }
                                            view! {
                                                <form class="inline-form" on:submit=move |ev| {
                                                    ev.prevent_default();
                                                    let o = op.get_untracked();
                                                    let f = Some(op_field.get_untracked());
                                                    match o.as_str() {
                                                        "set" => gt_action("set", f, Some(op_value.get_untracked()), None, None),
                                                        "clear" => gt_action("clear", f, None, None, None),
                                                        _ => gt_action("replace", f, None, Some(op_find.get_untracked()), Some(op_value.get_untracked())),
                                                    }
                                                }>
                                                    <div class="field">
                                                        <label for="bulk-op">"Expected values"</label>
                                                        <select id="bulk-op" on:change=move |ev| op.set(event_target_value(&ev)) prop:value=move || op.get()>
                                                            <option value="set">"Set"</option>
                                                            <option value="replace">"Find and replace in"</option>
                                                            <option value="clear">"Clear"</option>
                                                        </select>
                                                    </div>
                                                    <div class="field">
                                                        <label for="bulk-field">"Field"</label>
                                                        <select id="bulk-field" on:change=move |ev| op_field.set(event_target_value(&ev)) prop:value=move || op_field.get()>{options}</select>
                                                    </div>
                                                    <Show when=move || op.get() == "replace">
                                                        <div class="field">
                                                            <label for="bulk-find">"Find"</label>
                                                            <input id="bulk-find" prop:value=move || op_find.get() on:input=move |ev| op_find.set(event_target_value(&ev)) />
                                                        </div>
                                                    </Show>
                                                    <Show when=move || op.get() != "clear">
                                                        <div class="field">
                                                            <label for="bulk-value">{move || if op.get() == "replace" { "Replace with" } else { "Value" }}</label>
                                                            <input id="bulk-value" prop:value=move || op_value.get() on:input=move |ev| op_value.set(event_target_value(&ev)) />
                                                        </div>
                                                    </Show>
                                                    <button type="submit" class="button" disabled=move || busy.get()>"Preview"</button>
                                                </form>
                                            }
                                        })}
                                        {move || pending.get().map(|p| {
                                            let apply = p.apply;
                                            let samples = (!p.samples.is_empty()).then(|| view! {
                                                <div class="table-wrap">
                                                    <table class="samples" data-testid="bulk-samples">
                                                        <thead><tr><th scope="col" class="num">"Row"</th><th scope="col">"Field"</th><th scope="col">"Before"</th><th scope="col">"After"</th></tr></thead>
                                                        <tbody>
                                                            {p.samples.iter().map(|s| view! {
                                                                <tr><td class="num">{s.row_index}</td><td>{s.field.clone()}</td>
                                                                    <td class="value">{s.before.clone().unwrap_or_else(|| "—".into())}</td>
                                                                    <td class="value">{s.after.clone().unwrap_or_else(|| "—".into())}</td></tr>
                                                            }).collect_view()}
                                                        </tbody>
                                                    </table>
                                                </div>
                                            });
                                            view! {
                                                <div class="confirm-box" role="alertdialog" aria-label="Confirm" data-testid="bulk-confirm">
                                                    <p>{p.question.clone()}</p>
                                                    {samples}
                                                    <div class="controls">
                                                        <button type="button" class=if p.danger { "button danger" } else { "button primary" } disabled=move || busy.get()
                                                            data-testid="bulk-apply" on:click=move |_| apply.run(())>"Yes, apply"</button>
                                                        <button type="button" class="button" on:click=move |_| pending.set(None)>"Cancel"</button>
                                                    </div>
                                                </div>
                                            }
                                        })}
                                    </div>
                                </Show>
                                {can_edit.then(|| view! { <p class="hint">"Fix an expected value in place: Enter edits, Enter saves, Esc cancels, Tab saves and moves to the next cell. Every run of this batch is judged again at once."</p> })}
                                <div class="table-wrap grid-wrap">
                                    <table data-testid="jobs" class="results-grid">
                                        <thead><tr>
                                            <th scope="col" class="pick">
                                                <input type="checkbox" aria-label=format!("Select the {n_page} jobs on this page") prop:checked=all_on_page
                                                    on:change=move |_| {
                                                        let ids = page_ids_toggle.clone();
                                                        selected.update(|s| {
                                                            if ids.iter().all(|i| s.contains(i)) { for i in &ids { s.remove(i); } } else { s.extend(ids.iter().copied()); }
                                                        });
                                                        all_matching.set(false);
                                                    } data-testid="select-page" />
                                            </th>
                                            <th scope="col" class="num">"Row"</th><th scope="col">"Site"</th><th scope="col">"Result"</th>
                                            <th scope="col" class="num">"Accuracy"</th>{field_heads}
                                        </tr></thead>
                                        <tbody>{body}</tbody>
                                    </table>
                                </div>
                                {next.map(|n| view! { <nav class="pager" aria-label="Pages"><a href=n>"Next jobs →"</a></nav> })}
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}
