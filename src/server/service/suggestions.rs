//! "Suggest better instructions": a run's instructions, its failure
//! patterns and up to 20 failing examples (expected against extracted, with
//! a short excerpt of the page when the run kept it) go to the project's
//! model route; the answer — new instructions and the reasons for each
//! change — comes back as a diff. Nothing is saved: a person edits the text
//! and saves it as a new version. The call is paid for like any model call:
//! it is recorded with the provider's figures and counted in usage.

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use crate::error::AppError;
use crate::model::{FailurePatterns, InstructionSuggestion};
use crate::server::agents::extract::reduce::reduce;
use crate::server::agents::llm::route::{self, Target};
use crate::server::agents::llm::{ChatRequest, Speaker};
use crate::server::agents::Progress;
use crate::server::auth::rbac::{require, Actor, Permission};
use crate::server::db;

/// Failing examples sent at most.
pub const MAX_EXAMPLES: usize = 20;
/// Characters of a page's reduced text sent with its example.
const EXCERPT_CHARS: usize = 600;

/// What the model is asked to do, whatever the project.
const FRAMING: &str = "You improve the instructions a data team gives an extraction agent. \
The agent reads one web page and fills the team's fields; a run was checked against the \
team's expected values. From the failures shown, rewrite the instructions so the agent gets \
those fields right: keep what works, be specific about formats and where values are on the \
page, and do not mention individual example pages. Answer with JSON: \"instructions\" (the \
complete new text) and \"reasons\" (one short sentence per change).";

/// Asks the project's model for better instructions, from run `id`'s
/// failures.
pub async fn suggest(
    db: &PgPool,
    actor: &Actor,
    id: Uuid,
) -> Result<InstructionSuggestion, AppError> {
    let (ctx, e) = super::executions::execution_ctx(db, actor, id).await?;
    // It spends the organization's money on a model: members and up.
    require(&ctx, Permission::EditProject)?;
    let project = db::projects::fetch_one(db, ctx.org_id(), e.project_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Project".into()))?;
    let route = project.model_route.0.clone();
    if route.is_empty() {
        return Err(AppError::Conflict(
            "Suggestions need a model: an admin adds a model provider (Models), then choose a model route in the project's agent settings.".into(),
        ));
    }
    let version =
        db::projects::fetch_version(db, ctx.org_id(), e.project_id, Some(e.instruction_version))
            .await?
            .ok_or_else(|| AppError::NotFound("Instruction version".into()))?;
    let patterns = super::analysis::failure_patterns(db, actor, id).await?;
    let (failures, examples) = failures_text(db, id, &patterns).await?;
    if examples == 0 {
        return Err(AppError::Conflict(
            "This run has no failing fields to learn from: every judged field passed (or nothing was judged yet).".into(),
        ));
    }
    let targets = targets(db, ctx.org_id(), &route).await?;
    let req = ChatRequest {
        system: FRAMING.into(),
        turns: vec![(
            Speaker::User,
            format!(
                "Current instructions (version {}):\n{}\n\n{failures}",
                version.version, version.instructions
            ),
        )],
        schema: json!({
            "type": "object",
            "properties": {
                "instructions": {"type": "string"},
                "reasons": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["instructions", "reasons"],
            "additionalProperties": false,
        }),
        max_output_tokens: 2048,
    };
    let client = crate::server::executor::model_client();
    let served = route::complete(db, &client, &targets, &req, &Progress::default())
        .await
        .map_err(|e| {
            AppError::ModelUnavailable(format!("The model could not answer: {}", e.message))
        })?;
    let who = format!(
        "{} / {}",
        served.target.provider_name, served.target.model.name
    );
    let cost = served
        .target
        .model
        .cost_micros(served.answer.input_tokens, served.answer.output_tokens);
    record_usage(
        db,
        ctx.org_id(),
        &e,
        &served.target.model.name,
        &served,
        cost,
    )
    .await?;
    let (instructions, reasons) = parse_answer(&served.answer.text).ok_or_else(|| {
        AppError::ModelUnavailable(format!(
            "{who} did not answer with new instructions (it said: {}).",
            served.answer.text.chars().take(200).collect::<String>()
        ))
    })?;
    audit::record(
        db,
        &ctx,
        Change::new("execution.suggest_instructions", "execution", id).after(json!({
            "version": version.version, "model": who, "examples": examples,
            "input_tokens": served.answer.input_tokens, "output_tokens": served.answer.output_tokens,
            "cost_micros": cost,
        })),
    )
    .await?;
    // The new side is no version yet: 0 (shown as "the suggestion").
    let diff =
        super::projects::diff_texts(version.version, &version.instructions, 0, &instructions);
    Ok(InstructionSuggestion {
        execution_id: id,
        based_on_version: version.version,
        production_version: project.production_version,
        batch_id: e.batch_id,
        run_kept_pages: e.keeps_pages,
        instructions,
        reasons,
        diff,
        examples: examples as i64,
        model: who,
        input_tokens: served.answer.input_tokens,
        output_tokens: served.answer.output_tokens,
        cost_micros: cost,
    })
}

/// The patterns as lines, then up to [`MAX_EXAMPLES`] failing examples
/// (spread over the patterns), each with an excerpt of its page when the
/// run kept it. Returns the text and how many examples it holds.
async fn failures_text(
    db: &PgPool,
    execution_id: Uuid,
    patterns: &FailurePatterns,
) -> Result<(String, usize), AppError> {
    let mut out = String::from("Failure patterns (field: pattern × jobs):\n");
    for f in &patterns.fields {
        for p in &f.patterns {
            out.push_str(&format!(
                "- {}: {} × {} of {}\n",
                f.field, p.pattern, p.count, f.judged
            ));
        }
    }
    // Examples taken a round at a time over the patterns (the first of
    // each, then the second…), so a common pattern does not crowd out a
    // rare one.
    let per_pattern: Vec<(&str, &[crate::model::FailureExample])> = patterns
        .fields
        .iter()
        .flat_map(|f| {
            f.patterns
                .iter()
                .map(move |p| (f.field.as_str(), p.examples.as_slice()))
        })
        .collect();
    let mut all: Vec<(&str, &crate::model::FailureExample)> = Vec::new();
    for round in 0.. {
        let before = all.len();
        for (field, examples) in &per_pattern {
            if let Some(x) = examples.get(round) {
                all.push((field, x));
            }
        }
        if all.len() == before || all.len() >= MAX_EXAMPLES {
            break;
        }
    }
    all.truncate(MAX_EXAMPLES);
    out.push_str("\nFailing examples:\n");
    for (n, (field, x)) in all.iter().enumerate() {
        out.push_str(&format!(
            "{}. {} — field {field}: expected {}, extracted {}{}\n",
            n + 1,
            x.url,
            x.expected
                .as_deref()
                .map_or("(empty)".into(), |v| format!("{v:?}")),
            x.extracted
                .as_deref()
                .map_or("(nothing)".into(), |v| format!("{v:?}")),
            if x.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", x.detail)
            },
        ));
        if let Some(page) = db::pages::for_row(db, execution_id, x.row_index).await? {
            if let Ok(html) = crate::server::agents::sources::snapshot::gunzip(&page.html_gz) {
                let text = tokio::task::spawn_blocking(move || reduce(&html, 300).text)
                    .await
                    .unwrap_or_default();
                let excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
                out.push_str(&format!(
                    "   Page excerpt: {}\n",
                    excerpt.replace('\n', " ")
                ));
            }
        }
    }
    Ok((out, all.len()))
}

/// The project's route as callable targets; a conflict naming what to
/// fix when nothing is left.
async fn targets(
    db: &PgPool,
    org_id: Uuid,
    route: &[crate::model::RouteEntry],
) -> Result<Vec<Target>, AppError> {
    let out = route::targets_of(db, org_id, route)
        .await
        .map_err(AppError::ModelUnavailable)?;
    if out.is_empty() {
        return Err(AppError::Conflict(
            "Every provider of the project's model route is deleted or disabled; choose another in the project's agent settings.".into(),
        ));
    }
    Ok(out)
}

/// The answer's instructions and reasons; None when it is not that JSON.
fn parse_answer(text: &str) -> Option<(String, Vec<String>)> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let v: Value = serde_json::from_str(text.get(start..=end)?).ok()?;
    let instructions = v["instructions"].as_str()?.trim().to_string();
    if instructions.is_empty() {
        return None;
    }
    let reasons = v["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some((instructions, reasons))
}

/// Counts the suggestion's tokens and cost in the organization's usage,
/// under the run it learned from (agent "suggestion").
async fn record_usage(
    db: &PgPool,
    org_id: Uuid,
    e: &crate::model::Execution,
    model: &str,
    served: &route::Served,
    cost: i64,
) -> Result<(), AppError> {
    sqlx::query(
        "insert into usage_delta (org_id, day, project_id, execution_id, agent, extractor, model,
                                  jobs, attempts, input_tokens, output_tokens, cost_micros)
         values ($1, (now() at time zone 'UTC')::date, $2, $3, 'suggestion', 'llm', $4,
                 0, 0, $5, $6, $7)",
    )
    .bind(org_id)
    .bind(e.project_id)
    .bind(e.id)
    .bind(model)
    .bind(served.answer.input_tokens)
    .bind(served.answer.output_tokens)
    .bind(cost)
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_the_json_object() {
        let (text, reasons) =
            parse_answer("Here: {\"instructions\": \"Use the sale price.\", \"reasons\": [\"a\"]}")
                .unwrap();
        assert_eq!(text, "Use the sale price.");
        assert_eq!(reasons, ["a"]);
        assert!(parse_answer("{\"instructions\": \"\"}").is_none());
        assert!(parse_answer("no json").is_none());
    }
}
