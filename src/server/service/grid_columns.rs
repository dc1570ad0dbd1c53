//! Each person's choice of results-grid columns per project: which are
//! shown and in which order. A preference, not shared data: it needs a
//! signed-in user to save, and viewing the project to read.

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::GridColumns;
use crate::server::auth::rbac::Actor;
use crate::server::db;

/// The caller's columns for a project's runs (every column, for API keys
/// and people who saved nothing).
pub async fn get(db: &PgPool, actor: &Actor, project_id: Uuid) -> Result<GridColumns, AppError> {
    let (ctx, _) = super::projects::project_ctx(db, actor, project_id).await?;
    let fields = field_names(db, ctx.org_id(), project_id).await?;
    let saved = match actor.user_id() {
        Some(user) => db::projects::fetch_grid_columns(db, ctx.org_id(), project_id, user).await?,
        None => None,
    };
    Ok(GridColumns::resolve(&fields, saved))
}

/// Saves which columns the caller sees, in order. Every name must be one
/// of the project's columns, each at most once; an empty list is refused
/// (the row number alone says nothing).
pub async fn save(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    shown: Vec<String>,
) -> Result<GridColumns, AppError> {
    let (ctx, _) = super::projects::project_ctx(db, actor, project_id).await?;
    let user = actor.require_user()?;
    let fields = field_names(db, ctx.org_id(), project_id).await?;
    let available = GridColumns::resolve(&fields, None).available;
    let shown: Vec<String> = shown.into_iter().map(|c| c.trim().to_string()).collect();
    if shown.is_empty() {
        return Err(AppError::field("shown", "Show at least one column."));
    }
    for (i, c) in shown.iter().enumerate() {
        if !available.contains(c) {
            return Err(AppError::field(
                "shown",
                format!(
                    "{c:?} is not a column of this project; use {}.",
                    available.join(", ")
                ),
            ));
        }
        if shown[..i].contains(c) {
            return Err(AppError::field("shown", format!("{c:?} is listed twice.")));
        }
    }
    let hidden: Vec<String> = available
        .iter()
        .filter(|c| !shown.contains(c))
        .cloned()
        .collect();
    db::projects::save_grid_columns(db, ctx.org_id(), project_id, user, &shown, &hidden).await?;
    Ok(GridColumns::resolve(&fields, Some((shown, hidden))))
}

async fn field_names(db: &PgPool, org_id: Uuid, project_id: Uuid) -> Result<Vec<String>, AppError> {
    Ok(db::projects::fetch_fields(db, org_id, project_id)
        .await?
        .into_iter()
        .map(|f| f.name)
        .collect())
}
