//! Model providers for the browser: admins manage them (the same service as
//! the REST API); anyone who reads projects lists their names and models.

// A form's server function takes one argument per field.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{ModelProvider, ProviderCheck, ProviderChoice, ProviderModel};

/// The models box of the provider form: one model per line, its name and
/// optionally its input and output prices per million tokens
/// (`gpt-4o-mini 0.15 0.60`). A fault names its line.
pub fn parse_models_text(text: &str) -> Result<Vec<ProviderModel>, AppError> {
    let mut models = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let n = i + 1;
        let price = |k: usize, what: &str| -> Result<f64, AppError> {
            match words.get(k) {
                None => Ok(0.0),
                Some(w) => w.trim_start_matches('$').replace(',', ".").parse::<f64>().map_err(|_| {
                    AppError::field(
                        "models",
                        format!("Line {n}: the {what} price {w:?} is not a number; write e.g. \"gpt-4o-mini 0.15 0.60\"."),
                    )
                }),
            }
        };
        if words.len() > 3 {
            return Err(AppError::field(
                "models",
                format!("Line {n}: write a model's name and at most two prices, e.g. \"gpt-4o-mini 0.15 0.60\"."),
            ));
        }
        models.push(ProviderModel {
            name: words[0].to_string(),
            input_price_per_million: price(1, "input")?,
            output_price_per_million: price(2, "output")?,
        });
    }
    Ok(models)
}

/// The models box's text for a provider's models.
pub fn models_text(models: &[ProviderModel]) -> String {
    models
        .iter()
        .map(|m| {
            format!(
                "{} {} {}",
                m.name, m.input_price_per_million, m.output_price_per_million
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(feature = "ssr")]
fn optional_number(raw: &str, field: &str) -> Result<Option<i32>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i32>()
        .map(Some)
        .map_err(|_| AppError::field(field, "Enter a whole number, or leave it empty."))
}

#[server(prefix = "/rpc", endpoint = "list_model_providers")]
pub async fn list_model_providers(org: String) -> Result<Vec<ModelProvider>, AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    let ctx = service::orgs::org_ctx(&state.db, &actor, &org).await?;
    service::model_providers::list(&state.db, &ctx).await
}

#[server(prefix = "/rpc", endpoint = "list_model_choices")]
pub async fn list_model_choices(org: String) -> Result<Vec<ProviderChoice>, AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    let ctx = service::orgs::org_ctx(&state.db, &actor, &org).await?;
    service::model_providers::choices(&state.db, &ctx).await
}

#[server(prefix = "/rpc", endpoint = "create_model_provider")]
pub async fn create_model_provider(
    org: String,
    name: String,
    kind: String,
    base_url: String,
    #[server(default)] api_key: String,
    models: String,
    #[server(default)] timeout_secs: String,
    #[server(default)] max_in_flight: String,
    #[server(default)] requests_per_minute: String,
    #[server(default)] tokens_per_minute: String,
) -> Result<ModelProvider, AppError> {
    use crate::model::ProviderKind;
    use crate::server::service::model_providers::{self, ProviderInput};
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    let ctx = service::orgs::org_ctx(&state.db, &actor, &org).await?;
    let kind = ProviderKind::parse(&kind)
        .ok_or_else(|| AppError::field("kind", "Choose openai, anthropic or gemini."))?;
    let input = ProviderInput {
        name: Some(name),
        kind: Some(kind),
        base_url: Some(base_url).filter(|u| !u.trim().is_empty()),
        api_key: Some(api_key),
        models: Some(parse_models_text(&models)?),
        timeout_secs: optional_number(&timeout_secs, "timeout_secs")?,
        max_in_flight: optional_number(&max_in_flight, "max_in_flight")?,
        requests_per_minute: optional_number(&requests_per_minute, "requests_per_minute")?,
        tokens_per_minute: optional_number(&tokens_per_minute, "tokens_per_minute")?,
        enabled: Some(true),
    };
    model_providers::create(&state.db, &ctx, input).await
}

/// Edits a provider from its form; an empty key keeps the current one.
#[server(prefix = "/rpc", endpoint = "update_model_provider")]
pub async fn update_model_provider(
    id: Uuid,
    name: String,
    base_url: String,
    #[server(default)] api_key: String,
    #[server(default)] remove_key: Option<String>,
    models: String,
    #[server(default)] timeout_secs: String,
    #[server(default)] max_in_flight: String,
    #[server(default)] requests_per_minute: String,
    #[server(default)] tokens_per_minute: String,
) -> Result<ModelProvider, AppError> {
    use crate::server::rpc;
    use crate::server::service::model_providers::{self, ProviderInput};
    let (state, actor) = rpc::user().await?;
    let api_key = if remove_key.is_some() {
        Some(String::new())
    } else {
        Some(api_key).filter(|k| !k.trim().is_empty())
    };
    let input = ProviderInput {
        name: Some(name),
        base_url: Some(base_url),
        api_key,
        models: Some(parse_models_text(&models)?),
        timeout_secs: optional_number(&timeout_secs, "timeout_secs")?,
        max_in_flight: optional_number(&max_in_flight, "max_in_flight")?,
        requests_per_minute: optional_number(&requests_per_minute, "requests_per_minute")?,
        tokens_per_minute: optional_number(&tokens_per_minute, "tokens_per_minute")?,
        ..Default::default()
    };
    model_providers::update(&state.db, &actor, id, input).await
}

#[server(prefix = "/rpc", endpoint = "set_model_provider_enabled")]
pub async fn set_model_provider_enabled(
    id: Uuid,
    enabled: bool,
) -> Result<ModelProvider, AppError> {
    use crate::server::rpc;
    use crate::server::service::model_providers::{self, ProviderInput};
    let (state, actor) = rpc::user().await?;
    let input = ProviderInput {
        enabled: Some(enabled),
        ..Default::default()
    };
    model_providers::update(&state.db, &actor, id, input).await
}

#[server(prefix = "/rpc", endpoint = "delete_model_provider")]
pub async fn delete_model_provider(id: Uuid) -> Result<(), AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    service::model_providers::delete(&state.db, &actor, id).await
}

#[server(prefix = "/rpc", endpoint = "check_model_provider")]
pub async fn check_model_provider(id: Uuid) -> Result<ProviderCheck, AppError> {
    use crate::server::{rpc, service};
    let (state, actor) = rpc::user().await?;
    service::model_providers::check(&state.db, &actor, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_box_reads_names_and_prices_by_line() {
        let m = parse_models_text("gpt-4o-mini 0.15 0.60\n\n  llama3  \nclaude $3 $15").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].input_price_per_million, m[0].output_price_per_million),
            (0.15, 0.6)
        );
        assert_eq!(
            (m[1].name.as_str(), m[1].input_price_per_million),
            ("llama3", 0.0)
        );
        assert_eq!(m[2].output_price_per_million, 15.0);
        let e = parse_models_text("a 1\nb cheap").unwrap_err();
        assert!(e.to_string().contains("Line 2"), "{e}");
        assert_eq!(parse_models_text(&models_text(&m)).unwrap(), m);
    }
}
