//! Sending a file from the browser with upload progress. Server functions
//! can't stream a 200 MB file or report progress, so uploads use
//! `XMLHttpRequest` against the REST endpoints (the session cookie
//! authenticates them like any page request).

use leptos::wasm_bindgen::closure::Closure;
use leptos::wasm_bindgen::{JsCast, JsValue};
use leptos::web_sys::{self, Blob, ProgressEvent, XmlHttpRequest};

/// The status and body the server answered with, or why there was no
/// answer.
pub async fn post_blob(
    url: &str,
    body: &Blob,
    on_progress: impl Fn(f64) + 'static,
) -> Result<(u16, String), String> {
    let failed = |_| "The browser could not start the upload.".to_string();
    let xhr = XmlHttpRequest::new().map_err(failed)?;
    xhr.open("POST", url).map_err(failed)?;
    xhr.set_request_header("Content-Type", "text/csv")
        .map_err(failed)?;
    xhr.set_request_header("Accept", "application/json")
        .map_err(failed)?;
    let progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
        if e.length_computable() && e.total() > 0.0 {
            on_progress(e.loaded() / e.total());
        }
    });
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    }
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        let on_load = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        xhr.set_onload(Some(on_load.unchecked_ref()));
        let on_error = Closure::once_into_js(move || {
            let _ = reject.call0(&JsValue::NULL);
        });
        xhr.set_onerror(Some(on_error.unchecked_ref()));
    });
    xhr.send_with_opt_blob(Some(body)).map_err(failed)?;
    let answered = wasm_bindgen_futures::JsFuture::from(done).await;
    // The progress callback must live until the request is over.
    drop(progress);
    answered.map_err(|_| {
        "The connection failed before the server answered. Check your network and try again."
            .to_string()
    })?;
    let status = xhr.status().unwrap_or(0);
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    Ok((status, text))
}

thread_local! {
    /// The file chosen on the upload page. Kept outside the reactive
    /// system: a browser `File` can't live in a thread-safe signal, and a
    /// thread-local signal created during server rendering (which may move
    /// between threads) panics when dropped elsewhere. Only the browser
    /// ever touches this.
    static CHOSEN: std::cell::RefCell<Option<web_sys::File>> = const { std::cell::RefCell::new(None) };
}

pub fn remember(file: web_sys::File) {
    CHOSEN.with(|c| *c.borrow_mut() = Some(file));
}

pub fn chosen() -> Option<web_sys::File> {
    CHOSEN.with(|c| c.borrow().clone())
}

/// The first `bytes` of a file, for the preview.
pub fn head(file: &web_sys::File, bytes: f64) -> Result<Blob, String> {
    file.slice_with_f64_and_f64(0.0, bytes)
        .map_err(|_| "The browser could not read the file.".to_string())
}
