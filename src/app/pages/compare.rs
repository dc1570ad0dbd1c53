//! Two runs of a batch compared row by row (`/o/{slug}/compare`).

use leptos::prelude::*;
use leptos_meta::Title;
use uuid::Uuid;

use crate::api::results::compare_executions;
use crate::app::components::badges::verdict_badge;
use crate::app::components::{ErrorBox, Loading};
use crate::app::hooks::use_query;
use crate::error::AppError;

use crate::app::components::results::use_slug_for_links;

/// `/o/:slug/compare?a=&b=`: two runs of one batch side by side.
#[component]
pub fn ComparePage() -> impl IntoView {
    let a = use_query("a");
    let b = use_query("b");
    let slug = StoredValue::new(use_slug_for_links());
    let data = Resource::new(
        move || (a.get(), b.get()),
        |(a, b)| async move {
            let parse = |v: Option<String>, name: &str| {
                v.and_then(|v| Uuid::parse_str(&v).ok())
                    .ok_or_else(|| AppError::field(name, "Choose two runs to compare."))
            };
            compare_executions(parse(a, "a")?, parse(b, "b")?).await
        },
    );
    let pct = |v: Option<f64>| {
        v.map(|a| format!("{:.1}%", a * 100.0))
            .unwrap_or_else(|| "—".into())
    };
    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => {
            let d = (b - a) * 100.0;
            let class = if d > 0.05 {
                "ok-text"
            } else if d < -0.05 {
                "bad-text"
            } else {
                "muted"
            };
            view! { <span class=class>{format!("{d:+.1} pts")}</span> }.into_any()
        }
        _ => view! { <span class="muted">"—"</span> }.into_any(),
    };
    view! {
        <Title text="Compare runs" />
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <h1>"Compare runs"</h1><ErrorBox error=e /> }.into_any(),
                    Ok(c) => {
                        let slug = slug.get_value();
                        let run_link = |e: &crate::model::Execution, label: &str| view! {
                            <a href=format!("/o/{slug}/executions/{}", e.id)>{format!("{label}: {} run, v{}, {}", e.mode, e.instruction_version, e.created_at.format("%Y-%m-%d %H:%M"))}</a>
                        };
                        // The change is measured on the rows both runs judged;
                        // each run's own accuracy (over rows the other may not
                        // have) is shown beside it, with no change claimed.
                        let same_rows = c.a.total == c.b.total && c.a.total == c.shared_rows;
                        let shared_label = format!("Accuracy on the {} rows both judged", crate::model::thousands(c.judged_in_both));
                        let summary = [
                            (shared_label.as_str(), pct(c.shared_accuracy_a), pct(c.shared_accuracy_b), delta(c.shared_accuracy_a, c.shared_accuracy_b)),
                            ("Accuracy of the whole run", pct(c.a.accuracy), pct(c.b.accuracy), if same_rows { delta(c.a.accuracy, c.b.accuracy) } else { view! { <span class="muted" title="The runs cover different rows: compare the line above.">"not comparable"</span> }.into_any() }),
                            ("Passed", c.a.passed.to_string(), c.b.passed.to_string(), view! { <span>{format!("{:+}", c.b.passed - c.a.passed)}</span> }.into_any()),
                            ("With wrong fields", c.a.failed.to_string(), c.b.failed.to_string(), view! { <span>{format!("{:+}", c.b.failed - c.a.failed)}</span> }.into_any()),
                            ("Errors", c.a.errors.to_string(), c.b.errors.to_string(), view! { <span>{format!("{:+}", c.b.errors - c.a.errors)}</span> }.into_any()),
                            ("Jobs", c.a.total.to_string(), c.b.total.to_string(), view! { <span>{format!("{:+}", c.b.total - c.a.total)}</span> }.into_any()),
                            ("Cost", crate::model::format_price(c.a.cost_micros), crate::model::format_price(c.b.cost_micros), view! { <span></span> }.into_any()),
                        ].into_iter().map(|(k, a, b, d)| view! {
                            <tr><th scope="row">{k.to_string()}</th><td class="num">{a}</td><td class="num">{b}</td><td class="num">{d}</td></tr>
                        }).collect_view();
                        let with_i = |v: Option<f64>, i: Option<[f64; 2]>| match v {
                            Some(v) => crate::model::percent_with_interval(v, i),
                            None => "—".to_string(),
                        };
                        let f1 = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into());
                        // Per field, the same rows for both runs; each run's
                        // own figure (with its interval) on hover.
                        let fields = c.fields.iter().map(|f| {
                            let own = |label: &str, v: Option<f64>, i: Option<[f64; 2]>| format!("{label}'s whole run: {}", with_i(v, i));
                            view! {
                                <tr><th scope="row">{f.field.clone()}</th>
                                    <td class="num">{crate::model::thousands(f.shared_compared)}</td>
                                    <td class="num" title=own("A", f.accuracy_a, f.accuracy_interval_a)>{pct(f.shared_accuracy_a)}</td>
                                    <td class="num" title=own("B", f.accuracy_b, f.accuracy_interval_b)>{pct(f.shared_accuracy_b)}</td>
                                    <td class="num">{delta(f.shared_accuracy_a, f.shared_accuracy_b)}</td>
                                    <td class="num">{f1(f.shared_f1_a)}</td><td class="num">{f1(f.shared_f1_b)}</td></tr>
                            }
                        }).collect_view();
                        // Whether the difference is beyond noise, in words.
                        let verdict = if c.passes_only_a + c.passes_only_b == 0 {
                            "No row judged in both runs passes in only one of them: the runs agree.".to_string()
                        } else if c.significant {
                            format!(
                                "Beyond noise: {} rows pass only in B and {} only in A (McNemar's exact test, p = {:.4}).",
                                c.passes_only_b, c.passes_only_a, c.p_value
                            )
                        } else {
                            format!(
                                "Within noise: {} rows pass only in B and {} only in A (McNemar's exact test, p = {:.3}; below 0.05 would be beyond noise).",
                                c.passes_only_b, c.passes_only_a, c.p_value
                            )
                        };
                        let verdict_class = match (c.significant, c.passes_only_b > c.passes_only_a) {
                            (true, true) => "banner ok",
                            (true, false) => "banner warn",
                            (false, _) => "banner neutral",
                        };
                        let pairs = |title: &'static str, testid: &'static str, list: Vec<crate::model::JobPair>, count: i64, empty: &'static str| {
                            let slug = slug.clone();
                            view! {
                                <section class="card">
                                    <h2>{title} " " <span class="muted">{format!("({count})")}</span></h2>
                                    {if list.is_empty() {
                                        view! { <p class="empty">{empty}</p> }.into_any()
                                    } else {
                                        view! {
                                            <div class="table-wrap">
                                                <table data-testid=testid>
                                                    <thead><tr><th scope="col" class="num">"Row"</th><th scope="col">"Site"</th><th scope="col">"A"</th><th scope="col">"B"</th><th scope="col">"Values that changed (A → B)"</th></tr></thead>
                                                    <tbody>
                                                        {list.into_iter().map(|p| {
                                                            let (ca, la) = verdict_badge(p.verdict_a, "");
                                                            let (cb, lb) = verdict_badge(p.verdict_b, "");
                                                            let diffs = p.differences.iter().map(|(k, (x, y))| format!("{k}: {} → {}", x.clone().unwrap_or_else(|| "—".into()), y.clone().unwrap_or_else(|| "—".into()))).collect::<Vec<_>>().join(" · ");
                                                            view! {
                                                                <tr>
                                                                    <td class="num">{p.row_index}</td>
                                                                    <td class="clip"><span title=p.url.clone()>{p.url.clone()}</span></td>
                                                                    <td><a href=format!("/o/{slug}/jobs/{}", p.job_a)><span class=ca>{la}</span></a></td>
                                                                    <td><a href=format!("/o/{slug}/jobs/{}", p.job_b)><span class=cb>{lb}</span></a></td>
                                                                    <td class="small">{diffs}</td>
                                                                </tr>
                                                            }
                                                        }).collect_view()}
                                                    </tbody>
                                                </table>
                                            </div>
                                            {(count > 200).then(|| view! { <p class="muted small">"The first 200 are listed."</p> })}
                                        }.into_any()
                                    }}
                                </section>
                            }
                        };
                        view! {
                            <crate::app::components::crumbs::Crumbs items=vec![
                                ("Projects".to_string(), format!("/o/{slug}/projects")),
                                (c.a.project_name.clone(), format!("/o/{slug}/projects/{}", c.a.project_id)),
                                (c.a.batch_name.clone(), format!("/o/{slug}/batches/{}", c.a.batch_id)),
                            ] />
                            <h1>"Compare runs"</h1>
                            <p>{run_link(&c.a, "A")} <br /> {run_link(&c.b, "B")}</p>
                            <p class="muted" data-testid="compare-rows">{if same_rows {
                                format!("Both runs cover the same {} rows.", crate::model::thousands(c.shared_rows))
                            } else {
                                format!("Compared on the {} rows both runs have ({} judged in both); A has {} rows, B {}.",
                                    crate::model::thousands(c.shared_rows), crate::model::thousands(c.judged_in_both),
                                    crate::model::thousands(c.a.total), crate::model::thousands(c.b.total))
                            }}</p>
                            <div class="summary-tiles" data-testid="compare-summary">
                                <div class="tile ok-tile"><span class="stat" data-testid="fixed-count">{c.fixed_count}</span><span>"fixed"</span></div>
                                <div class="tile bad-tile"><span class="stat" data-testid="regressed-count">{c.regressed_count}</span><span>"regressed"</span></div>
                                <div class="tile"><span class="stat">{c.changed_count}</span><span>"changed value, same verdict"</span></div>
                                {(c.only_a + c.only_b > 0).then(|| view! { <div class="tile"><span class="stat">{c.only_a + c.only_b}</span><span>{format!("rows in one run only (A {}, B {})", c.only_a, c.only_b)}</span></div> })}
                            </div>
                            <p class=verdict_class data-testid="compare-significance">{verdict}</p>
                            <section class="card">
                                <h2>"Summary"</h2>
                                <div class="table-wrap"><table>
                                    <thead><tr><th scope="col"></th><th scope="col" class="num">"A"</th><th scope="col" class="num">"B"</th><th scope="col" class="num">"Change"</th></tr></thead>
                                    <tbody>{summary}</tbody>
                                </table></div>
                            </section>
                            <section class="card">
                                <h2>"Accuracy by field"</h2>
                                <p class="hint">"On the rows both runs judged the field on; hover a figure for that run's whole-run accuracy and its 95% interval."</p>
                                {if c.fields.is_empty() { view! { <p class="empty">"Neither run has judged fields yet."</p> }.into_any() } else { view! {
                                    <div class="table-wrap"><table data-testid="compare-fields">
                                        <thead><tr><th scope="col">"Field"</th><th scope="col" class="num">"Rows"</th><th scope="col" class="num">"Accuracy A"</th><th scope="col" class="num">"Accuracy B"</th><th scope="col" class="num">"Change"</th>
                                            <th scope="col" class="num">"F1 A"</th><th scope="col" class="num">"F1 B"</th></tr></thead>
                                        <tbody>{fields}</tbody>
                                    </table></div>
                                }.into_any() }}
                            </section>
                            {pairs("Fixed", "fixed-jobs", c.fixed, c.fixed_count, "No row got better in B.")}
                            {pairs("Regressed", "regressed-jobs", c.regressed, c.regressed_count, "No row got worse in B.")}
                            {pairs("Changed values", "changed-jobs", c.changed, c.changed_count, "No other row's extracted values changed.")}
                            <section class="card">
                                <h2>"What changed between the versions"</h2>
                                {match c.version_diff {
                                    Some(d) => view! { <crate::app::components::diff::VersionDiffView diff=d /> }.into_any(),
                                    None => view! { <p class="empty">{format!("Both runs used version {} (the same instructions, field rules and agent settings).", c.a.instruction_version)}</p> }.into_any(),
                                }}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
