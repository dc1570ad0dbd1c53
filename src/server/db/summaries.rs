//! Aggregates over a finished execution's jobs, computed on first read and
//! kept in `execution_summaries` until its jobs change (see the migration
//! `…_execution_summaries.sql`). Active executions change with every job,
//! so theirs are always computed afresh (the live view coalesces those).
//!
//! Why read-through instead of counters kept by every writer: the workers'
//! completions stay one statement each (no hot counter row per execution),
//! and a ground-truth edit on a million-job run stays cheap; the first view
//! after it pays for the scan once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{de::DeserializeOwned, Serialize};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

/// States after which an execution's jobs change only through a bump.
const FINISHED: &str = "('completed', 'failed', 'cancelled')";

/// One computation per (execution, kind) at a time in this process: twenty
/// viewers of a run whose summary just went stale wait for one scan.
type Flights = Mutex<HashMap<(Uuid, &'static str), Arc<tokio::sync::Mutex<()>>>>;
static IN_FLIGHT: std::sync::LazyLock<Flights> = std::sync::LazyLock::new(Default::default);

/// (results_version, finished, the kept value when current)
type Lookup = (i64, bool, Option<Json<serde_json::Value>>);

async fn lookup(db: &PgPool, execution: Uuid, kind: &str) -> sqlx::Result<Option<Lookup>> {
    sqlx::query_as(&format!(
        "select e.results_version, e.state in {FINISHED}, s.value
         from executions e
         left join execution_summaries s
           on s.execution_id = e.id and s.kind = $2 and s.results_version = e.results_version
         where e.id = $1"
    ))
    .bind(execution)
    .bind(kind)
    .fetch_optional(db)
    .await
}

/// The `kind` summary of `execution`: the kept one while current, else
/// `compute`d (and kept, when the execution has finished). The version is
/// read before `compute` runs, so a change committed meanwhile can only
/// make the kept value look older than it is, never newer.
/// `compute` may fail with any error a database error converts into.
pub async fn memo<T, E, F, Fut>(
    db: &PgPool,
    execution: Uuid,
    kind: &'static str,
    compute: F,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
    E: From<sqlx::Error>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let decode = |v: Json<serde_json::Value>| serde_json::from_value::<T>(v.0).ok();
    let Some((_, finished, kept)) = lookup(db, execution, kind).await? else {
        return compute().await;
    };
    if let Some(v) = kept.and_then(decode) {
        return Ok(v);
    }
    if !finished {
        return compute().await;
    }
    let flight = IN_FLIGHT
        .lock()
        .expect("summary flights lock")
        .entry((execution, kind))
        .or_default()
        .clone();
    let result = async {
        let _turn = flight.lock().await;
        // Someone else may have computed it while this one waited.
        let Some((version, finished, kept)) = lookup(db, execution, kind).await? else {
            return compute().await;
        };
        if let Some(v) = kept.and_then(decode) {
            return Ok(v);
        }
        let value = compute().await?;
        if finished {
            store(db, execution, kind, version, &value).await?;
        }
        Ok(value)
    }
    .await;
    let mut flights = IN_FLIGHT.lock().expect("summary flights lock");
    if flights
        .get(&(execution, kind))
        .is_some_and(|f| Arc::strong_count(f) <= 2)
    {
        flights.remove(&(execution, kind));
    }
    result
}

async fn store<T: Serialize>(
    db: &PgPool,
    execution: Uuid,
    kind: &str,
    version: i64,
    value: &T,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into execution_summaries (execution_id, kind, results_version, value)
         values ($1, $2, $3, $4)
         on conflict (execution_id, kind) do update
            set results_version = excluded.results_version, value = excluded.value,
                computed_at = now()
          where execution_summaries.results_version <= excluded.results_version",
    )
    .bind(execution)
    .bind(kind)
    .bind(version)
    .bind(Json(value))
    .execute(db)
    .await?;
    Ok(())
}

/// The current `kind` summaries kept for any of `executions` (misses are
/// simply absent): one query for a list of runs.
pub async fn kept<T: DeserializeOwned>(
    db: &PgPool,
    executions: &[Uuid],
    kind: &str,
) -> sqlx::Result<HashMap<Uuid, T>> {
    let rows: Vec<(Uuid, Json<serde_json::Value>)> = sqlx::query_as(
        "select s.execution_id, s.value from execution_summaries s
         join executions e on e.id = s.execution_id and e.results_version = s.results_version
         where s.execution_id = any($1) and s.kind = $2",
    )
    .bind(executions)
    .bind(kind)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, v)| serde_json::from_value(v.0).ok().map(|t| (id, t)))
        .collect())
}

/// Marks what is kept for `executions` as out of date. Call it in the
/// transaction that changes their jobs, as late as it can be: it locks the
/// executions' rows until commit.
pub async fn invalidate<'e, E>(db: E, executions: &[Uuid]) -> sqlx::Result<()>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query("update executions set results_version = results_version + 1 where id = any($1)")
        .bind(executions)
        .execute(db)
        .await?;
    Ok(())
}
