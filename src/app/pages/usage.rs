//! `/o/:slug/usage`: what the organization's runs consumed (jobs,
//! attempts, model tokens, cost) over a period and broken down as the
//! reader asks, this month against the plan and against last month, a CSV
//! download, and the monthly budget (owners set it). The period and
//! grouping are a plain GET form, so the page works and can be bookmarked
//! without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::orgs::get_org;
use crate::api::usage::{get_budget, get_usage, SetBudget};
use crate::app::components::{action_error, ErrorBox, FieldError, FormError, Loading};
use crate::app::hooks::{use_query, use_slug};
use crate::error::AppError;
use crate::model::{format_price, thousands, Budget, Role, UsageGroup, UsageReport};

#[component]
pub fn UsagePage() -> impl IntoView {
    let slug = use_slug();
    let (from, to, group) = (use_query("from"), use_query("to"), use_query("group_by"));
    let save = ServerAction::<SetBudget>::new();
    let data = Resource::new(
        move || {
            (
                slug.get(),
                from.get(),
                to.get(),
                group.get(),
                save.version().get(),
            )
        },
        |(slug, from, to, group, _)| async move {
            let org = get_org(slug.clone()).await?;
            let report = get_usage(slug.clone(), from, to, group).await?;
            let budget = get_budget(slug).await?;
            Ok::<_, AppError>((org, report, budget))
        },
    );
    view! {
        <Title text="Usage" />
        <h1>"Usage"</h1>
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((org, report, budget)) => {
                        let owner = org.role >= Role::Owner;
                        view! {
                            <ThisMonth report=report.clone() budget=budget.clone() />
                            <BudgetCard slug=org.slug.clone() budget owner save />
                            <Breakdown slug=org.slug.clone() report />
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The month so far: against the plan, and cost against last month.
#[component]
fn ThisMonth(report: UsageReport, budget: Budget) -> impl IntoView {
    let l = &report.limits;
    let day = report.this_month_by_day.len();
    let spent = report.this_month_by_day.last().copied().unwrap_or(0);
    let last_same_day = report
        .last_month_by_day
        .get(day.saturating_sub(1))
        .or(report.last_month_by_day.last())
        .copied()
        .unwrap_or(0);
    let last_total = report.last_month_by_day.last().copied().unwrap_or(0);
    let meter = |used: i64, max: i64| {
        let pct = if max > 0 {
            (used * 100 / max).min(100)
        } else {
            100
        };
        format!("width: {pct}%")
    };
    let summary = format!(
        "{} spent by day {day} of this month; {} by the same day last month ({} in the whole of last month).",
        format_price(spent),
        format_price(last_same_day),
        format_price(last_total)
    );
    view! {
        <section class="card" aria-labelledby="month-title">
            <h2 id="month-title">{format!("This month ({} UTC)", l.month)}</h2>
            <div class="usage-stats">
                <div class="stat">
                    <span class="stat-label">"Cost so far"</span>
                    <span class="stat-value" data-testid="month-cost">{format_price(spent)}</span>
                    {budget.monthly_micros.map(|m| view! {
                        <span class="muted small">{format!("of a {} budget", format_price(m))}</span>
                    })}
                </div>
                <div class="stat">
                    <span class="stat-label">"Runs started"</span>
                    <span class="stat-value">{format!("{} of {}", thousands(l.executions_this_month), thousands(l.max_executions_per_month as i64))}</span>
                    <span class="meter" aria-hidden="true"><span style=meter(l.executions_this_month, l.max_executions_per_month as i64)></span></span>
                </div>
                <div class="stat">
                    <span class="stat-label">"Projects"</span>
                    <span class="stat-value">{format!("{} of {}", thousands(l.projects), thousands(l.max_projects as i64))}</span>
                    <span class="meter" aria-hidden="true"><span style=meter(l.projects, l.max_projects as i64)></span></span>
                </div>
                <div class="stat">
                    <span class="stat-label">"Jobs in flight per run"</span>
                    <span class="stat-value">{format!("up to {}", l.max_concurrency)}</span>
                </div>
            </div>
            <figure class="usage-chart">
                <MonthChart this=report.this_month_by_day.clone() last=report.last_month_by_day.clone() />
                <figcaption>
                    <span class="legend this">"This month"</span>
                    <span class="legend last">"Last month"</span>
                    <span class="small muted">" · cumulative cost by day"</span>
                    <p class="sr-only">{summary}</p>
                </figcaption>
            </figure>
        </section>
    }
}

/// Two cumulative lines on one scale: this month so far, last month whole.
#[component]
fn MonthChart(this: Vec<i64>, last: Vec<i64>) -> impl IntoView {
    const W: f64 = 620.0;
    const H: f64 = 160.0;
    let days = 31.0;
    let top = this
        .iter()
        .chain(last.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let points = |series: &[i64]| {
        series
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = 30.0 + (i as f64) * (W - 40.0) / (days - 1.0);
                let y = H - 20.0 - (*v as f64) * (H - 30.0) / top;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    view! {
        <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label="Cumulative cost by day: this month against last month" class="chart">
            <line x1="30" y1=format!("{}", H - 20.0) x2=format!("{}", W - 10.0) y2=format!("{}", H - 20.0) class="axis" />
            <text x="30" y=format!("{}", H - 5.0) class="tick">"1st"</text>
            <text x=format!("{}", W - 10.0) y=format!("{}", H - 5.0) class="tick" text-anchor="end">"31st"</text>
            <text x="28" y="14" class="tick" text-anchor="end">{format_price(top as i64)}</text>
            <polyline points=points(&last) class="series last" />
            <polyline points=points(&this) class="series this" data-testid="chart-this-month" />
        </svg>
    }
}

#[component]
fn BudgetCard(
    slug: String,
    budget: Budget,
    owner: bool,
    save: ServerAction<SetBudget>,
) -> impl IntoView {
    let error = action_error(save);
    let pct = budget.percent();
    let status = match (budget.monthly_micros, pct) {
        (Some(m), Some(p)) => format!(
            "{} of {} spent ({:.0}%) in {}.",
            format_price(budget.spent_micros),
            format_price(m),
            p,
            budget.month
        ),
        _ => "No monthly budget. Set one to be warned at 50%, 80% and 100% of it (banner, webhook, audit log), and optionally to pause runs when it is spent.".into(),
    };
    let bar = pct.map(|p| format!("width: {}%", p.min(100.0) as i64));
    let reached = budget.reached.clone();
    view! {
        <section class="card" aria-labelledby="budget-title">
            <h2 id="budget-title">"Monthly budget"</h2>
            <p data-testid="budget-status">{status}</p>
            {bar.map(|style| view! {
                <span class="meter wide" aria-hidden="true"><span style=style></span></span>
            })}
            {(!reached.is_empty()).then(|| view! {
                <p class="small">{format!("Alerts sent this month: {}.",
                    reached.iter().map(|t| format!("{t}%")).collect::<Vec<_>>().join(", "))}</p>
            })}
            {budget.stopped.then(|| view! {
                <p class="banner warn" role="status">"The hard stop is in effect: running executions are paused and new ones are refused until the budget is raised or the month turns."</p>
            })}
            {if owner {
                let amount = budget.monthly_micros.map(format_price).unwrap_or_default();
                view! {
                    <FormError error />
                    <ActionForm action=save attr:class="inline-form">
                        <input type="hidden" name="org" value=slug />
                        <div class="field">
                            <label for="budget-monthly">"Budget a month"</label>
                            <input id="budget-monthly" name="monthly" inputmode="decimal" value=amount
                                placeholder="e.g. 250" aria-describedby="monthly-error budget-hint" />
                        </div>
                        <label class="check">
                            <input id="budget-hard-stop" type="checkbox" name="hard_stop" value="on" checked=budget.hard_stop />
                            "Hard stop at 100%"
                        </label>
                        <button type="submit" class="button">"Save budget"</button>
                    </ActionForm>
                    <FieldError error field="monthly" />
                    <p id="budget-hint" class="hint">"Leave the amount empty to remove the budget. A hard stop pauses running executions when the month's cost reaches the budget and refuses new ones (BUDGET_EXCEEDED); raising the budget resumes them."</p>
                }
                .into_any()
            } else {
                view! { <p class="muted small">"Owners set the budget."</p> }.into_any()
            }}
        </section>
    }
}

/// The period's figures by the chosen grouping, with the form that
/// chooses, and the CSV of the same.
#[component]
fn Breakdown(slug: String, report: UsageReport) -> impl IntoView {
    let base = format!("/o/{slug}/usage");
    let query = format!(
        "from={}&to={}&group_by={}",
        report.from,
        report.to,
        report.group_by.as_str()
    );
    let download = format!("/api/v1/orgs/{slug}/usage/export?{query}");
    let current = report.group_by;
    let heading = UsageGroup::ALL
        .iter()
        .find(|(g, _)| *g == current)
        .map(|(_, l)| *l)
        .unwrap_or("Group");
    let empty = report.items.is_empty();
    let rows = report
        .items
        .iter()
        .map(|i| {
            let f = i.figures;
            view! {
                <tr>
                    <td title=i.key.clone()>{i.label.clone()}</td>
                    <td class="num">{thousands(f.jobs)}</td>
                    <td class="num">{thousands(f.attempts)}</td>
                    <td class="num">{thousands(f.input_tokens)}</td>
                    <td class="num">{thousands(f.output_tokens)}</td>
                    <td class="num">{format_price(f.cost_micros)}</td>
                </tr>
            }
        })
        .collect_view();
    let t = report.totals;
    view! {
        <section class="card" aria-labelledby="breakdown-title">
            <h2 id="breakdown-title">"Breakdown"</h2>
            <form method="get" action=base class="audit-filters" aria-label="Choose the period and grouping">
                <div>
                    <label for="usage-from">"From"</label>
                    <input id="usage-from" type="date" name="from" value=report.from.to_string() />
                </div>
                <div>
                    <label for="usage-to">"To"</label>
                    <input id="usage-to" type="date" name="to" value=report.to.to_string() />
                </div>
                <div>
                    <label for="usage-group">"By"</label>
                    <select id="usage-group" name="group_by">
                        {UsageGroup::ALL.iter().map(|(g, label)| {
                            view! { <option value=g.as_str() selected=*g == current>{*label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div class="audit-buttons">
                    <button type="submit" class="button">"Show"</button>
                    <a href=download class="button small" data-testid="usage-download">"Download CSV"</a>
                </div>
            </form>
            {if empty {
                view! {
                    <p class="empty">"Nothing was run in this period. Usage counts every attempt as it finishes: start a run from a batch and it shows here within seconds."</p>
                }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table data-testid="usage-table">
                            <thead><tr>
                                <th scope="col">{heading}</th>
                                <th scope="col" class="num">"Jobs"</th>
                                <th scope="col" class="num">"Attempts"</th>
                                <th scope="col" class="num">"Input tokens"</th>
                                <th scope="col" class="num">"Output tokens"</th>
                                <th scope="col" class="num">"Cost"</th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                            <tfoot><tr>
                                <td><strong>"Total"</strong></td>
                                <td class="num">{thousands(t.jobs)}</td>
                                <td class="num">{thousands(t.attempts)}</td>
                                <td class="num">{thousands(t.input_tokens)}</td>
                                <td class="num">{thousands(t.output_tokens)}</td>
                                <td class="num" data-testid="usage-total-cost">{format_price(t.cost_micros)}</td>
                            </tr></tfoot>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

/// Shown on every page of an organization whose month passed 50% of its
/// budget: how far, and what the hard stop does.
#[component]
pub fn BudgetBanner() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let slug = move || params.read().get("slug");
    let budget = Resource::new(slug, |slug| async move {
        match slug {
            Some(s) => get_budget(s).await.ok(),
            None => None,
        }
    });
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let b = budget.await?;
                let top = *b.reached.last()?;
                let slug = slug()?;
                let text = if b.stopped {
                    "This month's budget is spent: runs are paused and new ones refused until an owner raises it.".to_string()
                } else {
                    format!("This organization has used {top}% or more of this month's budget ({} of {}).",
                        format_price(b.spent_micros), format_price(b.monthly_micros.unwrap_or(0)))
                };
                let class = if top >= 100 { "banner danger budget-banner" } else { "banner warn budget-banner" };
                Some(view! {
                    <p class=class role="status" data-testid="budget-banner">
                        {text} " " <a href=format!("/o/{slug}/usage")>"See usage"</a>
                    </p>
                })
            })}
        </Transition>
    }
}
