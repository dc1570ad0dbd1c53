//! `/o/:slug/webhooks`: register URLs that hear about runs and failed jobs,
//! see each hook's health and delivery log, send a test event, redeliver,
//! edit, disable and delete (admins).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::orgs::get_org;
use crate::api::webhooks::{
    list_webhook_deliveries, list_webhooks, CreateWebhook, DeleteWebhook, RedeliverWebhook,
    SetWebhookEnabled, TestWebhook, UpdateWebhook,
};
use crate::app::components::{
    action_error, invalid, when, ErrorBox, FieldError, FormError, Loading, NeedsJavascript,
};
use crate::app::hooks::{use_hydrated, use_slug};
use crate::error::AppError;
use crate::model::{Role, Webhook, WebhookDelivery, WEBHOOK_EVENTS};

/// The actions every hook card uses; one of each for the page, so a
/// change anywhere re-reads the list.
#[derive(Clone, Copy)]
struct HookActions {
    update: ServerAction<UpdateWebhook>,
    enable: ServerAction<SetWebhookEnabled>,
    delete: ServerAction<DeleteWebhook>,
    test: ServerAction<TestWebhook>,
    redeliver: ServerAction<RedeliverWebhook>,
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let slug = use_slug();
    let create = ServerAction::<CreateWebhook>::new();
    let create_form = crate::app::hooks::reset_on_success(create);
    let actions = HookActions {
        update: ServerAction::new(),
        enable: ServerAction::new(),
        delete: ServerAction::new(),
        test: ServerAction::new(),
        redeliver: ServerAction::new(),
    };
    // Deliveries move on their own (the dispatcher): "Refresh" reads again.
    let refreshed = RwSignal::new(0u32);
    let data = Resource::new(
        move || {
            (
                slug.get(),
                create.version().get(),
                actions.update.version().get(),
                actions.enable.version().get(),
                actions.delete.version().get(),
                actions.test.version().get(),
                actions.redeliver.version().get(),
                refreshed.get(),
            )
        },
        |(slug, ..)| async move {
            let org = get_org(slug.clone()).await?;
            if org.role < Role::Admin {
                return Ok((org, None));
            }
            let hooks = list_webhooks(slug).await?;
            Ok::<_, AppError>((org, Some(hooks)))
        },
    );
    let create_error = action_error(create);
    let created = move || create.value().get().and_then(|r| r.ok());
    let hydrated = use_hydrated();
    let errors = [
        action_error(actions.update),
        action_error(actions.enable),
        action_error(actions.delete),
        action_error(actions.test),
        action_error(actions.redeliver),
    ];
    let card_error = Signal::derive(move || errors.iter().find_map(|e| e.get()));
    view! {
        <Title text="Webhooks" />
        <div class="page-head">
            <h1>"Webhooks"</h1>
            <button type="button" class="button small" on:click=move |_| refreshed.update(|n| *n += 1)
                disabled=move || !hydrated.get()>"Refresh"</button>
        </div>
        <p class="muted">
            "Mino sends a signed JSON " <code>"POST"</code> " to each URL when a run starts, finishes or fails, and when a job fails for good. "
            "Check the " <code>"Mino-Signature: t=…,v1=…"</code> " header: HMAC-SHA256 of " <code>"t.body"</code>
            " with the hook's secret; refuse timestamps older than five minutes. Failed deliveries are retried with backoff; "
            "a hook that fails 5 times in a row is disabled until you turn it on again."
        </p>
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((_, None)) => view! {
                        <section class="card">
                            <p>"Only admins and owners manage webhooks. Ask one of them to add yours."</p>
                        </section>
                    }
                    .into_any(),
                    Ok((org, Some(hooks))) => view! {
                        <section class="card">
                            <h2>"Add a webhook"</h2>
                            <FormError error=create_error />
                            <ActionForm action=create node_ref=create_form>
                                <input type="hidden" name="org" value=org.id.to_string() />
                                <label for="hook-url">"Payload URL"</label>
                                <input id="hook-url" name="url" type="url" required maxlength="2000"
                                    placeholder="https://example.com/hooks/mino"
                                    aria-invalid=invalid(create_error, "url") aria-describedby="url-error" />
                                <FieldError error=create_error field="url" />
                                <label for="hook-description">"Description " <span class="muted">"(optional)"</span></label>
                                <input id="hook-description" name="description" maxlength="500" placeholder="e.g. Slack relay for the pricing team"
                                    aria-invalid=invalid(create_error, "description") aria-describedby="description-error" />
                                <FieldError error=create_error field="description" />
                                <EventChoices prefix="new" chosen=WEBHOOK_EVENTS.iter().map(|(n, _)| n.to_string()).collect() />
                                <FieldError error=create_error field="events" />
                                <label for="hook-secret">"Secret " <span class="muted">"(optional: 16–200 characters; empty makes one for you)"</span></label>
                                <input id="hook-secret" name="secret" type="password" autocomplete="new-password" maxlength="200"
                                    aria-invalid=invalid(create_error, "secret") aria-describedby="secret-error" />
                                <FieldError error=create_error field="secret" />
                                <button type="submit" class="button primary" disabled=move || !hydrated.get() || create.pending().get()>"Add webhook"</button>
                                <NeedsJavascript what="Adding a webhook" />
                            </ActionForm>
                            {move || created().map(|c| view! {
                                <div class="alert alert-ok" role="status">
                                    <p>"Webhook added for " <code>{c.webhook.url.clone()}</code> "."</p>
                                    {c.secret.clone().map(|s| view! {
                                        <p>"Its signing secret — copy it now, it is shown only once:"</p>
                                        <input class="copy" readonly aria-label="Signing secret" data-testid="webhook-secret" value=s />
                                    })}
                                </div>
                            })}
                        </section>
                        <FormError error=card_error />
                        {if hooks.is_empty() {
                            view! {
                                <section class="card empty">
                                    <strong>"No webhooks yet."</strong>
                                    <p class="muted">"Add one above, then use “Send test event” to check your receiver."</p>
                                </section>
                            }.into_any()
                        } else {
                            hooks
                                .into_iter()
                                .map(|h| view! { <HookCard hook=h actions refreshed /> })
                                .collect_view()
                                .into_any()
                        }}
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// One checkbox per event, named `event_<name with underscores>`.
#[component]
fn EventChoices(prefix: &'static str, chosen: Vec<String>) -> impl IntoView {
    view! {
        <fieldset>
            <legend>"Events"</legend>
            {WEBHOOK_EVENTS
                .iter()
                .map(|(name, about)| {
                    let field = format!("event_{}", name.replace('.', "_"));
                    let id = format!("{prefix}-{field}");
                    let on = chosen.iter().any(|c| c == name);
                    let for_id = id.clone();
                    view! {
                        <label class="check" for=for_id>
                            <input type="checkbox" id=id name=field checked=on />
                            <code>{*name}</code>
                            <span class="muted">" — " {*about}</span>
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
    }
}

#[component]
fn HookCard(hook: Webhook, actions: HookActions, refreshed: RwSignal<u32>) -> impl IntoView {
    let id = hook.id;
    let hydrated = use_hydrated();
    let cursor = RwSignal::new(None::<String>);
    let deliveries = Resource::new(
        move || {
            (
                cursor.get(),
                actions.test.version().get(),
                actions.redeliver.version().get(),
                refreshed.get(),
            )
        },
        move |(cursor, ..)| list_webhook_deliveries(id, cursor),
    );
    let status = if hook.enabled {
        view! { <span class="badge ok">"Enabled"</span> }.into_any()
    } else {
        view! { <span class="badge bad">"Disabled"</span> }.into_any()
    };
    let last = match (hook.last_delivery_state.clone(), hook.last_delivery_at) {
        (Some(s), Some(t)) => format!("Last delivery {s}, {}", when(t)),
        _ => "No deliveries yet".into(),
    };
    let title = hook.url.clone();
    let (confirm_url, edit_url) = (hook.url.clone(), hook.url.clone());
    view! {
        <section class="card" data-testid="webhook">
            <div class="section-head">
                <h2 class="mono small">{title}</h2>
                {status}
            </div>
            {(!hook.description.is_empty()).then(|| view! { <p>{hook.description.clone()}</p> })}
            {hook.disabled_reason.clone().map(|r| view! {
                <div class="banner warn" role="status" data-testid="webhook-disabled">{r}</div>
            })}
            <dl class="facts">
                <div><dt>"Events"</dt><dd>{hook.events.join(", ")}</dd></div>
                <div><dt>"Secret"</dt><dd><code>{hook.secret_hint.clone()}</code></dd></div>
                <div><dt>"Failures in a row"</dt><dd>{hook.consecutive_failures}</dd></div>
                <div><dt>"Activity"</dt><dd>{last}</dd></div>
            </dl>
            <div class="controls">
                <ActionForm action=actions.test>
                    <input type="hidden" name="id" value=id.to_string() />
                    <button type="submit" class="button small" disabled=move || !hydrated.get() || actions.test.pending().get()>"Send test event"</button>
                </ActionForm>
                <ActionForm action=actions.enable>
                    <input type="hidden" name="id" value=id.to_string() />
                    <input type="hidden" name="enabled" value=(!hook.enabled).to_string() />
                    <button type="submit" class="button small" disabled=move || !hydrated.get()>
                        {if hook.enabled { "Disable" } else { "Enable" }}
                    </button>
                </ActionForm>
                <details class="confirm">
                    <summary class="button small danger">"Delete…"</summary>
                    <ActionForm action=actions.delete>
                        <input type="hidden" name="id" value=id.to_string() />
                        <p>"Delete the webhook for " <code>{confirm_url}</code> "? Its delivery log goes with it."</p>
                        <button type="submit" class="button small danger">"Delete webhook"</button>
                    </ActionForm>
                </details>
            </div>
            <details>
                <summary>"Edit"</summary>
                <ActionForm action=actions.update>
                    <input type="hidden" name="id" value=id.to_string() />
                    <label for=format!("url-{id}")>"Payload URL"</label>
                    <input id=format!("url-{id}") name="url" type="url" required maxlength="2000" value=edit_url />
                    <label for=format!("description-{id}")>"Description"</label>
                    <input id=format!("description-{id}") name="description" maxlength="500" value=hook.description.clone() />
                    <EventChoices prefix="edit" chosen=hook.events.clone() />
                    <label for=format!("secret-{id}")>"New secret " <span class="muted">"(empty keeps the current one)"</span></label>
                    <input id=format!("secret-{id}") name="secret" type="password" autocomplete="new-password" maxlength="200" />
                    <button type="submit" class="button small primary" disabled=move || !hydrated.get()>"Save"</button>
                </ActionForm>
            </details>
            <h3>"Deliveries"</h3>
            <Suspense fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match deliveries.await {
                        Err(e) => view! { <div class="alert alert-error" role="alert">{e.to_string()}</div> }.into_any(),
                        Ok(page) if page.items.is_empty() && cursor.get_untracked().is_none() => view! {
                            <p class="muted">"Nothing sent yet. Events appear here as runs start and finish; “Send test event” sends one now."</p>
                        }.into_any(),
                        Ok(page) => {
                            let next = page.next_cursor.clone();
                            view! {
                                <DeliveryTable items=page.items redeliver=actions.redeliver />
                                <div class="pager">
                                    {cursor.get_untracked().is_some().then(|| view! {
                                        <button type="button" class="button small" on:click=move |_| cursor.set(None)>"Newest"</button>
                                    })}
                                    {next.map(|n| view! {
                                        <button type="button" class="button small" on:click=move |_| cursor.set(Some(n.clone()))>"Older"</button>
                                    })}
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

fn state_badge(d: &WebhookDelivery) -> impl IntoView {
    let class = match d.state.as_str() {
        "succeeded" => "badge ok",
        "failed" => "badge bad",
        _ => "badge run",
    };
    view! { <span class=class>{d.state.clone()}</span> }
}

#[component]
fn DeliveryTable(
    items: Vec<WebhookDelivery>,
    redeliver: ServerAction<RedeliverWebhook>,
) -> impl IntoView {
    let rows = items
        .into_iter()
        .map(|d| {
            let finished = matches!(d.state.as_str(), "succeeded" | "failed");
            let last = d.attempt_log.last().cloned();
            let answer = match (&last, d.last_status) {
                (_, Some(s)) => format!("HTTP {s}"),
                (Some(a), None) => a.error.clone().unwrap_or_default(),
                (None, None) => "—".into(),
            };
            let duration = last.as_ref().map(|a| format!("{} ms", a.duration_ms)).unwrap_or_default();
            let next = d.next_attempt_at.filter(|_| d.attempts > 0).map(|t| format!("retry {}", when(t)));
            let payload = d
                .payload
                .as_ref()
                .map(|p| serde_json::to_string_pretty(p).unwrap_or_default());
            let attempts = d
                .attempt_log
                .iter()
                .map(|a| {
                    view! {
                        <li>
                            "#" {a.n} " " {when(a.at)} " — "
                            {a.status.map(|s| format!("HTTP {s}")).or_else(|| a.error.clone()).unwrap_or_default()}
                            " in " {a.duration_ms} " ms"
                            {a.response_excerpt.clone().filter(|e| !e.is_empty()).map(|e| view! { <pre class="mono small">{e}</pre> })}
                        </li>
                    }
                })
                .collect_view();
            let id = d.id.to_string();
            // Two rows per delivery: the facts, then its attempts and body
            // across the whole table, so long answers stay readable.
            view! {
                <tr data-testid="delivery" data-state=d.state.clone()>
                    <td class="nowrap small">{when(d.created_at)}</td>
                    <td><code>{d.event.clone()}</code></td>
                    <td>{state_badge(&d)} {next.map(|n| view! { <div class="muted small">{n}</div> })}</td>
                    <td class="small">{answer} <div class="muted">{duration}</div></td>
                    <td class="small">{d.attempts}</td>
                    <td>
                        {finished.then(|| view! {
                            <ActionForm action=redeliver>
                                <input type="hidden" name="delivery" value=id.clone() />
                                <button type="submit" class="button small">"Redeliver"</button>
                            </ActionForm>
                        })}
                    </td>
                </tr>
                <tr class="delivery-more">
                    <td colspan="6">
                        <details>
                            <summary class="small">"Attempts and body"</summary>
                            <ol class="small">{attempts}</ol>
                            {payload.map(|p| view! { <pre class="mono small">{p}</pre> })}
                        </details>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table>
                <thead><tr>
                    <th scope="col">"Queued"</th><th scope="col">"Event"</th><th scope="col">"State"</th>
                    <th scope="col">"Answer"</th><th scope="col">"Attempts"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
