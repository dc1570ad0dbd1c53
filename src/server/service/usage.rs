//! Usage reports and budgets (F20).
//!
//! Usage is read from `usage_daily`, which triggers on `attempts` keep
//! equal to the attempts themselves (see the migration). Budgets are
//! checked by [`spawn_budget_checks`] in every process that runs workers or
//! serves, and when a run starts; each threshold's alert (audit entry,
//! `budget.threshold` webhook, banner) happens once a month whoever notices
//! first, because `budget_alerts` has one row per threshold and month.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use crate::error::AppError;
use crate::model::{
    run_label, Budget, UsageFigures, UsageGroup, UsageLimits, UsageLine, UsageReport,
    BUDGET_THRESHOLDS,
};
use crate::server::auth::rbac::{require, OrgCtx, Permission};
use crate::server::db;
use crate::server::live;

/// The longest report, in days.
pub const MAX_DAYS: i64 = 400;

/// The first day of the month `day` is in.
pub fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a first day")
}

fn previous_month(start: NaiveDate) -> NaiveDate {
    month_start(start.pred_opt().expect("dates here are recent"))
}

fn days_in_month(start: NaiveDate) -> u32 {
    let next = start
        .checked_add_months(chrono::Months::new(1))
        .expect("dates here are recent");
    (next - start).num_days() as u32
}

/// A report's period from the query: `from`/`to` as `YYYY-MM-DD` (UTC
/// days, both included); by default this month so far.
pub fn parse_period(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), AppError> {
    let day = |raw: Option<&str>, field: &str, default: NaiveDate| match raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Ok(default),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            AppError::field(field, format!("Use a date like 2026-12-01 (got {s:?})."))
        }),
    };
    let from = day(from, "from", month_start(today));
    let to = day(to, "to", today);
    super::collect_fields([
        from.as_ref().map(|_| ()).map_err(Clone::clone),
        to.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    let (from, to) = (from?, to?);
    if to < from {
        return Err(AppError::field(
            "to",
            "The last day comes before the first.",
        ));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(AppError::field(
            "from",
            format!("A report covers at most {MAX_DAYS} days."),
        ));
    }
    Ok((from, to))
}

pub fn parse_group(raw: Option<&str>) -> Result<UsageGroup, AppError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(UsageGroup::Day),
        Some(s) => UsageGroup::parse(s).ok_or_else(|| {
            AppError::field(
                "group_by",
                "Group by day, month, project, execution, agent or model.",
            )
        }),
    }
}

/// The organization's usage over a period, grouped, with this month
/// against the plan and against last month.
pub async fn report(
    db: &PgPool,
    ctx: &OrgCtx,
    from: NaiveDate,
    to: NaiveDate,
    group: UsageGroup,
) -> Result<UsageReport, AppError> {
    require(ctx, Permission::ViewResults)?;
    let org = ctx.org_id();
    let rows = db::usage::grouped(db, org, from, to, group).await?;
    let mut totals = UsageFigures::default();
    let items: Vec<UsageLine> = rows
        .into_iter()
        .map(|r| {
            let f = r.figures();
            totals.jobs += f.jobs;
            totals.attempts += f.attempts;
            totals.input_tokens += f.input_tokens;
            totals.output_tokens += f.output_tokens;
            totals.cost_micros += f.cost_micros;
            let label = match group {
                UsageGroup::Project => r
                    .project_name
                    .clone()
                    .unwrap_or_else(|| "Deleted project".into()),
                UsageGroup::Execution => match (r.mode, r.instruction_version, r.created_at) {
                    (Some(mode), Some(v), Some(at)) => format!(
                        "{} · {}",
                        r.project_name.clone().unwrap_or_default(),
                        run_label(mode, v, at, r.rerun.unwrap_or(false))
                    ),
                    _ => "Deleted run".into(),
                },
                UsageGroup::Model if r.key.is_empty() => "No model".into(),
                _ => r.key.clone(),
            };
            UsageLine {
                key: r.key,
                label,
                figures: f,
            }
        })
        .collect();

    let today = Utc::now().date_naive();
    let this_month = month_start(today);
    let last_month = previous_month(this_month);
    let (executions, projects) = db::usage::counts(db, org, this_month).await?;
    let limits = db::orgs::fetch_one(db, org)
        .await?
        .ok_or_else(|| AppError::NotFound("No such organization.".into()))?;
    let cumulative = |days: Vec<(NaiveDate, i64)>, start: NaiveDate, upto: u32| {
        let mut out = vec![0i64; upto as usize];
        for (d, c) in days {
            let i = (d - start).num_days() as usize;
            if i < out.len() {
                out[i] += c;
            }
        }
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
        out
    };
    // One read for both months of the chart.
    let (this_days, last_days): (Vec<_>, Vec<_>) =
        db::usage::cost_by_day(db, org, last_month, today)
            .await?
            .into_iter()
            .partition(|(d, _)| *d >= this_month);
    Ok(UsageReport {
        from,
        to,
        group_by: group,
        totals,
        items,
        limits: UsageLimits {
            month: this_month.format("%Y-%m").to_string(),
            executions_this_month: executions,
            max_executions_per_month: limits.max_executions_per_month,
            max_concurrency: limits.max_concurrency,
            max_projects: limits.max_projects,
            projects,
        },
        this_month_by_day: cumulative(this_days, this_month, today.day()),
        last_month_by_day: cumulative(last_days, last_month, days_in_month(last_month)),
    })
}

/// A report as CSV (the quoting every Mino file uses): one line per
/// group, then the totals.
pub fn report_csv(r: &UsageReport) -> String {
    let mut out = Vec::new();
    crate::server::csv::write_record(
        &mut out,
        [
            "group",
            "key",
            "label",
            "jobs",
            "attempts",
            "input_tokens",
            "output_tokens",
            "cost",
        ],
    );
    let lines = r
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.label.as_str(), &i.figures));
    for (key, label, f) in lines.chain([("total", "Total", &r.totals)]) {
        let numbers = [f.jobs, f.attempts, f.input_tokens, f.output_tokens].map(|n| n.to_string());
        let cost = money(f.cost_micros);
        crate::server::csv::write_record(
            &mut out,
            [r.group_by.as_str(), key, label]
                .into_iter()
                .chain(numbers.iter().map(String::as_str))
                .chain([cost.as_str()]),
        );
    }
    String::from_utf8(out).expect("CSV of UTF-8 text is UTF-8")
}

/// Micros as a decimal with six places, for files.
fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// The budget and this month's standing.
pub async fn budget(db: &PgPool, ctx: &OrgCtx) -> Result<Budget, AppError> {
    require(ctx, Permission::ViewOrganization)?;
    standing(db, ctx.org_id()).await
}

async fn standing(db: &PgPool, org: Uuid) -> Result<Budget, AppError> {
    let month = month_start(Utc::now().date_naive());
    let row = db::usage::budget(db, org).await?;
    let spent = db::usage::cost_since(db, org, month).await?;
    let reached = db::usage::reached(db, org, month).await?;
    Ok(Budget {
        monthly_micros: row.map(|b| b.monthly_micros),
        hard_stop: row.is_some_and(|b| b.hard_stop),
        month: month.format("%Y-%m").to_string(),
        spent_micros: spent,
        reached,
        stopped: row.is_some_and(|b| b.hard_stop && spent >= b.monthly_micros),
    })
}

/// Sets (or with `None`, removes) the monthly budget. Owners only. A
/// budget that now leaves room resumes what the hard stop paused.
pub async fn set_budget(
    db: &PgPool,
    ctx: &OrgCtx,
    monthly_micros: Option<i64>,
    hard_stop: bool,
) -> Result<Budget, AppError> {
    require(ctx, Permission::ManageBilling)?;
    if let Some(m) = monthly_micros {
        if !(1..=1_000_000_000 * 1_000_000).contains(&m) {
            return Err(AppError::field(
                "monthly",
                "Use an amount above 0 and at most 1,000,000,000.",
            ));
        }
    }
    let org = ctx.org_id();
    let before = standing(db, org).await?;
    let mut tx = db.begin().await?;
    let row = monthly_micros.map(|m| db::usage::BudgetRow {
        monthly_micros: m,
        hard_stop,
    });
    db::usage::set_budget(&mut *tx, org, row).await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("organization.set_budget", "organization", org)
            .before(json!({"monthly_micros": before.monthly_micros, "hard_stop": before.hard_stop}))
            .after(json!({"monthly_micros": monthly_micros, "hard_stop": hard_stop && monthly_micros.is_some()})),
    )
    .await?;
    tx.commit().await?;
    // Thresholds the new budget already passes alert now; a stop that no
    // longer holds lets the paused runs go on.
    check(db, org).await?;
    standing(db, org).await
}

/// Refuses a new run while the hard stop holds.
pub async fn refuse_when_stopped(db: &PgPool, org: Uuid) -> Result<(), AppError> {
    let Some(b) = db::usage::budget(db, org).await? else {
        return Ok(());
    };
    if !b.hard_stop {
        return Ok(());
    }
    let spent = db::usage::cost_since(db, org, month_start(Utc::now().date_naive())).await?;
    if spent >= b.monthly_micros {
        return Err(AppError::BudgetExceeded(format!(
            "This month's budget ({}) is spent ({} so far) and has a hard stop: runs start again when an owner raises the budget or the month turns.",
            crate::model::format_price(b.monthly_micros),
            crate::model::format_price(spent)
        )));
    }
    Ok(())
}

/// Looks at one organization's month: alerts each threshold passed for
/// the first time, pauses running executions when the hard stop is
/// reached, resumes them when the budget leaves room again.
pub async fn check(db: &PgPool, org: Uuid) -> Result<(), AppError> {
    let month = month_start(Utc::now().date_naive());
    let mut tx = db.begin().await?;
    let Some(b) = db::usage::budget_locked(&mut *tx, org).await? else {
        // No budget (any more): nothing the budget paused stays paused.
        let resumed = db::usage::resume_after_budget(&mut *tx, org).await?;
        announce(
            &mut tx,
            &resumed,
            "resumed",
            "The budget was removed; the run goes on.",
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    };
    let spent = db::usage::cost_since(&mut *tx, org, month).await?;
    let system = OrgCtx::system(org);
    for t in BUDGET_THRESHOLDS {
        if spent as i128 * 100 < b.monthly_micros as i128 * t as i128 {
            break;
        }
        if db::usage::record_alert(&mut *tx, org, month, t, spent, b.monthly_micros).await? {
            audit::record(
                &mut *tx,
                &system,
                Change::new("organization.budget_threshold", "organization", org).after(json!({
                    "month": month.format("%Y-%m").to_string(),
                    "threshold": t,
                    "spent_micros": spent,
                    "budget_micros": b.monthly_micros,
                    "hard_stop": b.hard_stop,
                })),
            )
            .await?;
            sqlx::query("select webhook_enqueue($1, 'budget.threshold', $2)")
                .bind(org)
                .bind(format!("{}:{t}", month.format("%Y-%m")))
                .execute(&mut *tx)
                .await?;
        }
    }
    if b.hard_stop && spent >= b.monthly_micros {
        let paused = db::usage::pause_for_budget(&mut *tx, org).await?;
        let message = format!(
            "Paused: this month's budget ({}) is spent and has a hard stop. It resumes when an owner raises the budget or the month turns.",
            crate::model::format_price(b.monthly_micros)
        );
        announce(&mut tx, &paused, "paused", &message).await?;
    } else {
        let resumed = db::usage::resume_after_budget(&mut *tx, org).await?;
        announce(
            &mut tx,
            &resumed,
            "resumed",
            "The budget leaves room again; the run goes on.",
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Tells each execution's viewers and workers what the budget did.
async fn announce(
    tx: &mut sqlx::PgConnection,
    ids: &[Uuid],
    kind: &str,
    message: &str,
) -> Result<(), AppError> {
    let state = if kind == "paused" {
        "paused"
    } else {
        "running"
    };
    for id in ids {
        db::executions::insert_event(&mut *tx, *id, kind, message, "Budget").await?;
        live::notify_state(&mut *tx, *id, state).await?;
        live::notify(&mut *tx, live::EXECUTION, &id.to_string()).await?;
    }
    if !ids.is_empty() && kind == "resumed" {
        live::notify(&mut *tx, live::WORK, "").await?;
    }
    Ok(())
}

/// How often each process looks at the budgets.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Every few seconds: folds the usage deltas into the rollup (one process
/// at a time), then checks every budgeted organization (also when the
/// month turns: the new month starts with nothing spent, so runs the stop
/// paused go on).
pub fn spawn_budget_checks(db: PgPool, mut stopped: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = stopped.changed() => return,
            }
            if let Err(e) = db::usage::compact(&db).await {
                tracing::warn!(error = %e, "usage: folding the deltas failed");
            }
            let orgs = match db::usage::budgeted_orgs(&db).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, "budget check: cannot list budgets");
                    continue;
                }
            };
            for org in orgs {
                if let Err(e) = check(&db, org).await {
                    tracing::warn!(%org, error = %e, "budget check failed");
                }
            }
        }
    });
}

/// A budget typed as money ("250", "1,200.50", "$99") in millionths;
/// empty means no budget.
pub fn parse_money(raw: &str, field: &str) -> Result<Option<i64>, AppError> {
    // Thousands separators are fine in a budget (not in prices, where
    // "1,5" may mean one and a half).
    let s = raw.trim().replace([',', '_', ' '], "");
    if s.is_empty() {
        return Ok(None);
    }
    super::decimal_micros(&s)
        .filter(|m| (1..=1_000_000_000 * 1_000_000).contains(m))
        .map(Some)
        .ok_or_else(|| {
            AppError::field(
                field,
                "Enter an amount like 250 or 1200.50 (at most 6 decimals), above 0 and at most 1,000,000,000.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_to_this_month_and_say_what_is_wrong() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let (f, t) = parse_period(None, None, today).unwrap();
        assert_eq!(
            (f.to_string(), t.to_string()),
            ("2026-12-01".into(), "2026-12-07".into())
        );
        let e = parse_period(Some("2026-13-01"), None, today).unwrap_err();
        assert!(e.message_for("from").unwrap().contains("2026-12-01"));
        let e = parse_period(Some("2026-12-05"), Some("2026-12-01"), today).unwrap_err();
        assert!(e.message_for("to").is_some());
        assert!(parse_period(Some("2024-01-01"), Some("2026-01-01"), today).is_err());
        assert_eq!(
            days_in_month(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()),
            28
        );
        assert_eq!(money(1_500_000), "1.500000");
        assert_eq!(money(-25), "-0.000025");
    }
}
