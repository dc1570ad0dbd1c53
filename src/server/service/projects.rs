//! Projects: create/rename/describe/delete, versioned instructions and
//! their diffs, output fields with comparators and extraction rules, and
//! agent settings.

use sqlx::PgPool;
use uuid::Uuid;

use serde_json::json;

use super::audit::{self, Change};
use super::{collect_fields, paging, parse_name};
use crate::error::AppError;
use crate::model::{
    AgentKind, AgentSettings, BrowserStep, DiffKind, DiffLine, ExtractionRule, InstructionDiff,
    InstructionVersion, OutputField, Page, Project, ProjectSummary, StepAction, VersionSummary,
};
use crate::server::auth::rbac::{require, Actor, OrgCtx, Permission};
use crate::server::db;
use crate::server::db::projects::ProjectRow;

pub const MAX_INSTRUCTIONS: usize = 50_000;
const MAX_DESCRIPTION: usize = 2_000;
const MAX_NOTE: usize = 500;
const MAX_FIELDS: i64 = 100;

fn not_found() -> AppError {
    AppError::NotFound("Project".into())
}

/// The caller inside the project's organization, and the project. Anyone
/// outside it gets 404, as for a project that does not exist.
pub async fn project_ctx(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
) -> Result<(OrgCtx, ProjectRow), AppError> {
    let org_id = db::projects::fetch_org_id(db, project_id)
        .await?
        .ok_or_else(not_found)?;
    let ctx = super::orgs::resource_ctx(db, actor, org_id, not_found).await?;
    require(&ctx, Permission::ViewProjects)?;
    let row = db::projects::fetch_one(db, org_id, project_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((ctx, row))
}

/// One project with its fields and agent settings.
pub async fn get(db: &PgPool, actor: &Actor, project_id: Uuid) -> Result<Project, AppError> {
    let (ctx, row) = project_ctx(db, actor, project_id).await?;
    to_model(db, &ctx, row).await
}

async fn to_model(db: &PgPool, ctx: &OrgCtx, row: ProjectRow) -> Result<Project, AppError> {
    let fields = db::projects::fetch_fields(db, ctx.org_id(), row.id).await?;
    let agent = row.agent();
    let llm_estimate =
        super::model_providers::llm_cost_estimate(db, ctx.org_id(), row.id, &agent.model_route)
            .await?;
    Ok(Project {
        id: row.id,
        org_id: row.org_id,
        agent,
        llm_estimate,
        org_slug: row.org_slug,
        name: row.name,
        description: row.description,
        production_version: row.production_version,
        latest_version: row.latest_version,
        fields,
        created_at: row.created_at,
        updated_at: row.updated_at,
        role: ctx.role(),
    })
}

/// The organization's projects, a page at a time.
pub async fn list(
    db: &PgPool,
    ctx: &OrgCtx,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<ProjectSummary>, AppError> {
    require(ctx, Permission::ViewProjects)?;
    let after = cursor.map(paging::parse_time_cursor).transpose()?;
    let items = db::projects::fetch_page(db, ctx.org_id(), after, limit + 1).await?;
    Ok(paging::page(items, limit, |p| {
        paging::time_cursor(p.updated_at, p.id)
    }))
}

/// Free text for `field`: at most `max` characters and no NUL (Postgres
/// text can't hold one). `trim` for one-line values.
fn parse_text(raw: &str, field: &str, max: usize, trim: bool) -> Result<String, AppError> {
    let text = if trim { raw.trim() } else { raw };
    let n = text.chars().count();
    if n > max {
        return Err(AppError::field(
            field,
            format!("Use at most {max} characters (this has {n})."),
        ));
    }
    if text.contains('\0') {
        return Err(AppError::field(field, "Remove the NUL character."));
    }
    Ok(text.to_string())
}

fn parse_description(raw: &str) -> Result<String, AppError> {
    parse_text(raw, "description", MAX_DESCRIPTION, true)
}

fn parse_instructions(raw: &str) -> Result<String, AppError> {
    // Browsers send CRLF from text areas; store one kind of line break so
    // diffs compare lines, not line endings.
    Ok(parse_text(raw, "instructions", MAX_INSTRUCTIONS, false)?.replace("\r\n", "\n"))
}

pub(super) fn parse_note(raw: &str) -> Result<String, AppError> {
    parse_text(raw, "note", MAX_NOTE, true)
}

fn name_taken() -> AppError {
    AppError::AlreadyExists(crate::error::FieldError::new(
        "name",
        "A project with this name already exists in this organization.",
    ))
}

/// Creates a project under the organization's project limit.
pub async fn create(
    db: &PgPool,
    ctx: &OrgCtx,
    name: &str,
    description: &str,
    instructions: &str,
) -> Result<Project, AppError> {
    require(ctx, Permission::CreateProject)?;
    let name = parse_name(name, "name");
    let description = parse_description(description);
    let instructions = parse_instructions(instructions);
    collect_fields([
        name.as_ref().map(|_| ()).map_err(Clone::clone),
        description.as_ref().map(|_| ()).map_err(Clone::clone),
        instructions.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    let (name, description, instructions) = (name?, description?, instructions?);
    let author = ctx.actor_name(db).await?.to_string();

    let mut tx = db.begin().await?;
    // Lock the organization row so two creations can't both slip under the
    // project limit.
    let limit = db::orgs::max_projects_locked(&mut tx, ctx.org_id()).await?;
    if db::projects::count_for_org(&mut *tx, ctx.org_id()).await? >= limit as i64 {
        return Err(AppError::QuotaExceeded(format!(
            "This organization has reached its limit of {limit} projects. Delete one, or ask an owner to raise the limit."
        )));
    }
    let id = match db::projects::insert(
        &mut *tx,
        ctx.org_id(),
        &name,
        &description,
        ctx.actor().user_id(),
    )
    .await
    {
        Ok(id) => id,
        Err(e) if db::unique_violation(&e).as_deref() == Some("projects_org_name_key") => {
            return Err(name_taken())
        }
        Err(e) => return Err(e.into()),
    };
    let (fields, agent) = super::versions::current_config(&mut tx, ctx.org_id(), id).await?;
    db::projects::insert_version(
        &mut *tx,
        ctx.org_id(),
        id,
        &db::projects::NewVersion {
            instructions: &instructions,
            note: "First version",
            fields: &fields,
            agent: &agent,
            parts: &["instructions", "fields", "agent"],
            author_id: ctx.actor().user_id(),
            author_name: &author,
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        ctx,
        Change::new("project.create", "project", id)
            .after(json!({"name": name, "description": description})),
    )
    .await?;
    tx.commit().await?;
    let row = db::projects::fetch_one(db, ctx.org_id(), id)
        .await?
        .ok_or_else(not_found)?;
    to_model(db, ctx, row).await
}

/// Renames and/or re-describes; `None` keeps the current value.
pub async fn update(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Project, AppError> {
    let (ctx, row) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    let name = name.map(|n| parse_name(n, "name")).transpose();
    let description = description.map(parse_description).transpose();
    collect_fields([
        name.as_ref().map(|_| ()).map_err(Clone::clone),
        description.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    let name = name?.unwrap_or(row.name.clone());
    let description = description?.unwrap_or(row.description.clone());
    let mut tx = db.begin().await?;
    match db::projects::update_details(&mut *tx, ctx.org_id(), project_id, &name, &description)
        .await
    {
        Ok(()) => {}
        Err(e) if db::unique_violation(&e).as_deref() == Some("projects_org_name_key") => {
            return Err(name_taken())
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("project.update", "project", project_id)
            .before(json!({"name": row.name, "description": row.description}))
            .after(json!({"name": name, "description": description})),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, project_id).await
}

/// Deletes the project with its batches and rows. When `confirm_name` is
/// given (the UI always gives it) it must equal the project's name.
pub async fn delete(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    confirm_name: Option<&str>,
) -> Result<(), AppError> {
    let (ctx, row) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::DeleteProject)?;
    if let Some(confirm) = confirm_name {
        if confirm.trim() != row.name {
            return Err(AppError::field(
                "confirm",
                format!("Type the project's name, {:?}, to confirm.", row.name),
            ));
        }
    }
    let mut tx = db.begin().await?;
    db::projects::delete(&mut *tx, ctx.org_id(), project_id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("project.delete", "project", project_id)
            .before(json!({"name": row.name, "description": row.description})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

// --- instructions -----------------------------------------------------------

/// Saves the instructions as a new version (old versions never change).
pub async fn save_instructions(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    instructions: &str,
    note: &str,
    make_production: bool,
) -> Result<InstructionVersion, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    let text = parse_instructions(instructions);
    let note = parse_note(note);
    collect_fields([
        text.as_ref().map(|_| ()).map_err(Clone::clone),
        note.as_ref().map(|_| ()).map_err(Clone::clone),
    ])?;
    let (text, note) = (text?, note?);
    let author = ctx.actor_name(db).await?.to_string();

    let mut tx = db.begin().await?;
    if !db::projects::lock(&mut tx, ctx.org_id(), project_id).await? {
        return Err(not_found());
    }
    if let Some(latest) =
        db::projects::fetch_version(&mut *tx, ctx.org_id(), project_id, None).await?
    {
        if latest.instructions == text {
            if make_production && !latest.is_production {
                db::projects::set_production(&mut *tx, ctx.org_id(), project_id, latest.version)
                    .await?;
                audit::record(
                    &mut *tx,
                    &ctx,
                    Change::new("project.set_production", "project", project_id)
                        .after(json!({"production_version": latest.version})),
                )
                .await?;
                tx.commit().await?;
                return version(db, actor, project_id, Some(latest.version)).await;
            }
            return Err(AppError::field(
                "instructions",
                format!(
                    "Nothing changed since version {}; edit the instructions before saving.",
                    latest.version
                ),
            ));
        }
    }
    // The text is new; the rules and agent settings are the latest
    // version's (they always equal the project's current ones).
    let (fields, agent) =
        super::versions::current_config(&mut tx, ctx.org_id(), project_id).await?;
    let v = db::projects::insert_version(
        &mut *tx,
        ctx.org_id(),
        project_id,
        &db::projects::NewVersion {
            instructions: &text,
            note: &note,
            fields: &fields,
            agent: &agent,
            parts: &["instructions"],
            author_id: ctx.actor().user_id(),
            author_name: &author,
        },
    )
    .await?;
    if make_production {
        db::projects::set_production(&mut *tx, ctx.org_id(), project_id, v).await?;
    }
    db::projects::touch(&mut *tx, ctx.org_id(), project_id).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("instructions.save", "project", project_id).after(json!({
            "version": v, "note": note, "production": make_production,
            "characters": text.chars().count(),
        })),
    )
    .await?;
    tx.commit().await?;
    version(db, actor, project_id, Some(v)).await
}

/// One version, or the latest when `number` is `None`.
pub async fn version(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    number: Option<i32>,
) -> Result<InstructionVersion, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    db::projects::fetch_version(db, ctx.org_id(), project_id, number)
        .await?
        .ok_or_else(|| AppError::NotFound("Instruction version".into()))
}

/// A project's instruction versions, newest first.
pub async fn versions(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<VersionSummary>, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    let before = cursor.map(paging::parse_number_cursor).transpose()?;
    let items =
        db::projects::fetch_versions(db, ctx.org_id(), project_id, before, limit + 1).await?;
    Ok(paging::page(items, limit, |v| v.version.to_string()))
}

/// Makes an existing version the one executions use by default.
pub async fn set_production(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    number: i32,
) -> Result<InstructionVersion, AppError> {
    let (ctx, row) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    if db::projects::fetch_version(db, ctx.org_id(), project_id, Some(number))
        .await?
        .is_none()
    {
        return Err(AppError::field(
            "version",
            format!("This project has no version {number}."),
        ));
    }
    let mut tx = db.begin().await?;
    db::projects::set_production(&mut *tx, ctx.org_id(), project_id, number).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("project.set_production", "project", project_id)
            .before(json!({"production_version": row.production_version}))
            .after(json!({"production_version": number})),
    )
    .await?;
    tx.commit().await?;
    version(db, actor, project_id, Some(number)).await
}

/// Two versions compared in all three parts: instructions, the fields'
/// rules and descriptions, and the agent settings.
pub async fn version_diff(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    a: i32,
    b: i32,
) -> Result<crate::model::VersionDiff, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    let va = version(db, actor, project_id, Some(a)).await?;
    let vb = version(db, actor, project_id, Some(b)).await?;
    super::versions::diff(db, ctx.org_id(), &va, &vb).await
}

/// Two instruction versions compared line by line.
pub async fn diff(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    old: i32,
    new: i32,
) -> Result<InstructionDiff, AppError> {
    let a = version(db, actor, project_id, Some(old)).await?;
    let b = version(db, actor, project_id, Some(new)).await?;
    Ok(diff_texts(old, &a.instructions, new, &b.instructions))
}

/// A side-by-side line diff: unchanged lines, removed and added ones, and
/// replaced lines paired up as "changed".
pub fn diff_texts(old_version: i32, old: &str, new_version: i32, new: &str) -> InstructionDiff {
    use similar::{capture_diff_slices, Algorithm, DiffTag};
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut lines = Vec::new();
    let (mut added, mut removed) = (0, 0);
    let line = |n: usize, text: &str| Some((n as u32 + 1, text.to_string()));
    for op in capture_diff_slices(Algorithm::Myers, &old_lines, &new_lines) {
        let (tag, o, n) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => {
                for (i, j) in o.zip(n) {
                    lines.push(DiffLine {
                        kind: DiffKind::Same,
                        old: line(i, old_lines[i]),
                        new: line(j, new_lines[j]),
                    });
                }
            }
            DiffTag::Delete | DiffTag::Insert | DiffTag::Replace => {
                removed += o.len() as u32;
                added += n.len() as u32;
                let (o, n): (Vec<usize>, Vec<usize>) = (o.collect(), n.collect());
                for k in 0..o.len().max(n.len()) {
                    let (left, right) = (o.get(k), n.get(k));
                    lines.push(DiffLine {
                        kind: match (left, right) {
                            (Some(_), Some(_)) => DiffKind::Changed,
                            (Some(_), None) => DiffKind::Removed,
                            _ => DiffKind::Added,
                        },
                        old: left.and_then(|&i| line(i, old_lines[i])),
                        new: right.and_then(|&j| line(j, new_lines[j])),
                    });
                }
            }
        }
    }
    InstructionDiff {
        old_version,
        new_version,
        added,
        removed,
        lines,
    }
}

// --- agent settings ---------------------------------------------------------

/// A price typed as a decimal ("0.0025") in millionths, at most 1000.
pub fn parse_price(raw: &str) -> Result<i64, AppError> {
    super::decimal_micros(raw)
        .filter(|m| *m <= 1_000_000_000)
        .ok_or_else(|| {
            AppError::field(
                "price_per_job",
                "Enter a price like 0.002: at most 6 decimals, from 0 to 1000.",
            )
        })
}

/// Whether `selector` is CSS a page can be searched with.
fn check_selector(selector: &str) -> Result<(), String> {
    if selector.chars().count() > 500 {
        return Err("Use a selector of at most 500 characters.".into());
    }
    scraper::Selector::parse(selector)
        .map(|_| ())
        .map_err(|e| format!("{selector:?} is not a CSS selector: {e}"))
}

/// Checks the browser steps; a fault is named by its place, e.g.
/// `steps[2].selector`.
fn check_steps(steps: &[BrowserStep]) -> Result<(), AppError> {
    if steps.len() > BrowserStep::MAX {
        return Err(AppError::field(
            "steps",
            format!("Use at most {} steps.", BrowserStep::MAX),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let at = |part: &str| format!("steps[{i}].{part}");
        let needs_selector = matches!(step.action, StepAction::Click | StepAction::Fill);
        match (needs_selector, step.selector.as_deref().map(str::trim)) {
            (true, None | Some("")) => {
                return Err(AppError::field(
                    &at("selector"),
                    format!(
                        "A {} step needs the CSS selector of its element.",
                        step.action
                    ),
                ))
            }
            (_, Some(sel)) if !sel.is_empty() => {
                check_selector(sel).map_err(|why| AppError::field(&at("selector"), why))?
            }
            _ => {}
        }
        match step.action {
            StepAction::Fill if step.value.is_none() => {
                return Err(AppError::field(
                    &at("value"),
                    "A fill step needs the text to type.",
                ))
            }
            StepAction::Wait => match step.ms {
                Some(ms) if (1..=BrowserStep::MAX_WAIT_MS).contains(&ms) => {}
                _ => {
                    return Err(AppError::field(
                        &at("ms"),
                        format!(
                            "A wait step waits 1 to {} milliseconds.",
                            BrowserStep::MAX_WAIT_MS
                        ),
                    ))
                }
            },
            StepAction::Scroll => match step.times {
                None => {}
                Some(n) if (1..=BrowserStep::MAX_SCROLLS).contains(&n) => {}
                Some(_) => {
                    return Err(AppError::field(
                        &at("times"),
                        format!("Scroll 1 to {} times.", BrowserStep::MAX_SCROLLS),
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// Most entries of a model route.
pub const MAX_ROUTE: usize = 5;

/// A model route: at most [`MAX_ROUTE`] entries, each a provider of the
/// organization and one of the models it lists, none twice; the llm
/// extractor needs at least one.
pub(crate) async fn check_route(
    db: &PgPool,
    org_id: Uuid,
    settings: &AgentSettings,
) -> Result<Result<(), AppError>, AppError> {
    let route = &settings.model_route;
    let bad = |m: String| Ok(Err(AppError::field("model_route", m)));
    if route.is_empty() {
        if settings.extractor == crate::model::Extractor::Llm {
            return bad("The llm extractor needs a model: choose a provider and one of its models (admins add providers under Models).".into());
        }
        return Ok(Ok(()));
    }
    if route.len() > MAX_ROUTE {
        return bad(format!("A route has at most {MAX_ROUTE} entries."));
    }
    let ids: Vec<Uuid> = route.iter().map(|r| r.provider).collect();
    let providers = db::model_providers::fetch_many(db, org_id, &ids).await?;
    for (i, entry) in route.iter().enumerate() {
        let n = i + 1;
        let Some(p) = providers.iter().find(|p| p.id == entry.provider) else {
            return bad(format!(
                "Entry {n} names a provider this organization does not have."
            ));
        };
        if !p.models.0.iter().any(|m| m.name == entry.model) {
            return bad(format!(
                "Entry {n}: {} offers no model named {:?} (it lists {}).",
                p.name,
                entry.model,
                p.models
                    .0
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if route[..i].contains(entry) {
            return bad(format!("Entry {n} repeats an earlier entry."));
        }
    }
    Ok(Ok(()))
}

/// Changes a project's agent settings (checked field by field).
pub async fn update_agent(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    settings: AgentSettings,
    note: Option<&str>,
) -> Result<Project, AppError> {
    let (ctx, row) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    let remote_url = match (settings.kind, settings.remote_url.as_deref().map(str::trim)) {
        (AgentKind::Remote, None | Some("")) => Err(AppError::field(
            "remote_url",
            "The remote agent needs the address of its service.",
        )),
        (_, Some(u)) if !u.is_empty() => match url::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(Some(u.to_string())),
            _ => Err(AppError::field(
                "remote_url",
                "Enter an http:// or https:// address.",
            )),
        },
        _ => Ok(None),
    };
    let timeout = if (1..=600).contains(&settings.timeout_secs) {
        Ok(())
    } else {
        Err(AppError::field(
            "timeout_secs",
            "Use a timeout from 1 to 600 seconds.",
        ))
    };
    let retries = if (0..=10).contains(&settings.max_retries) {
        Ok(())
    } else {
        Err(AppError::field("max_retries", "Use 0 to 10 retries."))
    };
    let price = if (0..=1_000_000_000).contains(&settings.price_per_job_micros) {
        Ok(())
    } else {
        Err(AppError::field(
            "price_per_job",
            "Use a price from 0 to 1000 per job.",
        ))
    };
    let kind = if settings.kind == AgentKind::Snapshot {
        Err(AppError::field(
            "kind",
            "snapshot is chosen per run (re-extract from a run's pages), not as a project's agent.",
        ))
    } else {
        Ok(())
    };
    let wait_for = match settings.wait_for.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(sel) => check_selector(sel)
            .map(|()| Some(sel.to_string()))
            .map_err(|why| AppError::field("wait_for", why)),
    };
    let steps = check_steps(&settings.steps);
    let route = check_route(db, ctx.org_id(), &settings).await?;
    let (low, high) = crate::model::PAGE_TOKEN_BUDGET_RANGE;
    let budget = if (low..=high).contains(&settings.page_token_budget) {
        Ok(())
    } else {
        Err(AppError::field(
            "page_token_budget",
            format!("Use a page token budget from {low} to {high}."),
        ))
    };
    collect_fields([
        kind,
        remote_url.as_ref().map(|_| ()).map_err(Clone::clone),
        timeout,
        retries,
        price,
        wait_for.as_ref().map(|_| ()).map_err(Clone::clone),
        steps,
        route,
        budget,
    ])?;
    let settings = AgentSettings {
        remote_url: remote_url?,
        wait_for: wait_for?,
        ..settings
    };
    let author = ctx.actor_name(db).await?.to_string();
    let mut tx = db.begin().await?;
    db::projects::update_agent(&mut *tx, ctx.org_id(), project_id, &settings).await?;
    let version =
        super::versions::after_settings_change(&mut tx, &ctx, project_id, &author, note).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("project.update_agent", "project", project_id)
            .before(json!(row.agent()))
            .after(with_version(json!(settings), version)),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, project_id).await
}

/// An audit entry's `after` with the version the change saved, if any.
fn with_version(mut after: serde_json::Value, version: Option<i32>) -> serde_json::Value {
    if let (Some(v), Some(map)) = (version, after.as_object_mut()) {
        map.insert("version".into(), json!(v));
    }
    after
}

// --- output fields ----------------------------------------------------------

/// A field name: 1–64 characters of letters, digits, `_` and `-`, as it
/// appears after `gt_` in a CSV header.
pub fn parse_field_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::field("name", "Use 1 to 64 characters."));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == ' ')
    {
        return Err(AppError::field(
            "name",
            "Use letters, digits, spaces, _ and - only.",
        ));
    }
    Ok(name.to_string())
}

/// Checks a rule and options a user wrote, with a field error naming the
/// part that is wrong.
pub fn check_field(field: &OutputField) -> Result<(), AppError> {
    let n = field.description.chars().count();
    if n > 1000 || field.description.contains('\0') {
        return Err(AppError::field(
            "description",
            format!("Use at most 1,000 characters and no NUL character (this has {n})."),
        ));
    }
    if let Some(sep) = &field.multi_value_separator {
        let n = sep.chars().count();
        if n > 5 || sep.contains('\0') || sep.contains('"') || sep.contains(['\n', '\r']) {
            return Err(AppError::field(
                "multi_value_separator",
                "Use 1 to 5 characters, without quotes or line breaks, e.g. |.",
            ));
        }
    }
    let parts: Vec<(&str, &str)> = match &field.rule {
        ExtractionRule::Auto | ExtractionRule::Article => vec![],
        ExtractionRule::Css {
            selector,
            attribute,
        } => vec![
            ("selector", selector.as_str()),
            ("attribute", attribute.as_deref().unwrap_or("")),
        ],
        ExtractionRule::JsonLd { path } => vec![("path", path.as_str())],
        ExtractionRule::Meta { name } => vec![("meta_name", name.as_str())],
        ExtractionRule::Regex { pattern } => vec![("pattern", pattern.as_str())],
    };
    if let Some((part, _)) = parts
        .iter()
        .find(|(_, v)| v.contains('\0') || v.len() > 1000)
    {
        return Err(AppError::field(
            part,
            "Use at most 1,000 characters and no NUL character.",
        ));
    }
    let rule = match &field.rule {
        ExtractionRule::Auto | ExtractionRule::Article => Ok(()),
        ExtractionRule::Css {
            selector,
            attribute,
        } => {
            if selector.trim().is_empty() {
                Err(AppError::field("selector", "Enter a CSS selector."))
            } else if scraper::Selector::parse(selector).is_err() {
                Err(AppError::field(
                    "selector",
                    format!("{selector:?} is not a valid CSS selector."),
                ))
            } else if attribute
                .as_deref()
                .is_some_and(|a| a.contains(char::is_whitespace))
            {
                Err(AppError::field(
                    "attribute",
                    "An attribute name has no spaces.",
                ))
            } else {
                Ok(())
            }
        }
        ExtractionRule::JsonLd { path } => {
            if path.trim().is_empty() || path.split('.').any(|p| p.trim().is_empty()) {
                Err(AppError::field(
                    "path",
                    "Enter a dotted path such as offers.price.",
                ))
            } else {
                Ok(())
            }
        }
        ExtractionRule::Meta { name } => {
            if name.trim().is_empty() {
                Err(AppError::field(
                    "meta_name",
                    "Enter the meta tag's name or property, e.g. og:title.",
                ))
            } else {
                Ok(())
            }
        }
        ExtractionRule::Regex { pattern } => match regex::Regex::new(pattern) {
            _ if pattern.is_empty() => Err(AppError::field("pattern", "Enter a pattern.")),
            Ok(_) => Ok(()),
            Err(e) => Err(AppError::field(
                "pattern",
                format!("Not a valid regular expression: {e}"),
            )),
        },
    };
    let o = &field.comparator_options;
    let non_negative = |v: Option<f64>, name: &str| match v {
        Some(x) if !(x.is_finite() && x >= 0.0) => {
            Err(AppError::field(name, "Use a number of 0 or more."))
        }
        _ => Ok(()),
    };
    let threshold = match o.threshold {
        Some(t) if !(0.0..=1.0).contains(&t) => {
            Err(AppError::field("threshold", "Use a threshold from 0 to 1."))
        }
        _ => Ok(()),
    };
    // A locale is only useful when it names a region (`en-CA`): that is
    // what tells which dollar `$` is.
    let locale = match o.locale.as_deref().map(str::trim) {
        Some(l) if !l.is_empty() && crate::server::values::currency::region(l).is_none() => {
            Err(AppError::field(
                "locale",
                "Use a locale with a region, such as en-CA or es-CL.",
            ))
        }
        _ => Ok(()),
    };
    collect_fields([
        rule,
        non_negative(o.tolerance, "tolerance"),
        non_negative(o.relative_tolerance, "relative_tolerance"),
        threshold,
        locale,
    ])
}

/// Adds a field by hand; its name is checked here.
pub async fn add_field(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    field: OutputField,
) -> Result<Project, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    let field = OutputField {
        name: parse_field_name(&field.name)?,
        source: "manual".into(),
        ..field
    };
    check_field(&field)?;
    let count = db::projects::fetch_fields(db, ctx.org_id(), project_id)
        .await?
        .len() as i64;
    if count >= MAX_FIELDS {
        return Err(AppError::field(
            "name",
            format!("A project has at most {MAX_FIELDS} output fields."),
        ));
    }
    let mut tx = db.begin().await?;
    if !db::projects::insert_field(&mut *tx, ctx.org_id(), project_id, &field).await? {
        return Err(AppError::AlreadyExists(crate::error::FieldError::new(
            "name",
            format!("This project already has a field named {:?}.", field.name),
        )));
    }
    let author = ctx.actor_name(db).await?.to_string();
    let version =
        super::versions::after_settings_change(&mut tx, &ctx, project_id, &author, None).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("field.create", "project", project_id)
            .after(with_version(json!(field), version)),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, project_id).await
}

/// Changes an output field; a new comparator (or a new meaning of an empty
/// expected value) judges the project's finished jobs again.
pub async fn update_field(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    field: OutputField,
    note: Option<&str>,
) -> Result<Project, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    if field.name.contains('\0') {
        return Err(AppError::NotFound("Field".into()));
    }
    check_field(&field)?;
    let author = ctx.actor_name(db).await?.to_string();
    // The field and, when its comparator changed, every run's verdicts
    // change together (F10).
    let mut tx = db.begin().await?;
    let before = db::projects::fetch_fields(&mut *tx, ctx.org_id(), project_id)
        .await?
        .into_iter()
        .find(|f| f.name == field.name);
    if !db::projects::update_field(&mut *tx, ctx.org_id(), project_id, &field).await? {
        return Err(AppError::NotFound("Field".into()));
    }
    if before.as_ref().is_some_and(|b| {
        b.comparator != field.comparator
            || b.comparator_options != field.comparator_options
            || b.empty_means != field.empty_means
    }) {
        super::ground_truth::rejudge_comparator(&mut tx, ctx.org_id(), project_id, &field).await?;
    }
    let version =
        super::versions::after_settings_change(&mut tx, &ctx, project_id, &author, note).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Change::new("field.update", "project", project_id)
            .before(json!(before))
            .after(with_version(json!(field), version)),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, project_id).await
}

/// Deletes an output field.
pub async fn delete_field(
    db: &PgPool,
    actor: &Actor,
    project_id: Uuid,
    name: &str,
) -> Result<Project, AppError> {
    let (ctx, _) = project_ctx(db, actor, project_id).await?;
    require(&ctx, Permission::EditProject)?;
    // No field can have a NUL in its name (and Postgres text can't hold one).
    if name.contains('\0') {
        return Err(AppError::NotFound("Field".into()));
    }
    let mut tx = db.begin().await?;
    if !db::projects::delete_field(&mut *tx, ctx.org_id(), project_id, name).await? {
        return Err(AppError::NotFound("Field".into()));
    }
    let author = ctx.actor_name(db).await?.to_string();
    let version =
        super::versions::after_settings_change(&mut tx, &ctx, project_id, &author, None).await?;
    let change = Change::new("field.delete", "project", project_id).before(json!({"name": name}));
    let change = match version {
        Some(v) => change.after(json!({"version": v})),
        None => change,
    };
    audit::record(&mut *tx, &ctx, change).await?;
    tx.commit().await?;
    get(db, actor, project_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Comparator, ComparatorOptions, ValueType};

    #[test]
    fn prices() {
        assert_eq!(parse_price("0.0025").unwrap(), 2_500);
        assert_eq!(parse_price("$1.5").unwrap(), 1_500_000);
        assert_eq!(parse_price("0").unwrap(), 0);
        assert_eq!(parse_price(".5").unwrap(), 500_000);
        for bad in ["", ".", "-1", "1.1234567", "abc", "10000", "1,5"] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn diffs_pair_replaced_lines() {
        let d = diff_texts(1, "a\nb\nc\n", 2, "a\nB\nc\nd\n");
        let kinds: Vec<DiffKind> = d.lines.iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            [
                DiffKind::Same,
                DiffKind::Changed,
                DiffKind::Same,
                DiffKind::Added
            ]
        );
        assert_eq!((d.added, d.removed), (2, 1));
        assert_eq!(d.lines[3].new, Some((4, "d".into())));
        assert_eq!(d.lines[3].old, None);
    }

    #[test]
    fn rules_are_checked() {
        let field = |rule| OutputField {
            name: "price".into(),
            field_type: ValueType::Number,
            comparator: Comparator::Number,
            comparator_options: ComparatorOptions::default(),
            rule,
            source: "manual".into(),
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
        };
        assert!(check_field(&field(ExtractionRule::Css {
            selector: ".price".into(),
            attribute: None
        }))
        .is_ok());
        let bad = check_field(&field(ExtractionRule::Css {
            selector: "..x[".into(),
            attribute: None,
        }));
        assert_eq!(bad.unwrap_err().field_errors()[0].field, "selector");
        let bad = check_field(&field(ExtractionRule::Regex {
            pattern: "(".into(),
        }));
        assert_eq!(bad.unwrap_err().field_errors()[0].field, "pattern");
        assert!(check_field(&field(ExtractionRule::JsonLd {
            path: "offers..price".into()
        }))
        .is_err());
    }
}
