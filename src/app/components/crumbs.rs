//! The trail above a page's heading: where this page sits (organization's
//! projects → project → batch → run), each a link, separated by the
//! stylesheet rather than by text so nothing dangles after the last one.

use leptos::prelude::*;

/// `items`: (label, address) from the outermost place inward; the page
/// itself is its heading, not a crumb.
#[component]
pub fn Crumbs(items: Vec<(String, String)>) -> impl IntoView {
    view! {
        <nav aria-label="Breadcrumb">
            <ol class="crumbs">
                {items
                    .into_iter()
                    .map(|(label, href)| view! { <li><a href=href>{label}</a></li> })
                    .collect_view()}
            </ol>
        </nav>
    }
}
