//! An execution's page, live: the first paint is server-rendered from a
//! snapshot; then an EventSource (`app::live`) feeds every new snapshot
//! into a signal the page renders from — progress, counts, rate, ETA,
//! elapsed time, the running jobs with their agent's current step, and the
//! event feed. The controls (pause, resume, stop, concurrency, reruns) act
//! for everyone watching: their effect reaches every viewer through the
//! stream. A banner says when the connection drops and the browser is
//! reconnecting.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::projects::{
    get_execution_live, get_execution_metrics, ControlExecution, RerunExecution,
    SetExecutionConcurrency,
};
use crate::app::components::badges::{state_badge, verdict_badge};
use crate::app::components::runs::percent_done;
use crate::app::components::{action_error, when, ErrorBox, FieldError, FormError, Loading};
use crate::app::hooks::use_id;
use crate::error::AppError;
use crate::model::{format_price, Execution, ExecutionMetrics, ExecutionState, LiveSnapshot};

fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs >= 3600 {
        format!("{}h {:02}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

#[component]
pub fn ExecutionPage() -> impl IntoView {
    let id = use_id();
    let initial = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_execution_live(id).await,
                None => Err(AppError::NotFound("Execution".into())),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                let loaded = initial.await;
                crate::app::hooks::build_once().await;
                match loaded {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(snapshot) => view! { <LiveExecution snapshot /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn LiveExecution(snapshot: LiveSnapshot) -> impl IntoView {
    let role = snapshot.execution.role;
    let id = snapshot.execution.id;
    let first = snapshot.execution.clone();
    let live = RwSignal::new(snapshot);
    let connected = RwSignal::new(true);
    // Set when the connection came back after a drop; cleared after a while.
    let back = RwSignal::new(false);
    let now = RwSignal::new(chrono::Utc::now());
    // Bumped when expected values change, so the cards judged from them
    // read again.
    let changed = RwSignal::new(0u32);
    // Set when one expected value is saved from the grid: its answer has
    // the run's new counts, metrics and failure patterns.
    let edited = RwSignal::new(None::<crate::model::ExpectedValueSaved>);
    // Whether the run is active, and its progress in twentieths: the cards
    // read from the database read again when it moves on.
    let progress = Memo::new(move |_| {
        live.with(|s| {
            let e = &s.execution;
            let done = e.completed + e.errors + e.cancelled;
            (e.is_active(), done * 20 / e.total.max(1))
        })
    });

    let control = ServerAction::<ControlExecution>::new();
    let concurrency = ServerAction::<SetExecutionConcurrency>::new();
    let rerun = ServerAction::<RerunExecution>::new();
    let (control_error, concurrency_error, rerun_error) = (
        action_error(control),
        action_error(concurrency),
        action_error(rerun),
    );
    // An action answers with the execution: show it at once; the stream
    // brings the rest (and tells the other viewers).
    let apply = move |e: Execution| {
        live.update(|s| {
            if s.execution.id == e.id {
                s.execution = Execution { role, ..e };
            }
        })
    };
    Effect::new(move |_| {
        if let Some(Ok(e)) = control.value().get() {
            apply(e);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(e)) = concurrency.value().get() {
            apply(e);
        }
    });
    // A saved value brings the new counts; a new read (the run moving on,
    // a bulk change) replaces what it brought.
    Effect::new(move |_| {
        if let Some(s) = edited.get() {
            apply(s.execution);
        }
    });
    Effect::new(move |_| {
        progress.track();
        changed.track();
        edited.set(None);
    });
    // Bulk changes of expected values change the counts; a finished run
    // has no stream to bring them, so read the execution again.
    Effect::new(move |prev: Option<u32>| {
        let now = changed.get();
        if prev.is_some_and(|p| p != now) {
            leptos::task::spawn_local(async move {
                if let Ok(e) = crate::api::projects::get_execution(id).await {
                    apply(e);
                }
            });
        }
        now
    });
    // Browser only: follow the stream while the run is active, and tick a
    // clock for the elapsed time.
    Effect::new(move |_| {
        if live.with_untracked(|s| s.last) {
            return;
        }
        let stream = crate::app::live::follow(
            &format!("/api/v1/executions/{id}/events"),
            move |mut s: LiveSnapshot| {
                s.execution.role = role;
                live.set(s);
            },
            move |up| {
                let was = connected.get_untracked();
                connected.set(up);
                if up && !was {
                    back.set(true);
                    set_timeout(move || back.set(false), std::time::Duration::from_secs(5));
                }
            },
        );
        let stream = send_wrapper::SendWrapper::new(stream);
        on_cleanup(move || drop(stream));
    });
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || now.set(chrono::Utc::now()),
            std::time::Duration::from_secs(1),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    });

    let state = Memo::new(move |_| live.with(|s| s.execution.state));
    let active = Memo::new(move |_| live.with(|s| s.execution.is_active()));
    let can = first.can_control();
    let pct = move || live.with(|s| percent_done(&s.execution));
    // The document title outlives this view during a navigation (leptos_meta
    // keeps it until the next page sets one): read without panicking.
    let title = move || {
        live.try_with(|s| {
            let e = &s.execution;
            format!(
                "{} · {}",
                crate::model::percent_label(e.completed + e.errors + e.cancelled, e.total),
                e.batch_name
            )
        })
        .unwrap_or_default()
    };
    let count = move |f: fn(&Execution) -> i64| {
        move || live.with(|s| crate::model::thousands(f(&s.execution)))
    };
    let tab_counts = Memo::new(move |_| {
        live.with(|s| {
            crate::app::components::results::TABS
                .iter()
                .map(|(tab, _)| crate::app::components::results::tab_count(tab, &s.execution))
                .collect::<Vec<_>>()
        })
    });
    let elapsed = move || {
        live.with(|s| {
            s.execution.started_at.map(|start| {
                let end = s.execution.finished_at.unwrap_or_else(|| now.get());
                duration((end - start).num_seconds())
            })
        })
    };
    // The server gives a rate (and so a time left) only once it has
    // watched long enough; until then the page says it is measuring.
    let rate = move || {
        live.with(|s| {
            if s.per_minute > 0.0 {
                format!("{:.0} jobs/min", s.per_minute)
            } else if s.execution.is_active() {
                "measuring…".to_string()
            } else {
                "—".to_string()
            }
        })
    };
    let eta = move || {
        live.with(|s| {
            let e = &s.execution;
            let only_waiting =
                e.running == 0 && s.waiting_retry.as_ref().is_some_and(|w| w.jobs >= e.queued);
            match (e.is_active(), s.eta_secs) {
                (true, _) if only_waiting => "waiting to retry".into(),
                (true, Some(secs)) => duration(secs),
                (true, None) => "estimating…".into(),
                (false, _) => "done".into(),
            }
        })
    };
    // Jobs waiting out a back-off, said with when and why.
    let waiting = move || {
        live.with(|s| {
            s.waiting_retry
                .as_ref()
                .filter(|_| s.execution.is_active())
                .map(|w| {
                    let secs = (w.until - now.get()).num_seconds().max(0);
                    let jobs = if w.jobs == 1 {
                        "1 job is".to_string()
                    } else {
                        format!("{} jobs are", crate::model::thousands(w.jobs))
                    };
                    let reason = w
                        .reason
                        .as_deref()
                        .map(|r| format!(" after: {}", r.chars().take(160).collect::<String>()))
                        .unwrap_or_default();
                    format!(
                        "{jobs} waiting to retry, the last within {}{reason}",
                        duration(secs)
                    )
                })
        })
    };
    let badge = move || state_badge(state.get());
    let (org_slug, batch_id, project_id) =
        (first.org_slug.clone(), first.batch_id, first.project_id);
    let batch_href = format!("/o/{org_slug}/batches/{batch_id}");
    let project_href = format!("/o/{org_slug}/projects/{project_id}");
    // A rerun names the run it reruns, as runs are named everywhere.
    let rerun_of = first.rerun_of.map(|r| {
        let href = format!("/o/{org_slug}/executions/{r}");
        let original = Resource::new(move || r, crate::api::projects::get_execution);
        (href, original)
    });
    // Runs are told apart by mode, version and date.
    let heading = first.label();
    let settings = move || {
        live.with(|s| {
            let e = &s.execution;
            let extractor = match e.extractor {
                Some(crate::model::Extractor::Llm) => format!(
                    " · llm extractor ({} input, {} output tokens)",
                    crate::model::thousands(e.tokens.input),
                    crate::model::thousands(e.tokens.output)
                ),
                _ => String::new(),
            };
            let estimate = if e.cost_unknown {
                "unknown (no test run had measured the model's tokens)".to_string()
            } else {
                format_price(e.estimated_cost_micros)
            };
            format!(
                "Instructions v{} · {} agent{extractor} · concurrency {} · up to {} retries · estimated cost {} · cost so far {} · started {}",
                e.instruction_version,
                e.agent,
                e.concurrency,
                e.max_retries,
                estimate,
                format_price(e.cost_micros),
                when(e.created_at)
            )
        })
    };
    let first_concurrency = first.concurrency;
    // Browser runs show what the browser shows for each running job.
    let is_browser = first.agent == crate::model::AgentKind::Browser;
    let live_org = first.org_slug.clone();
    let leftovers = Memo::new(move |_| {
        live.with(|s| {
            (
                s.execution.errors,
                s.execution.errors + s.execution.cancelled,
            )
        })
    });

    view! {
        <Title text=title />
        <crate::app::components::crumbs::Crumbs items=vec![
            ("Projects".to_string(), format!("/o/{org_slug}/projects")),
            (first.project_name.clone(), project_href),
            (first.batch_name.clone(), batch_href),
        ] />
        <div class="page-head">
            <h1>{heading}</h1>
            <span class=move || badge().0 data-testid="execution-state">{move || badge().1}</span>
            <Show when=move || active.get()>
                <span class="live-dot" class:off=move || !connected.get() data-testid="live-status">
                    {move || if connected.get() { "Live" } else { "Reconnecting…" }}
                </span>
            </Show>
        </div>
        {first.experiment_id.map(|x| view! {
            <p class="muted small" data-testid="experiment-of">"A variant of "
                <a href=format!("/o/{org_slug}/experiments/{x}")>"an experiment"</a>
                ": its page compares this run with the others on the same rows."</p>
        })}
        {rerun_of.map(|(href, original)| view! {
            <p class="muted small" data-testid="rerun-of">"Rerun of "
                <Transition fallback=|| "an earlier run">
                    <a href=href.clone()>{move || original.get().map(|o| o.map(|e| e.label()).unwrap_or_else(|_| "an earlier run (deleted)".into()))}</a>
                </Transition>
            </p>
        })}
        <Show when=move || !connected.get() && active.get()>
            <p class="banner warn" role="status" data-testid="connection-lost">
                "The live connection dropped. Reconnecting… the numbers below may be behind."
            </p>
        </Show>
        <Show when=move || back.get() && connected.get()>
            <p class="banner ok" role="status" data-testid="connection-back">
                "Connected again: the numbers are current."
            </p>
        </Show>
        <section class="card">
            <div class="progress" role="progressbar" aria-label="Progress" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=move || format!("{:.0}", pct().floor())>
                <div class="progress-bar" style=move || format!("width: {:.1}%", pct())></div>
            </div>
            <p class="small" data-testid="progress-text">
                {move || live.with(|s| {
                    let e = &s.execution;
                    let done = e.completed + e.errors + e.cancelled;
                    format!("{} of {} jobs done ({})", crate::model::thousands(done), crate::model::thousands(e.total), crate::model::percent_label(done, e.total))
                })}
            </p>
            <div class="counts">
                {[
                    ("queued", "queued", "count-queued", "stat", (|e: &Execution| e.queued) as fn(&Execution) -> i64),
                    ("running", "running", "count-running", "stat", |e| e.running),
                    ("completed", "completed", "count-completed", "stat", |e| e.completed),
                    ("failed", "errors", "count-errors", "stat", |e| e.errors),
                    ("cancelled", "cancelled", "count-cancelled", "stat", |e| e.cancelled),
                    ("pass", "passed", "count-passed", "stat ok-text", |e| e.passed),
                    ("wrong", "with wrong fields", "count-failing", "stat bad-text", |e| e.failed),
                ].into_iter().map(|(tab, label, testid, class, f)| view! {
                    <a class="count-link" href=format!("?jobs={tab}#results") title=format!("Show the jobs {label} in the results")>
                        <span class=class data-testid=testid>{count(f)}</span><span class="muted">{label}</span>
                    </a>
                }).collect_view()}
            </div>
            <dl class="facts">
                <div><dt>"Elapsed"</dt><dd data-testid="elapsed">{elapsed}</dd></div>
                <div><dt>"Throughput"</dt><dd data-testid="rate">{rate}</dd></div>
                <div><dt>"Time left"</dt><dd data-testid="eta">{eta}</dd></div>
                <div><dt>"Accuracy"</dt><dd data-testid="accuracy">{move || live.with(|s| s.execution.accuracy.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "—".into()))}</dd></div>
            </dl>
            {move || waiting().map(|w| view! { <p class="banner neutral" role="status" data-testid="waiting-retry">{w}</p> })}
            <p class="muted small">{settings}</p>
        </section>

        <Show when=move || can && active.get()>
            <section class="card">
                <h2>"Controls"</h2>
                <FormError error=control_error />
                <div class="controls">
                    <Show when=move || state.get() == ExecutionState::Running>
                        <ActionForm action=control attr:class="inline">
                            <input type="hidden" name="id" value=id.to_string() />
                            <input type="hidden" name="action" value="pause" />
                            <button type="submit" class="button">"Pause"</button>
                        </ActionForm>
                    </Show>
                    <Show when=move || state.get() == ExecutionState::Paused>
                        <ActionForm action=control attr:class="inline">
                            <input type="hidden" name="id" value=id.to_string() />
                            <input type="hidden" name="action" value="resume" />
                            <button type="submit" class="button primary">"Resume"</button>
                        </ActionForm>
                    </Show>
                    <details class="confirm">
                        <summary class="button danger">"Stop…"</summary>
                        <ActionForm action=control>
                            <input type="hidden" name="id" value=id.to_string() />
                            <input type="hidden" name="action" value="stop" />
                            <p>"Stop this run? Queued jobs are cancelled and running ones stop; results so far are kept."</p>
                            <button type="submit" class="button danger">"Stop the run"</button>
                        </ActionForm>
                    </details>
                </div>
                <ActionForm action=concurrency attr:class="inline-form">
                    <input type="hidden" name="id" value=id.to_string() />
                    <div class="field">
                        <label for="concurrency">"Concurrency"</label>
                        <input id="concurrency" name="concurrency" type="number"
                            min=crate::model::Concurrency::MIN.to_string()
                            value=first_concurrency.to_string() aria-describedby="concurrency-error" />
                    </div>
                    <button type="submit" class="button">"Apply"</button>
                </ActionForm>
                <FieldError error=concurrency_error field="concurrency" />
                <p class="hint">"Everyone watching sees these changes within a second. Pausing lets running jobs finish and starts no new ones; lowering concurrency doesn't interrupt running jobs."</p>
            </section>
        </Show>

        <Show when=move || { can && !active.get() && leftovers.get().1 > 0 }>
            <section class="card" id="run-again">
                <h2>"Run again"</h2>
                <FormError error=rerun_error />
                <p class="hint">"A rerun is a new execution over the same rows, with this run's instruction version and the project's current fields and agent settings."</p>
                <div class="controls">
                    <Show when=move || { leftovers.get().0 > 0 }>
                        <ActionForm action=rerun attr:class="inline">
                            <input type="hidden" name="id" value=id.to_string() />
                            <input type="hidden" name="jobs" value="failed" />
                            <button type="submit" class="button primary" data-testid="rerun-failed">
                                {move || { let n = leftovers.get().0; format!("Rerun {n} failed job{}", if n == 1 { "" } else { "s" }) }}
                            </button>
                        </ActionForm>
                    </Show>
                    <Show when=move || { let (f, u) = leftovers.get(); u > f }>
                        <ActionForm action=rerun attr:class="inline">
                            <input type="hidden" name="id" value=id.to_string() />
                            <input type="hidden" name="jobs" value="unfinished" />
                            <button type="submit" class="button">
                                {move || { let n = leftovers.get().1; format!("Rerun {n} failed or cancelled job{}", if n == 1 { "" } else { "s" }) }}
                            </button>
                        </ActionForm>
                    </Show>
                </div>
            </section>
        </Show>

        <Show when=move || active.get() || live.with(|s| !s.running_jobs.is_empty())>
            <section class="card">
                <h2>"Running now"</h2>
                // What the browser shows for each running job, live; only
                // browser runs have pictures.
                {is_browser.then({
                    let org = live_org.clone();
                    move || {
                    view! {
                        <ul class="live-grid" data-testid="live-grid" aria-label="Pages the browser shows now">
                            <For each=move || live.with(|s| s.running_jobs.clone())
                                key=|j| (j.id, j.attempt)
                                children=move |j| {
                                    let job_id = j.id;
                                    let caption = move || live.with(|s| {
                                        s.running_jobs.iter().find(|x| x.id == job_id)
                                            .and_then(|x| x.step.clone())
                                            .unwrap_or_else(|| "starting".into())
                                    });
                                    view! {
                                        <li>
                                            <a href=format!("/o/{}/jobs/{}", org, job_id)>
                                                <crate::app::components::live_frame::LiveFrame job_id
                                                    label=format!("Row {} in the browser", j.row_index) />
                                            </a>
                                            <p class="small"><strong>{format!("Row {}", j.row_index)}</strong> " · " {caption}</p>
                                        </li>
                                    }
                                } />
                        </ul>
                    }
                }})}
                {move || {
                    let jobs = live.with(|s| s.running_jobs.clone());
                    if jobs.is_empty() {
                        return view! { <p class="empty">{move || if state.get() == ExecutionState::Paused { "Paused: no job is running.".to_string() } else if let Some(w) = waiting() { format!("No job is running at this moment: {w}.") } else { "No job is running at this moment.".to_string() }}</p> }.into_any();
                    }
                    let at = now.get();
                    view! {
                        <div class="table-wrap">
                            <table data-testid="running-jobs">
                                <thead><tr><th scope="col" class="num">"Row"</th><th scope="col">"Site"</th><th scope="col">"Step"</th>
                                    <th scope="col" class="num">"Elapsed"</th><th scope="col" class="num">"Attempt"</th></tr></thead>
                                <tbody>
                                    {jobs.into_iter().map(|j| view! {
                                        <tr>
                                            <td class="num">{j.row_index}</td>
                                            <td class="clip"><span title=j.url.clone()>{j.url.clone()}</span></td>
                                            <td>{j.step.clone().unwrap_or_else(|| "starting".into())}
                                                {j.percent.map(|p| format!(" ({p}%)"))}</td>
                                            <td class="num">{format!("{:.1} s", (at - j.started_at).num_milliseconds().max(0) as f64 / 1000.0)}</td>
                                            <td class="num">{j.attempt}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }}
            </section>
        </Show>

        <FieldAccuracyCard id progress changed edited />
        <crate::app::components::results::ResultsGrid id project_id=first.project_id batch_id=first.batch_id org_slug=first.org_slug.clone() role progress tab_counts changed edited />
        <crate::app::components::results::FailurePatternsCard id org_slug=first.org_slug.clone() changed edited progress />
        {first.role.is_none_or(|r| r >= crate::model::Role::Member).then(|| view! {
            <crate::app::components::suggest::SuggestCard id project_id=first.project_id org_slug=first.org_slug.clone() run_label=first.label() />
        })}
        {first.role.is_none_or(|r| r >= crate::model::Role::Member).then(|| view! {
            <crate::app::components::experiments::ExperimentForm project_id=first.project_id batch_id=first.batch_id
                org_slug=first.org_slug.clone() versions=vec![first.instruction_version]
                run=crate::app::components::experiments::FromRun { id, keeps_pages: first.keeps_pages, failing: first.failed + first.errors } />
        })}
        <crate::app::components::exports::ExportCard id />
        <section class="card">
            <h2>"Compare"</h2>
            <crate::app::components::results::CompareWith id batch_id=first.batch_id org_slug=first.org_slug.clone() />
        </section>
        <section class="card">
            <h2>"Events"</h2>
            {move || {
                let events = live.with(|s| s.events.clone());
                if events.is_empty() {
                    let text = if active.get() {
                        "Nothing to report yet: failures, retries and changes by people show up here."
                    } else {
                        "No failures, retries or changes by people during this run."
                    };
                    return view! { <p class="empty">{text}</p> }.into_any();
                }
                view! {
                    <ul class="feed" data-testid="event-feed" aria-live="polite">
                        {events.into_iter().map(|ev| {
                            let class = match ev.kind.as_str() {
                                "job_failed" => "bad",
                                "job_retrying" | "paused" | "stopped" => "warn",
                                _ => "",
                            };
                            view! {
                                <li class=class>
                                    <time class="muted small">{ev.at.format("%H:%M:%S").to_string()}</time>
                                    " " {ev.message}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

/// A count as shown: whole numbers without decimals (text similarity's
/// are sums of shares).
fn trim_count(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// Accuracy per output field, re-read as the run progresses (about twenty
/// times over a run, and once more when it ends) rather than on every
/// snapshot.
#[component]
fn FieldAccuracyCard(
    id: uuid::Uuid,
    progress: Memo<(bool, i64)>,
    changed: RwSignal<u32>,
    /// A saved expected value's new metrics, until the next read.
    edited: RwSignal<Option<crate::model::ExpectedValueSaved>>,
) -> impl IntoView {
    let metrics = Resource::new(
        move || (progress.get(), changed.get()),
        move |_| get_execution_metrics(id),
    );
    let table = move |m: ExecutionMetrics| {
        if m.fields.is_empty() {
            return view! { <p class="empty">"No field has been judged yet: jobs are judged against the batch's expected values as they finish."</p> }.into_any();
        }
        use crate::model::{interval_title, percent_with_interval, with_interval};
        let run = m.accuracy.map(|a| {
            (
                percent_with_interval(a, m.accuracy_interval),
                interval_title(m.accuracy_interval),
            )
        });
        view! {
            {run.map(|(text, title)| view! {
                <p data-testid="run-accuracy">"Run accuracy " <strong title=title>{text}</strong>
                    <span class="muted small">" (95% interval, bootstrap over the run's jobs)"</span></p>
            })}
            <div class="table-wrap">
                <table data-testid="field-accuracy">
                    <thead><tr><th scope="col">"Field"</th><th scope="col" class="num">"Accuracy"</th>
                        <th scope="col" class="num" title="Of the values extracted, the share that pass">"Precision"</th>
                        <th scope="col" class="num" title="Of the values expected, the share found">"Recall"</th>
                        <th scope="col" class="num">"F1"</th>
                        <th scope="col" class="num">"Passed"</th><th scope="col" class="num">"Judged"</th></tr></thead>
                    <tbody>
                        {m.fields.into_iter().map(|f| {
                            let pct = f.accuracy * 100.0;
                            let counts = format!("tp {} · fp {} · fn {}", trim_count(f.tp), trim_count(f.fp), trim_count(f.fn_));
                            view! {
                                <tr>
                                    <td><strong>{f.field}</strong></td>
                                    <td class="num" title=interval_title(f.accuracy_interval)>
                                        <div class="mini-progress" aria-hidden="true"><div style=format!("width: {pct:.1}%")></div></div>
                                        {percent_with_interval(f.accuracy, f.accuracy_interval)}
                                    </td>
                                    <td class="num" title=counts.clone()>{format!("{:.3}", f.precision)}</td>
                                    <td class="num" title=counts>{format!("{:.3}", f.recall)}</td>
                                    <td class="num" title=interval_title(f.f1_interval)>{with_interval(f.f1, f.f1_interval)}</td>
                                    <td class="num">{f.passed}</td>
                                    <td class="num">{f.compared}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            {(!m.errors_by_class.is_empty()).then(|| view! {
                <p class="small muted">"Failed jobs by cause: "
                    {m.errors_by_class.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(" · ")}</p>
            })}
        }.into_any()
    };
    view! {
        <section class="card">
            <h2>"Accuracy by field"</h2>
            <Transition fallback=|| view! { <Loading /> }>
                {move || {
                    let fresh = edited.with(|e| e.as_ref().map(|e| e.metrics.clone()));
                    Suspend::new(async move {
                        let m = match fresh {
                            Some(m) => Ok(m),
                            None => metrics.await,
                        };
                        match m {
                            Ok(m) => table(m),
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

/// One job: extracted against expected per field with the comparator's
/// explanation, what to try next, every attempt with its log, the raw
/// output.
#[component]
pub fn JobPage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let id = Signal::derive(move || params.read().get("job").and_then(|s| s.parse::<i64>().ok()));
    let edit = ServerAction::<crate::api::projects::EditGroundTruth>::new();
    let edit_error = action_error(edit);
    let data = Resource::new(
        move || (id.get(), edit.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => crate::api::projects::get_job(id).await,
                None => Err(AppError::NotFound("Job".into())),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(d) => {
                        let (class, label) = verdict_badge(d.job.verdict, d.job.state.as_str());
                        let run = format!("/o/{}/executions/{}", d.org_slug, d.job.execution_id);
                        let batch = format!("/o/{}/batches/{}", d.org_slug, d.batch_id);
                        let mut names: Vec<String> = d.job.extracted.keys().cloned().collect();
                        for k in d.expected.keys() {
                            if !names.contains(k) {
                                names.push(k.clone());
                            }
                        }
                        let rows = names.into_iter().map(|name| {
                            let got = d.job.extracted.get(&name).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                            // Several acceptable values show joined by " | ".
                            let want = d.expected.get(&name).and_then(crate::model::expected_text).unwrap_or_default();
                            let result = d.job.field_results.get(&name).cloned();
                            let (mark, row_class) = match result.as_ref().map(|r| r["pass"] == true) {
                                Some(true) => ("✓ pass", "ok"),
                                Some(false) => ("✗ fail", "bad"),
                                None => ("not judged", ""),
                            };
                            let why = result.and_then(|r| r["explanation"].as_str().map(str::to_string)).unwrap_or_default();
                            let (row, version) = (d.row_id.to_string(), d.gt_version.to_string());
                            let expected_cell = if d.can_edit_ground_truth {
                                let input_id = format!("gt-{name}");
                                let accept = !got.is_empty() && got != want;
                                let (row_a, version_a, name_a, got_a) = (row.clone(), version.clone(), name.clone(), got.clone());
                                let (label, input_test, accept_test) = (format!("Expected {name}"), format!("gt-input-{name}"), format!("accept-{name}"));
                                let (name_f, want_f) = (name.clone(), want.clone());
                                view! {
                                    <ActionForm action=edit attr:class="gt-edit">
                                        <input type="hidden" name="row" value=row />
                                        <input type="hidden" name="version" value=version />
                                        <input type="hidden" name="field" value=name_f />
                                        <label class="sr-only" for=input_id.clone()>{label}</label>
                                        <input id=input_id name="value" value=want_f data-testid=input_test />
                                        <button type="submit" class="button small">"Save"</button>
                                    </ActionForm>
                                    {accept.then(|| view! {
                                        <ActionForm action=edit attr:class="inline">
                                            <input type="hidden" name="row" value=row_a />
                                            <input type="hidden" name="version" value=version_a />
                                            <input type="hidden" name="field" value=name_a />
                                            <input type="hidden" name="value" value=got_a />
                                            <button type="submit" class="button small" data-testid=accept_test>"Accept extracted"</button>
                                        </ActionForm>
                                    })}
                                }.into_any()
                            } else {
                                view! { {if want.is_empty() { "—".to_string() } else { want.clone() }} }.into_any()
                            };
                            view! {
                                <tr class=row_class>
                                    <td><strong>{name.clone()}</strong></td>
                                    <td class="value">{if got.is_empty() { "—".to_string() } else { got.clone() }}</td>
                                    <td class="value">{expected_cell}</td>
                                    <td>{mark}</td>
                                    <td class="small">{why}</td>
                                </tr>
                            }
                        }).collect_view();
                        let attempts = d.attempts.iter().map(|a| {
                            // The log as a timeline: when (since the attempt began), how
                            // serious, what.
                            let log = a.log.as_array().cloned().unwrap_or_default();
                            let empty_log = log.is_empty();
                            let lines = log.into_iter().map(|l| {
                                let level = l["level"].as_str().unwrap_or("info").to_string();
                                let ms = l["ms"].as_u64().unwrap_or(0);
                                view! {
                                    <li class=format!("log-{level}")>
                                        <span class="at">{format!("{}.{:03} s", ms / 1000, ms % 1000)}</span>
                                        <span class="level">{level.clone()}</span>
                                        <span class="message">{l["message"].as_str().unwrap_or("").to_string()}</span>
                                    </li>
                                }
                            }).collect_view();
                            view! {
                                <details class="attempt" open=a.n == d.attempts.len() as i32>
                                    <summary>{format!("Attempt {} · {} · {}{}", a.n, a.outcome.clone().unwrap_or_else(|| "running".into()),
                                        a.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
                                        a.error_class.as_ref().map(|c| format!(" · {c}")).unwrap_or_default())}</summary>
                                    {a.error.clone().map(|e| view! { <p class="small bad-text">{e}</p> })}
                                    <p class="small muted">{format!("worker {} · started {}", a.worker, a.started_at.format("%H:%M:%S%.3f"))}</p>
                                    {a.model.clone().map(|model| view! {
                                        <p class="small" data-testid="attempt-model">
                                            {format!(
                                                "Answered by {} / {model} · {} input and {} output tokens · cost {}",
                                                a.provider.clone().unwrap_or_default(),
                                                a.input_tokens,
                                                a.output_tokens,
                                                format_price(a.cost_micros),
                                            )}
                                        </p>
                                    })}
                                    {a.screenshot_url.clone().map(|src| {
                                        let alt = format!("What the browser showed at the end of attempt {}", a.n);
                                        let full = src.clone();
                                        view! {
                                            <a class="screenshot" href=full target="_blank" rel="noopener" title="Open the screenshot full size">
                                                <img src=src alt=alt loading="lazy" width="320" height="200" data-testid="attempt-screenshot" />
                                            </a>
                                        }
                                    })}
                                    {a.page_url.clone().map(|href| view! {
                                        <p class="small"><a href=href target="_blank" rel="noopener" data-testid="attempt-page">"View the page as the agent saw it"</a>
                                            <span class="muted">" (kept copy; scripts off)"</span></p>
                                    })}
                                    {if empty_log {
                                        view! { <p class="small muted">"(no log lines)"</p> }.into_any()
                                    } else {
                                        view! { <ol class="timeline" aria-label=format!("Log of attempt {}", a.n) data-testid="attempt-log">{lines}</ol> }.into_any()
                                    }}
                                </details>
                            }
                        }).collect_view();
                        view! {
                            <Title text=format!("Row {} · {}", d.job.row_index, d.batch_name) />
                            <crate::app::components::crumbs::Crumbs items=vec![
                                ("Projects".to_string(), format!("/o/{}/projects", d.org_slug)),
                                (d.project_name.clone(), format!("/o/{}/projects/{}", d.org_slug, d.project_id)),
                                (d.batch_name.clone(), batch.clone()),
                                (d.run_label(), run.clone()),
                            ] />
                            <div class="page-head">
                                <h1>{format!("Row {}", d.job.row_index)}</h1>
                                <span class=class data-testid="job-verdict">{label}</span>
                                <nav class="job-steps" aria-label="Other jobs of this run">
                                    {match d.previous_job {
                                        Some(p) => view! { <a href=format!("/o/{}/jobs/{p}", d.org_slug) rel="prev" data-testid="previous-job">"← Previous job"</a> }.into_any(),
                                        None => view! { <span class="muted">"← Previous job"</span> }.into_any(),
                                    }}
                                    {match d.next_job {
                                        Some(n) => view! { <a href=format!("/o/{}/jobs/{n}", d.org_slug) rel="next" data-testid="next-job">"Next job →"</a> }.into_any(),
                                        None => view! { <span class="muted">"Next job →"</span> }.into_any(),
                                    }}
                                </nav>
                            </div>
                            <p class="url-line"><a href=d.job.url.clone() rel="noopener noreferrer" target="_blank">{d.job.url.clone()}</a></p>
                            {(!d.inputs.is_empty()).then(|| {
                                // The row's other columns (not expected values): what
                                // the agent and the llm extractor were given besides the URL.
                                let items = d.inputs.iter().map(|(k, v)| {
                                    let text = match v {
                                        serde_json::Value::String(s) => s.clone(),
                                        serde_json::Value::Null => String::new(),
                                        other => other.to_string(),
                                    };
                                    view! { <div><dt>{k.clone()}</dt><dd>{text}</dd></div> }
                                }).collect_view();
                                view! {
                                    <section class="row-inputs" aria-labelledby="row-inputs-title">
                                        <h2 id="row-inputs-title" class="small-heading">"Row inputs"</h2>
                                        <dl data-testid="row-inputs">{items}</dl>
                                    </section>
                                }
                            })}
                            {d.suggestion.clone().map(|s| {
                                // Advice that says to rerun comes with the way to do it.
                                let rerun = s.contains("rerun the failed jobs").then(|| view! {
                                    " " <a class="button small" href=format!("{run}#run-again") data-testid="suggested-rerun">"Rerun the failed jobs…"</a>
                                });
                                view! { <p class="banner warn" data-testid="suggestion">{s}{rerun}</p> }
                            })}
                            {(d.job.state == crate::model::JobState::Running && d.agent == crate::model::AgentKind::Browser).then(|| view! {
                                <section class="card">
                                    <h2>"Live"</h2>
                                    <p class="hint">"What the browser shows for this job now, twice a second. Reload the page for its result once it ends."</p>
                                    <crate::app::components::live_frame::LiveJobStatus execution_id=d.job.execution_id job_id=d.job.id />
                                    <crate::app::components::live_frame::LiveFrame job_id=d.job.id large=true
                                        label=format!("Row {} in the browser now", d.job.row_index) />
                                </section>
                            })}
                            <section class="card">
                                <h2>"Fields"</h2>
                                <FormError error=edit_error />
                                {d.can_edit_ground_truth.then(|| view! { <p class="hint">"Fix an expected value here (empty clears it): every run of this batch is judged again at once, and the change is kept in the row's history."</p> })}
                                <div class="table-wrap">
                                    <table data-testid="job-fields">
                                        <thead><tr><th scope="col">"Field"</th><th scope="col">"Extracted"</th><th scope="col">"Expected"</th>
                                            <th scope="col">"Result"</th><th scope="col">"Why"</th></tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                            </section>
                            <section class="card">
                                <h2>"Changes to expected values"</h2>
                                {if d.history.is_empty() {
                                    view! { <p class="empty">"No expected value of this row has been changed since the batch was uploaded."</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap">
                                            <table data-testid="row-history">
                                                <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Field"</th>
                                                    <th scope="col">"Before"</th><th scope="col">"After"</th></tr></thead>
                                                <tbody>
                                                    {d.history.iter().map(|h| view! {
                                                        <tr>
                                                            <td class="small">{when(h.changed_at)}</td>
                                                            <td>{h.changed_by.clone()}</td>
                                                            <td>{h.field.clone()}</td>
                                                            <td class="value">{h.before.clone().unwrap_or_else(|| "—".into())}</td>
                                                            <td class="value">{h.after.clone().unwrap_or_else(|| "—".into())}</td>
                                                        </tr>
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        </div>
                                    }.into_any()
                                }}
                            </section>
                            <section class="card">
                                <h2>"Attempts"</h2>
                                {attempts}
                            </section>
                            {d.raw_output.clone().map(|raw| view! {
                                <section class="card">
                                    <details><summary>"Raw agent output"</summary><pre class="log">{raw}</pre></details>
                                </section>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
