//! The team page (members, roles, invitations) and the invitation link.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::account::get_me;
use crate::api::orgs::{
    get_invitation, get_org, list_invitations, list_members, AcceptInvitation, ChangeRole,
    InviteMember, RemoveMember, RevokeInvitation,
};
use crate::app::components::{
    action_error, invalid, when, ErrorBox, FieldError, FormError, Loading, NeedsJavascript,
};
use crate::app::hooks::{use_hydrated, use_slug};
use crate::error::AppError;
use crate::model::{Invitation, Member, Organization, Role};

#[component]
pub fn MembersPage() -> impl IntoView {
    let slug = use_slug();
    let invite = ServerAction::<InviteMember>::new();
    let change = ServerAction::<ChangeRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let data = Resource::new(
        move || {
            (
                slug.get(),
                invite.version().get(),
                change.version().get(),
                remove.version().get(),
                revoke.version().get(),
            )
        },
        |(slug, ..)| async move {
            let org = get_org(slug.clone()).await?;
            let members = list_members(slug.clone()).await?;
            let invitations = if org.role >= Role::Admin {
                list_invitations(slug).await?
            } else {
                vec![]
            };
            let me = get_me().await?.map(|m| m.user.id);
            Ok::<_, AppError>((org, members, invitations, me))
        },
    );
    let change_error = action_error(change);
    let remove_error = action_error(remove);
    view! {
        <Title text="Team" />
        <h1>"Team"</h1>
        <FormError error=change_error />
        <FormError error=remove_error />
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((org, members, invitations, me)) => {
                        let is_admin = org.role >= Role::Admin;
                        let (org_a, org_b) = (org.clone(), org.clone());
                        view! {
                            <Show when=move || is_admin>
                                <InviteForm org=org_a.clone() invite />
                            </Show>
                            <MemberTable org=org.clone() members me change remove />
                            <Show when=move || is_admin>
                                <PendingInvitations org=org_b.clone() invitations=invitations.clone() revoke />
                            </Show>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn InviteForm(org: Organization, invite: ServerAction<InviteMember>) -> impl IntoView {
    let error = action_error(invite);
    let created = move || invite.value().get().and_then(|r| r.ok());
    let invite_form = crate::app::hooks::reset_on_success(invite);
    let hydrated = use_hydrated();
    let roles: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Owner || org.role == Role::Owner)
        .collect();
    view! {
        <section class="card" id="invite">
            <h2>"Invite a teammate"</h2>
            <FormError error />
            <ActionForm action=invite node_ref=invite_form attr:class="inline-form">
                <input type="hidden" name="org" value=org.id.to_string() />
                <div class="field grow">
                    <label for="invite-email">"Email"</label>
                    <input id="invite-email" name="email" type="email" required
                        aria-invalid=invalid(error, "email") aria-describedby="email-error" />
                </div>
                <div class="field">
                    <label for="invite-role">"Role"</label>
                    <select id="invite-role" name="role">
                        {roles
                            .into_iter()
                            .map(|r| view! { <option value=r.as_str() selected=r == Role::Member>{r.label()}</option> })
                            .collect_view()}
                    </select>
                </div>
                <button type="submit" class="button primary" disabled=move || !hydrated.get() || invite.pending().get()>
                    "Create invitation"
                </button>
            </ActionForm>
            <NeedsJavascript what="Creating an invitation" />
            <FieldError error field="email" />
            <p class="hint">
                "Viewers read and export; members also edit projects, run executions and fix ground truth; "
                "admins also invite, change roles and manage API keys."
            </p>
            {move || {
                created()
                    .map(|inv| {
                        view! {
                            <div class="alert alert-ok" role="status">
                                <p>
                                    "Invitation for " <strong>{inv.email.clone()}</strong> " as "
                                    {inv.role.label().to_lowercase()}
                                    {match (inv.emailed, inv.email_error.clone()) {
                                        (Some(true), _) => ". It was sent to them by email; the link is here too (shown once; valid until ".to_string(),
                                        (Some(false), Some(e)) => format!(". The email could not be sent ({e}): send them this link yourself (shown once; valid until "),
                                        _ => ". Send them this link (shown once; valid until ".to_string(),
                                    }}
                                    {when(inv.expires_at)} "):"
                                </p>
                                <crate::app::components::copy::CopyField label="Invitation link"
                                    testid="invite-link" value=inv.link.clone().unwrap_or_default() />
                            </div>
                        }
                    })
            }}
        </section>
    }
}

#[component]
fn MemberTable(
    org: Organization,
    members: Vec<Member>,
    me: Option<uuid::Uuid>,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let caller_role = org.role;
    let org_id = org.id.to_string();
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    let rows = members
        .into_iter()
        .map(|m| {
            let is_me = me == Some(m.user_id);
            // The only owner can't leave (the server refuses it too): say how.
            let sole_owner = is_me && m.role == Role::Owner && owners == 1;
            // Admins manage non-owners; owners manage everyone.
            let can_manage = !is_me
                && caller_role >= Role::Admin
                && (caller_role == Role::Owner || m.role != Role::Owner);
            let roles: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|r| *r != Role::Owner || caller_role == Role::Owner)
                .collect();
            let org_id = org_id.clone();
            let uid = m.user_id.to_string();
            let role_label = format!("Role of {}", m.name);
            view! {
                <tr>
                    <td>
                        <strong>{m.name.clone()}</strong>
                        {is_me.then(|| view! { <span class="muted">" (you)"</span> })}
                        <div class="muted small">{m.email.clone()}</div>
                    </td>
                    <td>
                        {if can_manage {
                            let (org_id, uid) = (org_id.clone(), uid.clone());
                            view! {
                                <ActionForm action=change attr:class="row-form">
                                    <input type="hidden" name="org" value=org_id />
                                    <input type="hidden" name="user_id" value=uid />
                                    <select name="role" aria-label=role_label>
                                        {roles
                                            .iter()
                                            .map(|r| view! { <option value=r.as_str() selected=*r == m.role>{r.label()}</option> })
                                            .collect_view()}
                                    </select>
                                    <button type="submit" class="button small">"Save"</button>
                                </ActionForm>
                            }
                            .into_any()
                        } else {
                            view! { <span class="badge" data-testid="member-role">{m.role.label()}</span> }.into_any()
                        }}
                    </td>
                    <td class="muted small hide-narrow">{when(m.joined_at)}</td>
                    <td class="actions">
                        {sole_owner.then(|| view! {
                            <span class="muted small" data-testid="sole-owner">"You are the only owner: make someone else owner to leave."</span>
                        })}
                        {(can_manage || (is_me && !sole_owner)).then(|| {
                            let label = if is_me { "Leave…" } else { "Remove…" };
                            let question = if is_me {
                                "Leave this organization? You will need a new invitation to come back.".to_string()
                            } else {
                                format!("Remove {} from the organization?", m.name)
                            };
                            let confirm = if is_me { "Leave" } else { "Remove" };
                            view! {
                                <details class="confirm">
                                    <summary class="button small danger">{label}</summary>
                                    <ActionForm action=remove>
                                        <input type="hidden" name="org" value=org_id.clone() />
                                        <input type="hidden" name="user_id" value=uid.clone() />
                                        <p>{question}</p>
                                        <button type="submit" class="button small danger">{confirm}</button>
                                    </ActionForm>
                                </details>
                            }
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card">
            <h2>"Members"</h2>
            <div class="table-wrap">
                <table>
                    <thead>
                        <tr><th scope="col">"Name"</th><th scope="col">"Role"</th><th scope="col" class="hide-narrow">"Joined"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn PendingInvitations(
    org: Organization,
    invitations: Vec<Invitation>,
    revoke: ServerAction<RevokeInvitation>,
) -> impl IntoView {
    let empty = invitations.is_empty();
    let org_id = org.id.to_string();
    view! {
        <section class="card">
            <h2>"Pending invitations"</h2>
            <Show when=move || empty>
                <p class="muted">"No pending invitations. Invitations you create appear here until they are accepted or expire."</p>
            </Show>
            <Show when=move || !empty>
                <div class="table-wrap">
                    <table>
                        <thead><tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col" class="hide-narrow">"Invited by"</th><th scope="col" class="hide-narrow">"Expires"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                        <tbody>
                            {invitations
                                .clone()
                                .into_iter()
                                .map(|inv| {
                                    let org_id = org_id.clone();
                                    view! {
                                        <tr>
                                            <td>{inv.email.clone()}</td>
                                            <td>{inv.role.label()}</td>
                                            <td class="hide-narrow">{inv.invited_by.clone().unwrap_or_else(|| "an API key".into())}</td>
                                            <td class="small hide-narrow">{when(inv.expires_at)}</td>
                                            <td class="actions">
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="org" value=org_id />
                                                    <input type="hidden" name="id" value=inv.id.to_string() />
                                                    <button type="submit" class="button small">"Withdraw"</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </div>
            </Show>
        </section>
    }
}

/// `/invite/:token`: what the invitation offers, and how to accept it.
#[component]
pub fn AcceptInvitationPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let accept = ServerAction::<AcceptInvitation>::new();
    let error = action_error(accept);
    let data = Resource::new(token, |token| async move {
        let preview = get_invitation(token).await;
        let me = get_me().await.ok().flatten();
        (preview, me)
    });
    view! {
        <Title text="Invitation" />
        <div class="centered">
            <div class="card narrow">
                <h1 class="brandmark">"Mino"</h1>
                <Suspense fallback=|| view! { <Loading /> }>
                    {move || Suspend::new(async move {
                        let (preview, me) = data.await;
                        match preview {
                            Err(e) => {
                                crate::app::components::not_found::set_status(e.status());
                                view! {
                                    <h2>"This invitation can't be used"</h2>
                                    <ErrorBox error=e />
                                    <p><a href="/">"Go to Mino"</a></p>
                                }
                                .into_any()
                            }
                            Ok(p) => {
                                let here = format!("/invite/{}", token());
                                let email_q = p.email.clone();
                                view! {
                                    <h2>"Join " {p.org_name.clone()}</h2>
                                    <p>
                                        {p.invited_by.clone().unwrap_or_else(|| "An admin".into())}
                                        " invited " <strong>{p.email.clone()}</strong> " as "
                                        <strong>{p.role.label().to_lowercase()}</strong> "."
                                    </p>
                                    <p class="muted small">"Valid until " {when(p.expires_at)}</p>
                                    <FormError error />
                                    {match me {
                                        Some(me) => view! {
                                            <p class="muted">"Signed in as " {me.user.email.clone()}</p>
                                            <ActionForm action=accept>
                                                <input type="hidden" name="token" value=token() />
                                                <button type="submit" class="button primary wide">"Accept invitation"</button>
                                            </ActionForm>
                                        }
                                        .into_any(),
                                        None => view! {
                                            <a class="button primary wide" href=format!("/signup?next={here}&email={email_q}")>"Create an account to accept"</a>
                                            <p class="muted">"Already have an account? " <a href=format!("/login?next={here}")>"Sign in"</a></p>
                                        }
                                        .into_any(),
                                    }}
                                }
                                .into_any()
                            }
                        }
                    })}
                </Suspense>
            </div>
        </div>
    }
}
