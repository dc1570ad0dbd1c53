//! The live view of a running browser job: the latest frame the worker
//! took, fetched twice a second, one at a time. Fetching is what tells the worker that
//! somebody watches (see `GET /api/v1/jobs/{id}/live-frame`); a page that
//! is closed stops asking, and the worker stops taking frames.

use leptos::prelude::*;

/// How often a viewer asks for a new frame (the worker takes at most two
/// a second).
const REFRESH: std::time::Duration = std::time::Duration::from_millis(500);

#[component]
pub fn LiveFrame(
    job_id: i64,
    /// What the frame shows, for screen readers.
    label: String,
    /// The job page's large view (else a thumbnail for the run page).
    #[prop(optional)]
    large: bool,
) -> impl IntoView {
    let tick = RwSignal::new(0u64);
    // No frame yet (204), or the job ended: say so instead of a broken image.
    let waiting = RwSignal::new(true);
    // How many refresh periods the frame asked for last has been loading
    // (None once it loaded or failed). The next frame is asked for only
    // then: changing `src` cancels a load in flight, so on a slow
    // connection or a busy server a fixed beat would never show a frame.
    // One that hangs is given up after STALLED periods.
    const STALLED: u32 = 20;
    let loading = StoredValue::new(None::<u32>);
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                let ask = match loading.get_value() {
                    None => true,
                    Some(n) if n + 1 >= STALLED => true,
                    Some(n) => {
                        loading.set_value(Some(n + 1));
                        false
                    }
                };
                if ask {
                    loading.set_value(Some(0));
                    tick.update(|t| *t += 1);
                }
            },
            REFRESH,
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    });
    let (width, height) = if large { (800, 500) } else { (240, 150) };
    view! {
        <figure class=if large { "live-frame large" } else { "live-frame" }>
            <img
                src=move || format!("/api/v1/jobs/{job_id}/live-frame?f={}", tick.get())
                alt=label
                width=width
                height=height
                data-testid="live-frame"
                style:visibility=move || if waiting.get() { "hidden" } else { "visible" }
                on:load=move |_| {
                    loading.set_value(None);
                    waiting.set(false);
                }
                on:error=move |_| {
                    loading.set_value(None);
                    waiting.set(true);
                }
            />
            <Show when=move || waiting.get()>
                <figcaption class="live-waiting">"Waiting for the first frame…"</figcaption>
            </Show>
        </figure>
    }
}

/// What the agent of job `job_id` is doing now, under the job page's live
/// view: its step and the address it is at, from its execution's live
/// stream (the run page's source too). Says so when the job has ended.
#[component]
pub fn LiveJobStatus(execution_id: uuid::Uuid, job_id: i64) -> impl IntoView {
    // (step, current address); None before the first snapshot.
    let status = RwSignal::new(None::<(Option<String>, Option<String>)>);
    let ended = RwSignal::new(false);
    Effect::new(move |_| {
        let stream = crate::app::live::follow(
            &format!("/api/v1/executions/{execution_id}/events"),
            move |s: crate::model::LiveSnapshot| {
                match s.running_jobs.iter().find(|j| j.id == job_id) {
                    Some(j) => {
                        ended.set(false);
                        status.set(Some((
                            j.step.clone(),
                            j.current_url.clone().or_else(|| Some(j.url.clone())),
                        )));
                    }
                    // A full list may simply leave this job out.
                    None if s.running_jobs.len() < crate::model::LIVE_RUNNING_JOBS => {
                        ended.set(true)
                    }
                    None => {}
                }
            },
            |_| {},
        );
        let stream = send_wrapper::SendWrapper::new(stream);
        on_cleanup(move || drop(stream));
    });
    view! {
        <p class="live-status" role="status" aria-live="polite" data-testid="live-status">
            {move || {
                if ended.get() {
                    return view! { <span>"This attempt has ended: reload the page for its result."</span> }.into_any();
                }
                match status.get() {
                    None => view! { <span class="muted">"Waiting for the agent's first step…"</span> }.into_any(),
                    Some((step, url)) => view! {
                        <span>
                            <strong>{step.unwrap_or_else(|| "Starting".into())}</strong>
                            {url.map(|u| view! { " · " <span class="live-url">{u}</span> })}
                        </span>
                    }.into_any(),
                }
            }}
        </p>
    }
}
