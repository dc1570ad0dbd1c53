//! Server functions for experiments: the same service as the REST API.
//! The form sends its request as JSON (variants are a list, which a flat
//! form can't carry); the service checks every field of it.

use leptos::prelude::*;
use uuid::Uuid;

use crate::error::AppError;
use crate::model::{ControlAction, Experiment, ExperimentRows, ExperimentSummary};

#[server(prefix = "/rpc", endpoint = "list_experiments")]
pub async fn list_experiments(project: Uuid) -> Result<Vec<ExperimentSummary>, AppError> {
    use crate::server::{rpc, service::experiments};
    let (state, actor) = rpc::user().await?;
    experiments::list(&state.db, &actor, project).await
}

/// Creates an experiment from `request`, the REST body as JSON.
#[server(prefix = "/rpc", endpoint = "create_experiment")]
pub async fn create_experiment(project: Uuid, request: String) -> Result<Experiment, AppError> {
    use crate::server::{rpc, service::experiments};
    let (state, actor) = rpc::user().await?;
    let req: experiments::NewExperiment = serde_json::from_str(&request)
        .map_err(|e| AppError::InvalidJson(format!("The experiment's request: {e}")))?;
    experiments::create(&state.db, &actor, project, req).await
}

#[server(prefix = "/rpc", endpoint = "get_experiment")]
pub async fn get_experiment(id: Uuid) -> Result<Experiment, AppError> {
    use crate::server::{rpc, service::experiments};
    let (state, actor) = rpc::user().await?;
    experiments::get(&state.db, &actor, id).await
}

#[server(prefix = "/rpc", endpoint = "list_experiment_rows")]
pub async fn list_experiment_rows(id: Uuid, offset: i64) -> Result<ExperimentRows, AppError> {
    use crate::server::{rpc, service::experiments};
    let (state, actor) = rpc::user().await?;
    experiments::rows(&state.db, &actor, id, offset, 50).await
}

/// pause, resume or stop every variant.
#[server(prefix = "/rpc", endpoint = "control_experiment")]
pub async fn control_experiment(id: Uuid, action: ControlAction) -> Result<Experiment, AppError> {
    use crate::server::{rpc, service::experiments};
    let (state, actor) = rpc::user().await?;
    experiments::control(&state.db, &actor, id, action).await
}

#[server(prefix = "/rpc", endpoint = "promote_experiment")]
pub async fn promote_experiment(id: Uuid, variant: i32) -> Result<Experiment, AppError> {
    use crate::server::{rpc, service::experiments};
    let (state, actor) = rpc::user().await?;
    experiments::promote(&state.db, &actor, id, Some(variant)).await
}
