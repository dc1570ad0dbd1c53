//! Organizations: who can see which, creating (creator is owner), renaming,
//! plan limits, deleting.

use sqlx::PgPool;
use uuid::Uuid;

use serde_json::json;

use super::audit::{self, Change};
use super::parse_name;
use crate::error::AppError;
use crate::model::{Organization, PlanLimits};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;

fn not_found() -> AppError {
    AppError::NotFound("Organization".into())
}

/// The caller inside the organization named by `org_ref` (an id or a slug).
/// Non-members and keys of other organizations get 404, exactly like an
/// organization that does not exist.
pub async fn org_ctx(db: &PgPool, actor: &Actor, org_ref: &str) -> Result<OrgCtx, AppError> {
    let org_id = db::orgs::fetch_id_by_ref(db, org_ref)
        .await?
        .ok_or_else(not_found)?;
    org_ctx_by_id(db, actor, org_id).await
}

/// The caller inside organization `org_id`: 404 for a non-member or another organization's key.
pub async fn org_ctx_by_id(db: &PgPool, actor: &Actor, org_id: Uuid) -> Result<OrgCtx, AppError> {
    match actor {
        Actor::User { id } => {
            let role = db::memberships::fetch_role(db, org_id, *id)
                .await?
                .ok_or_else(not_found)?;
            Ok(OrgCtx::member(org_id, *id, role))
        }
        Actor::ApiKey {
            org_id: key_org, ..
        } if *key_org == org_id => Ok(OrgCtx::key(org_id, actor.clone())),
        Actor::ApiKey { .. } => Err(not_found()),
        // Mino's own work builds its context with `OrgCtx::system`.
        Actor::System => Err(not_found()),
    }
}

/// The caller inside the organization that owns a resource. Anyone outside
/// it gets `missing` — the resource's own 404, as if it did not exist.
pub async fn resource_ctx(
    db: &PgPool,
    actor: &Actor,
    org_id: Uuid,
    missing: fn() -> AppError,
) -> Result<OrgCtx, AppError> {
    org_ctx_by_id(db, actor, org_id).await.map_err(|e| match e {
        AppError::NotFound(_) => missing(),
        other => other,
    })
}

/// The caller's organizations (a key: its own).
pub async fn list(db: &PgPool, actor: &Actor) -> Result<Vec<Organization>, AppError> {
    let rows = match actor {
        Actor::User { id } => db::orgs::fetch_for_user(db, *id).await?,
        Actor::ApiKey { org_id, .. } => db::orgs::fetch_one(db, *org_id)
            .await?
            .into_iter()
            .collect(),
        // Mino is a member of no organization.
        Actor::System => Vec::new(),
    };
    Ok(rows.into_iter().map(Organization::from).collect())
}

/// The organization as the caller sees it.
pub async fn get(db: &PgPool, ctx: &OrgCtx) -> Result<Organization, AppError> {
    require(ctx, Permission::ViewOrganization)?;
    let row = match ctx.actor() {
        Actor::User { id } => db::orgs::fetch_one_for_user(db, *id, ctx.org_id()).await?,
        Actor::ApiKey { .. } | Actor::System => db::orgs::fetch_one(db, ctx.org_id()).await?,
    };
    row.map(Organization::from).ok_or_else(not_found)
}

/// A URL-friendly form of a name: lowercase ASCII letters, digits and dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "org".into()
    } else {
        slug
    }
}

/// Creates an organization with the caller as its owner.
pub async fn create(db: &PgPool, actor: &Actor, name: &str) -> Result<Organization, AppError> {
    let user_id = actor.require_user()?;
    let name = parse_name(name, "name")?;
    let base = slugify(&name);
    // Two people creating "Acme" at the same moment can both find `acme`
    // free; the unique index lets one win, and the other takes the next
    // free slug in a fresh transaction (the failed one rolls back on drop).
    for _ in 0..MAX_SLUG_ATTEMPTS {
        let mut tx = db.begin().await?;
        let mut slug = base.clone();
        let mut n = 1;
        while db::orgs::slug_taken(&mut *tx, &slug).await? {
            n += 1;
            slug = format!("{base}-{n}");
        }
        let org_id = match db::orgs::insert_org(&mut *tx, &name, &slug).await {
            Ok(id) => id,
            Err(e) if db::unique_violation(&e).as_deref() == Some("organizations_slug_key") => {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        db::memberships::upsert_membership(&mut *tx, org_id, user_id, crate::model::Role::Owner)
            .await?;
        audit::record_at(
            &mut *tx,
            Some(org_id),
            actor,
            Change::new("organization.create", "organization", org_id)
                .after(json!({"name": name, "slug": slug})),
        )
        .await?;
        tx.commit().await?;
        let row = db::orgs::fetch_one_for_user(db, user_id, org_id).await?;
        return row.map(Organization::from).ok_or_else(not_found);
    }
    Err(AppError::Conflict(
        "Many organizations with this name are being created right now; try again.".into(),
    ))
}

/// How often creating an organization retries after losing a slug race.
const MAX_SLUG_ATTEMPTS: usize = 20;

/// Renames the organization (admins).
pub async fn rename(db: &PgPool, ctx: &OrgCtx, name: &str) -> Result<Organization, AppError> {
    update(
        db,
        ctx,
        OrgChanges {
            name: Some(name.to_string()),
            retention_days: None,
        },
    )
    .await
}

/// Least and most days an organization may keep screenshots and pages.
pub const RETENTION_DAYS: std::ops::RangeInclusive<i32> = 1..=3650;

/// What an admin may change about the organization; `None` keeps it.
#[derive(Debug, Default)]
pub struct OrgChanges {
    pub name: Option<String>,
    /// Days attempt screenshots and kept pages are kept.
    pub retention_days: Option<i32>,
}

/// Renames the organization and/or sets its retention (admins), all or
/// nothing, with one audit entry per change.
pub async fn update(
    db: &PgPool,
    ctx: &OrgCtx,
    changes: OrgChanges,
) -> Result<Organization, AppError> {
    require(ctx, Permission::EditOrganization)?;
    if changes.name.is_none() && changes.retention_days.is_none() {
        return Err(AppError::field(
            "name",
            "Give a new name or retention_days (or both).",
        ));
    }
    let name = changes
        .name
        .as_deref()
        .map(|n| parse_name(n, "name"))
        .transpose();
    let days = changes
        .retention_days
        .map(|d| {
            if RETENTION_DAYS.contains(&d) {
                Ok(d)
            } else {
                Err(AppError::field(
                    "retention_days",
                    format!(
                        "Use a number of days from {} to {}.",
                        RETENTION_DAYS.start(),
                        RETENTION_DAYS.end()
                    ),
                ))
            }
        })
        .transpose();
    super::collect_fields([name.clone().map(|_| ()), days.clone().map(|_| ())])?;
    let (name, days) = (name?, days?);
    let old = get(db, ctx).await?;
    let mut tx = db.begin().await?;
    if let Some(name) = name {
        db::orgs::update_name(&mut *tx, ctx.org_id(), &name).await?;
        audit::record(
            &mut *tx,
            ctx,
            Change::new("organization.rename", "organization", ctx.org_id())
                .before(json!({"name": old.name}))
                .after(json!({"name": name})),
        )
        .await?;
    }
    if let Some(days) = days {
        db::orgs::update_retention(&mut *tx, ctx.org_id(), days).await?;
        audit::record(
            &mut *tx,
            ctx,
            Change::new("organization.set_retention", "organization", ctx.org_id())
                .before(json!({"retention_days": old.retention_days}))
                .after(json!({"retention_days": days})),
        )
        .await?;
    }
    tx.commit().await?;
    get(db, ctx).await
}

/// Plan limits; returning `QUOTA_EXCEEDED` when hit is up to the features
/// that consume them (projects, executions); the request rates are applied
/// by [`crate::server::ratelimit`].
pub async fn update_limits(
    db: &PgPool,
    ctx: &OrgCtx,
    max_projects: i32,
    max_executions_per_month: i32,
    rates: (Option<i32>, Option<i32>),
    max_concurrency: Option<i32>,
) -> Result<Organization, AppError> {
    require(ctx, Permission::ManageBilling)?;
    let old = get(db, ctx).await?;
    let new = PlanLimits {
        max_projects,
        max_executions_per_month,
        api_requests_per_minute: rates.0.unwrap_or(old.api_requests_per_minute),
        key_requests_per_minute: rates.1.unwrap_or(old.key_requests_per_minute),
        max_concurrency: max_concurrency.unwrap_or(old.max_concurrency),
    };
    let check = |v: i32, least: i32, field: &str| {
        if (least..=1_000_000).contains(&v) {
            Ok(())
        } else {
            Err(AppError::field(
                field,
                format!("Use a number from {least} to 1,000,000."),
            ))
        }
    };
    super::collect_fields([
        check(new.max_projects, 0, "max_projects"),
        check(new.max_executions_per_month, 0, "max_executions_per_month"),
        // A rate of zero would lock every program out, including the one
        // meant to raise it.
        check(new.api_requests_per_minute, 1, "api_requests_per_minute"),
        check(new.key_requests_per_minute, 1, "key_requests_per_minute"),
        if (1..=crate::model::Concurrency::MAX).contains(&new.max_concurrency) {
            Ok(())
        } else {
            Err(AppError::field(
                "max_concurrency",
                format!("Use a number from 1 to {}.", crate::model::Concurrency::MAX),
            ))
        },
    ])?;
    let mut tx = db.begin().await?;
    db::orgs::update_limits(&mut *tx, ctx.org_id(), &new).await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("organization.update_limits", "organization", ctx.org_id())
            .before(json!(PlanLimits::from(&old)))
            .after(json!(new)),
    )
    .await?;
    tx.commit().await?;
    get(db, ctx).await
}

/// Deletes the organization and everything in it. When `confirm_name` is
/// given (the UI always gives it) it must equal the current name.
pub async fn delete(db: &PgPool, ctx: &OrgCtx, confirm_name: Option<&str>) -> Result<(), AppError> {
    require(ctx, Permission::DeleteOrganization)?;
    let org = get(db, ctx).await?;
    if let Some(confirm) = confirm_name {
        if confirm.trim() != org.name {
            return Err(AppError::field(
                "confirm",
                format!("Type the organization's name, {:?}, to confirm.", org.name),
            ));
        }
    }
    let mut tx = db.begin().await?;
    db::orgs::delete_org(&mut *tx, ctx.org_id()).await?;
    // The organization's own log goes with it; this entry, kept with the
    // account changes, is the trace that it existed and who deleted it.
    audit::record_for_account(
        &mut *tx,
        ctx.actor(),
        Change::new("organization.delete", "organization", ctx.org_id())
            .before(json!({"name": org.name, "slug": org.slug})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_url_friendly() {
        assert_eq!(slugify("Acme Research, Inc."), "acme-research-inc");
        assert_eq!(slugify("  --  "), "org");
        assert_eq!(slugify("Été 2026"), "t-2026");
        assert!(slugify(&"a".repeat(100)).len() <= 40);
    }
}
