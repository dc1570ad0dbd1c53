//! API keys: created by admins with scopes and an optional expiry, shown
//! once, stored as prefix + SHA-256, revocable.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use serde_json::json;

use super::audit::{self, Change};
use super::{collect_fields, parse_name};
use crate::error::AppError;
use crate::model::{ApiKey, CreatedApiKey, Scope};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::auth::secret;
use crate::server::db;

pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn parse_scopes(raw: &[String]) -> Result<Vec<Scope>, AppError> {
    if raw.is_empty() {
        return Err(AppError::field("scopes", "Choose at least one scope."));
    }
    let mut scopes = Vec::new();
    for s in raw {
        let scope = Scope::parse(s.trim()).ok_or_else(|| {
            AppError::field(
                "scopes",
                format!("Unknown scope {s:?}; use read, write, execute or admin."),
            )
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

/// Creates a key with the given scopes (never more than the caller holds); the secret is in the answer only.
pub async fn create(
    db: &PgPool,
    ctx: &OrgCtx,
    input: NewApiKey,
) -> Result<CreatedApiKey, AppError> {
    require(ctx, Permission::ManageApiKeys)?;
    let name = parse_name(&input.name, "name");
    let scopes = parse_scopes(&input.scopes);
    let expiry = match input.expires_at {
        Some(t) if t <= Utc::now() => Err(AppError::field(
            "expires_at",
            "Choose a time in the future.",
        )),
        _ => Ok(()),
    };
    collect_fields([
        name.as_ref().map(|_| ()).map_err(Clone::clone),
        scopes.as_ref().map(|_| ()).map_err(Clone::clone),
        expiry,
    ])?;
    let (name, scopes) = (name?, scopes?);
    // A key can't mint a key more powerful than itself (every key reads).
    if let Actor::ApiKey { scopes: own, .. } = ctx.actor() {
        if let Some(extra) = scopes
            .iter()
            .find(|s| **s != Scope::Read && !own.contains(s))
        {
            return Err(AppError::forbidden(format!(
                "This API key lacks the `{}` scope it tried to grant.",
                extra.as_str()
            )));
        }
    }
    let (secret_value, prefix, digest) = secret::new_api_key();
    let mut tx = db.begin().await?;
    let id = db::api_keys::insert_key(
        &mut *tx,
        ctx.org_id(),
        &name,
        &prefix,
        &digest,
        &scopes,
        ctx.actor().user_id(),
        input.expires_at,
    )
    .await?;
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    audit::record(
        &mut *tx,
        ctx,
        Change::new("api_key.create", "api_key", id).after(json!({
            "name": name, "prefix": prefix, "scopes": scope_names, "expires_at": input.expires_at,
        })),
    )
    .await?;
    tx.commit().await?;
    let key = db::api_keys::fetch_one(db, ctx.org_id(), id)
        .await?
        .ok_or_else(|| AppError::NotFound("API key".into()))?;
    Ok(CreatedApiKey {
        key: key.into_model(),
        secret: secret_value,
    })
}

/// The organization's keys (admins).
pub async fn list(db: &PgPool, ctx: &OrgCtx) -> Result<Vec<ApiKey>, AppError> {
    require(ctx, Permission::ManageApiKeys)?;
    Ok(db::api_keys::fetch_for_org(db, ctx.org_id())
        .await?
        .into_iter()
        .map(|k| k.into_model())
        .collect())
}

/// Revokes a key; it stops working at once.
pub async fn revoke(db: &PgPool, actor: &Actor, key_id: Uuid) -> Result<(), AppError> {
    let not_found = || AppError::NotFound("API key".into());
    let org_id = db::api_keys::fetch_org_id(db, key_id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::org_ctx_by_id(db, actor, org_id)
        .await
        .map_err(|_| not_found())?;
    require(&ctx, Permission::ManageApiKeys)?;
    let mut tx = db.begin().await?;
    db::api_keys::mark_revoked(&mut *tx, org_id, key_id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("api_key.revoke", "api_key", key_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns a presented `mino_pk_…` into the actor it stands for.
pub async fn authenticate(db: &PgPool, presented: &str) -> Result<Actor, AppError> {
    let invalid = || AppError::Unauthorized("The API key is not valid.".into());
    let prefix = secret::api_key_prefix(presented).ok_or_else(invalid)?;
    let key = db::api_keys::fetch_by_prefix(db, prefix)
        .await?
        .ok_or_else(invalid)?;
    if !secret::digests_match(&secret::sha256_hex(presented), &key.key_hash) {
        return Err(invalid());
    }
    if key.revoked_at.is_some() {
        return Err(AppError::Unauthorized("This API key was revoked.".into()));
    }
    if let Some(exp) = key.expires_at {
        if exp <= Utc::now() {
            return Err(AppError::Unauthorized(format!(
                "This API key expired at {}.",
                exp.format("%Y-%m-%d %H:%M UTC")
            )));
        }
    }
    db::api_keys::touch_last_used(db, key.id).await?;
    Ok(Actor::ApiKey {
        id: key.id,
        org_id: key.org_id,
        scopes: key.scopes(),
    })
}
