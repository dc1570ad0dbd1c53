//! `/o/:slug/model-providers`: where the llm extractor's models are served
//! (OpenAI-compatible servers, Anthropic, Gemini), what their tokens cost,
//! how healthy each is (breaker, last error and success, the last hour's
//! error rate and latency), "check now", edit, disable, delete (admins).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::orgs::get_org;
use crate::api::providers::{
    list_model_providers, models_text, CheckModelProvider, CreateModelProvider,
    DeleteModelProvider, SetModelProviderEnabled, UpdateModelProvider,
};
use crate::app::components::{
    action_error, invalid, when, ErrorBox, FieldError, FormError, Loading, NeedsJavascript,
};
use crate::app::hooks::{use_hydrated, use_slug};
use crate::error::AppError;
use crate::model::{BreakerState, ModelProvider, ProviderKind, Role};

#[derive(Clone, Copy)]
struct ProviderActions {
    update: ServerAction<UpdateModelProvider>,
    enable: ServerAction<SetModelProviderEnabled>,
    delete: ServerAction<DeleteModelProvider>,
    check: ServerAction<CheckModelProvider>,
}

#[component]
pub fn ModelProvidersPage() -> impl IntoView {
    let slug = use_slug();
    let create = ServerAction::<CreateModelProvider>::new();
    let actions = ProviderActions {
        update: ServerAction::new(),
        enable: ServerAction::new(),
        delete: ServerAction::new(),
        check: ServerAction::new(),
    };
    let data = Resource::new(
        move || {
            (
                slug.get(),
                create.version().get(),
                actions.update.version().get(),
                actions.enable.version().get(),
                actions.delete.version().get(),
                actions.check.version().get(),
            )
        },
        |(slug, ..)| async move {
            let org = get_org(slug.clone()).await?;
            if org.role < Role::Admin {
                return Ok((org, None));
            }
            let providers = list_model_providers(slug).await?;
            Ok::<_, AppError>((org, Some(providers)))
        },
    );
    let create_error = action_error(create);
    let hydrated = use_hydrated();
    let errors = [
        action_error(actions.update),
        action_error(actions.enable),
        action_error(actions.delete),
        action_error(actions.check),
    ];
    let card_error = Signal::derive(move || errors.iter().find_map(|e| e.get()));
    let checked = move || actions.check.value().get().and_then(|r| r.ok());
    view! {
        <Title text="Model providers" />
        <div class="page-head"><h1>"Model providers"</h1></div>
        <p class="muted">
            "The llm extractor sends each page (reduced to its main text, structured data and meta tags), the row's inputs, "
            "the output fields and your instructions to a model. Add the services it may use; a project's agent settings choose a route: "
            "the first model serves, the others take over when it fails (rate limits, server errors, timeouts, a refused key). "
            "Page text leaves your network when the provider is outside it."
        </p>
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((_, None)) => view! {
                        <section class="card">
                            <p>"Only admins and owners manage model providers. Projects can use the ones they added."</p>
                        </section>
                    }
                    .into_any(),
                    Ok((org, Some(providers))) => view! {
                        <section class="card">
                            <h2>"Add a provider"</h2>
                            <FormError error=create_error />
                            <ActionForm action=create>
                                <input type="hidden" name="org" value=org.id.to_string() />
                                <div class="inline-form">
                                    <div class="field grow">
                                        <label for="provider-name">"Name"</label>
                                        <input id="provider-name" name="name" required maxlength="100" placeholder="e.g. OpenAI, Local Ollama"
                                            aria-invalid=invalid(create_error, "name") aria-describedby="name-error" />
                                    </div>
                                    <div class="field">
                                        <label for="provider-kind">"Wire format"</label>
                                        <select id="provider-kind" name="kind">
                                            {ProviderKind::ALL.iter().map(|k| view! { <option value=k.as_str()>{k.label()}</option> }).collect_view()}
                                        </select>
                                    </div>
                                </div>
                                <FieldError error=create_error field="name" />
                                <FieldError error=create_error field="kind" />
                                <label for="provider-url">"Base URL " <span class="muted">"(empty: the provider's own service; e.g. http://127.0.0.1:11434/v1 for Ollama, http://127.0.0.1:8080/v1 for llama.cpp)"</span></label>
                                <input id="provider-url" name="base_url" type="url" maxlength="2000" placeholder="https://api.openai.com/v1"
                                    aria-invalid=invalid(create_error, "base_url") aria-describedby="base_url-error" />
                                <FieldError error=create_error field="base_url" />
                                <label for="provider-key">"API key " <span class="muted">"(stored encrypted; shown afterwards only as its last four characters)"</span></label>
                                <input id="provider-key" name="api_key" type="password" autocomplete="off" maxlength="500"
                                    aria-invalid=invalid(create_error, "api_key") aria-describedby="api_key-error" />
                                <FieldError error=create_error field="api_key" />
                                <label for="provider-models">"Models " <span class="muted">"(one per line: name, then input and output price per million tokens)"</span></label>
                                <textarea id="provider-models" name="models" rows="3" required placeholder="gpt-4o-mini 0.15 0.60"
                                    aria-invalid=invalid(create_error, "models") aria-describedby="models-error"></textarea>
                                <FieldError error=create_error field="models" />
                                <Limits prefix="new".into() provider=None error=create_error />
                                <button type="submit" class="button primary" disabled=move || !hydrated.get() || create.pending().get()>"Add provider"</button>
                                <NeedsJavascript what="Adding a provider" />
                            </ActionForm>
                            <Show when=move || matches!(create.value().get(), Some(Ok(_)))>
                                <p class="alert alert-ok" role="status">"Provider added. Use “Check now” to see that it answers, then choose it in a project's agent settings."</p>
                            </Show>
                        </section>
                        <FormError error=card_error />
                        {move || checked().map(|c| {
                            let (class, text) = if c.ok {
                                ("alert alert-ok", format!("{} answered with {} in {} ms.", c.provider.name, c.model, c.latency_ms))
                            } else {
                                ("alert alert-error", format!("{} did not answer with {}: {}", c.provider.name, c.model, c.error.clone().unwrap_or_default()))
                            };
                            view! { <p class=class role="status" data-testid="provider-check">{text}</p> }
                        })}
                        {if providers.is_empty() {
                            view! {
                                <section class="card empty">
                                    <strong>"No model providers yet."</strong>
                                    <p class="muted">"Add one above — an OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, LM Studio, OpenRouter), Anthropic or Gemini — then pick the llm extractor in a project's agent settings."</p>
                                </section>
                            }.into_any()
                        } else {
                            providers
                                .into_iter()
                                .map(|p| view! { <ProviderCard provider=p actions /> })
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

/// Timeout, concurrency and per-minute limits, for the add and edit forms.
#[component]
fn Limits(
    prefix: String,
    provider: Option<ModelProvider>,
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    let id = move |part: &str| format!("{prefix}-{part}");
    let value = |v: Option<i32>| v.map(|n| n.to_string()).unwrap_or_default();
    let p = provider.as_ref();
    view! {
        <div class="inline-form">
            <div class="field">
                <label for=id("timeout")>"Timeout (s)"</label>
                <input id=id("timeout") name="timeout_secs" inputmode="numeric" placeholder="60"
                    value=value(p.map(|p| p.timeout_secs)) aria-invalid=invalid(error, "timeout_secs") />
            </div>
            <div class="field">
                <label for=id("inflight")>"In flight per process"</label>
                <input id=id("inflight") name="max_in_flight" inputmode="numeric" placeholder="4"
                    value=value(p.map(|p| p.max_in_flight)) aria-invalid=invalid(error, "max_in_flight") />
            </div>
            <div class="field">
                <label for=id("rpm")>"Requests / minute"</label>
                <input id=id("rpm") name="requests_per_minute" inputmode="numeric" placeholder="no limit"
                    value=value(p.and_then(|p| p.requests_per_minute)) aria-invalid=invalid(error, "requests_per_minute") />
            </div>
            <div class="field">
                <label for=id("tpm")>"Tokens / minute"</label>
                <input id=id("tpm") name="tokens_per_minute" inputmode="numeric" placeholder="no limit"
                    value=value(p.and_then(|p| p.tokens_per_minute)) aria-invalid=invalid(error, "tokens_per_minute") />
            </div>
        </div>
        <FieldError error field="timeout_secs" />
        <FieldError error field="max_in_flight" />
        <FieldError error field="requests_per_minute" />
        <FieldError error field="tokens_per_minute" />
    }
}

fn health_badge(p: &ModelProvider) -> impl IntoView {
    let (class, text) = if !p.enabled {
        ("badge", "Disabled")
    } else if p.health.auth_failed {
        ("badge bad", "Key refused")
    } else {
        match p.health.state {
            BreakerState::Closed => ("badge ok", "Healthy"),
            BreakerState::HalfOpen => ("badge run", "Probing"),
            BreakerState::Open => ("badge bad", "Circuit open"),
        }
    };
    view! { <span class=class data-testid="provider-health">{text}</span> }
}

#[component]
fn ProviderCard(provider: ModelProvider, actions: ProviderActions) -> impl IntoView {
    let hydrated = use_hydrated();
    let id = provider.id.to_string();
    let h = &provider.health;
    let rate = h
        .error_rate
        .map(|r| format!("{:.0} % of {}", r * 100.0, h.requests_last_hour))
        .unwrap_or_else(|| "no requests".into());
    let latency = match (h.latency_p50_ms, h.latency_p95_ms) {
        (Some(a), Some(b)) => format!("p50 {a:.0} ms · p95 {b:.0} ms"),
        _ => "—".into(),
    };
    let models = provider
        .models
        .iter()
        .map(|m| {
            format!(
                "{} ({} / {} per M tokens)",
                m.name, m.input_price_per_million, m.output_price_per_million
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (delete_name, edit) = (provider.name.clone(), provider.clone());
    let (check_id, enable_id, delete_id, edit_id) =
        (id.clone(), id.clone(), id.clone(), id.clone());
    view! {
        <section class="card" data-testid="provider">
            <div class="section-head">
                <h2>{provider.name.clone()} " " <span class="muted small">{provider.kind.label()}</span></h2>
                {health_badge(&provider)}
            </div>
            {h.auth_failed.then(|| view! {
                <div class="banner warn" role="status">"The provider refused its key (401/403); workers skip it until you give it a new key."</div>
            })}
            <dl class="facts">
                <div><dt>"Base URL"</dt><dd><code>{provider.base_url.clone()}</code></dd></div>
                <div><dt>"Key"</dt><dd>{provider.api_key_last4.clone().map(|k| format!("…{k}")).unwrap_or_else(|| "none".into())}</dd></div>
                <div><dt>"Models"</dt><dd>{models}</dd></div>
                <div><dt>"Last success"</dt><dd>{h.last_success_at.map(when).unwrap_or_else(|| "never".into())}</dd></div>
                <div><dt>"Last error"</dt><dd>{h.last_error.clone().map(|e| format!("{e} ({})", h.last_error_at.map(when).unwrap_or_default())).unwrap_or_else(|| "none".into())}</dd></div>
                <div><dt>"Errors (last hour)"</dt><dd>{rate}</dd></div>
                <div><dt>"Latency (last hour)"</dt><dd>{latency}</dd></div>
            </dl>
            <div class="controls">
                <ActionForm action=actions.check>
                    <input type="hidden" name="id" value=check_id />
                    <button type="submit" class="button small" disabled=move || !hydrated.get() || actions.check.pending().get()>
                        {move || if actions.check.pending().get() { "Checking…" } else { "Check now" }}
                    </button>
                </ActionForm>
                <ActionForm action=actions.enable>
                    <input type="hidden" name="id" value=enable_id />
                    <input type="hidden" name="enabled" value=(!provider.enabled).to_string() />
                    <button type="submit" class="button small" disabled=move || !hydrated.get()>
                        {if provider.enabled { "Disable" } else { "Enable" }}
                    </button>
                </ActionForm>
                <details class="confirm">
                    <summary class="button small danger">"Delete…"</summary>
                    <ActionForm action=actions.delete>
                        <input type="hidden" name="id" value=delete_id />
                        <p>"Delete " <strong>{delete_name}</strong> "? Projects whose route names it skip it from then on."</p>
                        <button type="submit" class="button small danger">"Delete provider"</button>
                    </ActionForm>
                </details>
            </div>
            <details>
                <summary>"Edit"</summary>
                <ActionForm action=actions.update>
                    <input type="hidden" name="id" value=edit_id />
                    <label for=format!("name-{id}")>"Name"</label>
                    <input id=format!("name-{id}") name="name" required maxlength="100" value=edit.name.clone() />
                    <label for=format!("url-{id}")>"Base URL"</label>
                    <input id=format!("url-{id}") name="base_url" type="url" required maxlength="2000" value=edit.base_url.clone() />
                    <label for=format!("key-{id}")>"New API key " <span class="muted">"(empty keeps the current one)"</span></label>
                    <input id=format!("key-{id}") name="api_key" type="password" autocomplete="off" maxlength="500" />
                    <label class="inline-check"><input type="checkbox" name="remove_key" value="on" />" Remove the key"</label>
                    <label for=format!("models-{id}")>"Models"</label>
                    <textarea id=format!("models-{id}") name="models" rows="3" required>{models_text(&edit.models)}</textarea>
                    <Limits prefix=format!("edit-{id}") provider=Some(edit.clone()) error=Signal::derive(|| None) />
                    <button type="submit" class="button small primary" disabled=move || !hydrated.get()>"Save"</button>
                </ActionForm>
            </details>
        </section>
    }
}
