//! Uploading a batch (pick or drop a CSV, preview its schema and first
//! rows, correct column types, confirm with an upload progress bar) and a
//! batch's page (coverage, schema, searchable rows, rename, delete).

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use crate::api::projects::{
    get_batch, get_project, list_evaluation_sets, list_executions, list_rows, CreateEvaluationSet,
    DeleteBatch, DeleteEvaluationSet, RenameBatch, StartExecution,
};
use crate::app::components::{
    action_error, invalid, when, ErrorBox, FieldError, FormError, Loading, NeedsJavascript,
};
use crate::app::hooks::{use_id, use_query};
use crate::error::AppError;
use crate::model::{
    Batch, ColumnRole, Concurrency, CsvReport, FileProblem, FileProblemCode, ValueType,
};

/// The preview reads this much of the file; the rest is read on upload.
const PREVIEW_BYTES: f64 = 1024.0 * 1024.0;

#[derive(Clone, PartialEq)]
enum Stage {
    Choose,
    Reading,
    Ready,
    Uploading(f64),
    Saving,
}

/// An upload refusal as the REST API describes it.
#[derive(Clone, PartialEq, serde::Deserialize)]
struct Refusal {
    error: String,
    code: String,
    #[serde(default)]
    details: serde_json::Value,
}

fn human_size(bytes: f64) -> String {
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.1} MB", bytes / 1024.0 / 1024.0)
    } else {
        format!("{:.0} KB", (bytes / 1024.0).ceil())
    }
}

fn file_stem(name: &str) -> String {
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
    stem.chars().take(100).collect()
}

#[component]
pub fn UploadPage() -> impl IntoView {
    let id = use_id();
    let project = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_project(id).await,
                None => Err(AppError::NotFound("Project".into())),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match project.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok(p) if !p.can_edit() => view! {
                        <crate::app::components::project_head::ProjectHead project=p.clone() current="overview" />
                        <section class="card"><p>"Viewers can read batches but not upload them. Ask a member of the team to upload."</p></section>
                    }.into_any(),
                    Ok(p) => view! {
                        <crate::app::components::project_head::ProjectHead project=p.clone() current="overview" />
                        <Uploader project_id=p.id.to_string() org_slug=p.org_slug.clone() />
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Uploader(project_id: String, org_slug: String) -> impl IntoView {
    let stage = RwSignal::new(Stage::Choose);
    let report = RwSignal::new(None::<CsvReport>);
    let refusal = RwSignal::new(None::<Refusal>);
    let file_label = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let url_column = RwSignal::new(None::<String>);
    let types = RwSignal::new(BTreeMap::<String, ValueType>::new());
    let dragging = RwSignal::new(false);
    let navigate = use_navigate();
    let base = format!("/api/v1/projects/{project_id}/batches");

    let preview_url = base.clone();
    let choose = move |f: leptos::web_sys::File| {
        let size = f.size();
        file_label.set(format!("{} · {}", f.name(), human_size(size)));
        name.set(file_stem(&f.name()));
        report.set(None);
        refusal.set(None);
        url_column.set(None);
        types.set(BTreeMap::new());
        stage.set(Stage::Reading);
        crate::app::upload::remember(f.clone());
        let url = format!("{preview_url}/preview?partial={}", size > PREVIEW_BYTES);
        leptos::task::spawn_local(async move {
            let answer = match crate::app::upload::head(&f, PREVIEW_BYTES) {
                Ok(blob) => crate::app::upload::post_blob(&url, &blob, |_| {}).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok((200, body)) => match serde_json::from_str::<CsvReport>(&body) {
                    Ok(r) => {
                        url_column.set(
                            r.columns
                                .iter()
                                .find(|c| c.role == ColumnRole::Url)
                                .map(|c| c.name.clone()),
                        );
                        report.set(Some(r));
                        stage.set(Stage::Ready);
                    }
                    Err(_) => {
                        refusal.set(Some(Refusal {
                            error: "The server's answer could not be read.".into(),
                            code: "INTERNAL_ERROR".into(),
                            details: Default::default(),
                        }));
                        stage.set(Stage::Choose);
                    }
                },
                Ok((_, body)) => {
                    refusal.set(Some(serde_json::from_str(&body).unwrap_or(Refusal {
                        error: body,
                        code: "ERROR".into(),
                        details: Default::default(),
                    })));
                    stage.set(Stage::Choose);
                }
                Err(message) => {
                    refusal.set(Some(Refusal {
                        error: message,
                        code: "NETWORK".into(),
                        details: Default::default(),
                    }));
                    stage.set(Stage::Choose);
                }
            }
        });
    };
    let choose_input = choose.clone();
    let on_pick = move |ev: leptos::ev::Event| {
        let input: leptos::web_sys::HtmlInputElement = event_target(&ev);
        if let Some(f) = input.files().and_then(|l| l.get(0)) {
            choose_input(f);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if let Some(f) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|l| l.get(0))
        {
            choose(f);
        }
    };

    let slug = org_slug.clone();
    let upload = move |skip_invalid: bool| {
        let Some(f) = crate::app::upload::chosen() else {
            return;
        };
        let r = report.get_untracked();
        let detected: BTreeMap<String, ValueType> = r
            .as_ref()
            .map(|r| {
                r.columns
                    .iter()
                    .map(|c| (c.name.clone(), c.detected_type))
                    .collect()
            })
            .unwrap_or_default();
        let changed: BTreeMap<String, String> = types
            .get_untracked()
            .into_iter()
            .filter(|(col, t)| detected.get(col) != Some(t))
            .map(|(col, t)| (col, t.as_str().to_string()))
            .collect();
        let mut query = vec![("name", name.get_untracked()), ("file_name", f.name())];
        if let Some(u) = url_column.get_untracked() {
            query.push(("url_column", u));
        }
        if !changed.is_empty() {
            query.push(("types", serde_json::to_string(&changed).unwrap_or_default()));
        }
        if skip_invalid {
            query.push(("skip_invalid_urls", "true".into()));
        }
        let qs = query
            .into_iter()
            .map(|(k, v)| format!("{k}={}", crate::nav::encode(&v)))
            .collect::<Vec<_>>()
            .join("&");
        let url = format!("{base}?{qs}");
        refusal.set(None);
        stage.set(Stage::Uploading(0.0));
        let navigate = navigate.clone();
        let slug = slug.clone();
        leptos::task::spawn_local(async move {
            let answer = crate::app::upload::post_blob(&url, &f, move |p| {
                stage.set(if p >= 1.0 {
                    Stage::Saving
                } else {
                    Stage::Uploading(p)
                });
            })
            .await;
            match answer {
                Ok((201, body)) => {
                    let batch: Result<Batch, _> = serde_json::from_str(&body);
                    match batch {
                        Ok(b) => {
                            navigate(&format!("/o/{slug}/batches/{}", b.id), Default::default())
                        }
                        Err(_) => stage.set(Stage::Ready),
                    }
                }
                Ok((_, body)) => {
                    refusal.set(Some(serde_json::from_str(&body).unwrap_or(Refusal {
                        error: body,
                        code: "ERROR".into(),
                        details: Default::default(),
                    })));
                    stage.set(Stage::Ready);
                }
                Err(message) => {
                    refusal.set(Some(Refusal {
                        error: message,
                        code: "NETWORK".into(),
                        details: Default::default(),
                    }));
                    stage.set(Stage::Ready);
                }
            }
        });
    };
    let upload_plain = upload.clone();
    let busy = move || {
        matches!(
            stage.get(),
            Stage::Reading | Stage::Uploading(_) | Stage::Saving
        )
    };

    view! {
        <section class="card">
            <h2>"Upload a batch"</h2>
            <p class="muted">"A CSV (comma, semicolon or tab separated, UTF-8) with one row per site: a URL column, "
                <code>"gt_<field>"</code> " columns with the values you expect, and any other columns as inputs. Up to 1,000,000 rows and 200 MB."</p>
            <label for="csv-file" class="dropzone" class:dragging=move || dragging.get()
                on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop>
                <strong>"Drop a CSV file here"</strong>
                <span class="muted">" or choose one: "</span>
                <input type="file" id="csv-file" accept=".csv,.tsv,.txt,text/csv,text/tab-separated-values" on:change=on_pick disabled=busy />
            </label>
            <NeedsJavascript what="Uploading" />
            {move || (!file_label.get().is_empty()).then(|| view! { <p class="small">"File: " <strong>{file_label.get()}</strong></p> })}
            {move || (stage.get() == Stage::Reading).then(|| view! { <p class="loading" role="status">"Reading the start of the file…"</p> })}
            {move || refusal.get().map(|r| view! { <RefusalBox refusal=r on_skip=upload.clone() /> })}
        </section>
        {move || report.get().map(|r| {
            let upload_plain = upload_plain.clone();
            view! {
                <PreviewCard report=r url_column types />
                <section class="card">
                    <h2>"Create the batch"</h2>
                    <label for="batch-name">"Batch name"</label>
                    <input id="batch-name" maxlength="100" prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                    {move || match stage.get() {
                        Stage::Uploading(p) => view! {
                            <div class="progress" role="progressbar" aria-label="Upload progress"
                                aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{:.0}", p * 100.0)>
                                <div class="progress-bar" style=format!("width: {:.1}%", p * 100.0)></div>
                            </div>
                            <p class="small" role="status">"Uploading… " {format!("{:.0}%", p * 100.0)}</p>
                        }.into_any(),
                        Stage::Saving => view! {
                            <div class="progress indeterminate" role="progressbar" aria-label="Saving rows"><div class="progress-bar"></div></div>
                            <p class="small" role="status">"Checking and saving every row…"</p>
                        }.into_any(),
                        _ => ().into_any(),
                    }}
                    <button type="button" class="button primary" disabled=busy on:click=move |_| upload_plain(false)>
                        "Create batch"
                    </button>
                </section>
            }
        })}
    }
}

/// Why the server refused the file, where, and — for invalid URLs — the
/// choice to skip those rows.
#[component]
fn RefusalBox<F>(refusal: Refusal, on_skip: F) -> impl IntoView
where
    F: Fn(bool) + Clone + 'static,
{
    let invalid_urls = refusal.code == "CSV_INVALID_URLS";
    let examples: Vec<(u64, String)> = refusal
        .details
        .get("invalid_urls")
        .and_then(|v| v.get("examples"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    view! {
        <div class="alert alert-error" role="alert" data-testid="upload-error">
            <p><strong>{refusal.error.clone()}</strong> <span class="muted">" (" {refusal.code.clone()} ")"</span></p>
            {(!examples.is_empty()).then(|| view! {
                <ul class="small">
                    {examples.into_iter().map(|(line, value)| view! {
                        <li>"Line " {line} ": " <code>{if value.is_empty() { "(empty)".to_string() } else { value }}</code></li>
                    }).collect_view()}
                </ul>
            })}
            {invalid_urls.then(|| view! {
                <button type="button" class="button" on:click=move |_| on_skip(true)>"Skip those rows and create the batch"</button>
            })}
        </div>
    }
}

/// The detected schema (with type and URL-column choices) and the first
/// rows, as the server read them.
#[component]
fn PreviewCard(
    report: CsvReport,
    url_column: RwSignal<Option<String>>,
    types: RwSignal<BTreeMap<String, ValueType>>,
) -> impl IntoView {
    let delimiter = match report.delimiter.as_str() {
        "\t" => "tab",
        ";" => "semicolon",
        _ => "comma",
    };
    let rows_note = if report.complete {
        format!("{} rows", report.rows)
    } else {
        format!(
            "{}+ rows (from the first megabyte; all are read on upload)",
            report.rows
        )
    };
    let problem = report.problem.clone();
    let header: Vec<String> = report.columns.iter().map(|c| c.name.clone()).collect();
    let schema = report
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let col = c.name.clone();
            let is_gt = c.role == ColumnRole::GroundTruth;
            let detected = c.detected_type;
            let samples: Vec<String> = report
                .preview
                .iter()
                .filter_map(|r| r.cells.get(i).cloned())
                .filter(|v| !v.is_empty())
                .take(2)
                .collect();
            let (c1, c2, c3) = (col.clone(), col.clone(), col.clone());
            let select_id = format!("type-{i}");
            view! {
                <tr>
                    <th scope="row"><code>{col.clone()}</code></th>
                    <td>
                        {if is_gt {
                            view! { <span>"expected " <strong>{c.field.clone()}</strong></span> }.into_any()
                        } else {
                            view! {
                                <label class="check">
                                    <input type="radio" name="url-column" value=c1.clone()
                                        prop:checked=move || url_column.get().as_deref() == Some(c1.as_str())
                                        on:change=move |_| url_column.set(Some(c2.clone())) />
                                    {move || if url_column.get().as_deref() == Some(c3.as_str()) { "URL" } else { "input" }}
                                </label>
                            }.into_any()
                        }}
                    </td>
                    <td>
                        <label class="sr-only" for=select_id.clone()>"Type of " {col.clone()}</label>
                        <select id=select_id data-column=col.clone()
                            on:change=move |ev| {
                                if let Some(t) = ValueType::parse(&event_target_value(&ev)) {
                                    types.update(|m| { m.insert(col.clone(), t); });
                                }
                            }>
                            {ValueType::ALL.into_iter().map(|t| view! {
                                <option value=t.as_str() selected=t == detected>
                                    {t.as_str()} {(t == detected).then_some(" (detected)")}
                                </option>
                            }).collect_view()}
                        </select>
                    </td>
                    <td class="small muted clip hide-narrow">{samples.join(" · ")}</td>
                </tr>
            }
        })
        .collect_view();
    let rows = report
        .preview
        .iter()
        .map(|r| view! {
            <tr>
                <td class="ln">{r.line}</td>
                {r.cells.iter().map(|c| view! { <td class="clip" title=c.clone()>{c.clone()}</td> }).collect_view()}
            </tr>
        })
        .collect_view();
    view! {
        <section class="card" data-testid="preview">
            <h2>"Preview"</h2>
            <p class="muted small">{rows_note} " · " {delimiter} "-separated" {report.has_bom.then_some(" · UTF-8 with BOM")}
                {(report.invalid_urls.count > 0).then(|| format!(" · {} invalid URLs so far", report.invalid_urls.count))}</p>
            {problem.map(|p| view! { <ProblemNote problem=p /> })}
            <h3>"Columns"</h3>
            <div class="table-wrap">
                <table class="schema">
                    <thead><tr><th scope="col">"Column"</th><th scope="col">"Role"</th><th scope="col">"Type"</th><th scope="col" class="hide-narrow">"Sample"</th></tr></thead>
                    <tbody>{schema}</tbody>
                </table>
            </div>
            <h3>"First rows"</h3>
            <div class="table-wrap">
                <table class="preview">
                    <thead><tr><th scope="col" class="ln">"Line"</th>{header.into_iter().map(|h| view! { <th scope="col">{h}</th> }).collect_view()}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn ProblemNote(problem: FileProblem) -> impl IntoView {
    let hint = match problem.code {
        FileProblemCode::CsvInvalidUrls => "You can still upload and skip those rows.",
        FileProblemCode::CsvNoUrlColumn => "Choose the URL column below, or rename it to \"url\".",
        _ => "Fix the file and choose it again.",
    };
    view! {
        <div class="alert alert-error" role="alert" data-testid="preview-problem">
            <p><strong>{problem.located_message()}</strong> <span class="muted">" (" {problem.code.as_str()} ")"</span></p>
            <p class="small">{hint}</p>
        </div>
    }
}

#[component]
pub fn BatchPage() -> impl IntoView {
    let id = use_id();
    let q = use_query("q");
    let after = use_query("after");
    let rename = ServerAction::<RenameBatch>::new();
    let delete = ServerAction::<DeleteBatch>::new();
    let start = ServerAction::<StartExecution>::new();
    let create_set = ServerAction::<CreateEvaluationSet>::new();
    let delete_set = ServerAction::<DeleteEvaluationSet>::new();
    // The set form empties after a save, ready for the next set.
    let set_name = RwSignal::new(String::new());
    let set_rows = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(_)) = create_set.value().get() {
            set_name.set(String::new());
            set_rows.set(String::new());
        }
    });
    let start_error = action_error(start);
    let rename_error = action_error(rename);
    let delete_error = action_error(delete);
    // Bulk-set expected values change the rows, coverage and trends shown.
    let gt_saved = RwSignal::new(0u32);
    let gt_notice = RwSignal::new(None::<String>);
    let data = Resource::new(
        move || {
            (
                id.get(),
                q.get(),
                after.get(),
                rename.version().get(),
                gt_saved.get(),
                (create_set.version().get(), delete_set.version().get()),
            )
        },
        |(id, q, after, _, _, _)| async move {
            let id = id.ok_or_else(|| AppError::NotFound("Batch".into()))?;
            let batch = get_batch(id).await?;
            let rows = list_rows(id, q.unwrap_or_default(), after).await?;
            let runs = list_executions(id).await?;
            let project = get_project(batch.project_id).await?;
            let sets = list_evaluation_sets(id).await?;
            Ok::<_, AppError>((batch, rows, runs, project, sets))
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    Ok((b, rows, runs, project, sets)) => {
                        let here = format!("/o/{}/batches/{}", b.org_slug, b.id);
                        let project_href = format!("/o/{}/projects/{}", b.org_slug, b.project_id);
                        let inputs: Vec<String> = b.columns.iter().filter(|c| c.role == ColumnRole::Input).map(|c| c.name.clone()).collect();
                        let fields: Vec<String> = b.columns.iter().filter_map(|c| c.field.clone()).collect();
                        let query = q.get_untracked().unwrap_or_default();
                        let searching = !query.is_empty();
                        let next = rows.next_cursor.clone().map(|c| {
                            let mut href = format!("{here}?after={c}");
                            if searching { href.push_str(&format!("&q={}", crate::nav::encode(&query))); }
                            href
                        });
                        let first = after.get_untracked().is_some().then(|| {
                            if searching { format!("{here}?q={}", crate::nav::encode(&query)) } else { here.clone() }
                        });
                        let coverage = fields.iter().map(|f| {
                            let n = b.gt_coverage.get(f).copied().unwrap_or(0);
                            let pct = if b.row_count > 0 { n as f64 * 100.0 / b.row_count as f64 } else { 0.0 };
                            view! {
                                <tr>
                                    <th scope="row">{f.clone()}</th>
                                    <td class="bar-cell">
                                        <div class="bar" role="img" aria-label=format!("{pct:.0}% of rows have an expected {f}")>
                                            <div class="bar-fill" style=format!("width: {pct:.1}%")></div>
                                        </div>
                                    </td>
                                    <td class="num">{n} " / " {b.row_count} <span class="muted">{format!(" ({pct:.0}%)")}</span></td>
                                </tr>
                            }
                        }).collect_view();
                        let schema = b.columns.iter().map(|c| {
                            let role = match c.role { ColumnRole::Url => "URL", ColumnRole::Input => "input", ColumnRole::GroundTruth => "expected value" };
                            view! {
                                <tr>
                                    <th scope="row"><code>{c.name.clone()}</code></th>
                                    <td>{role}</td>
                                    <td>{c.value_type.as_str()}
                                        {(c.value_type != c.detected_type).then(|| view! { <span class="muted small">" (detected " {c.detected_type.as_str()} ")"</span> })}</td>
                                </tr>
                            }
                        }).collect_view();
                        let (inputs2, fields2) = (inputs.clone(), fields.clone());
                        let body = rows.items.iter().map(|r| {
                            view! {
                                <tr>
                                    <td class="ln">{r.row_index}</td>
                                    <td class="clip url"><a href=r.site_url.clone() rel="noopener noreferrer" target="_blank" title=r.site_url.clone()>{r.site_url.clone()}</a></td>
                                    {inputs2.iter().map(|c| {
                                        let v = r.inputs.get(c).cloned().unwrap_or_default();
                                        view! { <td class="clip" title=v.clone()>{v.clone()}</td> }
                                    }).collect_view()}
                                    {fields2.iter().map(|f| match r.ground_truth.get(f) {
                                        Some(v) => view! { <td class="clip gt" title=v.clone()>{v.clone()}</td> }.into_any(),
                                        None => view! { <td class="gt missing"><span class="sr-only">"no expected value"</span>"—"</td> }.into_any(),
                                    }).collect_view()}
                                </tr>
                            }
                        }).collect_view();
                        let empty_rows = rows.items.is_empty();
                        let can_edit = b.can_edit();
                        let can_delete = b.can_delete();
                        let (rename_id, delete_id) = (b.id.to_string(), b.id.to_string());
                        let (rename_name, delete_name) = (b.name.clone(), b.name.clone());
                        view! {
                            <Title text=b.name.clone() />
                            <crate::app::components::crumbs::Crumbs items=vec![
                                ("Projects".to_string(), format!("/o/{}/projects", b.org_slug)),
                                (b.project_name.clone(), project_href.clone()),
                            ] />
                            <div class="page-head"><h1>{b.name.clone()}</h1></div>
                            <div class="grid">
                                <section class="card">
                                    <h2>"Rows"</h2>
                                    <p class="stat" data-testid="row-count">{b.row_count}</p>
                                    {(b.skipped_rows > 0).then(|| view! { <p class="muted small">{b.skipped_rows} " rows with invalid URLs were skipped"</p> })}
                                </section>
                                <section class="card">
                                    <h2>"File"</h2>
                                    <p>{b.file_name.clone().unwrap_or_else(|| "uploaded through the API".into())}</p>
                                    <p class="muted small">{human_size(b.file_bytes as f64)} " · URL column " <code>{b.url_column.clone()}</code></p>
                                    <p class="muted small">"Uploaded " {when(b.created_at)} {b.created_by_name.clone().map(|n| format!(" by {n}"))}</p>
                                </section>
                            </div>
                            {
                                let field_names: Vec<String> = project.fields.iter().map(|f| f.name.clone()).collect();
                                let paste = (can_edit && !field_names.is_empty()).then(|| view! {
                                    <crate::app::components::results::PasteGroundTruth batch_id=b.id fields=field_names notice=gt_notice saved=gt_saved />
                                });
                                view! {
                                    <RunCard batch=b.clone() runs=runs.items.clone() project sets=sets.clone() start start_error />
                                    <EvaluationSetsCard batch=b.clone() sets runs=runs.items can_edit create=create_set delete=delete_set set_name set_rows />
                                    {can_edit.then(|| view! { <ImportRunCard batch_id=b.id org_slug=b.org_slug.clone() /> })}
                                    <crate::app::components::results::TrendsCard batch_id=b.id org_slug=b.org_slug.clone() />
                                    <crate::app::components::exports::ExportHistory batch_id=b.id />
                                    {paste}
                                }
                            }
                            <section class="card">
                                <h2>"Ground-truth coverage"</h2>
                                {if fields.is_empty() {
                                    view! { <p class="empty">"This batch has no " <code>"gt_<field>"</code> " columns, so results can't be checked against expected values."</p> }.into_any()
                                } else {
                                    view! { <table class="coverage"><tbody>{coverage}</tbody></table> }.into_any()
                                }}
                                <details>
                                    <summary>"Columns"</summary>
                                    <table class="schema"><thead><tr><th scope="col">"Column"</th><th scope="col">"Role"</th><th scope="col">"Type"</th></tr></thead><tbody>{schema}</tbody></table>
                                </details>
                            </section>
                            <section class="card">
                                <div class="section-head">
                                    <h2>"Sites"</h2>
                                    <form method="get" action=here.clone() class="search" role="search">
                                        <label for="row-search" class="sr-only">"Search URLs and values"</label>
                                        <input id="row-search" type="search" name="q" value=query.clone() placeholder="Search URLs and values" />
                                        <button type="submit" class="button small">"Search"</button>
                                    </form>
                                </div>
                                {if empty_rows {
                                    view! { <p class="empty">{if searching { format!("No row matches {query:?}.") } else { "No rows.".to_string() }}</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="table-wrap tall">
                                            <table class="rows">
                                                <thead><tr>
                                                    <th scope="col" class="ln">"#"</th>
                                                    <th scope="col">"URL"</th>
                                                    {inputs.iter().map(|c| view! { <th scope="col">{c.clone()}</th> }).collect_view()}
                                                    {fields.iter().map(|f| view! { <th scope="col" class="gt">"expected " {f.clone()}</th> }).collect_view()}
                                                </tr></thead>
                                                <tbody>{body}</tbody>
                                            </table>
                                        </div>
                                    }.into_any()
                                }}
                                <nav class="pager" aria-label="Pages">
                                    {first.map(|h| view! { <a href=h>"← First rows"</a> })}
                                    {next.map(|h| view! { <a href=h>"Next rows →"</a> })}
                                </nav>
                            </section>
                            {can_edit.then(move || view! {
                                <section class="card">
                                    <h2>"Rename"</h2>
                                    <FormError error=rename_error />
                                    <ActionForm action=rename attr:class="inline-form">
                                        <input type="hidden" name="id" value=rename_id />
                                        <div class="field grow">
                                            <label for="batch-name">"Batch name"</label>
                                            <input id="batch-name" name="name" required maxlength="100" value=rename_name
                                                aria-invalid=invalid(rename_error, "name") aria-describedby="name-error" />
                                        </div>
                                        <button type="submit" class="button">"Rename"</button>
                                    </ActionForm>
                                    <FieldError error=rename_error field="name" />
                                </section>
                            })}
                            {can_delete.then(move || view! {
                                <section class="card danger">
                                    <h2>"Delete batch"</h2>
                                    <p>"Deleting removes the batch's " {b.row_count} " rows and their expected values. This cannot be undone."</p>
                                    <details class="confirm">
                                        <summary class="button danger">"Delete batch…"</summary>
                                        <FormError error=delete_error />
                                        <ActionForm action=delete>
                                            <input type="hidden" name="id" value=delete_id />
                                            <label for="confirm">"Type " <strong>{delete_name}</strong> " to confirm"</label>
                                            <input id="confirm" name="confirm" required autocomplete="off" aria-describedby="confirm-error" />
                                            <FieldError error=delete_error field="confirm" />
                                            <button type="submit" class="button danger">"Delete forever"</button>
                                        </ActionForm>
                                    </details>
                                </section>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Starting a run, with its estimated cost, and the batch's runs so far.
#[component]
fn RunCard(
    batch: Batch,
    runs: Vec<crate::model::Execution>,
    project: crate::model::Project,
    sets: Vec<crate::model::EvaluationSet>,
    start: ServerAction<StartExecution>,
    start_error: Signal<Option<AppError>>,
) -> impl IntoView {
    let price = project.agent.price_per_job_micros;
    // A chosen evaluation set names the rows (and their number).
    let chosen_set = RwSignal::new(None::<i64>);
    let set_sizes: Vec<(String, i64)> = sets.iter().map(|s| (s.id.to_string(), s.size)).collect();
    let has_sets = !sets.is_empty();
    let set_options = sets
        .iter()
        .map(|s| {
            view! {
                <option value=s.id.to_string()>
                    {format!("set “{}” v{} ({})", s.name, s.version, crate::app::components::results::plural(s.size, "row"))}
                </option>
            }
        })
        .collect_view();
    let production = project.production_version;
    let versions = (1..=project.latest_version)
        .rev()
        .map(|v| {
            view! {
                <option value=v.to_string() selected=v == production>
                    {format!("v{v}")} {(v == production).then_some(" (production)")}
                </option>
            }
        })
        .collect_view();
    let has_remote = project.agent.remote_url.is_some();
    let default_agent = project.agent.kind;
    let default_extractor = project.agent.extractor;
    let has_route = !project.agent.model_route.is_empty();
    let retries = project.agent.max_retries.to_string();
    let rows = batch.row_count as i64;
    let mode = RwSignal::new("test".to_string());
    let sample = RwSignal::new(20i64.min(rows.max(1)));
    let extractor = RwSignal::new(default_extractor);
    // A model's cost depends on the pages' tokens: the server measures them
    // on the project's last llm test run.
    let llm_estimate = project.llm_estimate.clone();
    let estimate = move || {
        let n = match chosen_set.get() {
            Some(size) => size,
            None if mode.get() == "test" => sample.get().clamp(0, rows),
            None => rows,
        };
        match (extractor.get(), &llm_estimate) {
            (crate::model::Extractor::Llm, Some(e)) => format!(
                "{} × about {} = {} ({} input and {} output tokens a job in the last test run, at {}'s prices)",
                crate::app::components::results::plural(n, "job"),
                crate::model::format_price(e.per_job_micros),
                crate::model::format_price(n * e.per_job_micros),
                crate::model::thousands(e.input_tokens_per_job),
                crate::model::thousands(e.output_tokens_per_job),
                e.model
            ),
            (crate::model::Extractor::Llm, None) => format!(
                "unknown for {} — no test run with the llm extractor has measured this project's tokens yet; a small test run does",
                crate::app::components::results::plural(n, "job")
            ),
            // No price per job set: say so rather than "× 0 = 0".
            _ if price == 0 => format!(
                "free — {} with no price per job (set one in the project's agent settings to track spend)",
                crate::app::components::results::plural(n, "job")
            ),
            _ => format!(
                "{} × {} = {}",
                crate::app::components::results::plural(n, "job"),
                crate::model::format_price(price),
                crate::model::format_price(n * price)
            ),
        }
    };
    let list = runs
        .iter()
        .map(|e| view! { <crate::app::components::runs::RunRow execution=e.clone() /> })
        .collect_view();
    let has_runs = !runs.is_empty();
    // Runs whose pages were kept can be re-read without fetching anything.
    let snapshot_options = runs
        .iter()
        .filter(|e| e.keeps_pages && e.completed > 0)
        .map(|e| {
            let kind = if e.mode == crate::model::ExecutionMode::Test { "test" } else { "production" };
            view! {
                <option value=format!("snapshot:{}", e.pages_from.unwrap_or(e.id))>
                    {format!("re-extract from the pages of the {kind} run of {} (no fetching)", crate::app::components::when(e.created_at))}
                </option>
            }
        })
        .collect_view();
    view! {
        <section class="card" id="run">
            <h2>"Runs"</h2>
            {batch.can_edit().then(|| view! {
                <FormError error=start_error />
                <ActionForm action=start attr:class="run-form">
                    <input type="hidden" name="batch" value=batch.id.to_string() />
                    <fieldset class="plain">
                        <legend class="sr-only">"Kind of run"</legend>
                        <label class="check"><input type="radio" name="mode" value="test" checked
                            on:change=move |_| mode.set("test".into()) />"Test on a sample"</label>
                        <label class="check"><input type="radio" name="mode" value="production"
                            on:change=move |_| mode.set("production".into()) />{format!("Production: all {rows} rows")}</label>
                    </fieldset>
                    <div class="inline-form">
                        <div class="field">
                            <label for="sample_size">"Sample size"</label>
                            <input id="sample_size" name="sample_size" type="number" min="1" max="1000" value=sample.get_untracked().to_string()
                                on:input=move |ev| sample.set(event_target_value(&ev).parse().unwrap_or(0))
                                aria-invalid=invalid(start_error, "sample_size") aria-describedby="sample_size-error" />
                        </div>
                        <div class="field">
                            <label for="sample">"Sample"</label>
                            <select id="sample" name="sample">
                                <option value="first">"First rows"</option>
                                <option value="random">"Random rows"</option>
                            </select>
                        </div>
                        <div class="field">
                            <label for="run-concurrency">"Concurrency"</label>
                            <input id="run-concurrency" name="concurrency" type="number"
                                min=Concurrency::MIN.to_string()
                                value=Concurrency::DEFAULT.get().to_string()
                                aria-invalid=invalid(start_error, "concurrency") aria-describedby="concurrency-error" />
                        </div>
                    </div>
                    <div class="inline-form">
                        <div class="field">
                            <label for="run-version">"Instructions"</label>
                            <select id="run-version" name="instruction_version"
                                aria-invalid=invalid(start_error, "instruction_version") aria-describedby="instruction_version-error">{versions}</select>
                        </div>
                        <div class="field">
                            <label for="run-agent">"Agent"</label>
                            <select id="run-agent" name="agent" aria-invalid=invalid(start_error, "agent") aria-describedby="agent-error">
                                <option value="http" selected=default_agent == crate::model::AgentKind::Http>"http (built in)"</option>
                                <option value="browser" selected=default_agent == crate::model::AgentKind::Browser>"browser (built in: headless Chromium, renders JavaScript)"</option>
                                <option value="remote" selected=default_agent == crate::model::AgentKind::Remote disabled=!has_remote>
                                    {if has_remote { "remote" } else { "remote (set its URL in the project first)" }}
                                </option>
                                {snapshot_options}
                            </select>
                        </div>
                        {has_sets.then(|| view! {
                        <div class="field">
                            <label for="run-set">"Rows"</label>
                            <select id="run-set" name="evaluation_set" aria-invalid=invalid(start_error, "evaluation_set") aria-describedby="evaluation_set-error"
                                on:change=move |ev| {
                                    let v = event_target_value(&ev);
                                    chosen_set.set(set_sizes.iter().find(|(id, _)| *id == v).map(|(_, n)| *n));
                                }>
                                <option value="">"the mode's (a sample, or every row)"</option>
                                {set_options}
                            </select>
                        </div>
                        })}
                        <div class="field">
                            <label for="run-extractor">"Extractor"</label>
                            <select id="run-extractor" name="extractor" aria-invalid=invalid(start_error, "extractor") aria-describedby="extractor-error"
                                on:change=move |ev| extractor.set(if event_target_value(&ev) == "llm" {
                                    crate::model::Extractor::Llm
                                } else {
                                    crate::model::Extractor::Rules
                                })>
                                <option value="rules" selected=default_extractor == crate::model::Extractor::Rules>"rules"</option>
                                <option value="llm" selected=default_extractor == crate::model::Extractor::Llm disabled=!has_route>
                                    {if has_route { "llm (the project's model route)" } else { "llm (choose a model route in the project first)" }}
                                </option>
                            </select>
                        </div>
                        <div class="field">
                            <label for="run-retries">"Retries"</label>
                            <input id="run-retries" name="max_retries" type="number" min="0" max="10" value=retries
                                aria-invalid=invalid(start_error, "max_retries") aria-describedby="max_retries-error" />
                        </div>
                        <button type="submit" class="button primary" disabled=move || start.pending().get()>"Start run"</button>
                    </div>
                    <FieldError error=start_error field="sample_size" />
                    <FieldError error=start_error field="concurrency" />
                    <FieldError error=start_error field="instruction_version" />
                    <FieldError error=start_error field="agent" />
                    <FieldError error=start_error field="from_execution" />
                    <FieldError error=start_error field="extractor" />
                    <FieldError error=start_error field="max_retries" />
                    <FieldError error=start_error field="evaluation_set" />
                    <p class="hint" data-testid="estimate">"Estimated cost: " {estimate}</p>
                </ActionForm>
            })}
            {if has_runs {
                view! {
                    <div class="table-wrap">
                        <table>
                            <thead><tr><th scope="col">"Run"</th><th scope="col">"State"</th><th scope="col" class="num">"Progress"</th>
                                <th scope="col" class="num hide-narrow">"Errors"</th><th scope="col" class="hide-narrow">"Started"</th></tr></thead>
                            <tbody>{list}</tbody>
                        </table>
                    </div>
                }.into_any()
            } else {
                view! { <p class="empty">"No runs yet. Start with a test on a sample, check the results, then run production."</p> }.into_any()
            }}
        </section>
    }
}

/// The batch's evaluation sets: named regression sets of rows, saved from
/// typed row numbers or from a run's jobs in one of the grid's tabs, run
/// from the Runs card's "Rows" choice (or `mino eval --set NAME`).
#[component]
fn EvaluationSetsCard(
    batch: Batch,
    sets: Vec<crate::model::EvaluationSet>,
    runs: Vec<crate::model::Execution>,
    can_edit: bool,
    create: ServerAction<CreateEvaluationSet>,
    delete: ServerAction<DeleteEvaluationSet>,
    /// The form's name and rows, kept by the page so they survive the
    /// card's re-render while the batch reloads.
    set_name: RwSignal<String>,
    set_rows: RwSignal<String>,
) -> impl IntoView {
    let create_error = action_error(create);
    let delete_error = action_error(delete);
    let saved = move || {
        create.value().get().and_then(|r| r.ok()).map(|s| {
            format!(
                "Saved “{}” version {} with {}.",
                s.name,
                s.version,
                crate::app::components::results::plural(s.size, "row")
            )
        })
    };
    let list = if sets.is_empty() {
        view! { <p class="empty">"No evaluation sets yet. Save the rows you want every change checked against — your hardest pages, last run's failures — and run them from the Runs card or with " <code>"mino eval --set NAME"</code> "."</p> }.into_any()
    } else {
        let rows = sets
            .into_iter()
            .map(|s| {
                let how = match s.source.get("execution_id") {
                    Some(_) => "from a run's jobs",
                    None => "chosen by row number",
                };
                let first: Vec<String> = s.rows.iter().take(8).map(|r| r.to_string()).collect();
                let more = if s.rows.len() > 8 { ", …" } else { "" };
                let id = s.id.to_string();
                let name = s.name.clone();
                view! {
                    <tr>
                        <td><strong>{s.name.clone()}</strong>" " <span class="muted small">{format!("v{}", s.version)}</span></td>
                        <td class="num">{crate::model::thousands(s.size)}</td>
                        <td class="small hide-narrow">{format!("rows {}{more}", first.join(", "))}</td>
                        <td class="small hide-narrow">{how}", " {s.created_by_name.clone()}", " {when(s.created_at)}</td>
                        <td class="actions">{can_edit.then(|| view! {
                            <details class="confirm">
                                <summary class="button small danger">"Delete…"</summary>
                                <ActionForm action=delete>
                                    <input type="hidden" name="id" value=id.clone() />
                                    <p>{format!("Delete version {} of “{name}”? Runs of it keep their results.", s.version)}</p>
                                    <button type="submit" class="button small danger">"Delete set version"</button>
                                </ActionForm>
                            </details>
                        })}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table data-testid="evaluation-sets">
                    <thead><tr><th scope="col">"Set"</th><th scope="col" class="num">"Rows"</th>
                        <th scope="col" class="hide-narrow">"Which"</th><th scope="col" class="hide-narrow">"Saved"</th>
                        <th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let run_options = runs
        .iter()
        .filter(|e| !e.is_active() && e.total > 0)
        .map(|e| view! { <option value=e.id.to_string()>{format!("{} ({})", e.label(), crate::app::components::results::plural(e.total, "job"))}</option> })
        .collect_view();
    let tabs = crate::app::components::results::TABS
        .iter()
        .filter(|(v, _)| !matches!(*v, "queued" | "running"))
        .map(|(v, label)| view! { <option value=*v selected=*v == "wrong">{*label}</option> })
        .collect_view();
    let batch_id = batch.id.to_string();
    view! {
        <section class="card" id="evaluation-sets">
            <h2>"Evaluation sets"</h2>
            <FormError error=delete_error />
            {list}
            {can_edit.then(|| view! {
                <details>
                    <summary>"Save a set"</summary>
                    <ActionForm action=create>
                        <input type="hidden" name="batch" value=batch_id.clone() />
                        <FormError error=create_error />
                        <div class="field">
                            <label for="set-name">"Name"</label>
                            <input id="set-name" name="name" required maxlength="100" placeholder="Hard pages"
                                prop:value=move || set_name.get() on:input=move |ev| set_name.set(event_target_value(&ev))
                                aria-invalid=invalid(create_error, "name") aria-describedby="name-error" />
                            <FieldError error=create_error field="name" />
                        </div>
                        <div class="field">
                            <label for="set-rows">"Row numbers"</label>
                            <input id="set-rows" name="rows" placeholder="1-20, 35, 40"
                                prop:value=move || set_rows.get() on:input=move |ev| set_rows.set(event_target_value(&ev))
                                aria-invalid=invalid(create_error, "rows") aria-describedby="rows-error" />
                            <FieldError error=create_error field="rows" />
                        </div>
                        <p class="hint">"…or take the rows of a run's jobs in one of its tabs (row numbers are then left out):"</p>
                        <div class="inline-form">
                            <div class="field">
                                <label for="set-execution">"Run"</label>
                                <select id="set-execution" name="execution" aria-describedby="execution-error">
                                    <option value="">"— none (use the row numbers) —"</option>
                                    {run_options}
                                </select>
                            </div>
                            <div class="field">
                                <label for="set-tab">"Its jobs"</label>
                                <select id="set-tab" name="tab">{tabs}</select>
                            </div>
                        </div>
                        <FieldError error=create_error field="execution" />
                        <FieldError error=create_error field="execution_id" />
                        <button type="submit" class="button" disabled=move || create.pending().get()>"Save set"</button>
                        <p role="status" class="hint">{saved}</p>
                    </ActionForm>
                </details>
            })}
        </section>
    }
}

/// Imports values extracted elsewhere as a judged run of this batch
/// (`POST /api/v1/batches/{id}/imports`): the file goes to the REST
/// endpoint as it is, like a batch upload, and the new run opens.
#[component]
fn ImportRunCard(batch_id: uuid::Uuid, org_slug: String) -> impl IntoView {
    let file_input: NodeRef<leptos::html::Input> = NodeRef::new();
    let key = RwSignal::new("row".to_string());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let import = move |_| {
        let Some(file) = file_input
            .get_untracked()
            .and_then(|i| i.files())
            .and_then(|l| l.get(0))
        else {
            error.set(Some("Choose a CSV or JSON Lines file first.".into()));
            return;
        };
        busy.set(true);
        error.set(None);
        let url = format!(
            "/api/v1/batches/{batch_id}/imports?key={}&name={}",
            key.get_untracked(),
            crate::nav::encode(&file.name())
        );
        let (navigate, slug) = (navigate.clone(), org_slug.clone());
        leptos::task::spawn_local(async move {
            match crate::app::upload::post_blob(&url, &file, |_| {}).await {
                Ok((201, body)) => match serde_json::from_str::<crate::model::Execution>(&body) {
                    Ok(e) => navigate(
                        &format!("/o/{slug}/executions/{}", e.id),
                        Default::default(),
                    ),
                    Err(_) => error.set(Some("The server's answer could not be read.".into())),
                },
                Ok((_, body)) => error.set(Some(
                    serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| {
                            v["details"]["fields"][0]["message"]
                                .as_str()
                                .or_else(|| v["error"].as_str())
                                .map(str::to_string)
                        })
                        .unwrap_or_else(|| "The file was refused.".into()),
                )),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="card" data-testid="import-run">
            <h2>"Import results"</h2>
            <p class="muted small">"Values extracted by another tool, judged against this batch's expected values like any run: a CSV with a "
                <code>"row"</code>" (or "<code>"row_id"</code>", "<code>"url"</code>") column and one column per field, or JSON Lines with the same keys; optional "
                <code>"error"</code>", "<code>"cost"</code>" and "<code>"duration_ms"</code>". A file with a problem is refused whole, naming its line and column."</p>
            <div class="inline-form">
                <div class="field grow">
                    <label for="import-file">"File"</label>
                    <input id="import-file" type="file" accept=".csv,.tsv,.txt,.jsonl,.ndjson,text/csv,application/x-ndjson" node_ref=file_input />
                </div>
                <div class="field">
                    <label for="import-key">"Rows are named by"</label>
                    <select id="import-key" on:change=move |ev| key.set(event_target_value(&ev))>
                        <option value="row">"row number"</option>
                        <option value="row_id">"row id"</option>
                        <option value="url">"URL"</option>
                    </select>
                </div>
            </div>
            {move || error.get().map(|e| view! { <div class="alert alert-error" role="alert" data-testid="import-error">{e}</div> })}
            <button type="button" class="button" on:click=import disabled=move || busy.get()>
                {move || if busy.get() { "Importing…" } else { "Import as a run" }}
            </button>
        </section>
    }
}
