//! `/o/:slug/audit-log`: every change in the organization, newest first,
//! filtered by who, what and when, a page at a time, with a CSV download
//! of the same selection. Filters are a plain GET form, so the page works
//! and can be bookmarked without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use serde_json::Value;

use crate::api::orgs::{get_org, list_api_keys, list_audit_log, list_members};
use crate::app::components::{when, ErrorBox, Loading};
use crate::app::hooks::use_query;
use crate::app::hooks::use_slug;
use crate::error::AppError;
use crate::model::{AuditEntry, Role};

/// The resource types entries name, for the filter.
const RESOURCES: &[(&str, &str)] = &[
    ("", "Anything"),
    ("organization", "Organization"),
    ("member", "Members"),
    ("invitation", "Invitations"),
    ("api_key", "API keys"),
    ("webhook", "Webhooks"),
    ("project", "Projects and fields"),
    ("batch", "Batches and ground truth"),
    ("row", "Expected values of a row"),
    ("execution", "Runs and jobs"),
    ("export", "Exports"),
];

/// A filter's query value, empty when absent.
fn q(s: Signal<Option<String>>) -> String {
    s.get_untracked().unwrap_or_default()
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let slug = use_slug();
    let (actor, action, resource, since, until, cursor) = (
        use_query("actor"),
        use_query("action"),
        use_query("resource_type"),
        use_query("since"),
        use_query("until"),
        use_query("cursor"),
    );
    let data = Resource::new(
        move || {
            (
                slug.get(),
                actor.get(),
                action.get(),
                resource.get(),
                since.get(),
                until.get(),
                cursor.get(),
            )
        },
        |(slug, actor, action, resource, since, until, cursor)| async move {
            let org = get_org(slug.clone()).await?;
            if org.role < Role::Admin {
                return Ok((org, None));
            }
            let page =
                list_audit_log(slug.clone(), actor, action, resource, since, until, cursor).await?;
            let members = list_members(slug.clone()).await?;
            let keys = list_api_keys(slug).await?;
            let who: Vec<(String, String)> = members
                .into_iter()
                .map(|m| (m.user_id.to_string(), format!("{} <{}>", m.name, m.email)))
                .chain(
                    keys.into_iter()
                        .map(|k| (k.id.to_string(), format!("API key “{}”", k.name))),
                )
                .collect();
            Ok::<_, AppError>((org, Some((page, who))))
        },
    );
    view! {
        <Title text="Audit log" />
        <h1>"Audit log"</h1>
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((_, None)) => view! {
                        <section class="card">
                            <p>"Only admins and owners read the audit log."</p>
                        </section>
                    }
                    .into_any(),
                    Ok((org, Some((page, who)))) => {
                        let base = format!("/o/{}/audit-log", org.slug);
                        let filters = [
                            ("actor", q(actor)),
                            ("action", q(action)),
                            ("resource_type", q(resource)),
                            ("since", q(since)),
                            ("until", q(until)),
                        ];
                        let filtered = filters.iter().any(|(_, v)| !v.is_empty());
                        let query = |extra: Option<(&str, String)>| {
                            let parts: Vec<String> = filters
                                .iter()
                                .cloned()
                                .chain(extra)
                                .filter(|(_, v)| !v.is_empty())
                                .map(|(k, v)| format!("{k}={}", urlencoding(&v)))
                                .collect();
                            parts.join("&")
                        };
                        let next = page
                            .next_cursor
                            .clone()
                            .map(|c| format!("{base}?{}", query(Some(("cursor", c)))));
                        let download = {
                            // The API takes instants; the page's dates are whole UTC days.
                            let mut parts = vec![];
                            for (k, v) in &filters {
                                if v.is_empty() {
                                    continue;
                                }
                                let v = match *k {
                                    "since" => format!("{v}T00:00:00Z"),
                                    "until" => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                                        .map(|d| format!("{}T00:00:00Z", d + chrono::Duration::days(1)))
                                        .unwrap_or_else(|_| v.clone()),
                                    _ => v.clone(),
                                };
                                parts.push(format!("{k}={}", urlencoding(&v)));
                            }
                            format!("/api/v1/orgs/{}/audit-log/export?{}", org.slug, parts.join("&"))
                        };
                        let selected_actor = q(actor);
                        let selected_resource = q(resource);
                        let empty = page.items.is_empty();
                        let rows = page.items.into_iter().map(|e| view! { <EntryRow entry=e /> }).collect_view();
                        view! {
                            <section class="card">
                                <form method="get" action=base.clone() class="audit-filters" aria-label="Filter the log">
                                    <div>
                                        <label for="audit-actor">"Who"</label>
                                        <select id="audit-actor" name="actor">
                                            <option value="" selected=selected_actor.is_empty()>"Anyone"</option>
                                            {who.into_iter().map(|(id, name)| {
                                                let selected = id == selected_actor;
                                                view! { <option value=id selected=selected>{name}</option> }
                                            }).collect_view()}
                                        </select>
                                    </div>
                                    <div>
                                        <label for="audit-action">"Action"</label>
                                        <input id="audit-action" name="action" value=q(action)
                                            placeholder="e.g. project.create, or project." aria-describedby="audit-action-hint" />
                                        <p id="audit-action-hint" class="hint">"Exact, or a prefix ending in a dot."</p>
                                    </div>
                                    <div>
                                        <label for="audit-resource">"On"</label>
                                        <select id="audit-resource" name="resource_type">
                                            {RESOURCES.iter().map(|(v, label)| {
                                                let selected = *v == selected_resource;
                                                view! { <option value=*v selected=selected>{*label}</option> }
                                            }).collect_view()}
                                        </select>
                                    </div>
                                    <div>
                                        <label for="audit-since">"From"</label>
                                        <input id="audit-since" type="date" name="since" value=q(since) />
                                    </div>
                                    <div>
                                        <label for="audit-until">"To"</label>
                                        <input id="audit-until" type="date" name="until" value=q(until) />
                                    </div>
                                    <div class="audit-buttons">
                                        <button type="submit" class="button">"Filter"</button>
                                        {filtered.then(|| view! { <a href=base.clone() class="button small">"Clear"</a> })}
                                        <a href=download class="button small" download="audit-log.csv" data-testid="audit-download">"Download CSV"</a>
                                    </div>
                                </form>
                            </section>
                            <section class="card">
                                {if empty {
                                    view! {
                                        <p class="empty">{if filtered {
                                            "No change matches these filters. Widen the dates or clear the filters."
                                        } else {
                                            "No changes yet. Creating projects, uploading batches, running and editing expected values will show up here."
                                        }}</p>
                                    }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap">
                                            <table class="audit" data-testid="audit-log">
                                                <thead><tr>
                                                    <th scope="col">"When"</th>
                                                    <th scope="col">"Who"</th>
                                                    <th scope="col">"Action"</th>
                                                    <th scope="col">"Resource"</th>
                                                    <th scope="col">"Change"</th>
                                                    <th scope="col" class="hide-narrow">"From"</th>
                                                </tr></thead>
                                                <tbody>{rows}</tbody>
                                            </table>
                                        </div>
                                    }.into_any()
                                }}
                                <nav class="pager" aria-label="Pages">
                                    {cursor.get_untracked().map(|_| view! { <a href=format!("{base}?{}", query(None))>"← Newest"</a> })}
                                    {next.map(|h| view! { <a href=h>"Older entries →"</a> })}
                                </nav>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Percent-encodes a query value (the few characters that matter in ours).
fn urlencoding(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `before → after` per key that changed, short enough for a table cell.
fn summary(before: &Option<Value>, after: &Option<Value>) -> String {
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "—".to_string(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
    };
    let (b, a) = (before.as_ref(), after.as_ref());
    match (b.and_then(Value::as_object), a.and_then(Value::as_object)) {
        (Some(b), Some(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| b.get(*k) != a.get(*k))
                .map(|k| format!("{k}: {} → {}", show(b.get(k)), show(a.get(k))))
                .collect::<Vec<_>>()
                .join("; ")
        }
        (None, Some(a)) => a
            .iter()
            .map(|(k, v)| format!("{k}: {}", show(Some(v))))
            .collect::<Vec<_>>()
            .join("; "),
        (Some(b), None) => format!(
            "was {}",
            b.iter()
                .map(|(k, v)| format!("{k}: {}", show(Some(v))))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => String::new(),
    }
}

/// The resource as people know it: a row by its number in the batch, a
/// named thing by its name, anything else by its kind and a short id.
fn resource_label(entry: &AuditEntry) -> String {
    let kind = entry.resource_type.replace('_', " ");
    let id = entry.resource_id.clone().unwrap_or_default();
    if entry.resource_type == "row" {
        if let Ok(n) = id.parse::<i64>() {
            return format!("row {}", n % crate::model::ROW_ID_BASE);
        }
    }
    let name = [&entry.after, &entry.before]
        .into_iter()
        .flatten()
        .find_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string));
    match name {
        Some(n) => format!("{kind} “{n}”"),
        None if id.is_empty() => kind,
        None => format!("{kind} {}", id.chars().take(8).collect::<String>()),
    }
}

/// One entry: a line per change, its before and after in a row of its own
/// below, opened on demand (so the table stays readable at 1280 px).
#[component]
fn EntryRow(entry: AuditEntry) -> impl IntoView {
    let text = summary(&entry.before, &entry.after);
    let short: String = if text.chars().count() > 120 {
        text.chars().take(120).collect::<String>() + "…"
    } else {
        text.clone()
    };
    let detail = (entry.before.is_some() || entry.after.is_some()).then(|| {
        let pretty = |v: &Option<Value>| {
            v.as_ref()
                .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
                .unwrap_or_else(|| "—".into())
        };
        (pretty(&entry.before), pretty(&entry.after))
    });
    let open = RwSignal::new(false);
    let resource = resource_label(&entry);
    let full_id = entry.resource_id.clone().unwrap_or_default();
    let has_detail = detail.is_some();
    // "Ann <ann@example.com>": the name, the address below it in small.
    let (who_name, who_email) = match entry.actor_name.split_once(" <") {
        Some((n, e)) => (n.to_string(), Some(format!("<{e}"))),
        None => (entry.actor_name.clone(), None),
    };
    view! {
        <tr>
            <td class="small nowrap">{when(entry.at)}</td>
            <td class="who">{who_name}{who_email.map(|e| view! { <div class="muted small">{e}</div> })}</td>
            <td><code>{entry.action.clone()}</code></td>
            <td class="small" title=full_id>{resource}</td>
            <td class="small change">
                <span class="change-text">{short}</span>
                {has_detail.then(|| view! {
                    " " <button type="button" class="link small" aria-expanded=move || open.get().to_string()
                        on:click=move |_| open.update(|o| *o = !*o) data-testid="audit-detail-toggle">
                        {move || if open.get() { "Hide details" } else { "Details" }}
                    </button>
                })}
            </td>
            <td class="small hide-narrow">
                {entry.ip.clone().unwrap_or_default()}
                <div class="muted" title=entry.user_agent.clone().unwrap_or_default()>{entry.user_agent.clone().map(|ua| ua.chars().take(40).collect::<String>()).unwrap_or_default()}</div>
            </td>
        </tr>
        {detail.map(|(before, after)| view! {
            <tr class="audit-detail" hidden=move || !open.get()>
                <td colspan="6">
                    <div class="audit-json">
                        <div><h3>"Before"</h3><pre>{before}</pre></div>
                        <div><h3>"After"</h3><pre>{after}</pre></div>
                    </div>
                </td>
            </tr>
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_show_what_changed() {
        assert_eq!(
            summary(
                &Some(json!({"name": "A", "x": 1})),
                &Some(json!({"name": "B", "x": 1}))
            ),
            "name: \"A\" → \"B\""
        );
        assert_eq!(
            summary(&None, &Some(json!({"role": "admin"}))),
            "role: \"admin\""
        );
        assert_eq!(summary(&Some(json!({"rows": 3})), &None), "was rows: 3");
        assert_eq!(urlencoding("project. a&b"), "project.%20a%26b");
    }

    #[test]
    fn resources_are_named_as_people_know_them() {
        let entry = |kind: &str, id: &str, after: Option<Value>| AuditEntry {
            id: 1,
            at: chrono::Utc::now(),
            actor_user_id: None,
            actor_key_id: None,
            actor_name: "Ann".into(),
            action: format!("{kind}.update"),
            resource_type: kind.into(),
            resource_id: Some(id.into()),
            before: None,
            after,
            ip: None,
            user_agent: None,
        };
        assert_eq!(resource_label(&entry("row", "10000051", None)), "row 51");
        assert_eq!(
            resource_label(&entry("project", "0b0e…", Some(json!({"name": "Prices"})))),
            "project “Prices”"
        );
        assert_eq!(
            resource_label(&entry("api_key", "6f1c2d3e-aaaa", None)),
            "api key 6f1c2d3e"
        );
    }
}
