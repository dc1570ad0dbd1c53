//! Following an execution live in the browser: an `EventSource` on
//! `/api/v1/executions/{id}/events` whose snapshots feed a signal (the
//! "server-sent signal" the execution page renders from). The browser
//! reconnects by itself after a drop, sending `Last-Event-ID`; the server
//! answers with the current snapshot at once.

use leptos::wasm_bindgen::closure::Closure;
use leptos::wasm_bindgen::JsCast;
use leptos::web_sys::{Event, EventSource, MessageEvent};

use crate::model::LiveSnapshot;

/// An open stream; dropping it closes the connection.
pub struct LiveStream {
    source: EventSource,
    _listeners: Vec<Closure<dyn FnMut(Event)>>,
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// Opens the stream: `on_snapshot` gets every snapshot, `on_connected`
/// whether the connection is up (false while the browser reconnects).
/// `None` when the browser has no EventSource.
pub fn follow(
    url: &str,
    on_snapshot: impl Fn(LiveSnapshot) + Clone + 'static,
    on_connected: impl Fn(bool) + Clone + 'static,
) -> Option<LiveStream> {
    let source = EventSource::new(url).ok()?;
    let mut listeners = Vec::new();
    for name in ["snapshot", "end"] {
        let on_snapshot = on_snapshot.clone();
        let on_connected = on_connected.clone();
        let closing = source.clone();
        let listener = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            let Some(text) = e
                .dyn_into::<MessageEvent>()
                .ok()
                .and_then(|m| m.data().as_string())
            else {
                return;
            };
            if let Ok(snapshot) = serde_json::from_str::<LiveSnapshot>(&text) {
                let last = snapshot.last;
                on_connected(true);
                on_snapshot(snapshot);
                if last {
                    // The run is over; don't let the browser reconnect.
                    closing.close();
                }
            }
        });
        source
            .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
            .ok()?;
        listeners.push(listener);
    }
    for (name, up) in [("open", true), ("error", false)] {
        let on_connected = on_connected.clone();
        let listener = Closure::<dyn FnMut(Event)>::new(move |_: Event| on_connected(up));
        source
            .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
            .ok()?;
        listeners.push(listener);
    }
    Some(LiveStream {
        source,
        _listeners: listeners,
    })
}
