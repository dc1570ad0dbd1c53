//! Experiments: 2–6 variants of a project's run configuration (a version,
//! optionally with another source, extractor or model route) over exactly
//! the same rows. Each variant is an ordinary execution, so the executor
//! shares the organization's capacity between them through the per-run
//! claims, and their live views, job lists and metrics are the runs'. The
//! experiment adds the matrix, every pair's fixed/regressed rows with
//! McNemar's test, a per-row grid and promotion to production.

use std::collections::{BTreeSet, HashSet};

use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::executions::{self, StartRequest};
use crate::error::AppError;
use crate::model::{
    variant_label, ControlAction, ExecutionState, Experiment, ExperimentRow, ExperimentRows,
    ExperimentSummary, ExperimentVariant, Extractor, RouteEntry, VariantCell, VariantPair,
    EXPERIMENT_VARIANTS, MAX_EXPERIMENT_ROWS,
};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;
use crate::server::evaluate::metrics::{mcnemar_p, ALPHA};
use crate::server::live;

fn not_found() -> AppError {
    AppError::NotFound("Experiment".into())
}

/// Which rows every variant runs.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowChoice {
    /// first (default) or random: how `size` rows are drawn.
    pub sample: Option<String>,
    /// How many rows (default: every row chosen, up to 50,000).
    pub size: Option<i32>,
    /// random: the seed, so the same rows can be drawn again (default: one
    /// is picked and recorded).
    pub seed: Option<i64>,
    /// Rows of this run's jobs…
    pub execution_id: Option<Uuid>,
    /// …with this verdict: failing (partial, fail or error; the default),
    /// partial, fail or error.
    pub evaluation: Option<String>,
    /// The rows of this evaluation set of the batch.
    pub set: Option<Uuid>,
}

/// One variant: a version, and what it runs differently from it.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    pub version: Option<i32>,
    /// http, browser, remote or snapshot (default: the version's, or
    /// snapshot when the experiment reads kept pages).
    pub agent: Option<String>,
    /// rules or llm (default: the version's).
    pub extractor: Option<String>,
    /// Another model route for the llm extractor.
    pub model_route: Option<Vec<RouteEntry>>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    pub name: Option<String>,
    /// The batch whose rows the variants run.
    pub batch: Option<Uuid>,
    #[serde(default)]
    pub rows: RowChoice,
    pub variants: Vec<VariantRequest>,
    /// Every variant reads the pages this run of the batch kept, so all
    /// read the same content and no request reaches the sites.
    pub from_execution: Option<Uuid>,
    /// Each variant's concurrency (default: the organization's default).
    pub concurrency: Option<i32>,
    pub max_retries: Option<i32>,
}

/// The start request's fields that are the experiment's own (every
/// variant gets the same value): their errors are not a variant's.
const SHARED_FIELDS: [&str; 2] = ["concurrency", "max_retries"];

/// A variant's error with its fields named inside `at` (`variants.2`),
/// except the experiment's own.
fn for_variant(e: AppError, at: &str) -> AppError {
    match e {
        AppError::Validation { message, fields } => AppError::Validation {
            message,
            fields: fields
                .into_iter()
                .map(|f| match SHARED_FIELDS.contains(&f.field.as_str()) {
                    true => f,
                    false => crate::error::FieldError {
                        field: format!("{at}.{}", f.field),
                        message: f.message,
                    },
                })
                .collect(),
        },
        other => other,
    }
}

/// Several variants' errors as one: the first that is not about a field
/// (a missing browser), else every field error together (an experiment
/// field's once).
fn merged(errors: Vec<AppError>) -> AppError {
    if let Some(other) = errors
        .iter()
        .find(|e| !matches!(e, AppError::Validation { .. }))
    {
        return other.clone();
    }
    let mut fields: Vec<crate::error::FieldError> = Vec::new();
    for f in errors.into_iter().flat_map(|e| e.field_errors()) {
        if !fields.iter().any(|g| g.field == f.field) {
            fields.push(f);
        }
    }
    let message = match fields.as_slice() {
        [one] => one.message.clone(),
        _ => "Some variants need attention.".into(),
    };
    AppError::Validation { message, fields }
}

/// Where an experiment is, for a caller allowed to read it.
async fn experiment_ctx(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<(OrgCtx, db::experiments::ExperimentRow), AppError> {
    let org_id = db::experiments::fetch_org_id(db, id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewResults)?;
    let row = db::experiments::fetch_one(db, org_id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok((ctx, row))
}

/// A deterministic 64-bit mix (SplitMix64's finalizer): the order of a
/// seeded random sample, the same on every machine and release.
fn mix(seed: i64, row: i32) -> u64 {
    let mut z = (seed as u64) ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `size` rows of `rows` (ascending): the first ones, or a seeded random
/// draw, returned ascending.
pub fn sample_rows(rows: &[i32], size: usize, random: Option<i64>) -> Vec<i32> {
    let mut picked: Vec<i32> = match random {
        None => rows.iter().copied().take(size).collect(),
        Some(seed) => {
            let mut keyed: Vec<(u64, i32)> = rows.iter().map(|&r| (mix(seed, r), r)).collect();
            keyed.sort_unstable();
            keyed.into_iter().take(size).map(|(_, r)| r).collect()
        }
    };
    picked.sort_unstable();
    picked
}

/// The rows a choice names, with the choice as recorded (a random draw's
/// seed filled in).
async fn choose_rows(
    db: &PgPool,
    ctx: &OrgCtx,
    batch: &db::batches::BatchDbRow,
    choice: &RowChoice,
    from_execution: Option<Uuid>,
) -> Result<(Vec<i32>, serde_json::Value), AppError> {
    let field = |f: &str, m: &str| AppError::field(&format!("rows.{f}"), m);
    let random =
        match choice.sample.as_deref() {
            None | Some("first") => None,
            Some("random") => Some(choice.seed.unwrap_or_else(|| {
                (uuid::Uuid::new_v4().as_u128() as i64).rem_euclid(1_000_000_000)
            })),
            Some(_) => return Err(field("sample", "Use first or random.")),
        };
    let size = match choice.size {
        None => None,
        Some(n) if n >= 1 && n as usize <= MAX_EXPERIMENT_ROWS => Some(n as usize),
        Some(_) => {
            return Err(field(
                "size",
                &format!("Choose 1 to {MAX_EXPERIMENT_ROWS} rows."),
            ))
        }
    };
    if choice.set.is_some() && choice.execution_id.is_some() {
        return Err(field(
            "set",
            "Choose the rows of a set or of a run's jobs, not both.",
        ));
    }
    let mut rows: Vec<i32> = if let Some(set) = choice.set {
        super::evaluation_sets::rows_for_run(db, ctx.org_id(), batch.id, set)
            .await
            .map_err(|_| field("set", "Not an evaluation set of this batch."))?
    } else if let Some(run) = choice.execution_id {
        let verdicts: &[&str] = match choice.evaluation.as_deref() {
            None | Some("failing") => &["partial", "fail", "error"],
            Some("partial") => &["partial"],
            Some("fail") => &["fail"],
            Some("error") => &["error"],
            Some(_) => {
                return Err(field(
                    "evaluation",
                    "Use failing (partial, fail or error), partial, fail or error.",
                ))
            }
        };
        match db::executions::fetch_one(db, ctx.org_id(), run).await? {
            Some(e) if e.batch_id == batch.id => {}
            _ => {
                return Err(field(
                    "execution_id",
                    "Not a run of this batch in this organization.",
                ))
            }
        }
        db::experiments::rows_with_verdicts(db, run, verdicts).await?
    } else {
        if choice.evaluation.is_some() {
            return Err(field("evaluation", "evaluation goes with execution_id."));
        }
        db::experiments::batch_row_indexes(db, batch.seq).await?
    };
    if let Some(from) = from_execution {
        let kept = match executions::snapshot_source(db, ctx, batch.id, from).await? {
            Some((_, kept)) => kept.into_iter().collect::<HashSet<i32>>(),
            None => HashSet::new(),
        };
        rows.retain(|r| kept.contains(r));
    }
    if rows.is_empty() {
        return Err(AppError::field(
            "rows",
            match from_execution {
                Some(_) => {
                    "No chosen row has a page kept by that run: choose other rows or another run."
                }
                None => {
                    "No row matches that choice: the run has no such jobs, or the set is empty."
                }
            },
        ));
    }
    let rows = match size {
        Some(n) => sample_rows(&rows, n, random),
        None if rows.len() > MAX_EXPERIMENT_ROWS => {
            return Err(field(
                "size",
                &format!(
                    "That choice has {} rows; an experiment runs at most {MAX_EXPERIMENT_ROWS}: give a size.",
                    rows.len()
                ),
            ))
        }
        None => sample_rows(&rows, rows.len(), random),
    };
    let mut recorded = serde_json::to_value(choice).unwrap_or_default();
    if let Some(seed) = random {
        recorded["seed"] = json!(seed);
    }
    Ok((rows, recorded))
}

/// Creates an experiment and starts every variant over the same rows, in
/// one transaction: all variants start, or none does.
pub async fn create(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    req: NewExperiment,
) -> Result<Experiment, AppError> {
    let (ctx, project) = super::projects::project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::RunExecution)?;
    let Some(batch_id) = req.batch else {
        return Err(AppError::field(
            "batch",
            "Choose the batch whose rows the variants run.",
        ));
    };
    let batch = match super::batches::batch_ctx(db, actor, batch_id).await {
        Ok((_, b)) if b.project_id == project_id => b,
        Ok(_) | Err(AppError::NotFound(_)) => {
            return Err(AppError::field("batch", "Not a batch of this project."));
        }
        Err(e) => return Err(e),
    };
    if !EXPERIMENT_VARIANTS.contains(&req.variants.len()) {
        return Err(AppError::field(
            "variants",
            format!(
                "An experiment compares {} to {} variants; this has {}.",
                EXPERIMENT_VARIANTS.start(),
                EXPERIMENT_VARIANTS.end(),
                req.variants.len()
            ),
        ));
    }
    let name = match req.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => super::parse_name(n, "name")?,
        _ => req
            .variants
            .iter()
            .map(|v| v.version.map_or("?".into(), |n| format!("v{n}")))
            .collect::<Vec<_>>()
            .join(" vs "),
    };
    let (rows, row_choice) = choose_rows(db, &ctx, &batch, &req.rows, req.from_execution).await?;

    // Every variant checked before anything is written; errors name the
    // variant (variants.2.extractor).
    let mut prepared = Vec::new();
    let mut errors = Vec::new();
    for (i, v) in req.variants.iter().enumerate() {
        let at = format!("variants.{}", i + 1);
        let Some(version) = v.version else {
            errors.push(
                AppError::field("version", "Choose the version this variant runs.").nested(&at),
            );
            continue;
        };
        if let Some(route) = &v.model_route {
            let settings = crate::model::AgentSettings {
                model_route: route.clone(),
                extractor: Extractor::Rules,
                ..project.agent()
            };
            if let Err(e) = super::projects::check_route(db, ctx.org_id(), &settings).await? {
                errors.push(for_variant(e, &at));
                continue;
            }
        }
        let start = StartRequest {
            mode: "test".into(),
            instruction_version: Some(version),
            agent: v.agent.clone(),
            extractor: v.extractor.clone(),
            from_execution: req.from_execution,
            concurrency: req.concurrency,
            max_retries: req.max_retries,
            rows: Some(rows.clone()),
            model_route: v.model_route.clone(),
            ..Default::default()
        };
        match executions::prepare(db, &ctx, &batch, &start).await {
            Ok(p) => prepared.push((v, p)),
            Err(e) => errors.push(for_variant(e, &at)),
        }
    }
    if !errors.is_empty() {
        return Err(merged(errors));
    }
    super::usage::refuse_when_stopped(db, ctx.org_id()).await?;
    let author = ctx.actor_name(db).await?.to_string();
    let mut tx = db.begin().await?;
    let id = db::experiments::insert(
        &mut tx,
        &db::experiments::NewExperiment {
            org_id: ctx.org_id(),
            project_id: project.id,
            batch_id: batch.id,
            name: &name,
            row_choice: &row_choice,
            row_count: rows.len() as i32,
            pages_from: prepared.first().and_then(|(_, p)| p.pages_from()),
            created_by: ctx.actor().user_id(),
            created_by_name: &author,
        },
    )
    .await?;
    let mut started = Vec::new();
    for (position, (v, p)) in prepared.iter().enumerate() {
        let execution = executions::insert_prepared(&mut tx, &ctx, &batch, p).await?;
        db::experiments::insert_variant(
            &mut tx,
            id,
            position as i32 + 1,
            p.version,
            v.agent.as_ref().map(|_| p.agent.as_str()),
            v.extractor.as_ref().map(|_| p.extractor.as_str()),
            v.model_route.as_deref(),
            execution,
        )
        .await?;
        started.push(json!({
            "variant": variant_label(position as i32 + 1), "execution_id": execution,
            "version": p.version, "agent": p.agent.as_str(), "extractor": p.extractor.as_str(),
        }));
    }
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("experiment.create", "experiment", id).after(json!({
            "name": name, "batch_id": batch.id, "rows": rows.len(), "row_choice": row_choice,
            "variants": started,
        })),
    )
    .await?;
    live::notify(&mut *tx, live::WORK, "").await?;
    tx.commit().await?;
    get(db, actor, id).await
}

/// A project's latest experiments (at most 50), newest first.
pub async fn list(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
) -> Result<Vec<ExperimentSummary>, AppError> {
    let (ctx, _) = super::projects::project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::ViewResults)?;
    Ok(db::experiments::list(db, ctx.org_id(), project_id, 50).await?)
}

/// One experiment with its matrix and pairs.
pub async fn get(db: &PgPool, actor: &Actor, id: Uuid) -> Result<Experiment, AppError> {
    let (ctx, row) = experiment_ctx(db, actor, id).await?;
    cached_view(db, &ctx, row).await
}

/// How long a computed experiment is served before it is computed again.
/// The page re-reads every two seconds; twenty viewers of a running
/// 40,000-job experiment would otherwise each pay for four runs' metrics
/// (bootstrap intervals included) on every read.
const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// A value computed at most once per [`FRESH`] in this process: while one
/// caller computes a newer one, the others get the last.
struct Slot<V> {
    value: std::sync::Mutex<Option<(std::time::Instant, V)>>,
    /// Someone is computing a newer value: the others serve the last one.
    refreshing: std::sync::atomic::AtomicBool,
    /// The first computation, which everyone waits for.
    first: tokio::sync::Mutex<()>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            value: std::sync::Mutex::new(None),
            refreshing: Default::default(),
            first: Default::default(),
        }
    }
}

/// Computed values by key (dropped when nobody read them for ten minutes).
struct Cache<K, V>(
    std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<K, std::sync::Arc<Slot<V>>>>>,
);

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Cache<K, V> {
    const fn new() -> Self {
        Cache(std::sync::LazyLock::new(Default::default))
    }

    fn slot(&self, key: &K) -> std::sync::Arc<Slot<V>> {
        let mut slots = self.0.lock().expect("cache lock");
        if let Some(s) = slots.get(key) {
            return s.clone();
        }
        // Pruned when a key is added, not on every read.
        slots.retain(|_, s| {
            s.value
                .lock()
                .map(|v| {
                    v.as_ref()
                        .is_none_or(|(at, _)| at.elapsed() < std::time::Duration::from_secs(600))
                })
                .unwrap_or(false)
        });
        slots.entry(key.clone()).or_default().clone()
    }

    fn forget(&self, matching: impl Fn(&K) -> bool) {
        self.0
            .lock()
            .expect("cache lock")
            .retain(|k, _| !matching(k));
    }

    async fn get<F, Fut>(&self, key: &K, compute: F) -> Result<V, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, AppError>>,
    {
        use std::sync::atomic::Ordering;
        let slot = self.slot(key);
        // Called at most once: every branch that computes returns.
        let mut compute = Some(compute);
        let mut compute = move || compute.take().expect("computed once")();
        let store = |v: &V| {
            *slot.value.lock().expect("cache slot lock") =
                Some((std::time::Instant::now(), v.clone()));
        };
        loop {
            let last = slot.value.lock().expect("cache slot lock").clone();
            match last {
                Some((at, v)) if at.elapsed() < FRESH => return Ok(v),
                Some((_, v)) if slot.refreshing.swap(true, Ordering::AcqRel) => return Ok(v),
                Some(_) => {
                    // Cleared however this ends (a caller that goes away
                    // mid-computation included).
                    struct Refreshing<'a, V>(&'a Slot<V>);
                    impl<V> Drop for Refreshing<'_, V> {
                        fn drop(&mut self) {
                            self.0.refreshing.store(false, Ordering::Release);
                        }
                    }
                    let _refreshing = Refreshing(&slot);
                    let v = compute().await?;
                    store(&v);
                    return Ok(v);
                }
                None => {
                    let _first = slot.first.lock().await;
                    if slot.value.lock().expect("cache slot lock").is_some() {
                        continue;
                    }
                    let v = compute().await?;
                    store(&v);
                    return Ok(v);
                }
            }
        }
    }
}

/// Experiments' views, and pages of their per-row grids.
/// Keyed by whether the experiment had finished too, so the first read
/// after its end never serves a view from before it.
static VIEWS: Cache<(Uuid, bool), Experiment> = Cache::new();
static GRIDS: Cache<(Uuid, bool, i64, i64), ExperimentRows> = Cache::new();

/// Forgets an experiment's computed views (after a control or a
/// promotion, which the next read must show).
fn forget(id: Uuid) {
    VIEWS.forget(|k| k.0 == id);
    GRIDS.forget(|k| k.0 == id);
}

/// The view as `ctx`'s caller sees it (their role and permissions).
fn for_viewer(mut x: Experiment, ctx: &OrgCtx) -> Experiment {
    for v in &mut x.variants {
        v.execution.role = ctx.role();
    }
    x.can_run = require(ctx, Permission::RunExecution).is_ok();
    x.can_promote = require(ctx, Permission::EditProject).is_ok();
    x
}

/// The experiment's view, computed at most once per [`FRESH`] in this
/// process (at most a second or two old; its runs' own pages are live).
async fn cached_view(
    db: &PgPool,
    ctx: &OrgCtx,
    row: db::experiments::ExperimentRow,
) -> Result<Experiment, AppError> {
    let system = OrgCtx::system(ctx.org_id());
    let key = (row.id, row.finished_at.is_some());
    let x = VIEWS.get(&key, || view(db, &system, row)).await?;
    Ok(for_viewer(x, ctx))
}

/// An experiment as Mino itself reads it, for the `experiment.completed`
/// webhook; `None` once it was deleted.
pub(crate) async fn read_unchecked(
    db: &PgPool,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<Experiment>, AppError> {
    match db::experiments::fetch_one(db, org_id, id).await? {
        None => Ok(None),
        Some(row) => Ok(Some(view(db, &OrgCtx::system(org_id), row).await?)),
    }
}

async fn view(
    db: &PgPool,
    ctx: &OrgCtx,
    row: db::experiments::ExperimentRow,
) -> Result<Experiment, AppError> {
    let stored = db::experiments::variants(db, row.id).await?;
    let ids: Vec<Uuid> = stored.iter().map(|v| v.execution_id).collect();
    // A variant whose run was deleted drops out of the matrix.
    let (execution_rows, routes): (Vec<_>, Vec<_>) =
        db::executions::fetch_many(db, ctx.org_id(), &ids)
            .await?
            .into_iter()
            .map(|(e, route)| {
                let id = e.id;
                (e, (id, route))
            })
            .unzip();
    let runs = db::executions::with_counts(db, execution_rows, ctx.role()).await?;
    let latencies = db::experiments::latencies(db, &ids).await?;
    let mut variants = Vec::new();
    let mut fields = BTreeSet::new();
    for v in &stored {
        let Some(execution) = runs.iter().find(|e| e.id == v.execution_id).cloned() else {
            continue;
        };
        let metrics = executions::metrics_of(db, &execution).await?;
        fields.extend(metrics.fields.iter().map(|f| f.field.clone()));
        let (p50, p95) = latencies
            .iter()
            .find(|(e, _, _)| *e == execution.id)
            .map(|(_, a, b)| (*a, *b))
            .unwrap_or_default();
        let overrides = [
            v.agent.as_ref().map(|_| "agent"),
            v.extractor.as_ref().map(|_| "extractor"),
            v.model_route.as_ref().map(|_| "model_route"),
        ]
        .into_iter()
        .flatten()
        .map(String::from)
        .collect();
        let route = routes
            .iter()
            .find(|(id, _)| *id == execution.id)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        variants.push(ExperimentVariant {
            position: v.position,
            label: variant_label(v.position),
            version: v.version,
            agent: execution.agent,
            extractor: execution.extractor.unwrap_or(Extractor::Rules),
            model_route: route,
            overrides,
            accuracy_interval: metrics.accuracy_interval,
            fields: metrics.fields,
            latency_p50_ms: p50.map(|x| (x * 10.0).round() / 10.0),
            latency_p95_ms: p95.map(|x| (x * 10.0).round() / 10.0),
            execution,
        });
    }
    let pairs = pairs(&db::experiments::row_ranks(db, row.id).await?, &variants);
    // The state from the rows read above (a separate query could see a
    // variant end that this read did not).
    let states: Vec<ExecutionState> = variants.iter().map(|v| v.execution.state).collect();
    let state = state_of(row.finished_at.is_some(), &states).to_string();
    Ok(Experiment {
        id: row.id,
        project_id: row.project_id,
        project_name: row.project_name,
        batch_id: row.batch_id,
        batch_name: row.batch_name,
        org_slug: row.org_slug,
        name: row.name,
        state,
        row_choice: row.row_choice.0,
        rows: row.row_count,
        pages_from: row.pages_from,
        created_by_name: row.created_by_name,
        created_at: row.created_at,
        finished_at: row.finished_at,
        promoted_variant: row.promoted_variant,
        promoted_at: row.promoted_at,
        production_version: row.production_version,
        fields: fields.into_iter().collect(),
        variants,
        pairs,
        // Set per viewer (`for_viewer`).
        can_run: false,
        can_promote: false,
    })
}

/// An experiment's state from whether it finished and its variants' run
/// states: stopped or completed once finished, paused when its variants
/// are paused and none runs, else running (every variant may have ended
/// after the experiment's row was read).
fn state_of(finished: bool, states: &[ExecutionState]) -> &'static str {
    if finished {
        if states.contains(&ExecutionState::Cancelled) {
            "stopped"
        } else {
            "completed"
        }
    } else if states.iter().any(|s| {
        matches!(
            s,
            ExecutionState::Queued | ExecutionState::Running | ExecutionState::Stopping
        )
    }) || !states.contains(&ExecutionState::Paused)
    {
        "running"
    } else {
        "paused"
    }
}

/// Every pair of variants over the rows both judged: fixed and regressed
/// rows (by verdict: pass > partial > fail > error) and McNemar's exact
/// test on the rows that pass in only one.
pub fn pairs(rows: &[Vec<(i32, i16)>], variants: &[ExperimentVariant]) -> Vec<VariantPair> {
    let positions: Vec<i32> = variants.iter().map(|v| v.position).collect();
    let mut out = Vec::new();
    for (i, &a) in positions.iter().enumerate() {
        for &b in &positions[i + 1..] {
            let mut pair = VariantPair {
                a,
                b,
                judged_in_both: 0,
                fixed: 0,
                regressed: 0,
                passes_only_a: 0,
                passes_only_b: 0,
                p_value: 1.0,
                significant: false,
            };
            for ranks in rows {
                let of = |p: i32| ranks.iter().find(|(q, _)| *q == p).map(|(_, r)| *r);
                let (Some(ra), Some(rb)) = (of(a), of(b)) else {
                    continue;
                };
                pair.judged_in_both += 1;
                if rb > ra {
                    pair.fixed += 1;
                } else if rb < ra {
                    pair.regressed += 1;
                }
                match (ra == 3, rb == 3) {
                    (true, false) => pair.passes_only_a += 1,
                    (false, true) => pair.passes_only_b += 1,
                    _ => {}
                }
            }
            let p = mcnemar_p(pair.passes_only_b as u64, pair.passes_only_a as u64);
            pair.p_value = (p * 10_000.0).round() / 10_000.0;
            pair.significant = p < ALPHA;
            out.push(pair);
        }
    }
    out
}

/// Most grid rows one request returns.
pub const MAX_GRID_ROWS: i64 = 200;

/// A page of the per-row grid: every variant's values against the
/// expected ones, rows where the variants disagree first.
pub async fn rows(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    offset: i64,
    limit: i64,
) -> Result<ExperimentRows, AppError> {
    let (_, row) = experiment_ctx(db, actor, id).await?;
    let offset = offset.max(0);
    let limit = limit.clamp(1, MAX_GRID_ROWS);
    GRIDS
        .get(&(id, row.finished_at.is_some(), offset, limit), || {
            grid(db, id, row.batch_id, offset, limit)
        })
        .await
}

/// A page of the grid, computed.
async fn grid(
    db: &PgPool,
    id: Uuid,
    batch_id: Uuid,
    offset: i64,
    limit: i64,
) -> Result<ExperimentRows, AppError> {
    let (page, total, disagreements) = db::experiments::grid_page(db, id, offset, limit).await?;
    let indexes: Vec<i32> = page.iter().map(|(r, _)| *r).collect();
    let jobs = db::experiments::grid_jobs(db, id, &indexes).await?;
    let sites = db::experiments::batch_rows(db, batch_id, &indexes).await?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let items = page
        .into_iter()
        .map(|(row_index, disagree)| {
            let (url, expected) = sites
                .iter()
                .find(|(r, _, _)| *r == row_index)
                .map(|(_, url, gt)| {
                    (
                        url.clone(),
                        gt.0.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
                    )
                })
                .unwrap_or_default();
            let cells = jobs
                .iter()
                .filter(|j| j.row_index == row_index)
                .map(|j| VariantCell {
                    position: j.position,
                    job_id: j.job_id,
                    state: j.state.clone(),
                    verdict: j.verdict,
                    values: j
                        .extracted
                        .as_ref()
                        .map(|x| x.0.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                        .unwrap_or_default(),
                })
                .collect();
            ExperimentRow {
                row_index,
                url,
                expected,
                disagree,
                cells,
            }
        })
        .collect();
    Ok(ExperimentRows {
        total,
        disagreements,
        offset,
        items,
    })
}

/// Pauses, resumes or stops every variant that can, together (one audit
/// entry for the experiment).
pub async fn control(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    action: ControlAction,
) -> Result<Experiment, AppError> {
    let (ctx, row) = experiment_ctx(db, actor, id).await?;
    require(&ctx, Permission::RunExecution)?;
    let ids: Vec<Uuid> = db::experiments::variants(db, id)
        .await?
        .iter()
        .map(|v| v.execution_id)
        .collect();
    let runs = db::executions::fetch_many(db, ctx.org_id(), &ids).await?;
    let (from, _) = action.transition();
    let movable: Vec<Uuid> = runs
        .iter()
        .filter(|(e, _)| from.contains(&e.state))
        .map(|(e, _)| e.id)
        .collect();
    if movable.is_empty() {
        let states: Vec<ExecutionState> = runs.iter().map(|(e, _)| e.state).collect();
        let state = state_of(row.finished_at.is_some(), &states);
        return Err(AppError::Conflict(format!(
            "The experiment is {state}; it can't {action}."
        )));
    }
    if action == ControlAction::Resume {
        super::usage::refuse_when_stopped(db, ctx.org_id()).await?;
    }
    let who = ctx.actor_name(db).await?.to_string();
    let mut tx = db.begin().await?;
    for &execution in &movable {
        executions::apply_control(&mut tx, execution, action, &who).await?;
    }
    audit::record(
        &mut *tx,
        &ctx,
        Change::new(&format!("experiment.{action}"), "experiment", id)
            .after(json!({"executions": movable})),
    )
    .await?;
    if action == ControlAction::Resume {
        live::notify(&mut *tx, live::WORK, "").await?;
    }
    tx.commit().await?;
    db::jobs::settle_and_notify(db, &movable).await?;
    forget(id);
    get(db, actor, id).await
}

/// Makes a variant's version the project's production version (audited).
/// A variant's overrides (source, extractor, model route) are not part of
/// its version: production runs the version's own settings.
pub async fn promote(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
    variant: Option<i32>,
) -> Result<Experiment, AppError> {
    let (ctx, row) = experiment_ctx(db, actor, id).await?;
    require(&ctx, Permission::EditProject)?;
    let variants = db::experiments::variants(db, id).await?;
    let Some(chosen) = variant.and_then(|p| variants.iter().find(|v| v.position == p)) else {
        return Err(AppError::field(
            "variant",
            format!(
                "Choose a variant of this experiment: 1 to {} (A to {}).",
                variants.len(),
                variant_label(variants.len() as i32)
            ),
        ));
    };
    if db::projects::fetch_version(db, ctx.org_id(), row.project_id, Some(chosen.version))
        .await?
        .is_none()
    {
        return Err(AppError::Conflict(format!(
            "Version {} of the project no longer exists.",
            chosen.version
        )));
    }
    let mut tx = db.begin().await?;
    db::projects::set_production(&mut *tx, ctx.org_id(), row.project_id, chosen.version).await?;
    db::experiments::set_promoted(&mut tx, id, chosen.position).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("experiment.promote", "experiment", id)
            .before(json!({"production_version": row.production_version}))
            .after(json!({
                "production_version": chosen.version, "project_id": row.project_id,
                "variant": variant_label(chosen.position),
            })),
    )
    .await?;
    tx.commit().await?;
    forget(id);
    get(db, actor, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_samples_repeat_and_differ_by_seed() {
        let rows: Vec<i32> = (1..=100).collect();
        let a = sample_rows(&rows, 10, Some(7));
        assert_eq!(a, sample_rows(&rows, 10, Some(7)));
        assert_ne!(a, sample_rows(&rows, 10, Some(8)));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_rows(&rows, 3, None), vec![1, 2, 3]);
        assert_eq!(sample_rows(&rows, 500, Some(1)).len(), 100);
    }
}
