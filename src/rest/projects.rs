//! `/api/v1` for projects: list, create, the demo project, read, update,
//! delete; instruction versions (save, read, diff, choose production); the
//! agent settings; and output fields (add, change, delete).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::parse_id;
use crate::error::AppError;
use crate::model::{
    AgentKind, BrowserStep, Comparator, ComparatorOptions, EmptyMeans, ExtractionRule, Extractor,
    InstructionDiff, InstructionVersion, Page, Project, ProjectSummary, ValueType, VersionSummary,
};
use crate::server::http::{Caller, Json, Query};
use crate::server::service::{orgs, paging, projects};
use crate::server::state::AppState;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<ProjectSummary>>, AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let limit = paging::parse_limit(q.limit, 50, 200)?;
    Ok(Json(
        projects::list(&state.db, &ctx, q.cursor.as_deref(), limit).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CreateProjectBody")]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    instructions: String,
}

pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Project>), AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let project = projects::create(
        &state.db,
        &ctx,
        &body.name,
        &body.description,
        &body.instructions,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// Creates the demo project and its batch of demo-shop products.
pub async fn load_demo(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(org): Path<String>,
) -> Result<(StatusCode, Json<crate::model::LoadedDemo>), AppError> {
    let ctx = orgs::org_ctx(&state.db, &actor, &org).await?;
    let loaded =
        crate::server::service::demo::load(&state.db, &ctx, &state.config.public_url).await?;
    Ok((StatusCode::CREATED, Json(loaded)))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Project>, AppError> {
    let id = parse_id(&id, "Project")?;
    Ok(Json(projects::get(&state.db, &actor, id).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<Json<Project>, AppError> {
    let id = parse_id(&id, "Project")?;
    Ok(Json(
        projects::update(
            &state.db,
            &actor,
            id,
            body.name.as_deref(),
            body.description.as_deref(),
        )
        .await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = parse_id(&id, "Project")?;
    projects::delete(&state.db, &actor, id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn versions(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<VersionSummary>>, AppError> {
    let id = parse_id(&id, "Project")?;
    let limit = paging::parse_limit(q.limit, 50, 200)?;
    Ok(Json(
        projects::versions(&state.db, &actor, id, q.cursor.as_deref(), limit).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveBody {
    instructions: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    production: bool,
}

pub async fn save_instructions(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<SaveBody>,
) -> Result<(StatusCode, Json<InstructionVersion>), AppError> {
    let id = parse_id(&id, "Project")?;
    let v = projects::save_instructions(
        &state.db,
        &actor,
        id,
        &body.instructions,
        &body.note,
        body.production,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

fn parse_version(raw: &str) -> Result<i32, AppError> {
    raw.parse::<i32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| AppError::NotFound("Instruction version".into()))
}

pub async fn version(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<InstructionVersion>, AppError> {
    let id = parse_id(&id, "Project")?;
    let version = parse_version(&version)?;
    Ok(Json(
        projects::version(&state.db, &actor, id, Some(version)).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct DiffQuery {
    a: i32,
    b: i32,
}

pub async fn diff(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<InstructionDiff>, AppError> {
    let id = parse_id(&id, "Project")?;
    Ok(Json(projects::diff(&state.db, &actor, id, q.a, q.b).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductionBody {
    version: i32,
}

/// Two versions compared in all three parts.
pub async fn version_diff(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<crate::model::VersionDiff>, AppError> {
    let id = parse_id(&id, "Project")?;
    Ok(Json(
        projects::version_diff(&state.db, &actor, id, q.a, q.b).await?,
    ))
}

pub async fn set_production(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<ProductionBody>,
) -> Result<Json<InstructionVersion>, AppError> {
    let id = parse_id(&id, "Project")?;
    Ok(Json(
        projects::set_production(&state.db, &actor, id, body.version).await?,
    ))
}

/// Agent settings; fields left out keep their value. `price_per_job` is a
/// decimal (number or string), e.g. 0.0025.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    kind: Option<AgentKind>,
    remote_url: Option<String>,
    timeout_secs: Option<i32>,
    max_retries: Option<i32>,
    price_per_job: Option<serde_json::Value>,
    /// How values are read: rules (each field's rule or the automatic one)
    /// or llm (automatic fields go to the model route with the
    /// instructions).
    extractor: Option<Extractor>,
    /// Browser: wait until an element matches this CSS selector instead
    /// of for network quiet; "" clears it.
    wait_for: Option<String>,
    /// Browser: steps run in order once the page is ready (at most 20).
    steps: Option<Vec<BrowserStep>>,
    /// Production runs keep every attempt's page (test runs always do).
    keep_pages: Option<bool>,
    /// llm extractor: the ordered route of (provider id, model name); the
    /// first serves, the rest are fallbacks (at most 5).
    model_route: Option<Vec<crate::model::RouteEntry>>,
    /// llm extractor: tokens of the page the model sees (500–200000,
    /// default 6000).
    page_token_budget: Option<i32>,
    /// The note of the version this change makes (a change to what runs
    /// extract saves a new version; default: what changed).
    note: Option<String>,
}

pub async fn update_agent(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<AgentBody>,
) -> Result<Json<Project>, AppError> {
    let id = parse_id(&id, "Project")?;
    let current = projects::get(&state.db, &actor, id).await?.agent;
    let price = match body.price_per_job {
        None => current.price_per_job_micros,
        Some(serde_json::Value::String(s)) => projects::parse_price(&s)?,
        Some(serde_json::Value::Number(n)) => projects::parse_price(&n.to_string())?,
        Some(_) => {
            return Err(AppError::field(
                "price_per_job",
                "Give the price as a number, e.g. 0.0025.",
            ))
        }
    };
    let settings = crate::model::AgentSettings {
        kind: body.kind.unwrap_or(current.kind),
        remote_url: body.remote_url.or(current.remote_url),
        timeout_secs: body.timeout_secs.unwrap_or(current.timeout_secs),
        max_retries: body.max_retries.unwrap_or(current.max_retries),
        price_per_job_micros: price,
        extractor: body.extractor.unwrap_or(current.extractor),
        wait_for: body.wait_for.or(current.wait_for),
        steps: body.steps.unwrap_or(current.steps),
        keep_pages: body.keep_pages.unwrap_or(current.keep_pages),
        model_route: body.model_route.unwrap_or(current.model_route),
        page_token_budget: body.page_token_budget.unwrap_or(current.page_token_budget),
    };
    Ok(Json(
        projects::update_agent(&state.db, &actor, id, settings, body.note.as_deref()).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldBody {
    name: Option<String>,
    #[serde(rename = "type")]
    field_type: Option<ValueType>,
    comparator: Option<Comparator>,
    comparator_options: Option<ComparatorOptions>,
    rule: Option<ExtractionRule>,
    /// What the field means, sent to the model by the llm extractor (at
    /// most 1,000 characters).
    description: Option<String>,
    /// What an empty expected cell means: `unknown` (the row is not judged
    /// on this field, the default) or `absent` (the page has no such value:
    /// an extracted value is a false positive, an empty one passes).
    /// Changing it judges the project's runs again.
    empty_means: Option<EmptyMeans>,
    /// In CSV uploads and bulk sets, the separator that splits a cell into
    /// several acceptable values (e.g. `|`); `""` or null turns it off.
    #[serde(default, deserialize_with = "crate::rest::double_option")]
    #[schemars(with = "Option<String>")]
    multi_value_separator: Option<Option<String>>,
    /// Changes: the note of the version a new rule or description makes
    /// (default: what changed).
    note: Option<String>,
}

pub async fn add_field(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<FieldBody>,
) -> Result<(StatusCode, Json<Project>), AppError> {
    let id = parse_id(&id, "Project")?;
    let name = body
        .name
        .ok_or_else(|| AppError::field("name", "name is required."))?;
    let field_type = body.field_type.unwrap_or(ValueType::Text);
    let comparator = body.comparator.unwrap_or(field_type.comparator_for(&name));
    let field = crate::model::OutputField {
        name,
        field_type,
        comparator,
        comparator_options: body.comparator_options.unwrap_or_default(),
        rule: body.rule.unwrap_or(ExtractionRule::Auto),
        source: String::new(),
        description: body.description.unwrap_or_default(),
        empty_means: body.empty_means.unwrap_or_default(),
        multi_value_separator: body
            .multi_value_separator
            .flatten()
            .filter(|s| !s.is_empty()),
    };
    let project = projects::add_field(&state.db, &actor, id, field).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// Changes a field; parts left out keep their value.
pub async fn update_field(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((id, name)): Path<(String, String)>,
    Json(body): Json<FieldBody>,
) -> Result<Json<Project>, AppError> {
    let id = parse_id(&id, "Project")?;
    let note = body.note.clone();
    let project = projects::get(&state.db, &actor, id).await?;
    let mut field = project
        .fields
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| AppError::NotFound("Field".into()))?;
    if let Some(t) = body.field_type {
        field.field_type = t;
    }
    if let Some(c) = body.comparator {
        field.comparator = c;
    }
    if let Some(o) = body.comparator_options {
        field.comparator_options = o;
    }
    if let Some(r) = body.rule {
        field.rule = r;
    }
    if let Some(d) = body.description {
        field.description = d;
    }
    if let Some(e) = body.empty_means {
        field.empty_means = e;
    }
    if let Some(sep) = body.multi_value_separator {
        field.multi_value_separator = sep.filter(|s| !s.is_empty());
    }
    Ok(Json(
        projects::update_field(&state.db, &actor, id, field, note.as_deref()).await?,
    ))
}

pub async fn delete_field(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Project>, AppError> {
    let id: Uuid = parse_id(&id, "Project")?;
    Ok(Json(
        projects::delete_field(&state.db, &actor, id, &name).await?,
    ))
}

/// The caller's results-grid columns for this project's runs.
pub async fn grid_columns(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::model::GridColumns>, AppError> {
    let id = parse_id(&id, "Project")?;
    Ok(Json(
        crate::server::service::grid_columns::get(&state.db, &actor, id).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GridColumnsBody {
    /// The columns to show, in order: `site`, `result`, `accuracy` and
    /// `field:<name>` (see `available` in the answer).
    shown: Vec<String>,
}

/// Saves which results-grid columns the signed-in caller sees, in order.
pub async fn save_grid_columns(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Json(body): Json<GridColumnsBody>,
) -> Result<Json<crate::model::GridColumns>, AppError> {
    let id = parse_id(&id, "Project")?;
    Ok(Json(
        crate::server::service::grid_columns::save(&state.db, &actor, id, body.shown).await?,
    ))
}
