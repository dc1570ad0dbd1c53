//! `/o/:slug/api-keys`: create (secret shown once), list, revoke.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::orgs::{get_org, list_api_keys, CreateApiKey, RevokeApiKey};
use crate::app::components::{
    action_error, invalid, when, ErrorBox, FieldError, FormError, Loading, NeedsJavascript,
};
use crate::app::hooks::{use_hydrated, use_slug};
use crate::error::AppError;
use crate::model::{ApiKey, Role, Scope};

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let slug = use_slug();
    let create = ServerAction::<CreateApiKey>::new();
    let create_form = crate::app::hooks::reset_on_success(create);
    let revoke = ServerAction::<RevokeApiKey>::new();
    let data = Resource::new(
        move || (slug.get(), create.version().get(), revoke.version().get()),
        |(slug, ..)| async move {
            let org = get_org(slug.clone()).await?;
            if org.role < Role::Admin {
                return Ok((org, None));
            }
            let keys = list_api_keys(slug).await?;
            Ok::<_, AppError>((org, Some(keys)))
        },
    );
    let create_error = action_error(create);
    let revoke_error = action_error(revoke);
    let created = move || create.value().get().and_then(|r| r.ok());
    let hydrated = use_hydrated();
    view! {
        <Title text="API keys" />
        <h1>"API keys"</h1>
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((_, None)) => view! {
                        <section class="card">
                            <p>"Only admins and owners manage API keys. Ask one of them for a key."</p>
                        </section>
                    }
                    .into_any(),
                    Ok((org, Some(keys))) => view! {
                        <section class="card">
                            <h2>"Create a key"</h2>
                            <p class="muted">"Programs send it as " <code>"Authorization: Bearer mino_pk_…"</code> " to " <code>"/api/v1"</code> "."</p>
                            <FormError error=create_error />
                            <ActionForm action=create node_ref=create_form>
                                <input type="hidden" name="org" value=org.id.to_string() />
                                <label for="key-name">"Name"</label>
                                <input id="key-name" name="name" required maxlength="100" placeholder="e.g. nightly CI"
                                    aria-invalid=invalid(create_error, "name") aria-describedby="name-error" />
                                <FieldError error=create_error field="name" />
                                <fieldset>
                                    <legend>"Scopes"</legend>
                                    {Scope::ALL
                                        .into_iter()
                                        .map(|s| {
                                            let id = format!("scope_{}", s.as_str());
                                            let (for_id, input_id) = (id.clone(), id.clone());
                                            view! {
                                                <label class="check" for=for_id>
                                                    <input type="checkbox" id=input_id name=id checked=s == Scope::Read />
                                                    <strong>{s.as_str()}</strong>
                                                    <span class="muted">" — " {s.describe()}</span>
                                                </label>
                                            }
                                        })
                                        .collect_view()}
                                </fieldset>
                                <FieldError error=create_error field="scopes" />
                                <label for="expires">"Expires after (days)"</label>
                                <input id="expires" name="expires_in_days" inputmode="numeric" placeholder="never"
                                    aria-invalid=invalid(create_error, "expires_in_days") aria-describedby="expires_in_days-error" />
                                <FieldError error=create_error field="expires_in_days" />
                                <button type="submit" class="button primary" disabled=move || !hydrated.get() || create.pending().get()>"Create key"</button>
                                <NeedsJavascript what="Creating a key" />
                            </ActionForm>
                            {move || created().map(|c| view! {
                                <div class="alert alert-ok" role="status">
                                    <p>"Key " <strong>{c.key.name.clone()}</strong> " created. Copy it now: it is shown only once."</p>
                                    <crate::app::components::copy::CopyField label="New API key" testid="api-key-secret" value=c.secret.clone() />
                                </div>
                            })}
                        </section>
                        <FormError error=revoke_error />
                        <KeyTable keys revoke />
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn KeyTable(keys: Vec<ApiKey>, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    if keys.is_empty() {
        return view! {
            <section class="card"><p class="muted">"No keys yet. Create one above to use the REST API."</p></section>
        }
        .into_any();
    }
    let rows = keys
        .into_iter()
        .map(|k| {
            let scopes = k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            let status = match (k.revoked_at, k.expires_at) {
                (Some(t), _) => format!("revoked {}", when(t)),
                (None, Some(t)) if t <= chrono::Utc::now() => format!("expired {}", when(t)),
                (None, Some(t)) => format!("expires {}", when(t)),
                (None, None) => "never expires".into(),
            };
            let active = k.revoked_at.is_none();
            let id = k.id.to_string();
            let name = k.name.clone();
            view! {
                <tr class:revoked=!active>
                    <td><strong>{k.name.clone()}</strong><div class="muted small"><code>{k.prefix.clone()} "…"</code></div></td>
                    <td>{scopes}</td>
                    <td class="small hide-narrow">{k.last_used_at.map(when).unwrap_or_else(|| "never used".into())}</td>
                    <td class="small">{status}</td>
                    <td class="actions">
                        {active.then(|| view! {
                            <details class="confirm">
                                <summary class="button small danger">"Revoke…"</summary>
                                <ActionForm action=revoke>
                                    <input type="hidden" name="id" value=id.clone() />
                                    <p>"Revoke " {name.clone()} "? Programs using it stop working at once."</p>
                                    <button type="submit" class="button small danger">"Revoke"</button>
                                </ActionForm>
                            </details>
                        })}
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <section class="card">
            <h2>"Keys"</h2>
            <div class="table-wrap">
                <table>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Scopes"</th><th scope="col" class="hide-narrow">"Last used"</th><th scope="col">"Status"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
