//! An execution's jobs as a grid, with selection and bulk actions.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use crate::api::projects::{get_grid_columns, get_job, list_execution_jobs, save_grid_columns};
use crate::api::results::{BulkGroundTruth, BulkJobs};
use crate::app::components::badges::verdict_badge;
use crate::app::components::{ErrorBox, Loading};
use crate::app::hooks::use_query;
use crate::error::AppError;
use crate::model::{BulkOperation, ExpectedValueSaved, GridColumns, JobSummary, Role};

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
    /// The run's project: the columns shown are the caller's choice for it.
    project_id: Uuid,
    batch_id: Uuid,
    org_slug: String,
    role: Option<Role>,
    /// The run's progress: the list reads again as it moves on.
    progress: Memo<(bool, i64)>,
    /// How many jobs each of [`TABS`] holds (None: not counted live), from
    /// the same live counts as the page's header.
    tab_counts: Memo<Vec<Option<i64>>>,
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
    // Which columns, in which order: the caller's saved choice, changed
    // here at once and saved behind.
    let columns = Resource::new(move || project_id, get_grid_columns);
    let chosen = RwSignal::new(None::<Vec<String>>);
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
    // The rows on screen, so a bulk change of expected values can update
    // them in place, as an edit in a cell does (rows never jump away
    // under the user; the tab's membership is read again on reload).
    let page_rows = StoredValue::new(Vec::<RwSignal<JobSummary>>::new());

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
                                    // The changed rows on screen are read again
                                    // and stay where they are; the selection
                                    // has done its work.
                                    let reach = if all_matching.get_untracked() {
                                        None
                                    } else {
                                        Some(selected.get_untracked())
                                    };
                                    selected.set(BTreeSet::new());
                                    all_matching.set(false);
                                    for row in page_rows.get_value() {
                                        let id = row.with_untracked(|j| j.id);
                                        if reach.as_ref().is_none_or(|r| r.contains(&id)) {
                                            if let Ok(d) = get_job(id).await {
                                                row.set(d.job);
                                            }
                                        }
                                    }
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
    // The selection (or every job matching the list) saved as an
    // evaluation set of the batch: a regression set chosen by hand.
    let set_name = RwSignal::new(String::new());
    let save_set = move || {
        let name = set_name.get_untracked();
        let chosen = selected.get_untracked();
        let rows: Vec<String> = page_rows
            .get_value()
            .iter()
            .filter_map(|r| r.with_untracked(|j| chosen.contains(&j.id).then_some(j.row_index)))
            .map(|r| r.to_string())
            .collect();
        let (execution, tab_now) = if all_matching.get_untracked() {
            (id.to_string(), tab.get_untracked().unwrap_or_default())
        } else {
            (String::new(), String::new())
        };
        error.set(None);
        notice.set(None);
        busy.set(true);
        spawn_local(async move {
            match crate::api::projects::create_evaluation_set(
                batch_id,
                name,
                rows.join(", "),
                execution,
                tab_now,
                String::new(),
            )
            .await
            {
                Ok(set) => {
                    notice.set(Some(format!(
                        "Saved evaluation set “{}” (version {}, {}); run it from the batch page.",
                        set.name,
                        set.version,
                        plural(set.size, "row")
                    )));
                    set_name.set(String::new());
                    selected.set(BTreeSet::new());
                    all_matching.set(false);
                }
                Err(e) => error.set(Some(e)),
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
    let tabs = move || {
        let counts = tab_counts.get();
        let current_tab = tab.get().unwrap_or_default();
        TABS.iter()
            .zip(counts)
            .filter(|((key, _), n)| key.is_empty() || *key == current_tab || n.is_some_and(|n| n > 0))
            .map(|((key, label), n)| {
                let href = move || query_of(Some(key.to_string()), sort.get());
                let current = *key == current_tab;
                let count = n.map(|n| view! { " " <span class="tab-count">{crate::model::thousands(n)}</span> });
                view! { <a href=href class="tab" class:current=current aria-current=current.then_some("page") data-tab=*key>{*label}{count}</a> }
            })
            .collect_view()
    };
    let sorts = SORTS
        .iter()
        .map(|(key, label)| {
            let href = move || query_of(tab.get(), Some(key.to_string()));
            let current = move || sort.get().unwrap_or_default() == *key;
            view! { <a href=href class="tab" class:current=current aria-current=move || current().then_some("page")>{*label}</a> }
        })
        .collect_view();
    view! {
        <section class="card" id="results">
            <h2>"Results"</h2>
            <div class="grid-controls">
                <nav class="tabs" aria-label="Filter jobs">{tabs}</nav>
                <nav class="tabs sorts" aria-label="Sort jobs"><span class="muted small">"Sort: "</span>{sorts}</nav>
                <ColumnChooser project_id columns chosen error />
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
                            let config = columns.await.ok();
                            let mut order: Vec<String> = chosen.get().or_else(|| config.as_ref().map(|c| c.shown.clone())).unwrap_or_else(|| {
                                crate::model::FIXED_GRID_COLUMNS.iter().map(|c| c.to_string()).collect()
                            });
                            // Values under names that are no field of the project
                            // (a remote agent's extra keys) still show, at the end.
                            let available = config.map(|c| c.available).unwrap_or_default();
                            for j in &page.items {
                                for k in j.extracted.keys().chain(j.expected.keys()) {
                                    let c = format!("field:{k}");
                                    if !available.contains(&c) && !order.contains(&c) {
                                        order.push(c);
                                    }
                                }
                            }
                            let fields: Vec<String> = order.iter().filter_map(|c| c.strip_prefix("field:").map(str::to_string)).collect();
                            let rows: Vec<RwSignal<JobSummary>> = page.items.into_iter().map(RwSignal::new).collect();
                            page_rows.set_value(rows.clone());
                            // A selection never holds jobs that are no longer
                            // listed. (Done here, not in an effect reading the
                            // resource: that read would suspend the whole page.)
                            let listed: BTreeSet<i64> = rows.iter().map(|r| r.with_untracked(|j| j.id)).collect();
                            if !all_matching.get_untracked() && selected.with_untracked(|s| s.iter().any(|i| !listed.contains(i))) {
                                selected.update(|s| s.retain(|i| listed.contains(i)));
                            }
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
                            // Errors get a column of their own on pages that have one.
                            let has_errors = rows.iter().any(|r| r.with_untracked(|j| j.error_class.is_some() || j.error.is_some()));
                            // ... placed before the first field column, as one more column.
                            if has_errors {
                                let at = order.iter().position(|c| c.starts_with("field:")).unwrap_or(order.len());
                                order.insert(at, "error".into());
                            }
                            let heads = order.iter().map(|c| match c.as_str() {
                                "error" => view! { <th scope="col">"Error"</th> }.into_any(),
                                "accuracy" => view! { <th scope="col" class="num">{GridColumns::label(c)}</th> }.into_any(),
                                f if f.starts_with("field:") => view! { <th scope="col">{GridColumns::label(c)}<span class="muted small">" extracted / expected"</span></th> }.into_any(),
                                _ => view! { <th scope="col">{GridColumns::label(c)}</th> }.into_any(),
                            }).collect_view();
                            let fields_for_form = fields.clone();
                            let fields_for_cards = fields.clone();
                            let body = rows.iter().map(|job| {
                                let job = *job;
                                let (jid, row_index, url) = job.with_untracked(|j| (j.id, j.row_index, j.url.clone()));
                                let slug = slug_for_rows.get_value();
                                let badge = move || job.with(|j| verdict_badge(j.verdict, j.state.as_str()));
                                let accuracy = move || job.with(|j| j.accuracy.map(|a| format!("{:.0}%", a * 100.0)));
                                let checked = move || selected.with(|s| s.contains(&jid));
                                let cells = order.iter().map(|c| match c.as_str() {
                                    "site" => view! { <td class="site"><SiteLink url=url.clone() /></td> }.into_any(),
                                    "result" => view! { <td><span class=move || badge().0>{move || badge().1}</span></td> }.into_any(),
                                    "accuracy" => view! { <td class="num">{accuracy}</td> }.into_any(),
                                    "error" => {
                                        let text = job.with_untracked(error_text);
                                        view! { <td class="error-cell"><span title=text.clone()>{text.clone()}</span></td> }.into_any()
                                    }
                                    f => view! { <ExpectedCell job field=f.strip_prefix("field:").unwrap_or(f).to_string() editable=can_edit saved error /> }.into_any(),
                                }).collect_view();
                                view! {
                                    <tr>
                                        <th scope="row" class="lead">
                                            <input type="checkbox" aria-label=format!("Select row {row_index}") prop:checked=checked
                                                on:change=move |_| selected.update(|s| { if !s.remove(&jid) { s.insert(jid); } all_matching.set(false); }) />
                                            <a href=format!("/o/{slug}/jobs/{jid}") title=format!("Open the job of row {row_index}")>{row_index}</a>
                                        </th>
                                        {cells}
                                    </tr>
                                }
                            }).collect_view();
                            let cards = rows.iter().map(|job| {
                                let slug = slug_for_rows.get_value();
                                let fields = fields_for_cards.clone();
                                view! { <JobCard job=*job fields slug /> }
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
                                        {can_edit.then(|| view! {
                                            <form class="inline-form" data-testid="save-set" on:submit=move |ev| { ev.prevent_default(); save_set(); }>
                                                <label for="grid-set-name">"Save their rows as an evaluation set"</label>
                                                <input id="grid-set-name" required maxlength="100" placeholder="Set name"
                                                    prop:value=move || set_name.get() on:input=move |ev| set_name.set(event_target_value(&ev)) />
                                                <button type="submit" class="button" disabled=move || busy.get()>"Save set"</button>
                                            </form>
                                        })}
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
                                <div class="grid-wrap">
                                    <table data-testid="jobs" class="results-grid">
                                        <thead><tr>
                                            <th scope="col" class="lead">
                                                <input type="checkbox" aria-label=format!("Select the {n_page} jobs on this page") prop:checked=all_on_page
                                                    on:change=move |_| {
                                                        let ids = page_ids_toggle.clone();
                                                        selected.update(|s| {
                                                            if ids.iter().all(|i| s.contains(i)) { for i in &ids { s.remove(i); } } else { s.extend(ids.iter().copied()); }
                                                        });
                                                        all_matching.set(false);
                                                    } data-testid="select-page" />
                                                "Row"
                                            </th>
                                            {heads}
                                        </tr></thead>
                                        <tbody>{body}</tbody>
                                    </table>
                                </div>
                                <ol class="job-cards" data-testid="job-cards" aria-label="Jobs">{cards}</ol>
                                {next.map(|n| view! { <nav class="pager" aria-label="Pages"><a href=n>"Next jobs →"</a></nav> })}
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// A job's error as one line: its class and message.
fn error_text(j: &JobSummary) -> String {
    match (j.error_class.as_deref(), j.error.as_deref()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => String::new(),
    }
}

/// A site's URL by its distinctive end (the path), the host dimmed before
/// it and the whole address on hover.
#[component]
fn SiteLink(url: String) -> impl IntoView {
    let (host, path) = crate::model::url_parts(&url, 48);
    view! {
        <a class="site-link" href=url.clone() title=url target="_blank" rel="noopener noreferrer">
            <span class="host">{host}</span><span class="path">{path}</span>
        </a>
    }
}

/// A job as a card, for narrow screens: verdict, the fields that failed
/// with expected against extracted, or the error.
#[component]
fn JobCard(job: RwSignal<JobSummary>, fields: Vec<String>, slug: String) -> impl IntoView {
    move || {
        job.with(|j| {
            let (class, label) = verdict_badge(j.verdict, j.state.as_str());
            let failed: Vec<_> = fields
                .iter()
                .filter(|f| j.field_results.get(*f).is_some_and(|r| r["pass"] == false))
                .map(|f| {
                    let want = super::text(j.expected.get(f)).unwrap_or_else(|| "—".into());
                    let got = super::text(j.extracted.get(f)).unwrap_or_else(|| "—".into());
                    view! {
                        <li><strong>{f.clone()}</strong>": expected " <span class="value">{want}</span>
                            ", extracted " <span class="value">{got}</span></li>
                    }
                })
                .collect();
            let judged = fields.iter().filter(|f| j.field_results.contains_key(*f)).count();
            let detail = if j.error_class.is_some() || j.error.is_some() {
                view! { <p class="bad-text small">{error_text(j)}</p> }.into_any()
            } else if !failed.is_empty() {
                view! { <ul class="failed-fields">{failed}</ul> }.into_any()
            } else if judged > 0 {
                view! { <p class="small muted">{format!("All {} judged fields right.", judged)}</p> }.into_any()
            } else {
                view! { <p class="small muted">"Not judged."</p> }.into_any()
            };
            let accuracy = j.accuracy.map(|a| format!(" · {:.0}%", a * 100.0)).unwrap_or_default();
            view! {
                <li class="job-card">
                    <p class="job-card-head">
                        <a href=format!("/o/{slug}/jobs/{}", j.id)>{format!("Row {}", j.row_index)}</a>
                        " " <span class=class>{label}</span>{accuracy}
                    </p>
                    <p class="small"><SiteLink url=j.url.clone() /></p>
                    {detail}
                </li>
            }
        })
    }
}

/// Choose and order the grid's columns: a checkbox per column and buttons
/// to move it; each change shows at once and is saved for the caller and
/// this project.
#[component]
fn ColumnChooser(
    project_id: Uuid,
    columns: Resource<Result<GridColumns, AppError>>,
    chosen: RwSignal<Option<Vec<String>>>,
    error: RwSignal<Option<AppError>>,
) -> impl IntoView {
    let config = move || columns.get().and_then(Result::ok);
    // Shown columns in order, then the hidden ones.
    let listed = move || {
        let c = config()?;
        let shown = chosen.get().unwrap_or_else(|| c.shown.clone());
        let mut all: Vec<(String, bool)> = shown.iter().map(|n| (n.clone(), true)).collect();
        all.extend(
            c.available
                .iter()
                .filter(|n| !shown.contains(n))
                .map(|n| (n.clone(), false)),
        );
        Some(all)
    };
    let apply = move |next: Vec<String>| {
        if next.is_empty() {
            return;
        }
        chosen.set(Some(next.clone()));
        spawn_local(async move {
            match save_grid_columns(project_id, next.join(",")).await {
                Ok(_) => error.set(None),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let current = move || {
        chosen
            .get_untracked()
            .or_else(|| config().map(|c| c.shown))
            .unwrap_or_default()
    };
    let toggle = move |name: String| {
        let mut next = current();
        if let Some(i) = next.iter().position(|n| *n == name) {
            next.remove(i);
        } else {
            next.push(name);
        }
        apply(next);
    };
    let shift = move |name: String, up: bool| {
        let mut next = current();
        if let Some(i) = next.iter().position(|n| *n == name) {
            let j = if up {
                i.checked_sub(1)
            } else {
                Some(i + 1).filter(|j| *j < next.len())
            };
            if let Some(j) = j {
                next.swap(i, j);
                apply(next);
            }
        }
    };
    view! {
        <details class="menu column-menu" data-testid="column-chooser">
            <summary>"Columns"</summary>
            <div class="column-panel">
                <p class="small muted">"Shown columns, in order; saved for you in this project."</p>
                // Inside a Transition: the server renders the list once the
                // columns are read, as hydration expects.
                <Transition fallback=|| ()>
                {move || listed().map(|all| {
                    let n_shown = all.iter().filter(|(_, s)| *s).count();
                    view! {
                        <ul class="column-list">
                            {all.into_iter().enumerate().map(|(i, (name, shown))| {
                                let label = GridColumns::label(&name);
                                let (t, u, d) = (name.clone(), name.clone(), name.clone());
                                view! {
                                    <li>
                                        <label class="inline-check">
                                            <input type="checkbox" prop:checked=shown disabled={shown && n_shown == 1}
                                                on:change=move |_| toggle(t.clone()) data-column=name.clone() />
                                            " " {label.clone()}
                                        </label>
                                        {shown.then(|| view! {
                                            <span class="move">
                                                <button type="button" class="link" aria-label=format!("Move {label} left") disabled={i == 0}
                                                    on:click=move |_| shift(u.clone(), true)>"↑"</button>
                                                <button type="button" class="link" aria-label=format!("Move {label} right") disabled={i + 1 >= n_shown}
                                                    on:click=move |_| shift(d.clone(), false)>"↓"</button>
                                            </span>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }
                })}
                </Transition>
            </div>
        </details>
    }
}
