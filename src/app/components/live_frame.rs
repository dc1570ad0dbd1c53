//! The live view of a running browser job: the latest frame the worker
//! took, fetched twice a second. Fetching is what tells the worker that
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
    Effect::new(move |_| {
        let handle = set_interval_with_handle(move || tick.update(|t| *t += 1), REFRESH);
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
                on:load=move |_| waiting.set(false)
                on:error=move |_| waiting.set(true)
            />
            <Show when=move || waiting.get()>
                <figcaption class="live-waiting">"Waiting for the first frame…"</figcaption>
            </Show>
        </figure>
    }
}
