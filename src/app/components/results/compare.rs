//! Two runs of a batch compared: choosing the other run.

use leptos::prelude::*;
use uuid::Uuid;

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
                                        <option value=e.id.to_string()>{format!("{} · {} jobs · {}", e.label(), crate::model::thousands(e.total), e.accuracy.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "not judged".into()))}</option>
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
