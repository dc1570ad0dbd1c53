//! The audit log (F16): every change made through the service layer leaves
//! one entry — who (person or key), what, on which resource, before and
//! after, from which address and client — written in the same transaction
//! as the change, so a change and its entry stand or fall together.
//!
//! The request's address and user agent reach the services through a
//! task-local set for each request (the `http::capture_request`
//! middleware calls [`with_request`]), so service signatures don't carry
//! HTTP details; work outside a request (the CLI, background tasks) simply
//! records none.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::paging;
use crate::error::AppError;
use crate::model::{AuditEntry, Page};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::csv;
use crate::server::db::{self, audit::ActionMatch};

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestMeta;
}

/// Runs a request's handler with its address and user agent available to
/// the audit entries it writes.
pub async fn with_request<F: std::future::Future>(meta: RequestMeta, handler: F) -> F::Output {
    REQUEST.scope(meta, handler).await
}

fn request_meta() -> RequestMeta {
    REQUEST.try_with(Clone::clone).unwrap_or_default()
}

/// Wraps work that a request hands to a spawned task (an upload's reader),
/// so its audit entry still names the request's address and client.
pub fn carry_request<F: std::future::Future>(
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    REQUEST.scope(request_meta(), work)
}

/// One change, as the service that made it describes it.
pub struct Change<'a> {
    /// `resource.verb`, e.g. `project.create`.
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Change<'a> {
    pub fn new(action: &'a str, resource_type: &'a str, resource_id: impl ToString) -> Self {
        Change {
            action,
            resource_type,
            resource_id: resource_id.to_string(),
            before: None,
            after: None,
        }
    }
    pub fn before(mut self, v: Value) -> Self {
        self.before = Some(v);
        self
    }
    pub fn after(mut self, v: Value) -> Self {
        self.after = Some(v);
        self
    }
}

/// Records a change to something inside the caller's organization.
pub async fn record(
    db: impl PgExecutor<'_>,
    ctx: &OrgCtx,
    change: Change<'_>,
) -> Result<(), AppError> {
    record_at(db, Some(ctx.org_id()), ctx.actor(), change).await
}

/// Records a change to an account (sign-up, password), which belongs to no
/// organization.
pub async fn record_for_account(
    db: impl PgExecutor<'_>,
    actor: &Actor,
    change: Change<'_>,
) -> Result<(), AppError> {
    record_at(db, None, actor, change).await
}

/// Records a change in `org_id` (or, with `None`, to an account) before the
/// caller's [`OrgCtx`] exists — creating the organization itself.
pub async fn record_at(
    db: impl PgExecutor<'_>,
    org_id: Option<Uuid>,
    actor: &Actor,
    change: Change<'_>,
) -> Result<(), AppError> {
    let meta = request_meta();
    db::audit::insert(
        db,
        db::audit::NewEntry {
            org_id,
            actor_user_id: actor.user_id(),
            actor_key_id: actor.key_id(),
            fallback_name: match actor {
                Actor::System => "Mino",
                _ => "unknown",
            },
            action: change.action,
            resource_type: change.resource_type,
            resource_id: &change.resource_id,
            before: change.before,
            after: change.after,
            ip: meta.ip,
            user_agent: meta.user_agent,
        },
    )
    .await?;
    Ok(())
}

/// What an admin filters the log by; every part optional.
#[derive(Debug, Default, Clone, serde::Deserialize, schemars::JsonSchema)]
pub struct AuditFilter {
    /// A user id, or an API key id.
    pub actor: Option<String>,
    /// An exact action (`project.create`) or a prefix ending in `.`
    /// (`project.`).
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// The newest entries first, a page at a time (the cursor is the last
/// entry's id).
pub async fn list(
    db: &PgPool,
    ctx: &OrgCtx,
    filter: &AuditFilter,
) -> Result<Page<AuditEntry>, AppError> {
    require(ctx, Permission::ViewAuditLog)?;
    let limit = paging::parse_limit(filter.limit, 50, 500)?;
    let before: Option<i64> = filter
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| AppError::field("cursor", "This cursor is not one Mino gave out."))
        })
        .transpose()?;
    let actor = filter
        .actor
        .as_deref()
        .map(|a| {
            Uuid::parse_str(a.trim()).map_err(|_| {
                AppError::field("actor", format!("{a:?} is not a user or API key id."))
            })
        })
        .transpose()?;
    if let (Some(s), Some(u)) = (filter.since, filter.until) {
        if s > u {
            return Err(AppError::field("until", "Pick an end after the start."));
        }
    }
    // Postgres text can't hold NUL: a filter with one would be a database
    // error, not "no match".
    for (field, v) in [
        ("action", &filter.action),
        ("resource_type", &filter.resource_type),
        ("resource_id", &filter.resource_id),
    ] {
        if v.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(AppError::field(field, "Remove the NUL character."));
        }
    }
    let action = filter
        .action
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| match a.strip_suffix('.') {
            Some(prefix) => ActionMatch::Prefix(prefix),
            None => ActionMatch::Exact(a),
        });
    let items = db::audit::list(
        db,
        &db::audit::EntryFilter {
            org_id: ctx.org_id(),
            actor,
            action,
            resource_type: filter.resource_type.as_deref().filter(|t| !t.is_empty()),
            resource_id: filter.resource_id.as_deref().filter(|r| !r.is_empty()),
            since: filter.since,
            until: filter.until,
            before_id: before,
            limit: limit + 1,
        },
    )
    .await?;
    Ok(paging::page(items, limit, |e| e.id.to_string()))
}

const EXPORT_HEADER: [&str; 12] = [
    "id",
    "at",
    "actor_name",
    "actor_user_id",
    "actor_key_id",
    "action",
    "resource_type",
    "resource_id",
    "before",
    "after",
    "ip",
    "user_agent",
];

/// The filtered log as CSV, newest first, written a page at a time as it is
/// read (a long log never sits in memory). The filter is checked, and the
/// first page read, before anything is sent, so a bad filter is a 400.
pub async fn export_csv(
    db: &PgPool,
    ctx: &OrgCtx,
    filter: AuditFilter,
) -> Result<tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>, AppError> {
    let mut filter = AuditFilter {
        limit: Some(500),
        cursor: None,
        ..filter
    };
    let mut page = list(db, ctx, &filter).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (db, ctx) = (db.clone(), ctx.clone());
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        csv::write_record(&mut buf, EXPORT_HEADER);
        loop {
            for e in &page.items {
                let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
                let id = |v: &Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
                let fields = [
                    e.id.to_string(),
                    e.at.to_rfc3339(),
                    e.actor_name.clone(),
                    id(&e.actor_user_id),
                    id(&e.actor_key_id),
                    e.action.clone(),
                    e.resource_type.clone(),
                    e.resource_id.clone().unwrap_or_default(),
                    json(&e.before),
                    json(&e.after),
                    e.ip.clone().unwrap_or_default(),
                    e.user_agent.clone().unwrap_or_default(),
                ];
                csv::write_record(&mut buf, fields.iter().map(String::as_str));
            }
            let chunk = axum::body::Bytes::from(std::mem::take(&mut buf));
            if tx.send(Ok(chunk)).await.is_err() {
                return; // the client went away
            }
            let Some(next) = page.next_cursor.take() else {
                return;
            };
            filter.cursor = Some(next);
            page = match list(&db, &ctx, &filter).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "audit log export stopped");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
        }
    });
    Ok(rx)
}

/// A day typed in a date field (YYYY-MM-DD) as the UTC midnight that starts
/// it, `days_after` days later (1 for an inclusive "until").
pub fn parse_day(
    raw: Option<&str>,
    field: &str,
    days_after: i64,
) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| AppError::field(field, format!("{raw:?} is not a date like 2026-12-31.")))?;
    let start = day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc() + chrono::Duration::days(days_after));
    Ok(start)
}
