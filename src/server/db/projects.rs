//! projects, instruction_versions, project_fields. Every query names the
//! organization, so an id from another one finds nothing.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::model::{
    AgentKind, AgentSettings, BrowserStep, Comparator, ComparatorOptions, ExtractionRule,
    Extractor, InstructionVersion, OutputField, ProjectSummary, ValueType, VersionSummary,
};

#[derive(sqlx::FromRow)]
pub struct ProjectRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_slug: String,
    pub name: String,
    pub description: String,
    pub production_version: i32,
    pub latest_version: i32,
    pub agent_kind: String,
    pub remote_url: Option<String>,
    pub timeout_secs: i32,
    pub max_retries: i32,
    pub price_per_job_micros: i64,
    pub extractor: Extractor,
    pub wait_for: Option<String>,
    pub steps: Json<Vec<BrowserStep>>,
    pub keep_pages: bool,
    pub model_route: Json<Vec<crate::model::RouteEntry>>,
    pub page_token_budget: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProjectRow {
    pub fn agent(&self) -> AgentSettings {
        AgentSettings {
            kind: AgentKind::parse(&self.agent_kind).unwrap_or(AgentKind::Http),
            remote_url: self.remote_url.clone(),
            timeout_secs: self.timeout_secs,
            max_retries: self.max_retries,
            price_per_job_micros: self.price_per_job_micros,
            extractor: self.extractor,
            wait_for: self.wait_for.clone(),
            steps: self.steps.0.clone(),
            keep_pages: self.keep_pages,
            model_route: self.model_route.0.clone(),
            page_token_budget: self.page_token_budget,
        }
    }
}

/// The organization a project belongs to, to build the caller's context.
pub async fn fetch_org_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select org_id from projects where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Points the project's remote agent at `url`.
pub async fn set_remote_url(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    url: &str,
) -> sqlx::Result<()> {
    sqlx::query("update projects set remote_url = $3 where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .bind(url)
        .execute(db)
        .await?;
    Ok(())
}

/// Sets the project's browser steps.
pub async fn set_steps(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    steps: &[BrowserStep],
) -> sqlx::Result<()> {
    sqlx::query("update projects set steps = $3 where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .bind(Json(steps))
        .execute(db)
        .await?;
    Ok(())
}

/// One project of the organization.
pub async fn fetch_one(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as(
        "select p.id, p.org_id, o.slug as org_slug, p.name, p.description,
                p.production_version,
                -- 0 while a new project's first version is being written.
                coalesce((select max(version) from instruction_versions v
                          where v.project_id = p.id), 0) as latest_version,
                p.agent_kind, p.remote_url, p.timeout_secs, p.max_retries,
                p.price_per_job_micros, p.extractor, p.wait_for, p.steps, p.keep_pages,
                p.model_route, p.page_token_budget,
                p.created_at, p.updated_at
         from projects p join organizations o on o.id = p.org_id
         where p.org_id = $1 and p.id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Locks the project row: instruction saves take it so version numbers are
/// handed out one at a time.
pub async fn lock(conn: &mut PgConnection, org_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("select 1 from projects where org_id = $1 and id = $2 for update")
            .bind(org_id)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    name: String,
    description: String,
    production_version: i32,
    latest_version: i32,
    batch_count: i64,
    row_count: i64,
    updated_at: DateTime<Utc>,
}

/// One page of the organization's projects, most recently changed first,
/// after the keyset cursor `(updated_at, id)`.
pub async fn fetch_page(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<ProjectSummary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "select p.id, p.name, p.description, p.production_version,
                coalesce((select max(version) from instruction_versions v
                          where v.project_id = p.id), 1) as latest_version,
                (select count(*) from batches b where b.project_id = p.id) as batch_count,
                coalesce((select sum(b.row_count) from batches b
                          where b.project_id = p.id), 0)::bigint as row_count,
                p.updated_at
         from projects p
         where p.org_id = $1
           and ($2::timestamptz is null or (p.updated_at, p.id) < ($2, $3))
         order by p.updated_at desc, p.id desc
         limit $4",
    )
    .bind(org_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ProjectSummary {
            id: r.id,
            name: r.name,
            description: r.description,
            production_version: r.production_version,
            latest_version: r.latest_version,
            batch_count: r.batch_count,
            row_count: r.row_count,
            updated_at: r.updated_at,
        })
        .collect())
}

/// How many projects the organization has.
pub async fn count_for_org(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from projects where org_id = $1")
        .bind(org_id)
        .fetch_one(db)
        .await
}

/// Creates a project; returns its id.
pub async fn insert(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    name: &str,
    description: &str,
    created_by: Option<Uuid>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into projects (org_id, name, description, created_by)
         values ($1, $2, $3, $4) returning id",
    )
    .bind(org_id)
    .bind(name)
    .bind(description)
    .bind(created_by)
    .fetch_one(db)
    .await
}

/// Changes a project's name and description.
pub async fn update_details(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    name: &str,
    description: &str,
) -> sqlx::Result<()> {
    sqlx::query("update projects set name = $3, description = $4 where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .bind(name)
        .bind(description)
        .execute(db)
        .await?;
    Ok(())
}

/// Sets a project's model route (the demo loader's).
pub async fn set_model_route(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    route: &[crate::model::RouteEntry],
) -> sqlx::Result<()> {
    sqlx::query("update projects set model_route = $3 where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .bind(Json(route))
        .execute(db)
        .await?;
    Ok(())
}

/// Changes a project's agent settings.
pub async fn update_agent(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    agent: &AgentSettings,
) -> sqlx::Result<()> {
    sqlx::query(
        "update projects set agent_kind = $3, remote_url = $4, timeout_secs = $5,
                max_retries = $6, price_per_job_micros = $7, extractor = $8, wait_for = $9,
                steps = $10, keep_pages = $11, model_route = $12, page_token_budget = $13
         where org_id = $1 and id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(agent.kind.as_str())
    .bind(&agent.remote_url)
    .bind(agent.timeout_secs)
    .bind(agent.max_retries)
    .bind(agent.price_per_job_micros)
    .bind(agent.extractor)
    .bind(&agent.wait_for)
    .bind(Json(&agent.steps))
    .bind(agent.keep_pages)
    .bind(Json(&agent.model_route))
    .bind(agent.page_token_budget)
    .execute(db)
    .await?;
    Ok(())
}

/// Makes an instruction version the one production runs use.
pub async fn set_production(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    id: Uuid,
    version: i32,
) -> sqlx::Result<()> {
    sqlx::query("update projects set production_version = $3 where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .bind(version)
        .execute(db)
        .await?;
    Ok(())
}

/// Marks the project changed (it moves to the top of the list).
pub async fn touch(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update projects set updated_at = now() where org_id = $1 and id = $2")
        .bind(org_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes a project and everything in it; how many were deleted.
pub async fn delete(db: impl PgExecutor<'_>, org_id: Uuid, id: Uuid) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from projects where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

// --- instruction versions ---------------------------------------------------

/// A version's whole run configuration, as saved.
pub struct NewVersion<'a> {
    pub instructions: &'a str,
    pub note: &'a str,
    pub fields: &'a crate::model::FieldRunConfigs,
    pub agent: &'a crate::model::VersionAgent,
    /// What it changed: "instructions", "fields", "agent".
    pub parts: &'a [&'a str],
    pub author_id: Option<Uuid>,
    pub author_name: &'a str,
}

/// Saves a new version; returns its number.
pub async fn insert_version(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    v: &NewVersion<'_>,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "insert into instruction_versions
            (project_id, org_id, version, body, note, author_id, author_name, fields, agent, parts)
         values ($2, $1,
                 coalesce((select max(version) from instruction_versions
                           where project_id = $2), 0) + 1,
                 $3, $4, $5, $6, $7, $8, $9)
         returning version",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(v.instructions)
    .bind(v.note)
    .bind(v.author_id)
    .bind(v.author_name)
    .bind(Json(v.fields))
    .bind(Json(v.agent))
    .bind(v.parts)
    .fetch_one(db)
    .await
}

/// Rewrites the latest version's fields and agent configuration.
pub async fn restate_latest_version(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    fields: &crate::model::FieldRunConfigs,
    agent: &crate::model::VersionAgent,
) -> sqlx::Result<()> {
    sqlx::query(
        "update instruction_versions set fields = $3, agent = $4
         where org_id = $1 and project_id = $2
           and version = (select max(version) from instruction_versions where project_id = $2)",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(Json(fields))
    .bind(Json(agent))
    .execute(db)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    version: i32,
    body: String,
    note: String,
    author_name: String,
    created_at: DateTime<Utc>,
    is_production: bool,
    fields: Json<crate::model::FieldRunConfigs>,
    agent: Json<crate::model::VersionAgent>,
    parts: Vec<String>,
}

/// One version (`None` for the latest).
pub async fn fetch_version(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    version: Option<i32>,
) -> sqlx::Result<Option<InstructionVersion>> {
    // No version: the latest.
    let row: Option<VersionRow> = sqlx::query_as(
        "select v.version, v.body, v.note, v.author_name, v.created_at,
                v.version = p.production_version as is_production, v.fields, v.agent, v.parts
         from instruction_versions v join projects p on p.id = v.project_id
         where v.org_id = $1 and v.project_id = $2
           and ($3::int is null or v.version = $3)
         order by v.version desc limit 1",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(version)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| InstructionVersion {
        version: r.version,
        instructions: r.body,
        note: r.note,
        author_name: r.author_name,
        created_at: r.created_at,
        is_production: r.is_production,
        fields: r.fields.0,
        agent: r.agent.0,
        parts: r.parts,
    }))
}

#[derive(sqlx::FromRow)]
struct VersionSummaryRow {
    version: i32,
    note: String,
    author_name: String,
    created_at: DateTime<Utc>,
    is_production: bool,
    chars: i32,
    lines: i32,
    parts: Vec<String>,
}

/// Versions newest first, before the cursor version.
pub async fn fetch_versions(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    before: Option<i32>,
    limit: i64,
) -> sqlx::Result<Vec<VersionSummary>> {
    let rows: Vec<VersionSummaryRow> = sqlx::query_as(
        "select v.version, v.note, v.author_name, v.created_at,
                v.version = p.production_version as is_production,
                char_length(v.body) as chars,
                -- Lines as an editor counts them: a final newline ends the
                -- last line, it doesn't start another.
                coalesce(array_length(string_to_array(rtrim(v.body, E'\\n'), E'\\n'), 1), 0) as lines,
                v.parts
         from instruction_versions v join projects p on p.id = v.project_id
         where v.org_id = $1 and v.project_id = $2
           and ($3::int is null or v.version < $3)
         order by v.version desc limit $4",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| VersionSummary {
            version: r.version,
            note: r.note,
            author_name: r.author_name,
            created_at: r.created_at,
            is_production: r.is_production,
            chars: r.chars,
            lines: r.lines,
            parts: r.parts,
        })
        .collect())
}

// --- output fields ----------------------------------------------------------

#[derive(sqlx::FromRow)]
struct FieldRow {
    name: String,
    field_type: String,
    comparator: String,
    comparator_options: Json<ComparatorOptions>,
    rule: Json<ExtractionRule>,
    source: String,
    description: String,
    empty_means: String,
    multi_value_separator: Option<String>,
}

/// The project's output fields, in their order.
pub async fn fetch_fields(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
) -> sqlx::Result<Vec<OutputField>> {
    let rows: Vec<FieldRow> = sqlx::query_as(
        "select name, field_type, comparator, comparator_options, rule, source, description,
                empty_means, multi_value_separator
         from project_fields where org_id = $1 and project_id = $2
         order by position, name",
    )
    .bind(org_id)
    .bind(project_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let field_type = ValueType::parse(&r.field_type).unwrap_or(ValueType::Text);
            OutputField {
                name: r.name,
                field_type,
                comparator: Comparator::parse(&r.comparator)
                    .unwrap_or(field_type.default_comparator()),
                comparator_options: r.comparator_options.0,
                rule: r.rule.0,
                source: r.source,
                description: r.description,
                empty_means: crate::model::EmptyMeans::parse(&r.empty_means).unwrap_or_default(),
                multi_value_separator: r.multi_value_separator,
            }
        })
        .collect())
}

/// Adds a field unless the project has one of that name (case aside).
/// Returns whether it was added.
pub async fn insert_field(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    field: &OutputField,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into project_fields
            (project_id, org_id, name, position, field_type, comparator,
             comparator_options, rule, source, description, empty_means, multi_value_separator)
         select $2, $1, $3,
                coalesce((select max(position) from project_fields where project_id = $2), 0) + 1,
                $4, $5, $6, $7, $8, $9, $10, $11
         where not exists (select 1 from project_fields
                           where project_id = $2 and lower(name) = lower($3))",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(&field.name)
    .bind(field.field_type.as_str())
    .bind(field.comparator.as_str())
    .bind(Json(&field.comparator_options))
    .bind(Json(&field.rule))
    .bind(&field.source)
    .bind(&field.description)
    .bind(field.empty_means.as_str())
    .bind(&field.multi_value_separator)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Changes an output field.
pub async fn update_field(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    field: &OutputField,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update project_fields
         set field_type = $4, comparator = $5, comparator_options = $6, rule = $7,
             description = $8, empty_means = $9, multi_value_separator = $10
         where org_id = $1 and project_id = $2 and name = $3",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(&field.name)
    .bind(field.field_type.as_str())
    .bind(field.comparator.as_str())
    .bind(Json(&field.comparator_options))
    .bind(Json(&field.rule))
    .bind(&field.description)
    .bind(field.empty_means.as_str())
    .bind(&field.multi_value_separator)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes an output field; false when there was none.
pub async fn delete_field(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    name: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "delete from project_fields where org_id = $1 and project_id = $2 and name = $3",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(name)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A user's saved results-grid columns for a project: (shown, hidden).
pub async fn fetch_grid_columns(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<(Vec<String>, Vec<String>)>> {
    sqlx::query_as(
        "select shown, hidden from grid_column_choices
         where org_id = $1 and project_id = $2 and user_id = $3",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

pub async fn save_grid_columns(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    project_id: Uuid,
    user_id: Uuid,
    shown: &[String],
    hidden: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into grid_column_choices (user_id, project_id, org_id, shown, hidden)
         values ($3, $2, $1, $4, $5)
         on conflict (user_id, project_id)
         do update set shown = excluded.shown, hidden = excluded.hidden, updated_at = now()",
    )
    .bind(org_id)
    .bind(project_id)
    .bind(user_id)
    .bind(shown)
    .bind(hidden)
    .execute(db)
    .await?;
    Ok(())
}
