//! One expected value in the grid, edited in place.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api::projects::{get_job, save_expected_value};
use crate::error::AppError;
use crate::model::{ExpectedValueSaved, JobSummary};

use super::text;

/// Moves the keyboard focus to the editable cell after `from` (`step` 1),
/// before it (−1), or back onto `from`'s own cell (0), in document order.
///
/// Runs on the next animation frame, when the cell may still be showing
/// its editor: the neighbours are found by their position relative to the
/// cell itself, not to its button, and focusing the cell's own button
/// waits (a few frames at most) until it is back.
pub(super) fn focus_cell(from: Option<web_sys::HtmlElement>, step: i32) {
    let Some(td) = from else { return };
    // A neighbour is there now: move at once, so the focus never rests on
    // the page while the editor goes. The cell's own button comes back
    // with the next render.
    if step != 0 && focus_from(&td, step) {
        return;
    }
    focus_on_frame(td, step, 10);
}

fn focus_on_frame(td: web_sys::HtmlElement, step: i32, frames_left: u32) {
    request_animation_frame(move || {
        if !focus_from(&td, step) && frames_left > 0 && td.is_connected() {
            // The cell's own button is not back yet: look again next frame.
            focus_on_frame(td, step, frames_left - 1);
        }
    });
}

/// Focuses the editable cell `step` away from `td` (see [`focus_cell`]);
/// false when there is none yet.
fn focus_from(td: &web_sys::HtmlElement, step: i32) -> bool {
    use leptos::wasm_bindgen::JsCast;
    const FOLLOWING: u16 = 4; // Node.DOCUMENT_POSITION_FOLLOWING
    const CONTAINED: u16 = 16; // Node.DOCUMENT_POSITION_CONTAINED_BY
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return false;
    };
    let Ok(all) = doc.query_selector_all("[data-gt-cell]") else {
        return false;
    };
    let (mut own, mut before, mut after) = (None, None, None);
    for i in 0..all.length() {
        let Some(node) = all.item(i) else { continue };
        let position = td.compare_document_position(&node);
        if position & CONTAINED != 0 {
            own = Some(node);
        } else if position & FOLLOWING != 0 {
            if after.is_none() {
                after = Some(node);
            }
        } else {
            before = Some(node);
        }
    }
    let target = match step {
        s if s > 0 => after.or(own),
        s if s < 0 => before.or(own),
        _ => own,
    };
    match target.and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok()) {
        Some(el) => el.focus().is_ok(),
        None => false,
    }
}

/// One expected value in the grid. A button (Enter or click edits); in
/// the editor Enter saves, Escape cancels, Tab saves and moves to the next
/// cell (Shift+Tab to the previous one).
#[component]
pub(super) fn ExpectedCell(
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
    let save_accept = save.clone();
    // Accept offers itself where the field failed and something was
    // extracted: one click makes the extracted value the expected one.
    let can_accept = move || {
        editable
            && verdict.get() == Some(false)
            && got
                .get()
                .is_some_and(|g| current.get().as_deref() != Some(g.as_str()))
    };
    let accept_label = {
        let field = field.clone();
        move || {
            job.with(|j| {
                format!(
                    "Accept the extracted {field} of row {} as expected: {}",
                    j.row_index,
                    text(j.extracted.get(&field)).unwrap_or_default()
                )
            })
        }
    };
    let accept_testid = format!("accept-{field}");
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
            <div class="got" title="Extracted">
                {move || got.get().unwrap_or_else(|| "—".into())}
                <Show when=can_accept>
                    {
                        let save = save_accept.clone();
                        let (label, testid) = (accept_label.clone(), accept_testid.clone());
                        view! {
                            <button type="button" class="link accept" aria-label=label title="Make this the expected value"
                                data-testid=testid disabled=move || saving.get()
                                on:click=move |_| {
                                    if let Some(g) = got.get_untracked() { save(g, None); }
                                }>"✓ accept"</button>
                        }
                    }
                </Show>
            </div>
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
