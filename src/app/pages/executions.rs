//! An execution's page: state, progress, counts, cost, and the controls
//! (pause, resume, stop, concurrency). It re-reads the execution every
//! second while it is active; server-sent live updates replace the polling
//! in the monitoring issue.

use leptos::prelude::*;
use leptos_meta::Title;

use super::projects::use_id;
use crate::api::projects::{
    get_execution, ControlExecution, RerunExecution, SetExecutionConcurrency,
};
use crate::app::components::{action_error, when, ErrorBox, FieldError, FormError, Loading};
use crate::error::AppError;
use crate::model::{format_price, Execution};

/// "running" → a badge class and a label.
pub fn state_badge(state: &str) -> (&'static str, String) {
    let class = match state {
        "running" => "badge run",
        "completed" => "badge ok",
        "failed" | "cancelled" => "badge bad",
        "paused" | "stopping" => "badge warn",
        _ => "badge",
    };
    (class, state.to_string())
}

#[component]
pub fn ExecutionPage() -> impl IntoView {
    let id = use_id();
    let control = ServerAction::<ControlExecution>::new();
    let concurrency = ServerAction::<SetExecutionConcurrency>::new();
    let rerun = ServerAction::<RerunExecution>::new();
    let rerun_error = action_error(rerun);
    let control_error = action_error(control);
    let concurrency_error = action_error(concurrency);
    let tick = RwSignal::new(0u32);
    let data = Resource::new(
        move || {
            (
                id.get(),
                tick.get(),
                control.version().get(),
                concurrency.version().get(),
            )
        },
        |(id, ..)| async move {
            match id {
                Some(id) => get_execution(id).await,
                None => Err(AppError::NotFound("Execution".into())),
            }
        },
    );
    // Poll while the execution is active (and the page is live).
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                let active = data
                    .get_untracked()
                    .and_then(|r| r.ok())
                    .is_some_and(|e| e.is_active());
                if active {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(1),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    });
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(e) => view! { <ExecutionView e control concurrency rerun control_error concurrency_error rerun_error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ExecutionView(
    e: Execution,
    control: ServerAction<ControlExecution>,
    concurrency: ServerAction<SetExecutionConcurrency>,
    rerun: ServerAction<RerunExecution>,
    control_error: Signal<Option<AppError>>,
    concurrency_error: Signal<Option<AppError>>,
    rerun_error: Signal<Option<AppError>>,
) -> impl IntoView {
    let done = e.completed + e.errors + e.cancelled;
    let pct = if e.total > 0 {
        done as f64 * 100.0 / e.total as f64
    } else {
        0.0
    };
    let (badge, label) = state_badge(&e.state);
    let batch_href = format!("/o/{}/batches/{}", e.org_slug, e.batch_id);
    let project_href = format!("/o/{}/projects/{}", e.org_slug, e.project_id);
    let id = e.id.to_string();
    let can = e.can_control() && e.is_active();
    let (pause_id, resume_id, stop_id, conc_id) = (id.clone(), id.clone(), id.clone(), id.clone());
    let running = e.state == "running";
    let can_rerun = e.can_control() && !e.is_active() && (e.errors > 0 || e.cancelled > 0);
    let (errors, unfinished) = (e.errors, e.errors + e.cancelled);
    let (rerun_failed_id, rerun_unfinished_id) = (id.clone(), id.clone());
    let rerun_of = e.rerun_of.map(|r| {
        (
            format!("/o/{}/executions/{r}", e.org_slug),
            r.to_string()[..8].to_string(),
        )
    });
    let paused = e.state == "paused";
    let title = format!("{:.0}% · {}", pct, e.batch_name);
    let elapsed = e.started_at.map(|s| {
        let end = e.finished_at.unwrap_or_else(chrono::Utc::now);
        let secs = (end - s).num_seconds().max(0);
        format!("{}m {:02}s", secs / 60, secs % 60)
    });
    view! {
        <Title text=title />
        <p class="crumbs"><a href=format!("/o/{}/projects", e.org_slug)>"Projects"</a> " / "
            <a href=project_href>{e.project_name.clone()}</a> " / " <a href=batch_href>{e.batch_name.clone()}</a> " /"</p>
        <div class="page-head">
            <h1>{if e.mode == "test" { "Test run" } else { "Production run" }}</h1>
            <span class=badge data-testid="execution-state">{label}</span>
        </div>
        {rerun_of.map(|(href, short)| view! {
            <p class="muted small">"Reruns jobs of execution " <a href=href>{short}</a></p>
        })}
        <section class="card">
            <div class="progress" role="progressbar" aria-label="Progress" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=format!("{pct:.0}")>
                <div class="progress-bar" style=format!("width: {pct:.1}%")></div>
            </div>
            <p class="small">{done} " of " {e.total} " jobs done (" {format!("{pct:.0}%")} ")"
                {elapsed.map(|t| format!(" · {t}"))}</p>
            <div class="counts">
                <div><span class="stat" data-testid="count-queued">{e.queued}</span><span class="muted">"queued"</span></div>
                <div><span class="stat" data-testid="count-running">{e.running}</span><span class="muted">"running"</span></div>
                <div><span class="stat" data-testid="count-completed">{e.completed}</span><span class="muted">"completed"</span></div>
                <div><span class="stat" data-testid="count-errors">{e.errors}</span><span class="muted">"errors"</span></div>
                <div><span class="stat">{e.cancelled}</span><span class="muted">"cancelled"</span></div>
            </div>
            <p class="muted small">
                "Instructions v" {e.instruction_version} " · " {e.agent.clone()} " agent · concurrency " {e.concurrency}
                " · up to " {e.max_retries} " retries · estimated cost " {format_price(e.estimated_cost_micros)}
                " · cost so far " {format_price(e.cost_micros)} " · started " {when(e.created_at)}
            </p>
        </section>
        {can.then(|| view! {
            <section class="card">
                <h2>"Controls"</h2>
                <FormError error=control_error />
                <div class="controls">
                    {running.then(|| view! {
                        <ActionForm action=control attr:class="inline">
                            <input type="hidden" name="id" value=pause_id />
                            <input type="hidden" name="action" value="pause" />
                            <button type="submit" class="button">"Pause"</button>
                        </ActionForm>
                    })}
                    {paused.then(|| view! {
                        <ActionForm action=control attr:class="inline">
                            <input type="hidden" name="id" value=resume_id />
                            <input type="hidden" name="action" value="resume" />
                            <button type="submit" class="button primary">"Resume"</button>
                        </ActionForm>
                    })}
                    <details class="confirm">
                        <summary class="button danger">"Stop…"</summary>
                        <ActionForm action=control>
                            <input type="hidden" name="id" value=stop_id />
                            <input type="hidden" name="action" value="stop" />
                            <p>"Stop this run? Queued jobs are cancelled and running ones stop; results so far are kept."</p>
                            <button type="submit" class="button danger">"Stop the run"</button>
                        </ActionForm>
                    </details>
                </div>
                <ActionForm action=concurrency attr:class="inline-form">
                    <input type="hidden" name="id" value=conc_id />
                    <div class="field">
                        <label for="concurrency">"Concurrency"</label>
                        <input id="concurrency" name="concurrency" type="number" min="1" max="50" value=e.concurrency.to_string()
                            aria-describedby="concurrency-error" />
                    </div>
                    <button type="submit" class="button">"Apply"</button>
                </ActionForm>
                <FieldError error=concurrency_error field="concurrency" />
                <p class="hint">"Pausing lets running jobs finish and starts no new ones. Lowering concurrency doesn't interrupt running jobs."</p>
            </section>
        })}
        {can_rerun.then(|| view! {
            <section class="card">
                <h2>"Run again"</h2>
                <FormError error=rerun_error />
                <p class="hint">"A rerun is a new execution over the same rows, with this run's instruction version and the project's current fields and agent settings."</p>
                <div class="controls">
                    {(errors > 0).then(|| view! {
                        <ActionForm action=rerun attr:class="inline">
                            <input type="hidden" name="id" value=rerun_failed_id />
                            <input type="hidden" name="jobs" value="failed" />
                            <button type="submit" class="button primary" data-testid="rerun-failed">
                                {format!("Rerun {errors} failed job{}", if errors == 1 { "" } else { "s" })}
                            </button>
                        </ActionForm>
                    })}
                    {(unfinished > errors).then(|| view! {
                        <ActionForm action=rerun attr:class="inline">
                            <input type="hidden" name="id" value=rerun_unfinished_id />
                            <input type="hidden" name="jobs" value="unfinished" />
                            <button type="submit" class="button">
                                {format!("Rerun {unfinished} failed or cancelled job{}", if unfinished == 1 { "" } else { "s" })}
                            </button>
                        </ActionForm>
                    })}
                </div>
            </section>
        })}
    }
}
