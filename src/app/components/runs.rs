//! A row of a runs table.

use leptos::prelude::*;

use super::badges::state_badge;
use super::when;
use crate::model::{Execution, ExecutionMode, LiveSnapshot};

/// Share of the jobs that are done, 0–100.
pub fn percent_done(e: &Execution) -> f64 {
    if e.total > 0 {
        (e.completed + e.errors + e.cancelled) as f64 * 100.0 / e.total as f64
    } else {
        0.0
    }
}

/// A row of a runs table; an active run's progress bar and counts follow
/// the live stream, so lists stay current without reloading.
#[component]
pub fn RunRow(execution: Execution, #[prop(optional)] show_batch: bool) -> impl IntoView {
    let id = execution.id;
    let href = format!("/o/{}/executions/{}", execution.org_slug, id);
    let batch_href = format!("/o/{}/batches/{}", execution.org_slug, execution.batch_id);
    let batch_name = execution.batch_name.clone();
    // Told apart by kind and version (the date has its own column).
    let label = format!(
        "{} v{}",
        match (execution.rerun_of.is_some(), execution.mode) {
            (true, _) => "Rerun",
            (false, ExecutionMode::Test) => "Test",
            (false, ExecutionMode::Production) => "Production",
        },
        execution.instruction_version
    );
    let created = when(execution.created_at);
    let active = execution.is_active();
    let live = RwSignal::new(execution);
    Effect::new(move |_| {
        if !active {
            return;
        }
        let stream = crate::app::live::follow(
            &format!("/api/v1/executions/{id}/events"),
            move |s: LiveSnapshot| {
                live.set(Execution {
                    role: None,
                    ..s.execution
                })
            },
            |_| {},
        );
        let stream = send_wrapper::SendWrapper::new(stream);
        on_cleanup(move || drop(stream));
    });
    let pct = move || live.with(percent_done);
    view! {
        <tr>
            <td><a href=href>{label}</a></td>
            {show_batch.then(|| view! { <td class="clip"><a href=batch_href>{batch_name}</a></td> })}
            <td><span class=move || live.with(|e| state_badge(e.state).0)>{move || live.with(|e| e.state.to_string())}</span></td>
            <td class="num">
                <div class="mini-progress" role="progressbar" aria-label="Progress" aria-valuemin="0" aria-valuemax="100"
                    aria-valuenow=move || format!("{:.0}", pct().floor())>
                    <div style=move || format!("width: {:.1}%", pct())></div>
                </div>
                <span class="small" data-testid="run-done">{move || live.with(|e| format!("{} / {}", e.completed + e.errors + e.cancelled, e.total))}</span>
            </td>
            <td class="num hide-narrow">{move || live.with(|e| e.errors)}</td>
            <td class="small hide-narrow">{created}</td>
        </tr>
    }
}
