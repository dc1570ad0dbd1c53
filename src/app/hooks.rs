//! Hooks every page uses: the route's parameters and query, and whether
//! the page has hydrated.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use uuid::Uuid;

/// The `:id` route parameter as a UUID (`None` when it is not one: the page
/// then shows "not found").
pub fn use_id() -> Signal<Option<Uuid>> {
    let params = use_params_map();
    Signal::derive(move || {
        params
            .read()
            .get("id")
            .and_then(|s| Uuid::parse_str(&s).ok())
    })
}

/// A query-string value, if present and not empty.
pub fn use_query(name: &'static str) -> Signal<Option<String>> {
    let query = use_query_map();
    Signal::derive(move || query.read().get(name).filter(|v| !v.is_empty()))
}

/// The `:slug` of the current organization route.
pub fn use_slug() -> Signal<String> {
    let params = use_params_map();
    Signal::derive(move || params.read().get("slug").unwrap_or_default())
}

/// False during server rendering and until this page has hydrated. Forms
/// whose result is shown only once (a new API key, an invitation link) keep
/// their button disabled until then: a plain form post would do the work
/// but could not show the result.
pub fn use_hydrated() -> Signal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    hydrated.into()
}

/// A form to give `node_ref`: it is emptied each time `action` succeeds,
/// so the next create starts from a clean form.
pub fn reset_on_success<A, O>(action: ServerAction<A>) -> NodeRef<leptos::html::Form>
where
    A: leptos::server_fn::ServerFn<Output = O> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
    ServerAction<A>: Copy,
{
    let form: NodeRef<leptos::html::Form> = NodeRef::new();
    Effect::new(move |_| {
        let ok = action.value().with(|v| matches!(v, Some(Ok(_))));
        if ok {
            if let Some(f) = form.get_untracked() {
                f.reset();
            }
        }
    });
    form
}

/// Await this in a Suspense's `Suspend` after its data and before building
/// components that create resources of their own. Leptos's server
/// rendering calls a Suspense's children once to discover the resources
/// they read (`dry_resolve`) and again to render, and a view its first call
/// built is thrown away with the resources it created — whose server
/// functions had already run: the run page ran every card's queries twice
/// and sent their data twice (issue 22). On the server this is ready on its
/// second poll, so the discovery pass stops here; in the browser it is
/// ready at once (hydration wants the view immediately).
pub async fn build_once() {
    #[cfg(feature = "ssr")]
    {
        let mut polled = false;
        std::future::poll_fn(|cx| {
            if polled {
                std::task::Poll::Ready(())
            } else {
                polled = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }
}
