//! Cards beside the grid: failure patterns, trends across runs, pasting
//! expected values.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use uuid::Uuid;

use crate::api::results::{get_failure_patterns, get_trends, paste_ground_truth};
use crate::app::components::{ErrorBox, FormError, Loading};
use crate::error::AppError;
use crate::model::{BulkGroundTruthResult, ExpectedValueSaved, Trends};

use super::{done_message, plural};

/// A line of the chart: name, colour, (run, accuracy) points.
type Series = (String, String, Vec<(usize, f64)>);

/// Why fields failed, by pattern, with examples linking to their jobs.
#[component]
pub fn FailurePatternsCard(
    id: Uuid,
    org_slug: String,
    changed: RwSignal<u32>,
    /// A saved expected value's new patterns, until the next read.
    edited: RwSignal<Option<ExpectedValueSaved>>,
    progress: Memo<(bool, i64)>,
) -> impl IntoView {
    // Read again as the run moves on (in twentieths), as the accuracy
    // table is, so the two agree while a run is live.
    let data = Resource::new(
        move || (changed.get(), progress.get()),
        move |_| get_failure_patterns(id),
    );
    let label = |p: &str| match p {
        "missing" => "Nothing extracted",
        "wrong_type" => "Not a value of the field's type",
        "partial" => "Close but not equal",
        "wrong_value" => "Wrong value",
        _ => "Agent error (the job failed)",
    };
    view! {
        <section class="card">
            <h2>"Failure patterns"</h2>
            <Transition fallback=|| view! { <Loading /> }>
                {move || {
                    let slug = org_slug.clone();
                    let fresh = edited.with(|e| e.as_ref().map(|e| e.patterns.clone()));
                    Suspend::new(async move {
                        let patterns = match fresh {
                            Some(p) => Ok(p),
                            None => data.await,
                        };
                        match patterns {
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                            Ok(p) if p.fields.iter().all(|f| f.patterns.is_empty()) => view! {
                                <p class="empty">"No failures to explain: every judged field passed (or nothing has been judged yet)."</p>
                            }.into_any(),
                            Ok(p) => view! {
                                <div class="patterns" data-testid="failure-patterns">
                                    {p.fields.into_iter().filter(|f| !f.patterns.is_empty()).map(|f| {
                                        let slug = slug.clone();
                                        view! {
                                            <div class="pattern-field">
                                                <h3>{f.field.clone()} <span class="muted small">{format!(" · {} judged", f.judged)}</span></h3>
                                                {f.patterns.into_iter().map(|p| {
                                                    let slug = slug.clone();
                                                    view! {
                                                        <details>
                                                            <summary><strong>{p.count}</strong> " " {label(&p.pattern)}</summary>
                                                            <ul class="examples">
                                                                {p.examples.into_iter().map(|e| view! {
                                                                    <li>
                                                                        <a href=format!("/o/{slug}/jobs/{}", e.job_id)>{format!("Row {}", e.row_index)}</a>
                                                                        ": got " <code>{e.extracted.clone().unwrap_or_else(|| "nothing".into())}</code>
                                                                        ", expected " <code>{e.expected.clone().unwrap_or_default()}</code>
                                                                        <span class="muted small">{format!(" — {}", e.detail)}</span>
                                                                    </li>
                                                                }).collect_view()}
                                                            </ul>
                                                        </details>
                                                    }
                                                }).collect_view()}
                                            </div>
                                        }
                                    }).collect_view()}
                                </div>
                            }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

/// The trend of accuracy across a batch's runs, as an SVG line chart drawn
/// on the server (readable without JavaScript), with a table of the same
/// figures for screen readers and exact values.
#[component]
pub fn TrendsCard(batch_id: Uuid, org_slug: String) -> impl IntoView {
    let data = Resource::new(move || batch_id, get_trends);
    view! {
        <section class="card">
            <h2>"Accuracy across runs"</h2>
            <Transition fallback=|| view! { <Loading /> }>
                {move || {
                    let slug = org_slug.clone();
                    Suspend::new(async move {
                        match data.await {
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                            Ok(t) if t.points.iter().all(|p| p.accuracy.is_none()) => view! {
                                <p class="empty">"No run of this batch has been judged yet: start a run, and its accuracy per field shows here, run after run."</p>
                            }.into_any(),
                            Ok(t) => view! { <TrendChart trends=t org_slug=slug /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

const SERIES: &[&str] = &[
    "#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
];

#[component]
fn TrendChart(trends: Trends, org_slug: String) -> impl IntoView {
    let (w, h, left, right, top, bottom) = (640.0f64, 220.0f64, 40.0, 12.0, 12.0, 28.0);
    let n = trends.points.len().max(1);
    let x = move |i: usize| {
        if n == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = move |v: f64| top + (h - top - bottom) * (1.0 - v);
    let mut series: Vec<Series> = vec![(
        "all fields".into(),
        "#111827".into(),
        trends
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.accuracy.map(|a| (i, a)))
            .collect(),
    )];
    for (k, f) in trends.fields.iter().enumerate() {
        series.push((
            f.clone(),
            SERIES[k % SERIES.len()].to_string(),
            trends
                .points
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.fields.get(f).map(|a| (i, *a)))
                .collect(),
        ));
    }
    let grid = [0.0, 0.25, 0.5, 0.75, 1.0]
        .into_iter()
        .map(|v| {
            view! {
                <line x1=num(left) x2=num(w - right) y1=num(y(v)) y2=num(y(v)) class="chart-grid" />
                <text x=num(left - 6.0) y=num(y(v) + 4.0) text-anchor="end" class="chart-label">{format!("{:.0}%", v * 100.0)}</text>
            }
        })
        .collect_view();
    let ticks = trends
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            view! { <text x=num(x(i)) y=num(h - 8.0) text-anchor="middle" class="chart-label">{format!("v{} #{}", p.instruction_version, i + 1)}</text> }
        })
        .collect_view();
    let lines = series
        .iter()
        .map(|(name, colour, pts)| {
            let d = pts
                .iter()
                .map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v)))
                .collect::<Vec<_>>()
                .join(" ");
            let dots = pts
                .iter()
                .map(|(i, v)| view! { <circle cx=num(x(*i)) cy=num(y(*v)) r="3" fill=colour.clone()></circle> })
                .collect_view();
            let width = if name == "all fields" { "2.5" } else { "1.5" };
            view! { <polyline points=d fill="none" stroke=colour.clone() stroke-width=width /> {dots} }
        })
        .collect_view();
    let legend = series
        .iter()
        .map(|(name, colour, _)| view! { <li><span class="swatch" style=format!("background: {colour}")></span>{name.clone()}</li> })
        .collect_view();
    let rows = trends
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cells = trends
                .fields
                .iter()
                .map(|f| view! { <td class="num">{p.fields.get(f).map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "—".into())}</td> })
                .collect_view();
            view! {
                <tr>
                    <td><a href=format!("/o/{org_slug}/executions/{}", p.execution_id)>{format!("#{} · {} run", i + 1, p.mode)}</a>
                        <span class="muted small">{format!(" · v{} · {}", p.instruction_version, p.created_at.format("%Y-%m-%d %H:%M"))}</span></td>
                    <td class="num"><strong>{p.accuracy.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "—".into())}</strong></td>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    let heads = trends
        .fields
        .iter()
        .map(|f| view! { <th scope="col" class="num">{f.clone()}</th> })
        .collect_view();
    view! {
        <svg viewBox=format!("0 0 {w} {h}") class="chart" role="img" aria-label="Accuracy per field across this batch's runs" data-testid="trend-chart">
            {grid}{ticks}{lines}
        </svg>
        <ul class="legend">{legend}</ul>
        <div class="table-wrap">
            <table data-testid="trend-table">
                <thead><tr><th scope="col">"Run"</th><th scope="col" class="num">"Accuracy"</th>{heads}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// Pasting expected values for one field: two columns (row number or URL,
/// value) as copied from a spreadsheet; a preview first.
#[component]
pub fn PasteGroundTruth(
    batch_id: Uuid,
    fields: Vec<String>,
    /// Set to what a save did; owned by the page, which reads the batch
    /// again when `saved` moves (this card is rebuilt with it).
    notice: RwSignal<Option<String>>,
    saved: RwSignal<u32>,
) -> impl IntoView {
    let field = RwSignal::new(fields.first().cloned().unwrap_or_default());
    let pasted = RwSignal::new(String::new());
    let preview = RwSignal::new(None::<BulkGroundTruthResult>);
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    // Which input the preview came from, so "save" sends the same one.
    let from_file = RwSignal::new(false);
    let file_input: NodeRef<leptos::html::Input> = NodeRef::new();
    let chosen_file = move || {
        file_input
            .get_untracked()
            .and_then(|i| i.files())
            .and_then(|l| l.get(0))
    };
    let run = move |dry: bool| {
        busy.set(true);
        error.set(None);
        notice.set(None);
        let (f, t, file) = (
            field.get_untracked(),
            pasted.get_untracked(),
            from_file.get_untracked(),
        );
        let chosen = if file { chosen_file() } else { None };
        spawn_local(async move {
            let answer = match chosen {
                // A file goes to the REST endpoint as it is (the session
                // cookie authenticates it), like a batch upload.
                Some(file) => {
                    let url =
                        format!("/api/v1/batches/{batch_id}/ground-truth/bulk-set?preview={dry}");
                    match crate::app::upload::post_blob(&url, &file, |_| {}).await {
                        Ok((200, body)) => serde_json::from_str::<BulkGroundTruthResult>(&body)
                            .map_err(|_| AppError::Internal("unreadable answer".into())),
                        Ok((_, body)) => Err(AppError::Validation {
                            message: serde_json::from_str::<Value>(&body)
                                .ok()
                                .and_then(|v| v["error"].as_str().map(str::to_string))
                                .unwrap_or_else(|| "The file was refused.".into()),
                            fields: vec![],
                        }),
                        Err(e) => Err(AppError::Validation {
                            message: e,
                            fields: vec![],
                        }),
                    }
                }
                None if file => Err(AppError::field("file", "Choose a CSV file first.")),
                None => paste_ground_truth(batch_id, f, t, dry).await,
            };
            match answer {
                Ok(r) if dry => preview.set(Some(r)),
                Ok(r) => {
                    preview.set(None);
                    pasted.set(String::new());
                    notice.set(Some(done_message(&r)));
                    saved.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let error_signal = Signal::derive(move || error.get());
    let options = fields
        .iter()
        .map(|f| view! { <option value=f.clone()>{f.clone()}</option> })
        .collect_view();
    view! {
        <section class="card">
            <h2>"Set expected values in bulk"</h2>
            <p class="hint">"Copy two columns from a spreadsheet — the row number (or the URL) and the value — and paste them here, or choose a CSV file with a row, row_id or url column and one column per field. Empty values are skipped. You'll see the changes before they are saved."</p>
            <FormError error=error_signal />
            {move || notice.get().map(|n| view! { <p class="banner ok" role="status" data-testid="paste-notice">{n}</p> })}
            <form on:submit=move |ev| { ev.prevent_default(); from_file.set(false); run(true); }>
                <div class="field">
                    <label for="paste-field">"Field"</label>
                    <select id="paste-field" prop:value=move || field.get() on:change=move |ev| field.set(event_target_value(&ev))>{options}</select>
                </div>
                <div class="field">
                    <label for="paste-text">"Row (or URL) and value, one per line"</label>
                    <textarea id="paste-text" rows="5" placeholder="3\t19.99\n4\t5.00" prop:value=move || pasted.get()
                        on:input=move |ev| { pasted.set(event_target_value(&ev)); preview.set(None); } data-testid="paste-text"></textarea>
                </div>
                <button type="submit" class="button" disabled=move || busy.get() || pasted.get().trim().is_empty()>"Preview"</button>
            </form>
            <form class="inline-form" on:submit=move |ev| { ev.prevent_default(); from_file.set(true); run(true); }>
                <div class="field">
                    <label for="gt-file">"Or a CSV file"</label>
                    <input id="gt-file" type="file" accept=".csv,.tsv,.txt,text/csv" node_ref=file_input
                        on:change=move |_| preview.set(None) data-testid="gt-file" />
                </div>
                <button type="submit" class="button" disabled=move || busy.get()>"Preview file"</button>
            </form>
            {move || preview.get().map(|p| {
                if p.values_changed == 0 {
                    return view! { <p class="banner" role="status">{format!("Nothing to change: the {} already have these values.", plural(p.rows_matched, "row"))}</p> }.into_any();
                }
                view! {
                    <div class="confirm-box" role="alertdialog" aria-label="Confirm" data-testid="paste-confirm">
                        <p>{format!("Change {} in {}? Every run of this batch is judged again.", plural(p.values_changed, "expected value"), plural(p.rows_changed, "row"))}</p>
                        <ul class="examples">{p.samples.iter().map(|s| view! {
                            <li>{format!("Row {} · {}: ", s.row_index, s.field)} <code>{s.before.clone().unwrap_or_else(|| "—".into())}</code> " → " <code>{s.after.clone().unwrap_or_else(|| "—".into())}</code></li>
                        }).collect_view()}</ul>
                        <div class="controls">
                            <button type="button" class="button primary" disabled=move || busy.get() on:click=move |_| run(false) data-testid="paste-apply">"Yes, save"</button>
                            <button type="button" class="button" on:click=move |_| preview.set(None)>"Cancel"</button>
                        </div>
                    </div>
                }.into_any()
            })}
        </section>
    }
}
