//! Types shared by the server and the browser: what server functions and the
//! REST API return. No database types here, so this compiles to WASM.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A member's role, ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Member => "Member",
            Role::Admin => "Admin",
            Role::Owner => "Owner",
        }
    }
}

/// What an API key may do. A key never gets owner powers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Execute,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Execute, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Execute => "execute",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scope::Read => "read projects, results and team (every key can read)",
            Scope::Write => "create and edit projects and ground truth",
            Scope::Execute => "start and control executions",
            Scope::Admin => "invite, change roles, manage keys, delete projects",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An organization as seen by one caller: includes the caller's role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub role: Role,
    pub max_projects: i32,
    pub max_executions_per_month: i32,
    /// REST requests per minute for all the organization's API keys together.
    pub api_requests_per_minute: i32,
    /// REST requests per minute for each API key.
    pub key_requests_per_minute: i32,
    /// The most jobs one of its runs may have in flight (plan limit; a
    /// server's `MINO_MAX_CONCURRENCY` may cap it lower).
    pub max_concurrency: i32,
    /// Days the organization keeps attempt screenshots and kept pages.
    pub retention_days: i32,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

/// An organization's plan limits: what it may create and how fast its API
/// keys may call.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PlanLimits {
    pub max_projects: i32,
    pub max_executions_per_month: i32,
    pub api_requests_per_minute: i32,
    pub key_requests_per_minute: i32,
    pub max_concurrency: i32,
}

impl From<&Organization> for PlanLimits {
    fn from(o: &Organization) -> PlanLimits {
        PlanLimits {
            max_projects: o.max_projects,
            max_executions_per_month: o.max_executions_per_month,
            api_requests_per_minute: o.api_requests_per_minute,
            key_requests_per_minute: o.key_requests_per_minute,
            max_concurrency: o.max_concurrency,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Only present in the answer to the request that created it: the token
    /// is stored hashed, so the link can't be shown again.
    pub link: Option<String>,
    pub token: Option<String>,
    /// Only in the answer to the request that created it, when the server
    /// sends email (`MINO_SMTP_URL`): whether the invitation went out, and
    /// if not, why (the link above works either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emailed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_error: Option<String>,
}

/// What someone following an invitation link sees before accepting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct InvitationPreview {
    pub org_name: String,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, enough to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The answer to creating a key: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Who is calling: the signed-in user and their organizations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Me {
    pub user: User,
    pub orgs: Vec<Organization>,
    /// The slug of the organization this session looked at last, so `/`
    /// returns there.
    #[serde(default)]
    pub last_org: Option<String>,
}

/// A page of a list, as every list endpoint returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// One entry of an organization's audit log (`GET /orgs/{org}/audit-log`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The person who made the change, if a person did.
    pub actor_user_id: Option<Uuid>,
    /// The API key that made the change, if a key did.
    pub actor_key_id: Option<Uuid>,
    /// Who it was, as they were named then ("Ann <ann@example.com>", or
    /// "API key “ci” (mino_pk_ab…)").
    pub actor_name: String,
    /// `resource.verb`, e.g. `project.create`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An enum stored and sent as one of a fixed set of words: serde, the
/// OpenAPI schema and (on the server) a Postgres `text` column all use the
/// same spelling, and `parse` is the only way in from a string.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        text_column!($name);
    };
}

/// `Display` and, on the server, a Postgres `text` column for a type with
/// `as_str` and `parse`.
macro_rules! text_column {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "ssr")]
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        #[cfg(feature = "ssr")]
        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        #[cfg(feature = "ssr")]
        impl sqlx::Decode<'_, sqlx::Postgres> for $name {
            fn decode(
                value: sqlx::postgres::PgValueRef<'_>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                $name::parse(s).ok_or_else(|| {
                    format!("{s:?} is not a {} the database may hold", stringify!($name)).into()
                })
            }
        }
    };
}

mod analysis;
mod batches;
mod executions;
mod experiments;
mod exports;
mod ground_truth;
mod guide;
mod jobs;
mod projects;
mod providers;
mod usage;
mod webhooks;
pub use analysis::*;
pub use batches::*;
pub use executions::*;
pub use experiments::*;
pub use exports::*;
pub use ground_truth::*;
pub use guide::*;
pub use jobs::*;
pub use projects::*;
pub use providers::*;
pub use usage::*;
pub use webhooks::*;
