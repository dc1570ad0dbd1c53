//! An experiment's page (`/o/{slug}/experiments/{id}`): the variants'
//! matrix (best value per column marked), every pair's fixed and regressed
//! rows with whether the difference is beyond noise, the per-row grid
//! (disagreements first), controls for all variants at once and
//! promotion. While variants run, the page re-reads the experiment every
//! two seconds (its figures come from the runs' jobs, not from a stream of
//! their own).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::experiments::{
    get_experiment, list_experiment_rows, ControlExperiment, PromoteExperiment,
};
use crate::app::components::badges::verdict_badge;
use crate::app::components::experiments::state_class;
use crate::app::components::{action_error, ErrorBox, FormError, Loading};
use crate::app::hooks::{use_id, use_slug};
use crate::model::{
    format_price, percent_with_interval, thousands, variant_label, Experiment, ExperimentRows,
    ExperimentVariant,
};

/// Which of `values` are the column's best (`None` never is; no mark when
/// every value ties).
fn best(values: &[Option<f64>], higher_is_better: bool) -> Vec<bool> {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let target = if higher_is_better {
        known.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    } else {
        known.iter().copied().fold(f64::INFINITY, f64::min)
    };
    let all_tie = known.iter().all(|v| (v - target).abs() < 1e-12);
    values
        .iter()
        .map(|v| !all_tie && v.is_some_and(|v| (v - target).abs() < 1e-12))
        .collect()
}

fn cell(text: String, is_best: bool) -> impl IntoView {
    view! {
        <td class="num" class:best=is_best>
            {text}
            {is_best.then(|| view! { <span class="best-mark" title="Best in this column" aria-label="best">" ★"</span> })}
        </td>
    }
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} ms"))
        .unwrap_or_else(|| "—".into())
}

#[component]
pub fn ExperimentPage() -> impl IntoView {
    let id = use_id();
    let slug = use_slug();
    let tick = RwSignal::new(0u32);
    let data = Resource::new(
        move || (id.get(), tick.get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_experiment(id).await,
                None => Err(crate::error::AppError::NotFound("Experiment".into())),
            }
        },
    );
    // While any variant runs, read again every two seconds.
    let active = Memo::new(move |_| {
        data.get()
            .and_then(|r| r.ok())
            .is_some_and(|x| x.is_active())
    });
    let offset = RwSignal::new(0i64);
    let grid = Resource::new(
        // Read once more when the last variant ends.
        move || (id.get(), offset.get(), tick.get(), active.get()),
        |(id, offset, _, _)| async move {
            match id {
                Some(id) => list_experiment_rows(id, offset).await,
                None => Err(crate::error::AppError::NotFound("Experiment".into())),
            }
        },
    );
    let control = ServerAction::<ControlExperiment>::new();
    let promote = ServerAction::<PromoteExperiment>::new();
    let control_error = action_error(control);
    let promote_error = action_error(promote);
    // A control or a promotion shows at once.
    Effect::new(move |_| {
        if control.version().get() + promote.version().get() > 0 {
            tick.update(|t| *t += 1);
        }
    });
    Effect::new(move |_| {
        if !active.get() {
            return;
        }
        let handle = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_secs(2),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    });
    view! {
        <Title text="Experiment" />
        <Transition fallback=|| view! { <Loading /> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <h1>"Experiment"</h1><ErrorBox error=e /> }.into_any(),
                Ok(x) => {
                    let (experiment, batch, can_save) = (x.id, x.batch_id, x.can_run);
                    view! {
                        <ExperimentView x=x slug=slug.get_untracked() control promote control_error promote_error />
                        <GridCard grid offset experiment batch can_save />
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn ExperimentView(
    x: Experiment,
    slug: String,
    control: ServerAction<ControlExperiment>,
    promote: ServerAction<PromoteExperiment>,
    control_error: Signal<Option<crate::error::AppError>>,
    promote_error: Signal<Option<crate::error::AppError>>,
) -> impl IntoView {
    let id = x.id.to_string();
    let project_href = format!("/o/{slug}/projects/{}", x.project_id);
    let batch_href = format!("/o/{slug}/batches/{}", x.batch_id);
    let running = x.variants.iter().any(|v| {
        matches!(
            v.execution.state,
            crate::model::ExecutionState::Running | crate::model::ExecutionState::Queued
        )
    });
    let paused = x
        .variants
        .iter()
        .any(|v| v.execution.state == crate::model::ExecutionState::Paused);
    let rows_said = match (
        x.row_choice.get("set").and_then(|v| v.as_str()),
        x.row_choice.get("execution_id").and_then(|v| v.as_str()),
        x.row_choice.get("sample").and_then(|v| v.as_str()),
    ) {
        (Some(_), _, _) => "the rows of an evaluation set".to_string(),
        (_, Some(_), _) => format!(
            "a run's {} jobs",
            x.row_choice
                .get("evaluation")
                .and_then(|v| v.as_str())
                .unwrap_or("failing")
        ),
        (_, _, Some("random")) => format!(
            "random rows (seed {})",
            x.row_choice.get("seed").cloned().unwrap_or_default()
        ),
        _ => "the first rows".to_string(),
    };
    let source = match x.pages_from {
        Some(run) => view! { <span>" · every variant reads the pages kept by " <a href=format!("/o/{slug}/executions/{run}")>"this run"</a> " (no request reaches the sites)"</span> }.into_any(),
        None => view! { <span>" · each variant fetches the pages itself"</span> }.into_any(),
    };
    let v = &x.variants;
    // Which variants hold a column's best value (`higher`: bigger is better).
    let column = |value: &dyn Fn(&ExperimentVariant) -> Option<f64>, higher: bool| {
        best(&v.iter().map(value).collect::<Vec<_>>(), higher)
    };
    let acc_best = column(&|v| v.execution.accuracy, true);
    let cost_best = column(&|v| Some(v.execution.cost_micros as f64), false);
    let tokens_best = column(
        &|v| Some((v.execution.tokens.input + v.execution.tokens.output) as f64),
        false,
    );
    let p50_best = column(&|v| v.latency_p50_ms, false);
    let p95_best = column(&|v| v.latency_p95_ms, false);
    let err_best = column(&|v| Some(v.execution.errors as f64), false);
    let field_of = |v: &ExperimentVariant, f: &str| v.fields.iter().find(|x| x.field == f).cloned();
    let field_best: Vec<(Vec<bool>, Vec<bool>)> = x
        .fields
        .iter()
        .map(|f| {
            (
                column(&|v| field_of(v, f).map(|x| x.accuracy), true),
                column(&|v| field_of(v, f).map(|x| x.f1), true),
            )
        })
        .collect();
    let production = x.production_version;
    // Promotion waits for the final figures (and a confirmation left open
    // would close at the next re-read while variants run).
    let can_promote = x.can_promote && !x.is_active();
    let matrix_rows = v
        .iter()
        .enumerate()
        .map(|(i, variant)| {
            let e = &variant.execution;
            let done = e.completed + e.errors + e.cancelled;
            let what = {
                let mut s = format!("v{}", variant.version);
                if !variant.overrides.is_empty() {
                    s.push_str(&format!(" · {} agent · {} extractor", e.agent, variant.extractor.as_str()));
                }
                if let Some(m) = variant.model_route.first() {
                    if e.extractor == Some(crate::model::Extractor::Llm) {
                        s.push_str(&format!(" · {}", m.model));
                    }
                }
                s
            };
            let accuracy = e
                .accuracy
                .map(|a| percent_with_interval(a, variant.accuracy_interval))
                .unwrap_or_else(|| "—".into());
            let is_production = variant.version == production;
            let promoted = x.promoted_variant == Some(variant.position);
            let id = x.id.to_string();
            let position = variant.position.to_string();
            let (label, version) = (variant.label.clone(), variant.version);
            let confirm_text = format!(
                "Make version {} production? Runs that name no version will use it{}.",
                variant.version,
                if variant.overrides.is_empty() {
                    String::new()
                } else {
                    format!(" — with its own settings, not this variant's {} override", variant.overrides.join(" and "))
                }
            );
            view! {
                <tr data-testid="variant-row">
                    <th scope="row">
                        <a href=format!("/o/{slug}/executions/{}", e.id)>{format!("{} ", variant.label)}</a>
                        {is_production.then(|| view! { <span class="badge ok">"production"</span> })}
                        {promoted.then(|| view! { <span class="badge run">"promoted"</span> })}
                    </th>
                    <td>{what}</td>
                    <td class="num">{format!("{} / {}", thousands(done), thousands(e.total))}<br /><span class="muted small">{e.state.to_string()}</span></td>
                    {cell(accuracy, acc_best[i])}
                    {cell(format_price(e.cost_micros), cost_best[i])}
                    {cell(format!("{} / {}", thousands(e.tokens.input), thousands(e.tokens.output)), tokens_best[i])}
                    {cell(ms(variant.latency_p50_ms), p50_best[i])}
                    {cell(ms(variant.latency_p95_ms), p95_best[i])}
                    {cell(thousands(e.errors), err_best[i])}
                    <td>
                        {(can_promote && !is_production).then(move || view! {
                            <details class="confirm">
                                <summary class="button small" data-testid="promote">{format!("Promote {label}…")}</summary>
                                <ActionForm action=promote>
                                    <input type="hidden" name="id" value=id />
                                    <input type="hidden" name="variant" value=position />
                                    <p>{confirm_text}</p>
                                    <button type="submit" class="button primary" data-testid="confirm-promote">{format!("Make v{version} production")}</button>
                                </ActionForm>
                            </details>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    // Each field's figures, a row per field and a column per variant (the
    // matrix would be too wide with two columns per field).
    let field_rows = x
        .fields
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let cells = v
                .iter()
                .enumerate()
                .map(|(i, variant)| {
                    let fa = field_of(variant, f);
                    let text = fa
                        .map(|a| format!("{:.1}% · F1 {:.3}", a.accuracy * 100.0, a.f1))
                        .unwrap_or_else(|| "—".into());
                    cell(text, field_best[k].0[i] || field_best[k].1[i])
                })
                .collect_view();
            view! { <tr><th scope="row">{f.clone()}</th>{cells}</tr> }
        })
        .collect_view();
    let variant_heads = v
        .iter()
        .map(|v| view! { <th scope="col" class="num">{format!("{} (v{})", v.label, v.version)}</th> })
        .collect_view();
    let label_of = |p: i32| variant_label(p);
    let exec_of = |p: i32| {
        x.variants
            .iter()
            .find(|v| v.position == p)
            .map(|v| v.execution.id)
    };
    let pairs = x
        .pairs
        .iter()
        .map(|p| {
            let compare = match (exec_of(p.a), exec_of(p.b)) {
                (Some(a), Some(b)) => format!("/o/{slug}/compare?a={a}&b={b}"),
                _ => String::new(),
            };
            let verdict = if p.judged_in_both == 0 {
                view! { <span class="muted">"nothing judged in both yet"</span> }.into_any()
            } else if p.significant {
                let winner = if p.passes_only_b > p.passes_only_a { p.b } else { p.a };
                view! { <span class="ok-text">{format!("beyond noise: {} is better", label_of(winner))}</span> }.into_any()
            } else {
                view! { <span class="muted">"within noise"</span> }.into_any()
            };
            view! {
                <tr data-testid="pair-row">
                    <th scope="row"><a href=compare>{format!("{} → {}", label_of(p.a), label_of(p.b))}</a></th>
                    <td class="num ok-text">{thousands(p.fixed)}</td>
                    <td class="num bad-text">{thousands(p.regressed)}</td>
                    <td class="num">{thousands(p.judged_in_both)}</td>
                    <td class="num">{format!("{:.4}", p.p_value)}</td>
                    <td>{verdict}</td>
                </tr>
            }
        })
        .collect_view();
    let best_variant = x
        .variants
        .iter()
        .filter(|v| !v.execution.is_active())
        .max_by(|a, b| {
            a.execution
                .accuracy
                .unwrap_or(-1.0)
                .total_cmp(&b.execution.accuracy.unwrap_or(-1.0))
        })
        .map(|v| (v.execution.id, v.label.clone()));
    let can_run = x.can_run;
    let is_active = x.is_active();
    let name = x.name.clone();
    view! {
        <crate::app::components::crumbs::Crumbs items=vec![
            ("Projects".to_string(), format!("/o/{slug}/projects")),
            (x.project_name.clone(), project_href.clone()),
            (x.batch_name.clone(), batch_href),
        ] />
        <div class="page-head">
            <h1>{name}</h1>
            <span class=state_class(&x.state) data-testid="experiment-state">{x.state.clone()}</span>
        </div>
        <p class="muted small">{format!("{} rows each: {rows_said}", thousands(x.rows as i64))}{source}{format!(" · started by {} {}", x.created_by_name, crate::app::components::when(x.created_at))}</p>
        {(can_run && is_active).then(|| {
            let (pause_id, resume_id, stop_id) = (id.clone(), id.clone(), id.clone());
            view! {
            <section class="card">
                <h2>"Controls"</h2>
                <FormError error=control_error />
                <div class="controls">
                    {running.then(move || view! {
                        <ActionForm action=control attr:class="inline">
                            <input type="hidden" name="id" value=pause_id />
                            <input type="hidden" name="action" value="pause" />
                            <button type="submit" class="button">"Pause all"</button>
                        </ActionForm>
                    })}
                    {paused.then(move || view! {
                        <ActionForm action=control attr:class="inline">
                            <input type="hidden" name="id" value=resume_id />
                            <input type="hidden" name="action" value="resume" />
                            <button type="submit" class="button primary">"Resume all"</button>
                        </ActionForm>
                    })}
                    <details class="confirm">
                        <summary class="button danger">"Stop…"</summary>
                        <ActionForm action=control>
                            <input type="hidden" name="id" value=stop_id />
                            <input type="hidden" name="action" value="stop" />
                            <p>"Stop every variant? Queued jobs are cancelled; results so far are kept and compared."</p>
                            <button type="submit" class="button danger">"Stop the experiment"</button>
                        </ActionForm>
                    </details>
                </div>
                <p class="hint">"The variants share the organization's capacity: each is a run of its own, and the workers take jobs from every running run in turn."</p>
            </section>
        }})}
        <section class="card">
            <h2>"Variants"</h2>
            <FormError error=promote_error />
            <div class="table-wrap">
                <table class="table matrix" data-testid="matrix">
                    <thead><tr>
                        <th scope="col">"Variant"</th><th scope="col">"Configuration"</th><th scope="col" class="num">"Done"</th>
                        <th scope="col" class="num">"Accuracy (95% interval)"</th>
                        <th scope="col" class="num">"Cost"</th><th scope="col" class="num">"Tokens in / out"</th>
                        <th scope="col" class="num">"Latency p50"</th><th scope="col" class="num">"p95"</th><th scope="col" class="num">"Errors"</th>
                        <th scope="col"><span class="sr-only">"Promote"</span></th>
                    </tr></thead>
                    <tbody>{matrix_rows}</tbody>
                </table>
            </div>
            <p class="hint">"★ marks the best value of each column. Accuracy counts partly right rows by their share of right fields; the interval is a bootstrap over rows."</p>
            <h3>"Fields"</h3>
            <div class="table-wrap">
                <table class="table" data-testid="field-matrix">
                    <thead><tr><th scope="col">"Field"</th>{variant_heads}</tr></thead>
                    <tbody>{field_rows}</tbody>
                </table>
            </div>
        </section>
        <section class="card">
            <h2>"Pairs"</h2>
            <table class="table" data-testid="pairs">
                <thead><tr><th scope="col">"From → to"</th><th scope="col" class="num">"Rows fixed"</th><th scope="col" class="num">"Rows broken"</th><th scope="col" class="num">"Judged in both"</th><th scope="col" class="num">"p (McNemar)"</th><th scope="col">"Difference"</th></tr></thead>
                <tbody>{pairs}</tbody>
            </table>
            <p class="hint">"Fixed: the row's verdict is better in the second variant (pass over partial over fail over error). The exact McNemar test counts the rows that pass in only one of the two; below 0.05 the difference is beyond noise."</p>
        </section>
        {best_variant.map(|(run, label)| view! {
            <crate::app::components::suggest::SuggestCard id=run project_id=x.project_id org_slug=slug.clone()
                run_label=format!("experiment “{}”, variant {label}", x.name) />
        })}
    }
}

#[component]
fn GridCard(
    grid: Resource<Result<ExperimentRows, crate::error::AppError>>,
    offset: RwSignal<i64>,
    experiment: uuid::Uuid,
    batch: uuid::Uuid,
    /// Members and up save the disagreements as an evaluation set.
    can_save: bool,
) -> impl IntoView {
    const PAGE: i64 = 50;
    let save = ServerAction::<crate::api::projects::CreateEvaluationSet>::new();
    let save_error = action_error(save);
    let saved = move || {
        save.value().get().and_then(|r| r.ok()).map(|set| view! {
            <p class="banner ok" role="status" data-testid="set-saved">{format!("Saved as evaluation set “{}” v{} ({} rows): run it from the batch page, or with mino eval --set.", set.name, set.version, set.size)}</p>
        })
    };
    let has_disagreements = move || {
        grid.get()
            .and_then(|r| r.ok())
            .is_some_and(|g| g.disagreements > 0)
    };
    view! {
        <section class="card" id="rows">
            <h2>"Rows"</h2>
            <Show when=move || can_save && has_disagreements()>
                <ActionForm action=save attr:class="inline-form">
                    <input type="hidden" name="batch" value=batch.to_string() />
                    <input type="hidden" name="experiment" value=experiment.to_string() />
                    <div class="field">
                        <label for="disagreement-set-name">"Save the rows they disagree on as an evaluation set"</label>
                        <input id="disagreement-set-name" name="name" maxlength="100" required placeholder="e.g. Price regressions" aria-describedby="name-error" />
                    </div>
                    <button type="submit" class="button" data-testid="save-disagreements">"Save set"</button>
                </ActionForm>
                <crate::app::components::FieldError error=save_error field="name" />
                <FormError error=save_error />
                {saved}
            </Show>
            <Transition fallback=|| view! { <p class="muted">"Loading rows…"</p> }>
                {move || grid.get().map(|r| match r {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(g) if g.items.is_empty() => view! { <p class="empty">"No job has finished yet: rows appear here as the variants run."</p> }.into_any(),
                    Ok(g) => {
                        let positions: Vec<i32> = g.items.first().map(|r| r.cells.iter().map(|c| c.position).collect()).unwrap_or_default();
                        let heads = positions.iter().map(|p| view! { <th scope="col">{variant_label(*p)}</th> }).collect_view();
                        let rows = g.items.iter().map(|row| {
                            let expected = row.expected.iter().map(|(k, v)| view! {
                                <div><span class="muted">{format!("{k}: ")}</span>{v.clone().unwrap_or_else(|| "—".into())}</div>
                            }).collect_view();
                            let cells = row.cells.iter().map(|c| {
                                let (class, label) = verdict_badge(c.verdict, &c.state);
                                let values = c.values.iter().map(|(k, v)| {
                                    let wrong = row.expected.get(k).is_some_and(|e| e.is_some() && e != v);
                                    view! { <div class:bad-text=wrong><span class="muted">{format!("{k}: ")}</span>{v.clone().unwrap_or_else(|| "—".into())}</div> }
                                }).collect_view();
                                view! { <td><span class=class>{label}</span>{values}</td> }
                            }).collect_view();
                            view! {
                                <tr class:disagree=row.disagree data-testid="grid-row">
                                    <th scope="row" class="num">{row.row_index}</th>
                                    <td class="url"><a href=row.url.clone() rel="noopener noreferrer" target="_blank">{row.url.clone()}</a></td>
                                    <td>{expected}</td>
                                    {cells}
                                </tr>
                            }
                        }).collect_view();
                        let (from, to, total) = (g.offset + 1, g.offset + g.items.len() as i64, g.total);
                        let last_page = to >= total;
                        view! {
                            <p class="muted small" data-testid="grid-summary">{format!(
                                "{} of {} rows: the variants disagree on these; rows {}–{} shown, disagreements first.",
                                thousands(g.disagreements), thousands(total), thousands(from), thousands(to)
                            )}</p>
                            <div class="table-wrap">
                                <table class="table experiment-rows">
                                    <thead><tr><th scope="col" class="num">"Row"</th><th scope="col">"Site"</th><th scope="col">"Expected"</th>{heads}</tr></thead>
                                    <tbody>{rows}</tbody>
                                </table>
                            </div>
                            <div class="controls">
                                <button type="button" class="button" disabled=move || offset.get() == 0
                                    on:click=move |_| offset.update(|o| *o = (*o - PAGE).max(0))>"Previous"</button>
                                <button type="button" class="button" disabled=last_page
                                    on:click=move |_| offset.update(|o| *o += PAGE)>"Next"</button>
                            </div>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
