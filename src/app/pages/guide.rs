//! The first-run guide's card on an organization's overview: seven steps
//! through the whole loop on the demo site, each ticked by the real event
//! (see `service::guide`), with a link to where it happens and a sentence
//! of help. Put away with "Hide the guide"; the account menu's
//! "Getting-started guide" brings it back.

use leptos::prelude::*;

use crate::api::guide::SetGuideDismissed;
use crate::app::hooks::use_query;
use crate::model::Guide;

/// `guide` is read with the overview's own data (one resource for the
/// page, so nothing is loaded twice while rendering); hiding it answers
/// the new state, which the card shows from then on.
#[component]
pub fn GuideCard(slug: String, guide: Guide) -> impl IntoView {
    let asked = use_query("guide");
    let toggle = ServerAction::<SetGuideDismissed>::new();
    let current = move || {
        toggle
            .value()
            .get()
            .and_then(Result::ok)
            .unwrap_or_else(|| guide.clone())
    };
    move || {
        let slug = slug.clone();
        let g = current();
        if g.dismissed && asked.get().is_none() {
            return None;
        }
        let (done, total) = (g.done(), g.steps.len());
        let complete = g.complete();
        let steps = g
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let class = if s.done { "guide-step done" } else { "guide-step" };
                let mark = if s.done { "✓".to_string() } else { (i + 1).to_string() };
                let state = if s.done { " (done)" } else { " (to do)" };
                view! {
                    <li class=class data-testid=format!("guide-{}", s.key) data-done=s.done.to_string()>
                        <span class="mark" aria-hidden="true">{mark}</span>
                        <div>
                            <a href=s.href>{s.title}</a>
                            <span class="sr-only">{state}</span>
                            <p class="hint">{s.help}</p>
                        </div>
                    </li>
                }
            })
            .collect_view();
        Some(view! {
            <section class="card guide" data-testid="guide" aria-labelledby="guide-title">
                <div class="guide-head">
                    <h2 id="guide-title">{if complete { "You have been through the whole loop" } else { "Getting started" }}</h2>
                    <span class="muted" data-testid="guide-count">{format!("{done} of {total} done")}</span>
                </div>
                <progress max=total.to_string() value=done.to_string() aria-label="Steps done"></progress>
                <ol class="guide-steps">{steps}</ol>
                <ActionForm action=toggle>
                    <input type="hidden" name="org" value=slug />
                    <input type="hidden" name="dismissed" value="true" />
                    <button type="submit" class="linklike" data-testid="hide-guide">
                        "Hide the guide (the account menu brings it back)"
                    </button>
                </ActionForm>
            </section>
        })
    }
}
