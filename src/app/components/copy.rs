//! A value shown once (an invitation link, a new API key): a read-only
//! field and a Copy button that says whether copying worked.

use leptos::prelude::*;

#[component]
pub fn CopyField(
    value: String,
    /// The field's accessible name, e.g. "Invitation link".
    label: &'static str,
    testid: &'static str,
) -> impl IntoView {
    // None: not tried yet; Some(true): copied; Some(false): select it by hand.
    let copied = RwSignal::new(None::<bool>);
    let input: NodeRef<leptos::html::Input> = NodeRef::new();
    let text = StoredValue::new(value.clone());
    let copy = move |_| {
        if let Some(el) = input.get_untracked() {
            el.select();
        }
        let Some(clipboard) = web_sys::window().map(|w| w.navigator().clipboard()) else {
            copied.set(Some(false));
            return;
        };
        let promise = clipboard.write_text(&text.get_value());
        leptos::task::spawn_local(async move {
            let ok = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
            copied.set(Some(ok));
        });
    };
    view! {
        <div class="copy-field">
            <input class="copy" readonly aria-label=label data-testid=testid value=value node_ref=input
                on:focus=move |_| { if let Some(el) = input.get_untracked() { el.select(); } } />
            <button type="button" class="button small" on:click=copy data-testid=format!("{testid}-copy")>"Copy"</button>
            <span class="small" role="status" aria-live="polite">
                {move || match copied.get() {
                    Some(true) => "Copied.",
                    Some(false) => "Copying was refused: the text is selected, press Ctrl+C.",
                    None => "",
                }}
            </span>
        </div>
    }
}
