//! audit_log: one entry per change, written in the change's transaction,
//! and read back newest first through a filter.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, QueryBuilder};
use uuid::Uuid;

use crate::model::AuditEntry;

/// An entry to write. The actor's name is read in the same statement (a
/// person's name and email, or a key's name and prefix), so an entry never
/// costs a round trip of its own; `fallback_name` names anyone else.
pub struct NewEntry<'a> {
    pub org_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub actor_key_id: Option<Uuid>,
    pub fallback_name: &'a str,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Writes one entry.
pub async fn insert(db: impl PgExecutor<'_>, e: NewEntry<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into audit_log (org_id, actor_user_id, actor_key_id, actor_name, action,
                                resource_type, resource_id, before, after, ip, user_agent)
         values ($1, $2, $3,
                 coalesce((select name || ' <' || email || '>' from users where id = $2),
                          (select 'API key “' || name || '” (' || prefix || '…)' from api_keys where id = $3),
                          $11),
                 $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.org_id)
    .bind(e.actor_user_id)
    .bind(e.actor_key_id)
    .bind(e.action)
    .bind(e.resource_type)
    .bind(e.resource_id)
    .bind(e.before)
    .bind(e.after)
    .bind(e.ip)
    .bind(e.user_agent)
    .bind(e.fallback_name)
    .execute(db)
    .await?;
    Ok(())
}

/// How an entry's action is matched.
pub enum ActionMatch<'a> {
    Exact(&'a str),
    /// Actions starting with `prefix.` (`project` matches `project.create`).
    Prefix(&'a str),
}

/// Which entries of one organization to read; every part but the
/// organization optional.
pub struct EntryFilter<'a> {
    pub org_id: Uuid,
    /// A person or an API key.
    pub actor: Option<Uuid>,
    pub action: Option<ActionMatch<'a>>,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this id (the page cursor).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    at: DateTime<Utc>,
    actor_user_id: Option<Uuid>,
    actor_key_id: Option<Uuid>,
    actor_name: String,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// The matching entries, newest first.
pub async fn list(db: impl PgExecutor<'_>, f: &EntryFilter<'_>) -> sqlx::Result<Vec<AuditEntry>> {
    let mut q = QueryBuilder::new(
        "select id, at, actor_user_id, actor_key_id, actor_name, action, resource_type,
                resource_id, before, after, ip, user_agent
         from audit_log where org_id = ",
    );
    q.push_bind(f.org_id);
    if let Some(id) = f.actor {
        q.push(" and (actor_user_id = ").push_bind(id);
        q.push(" or actor_key_id = ").push_bind(id).push(")");
    }
    match f.action {
        Some(ActionMatch::Prefix(prefix)) => {
            // LIKE's wildcards match literally (`api_key.` has an `_`).
            let literal = prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            q.push(" and action like ")
                .push_bind(format!("{literal}.%"));
        }
        Some(ActionMatch::Exact(action)) => {
            q.push(" and action = ").push_bind(action.to_string());
        }
        None => {}
    }
    if let Some(t) = f.resource_type {
        q.push(" and resource_type = ").push_bind(t.to_string());
    }
    if let Some(r) = f.resource_id {
        q.push(" and resource_id = ").push_bind(r.to_string());
    }
    if let Some(s) = f.since {
        q.push(" and at >= ").push_bind(s);
    }
    if let Some(u) = f.until {
        q.push(" and at < ").push_bind(u);
    }
    if let Some(b) = f.before_id {
        q.push(" and id < ").push_bind(b);
    }
    q.push(" order by id desc limit ").push_bind(f.limit);
    let rows: Vec<EntryRow> = q.build_query_as().fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            actor_user_id: r.actor_user_id,
            actor_key_id: r.actor_key_id,
            actor_name: r.actor_name,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            before: r.before,
            after: r.after,
            ip: r.ip,
            user_agent: r.user_agent,
        })
        .collect())
}
