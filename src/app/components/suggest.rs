//! "Suggest better instructions" on a run page: the project's model reads
//! the run's failure patterns and failing examples and proposes new
//! instructions; the person reads the reasons and the diff, edits the text
//! and saves it as a new version (nothing is saved before that).

use leptos::prelude::*;
use uuid::Uuid;

use crate::api::projects::SaveInstructions;
use crate::api::results::SuggestInstructions;
use crate::app::components::{action_error, FieldError, FormError};

#[component]
pub fn SuggestCard(
    /// The run the suggestion learns from.
    id: Uuid,
    project_id: Uuid,
    org_slug: String,
    /// "Test run v2, 2026-12-07 14:03": the saved version's note names it.
    run_label: String,
) -> impl IntoView {
    let suggest = ServerAction::<SuggestInstructions>::new();
    let save = ServerAction::<SaveInstructions>::new();
    let suggest_error = action_error(suggest);
    let save_error = action_error(save);
    let settings = format!("/o/{org_slug}/projects/{project_id}/settings");
    let history = format!("/o/{org_slug}/projects/{project_id}/history");
    let note = format!("Suggested from {run_label}");
    let experiment = Action::new(move |body: &String| {
        let body = body.clone();
        async move { crate::api::experiments::create_experiment(project_id, body).await }
    });
    let navigate = leptos_router::hooks::use_navigate();
    let slug = org_slug.clone();
    Effect::new(move |_| {
        if let Some(Ok(x)) = experiment.value().get() {
            navigate(
                &format!("/o/{slug}/experiments/{}", x.id),
                Default::default(),
            );
        }
    });
    let proposal = move || {
        suggest.value().get().and_then(|r| r.ok()).map(|s| {
            let history = history.clone();
            let s_batch = s.batch_id;
            let note = note.clone();
            let reasons = s
                .reasons
                .iter()
                .map(|r| view! { <li>{r.clone()}</li> })
                .collect_view();
            let (production, kept) = (s.production_version, s.run_kept_pages);
            let saved = move || {
                save.value().get().and_then(|r| r.ok()).map(|v| {
                    let saved_version = v.version;
                    // One step to an experiment: production against the
                    // saved version on this run's failing rows (from its
                    // kept pages when it has them).
                    let body = serde_json::json!({
                        "name": format!("v{production} vs suggested v{saved_version}"),
                        "batch": s_batch,
                        "rows": {"execution_id": id, "evaluation": "failing"},
                        "variants": [{"version": production}, {"version": saved_version}],
                        "from_execution": kept.then_some(id),
                    })
                    .to_string();
                    view! {
                        <p class="banner ok" role="status">{format!("Saved as version {saved_version}.")} " " <a href=history.clone()>"See it in the history"</a></p>
                        {(saved_version != production).then(|| view! {
                            <button type="button" class="button primary" data-testid="experiment-from-suggestion"
                                disabled=move || experiment.pending().get()
                                on:click=move |_| { experiment.dispatch(body.clone()); }>
                                {format!("Start an experiment: production v{production} against v{saved_version} on this run's failing rows")}
                            </button>
                        })}
                        {move || experiment.value().get().and_then(|r| r.err()).map(|e| view! { <crate::app::components::ErrorBox error=e /> })}
                    }
                })
            };
            view! {
                <p class="muted small" data-testid="suggestion-model">{format!(
                    "{} read {} · {} input and {} output tokens · cost {}",
                    s.model,
                    crate::app::components::results::plural(s.examples, "failing example"),
                    crate::model::thousands(s.input_tokens),
                    crate::model::thousands(s.output_tokens),
                    crate::model::format_price(s.cost_micros)
                )}</p>
                <h3>"Why"</h3>
                <ul data-testid="suggestion-reasons">{reasons}</ul>
                <h3>"Changes to version " {s.based_on_version}</h3>
                <crate::app::components::diff::DiffView diff=s.diff.clone() />
                <ActionForm action=save>
                    <input type="hidden" name="id" value=project_id.to_string() />
                    <FormError error=save_error />
                    <div class="field">
                        <label for="suggested-text">"Instructions (edit before saving)"</label>
                        <textarea id="suggested-text" name="instructions" rows="10" aria-describedby="instructions-error">{s.instructions.clone()}</textarea>
                        <FieldError error=save_error field="instructions" />
                    </div>
                    <div class="field">
                        <label for="suggested-note">"Note"</label>
                        <input id="suggested-note" name="note" maxlength="500" value=note />
                    </div>
                    <label class="check"><input type="checkbox" name="production" value="on" />" Make it production"</label>
                    <button type="submit" class="button primary" disabled=move || save.pending().get()>"Save as a new version"</button>
                </ActionForm>
                {saved}
            }
        })
    };
    view! {
        <section class="card" id="suggest">
            <h2>"Suggest better instructions"</h2>
            <p class="hint">"The project's model reads this run's failure patterns and up to 20 failing examples (expected against extracted, with a bit of each kept page) and proposes new instructions. Nothing changes until you save them as a new version; the request is paid for like any model call."</p>
            <ActionForm action=suggest>
                <input type="hidden" name="id" value=id.to_string() />
                <button type="submit" class="button" disabled=move || suggest.pending().get()>
                    {move || if suggest.pending().get() { "Asking the model…" } else { "Suggest better instructions" }}
                </button>
            </ActionForm>
            {move || suggest_error.get().map(|e| view! {
                <div class="alert alert-error" role="alert">{e.to_string()}
                    {matches!(e, crate::error::AppError::Conflict(_)).then(|| view! { " " <a href=settings.clone()>"Agent settings"</a> })}
                </div>
            })}
            {proposal}
        </section>
    }
}
