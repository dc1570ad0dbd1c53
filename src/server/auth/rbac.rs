//! Who may do what: the role→permission table of seed 002 §1.1.2 and the
//! scope each permission needs when the caller is an API key. This is the
//! only place those rules live; every service operation calls [`require`].

use uuid::Uuid;

use crate::error::AppError;
use crate::model::{Role, Scope};

/// One thing a caller can try to do inside an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ViewOrganization,
    ViewMembers,
    ViewProjects,
    CreateProject,
    EditProject,
    DeleteProject,
    RunExecution,
    ViewResults,
    EditGroundTruth,
    ExportData,
    InviteMembers,
    ChangeRoles,
    RemoveMembers,
    ManageApiKeys,
    ManageWebhooks,
    ManageModelProviders,
    ViewAuditLog,
    EditOrganization,
    ManageBilling,
    DeleteOrganization,
}

impl Permission {
    pub const ALL: [Permission; 20] = [
        Permission::ViewOrganization,
        Permission::ViewMembers,
        Permission::ViewProjects,
        Permission::CreateProject,
        Permission::EditProject,
        Permission::DeleteProject,
        Permission::RunExecution,
        Permission::ViewResults,
        Permission::EditGroundTruth,
        Permission::ExportData,
        Permission::InviteMembers,
        Permission::ChangeRoles,
        Permission::RemoveMembers,
        Permission::ManageApiKeys,
        Permission::ManageWebhooks,
        Permission::ManageModelProviders,
        Permission::ViewAuditLog,
        Permission::EditOrganization,
        Permission::ManageBilling,
        Permission::DeleteOrganization,
    ];
}

/// The least role that holds each permission, and the scope an API key
/// needs for it (`None`: keys can never do it — owner powers stay with
/// people).
const TABLE: &[(Permission, Role, Option<Scope>)] = {
    use Permission::*;
    &[
        (ViewOrganization, Role::Viewer, Some(Scope::Read)),
        (ViewMembers, Role::Viewer, Some(Scope::Read)),
        (ViewProjects, Role::Viewer, Some(Scope::Read)),
        (ViewResults, Role::Viewer, Some(Scope::Read)),
        (ExportData, Role::Viewer, Some(Scope::Read)),
        (CreateProject, Role::Member, Some(Scope::Write)),
        (EditProject, Role::Member, Some(Scope::Write)),
        (EditGroundTruth, Role::Member, Some(Scope::Write)),
        (RunExecution, Role::Member, Some(Scope::Execute)),
        (DeleteProject, Role::Admin, Some(Scope::Admin)),
        (InviteMembers, Role::Admin, Some(Scope::Admin)),
        (ChangeRoles, Role::Admin, Some(Scope::Admin)),
        (RemoveMembers, Role::Admin, Some(Scope::Admin)),
        (ManageApiKeys, Role::Admin, Some(Scope::Admin)),
        (ManageWebhooks, Role::Admin, Some(Scope::Admin)),
        (ManageModelProviders, Role::Admin, Some(Scope::Admin)),
        (ViewAuditLog, Role::Admin, Some(Scope::Admin)),
        (EditOrganization, Role::Admin, Some(Scope::Admin)),
        (ManageBilling, Role::Owner, None),
        (DeleteOrganization, Role::Owner, None),
    ]
};

fn rule(p: Permission) -> (Role, Option<Scope>) {
    TABLE
        .iter()
        .find(|(perm, _, _)| *perm == p)
        .map(|(_, role, scope)| (*role, *scope))
        // Every variant has a row (checked by a test); an unlisted one is
        // owner-only, the safe direction.
        .unwrap_or((Role::Owner, None))
}

/// Whether a member with `role` holds `p`.
pub fn role_allows(role: Role, p: Permission) -> bool {
    role >= rule(p).0
}

/// Whether a key with `scopes` holds `p`. Every key can read: a key that
/// may write or execute but not see what it changed would be useless.
pub fn scopes_allow(scopes: &[Scope], p: Permission) -> bool {
    match rule(p).1 {
        Some(Scope::Read) => !scopes.is_empty(),
        Some(needed) => scopes.contains(&needed),
        None => false,
    }
}

/// The caller of a service operation: a signed-in person, an API key, or
/// Mino itself (benchmarks, the demo loader, webhook bodies built outside
/// any request) — the last only inside an [`OrgCtx::system`].
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    User {
        id: Uuid,
    },
    ApiKey {
        id: Uuid,
        org_id: Uuid,
        scopes: Vec<Scope>,
    },
    System,
}

impl Actor {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Actor::User { id } => Some(*id),
            Actor::ApiKey { .. } | Actor::System => None,
        }
    }

    /// The API key acting, if a key is.
    pub fn key_id(&self) -> Option<Uuid> {
        match self {
            Actor::ApiKey { id, .. } => Some(*id),
            Actor::User { .. } | Actor::System => None,
        }
    }

    /// For operations only people can do (creating organizations, accepting
    /// invitations, changing passwords).
    pub fn require_user(&self) -> Result<Uuid, AppError> {
        self.user_id().ok_or_else(|| {
            AppError::forbidden("This needs a signed-in user; API keys can't do it.")
        })
    }
}

/// A caller inside one organization, with what they hold there. Built by
/// `service::orgs::org_ctx` (which answers 404 to non-members) through
/// [`OrgCtx::member`] and [`OrgCtx::key`], or by [`OrgCtx::system`] for work
/// Mino does itself.
#[derive(Debug, Clone)]
pub struct OrgCtx {
    org_id: Uuid,
    actor: Actor,
    /// The member's role; `None` for API keys and Mino itself.
    role: Option<Role>,
    /// The actor's display name, looked up the first time it is needed.
    name: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl OrgCtx {
    fn new(org_id: Uuid, actor: Actor, role: Option<Role>) -> OrgCtx {
        OrgCtx {
            org_id,
            actor,
            role,
            name: Default::default(),
        }
    }

    /// A member of the organization with their role (the caller checked
    /// the membership).
    pub fn member(org_id: Uuid, user_id: Uuid, role: Role) -> OrgCtx {
        Self::new(org_id, Actor::User { id: user_id }, Some(role))
    }

    /// An API key of the organization (the caller checked it belongs).
    pub fn key(org_id: Uuid, key: Actor) -> OrgCtx {
        debug_assert!(matches!(key, Actor::ApiKey { .. }));
        Self::new(org_id, key, None)
    }

    /// Mino itself working in the organization: holds every permission,
    /// and is named "Mino" in logs and events.
    pub fn system(org_id: Uuid) -> OrgCtx {
        Self::new(org_id, Actor::System, None)
    }

    pub fn org_id(&self) -> Uuid {
        self.org_id
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// Who is acting, as people read it in event logs: the user's name,
    /// "API key “ci”", or "Mino"; looked up once per context.
    pub async fn actor_name(&self, db: &sqlx::PgPool) -> Result<&str, AppError> {
        let name = self
            .name
            .get_or_try_init(|| async {
                Ok::<_, AppError>(match &self.actor {
                    Actor::User { id } => crate::server::db::users::fetch_by_id(db, *id)
                        .await?
                        .map(|u| u.name)
                        .unwrap_or_else(|| "A former user".into()),
                    Actor::ApiKey { id, .. } => {
                        crate::server::db::api_keys::fetch_one(db, self.org_id, *id)
                            .await?
                            .map(|k| format!("API key “{}”", k.name))
                            .unwrap_or_else(|| "An API key".into())
                    }
                    Actor::System => "Mino".into(),
                })
            })
            .await?;
        Ok(name.as_str())
    }
}

/// Fails with 403 unless the caller holds `p` in this organization.
pub fn require(ctx: &OrgCtx, p: Permission) -> Result<(), AppError> {
    let allowed = match (ctx.actor(), ctx.role()) {
        (Actor::User { .. }, Some(role)) => role_allows(role, p),
        (Actor::ApiKey { scopes, .. }, _) => scopes_allow(scopes, p),
        (Actor::User { .. }, None) => false,
        (Actor::System, _) => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(AppError::forbidden(denial_message(ctx, p)))
    }
}

fn denial_message(ctx: &OrgCtx, p: Permission) -> String {
    let (role, scope) = rule(p);
    match (ctx.actor(), scope) {
        (Actor::ApiKey { .. }, Some(s)) => {
            format!("This API key lacks the `{}` scope.", s.as_str())
        }
        (Actor::ApiKey { .. }, None) => "API keys can't do this; sign in as an owner.".into(),
        _ => format!(
            "Your role can't do this; it needs {} or above.",
            role.label().to_lowercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn every_permission_has_exactly_one_row() {
        for p in Permission::ALL {
            assert_eq!(TABLE.iter().filter(|(q, _, _)| *q == p).count(), 1, "{p:?}");
        }
    }

    #[test]
    fn matrix_of_seed_002() {
        // (permission, viewer, member, admin, owner)
        let expected = [
            (ViewProjects, true, true, true, true),
            (CreateProject, false, true, true, true),
            (EditProject, false, true, true, true),
            (DeleteProject, false, false, true, true),
            (RunExecution, false, true, true, true),
            (ViewResults, true, true, true, true),
            (EditGroundTruth, false, true, true, true),
            (ExportData, true, true, true, true),
            (InviteMembers, false, false, true, true),
            (ChangeRoles, false, false, true, true),
            (ManageBilling, false, false, false, true),
            (DeleteOrganization, false, false, false, true),
        ];
        for (p, v, m, a, o) in expected {
            assert_eq!(role_allows(Role::Viewer, p), v, "viewer {p:?}");
            assert_eq!(role_allows(Role::Member, p), m, "member {p:?}");
            assert_eq!(role_allows(Role::Admin, p), a, "admin {p:?}");
            assert_eq!(role_allows(Role::Owner, p), o, "owner {p:?}");
        }
    }

    #[test]
    fn keys_never_get_owner_powers() {
        let all = Scope::ALL.to_vec();
        assert!(!scopes_allow(&all, DeleteOrganization));
        assert!(!scopes_allow(&all, ManageBilling));
        assert!(scopes_allow(&[Scope::Read], ViewMembers));
        assert!(!scopes_allow(&[Scope::Read], InviteMembers));
        assert!(
            scopes_allow(&[Scope::Write], ViewProjects),
            "every key reads"
        );
        assert!(!scopes_allow(&[Scope::Write], RunExecution));
    }
}
