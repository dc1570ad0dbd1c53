//! Projects, instructions, fields, agent settings and batches for the
//! browser. Uploads go to the REST endpoint directly (they stream a file).

// A server function's arguments are its form's fields; the field editor's
// form has many.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{
    Batch, BatchRow, BatchSummary, InstructionDiff, InstructionVersion, Page, Project,
    ProjectSummary, VersionSummary,
};

#[server(prefix = "/rpc", endpoint = "list_projects")]
pub async fn list_projects(
    org: String,
    cursor: Option<String>,
) -> Result<Page<ProjectSummary>, AppError> {
    use crate::server::{rpc, service::orgs, service::projects};
    let (state, actor) = rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    projects::list(
        &state.db,
        &ctx,
        cursor.as_deref().filter(|c| !c.is_empty()),
        50,
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "create_project")]
pub async fn create_project(
    org: String,
    name: String,
    description: String,
) -> Result<Project, AppError> {
    use crate::server::{rpc, service::orgs, service::projects};
    let (state, actor) = rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let p = projects::create(&state.db, &ctx, &name, &description, "").await?;
    leptos_axum::redirect(&format!("/o/{}/projects/{}", p.org_slug, p.id));
    Ok(p)
}

/// Creates the demo project and opens it.
#[server(prefix = "/rpc", endpoint = "load_demo_project")]
pub async fn load_demo_project(org: String) -> Result<Project, AppError> {
    use crate::server::{rpc, service::demo, service::orgs};
    let (state, actor) = rpc::user().await?;
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let loaded = demo::load(&state.db, &ctx, &state.config.public_url).await?;
    leptos_axum::redirect(&format!(
        "/o/{}/projects/{}",
        loaded.project.org_slug, loaded.project.id
    ));
    Ok(loaded.project)
}

#[server(prefix = "/rpc", endpoint = "get_project")]
pub async fn get_project(id: Uuid) -> Result<Project, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::get(&state.db, &actor, id).await
}

#[server(prefix = "/rpc", endpoint = "update_project")]
pub async fn update_project(
    id: Uuid,
    name: String,
    description: String,
) -> Result<Project, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::update(&state.db, &actor, id, Some(&name), Some(&description)).await
}

#[server(prefix = "/rpc", endpoint = "delete_project")]
pub async fn delete_project(id: Uuid, confirm: String) -> Result<(), AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    let slug = projects::get(&state.db, &actor, id).await?.org_slug;
    projects::delete(&state.db, &actor, id, Some(&confirm)).await?;
    leptos_axum::redirect(&format!("/o/{slug}/projects"));
    Ok(())
}

/// Saves a new version. `production` is a checkbox: present means yes.
#[server(prefix = "/rpc", endpoint = "save_instructions")]
pub async fn save_instructions(
    id: Uuid,
    instructions: String,
    note: String,
    production: Option<String>,
) -> Result<InstructionVersion, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::save_instructions(
        &state.db,
        &actor,
        id,
        &instructions,
        &note,
        production.is_some(),
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "get_instructions")]
pub async fn get_instructions(
    id: Uuid,
    version: Option<i32>,
) -> Result<InstructionVersion, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::version(&state.db, &actor, id, version).await
}

#[server(prefix = "/rpc", endpoint = "list_versions")]
pub async fn list_versions(
    id: Uuid,
    cursor: Option<String>,
) -> Result<Page<VersionSummary>, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::versions(
        &state.db,
        &actor,
        id,
        cursor.as_deref().filter(|c| !c.is_empty()),
        100,
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "set_production_version")]
pub async fn set_production_version(
    id: Uuid,
    version: i32,
) -> Result<InstructionVersion, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::set_production(&state.db, &actor, id, version).await
}

#[server(prefix = "/rpc", endpoint = "diff_instructions")]
pub async fn diff_instructions(id: Uuid, a: i32, b: i32) -> Result<InstructionDiff, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::diff(&state.db, &actor, id, a, b).await
}

/// Two versions compared in all three parts (instructions, field rules,
/// agent settings).
#[server(prefix = "/rpc", endpoint = "diff_versions")]
pub async fn diff_versions(
    id: Uuid,
    a: i32,
    b: i32,
) -> Result<crate::model::VersionDiff, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::version_diff(&state.db, &actor, id, a, b).await
}

/// Agent settings from the settings form (numbers arrive as text).
#[server(prefix = "/rpc", endpoint = "update_agent")]
pub async fn update_agent(
    id: Uuid,
    kind: String,
    remote_url: String,
    timeout_secs: String,
    max_retries: String,
    price_per_job: String,
    #[server(default)] wait_for: String,
    #[server(default)] steps: String,
    #[server(default)] keep_pages: Option<String>,
    #[server(default)] extractor: String,
    #[server(default)] route_1: String,
    #[server(default)] route_2: String,
    #[server(default)] route_3: String,
    #[server(default)] route_4: String,
    #[server(default)] route_5: String,
    #[server(default)] page_token_budget: String,
    #[server(default)] version_note: String,
) -> Result<Project, AppError> {
    use crate::model::{AgentKind, AgentSettings, BrowserStep, Extractor, RouteEntry};
    use crate::server::{rpc, service::collect_fields, service::projects};
    let (state, actor) = rpc::user().await?;
    let kind = AgentKind::parse(&kind).ok_or_else(|| AppError::field("kind", "Choose an agent."));
    let number = |raw: &str, field: &str, what: &str| {
        raw.trim()
            .parse::<i32>()
            .map_err(|_| AppError::field(field, format!("Enter {what} as a whole number.")))
    };
    let timeout = number(&timeout_secs, "timeout_secs", "the timeout");
    let retries = number(&max_retries, "max_retries", "the retry limit");
    let price = projects::parse_price(&price_per_job);
    let extractor = match extractor.as_str() {
        "" => Ok(Extractor::Rules),
        e => {
            Extractor::parse(e).ok_or_else(|| AppError::field("extractor", "Choose rules or llm."))
        }
    };
    // Each route choice is "<provider id>|<model>"; empty ones are skipped.
    let route = [route_1, route_2, route_3, route_4, route_5]
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            r.split_once('|')
                .and_then(|(p, m)| {
                    Some(RouteEntry {
                        provider: p.parse().ok()?,
                        model: m.to_string(),
                    })
                })
                .ok_or_else(|| AppError::field("model_route", "Choose a model from the list."))
        })
        .collect::<Result<Vec<_>, _>>();
    let budget = match page_token_budget.trim() {
        "" => Ok(crate::model::DEFAULT_PAGE_TOKEN_BUDGET),
        b => number(b, "page_token_budget", "the page token budget"),
    };
    // One step per line; a fault names its line.
    let steps = steps
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            BrowserStep::parse_line(l)
                .map_err(|why| AppError::field("steps", format!("Line {}: {why}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>();
    collect_fields([
        kind.as_ref().map(|_| ()).map_err(Clone::clone),
        steps.as_ref().map(|_| ()).map_err(Clone::clone),
        timeout.as_ref().map(|_| ()).map_err(Clone::clone),
        retries.as_ref().map(|_| ()).map_err(Clone::clone),
        price.as_ref().map(|_| ()).map_err(Clone::clone),
        extractor.as_ref().map(|_| ()).map_err(Clone::clone),
        route.as_ref().map(|_| ()).map_err(Clone::clone),
        budget.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    let remote_url = Some(remote_url.trim().to_string()).filter(|u| !u.is_empty());
    let settings = AgentSettings {
        kind: kind?,
        remote_url,
        timeout_secs: timeout?,
        max_retries: retries?,
        price_per_job_micros: price?,
        extractor: extractor?,
        wait_for: Some(wait_for),
        steps: steps?,
        keep_pages: keep_pages.is_some(),
        model_route: route?,
        page_token_budget: budget?,
    };
    let note = Some(version_note.trim()).filter(|n| !n.is_empty());
    projects::update_agent(&state.db, &actor, id, settings, note)
        .await
        .map_err(steps_by_line)
}

/// The service names a faulty step by its place (`steps[2].selector`);
/// the form has one text box of steps, so say which line.
#[cfg(feature = "ssr")]
fn steps_by_line(err: AppError) -> AppError {
    let Some(found) = err.field_errors().into_iter().find_map(|f| {
        let i: usize = f
            .field
            .strip_prefix("steps[")?
            .split(']')
            .next()?
            .parse()
            .ok()?;
        Some((i, f.message))
    }) else {
        return err;
    };
    AppError::field("steps", format!("Step {}: {}", found.0 + 1, found.1))
}

/// Adds a field (`existing` empty) or changes one, from the field form.
#[server(prefix = "/rpc", endpoint = "save_field")]
pub async fn save_field(
    id: Uuid,
    existing: String,
    name: String,
    field_type: String,
    comparator: String,
    tolerance: String,
    relative_tolerance: Option<String>,
    threshold: String,
    locale: Option<String>,
    rule_kind: String,
    selector: String,
    attribute: String,
    path: String,
    meta_name: String,
    pattern: String,
    #[server(default)] description: String,
    #[server(default)] empty_means: String,
    #[server(default)] multi_value_separator: String,
    #[server(default)] version_note: String,
) -> Result<Project, AppError> {
    use crate::model::{
        Comparator, ComparatorOptions, EmptyMeans, ExtractionRule, OutputField, ValueType,
    };
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    let field_type = ValueType::parse(&field_type)
        .ok_or_else(|| AppError::field("field_type", "Choose a type."))?;
    let field_name = if existing.is_empty() {
        &name
    } else {
        &existing
    };
    let comparator =
        Comparator::parse(&comparator).unwrap_or(field_type.comparator_for(field_name));
    let decimal = |raw: &str, field: &str| -> Result<Option<f64>, AppError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse::<f64>()
            .map(Some)
            .map_err(|_| AppError::field(field, "Enter a number such as 0.01."))
    };
    let options = ComparatorOptions {
        tolerance: decimal(&tolerance, "tolerance")?,
        relative_tolerance: decimal(
            relative_tolerance.as_deref().unwrap_or(""),
            "relative_tolerance",
        )?,
        threshold: decimal(&threshold, "threshold")?,
        locale: locale
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty()),
    };
    let rule = match rule_kind.as_str() {
        "css" => ExtractionRule::Css {
            selector: selector.trim().to_string(),
            attribute: Some(attribute.trim().to_string()).filter(|a| !a.is_empty()),
        },
        "json_ld" => ExtractionRule::JsonLd {
            path: path.trim().to_string(),
        },
        "meta" => ExtractionRule::Meta {
            name: meta_name.trim().to_string(),
        },
        "regex" => ExtractionRule::Regex { pattern },
        "article" => ExtractionRule::Article,
        _ => ExtractionRule::Auto,
    };
    let adding = existing.is_empty();
    let field = OutputField {
        name: if adding { name } else { existing },
        field_type,
        comparator,
        comparator_options: options,
        rule,
        source: String::new(),
        description: description.trim().to_string(),
        empty_means: EmptyMeans::parse(&empty_means).unwrap_or_default(),
        // Spaces can separate values too ("a / b"): only an empty box is none.
        multi_value_separator: Some(multi_value_separator).filter(|s| !s.is_empty()),
    };
    if adding {
        projects::add_field(&state.db, &actor, id, field).await
    } else {
        let note = Some(version_note.trim()).filter(|n| !n.is_empty());
        projects::update_field(&state.db, &actor, id, field, note).await
    }
}

#[server(prefix = "/rpc", endpoint = "delete_field")]
pub async fn delete_field(id: Uuid, name: String) -> Result<Project, AppError> {
    use crate::server::{rpc, service::projects};
    let (state, actor) = rpc::user().await?;
    projects::delete_field(&state.db, &actor, id, &name).await
}

#[server(prefix = "/rpc", endpoint = "list_batches")]
pub async fn list_batches(
    project: Uuid,
    cursor: Option<String>,
) -> Result<Page<BatchSummary>, AppError> {
    use crate::server::{rpc, service::batches};
    let (state, actor) = rpc::user().await?;
    batches::list(
        &state.db,
        &actor,
        project,
        cursor.as_deref().filter(|c| !c.is_empty()),
        50,
    )
    .await
}

#[server(prefix = "/rpc", endpoint = "get_batch")]
pub async fn get_batch(id: Uuid) -> Result<Batch, AppError> {
    use crate::server::{rpc, service::batches};
    let (state, actor) = rpc::user().await?;
    batches::get(&state.db, &actor, id).await
}

#[server(prefix = "/rpc", endpoint = "list_rows")]
pub async fn list_rows(
    id: Uuid,
    q: String,
    cursor: Option<String>,
) -> Result<Page<BatchRow>, AppError> {
    use crate::server::{rpc, service::batches};
    let (state, actor) = rpc::user().await?;
    let cursor = cursor.filter(|c| !c.is_empty());
    batches::rows(&state.db, &actor, id, Some(&q), cursor.as_deref(), 50).await
}

#[server(prefix = "/rpc", endpoint = "rename_batch")]
pub async fn rename_batch(id: Uuid, name: String) -> Result<Batch, AppError> {
    use crate::server::{rpc, service::batches};
    let (state, actor) = rpc::user().await?;
    batches::rename(&state.db, &actor, id, &name).await
}

#[server(prefix = "/rpc", endpoint = "delete_batch")]
pub async fn delete_batch(id: Uuid, confirm: String) -> Result<(), AppError> {
    use crate::server::{rpc, service::batches};
    let (state, actor) = rpc::user().await?;
    let batch = batches::get(&state.db, &actor, id).await?;
    batches::delete(&state.db, &actor, id, Some(&confirm)).await?;
    leptos_axum::redirect(&format!(
        "/o/{}/projects/{}",
        batch.org_slug, batch.project_id
    ));
    Ok(())
}

/// The batch's evaluation sets (each at its latest version).
#[server(prefix = "/rpc", endpoint = "list_evaluation_sets")]
pub async fn list_evaluation_sets(
    batch: Uuid,
) -> Result<Vec<crate::model::EvaluationSet>, AppError> {
    use crate::server::{rpc, service::evaluation_sets};
    let (state, actor) = rpc::user().await?;
    evaluation_sets::list(&state.db, &actor, batch).await
}

/// Saves an evaluation set from the batch page's form: row numbers typed
/// ("1-20, 35"), or a run's jobs in one of the grid's tabs.
#[server(prefix = "/rpc", endpoint = "create_evaluation_set")]
pub async fn create_evaluation_set(
    batch: Uuid,
    name: String,
    #[server(default)] rows: String,
    #[server(default)] execution: String,
    #[server(default)] tab: String,
    #[server(default)] experiment: String,
) -> Result<crate::model::EvaluationSet, AppError> {
    use crate::server::service::evaluation_sets::{self, NewSet};
    use crate::server::{rpc, service::jobs::JobFilter};
    let (state, actor) = rpc::user().await?;
    let req = match execution.trim() {
        // From an experiment page: the rows its variants disagree on.
        "" if !experiment.trim().is_empty() => NewSet {
            name,
            experiment_id: Some(experiment.trim().parse::<Uuid>().map_err(|_| {
                AppError::field("experiment", "Choose an experiment of this batch.")
            })?),
            ..Default::default()
        },
        "" => NewSet {
            name,
            rows: Some(evaluation_sets::parse_row_list(&rows)?),
            ..Default::default()
        },
        id => {
            let execution_id = id
                .parse::<Uuid>()
                .map_err(|_| AppError::field("execution", "Choose one of the batch's runs."))?;
            let (status, evaluation) = crate::app::components::results::filter_of(
                Some(tab.as_str()).filter(|t| !t.is_empty()),
            );
            NewSet {
                name,
                execution_id: Some(execution_id),
                filter: Some(JobFilter {
                    status,
                    evaluation,
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
    };
    evaluation_sets::create(&state.db, &actor, batch, req).await
}

#[server(prefix = "/rpc", endpoint = "delete_evaluation_set")]
pub async fn delete_evaluation_set(id: Uuid) -> Result<(), AppError> {
    use crate::server::{rpc, service::evaluation_sets};
    let (state, actor) = rpc::user().await?;
    evaluation_sets::delete(&state.db, &actor, id).await
}

/// Starts a test or production run from the batch page's form.
#[server(prefix = "/rpc", endpoint = "start_execution")]
pub async fn start_execution(
    batch: Uuid,
    mode: String,
    sample_size: String,
    sample: String,
    concurrency: String,
    instruction_version: Option<String>,
    agent: Option<String>,
    max_retries: Option<String>,
    #[server(default)] extractor: Option<String>,
    #[server(default)] evaluation_set: Option<String>,
) -> Result<crate::model::Execution, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    let number = |raw: &str, field: &str| -> Result<Option<i32>, AppError> {
        let raw = raw.trim().replace(',', "");
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse::<i32>()
            .map(Some)
            .map_err(|_| AppError::field(field, "Enter a whole number."))
    };
    let evaluation_set =
        match evaluation_set.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse::<Uuid>().map_err(|_| {
                AppError::field("evaluation_set", "Choose one of the batch's sets.")
            })?),
        };
    let req = executions::StartRequest {
        evaluation_set,
        // A set names its rows: the sample size is moot.
        sample_size: if mode == "test" && evaluation_set.is_none() {
            number(&sample_size, "sample_size")?
        } else {
            None
        },
        sample: Some(sample).filter(|s| !s.is_empty()),
        concurrency: number(&concurrency, "concurrency")?,
        instruction_version: number(
            instruction_version.as_deref().unwrap_or(""),
            "instruction_version",
        )?,
        agent: agent
            .clone()
            .filter(|a| !a.is_empty() && !a.starts_with("snapshot:")),
        // A remote agent extracts by itself: the form's choice is moot.
        extractor: extractor.filter(|x| !x.is_empty() && agent.as_deref() != Some("remote")),
        // The form offers "re-extract from run N's pages" as
        // `snapshot:<execution id>`.
        from_execution: match agent.as_deref().and_then(|a| a.strip_prefix("snapshot:")) {
            Some(id) => Some(
                id.parse()
                    .map_err(|_| AppError::field("agent", "Choose a run to re-extract from."))?,
            ),
            None => None,
        },
        max_retries: number(max_retries.as_deref().unwrap_or(""), "max_retries")?,
        mode,
        ..Default::default()
    };
    let e = executions::start(&state.db, &actor, batch, req).await?;
    leptos_axum::redirect(&format!("/o/{}/executions/{}", e.org_slug, e.id));
    Ok(e)
}

#[server(prefix = "/rpc", endpoint = "list_executions")]
pub async fn list_executions(batch: Uuid) -> Result<Page<crate::model::Execution>, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    executions::list_for_batch(&state.db, &actor, batch).await
}

/// A project's latest runs, active ones first.
#[server(prefix = "/rpc", endpoint = "list_project_executions")]
pub async fn list_project_executions(
    project: Uuid,
) -> Result<Page<crate::model::Execution>, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    executions::list_for_project(&state.db, &actor, project).await
}

#[server(prefix = "/rpc", endpoint = "get_execution")]
pub async fn get_execution(id: Uuid) -> Result<crate::model::Execution, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    executions::get(&state.db, &actor, id).await
}

/// The execution page's first paint: the same snapshot the live stream
/// sends (the caller's role set), read now.
#[server(prefix = "/rpc", endpoint = "get_execution_live")]
pub async fn get_execution_live(id: Uuid) -> Result<crate::model::LiveSnapshot, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    let snapshot = executions::live_snapshot(&state.db, &actor, id).await?;
    // The guide's "read the results" step.
    crate::server::service::guide::record(
        &state.db,
        actor.user_id(),
        &snapshot.execution.org_slug,
        crate::server::service::guide::Seen::Results,
    )
    .await?;
    Ok(snapshot)
}

#[server(prefix = "/rpc", endpoint = "get_execution_metrics")]
pub async fn get_execution_metrics(id: Uuid) -> Result<crate::model::ExecutionMetrics, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    executions::metrics(&state.db, &actor, id).await
}

/// pause, resume or stop.
#[server(prefix = "/rpc", endpoint = "control_execution")]
pub async fn control_execution(
    id: Uuid,
    action: crate::model::ControlAction,
) -> Result<crate::model::Execution, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    executions::control(&state.db, &actor, id, action).await
}

#[server(prefix = "/rpc", endpoint = "set_execution_concurrency")]
pub async fn set_execution_concurrency(
    id: Uuid,
    concurrency: String,
) -> Result<crate::model::Execution, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    let n = concurrency
        .trim()
        .parse::<i32>()
        .map_err(|_| AppError::field("concurrency", "Enter a whole number from 1 to 50."))?;
    executions::set_concurrency(&state.db, &actor, id, n).await
}

/// Reruns the execution's failed jobs (`failed`) or its failed and
/// cancelled ones (`unfinished`) as a new execution, and opens it.
#[server(prefix = "/rpc", endpoint = "rerun_execution")]
pub async fn rerun_execution(id: Uuid, jobs: String) -> Result<crate::model::Execution, AppError> {
    use crate::server::{rpc, service::executions};
    let (state, actor) = rpc::user().await?;
    let req = executions::RerunRequest {
        jobs: Some(jobs),
        ..Default::default()
    };
    let e = executions::rerun(&state.db, &actor, id, req).await?;
    leptos_axum::redirect(&format!("/o/{}/executions/{}", e.org_slug, e.id));
    Ok(e)
}

/// An execution's jobs for its page: by state or verdict, in run order or
/// lowest accuracy first, 50 at a time.
#[server(prefix = "/rpc", endpoint = "list_execution_jobs")]
pub async fn list_execution_jobs(
    id: Uuid,
    status: Option<String>,
    evaluation: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
) -> Result<Page<crate::model::JobSummary>, AppError> {
    use crate::server::{rpc, service::jobs};
    let (state, actor) = rpc::user().await?;
    let filter = jobs::JobFilter {
        status: status.filter(|s| !s.is_empty()),
        evaluation: evaluation.filter(|s| !s.is_empty()),
        sort,
        cursor,
        ..Default::default()
    };
    jobs::list(&state.db, &actor, id, filter).await
}

#[server(prefix = "/rpc", endpoint = "get_job")]
pub async fn get_job(id: i64) -> Result<crate::model::JobDetail, AppError> {
    use crate::server::{rpc, service::jobs};
    let (state, actor) = rpc::user().await?;
    jobs::get(&state.db, &actor, id).await
}

/// Sets (or clears, when empty) one expected value of a job's row from the
/// results grid; `version` is the one the grid showed. Answers with the job
/// judged again and the run's figures, so the page needs no other read.
#[server(prefix = "/rpc", endpoint = "save_expected_value")]
pub async fn save_expected_value(
    job: i64,
    version: i32,
    field: String,
    value: String,
) -> Result<crate::model::ExpectedValueSaved, AppError> {
    use crate::server::{rpc, service::ground_truth};
    let (state, actor) = rpc::user().await?;
    ground_truth::edit_from_job(&state.db, &actor, job, version, field, value).await
}

/// Sets (or clears, when empty) one expected value of a row from the job
/// page; `version` is the one the page showed.
#[server(prefix = "/rpc", endpoint = "edit_ground_truth")]
pub async fn edit_ground_truth(
    row: i64,
    version: i32,
    field: String,
    value: String,
) -> Result<crate::model::RowGroundTruth, AppError> {
    use crate::server::{rpc, service::ground_truth};
    let (state, actor) = rpc::user().await?;
    let edit = ground_truth::GroundTruthEdit {
        version,
        values: [(field, Some(ground_truth::Expected::Text(value)))]
            .into_iter()
            .collect(),
    };
    ground_truth::edit(&state.db, &actor, row, edit).await
}

/// The caller's results-grid columns for a project's runs.
#[server(prefix = "/rpc", endpoint = "get_grid_columns")]
pub async fn get_grid_columns(project: Uuid) -> Result<crate::model::GridColumns, AppError> {
    use crate::server::{rpc, service::grid_columns};
    let (state, actor) = rpc::user().await?;
    grid_columns::get(&state.db, &actor, project).await
}

/// Saves the caller's results-grid columns: names separated by commas, in
/// order (no column name holds a comma).
#[server(prefix = "/rpc", endpoint = "save_grid_columns")]
pub async fn save_grid_columns(
    project: Uuid,
    shown: String,
) -> Result<crate::model::GridColumns, AppError> {
    use crate::server::{rpc, service::grid_columns};
    let (state, actor) = rpc::user().await?;
    let shown = shown
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    grid_columns::save(&state.db, &actor, project, shown).await
}
