//! The results views: the grid of an execution's jobs (extracted against
//! expected per field, expected values edited in place with the keyboard,
//! selection and bulk actions with a preview), failure patterns, the trend
//! chart of a batch's runs, pasting expected values, and two runs compared.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use serde_json::Value;
use uuid::Uuid;

use crate::model::{BulkOperation, ExpectedValueSaved};

use super::executions::verdict_badge;
use super::projects::use_query;
use crate::api::projects::{get_job, list_execution_jobs, save_expected_value};
use crate::api::results::{
    bulk_ground_truth, bulk_jobs, compare_executions, get_failure_patterns, get_trends,
    paste_ground_truth, BulkGroundTruth, BulkJobs,
};
use crate::app::components::{ErrorBox, FormError, Loading};
use crate::error::AppError;
use crate::model::{BulkGroundTruthResult, JobSummary, Role, Trends};

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn plural(n: i64, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// The tabs of the grid: (query value, label, list filter (status, verdict)).
pub(super) const TABS: &[(&str, &str)] = &[
    ("", "All"),
    ("pass", "Passed"),
    ("partial", "Partial"),
    ("fail", "Failed fields"),
    ("failed", "Errors"),
];

/// The grid's orders: run order, or the jobs most worth a look first.
const SORTS: &[(&str, &str)] = &[("", "Run order"), ("accuracy", "Lowest accuracy first")];

pub(super) fn filter_of(tab: Option<&str>) -> (Option<String>, Option<String>) {
    match tab {
        Some("failed") => (Some("failed".to_string()), None),
        Some(v @ ("pass" | "partial" | "fail")) => (None, Some(v.to_string())),
        _ => (None, None),
    }
}

/// What a bulk action will do, shown for confirmation.
#[derive(Clone)]
struct Pending {
    /// The sentence asking for confirmation.
    question: String,
    samples: Vec<crate::model::GroundTruthSample>,
    /// Runs the action for real.
    apply: Callback<()>,
    danger: bool,
}

/// Moves the keyboard focus to the editable cell `step` places away from
/// `from` (in document order), or back onto `from`'s own cell.
fn focus_cell(from: Option<web_sys::HtmlElement>, step: i32) {
    let Some(td) = from else { return };
    request_animation_frame(move || {
        use leptos::wasm_bindgen::JsCast;
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let Ok(all) = doc.query_selector_all("[data-gt-cell]") else {
            return;
        };
        let own = td.query_selector("[data-gt-cell]").ok().flatten();
        let mut at = None;
        for i in 0..all.length() {
            let node = all.item(i);
            if let (Some(n), Some(o)) = (&node, &own) {
                if n.is_same_node(Some(o.unchecked_ref())) {
                    at = Some(i as i32);
                }
            }
        }
        let Some(at) = at else { return };
        let target = at + step;
        if target < 0 || target >= all.length() as i32 {
            if let Some(o) = own.and_then(|o| o.dyn_into::<web_sys::HtmlElement>().ok()) {
                let _ = o.focus();
            }
            return;
        }
        if let Some(el) = all
            .item(target as u32)
            .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    });
}

/// One expected value in the grid. A button (Enter or click edits); in
/// the editor Enter saves, Escape cancels, Tab saves and moves to the next
/// cell (Shift+Tab to the previous one).
#[component]
fn ExpectedCell(
    job: RwSignal<JobSummary>,
    field: String,
    editable: bool,
    saved: Callback<ExpectedValueSaved>,
    error: RwSignal<Option<AppError>>,
) -> impl IntoView {
    let editing = RwSignal::new(false);
    let saving = RwSignal::new(false);
    let input: NodeRef<leptos::html::Input> = NodeRef::new();
    let cell: NodeRef<leptos::html::Td> = NodeRef::new();
    let f = field.clone();
    let current = Memo::new(move |_| job.with(|j| text(j.expected.get(&f))));
    let f = field.clone();
    let verdict =
        Memo::new(move |_| job.with(|j| j.field_results.get(&f).map(|r| r["pass"] == true)));
    let f = field.clone();
    let got = Memo::new(move |_| job.with(|j| text(j.extracted.get(&f))));
    Effect::new(move |_| {
        if editing.get() {
            if let Some(el) = input.get() {
                let _ = el.focus();
                el.select();
            }
        }
    });
    let save = {
        let field = field.clone();
        move |value: String, step: Option<i32>| {
            editing.set(false);
            let td: Option<web_sys::HtmlElement> = cell.get_untracked().map(|td| {
                let el: &web_sys::HtmlElement = &td;
                el.clone()
            });
            let unchanged = current.get_untracked().unwrap_or_default() == value.trim();
            if unchanged {
                focus_cell(td, step.unwrap_or(0));
                return;
            }
            let (version, id) = job.with_untracked(|j| (j.gt_version, j.id));
            let field = field.clone();
            saving.set(true);
            // Show the new value at once; the job judged again replaces it.
            job.update(|j| {
                match value.trim() {
                    "" => j.expected.remove(&field),
                    v => j
                        .expected
                        .insert(field.clone(), Value::String(v.to_string())),
                };
            });
            focus_cell(td, step.unwrap_or(0));
            spawn_local(async move {
                // One round trip: the answer has the job and the run's
                // figures after the change.
                match save_expected_value(id, version, field, value).await {
                    Ok(s) => {
                        error.set(None);
                        job.set(s.job.clone());
                        saved.run(s);
                    }
                    Err(e) => {
                        // Someone else's value (a conflict) or the old one.
                        if let Ok(d) = get_job(id).await {
                            job.set(d.job);
                        }
                        error.set(Some(e));
                    }
                }
                saving.set(false);
            });
        }
    };
    let label = {
        let field = field.clone();
        move || {
            job.with(|j| {
                format!(
                    "Expected {field} of row {}: {}. Press Enter to edit.",
                    j.row_index,
                    text(j.expected.get(&field)).unwrap_or_else(|| "none".into())
                )
            })
        }
    };
    let class = move || match verdict.get() {
        Some(true) => "cell ok",
        Some(false) => "cell bad",
        None => "cell",
    };
    let save_key = save.clone();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let value = input.get_untracked().map(|i| i.value()).unwrap_or_default();
        match ev.key().as_str() {
            "Enter" => {
                ev.prevent_default();
                save_key(value, None);
            }
            "Escape" => {
                ev.prevent_default();
                editing.set(false);
                let td: Option<web_sys::HtmlElement> = cell.get_untracked().map(|td| {
                    let el: &web_sys::HtmlElement = &td;
                    el.clone()
                });
                focus_cell(td, 0);
            }
            "Tab" => {
                ev.prevent_default();
                save_key(value, Some(if ev.shift_key() { -1 } else { 1 }));
            }
            _ => {}
        }
    };
    let testid = format!("gt-{field}");
    view! {
        <td class=class node_ref=cell>
            <div class="got" title="Extracted">{move || got.get().unwrap_or_else(|| "—".into())}</div>
            {move || {
                // Only entering or leaving the editor rebuilds the cell, so
                // the focused button survives a save.
                let shown = move || current.get().unwrap_or_else(|| "—".into());
                if editing.get() {
                    view! {
                        <input class="cell-input" node_ref=input value=current.get_untracked().unwrap_or_default()
                            aria-label=label.clone() on:keydown=on_key.clone()
                            on:blur=move |_| editing.set(false) data-testid="gt-editor" />
                    }.into_any()
                } else if editable {
                    view! {
                        <button type="button" class="want" class:saving=move || saving.get() data-gt-cell="" data-testid=testid.clone()
                            aria-label=label.clone() on:click=move |_| editing.set(true)>
                            {shown}
                        </button>
                    }.into_any()
                } else {
                    view! { <div class="want" title="Expected">{shown}</div> }.into_any()
                }
            }}
        </td>
    }
}

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

/// Calls the server function with its arguments gathered in one value (so
/// a preview and its confirmation send the same ones).
async fn send_bulk_ground_truth(a: BulkGroundTruth) -> Result<BulkGroundTruthResult, AppError> {
    bulk_ground_truth(
        a.batch,
        a.execution,
        a.operation,
        a.field,
        a.value,
        a.find,
        a.replace,
        a.job_ids,
        a.all_matching,
        a.status,
        a.evaluation,
        a.preview,
    )
    .await
}

async fn send_bulk_jobs(a: BulkJobs) -> Result<crate::model::BulkJobsResult, AppError> {
    bulk_jobs(
        a.execution,
        a.action,
        a.job_ids,
        a.all_matching,
        a.status,
        a.evaluation,
        a.preview,
    )
    .await
}

fn use_slug_for_links() -> String {
    let params = leptos_router::hooks::use_params_map();
    params.read_untracked().get("slug").unwrap_or_default()
}

fn done_message(r: &BulkGroundTruthResult) -> String {
    format!(
        "Changed {} in {}; {} judged again.",
        plural(r.values_changed, "expected value"),
        plural(r.rows_changed, "row"),
        plural(r.reevaluated_jobs, "job")
    )
}

/// Why fields failed, by pattern, with examples linking to their jobs.
#[component]
pub fn FailurePatternsCard(
    id: Uuid,
    org_slug: String,
    changed: RwSignal<u32>,
    /// A saved expected value's new patterns, until the next read.
    edited: RwSignal<Option<ExpectedValueSaved>>,
    progress: Memo<(bool, i64)>,
) -> impl IntoView {
    let active = Memo::new(move |_| progress.get().0);
    let data = Resource::new(
        move || (changed.get(), active.get()),
        move |_| get_failure_patterns(id),
    );
    let label = |p: &str| match p {
        "missing" => "Nothing extracted",
        "wrong_type" => "Not a value of the field's type",
        "partial" => "Close but not equal",
        "wrong_value" => "Wrong value",
        _ => "Agent error (the job failed)",
    };
    view! {
        <section class="card">
            <h2>"Failure patterns"</h2>
            <Transition fallback=|| view! { <Loading /> }>
                {move || {
                    let slug = org_slug.clone();
                    let fresh = edited.with(|e| e.as_ref().map(|e| e.patterns.clone()));
                    Suspend::new(async move {
                        let patterns = match fresh {
                            Some(p) => Ok(p),
                            None => data.await,
                        };
                        match patterns {
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                            Ok(p) if p.fields.iter().all(|f| f.patterns.is_empty()) => view! {
                                <p class="empty">"No failures to explain: every judged field passed (or nothing has been judged yet)."</p>
                            }.into_any(),
                            Ok(p) => view! {
                                <div class="patterns" data-testid="failure-patterns">
                                    {p.fields.into_iter().filter(|f| !f.patterns.is_empty()).map(|f| {
                                        let slug = slug.clone();
                                        view! {
                                            <div class="pattern-field">
                                                <h3>{f.field.clone()} <span class="muted small">{format!(" · {} judged", f.judged)}</span></h3>
                                                {f.patterns.into_iter().map(|p| {
                                                    let slug = slug.clone();
                                                    view! {
                                                        <details>
                                                            <summary><strong>{p.count}</strong> " " {label(&p.pattern)}</summary>
                                                            <ul class="examples">
                                                                {p.examples.into_iter().map(|e| view! {
                                                                    <li>
                                                                        <a href=format!("/o/{slug}/jobs/{}", e.job_id)>{format!("Row {}", e.row_index)}</a>
                                                                        ": got " <code>{e.extracted.clone().unwrap_or_else(|| "nothing".into())}</code>
                                                                        ", expected " <code>{e.expected.clone().unwrap_or_default()}</code>
                                                                        <span class="muted small">{format!(" — {}", e.detail)}</span>
                                                                    </li>
                                                                }).collect_view()}
                                                            </ul>
                                                        </details>
                                                    }
                                                }).collect_view()}
                                            </div>
                                        }
                                    }).collect_view()}
                                </div>
                            }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

/// The trend of accuracy across a batch's runs, as an SVG line chart drawn
/// on the server (readable without JavaScript), with a table of the same
/// figures for screen readers and exact values.
#[component]
pub fn TrendsCard(batch_id: Uuid, org_slug: String) -> impl IntoView {
    let data = Resource::new(move || batch_id, get_trends);
    view! {
        <section class="card">
            <h2>"Accuracy across runs"</h2>
            <Transition fallback=|| view! { <Loading /> }>
                {move || {
                    let slug = org_slug.clone();
                    Suspend::new(async move {
                        match data.await {
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                            Ok(t) if t.points.iter().all(|p| p.accuracy.is_none()) => view! {
                                <p class="empty">"No run of this batch has been judged yet: start a run, and its accuracy per field shows here, run after run."</p>
                            }.into_any(),
                            Ok(t) => view! { <TrendChart trends=t org_slug=slug /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

/// A line of the chart: name, colour, (run, accuracy) points.
type Series = (String, String, Vec<(usize, f64)>);

fn num(v: f64) -> String {
    format!("{v:.1}")
}

const SERIES: &[&str] = &[
    "#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
];

#[component]
fn TrendChart(trends: Trends, org_slug: String) -> impl IntoView {
    let (w, h, left, right, top, bottom) = (640.0f64, 220.0f64, 40.0, 12.0, 12.0, 28.0);
    let n = trends.points.len().max(1);
    let x = move |i: usize| {
        if n == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = move |v: f64| top + (h - top - bottom) * (1.0 - v);
    let mut series: Vec<Series> = vec![(
        "all fields".into(),
        "#111827".into(),
        trends
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.accuracy.map(|a| (i, a)))
            .collect(),
    )];
    for (k, f) in trends.fields.iter().enumerate() {
        series.push((
            f.clone(),
            SERIES[k % SERIES.len()].to_string(),
            trends
                .points
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.fields.get(f).map(|a| (i, *a)))
                .collect(),
        ));
    }
    let grid = [0.0, 0.25, 0.5, 0.75, 1.0]
        .into_iter()
        .map(|v| {
            view! {
                <line x1=num(left) x2=num(w - right) y1=num(y(v)) y2=num(y(v)) class="chart-grid" />
                <text x=num(left - 6.0) y=num(y(v) + 4.0) text-anchor="end" class="chart-label">{format!("{:.0}%", v * 100.0)}</text>
            }
        })
        .collect_view();
    let ticks = trends
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            view! { <text x=num(x(i)) y=num(h - 8.0) text-anchor="middle" class="chart-label">{format!("v{} #{}", p.instruction_version, i + 1)}</text> }
        })
        .collect_view();
    let lines = series
        .iter()
        .map(|(name, colour, pts)| {
            let d = pts
                .iter()
                .map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v)))
                .collect::<Vec<_>>()
                .join(" ");
            let dots = pts
                .iter()
                .map(|(i, v)| view! { <circle cx=num(x(*i)) cy=num(y(*v)) r="3" fill=colour.clone()></circle> })
                .collect_view();
            let width = if name == "all fields" { "2.5" } else { "1.5" };
            view! { <polyline points=d fill="none" stroke=colour.clone() stroke-width=width /> {dots} }
        })
        .collect_view();
    let legend = series
        .iter()
        .map(|(name, colour, _)| view! { <li><span class="swatch" style=format!("background: {colour}")></span>{name.clone()}</li> })
        .collect_view();
    let rows = trends
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cells = trends
                .fields
                .iter()
                .map(|f| view! { <td class="num">{p.fields.get(f).map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "—".into())}</td> })
                .collect_view();
            view! {
                <tr>
                    <td><a href=format!("/o/{org_slug}/executions/{}", p.execution_id)>{format!("#{} · {} run", i + 1, p.mode)}</a>
                        <span class="muted small">{format!(" · v{} · {}", p.instruction_version, p.created_at.format("%Y-%m-%d %H:%M"))}</span></td>
                    <td class="num"><strong>{p.accuracy.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "—".into())}</strong></td>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    let heads = trends
        .fields
        .iter()
        .map(|f| view! { <th scope="col" class="num">{f.clone()}</th> })
        .collect_view();
    view! {
        <svg viewBox=format!("0 0 {w} {h}") class="chart" role="img" aria-label="Accuracy per field across this batch's runs" data-testid="trend-chart">
            {grid}{ticks}{lines}
        </svg>
        <ul class="legend">{legend}</ul>
        <div class="table-wrap">
            <table data-testid="trend-table">
                <thead><tr><th scope="col">"Run"</th><th scope="col" class="num">"Accuracy"</th>{heads}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// Pasting expected values for one field: two columns (row number or URL,
/// value) as copied from a spreadsheet; a preview first.
#[component]
pub fn PasteGroundTruth(
    batch_id: Uuid,
    fields: Vec<String>,
    /// Set to what a save did; owned by the page, which reads the batch
    /// again when `saved` moves (this card is rebuilt with it).
    notice: RwSignal<Option<String>>,
    saved: RwSignal<u32>,
) -> impl IntoView {
    let field = RwSignal::new(fields.first().cloned().unwrap_or_default());
    let pasted = RwSignal::new(String::new());
    let preview = RwSignal::new(None::<BulkGroundTruthResult>);
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    // Which input the preview came from, so "save" sends the same one.
    let from_file = RwSignal::new(false);
    let file_input: NodeRef<leptos::html::Input> = NodeRef::new();
    let chosen_file = move || {
        file_input
            .get_untracked()
            .and_then(|i| i.files())
            .and_then(|l| l.get(0))
    };
    let run = move |dry: bool| {
        busy.set(true);
        error.set(None);
        notice.set(None);
        let (f, t, file) = (
            field.get_untracked(),
            pasted.get_untracked(),
            from_file.get_untracked(),
        );
        let chosen = if file { chosen_file() } else { None };
        spawn_local(async move {
            let answer = match chosen {
                // A file goes to the REST endpoint as it is (the session
                // cookie authenticates it), like a batch upload.
                Some(file) => {
                    let url =
                        format!("/api/v1/batches/{batch_id}/ground-truth/bulk-set?preview={dry}");
                    match crate::app::upload::post_blob(&url, &file, |_| {}).await {
                        Ok((200, body)) => serde_json::from_str::<BulkGroundTruthResult>(&body)
                            .map_err(|_| AppError::Internal("unreadable answer".into())),
                        Ok((_, body)) => Err(AppError::Validation {
                            message: serde_json::from_str::<Value>(&body)
                                .ok()
                                .and_then(|v| v["error"].as_str().map(str::to_string))
                                .unwrap_or_else(|| "The file was refused.".into()),
                            fields: vec![],
                        }),
                        Err(e) => Err(AppError::Validation {
                            message: e,
                            fields: vec![],
                        }),
                    }
                }
                None if file => Err(AppError::field("file", "Choose a CSV file first.")),
                None => paste_ground_truth(batch_id, f, t, dry).await,
            };
            match answer {
                Ok(r) if dry => preview.set(Some(r)),
                Ok(r) => {
                    preview.set(None);
                    pasted.set(String::new());
                    notice.set(Some(done_message(&r)));
                    saved.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let error_signal = Signal::derive(move || error.get());
    let options = fields
        .iter()
        .map(|f| view! { <option value=f.clone()>{f.clone()}</option> })
        .collect_view();
    view! {
        <section class="card">
            <h2>"Set expected values in bulk"</h2>
            <p class="hint">"Copy two columns from a spreadsheet — the row number (or the URL) and the value — and paste them here, or choose a CSV file with a row, row_id or url column and one column per field. Empty values are skipped. You'll see the changes before they are saved."</p>
            <FormError error=error_signal />
            {move || notice.get().map(|n| view! { <p class="banner ok" role="status" data-testid="paste-notice">{n}</p> })}
            <form on:submit=move |ev| { ev.prevent_default(); from_file.set(false); run(true); }>
                <div class="field">
                    <label for="paste-field">"Field"</label>
                    <select id="paste-field" prop:value=move || field.get() on:change=move |ev| field.set(event_target_value(&ev))>{options}</select>
                </div>
                <div class="field">
                    <label for="paste-text">"Row (or URL) and value, one per line"</label>
                    <textarea id="paste-text" rows="5" placeholder="3\t19.99\n4\t5.00" prop:value=move || pasted.get()
                        on:input=move |ev| { pasted.set(event_target_value(&ev)); preview.set(None); } data-testid="paste-text"></textarea>
                </div>
                <button type="submit" class="button" disabled=move || busy.get() || pasted.get().trim().is_empty()>"Preview"</button>
            </form>
            <form class="inline-form" on:submit=move |ev| { ev.prevent_default(); from_file.set(true); run(true); }>
                <div class="field">
                    <label for="gt-file">"Or a CSV file"</label>
                    <input id="gt-file" type="file" accept=".csv,.tsv,.txt,text/csv" node_ref=file_input
                        on:change=move |_| preview.set(None) data-testid="gt-file" />
                </div>
                <button type="submit" class="button" disabled=move || busy.get()>"Preview file"</button>
            </form>
            {move || preview.get().map(|p| {
                if p.values_changed == 0 {
                    return view! { <p class="banner" role="status">{format!("Nothing to change: the {} already have these values.", plural(p.rows_matched, "row"))}</p> }.into_any();
                }
                view! {
                    <div class="confirm-box" role="alertdialog" aria-label="Confirm" data-testid="paste-confirm">
                        <p>{format!("Change {} in {}? Every run of this batch is judged again.", plural(p.values_changed, "expected value"), plural(p.rows_changed, "row"))}</p>
                        <ul class="examples">{p.samples.iter().map(|s| view! {
                            <li>{format!("Row {} · {}: ", s.row_index, s.field)} <code>{s.before.clone().unwrap_or_else(|| "—".into())}</code> " → " <code>{s.after.clone().unwrap_or_else(|| "—".into())}</code></li>
                        }).collect_view()}</ul>
                        <div class="controls">
                            <button type="button" class="button primary" disabled=move || busy.get() on:click=move |_| run(false) data-testid="paste-apply">"Yes, save"</button>
                            <button type="button" class="button" on:click=move |_| preview.set(None)>"Cancel"</button>
                        </div>
                    </div>
                }.into_any()
            })}
        </section>
    }
}

/// `/o/:slug/compare?a=&b=`: two runs of one batch side by side.
#[component]
pub fn ComparePage() -> impl IntoView {
    let a = use_query("a");
    let b = use_query("b");
    let slug = StoredValue::new(use_slug_for_links());
    let data = Resource::new(
        move || (a.get(), b.get()),
        |(a, b)| async move {
            let parse = |v: Option<String>, name: &str| {
                v.and_then(|v| Uuid::parse_str(&v).ok())
                    .ok_or_else(|| AppError::field(name, "Choose two runs to compare."))
            };
            compare_executions(parse(a, "a")?, parse(b, "b")?).await
        },
    );
    let pct = |v: Option<f64>| {
        v.map(|a| format!("{:.1}%", a * 100.0))
            .unwrap_or_else(|| "—".into())
    };
    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => {
            let d = (b - a) * 100.0;
            let class = if d > 0.05 {
                "ok-text"
            } else if d < -0.05 {
                "bad-text"
            } else {
                "muted"
            };
            view! { <span class=class>{format!("{d:+.1} pts")}</span> }.into_any()
        }
        _ => view! { <span class="muted">"—"</span> }.into_any(),
    };
    view! {
        <Title text="Compare runs" />
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <h1>"Compare runs"</h1><ErrorBox error=e /> }.into_any(),
                    Ok(c) => {
                        let slug = slug.get_value();
                        let run_link = |e: &crate::model::Execution, label: &str| view! {
                            <a href=format!("/o/{slug}/executions/{}", e.id)>{format!("{label}: {} run, v{}, {}", e.mode, e.instruction_version, e.created_at.format("%Y-%m-%d %H:%M"))}</a>
                        };
                        let summary = [
                            ("Accuracy", pct(c.a.accuracy), pct(c.b.accuracy), delta(c.a.accuracy, c.b.accuracy)),
                            ("Passed", c.a.passed.to_string(), c.b.passed.to_string(), view! { <span>{format!("{:+}", c.b.passed - c.a.passed)}</span> }.into_any()),
                            ("With wrong fields", c.a.failed.to_string(), c.b.failed.to_string(), view! { <span>{format!("{:+}", c.b.failed - c.a.failed)}</span> }.into_any()),
                            ("Errors", c.a.errors.to_string(), c.b.errors.to_string(), view! { <span>{format!("{:+}", c.b.errors - c.a.errors)}</span> }.into_any()),
                            ("Jobs", c.a.total.to_string(), c.b.total.to_string(), view! { <span>{format!("{:+}", c.b.total - c.a.total)}</span> }.into_any()),
                            ("Cost", crate::model::format_price(c.a.cost_micros), crate::model::format_price(c.b.cost_micros), view! { <span></span> }.into_any()),
                        ].into_iter().map(|(k, a, b, d)| view! {
                            <tr><th scope="row">{k}</th><td class="num">{a}</td><td class="num">{b}</td><td class="num">{d}</td></tr>
                        }).collect_view();
                        let fields = c.fields.iter().map(|f| view! {
                            <tr><th scope="row">{f.field.clone()}</th><td class="num">{pct(f.accuracy_a)}</td><td class="num">{pct(f.accuracy_b)}</td>
                                <td class="num">{delta(f.accuracy_a, f.accuracy_b)}</td></tr>
                        }).collect_view();
                        let pairs = |title: &'static str, testid: &'static str, list: Vec<crate::model::JobPair>, count: i64, empty: &'static str| {
                            let slug = slug.clone();
                            view! {
                                <section class="card">
                                    <h2>{title} " " <span class="muted">{format!("({count})")}</span></h2>
                                    {if list.is_empty() {
                                        view! { <p class="empty">{empty}</p> }.into_any()
                                    } else {
                                        view! {
                                            <div class="table-wrap">
                                                <table data-testid=testid>
                                                    <thead><tr><th scope="col" class="num">"Row"</th><th scope="col">"Site"</th><th scope="col">"A"</th><th scope="col">"B"</th><th scope="col">"Values that changed (A → B)"</th></tr></thead>
                                                    <tbody>
                                                        {list.into_iter().map(|p| {
                                                            let (ca, la) = verdict_badge(p.verdict_a, "");
                                                            let (cb, lb) = verdict_badge(p.verdict_b, "");
                                                            let diffs = p.differences.iter().map(|(k, (x, y))| format!("{k}: {} → {}", x.clone().unwrap_or_else(|| "—".into()), y.clone().unwrap_or_else(|| "—".into()))).collect::<Vec<_>>().join(" · ");
                                                            view! {
                                                                <tr>
                                                                    <td class="num">{p.row_index}</td>
                                                                    <td class="clip"><span title=p.url.clone()>{p.url.clone()}</span></td>
                                                                    <td><a href=format!("/o/{slug}/jobs/{}", p.job_a)><span class=ca>{la}</span></a></td>
                                                                    <td><a href=format!("/o/{slug}/jobs/{}", p.job_b)><span class=cb>{lb}</span></a></td>
                                                                    <td class="small">{diffs}</td>
                                                                </tr>
                                                            }
                                                        }).collect_view()}
                                                    </tbody>
                                                </table>
                                            </div>
                                            {(count > 200).then(|| view! { <p class="muted small">"The first 200 are listed."</p> })}
                                        }.into_any()
                                    }}
                                </section>
                            }
                        };
                        view! {
                            <p class="crumbs"><a href=format!("/o/{slug}/batches/{}", c.a.batch_id)>{c.a.batch_name.clone()}</a> " /"</p>
                            <h1>"Compare runs"</h1>
                            <p>{run_link(&c.a, "A")} <br /> {run_link(&c.b, "B")}</p>
                            <div class="summary-tiles" data-testid="compare-summary">
                                <div class="tile ok-tile"><span class="stat" data-testid="fixed-count">{c.fixed_count}</span><span>"fixed"</span></div>
                                <div class="tile bad-tile"><span class="stat" data-testid="regressed-count">{c.regressed_count}</span><span>"regressed"</span></div>
                                <div class="tile"><span class="stat">{c.changed_count}</span><span>"changed value, same verdict"</span></div>
                                {(c.only_a + c.only_b > 0).then(|| view! { <div class="tile"><span class="stat">{c.only_a + c.only_b}</span><span>{format!("rows in one run only (A {}, B {})", c.only_a, c.only_b)}</span></div> })}
                            </div>
                            <section class="card">
                                <h2>"Summary"</h2>
                                <div class="table-wrap"><table>
                                    <thead><tr><th scope="col"></th><th scope="col" class="num">"A"</th><th scope="col" class="num">"B"</th><th scope="col" class="num">"Change"</th></tr></thead>
                                    <tbody>{summary}</tbody>
                                </table></div>
                            </section>
                            <section class="card">
                                <h2>"Accuracy by field"</h2>
                                {if c.fields.is_empty() { view! { <p class="empty">"Neither run has judged fields yet."</p> }.into_any() } else { view! {
                                    <div class="table-wrap"><table data-testid="compare-fields">
                                        <thead><tr><th scope="col">"Field"</th><th scope="col" class="num">"A"</th><th scope="col" class="num">"B"</th><th scope="col" class="num">"Change"</th></tr></thead>
                                        <tbody>{fields}</tbody>
                                    </table></div>
                                }.into_any() }}
                            </section>
                            {pairs("Fixed", "fixed-jobs", c.fixed, c.fixed_count, "No row got better in B.")}
                            {pairs("Regressed", "regressed-jobs", c.regressed, c.regressed_count, "No row got worse in B.")}
                            {pairs("Changed values", "changed-jobs", c.changed, c.changed_count, "No other row's extracted values changed.")}
                            <section class="card">
                                <h2>"Instructions"</h2>
                                {match c.instructions_diff {
                                    Some(d) => view! { <super::projects::DiffView diff=d /> }.into_any(),
                                    None => view! { <p class="empty">{format!("Both runs used instructions version {}.", c.a.instruction_version)}</p> }.into_any(),
                                }}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// "Compare with…": a plain GET form to the compare page, listing the
/// batch's other runs.
#[component]
pub fn CompareWith(id: Uuid, batch_id: Uuid, org_slug: String) -> impl IntoView {
    let runs = Resource::new(move || batch_id, crate::api::projects::list_executions);
    view! {
        <Transition fallback=|| ()>
            {move || {
                let slug = org_slug.clone();
                Suspend::new(async move {
                    let others: Vec<crate::model::Execution> = runs.await.map(|p| p.items).unwrap_or_default().into_iter().filter(|e| e.id != id).collect();
                    if others.is_empty() {
                        return view! { <p class="muted small">"Run this batch again (for example after improving the instructions) to compare the two runs."</p> }.into_any();
                    }
                    view! {
                        <form method="get" action=format!("/o/{slug}/compare") class="inline-form" data-testid="compare-form">
                            <input type="hidden" name="b" value=id.to_string() />
                            <div class="field">
                                <label for="compare-a">"Compare with an earlier or later run"</label>
                                <select id="compare-a" name="a">
                                    {others.into_iter().map(|e| view! {
                                        <option value=e.id.to_string()>{format!("{} run · v{} · {} · {}", e.mode, e.instruction_version, e.created_at.format("%Y-%m-%d %H:%M"), e.accuracy.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "not judged".into()))}</option>
                                    }).collect_view()}
                                </select>
                            </div>
                            <button type="submit" class="button">"Compare"</button>
                        </form>
                    }.into_any()
                })
            }}
        </Transition>
    }
}
