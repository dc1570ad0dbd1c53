//! evaluation_sets: named, versioned sets of a batch's rows.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::EvaluationSet;

#[derive(sqlx::FromRow)]
struct SetRow {
    id: Uuid,
    batch_id: Uuid,
    name: String,
    version: i32,
    row_indexes: Vec<i32>,
    source: Json<serde_json::Value>,
    created_by_name: String,
    created_at: DateTime<Utc>,
}

impl From<SetRow> for EvaluationSet {
    fn from(r: SetRow) -> Self {
        EvaluationSet {
            id: r.id,
            batch_id: r.batch_id,
            name: r.name,
            version: r.version,
            size: r.row_indexes.len() as i64,
            rows: r.row_indexes,
            source: r.source.0,
            created_by_name: r.created_by_name,
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str =
    "id, batch_id, name, version, row_indexes, source, created_by_name, created_at";

/// Saves a set under `name`: its first version, or the name's next one.
/// The batch row is locked by the caller, so two saves of one name can't
/// take the same number.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    batch_id: Uuid,
    name: &str,
    rows: &[i32],
    source: &serde_json::Value,
    created_by: Option<Uuid>,
    created_by_name: &str,
) -> sqlx::Result<EvaluationSet> {
    let row: SetRow = sqlx::query_as(&format!(
        "insert into evaluation_sets (org_id, batch_id, name, version, row_indexes, source,
                                      created_by, created_by_name)
         values ($1, $2, $3,
                 coalesce((select max(version) from evaluation_sets
                           where batch_id = $2 and name = $3), 0) + 1,
                 $4, $5, $6, $7)
         returning {COLUMNS}"
    ))
    .bind(org_id)
    .bind(batch_id)
    .bind(name)
    .bind(rows)
    .bind(Json(source))
    .bind(created_by)
    .bind(created_by_name)
    .fetch_one(db)
    .await?;
    Ok(row.into())
}

/// The latest version of each of the batch's sets, by name.
pub async fn list_latest(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    batch_id: Uuid,
) -> sqlx::Result<Vec<EvaluationSet>> {
    let rows: Vec<SetRow> = sqlx::query_as(&format!(
        "select distinct on (name) {COLUMNS} from evaluation_sets
         where org_id = $1 and batch_id = $2
         order by name, version desc"
    ))
    .bind(org_id)
    .bind(batch_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn fetch(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<EvaluationSet>> {
    let row: Option<SetRow> = sqlx::query_as(&format!(
        "select {COLUMNS} from evaluation_sets where org_id = $1 and id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// The organization a set belongs to, to build the caller's context.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from evaluation_sets where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Deletes one version of a set.
pub async fn delete(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("delete from evaluation_sets where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected()
            == 1,
    )
}
