//! The REST API under `/api/v1`: thin handlers that authenticate the
//! caller, parse the input and call the same services the UI uses.

mod audit;
mod auth;
mod batches;
mod executions;
mod experiments;
mod exports;
mod keys;
pub mod openapi;
mod orgs;
mod projects;
mod providers;
mod results;
mod team;
mod usage;
mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;

use crate::server::state::AppState;

/// Every route of the API, as (method, path) — the authorization-matrix
/// test checks it has a row for each.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/signup"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/me/password"),
    ("DELETE", "/api/v1/me"),
    ("GET", "/api/v1/orgs"),
    ("POST", "/api/v1/orgs"),
    ("GET", "/api/v1/orgs/{org}"),
    ("PATCH", "/api/v1/orgs/{org}"),
    ("DELETE", "/api/v1/orgs/{org}"),
    ("PUT", "/api/v1/orgs/{org}/limits"),
    ("GET", "/api/v1/orgs/{org}/members"),
    ("PATCH", "/api/v1/orgs/{org}/members/{user}"),
    ("DELETE", "/api/v1/orgs/{org}/members/{user}"),
    ("GET", "/api/v1/orgs/{org}/invitations"),
    ("POST", "/api/v1/orgs/{org}/invitations"),
    ("DELETE", "/api/v1/orgs/{org}/invitations/{id}"),
    ("GET", "/api/v1/invitations/{token}"),
    ("POST", "/api/v1/invitations/{token}/accept"),
    ("GET", "/api/v1/orgs/{org}/api-keys"),
    ("POST", "/api/v1/orgs/{org}/api-keys"),
    ("DELETE", "/api/v1/api-keys/{id}"),
    ("GET", "/api/v1/orgs/{org}/projects"),
    ("POST", "/api/v1/orgs/{org}/projects"),
    ("POST", "/api/v1/orgs/{org}/demo-project"),
    ("GET", "/api/v1/projects/{id}"),
    ("PATCH", "/api/v1/projects/{id}"),
    ("DELETE", "/api/v1/projects/{id}"),
    ("GET", "/api/v1/projects/{id}/instructions"),
    ("POST", "/api/v1/projects/{id}/instructions"),
    ("GET", "/api/v1/projects/{id}/instructions/diff"),
    ("GET", "/api/v1/projects/{id}/versions"),
    ("GET", "/api/v1/projects/{id}/versions/diff"),
    ("GET", "/api/v1/projects/{id}/instructions/{version}"),
    ("PUT", "/api/v1/projects/{id}/production-version"),
    ("PATCH", "/api/v1/projects/{id}/agent"),
    ("POST", "/api/v1/projects/{id}/fields"),
    ("PATCH", "/api/v1/projects/{id}/fields/{name}"),
    ("DELETE", "/api/v1/projects/{id}/fields/{name}"),
    ("GET", "/api/v1/projects/{id}/grid-columns"),
    ("PUT", "/api/v1/projects/{id}/grid-columns"),
    ("GET", "/api/v1/projects/{id}/batches"),
    ("POST", "/api/v1/projects/{id}/batches"),
    ("POST", "/api/v1/projects/{id}/batches/preview"),
    ("GET", "/api/v1/batches/{id}"),
    ("PATCH", "/api/v1/batches/{id}"),
    ("DELETE", "/api/v1/batches/{id}"),
    ("GET", "/api/v1/batches/{id}/rows"),
    ("GET", "/api/v1/batches/{id}/executions"),
    ("POST", "/api/v1/batches/{id}/executions"),
    ("GET", "/api/v1/executions/{id}"),
    ("POST", "/api/v1/executions/{id}/pause"),
    ("POST", "/api/v1/executions/{id}/resume"),
    ("POST", "/api/v1/executions/{id}/stop"),
    ("PUT", "/api/v1/executions/{id}/concurrency"),
    ("POST", "/api/v1/executions/{id}/rerun"),
    ("POST", "/api/v1/executions/{id}/suggest-instructions"),
    ("GET", "/api/v1/executions/{id}/events"),
    ("GET", "/api/v1/executions/{id}/metrics"),
    ("GET", "/api/v1/executions/{id}/jobs"),
    ("GET", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/jobs/{id}/live-frame"),
    ("PATCH", "/api/v1/rows/{id}/ground-truth"),
    ("GET", "/api/v1/rows/{id}/history"),
    ("GET", "/api/v1/attempts/{id}/screenshot"),
    ("GET", "/api/v1/attempts/{id}/page"),
    ("POST", "/api/v1/batches/{id}/ground-truth/bulk-set"),
    ("POST", "/api/v1/batches/{id}/ground-truth/bulk-edit"),
    ("POST", "/api/v1/batches/{id}/imports"),
    ("GET", "/api/v1/batches/{id}/evaluation-sets"),
    ("POST", "/api/v1/batches/{id}/evaluation-sets"),
    ("GET", "/api/v1/evaluation-sets/{id}"),
    ("DELETE", "/api/v1/evaluation-sets/{id}"),
    ("GET", "/api/v1/projects/{id}/experiments"),
    ("POST", "/api/v1/projects/{id}/experiments"),
    ("GET", "/api/v1/experiments/{id}"),
    ("GET", "/api/v1/experiments/{id}/rows"),
    ("POST", "/api/v1/experiments/{id}/pause"),
    ("POST", "/api/v1/experiments/{id}/resume"),
    ("POST", "/api/v1/experiments/{id}/stop"),
    ("POST", "/api/v1/experiments/{id}/promote"),
    ("GET", "/api/v1/batches/{id}/trends"),
    ("GET", "/api/v1/executions/{id}/failure-patterns"),
    ("GET", "/api/v1/executions/compare"),
    ("POST", "/api/v1/jobs/bulk/delete"),
    ("POST", "/api/v1/jobs/bulk/rerun"),
    ("POST", "/api/v1/jobs/bulk/update"),
    ("POST", "/api/v1/executions/{id}/export"),
    ("POST", "/api/v1/batches/{id}/export"),
    ("GET", "/api/v1/batches/{id}/exports"),
    ("GET", "/api/v1/exports/{id}"),
    ("GET", "/api/v1/exports/{id}/download"),
    ("GET", "/api/v1/orgs/{org}/audit-log"),
    ("GET", "/api/v1/orgs/{org}/audit-log/export"),
    ("POST", "/api/v1/orgs/{org}/export"),
    ("GET", "/api/v1/orgs/{org}/usage"),
    ("GET", "/api/v1/orgs/{org}/usage/export"),
    ("GET", "/api/v1/orgs/{org}/budget"),
    ("PUT", "/api/v1/orgs/{org}/budget"),
    ("GET", "/api/v1/orgs/{org}/webhooks"),
    ("POST", "/api/v1/orgs/{org}/webhooks"),
    ("GET", "/api/v1/webhooks/{id}"),
    ("PATCH", "/api/v1/webhooks/{id}"),
    ("DELETE", "/api/v1/webhooks/{id}"),
    ("GET", "/api/v1/webhooks/{id}/deliveries"),
    ("POST", "/api/v1/webhooks/{id}/test"),
    ("POST", "/api/v1/webhook-deliveries/{id}/redeliver"),
    ("GET", "/api/v1/orgs/{org}/model-providers"),
    ("POST", "/api/v1/orgs/{org}/model-providers"),
    ("GET", "/api/v1/orgs/{org}/model-choices"),
    ("GET", "/api/v1/model-providers/{id}"),
    ("PATCH", "/api/v1/model-providers/{id}"),
    ("DELETE", "/api/v1/model-providers/{id}"),
    ("POST", "/api/v1/model-providers/{id}/check"),
    ("GET", "/api/v1/openapi.json"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(auth::sign_up))
        .route("/auth/login", post(auth::sign_in))
        .route("/auth/logout", post(auth::sign_out))
        .route("/me", get(auth::me).delete(auth::delete_me))
        .route("/me/password", post(auth::change_password))
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route(
            "/orgs/{org}",
            get(orgs::get).patch(orgs::update).delete(orgs::delete),
        )
        .route("/orgs/{org}/limits", put(orgs::update_limits))
        .route("/orgs/{org}/members", get(team::list_members))
        .route(
            "/orgs/{org}/members/{user}",
            patch(team::change_role).delete(team::remove_member),
        )
        .route(
            "/orgs/{org}/invitations",
            get(team::list_invitations).post(team::invite),
        )
        .route(
            "/orgs/{org}/invitations/{id}",
            delete(team::revoke_invitation),
        )
        .route("/invitations/{token}", get(team::preview_invitation))
        .route("/invitations/{token}/accept", post(team::accept_invitation))
        .route("/orgs/{org}/api-keys", get(keys::list).post(keys::create))
        .route("/api-keys/{id}", delete(keys::revoke))
        .route(
            "/orgs/{org}/projects",
            get(projects::list).post(projects::create),
        )
        .route("/orgs/{org}/demo-project", post(projects::load_demo))
        .route(
            "/projects/{id}",
            get(projects::get)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/projects/{id}/instructions",
            get(projects::versions).post(projects::save_instructions),
        )
        .route("/projects/{id}/instructions/diff", get(projects::diff))
        // Versions are whole run configurations; the list is the same as
        // the instructions' (each version has a text), the diff covers all
        // three parts.
        .route("/projects/{id}/versions", get(projects::versions))
        .route("/projects/{id}/versions/diff", get(projects::version_diff))
        .route(
            "/projects/{id}/instructions/{version}",
            get(projects::version),
        )
        .route(
            "/projects/{id}/production-version",
            put(projects::set_production),
        )
        .route("/projects/{id}/agent", patch(projects::update_agent))
        .route("/projects/{id}/fields", post(projects::add_field))
        .route(
            "/projects/{id}/fields/{name}",
            patch(projects::update_field).delete(projects::delete_field),
        )
        .route(
            "/projects/{id}/grid-columns",
            get(projects::grid_columns).put(projects::save_grid_columns),
        )
        // Uploads enforce their own size limit while streaming.
        .route(
            "/projects/{id}/batches",
            get(batches::list).post(batches::upload.layer(DefaultBodyLimit::disable())),
        )
        .route(
            "/projects/{id}/batches/preview",
            post(batches::preview.layer(DefaultBodyLimit::disable())),
        )
        .route(
            "/batches/{id}",
            get(batches::get)
                .patch(batches::rename)
                .delete(batches::delete),
        )
        .route("/batches/{id}/rows", get(batches::rows))
        .route(
            "/batches/{id}/executions",
            get(executions::list).post(executions::start),
        )
        .route("/executions/{id}", get(executions::get))
        .route("/executions/{id}/pause", post(executions::pause))
        .route("/executions/{id}/resume", post(executions::resume))
        .route("/executions/{id}/stop", post(executions::stop))
        .route("/executions/{id}/rerun", post(executions::rerun))
        .route(
            "/executions/{id}/suggest-instructions",
            post(executions::suggest_instructions),
        )
        .route("/executions/{id}/events", get(executions::events))
        .route("/executions/{id}/metrics", get(executions::metrics))
        .route("/executions/{id}/jobs", get(executions::jobs))
        .route("/jobs/{id}", get(executions::job))
        .route("/jobs/{id}/live-frame", get(executions::live_frame))
        .route(
            "/rows/{id}/ground-truth",
            patch(executions::edit_ground_truth),
        )
        .route("/rows/{id}/history", get(executions::ground_truth_history))
        .route("/attempts/{id}/screenshot", get(executions::screenshot))
        .route("/attempts/{id}/page", get(executions::page))
        // A bulk set may be a CSV of up to 100,000 rows.
        .route(
            "/batches/{id}/ground-truth/bulk-set",
            post(results::bulk_set.layer(DefaultBodyLimit::max(64 * 1024 * 1024))),
        )
        .route(
            "/batches/{id}/evaluation-sets",
            get(batches::evaluation_sets).post(batches::create_evaluation_set),
        )
        .route(
            "/evaluation-sets/{id}",
            get(batches::evaluation_set).delete(batches::delete_evaluation_set),
        )
        .route(
            "/projects/{id}/experiments",
            get(experiments::list).post(experiments::create),
        )
        .route("/experiments/{id}", get(experiments::get))
        .route("/experiments/{id}/rows", get(experiments::rows))
        .route("/experiments/{id}/pause", post(experiments::pause))
        .route("/experiments/{id}/resume", post(experiments::resume))
        .route("/experiments/{id}/stop", post(experiments::stop))
        .route("/experiments/{id}/promote", post(experiments::promote))
        // An import may be a file of a million lines.
        .route(
            "/batches/{id}/imports",
            post(results::import.layer(DefaultBodyLimit::max(
                crate::server::service::imports::MAX_IMPORT_BYTES,
            ))),
        )
        .route(
            "/batches/{id}/ground-truth/bulk-edit",
            post(results::bulk_edit),
        )
        .route("/batches/{id}/trends", get(results::trends))
        .route(
            "/executions/{id}/failure-patterns",
            get(results::failure_patterns),
        )
        .route("/executions/compare", get(results::compare))
        .route("/jobs/bulk/delete", post(results::bulk_delete))
        .route("/jobs/bulk/rerun", post(results::bulk_rerun))
        .route("/jobs/bulk/update", post(results::bulk_update))
        .route("/executions/{id}/export", post(exports::export_execution))
        .route("/batches/{id}/export", post(exports::export_batch))
        .route("/batches/{id}/exports", get(exports::list))
        .route("/exports/{id}", get(exports::get))
        .route("/exports/{id}/download", get(exports::download))
        .route("/orgs/{org}/audit-log", get(audit::list))
        .route("/orgs/{org}/audit-log/export", get(audit::export))
        .route("/orgs/{org}/export", post(orgs::export_all))
        .route("/orgs/{org}/usage", get(usage::report))
        .route("/orgs/{org}/usage/export", get(usage::export))
        .route(
            "/orgs/{org}/budget",
            get(usage::get_budget).put(usage::put_budget),
        )
        .route(
            "/orgs/{org}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/openapi.json", get(openapi::serve))
        .route("/webhooks/{id}/test", post(webhooks::send_test))
        .route(
            "/webhook-deliveries/{id}/redeliver",
            post(webhooks::redeliver),
        )
        .route(
            "/executions/{id}/concurrency",
            put(executions::set_concurrency),
        )
        .route(
            "/orgs/{org}/model-providers",
            get(providers::list).post(providers::create),
        )
        .route("/orgs/{org}/model-choices", get(providers::choices))
        .route(
            "/model-providers/{id}",
            get(providers::get)
                .patch(providers::update)
                .delete(providers::delete),
        )
        .route("/model-providers/{id}/check", post(providers::check))
        // Labels each request's metrics with its route pattern.
        .route_layer(axum::middleware::from_fn(
            crate::server::metrics::label_route,
        ))
        .fallback(not_found)
}

async fn not_found() -> crate::error::AppError {
    crate::error::AppError::NotFound("API route".into())
}

/// Wraps a list in the `{items, next_cursor}` shape every list uses. These
/// lists are bounded (an organization's members and keys), so they come in
/// one page.
fn page<T>(items: Vec<T>) -> crate::server::http::Json<crate::model::Page<T>> {
    crate::server::http::Json(crate::model::Page {
        items,
        next_cursor: None,
    })
}

/// Parses a path id, answering 404 (not 400) for something that is not one:
/// to the caller it is simply a resource that does not exist.
fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, crate::error::AppError> {
    uuid::Uuid::parse_str(raw).map_err(|_| crate::error::AppError::NotFound(what.into()))
}

/// For PATCH bodies, a field that can be cleared: left out is `None`,
/// `null` is `Some(None)`, a value is `Some(Some(value))`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
