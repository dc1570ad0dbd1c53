//! Project versions as whole run configurations: the instructions, the
//! fields' extraction rules and descriptions, and the agent settings that
//! shape output are saved together as one numbered version. Saving
//! instructions makes a version (`projects::save_instructions`); so does
//! any change to a field's rule or description or to those agent settings
//! (`after_settings_change`, called inside the changing transaction).
//! Comparators and "expected empty" are judging settings and stay current.

use std::collections::BTreeSet;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{
    field_run_configs, FieldConfigChange, FieldRunConfigs, InstructionVersion, SettingChange,
    VersionAgent, VersionDiff,
};
use crate::server::auth::rbac::OrgCtx;
use crate::server::db;

/// The project's run configuration as it stands now (read in `conn`, so a
/// transaction sees its own change).
pub async fn current_config(
    conn: &mut PgConnection,
    org_id: Uuid,
    project_id: Uuid,
) -> Result<(FieldRunConfigs, VersionAgent), AppError> {
    let row = db::projects::fetch_one(&mut *conn, org_id, project_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Project".into()))?;
    let fields = db::projects::fetch_fields(&mut *conn, org_id, project_id).await?;
    Ok((field_run_configs(&fields), VersionAgent::of(&row.agent())))
}

/// After a change to a project's fields or agent settings inside `tx`:
/// when what a run extracts changed, saves a new version with the latest
/// version's instructions and the configuration as it now stands, noted
/// with `note` or with what changed. Production follows when it was the
/// latest version (a project running its latest keeps doing so); a
/// production pinned to an older version stays there. Returns the new
/// version, or None when nothing a run uses changed (a comparator, a price);
/// the caller's audit entry for the change names it.
pub async fn after_settings_change(
    tx: &mut PgConnection,
    ctx: &OrgCtx,
    project_id: Uuid,
    author: &str,
    note: Option<&str>,
) -> Result<Option<i32>, AppError> {
    let Some(latest) =
        db::projects::fetch_version(&mut *tx, ctx.org_id(), project_id, None).await?
    else {
        return Ok(None);
    };
    let (fields, agent) = current_config(tx, ctx.org_id(), project_id).await?;
    let field_changes = field_changes(&latest.fields, &fields);
    let agent_changes = agent_changes(&latest.agent, &agent, |id| id.to_string());
    let mut parts = Vec::new();
    if !field_changes.is_empty() {
        parts.push("fields");
    }
    if !agent_changes.is_empty() {
        parts.push("agent");
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let described = describe(&field_changes, &agent_changes);
    // A note the author gave is checked like any version note (an error
    // here rolls the whole change back).
    let note = match note.map(super::projects::parse_note).transpose()? {
        Some(n) if !n.is_empty() => n,
        _ => described,
    };
    let v = db::projects::insert_version(
        &mut *tx,
        ctx.org_id(),
        project_id,
        &db::projects::NewVersion {
            instructions: &latest.instructions,
            note: &note,
            fields: &fields,
            agent: &agent,
            parts: &parts,
            author_id: ctx.actor().user_id(),
            author_name: author,
        },
    )
    .await?;
    if latest.is_production {
        db::projects::set_production(&mut *tx, ctx.org_id(), project_id, v).await?;
    }
    Ok(Some(v))
}

/// Rewrites the latest version's configuration to the project's current
/// one, for set-ups that configure a new project in several steps before
/// anyone can run it (the demo project).
pub async fn restate_latest(db: &PgPool, org_id: Uuid, project_id: Uuid) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    let (fields, agent) = current_config(&mut tx, org_id, project_id).await?;
    db::projects::restate_latest_version(&mut *tx, org_id, project_id, &fields, &agent).await?;
    tx.commit().await?;
    Ok(())
}

/// Fields whose rule or description differ between two versions.
pub fn field_changes(a: &FieldRunConfigs, b: &FieldRunConfigs) -> Vec<FieldConfigChange> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let before = a.get(name).cloned().unwrap_or_default();
            let after = b.get(name).cloned().unwrap_or_default();
            (before != after).then(|| FieldConfigChange {
                field: name.clone(),
                before,
                after,
            })
        })
        .collect()
}

/// Agent settings that differ between two versions, providers named by
/// `provider_name`.
pub fn agent_changes(
    a: &VersionAgent,
    b: &VersionAgent,
    provider_name: impl Fn(Uuid) -> String,
) -> Vec<SettingChange> {
    a.settings(&provider_name)
        .into_iter()
        .zip(b.settings(&provider_name))
        .filter(|((_, x), (_, y))| x != y)
        .map(|((setting, before), (_, after))| SettingChange {
            setting: setting.to_string(),
            before,
            after,
        })
        .collect()
}

/// "Field price: rule. Agent: extractor, model_route." — what a version
/// changed, as its note when the author gave none.
fn describe(fields: &[FieldConfigChange], agent: &[SettingChange]) -> String {
    let mut out = Vec::new();
    if !fields.is_empty() {
        let each: Vec<String> = fields
            .iter()
            .map(|c| {
                let mut what = Vec::new();
                if c.before.rule != c.after.rule {
                    what.push("rule");
                }
                if c.before.description != c.after.description {
                    what.push("description");
                }
                format!("{} ({})", c.field, what.join(", "))
            })
            .collect();
        out.push(format!("Fields: {}.", each.join(", ")));
    }
    if !agent.is_empty() {
        let names: Vec<&str> = agent.iter().map(|c| c.setting.as_str()).collect();
        out.push(format!("Agent: {}.", names.join(", ")));
    }
    out.join(" ")
}

/// Two versions compared in all three parts: instructions line by line,
/// fields' rules and descriptions, agent settings (providers by name).
pub async fn diff(
    db: &PgPool,
    org_id: Uuid,
    a: &InstructionVersion,
    b: &InstructionVersion,
) -> Result<VersionDiff, AppError> {
    let ids: Vec<Uuid> = a
        .agent
        .model_route
        .iter()
        .chain(&b.agent.model_route)
        .map(|r| r.provider)
        .collect();
    let providers = db::model_providers::fetch_many(db, org_id, &ids).await?;
    let name = |id: Uuid| {
        providers
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "Deleted provider".into())
    };
    Ok(VersionDiff {
        a: a.version,
        b: b.version,
        instructions: super::projects::diff_texts(
            a.version,
            &a.instructions,
            b.version,
            &b.instructions,
        ),
        fields: field_changes(&a.fields, &b.fields),
        agent: agent_changes(&a.agent, &b.agent, name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExtractionRule, FieldRunConfig};

    #[test]
    fn a_field_at_its_default_is_the_same_as_one_not_listed() {
        let mut a = FieldRunConfigs::new();
        let b = FieldRunConfigs::new();
        a.insert("title".into(), FieldRunConfig::default());
        assert!(field_changes(&a, &b).is_empty());
        a.insert(
            "price".into(),
            FieldRunConfig {
                rule: ExtractionRule::Css {
                    selector: ".price".into(),
                    attribute: None,
                },
                description: String::new(),
            },
        );
        let changes = field_changes(&b, &a);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "price");
        assert_eq!(describe(&changes, &[]), "Fields: price (rule).");
    }
}
