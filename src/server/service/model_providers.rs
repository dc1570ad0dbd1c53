//! Model providers (the llm extractor's): admins add, change, check and
//! delete them; their API keys are sealed at rest and shown once (as the
//! last four characters afterwards); audit entries never hold them.
//! Members choosing a route see providers' names and models only.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::{collect_fields, parse_name};
use crate::error::{AppError, FieldError};
use crate::model::{
    BreakerState, LlmCostEstimate, ModelProvider, ProviderCheck, ProviderChoice, ProviderHealth,
    ProviderKind, ProviderModel, RouteEntry,
};
use crate::server::agents::llm::local::{self, LOCAL_MODEL, LOCAL_PROVIDER_NAME, LOCAL_URL};
use crate::server::agents::llm::route::{self, Target};
use crate::server::agents::llm::{ChatRequest, Speaker};
use crate::server::agents::Progress;
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db::{self, model_providers::HourFigures, model_providers::ProviderRow};
use crate::server::secrets;

/// Providers one organization may have.
pub const MAX_PROVIDERS_PER_ORG: usize = 20;
/// The longest "check now" waits for an answer.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// Models one provider may list.
pub const MAX_MODELS: usize = 50;

/// What a create or an update says; `None` leaves a value as it is (on
/// create: the defaults). `api_key: ""` removes the key.
#[derive(Debug, Default, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    pub name: Option<String>,
    /// openai (any OpenAI-compatible server), anthropic or gemini.
    pub kind: Option<ProviderKind>,
    /// e.g. https://api.openai.com/v1, http://127.0.0.1:8080/v1 (llama.cpp),
    /// http://127.0.0.1:11434/v1 (Ollama).
    pub base_url: Option<String>,
    /// Sealed at rest; never shown again (only its last four characters).
    pub api_key: Option<String>,
    pub models: Option<Vec<ProviderModel>>,
    /// Seconds a request may take (1–600, default 60).
    pub timeout_secs: Option<i32>,
    /// Requests in flight per process (1–256, default 4).
    pub max_in_flight: Option<i32>,
    /// Requests per minute across every process (none: no limit).
    pub requests_per_minute: Option<i32>,
    /// Tokens per minute across every process (none: no limit).
    pub tokens_per_minute: Option<i32>,
    pub enabled: Option<bool>,
}

fn not_found() -> AppError {
    AppError::NotFound("Model provider".into())
}

/// The caller's context for provider `id`: 404 for an unknown id or one
/// in another organization, 403 without the permission.
async fn provider_ctx(db: &PgPool, actor: &Actor, id: Uuid) -> Result<OrgCtx, AppError> {
    let org_id = db::model_providers::fetch_org_id(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ManageModelProviders)?;
    Ok(ctx)
}

fn to_model(r: ProviderRow, figures: Option<&HourFigures>) -> ModelProvider {
    let requests = figures.map_or(0, |f| f.requests);
    ModelProvider {
        id: r.id,
        name: r.name,
        kind: r.kind,
        base_url: r.base_url,
        api_key_last4: r.api_key_last4,
        models: r.models.0,
        timeout_secs: r.timeout_secs,
        max_in_flight: r.max_in_flight,
        requests_per_minute: r.requests_per_minute,
        tokens_per_minute: r.tokens_per_minute,
        enabled: r.enabled,
        health: ProviderHealth {
            state: r.breaker,
            auth_failed: r.auth_failed,
            consecutive_failures: r.consecutive_failures,
            open_until: (r.breaker != BreakerState::Closed)
                .then_some(r.open_until)
                .flatten(),
            last_error: r.last_error,
            last_error_at: r.last_error_at,
            last_success_at: r.last_success_at,
            requests_last_hour: requests,
            error_rate: figures
                .filter(|f| f.requests > 0)
                .map(|f| f.failures as f64 / f.requests as f64),
            latency_p50_ms: figures.and_then(|f| f.p50_ms),
            latency_p95_ms: figures.and_then(|f| f.p95_ms),
        },
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

async fn with_figures(db: &PgPool, rows: Vec<ProviderRow>) -> Result<Vec<ModelProvider>, AppError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let figures = db::model_providers::hour_figures(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let f = figures.iter().find(|f| f.provider_id == r.id);
            to_model(r, f)
        })
        .collect())
}

/// What the audit log keeps of a provider (the key only as its last four).
fn audited(r: &ProviderRow) -> serde_json::Value {
    json!({
        "name": r.name, "kind": r.kind, "base_url": r.base_url,
        "api_key_last4": r.api_key_last4, "models": r.models.0,
        "timeout_secs": r.timeout_secs, "max_in_flight": r.max_in_flight,
        "requests_per_minute": r.requests_per_minute, "tokens_per_minute": r.tokens_per_minute,
        "enabled": r.enabled,
    })
}

/// The organization's providers with their health (admins).
pub async fn list(db: &PgPool, ctx: &OrgCtx) -> Result<Vec<ModelProvider>, AppError> {
    require(ctx, Permission::ManageModelProviders)?;
    let rows = db::model_providers::list(db, ctx.org_id()).await?;
    with_figures(db, rows).await
}

/// Providers' names and models, for anyone who reads projects (members
/// choose routes from them).
pub async fn choices(db: &PgPool, ctx: &OrgCtx) -> Result<Vec<ProviderChoice>, AppError> {
    require(ctx, Permission::ViewProjects)?;
    let rows = db::model_providers::list(db, ctx.org_id()).await?;
    Ok(rows
        .into_iter()
        .map(|r| ProviderChoice {
            id: r.id,
            name: r.name,
            kind: r.kind,
            models: r.models.0.into_iter().map(|m| m.name).collect(),
            enabled: r.enabled,
        })
        .collect())
}

/// What a job of the llm extractor is expected to cost in this project:
/// the tokens per job of its last finished llm test run at the prices of
/// the route's first entry that would serve (an enabled provider still
/// offering the model). `None` when there is no route, no such entry, or
/// no test run measured it yet: the caller says so rather than guess.
pub async fn llm_cost_estimate(
    db: &PgPool,
    org_id: Uuid,
    project_id: Uuid,
    route: &[RouteEntry],
) -> Result<Option<LlmCostEstimate>, AppError> {
    if route.is_empty() {
        return Ok(None);
    }
    let Some(measured) = db::executions::last_llm_test_tokens(db, org_id, project_id).await? else {
        return Ok(None);
    };
    let ids: Vec<Uuid> = route.iter().map(|e| e.provider).collect();
    let rows = db::model_providers::fetch_many(db, org_id, &ids).await?;
    let serving = route.iter().find_map(|entry| {
        let row = rows.iter().find(|r| r.id == entry.provider && r.enabled)?;
        let model = row.models.0.iter().find(|m| m.name == entry.model)?;
        Some((format!("{} / {}", row.name, model.name), model))
    });
    let Some((name, model)) = serving else {
        return Ok(None);
    };
    let jobs = measured.jobs.max(1);
    let per_job = |total: i64| (total + jobs / 2) / jobs;
    Ok(Some(LlmCostEstimate {
        from_execution: measured.execution_id,
        measured_jobs: measured.jobs,
        input_tokens_per_job: per_job(measured.input_tokens),
        output_tokens_per_job: per_job(measured.output_tokens),
        model: name,
        // Priced on the totals, so small per-job costs don't round away.
        per_job_micros: per_job(model.cost_micros(measured.input_tokens, measured.output_tokens)),
    }))
}

/// One provider with its health.
pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<ModelProvider, AppError> {
    let ctx = provider_ctx(db, actor, id).await?;
    fetch(db, ctx.org_id(), id).await
}

async fn fetch(db: &PgPool, org_id: Uuid, id: Uuid) -> Result<ModelProvider, AppError> {
    let row = db::model_providers::fetch_one(db, org_id, id, false)
        .await?
        .ok_or_else(not_found)?;
    Ok(with_figures(db, vec![row]).await?.remove(0))
}

/// A provider's address: http(s), at most 2,000 characters. Private
/// addresses are allowed: a provider is an admin's choice, and a model
/// server inside the network (vLLM, Ollama) is a normal one.
fn parse_base_url(raw: &str) -> Result<String, AppError> {
    let bad = |m: String| AppError::field("base_url", m);
    let text = raw.trim().trim_end_matches('/');
    if text == LOCAL_URL {
        return Ok(text.to_string());
    }
    if text.is_empty() {
        return Err(bad(
            "Enter the provider's base URL, e.g. https://api.openai.com/v1.".into(),
        ));
    }
    if text.chars().count() > 2000 {
        return Err(bad("Use a URL of at most 2,000 characters.".into()));
    }
    let url = url::Url::parse(text).map_err(|e| bad(format!("{text:?} is not a URL ({e}).")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(format!(
            "Use an http:// or https:// address (got {text:?})."
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "Put the key in the API key field, not in the URL.".into()
        ));
    }
    Ok(text.to_string())
}

fn parse_key(raw: &str) -> Result<Option<String>, AppError> {
    let key = raw.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.chars().count() > 500 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::field(
            "api_key",
            "An API key is one word of at most 500 characters, without spaces.",
        ));
    }
    Ok(Some(key.to_string()))
}

fn parse_models(models: &[ProviderModel]) -> Result<Vec<ProviderModel>, AppError> {
    let bad = |m: String| AppError::field("models", m);
    if models.is_empty() {
        return Err(bad(
            "List at least one model the provider offers, e.g. gpt-4o-mini.".into(),
        ));
    }
    if models.len() > MAX_MODELS {
        return Err(bad(format!("List at most {MAX_MODELS} models.")));
    }
    let mut out: Vec<ProviderModel> = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let n = i + 1;
        let name = m.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(bad(format!(
                "Model {n}: give a name of 1 to 200 characters."
            )));
        }
        for (price, what) in [
            (m.input_price_per_million, "input"),
            (m.output_price_per_million, "output"),
        ] {
            if !price.is_finite() || !(0.0..=1_000_000.0).contains(&price) {
                return Err(bad(format!(
                    "Model {n} ({name}): the {what} price per million tokens must be from 0 to 1000000."
                )));
            }
        }
        if out.iter().any(|o| o.name == name) {
            return Err(bad(format!("Model {n}: {name} is listed twice.")));
        }
        out.push(ProviderModel {
            name: name.to_string(),
            ..m.clone()
        });
    }
    Ok(out)
}

fn in_range(v: Option<i32>, field: &str, low: i32, high: i32) -> Result<(), AppError> {
    match v {
        Some(n) if !(low..=high).contains(&n) => Err(AppError::field(
            field,
            format!("Use a number from {low} to {high}."),
        )),
        _ => Ok(()),
    }
}

fn name_taken(name: &str) -> AppError {
    AppError::AlreadyExists(FieldError::new(
        "name",
        format!("This organization already has a provider named {name:?}."),
    ))
}

/// Adds a provider (admins); its key is sealed and never shown again.
pub async fn create(
    db: &PgPool,
    ctx: &OrgCtx,
    input: ProviderInput,
) -> Result<ModelProvider, AppError> {
    require(ctx, Permission::ManageModelProviders)?;
    let name = parse_name(input.name.as_deref().unwrap_or(""), "name");
    let kind = input
        .kind
        .ok_or_else(|| AppError::field("kind", "Choose openai, anthropic or gemini."));
    let base_url = match (&input.base_url, &kind) {
        (Some(u), _) => parse_base_url(u),
        (None, Ok(k)) => Ok(k.default_base_url().to_string()),
        (None, Err(_)) => Err(AppError::field(
            "base_url",
            "Enter the provider's base URL.",
        )),
    };
    let key = parse_key(input.api_key.as_deref().unwrap_or(""));
    let models = parse_models(input.models.as_deref().unwrap_or(&[]));
    let checks = [
        in_range(input.timeout_secs, "timeout_secs", 1, 600),
        in_range(input.max_in_flight, "max_in_flight", 1, 256),
        in_range(
            input.requests_per_minute,
            "requests_per_minute",
            1,
            1_000_000,
        ),
        in_range(input.tokens_per_minute, "tokens_per_minute", 1, 100_000_000),
    ];
    let [a, b, c, d] = checks;
    collect_fields([
        name.as_ref().map(|_| ()).map_err(Clone::clone),
        kind.as_ref().map(|_| ()).map_err(Clone::clone),
        base_url.as_ref().map(|_| ()).map_err(Clone::clone),
        key.as_ref().map(|_| ()).map_err(Clone::clone),
        models.as_ref().map(|_| ()).map_err(Clone::clone),
        a,
        b,
        c,
        d,
    ])?;
    let (name, kind, base_url, key, models) = (name?, kind?, base_url?, key?, models?);
    let mut tx = db.begin().await?;
    // The organization's row lock serializes creates against the limit.
    let count = db::model_providers::count_locking_org(&mut tx, ctx.org_id()).await?;
    if count >= MAX_PROVIDERS_PER_ORG as i64 {
        return Err(AppError::QuotaExceeded(format!(
            "An organization can have at most {MAX_PROVIDERS_PER_ORG} model providers; delete one first."
        )));
    }
    let id = db::model_providers::insert(
        &mut *tx,
        db::model_providers::NewProvider {
            org_id: ctx.org_id(),
            name: &name,
            kind,
            base_url: &base_url,
            api_key_sealed: key.as_deref().map(secrets::seal),
            api_key_last4: key.as_deref().map(secrets::last_four),
            models: &models,
            timeout_secs: input.timeout_secs.unwrap_or(60),
            max_in_flight: input.max_in_flight.unwrap_or(4),
            requests_per_minute: input.requests_per_minute,
            tokens_per_minute: input.tokens_per_minute,
            enabled: input.enabled.unwrap_or(true),
            created_by: ctx.actor().user_id(),
        },
    )
    .await?
    .ok_or_else(|| name_taken(&name))?;
    audit_created(&mut tx, ctx, id).await?;
    tx.commit().await?;
    fetch(db, ctx.org_id(), id).await
}

/// The audit entry of a new provider (its key only as its last four).
async fn audit_created(
    tx: &mut sqlx::PgConnection,
    ctx: &OrgCtx,
    id: Uuid,
) -> Result<(), AppError> {
    let row = db::model_providers::fetch_one(&mut *tx, ctx.org_id(), id, false)
        .await?
        .ok_or_else(not_found)?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("model_provider.create", "model_provider", id).after(audited(&row)),
    )
    .await
}

/// Changes a provider; a new key clears a refused-key mark.
pub async fn update(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    input: ProviderInput,
) -> Result<ModelProvider, AppError> {
    let ctx = provider_ctx(db, actor, id).await?;
    let name = input
        .name
        .as_deref()
        .map(|n| parse_name(n, "name"))
        .transpose();
    let kind = match input.kind {
        Some(_) => Err(AppError::field(
            "kind",
            "A provider's kind can't change; add a new provider instead.",
        )),
        None => Ok(()),
    };
    let base_url = input.base_url.as_deref().map(parse_base_url).transpose();
    let key = input.api_key.as_deref().map(parse_key).transpose();
    let models = input.models.as_deref().map(parse_models).transpose();
    collect_fields([
        name.as_ref().map(|_| ()).map_err(Clone::clone),
        kind,
        base_url.as_ref().map(|_| ()).map_err(Clone::clone),
        key.as_ref().map(|_| ()).map_err(Clone::clone),
        models.as_ref().map(|_| ()).map_err(Clone::clone),
        in_range(input.timeout_secs, "timeout_secs", 1, 600),
        in_range(input.max_in_flight, "max_in_flight", 1, 256),
        in_range(
            input.requests_per_minute,
            "requests_per_minute",
            1,
            1_000_000,
        ),
        in_range(input.tokens_per_minute, "tokens_per_minute", 1, 100_000_000),
    ])?;
    let (name, base_url, key, models) = (name?, base_url?, key?, models?);
    let mut tx = db.begin().await?;
    let before = db::model_providers::fetch_one(&mut *tx, ctx.org_id(), id, true)
        .await?
        .ok_or_else(not_found)?;
    let new_name = name.unwrap_or_else(|| before.name.clone());
    let changed = db::model_providers::update(
        &mut *tx,
        ctx.org_id(),
        id,
        db::model_providers::ProviderUpdate {
            name: &new_name,
            base_url: base_url.as_deref().unwrap_or(&before.base_url),
            api_key: key.map(|k| {
                (
                    k.as_deref().map(secrets::seal),
                    k.as_deref().map(secrets::last_four),
                )
            }),
            models: models.as_deref().unwrap_or(&before.models.0),
            timeout_secs: input.timeout_secs.unwrap_or(before.timeout_secs),
            max_in_flight: input.max_in_flight.unwrap_or(before.max_in_flight),
            requests_per_minute: input.requests_per_minute.or(before.requests_per_minute),
            tokens_per_minute: input.tokens_per_minute.or(before.tokens_per_minute),
            enabled: input.enabled.unwrap_or(before.enabled),
        },
    )
    .await?;
    if !changed {
        return Err(name_taken(&new_name));
    }
    let after = db::model_providers::fetch_one(&mut *tx, ctx.org_id(), id, false)
        .await?
        .ok_or_else(not_found)?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("model_provider.update", "model_provider", id)
            .before(audited(&before))
            .after(audited(&after)),
    )
    .await?;
    tx.commit().await?;
    fetch(db, ctx.org_id(), id).await
}

/// Deletes a provider. Routes that name it skip it from then on (and a
/// route left with none fails its jobs saying so).
pub async fn delete(db: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AppError> {
    let ctx = provider_ctx(db, actor, id).await?;
    let mut tx = db.begin().await?;
    let before = db::model_providers::fetch_one(&mut *tx, ctx.org_id(), id, true)
        .await?
        .ok_or_else(not_found)?;
    db::model_providers::delete(&mut *tx, ctx.org_id(), id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("model_provider.delete", "model_provider", id).before(audited(&before)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The organization's local-model provider (added when missing, when this
/// machine has the model), for the demo project; `None` without the model.
pub async fn ensure_local(db: &PgPool, ctx: &OrgCtx) -> Result<Option<Uuid>, AppError> {
    if !local::available() {
        return Ok(None);
    }
    let existing = db::model_providers::list(db, ctx.org_id()).await?;
    if let Some(p) = existing.iter().find(|p| p.base_url == LOCAL_URL) {
        return Ok(Some(p.id));
    }
    let mut tx = db.begin().await?;
    let id = db::model_providers::insert(
        &mut *tx,
        db::model_providers::NewProvider {
            org_id: ctx.org_id(),
            name: LOCAL_PROVIDER_NAME,
            kind: ProviderKind::OpenAi,
            base_url: LOCAL_URL,
            api_key_sealed: None,
            api_key_last4: None,
            models: &[ProviderModel {
                name: LOCAL_MODEL.into(),
                input_price_per_million: 0.0,
                output_price_per_million: 0.0,
            }],
            // A tiny CPU model: slow, and one request at a time per process.
            timeout_secs: 300,
            max_in_flight: 2,
            requests_per_minute: None,
            tokens_per_minute: None,
            enabled: true,
            created_by: ctx.actor().user_id(),
        },
    )
    .await?;
    let Some(id) = id else {
        // A provider of that name exists (an admin made it): leave it.
        return Ok(None);
    };
    audit_created(&mut tx, ctx, id).await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// "Check now": a tiny request to the provider's first model, recorded
/// like any call (a success closes its breaker; a refused key marks it).
pub async fn check(db: &PgPool, actor: &Actor, id: Uuid) -> Result<ProviderCheck, AppError> {
    let ctx = provider_ctx(db, actor, id).await?;
    let row = db::model_providers::fetch_one(db, ctx.org_id(), id, false)
        .await?
        .ok_or_else(not_found)?;
    let model = row
        .models
        .0
        .first()
        .cloned()
        .ok_or_else(|| AppError::Conflict("The provider lists no model to check.".into()))?;
    let key = match &row.api_key {
        Some(sealed) => Some(
            secrets::open(sealed).map_err(|e| AppError::internal("opening a provider key", &e))?,
        ),
        None => None,
    };
    let mut target = Target::new(&row, model.clone(), key);
    // An admin waits for the answer: a check gives up sooner than a job.
    target.endpoint.timeout = target.endpoint.timeout.min(CHECK_TIMEOUT);
    let req = ChatRequest {
        system: "You answer with JSON only.".into(),
        turns: vec![(Speaker::User, "Reply with {\"ok\": true}.".into())],
        schema: json!({
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": false,
        }),
        max_output_tokens: 16,
    };
    // A manual check goes whatever the breaker says: it is the admin's
    // probe.
    let client = crate::server::executor::model_client();
    let started = std::time::Instant::now();
    let outcome = route::complete_one(db, &client, &target, &req, &Progress::default()).await;
    let latency_ms = started.elapsed().as_millis() as i64;
    let error = outcome.err();
    audit::record(
        db,
        &ctx,
        Change::new("model_provider.check", "model_provider", id).after(json!({
            "ok": error.is_none(), "model": model.name, "latency_ms": latency_ms, "error": error,
        })),
    )
    .await?;
    Ok(ProviderCheck {
        ok: error.is_none(),
        model: model.name,
        latency_ms,
        error,
        provider: fetch(db, ctx.org_id(), id).await?,
    })
}
