//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, built from
//! the code: one entry per route below names the types its handler parses
//! and returns, and their schemas are derived from those very types
//! (`schemars`, JSON Schema 2020-12, which OpenAPI 3.1 uses as is), so a
//! field added to a request or response shows up here by itself. A test
//! fails when a route in [`super::ROUTES`] has no entry, or an entry no
//! route.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::{auth, batches, executions, keys, orgs, projects, results, team, usage, webhooks};
use crate::model::*;
use crate::server::service;

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A named type's schema, as a reference into `components/schemas`.
fn named<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// A type's own schema, inline (a query string's fields become parameters).
fn inline<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

enum Reply {
    Json(u16, SchemaFn),
    Empty(u16),
    /// A file download, in one of these media types.
    File(&'static [&'static str]),
    /// `text/event-stream`.
    Events,
    /// A live frame (`image/jpeg`), or 204 when there is none yet.
    Frame,
}

enum Body {
    None,
    Json(SchemaFn),
    /// A CSV file as the body (`text/csv`) or as the `file` part of a
    /// multipart form.
    CsvUpload,
    /// A CSV or JSON Lines file, raw or as a multipart `file`.
    ImportFile,
    /// JSON, or a CSV file (`text/csv`).
    JsonOrCsv(SchemaFn),
}

struct Op {
    method: &'static str,
    /// Under `/api/v1`.
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Body,
    query: Option<SchemaFn>,
    reply: Reply,
    /// Needs no credentials.
    public: bool,
}

fn op(method: &'static str, path: &'static str, tag: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        body: Body::None,
        query: None,
        reply: Reply::Empty(204),
        public: false,
    }
}

impl Op {
    fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Body::Json(named::<T>);
        self
    }
    fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(inline::<T>);
        self
    }
    /// Answers 200 with a `T`.
    fn ok<T: JsonSchema>(self) -> Self {
        self.answers::<T>(200)
    }
    fn answers<T: JsonSchema>(mut self, status: u16) -> Self {
        self.reply = Reply::Json(status, named::<T>);
        self
    }
    fn public(mut self) -> Self {
        self.public = true;
        self
    }
    /// Takes a CSV file (`text/csv` body or multipart `file`).
    fn csv_upload(mut self) -> Self {
        self.body = Body::CsvUpload;
        self
    }
    /// Takes a CSV or JSON Lines file.
    fn import_file(mut self) -> Self {
        self.body = Body::ImportFile;
        self
    }
    /// Takes a `T` as JSON, or a CSV file.
    fn json_or_csv<T: JsonSchema>(mut self) -> Self {
        self.body = Body::JsonOrCsv(named::<T>);
        self
    }
    /// Answers with a file in one of `types`.
    fn file(mut self, types: &'static [&'static str]) -> Self {
        self.reply = Reply::File(types);
        self
    }
    /// Answers with a live frame or 204.
    fn frame(mut self) -> Self {
        self.reply = Reply::Frame;
        self
    }
    /// Answers with server-sent events.
    fn events(mut self) -> Self {
        self.reply = Reply::Events;
        self
    }
}

/// Every operation of the API, in the order of [`super::ROUTES`].
fn operations() -> Vec<Op> {
    use service::{bulk_jobs, exports, ground_truth};
    const FILES: &[&str] = &[
        "text/csv",
        "application/json",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ];
    vec![
        op(
            "POST",
            "/auth/signup",
            "Account",
            "Create an account and sign in",
        )
        .body::<auth::SignUpBody>()
        .answers::<User>(201)
        .public(),
        op(
            "POST",
            "/auth/login",
            "Account",
            "Sign in (sets the session cookie)",
        )
        .body::<auth::SignInBody>()
        .ok::<User>()
        .public(),
        op("POST", "/auth/logout", "Account", "Sign out").public(),
        op(
            "GET",
            "/me",
            "Account",
            "The caller: user and organizations, or the API key",
        )
        .ok::<Value>(),
        op(
            "POST",
            "/me/password",
            "Account",
            "Change your password (ends your other sessions)",
        )
        .body::<auth::ChangePasswordBody>(),
        op(
            "DELETE",
            "/me",
            "Account",
            "Delete your account (password again): organizations where you are the only member go with it, keys you created are revoked, your audit entries stay signed \"deleted user\"; refused while you are the only owner of an organization with other members",
        )
        .body::<auth::DeleteAccountBody>(),
        op(
            "GET",
            "/orgs",
            "Organizations",
            "Organizations you belong to",
        )
        .ok::<Page<Organization>>(),
        op(
            "POST",
            "/orgs",
            "Organizations",
            "Create an organization (you become its owner)",
        )
        .body::<orgs::NameBody>()
        .answers::<Organization>(201),
        op("GET", "/orgs/{org}", "Organizations", "An organization").ok::<Organization>(),
        op(
            "PATCH",
            "/orgs/{org}",
            "Organizations",
            "Rename an organization and/or set how many days it keeps attempt screenshots and kept pages (admins)",
        )
        .body::<orgs::UpdateBody>()
        .ok::<Organization>(),
        op(
            "DELETE",
            "/orgs/{org}",
            "Organizations",
            "Delete an organization and everything in it (owners)",
        ),
        op(
            "PUT",
            "/orgs/{org}/limits",
            "Organizations",
            "Set plan limits and API rates (owners)",
        )
        .body::<orgs::LimitsBody>()
        .ok::<Organization>(),
        op(
            "GET",
            "/orgs/{org}/members",
            "Team",
            "Members and their roles",
        )
        .ok::<Page<Member>>(),
        op(
            "PATCH",
            "/orgs/{org}/members/{user}",
            "Team",
            "Change a member's role",
        )
        .body::<team::RoleBody>()
        .ok::<Member>(),
        op(
            "DELETE",
            "/orgs/{org}/members/{user}",
            "Team",
            "Remove a member (or leave)",
        ),
        op(
            "GET",
            "/orgs/{org}/invitations",
            "Team",
            "Pending invitations",
        )
        .ok::<Page<Invitation>>(),
        op(
            "POST",
            "/orgs/{org}/invitations",
            "Team",
            "Invite someone by email and role",
        )
        .body::<team::InviteBody>()
        .answers::<Invitation>(201),
        op(
            "DELETE",
            "/orgs/{org}/invitations/{id}",
            "Team",
            "Revoke an invitation",
        ),
        op(
            "GET",
            "/invitations/{token}",
            "Team",
            "What an invitation is for",
        )
        .ok::<InvitationPreview>()
        .public(),
        op(
            "POST",
            "/invitations/{token}/accept",
            "Team",
            "Accept an invitation",
        )
        .ok::<Organization>(),
        op("GET", "/orgs/{org}/api-keys", "API keys", "API keys").ok::<Page<ApiKey>>(),
        op(
            "POST",
            "/orgs/{org}/api-keys",
            "API keys",
            "Create an API key (its secret is shown once)",
        )
        .body::<keys::CreateBody>()
        .answers::<CreatedApiKey>(201),
        op("DELETE", "/api-keys/{id}", "API keys", "Revoke an API key"),
        op(
            "GET",
            "/orgs/{org}/projects",
            "Projects",
            "Projects, a page at a time",
        )
        .query::<projects::PageQuery>()
        .ok::<Page<ProjectSummary>>(),
        op(
            "POST",
            "/orgs/{org}/projects",
            "Projects",
            "Create a project",
        )
        .body::<projects::CreateBody>()
        .answers::<Project>(201),
        op(
            "POST",
            "/orgs/{org}/demo-project",
            "Projects",
            "Load the demo project and batch",
        )
        .answers::<LoadedDemo>(201),
        op(
            "GET",
            "/projects/{id}",
            "Projects",
            "A project with its fields and agent settings",
        )
        .ok::<Project>(),
        op(
            "PATCH",
            "/projects/{id}",
            "Projects",
            "Rename or describe a project",
        )
        .body::<projects::UpdateBody>()
        .ok::<Project>(),
        op(
            "DELETE",
            "/projects/{id}",
            "Projects",
            "Delete a project with its batches and runs (admins)",
        ),
        op(
            "GET",
            "/projects/{id}/instructions",
            "Instructions",
            "Instruction versions, newest first",
        )
        .query::<projects::PageQuery>()
        .ok::<Page<VersionSummary>>(),
        op(
            "POST",
            "/projects/{id}/instructions",
            "Instructions",
            "Save instructions as a new version",
        )
        .body::<projects::SaveBody>()
        .answers::<InstructionVersion>(201),
        op(
            "GET",
            "/projects/{id}/instructions/diff",
            "Instructions",
            "Compare two versions line by line",
        )
        .query::<projects::DiffQuery>()
        .ok::<InstructionDiff>(),
        op(
            "GET",
            "/projects/{id}/versions",
            "Instructions",
            "Versions (instructions, field rules and agent settings saved together), newest first; parts says what each changed",
        )
        .query::<projects::PageQuery>()
        .ok::<Page<VersionSummary>>(),
        op(
            "GET",
            "/projects/{id}/versions/diff",
            "Instructions",
            "Compare two versions: instructions line by line, field rules and descriptions, agent settings",
        )
        .query::<projects::DiffQuery>()
        .ok::<crate::model::VersionDiff>(),
        op(
            "GET",
            "/projects/{id}/instructions/{version}",
            "Instructions",
            "One version",
        )
        .ok::<InstructionVersion>(),
        op(
            "PUT",
            "/projects/{id}/production-version",
            "Instructions",
            "Choose the production version",
        )
        .body::<projects::ProductionBody>()
        .ok::<InstructionVersion>(),
        op(
            "PATCH",
            "/projects/{id}/agent",
            "Projects",
            "Agent settings: agent, timeout, retries, price",
        )
        .body::<projects::AgentBody>()
        .ok::<Project>(),
        op(
            "POST",
            "/projects/{id}/fields",
            "Projects",
            "Add an output field",
        )
        .body::<projects::FieldBody>()
        .answers::<Project>(201),
        op(
            "PATCH",
            "/projects/{id}/fields/{name}",
            "Projects",
            "Change an output field (a comparator change re-judges runs)",
        )
        .body::<projects::FieldBody>()
        .ok::<Project>(),
        op(
            "DELETE",
            "/projects/{id}/fields/{name}",
            "Projects",
            "Delete an output field",
        )
        .ok::<Project>(),
        op(
            "GET",
            "/projects/{id}/grid-columns",
            "Projects",
            "Your results-grid columns for this project's runs",
        )
        .ok::<crate::model::GridColumns>(),
        op(
            "PUT",
            "/projects/{id}/grid-columns",
            "Projects",
            "Choose and order your results-grid columns (signed-in people)",
        )
        .body::<projects::GridColumnsBody>()
        .ok::<crate::model::GridColumns>(),
        op(
            "GET",
            "/projects/{id}/batches",
            "Batches",
            "Batches, a page at a time",
        )
        .query::<projects::PageQuery>()
        .ok::<Page<BatchSummary>>(),
        op(
            "POST",
            "/projects/{id}/batches",
            "Batches",
            "Upload a CSV as a new batch",
        )
        .query::<batches::UploadQuery>()
        .answers::<Batch>(201)
        .csv_upload(),
        op(
            "POST",
            "/projects/{id}/batches/preview",
            "Batches",
            "Check a CSV without storing it",
        )
        .query::<batches::UploadQuery>()
        .ok::<CsvReport>()
        .csv_upload(),
        op(
            "GET",
            "/batches/{id}",
            "Batches",
            "A batch with its ground-truth coverage",
        )
        .ok::<Batch>(),
        op("PATCH", "/batches/{id}", "Batches", "Rename a batch")
            .body::<batches::RenameBody>()
            .ok::<Batch>(),
        op(
            "DELETE",
            "/batches/{id}",
            "Batches",
            "Delete a batch with its rows and runs (admins)",
        ),
        op(
            "GET",
            "/batches/{id}/rows",
            "Batches",
            "A batch's rows, searchable, a page at a time",
        )
        .query::<batches::RowsQuery>()
        .ok::<Page<BatchRow>>(),
        op(
            "GET",
            "/batches/{id}/executions",
            "Runs",
            "A batch's runs, newest first",
        )
        .ok::<Page<Execution>>(),
        op(
            "POST",
            "/batches/{id}/executions",
            "Runs",
            "Start a test or production run",
        )
        .body::<service::executions::StartRequest>()
        .answers::<Execution>(201),
        op("GET", "/executions/{id}", "Runs", "A run with its counters").ok::<Execution>(),
        op("POST", "/executions/{id}/pause", "Runs", "Pause a run").ok::<Execution>(),
        op(
            "POST",
            "/executions/{id}/resume",
            "Runs",
            "Resume a paused run",
        )
        .ok::<Execution>(),
        op(
            "POST",
            "/executions/{id}/stop",
            "Runs",
            "Stop a run (running jobs are interrupted)",
        )
        .ok::<Execution>(),
        op(
            "PUT",
            "/executions/{id}/concurrency",
            "Runs",
            "Change a run's concurrency",
        )
        .body::<executions::ConcurrencyBody>()
        .ok::<Execution>(),
        op(
            "POST",
            "/executions/{id}/rerun",
            "Runs",
            "Run a run's jobs again (all or the failed ones)",
        )
        .body::<service::executions::RerunRequest>()
        .answers::<Execution>(201),
        op(
            "POST",
            "/executions/{id}/suggest-instructions",
            "Runs",
            "Ask the project's model for better instructions from this run's failure patterns and up to 20 failing examples; returns the text, the reasons and the diff, and saves nothing (409 without a model route, 502 MODEL_UNAVAILABLE when every model fails)",
        )
        .ok::<crate::model::InstructionSuggestion>(),
        op(
            "GET",
            "/executions/{id}/events",
            "Runs",
            "Live snapshots of a run (server-sent events)",
        )
        .events(),
        op(
            "GET",
            "/executions/{id}/metrics",
            "Results",
            "Accuracy overall and per field, verdicts, errors",
        )
        .ok::<ExecutionMetrics>(),
        op(
            "GET",
            "/executions/{id}/jobs",
            "Results",
            "A run's jobs, filtered, a page at a time",
        )
        .query::<service::jobs::JobFilter>()
        .ok::<Page<JobSummary>>(),
        op(
            "GET",
            "/jobs/{id}",
            "Results",
            "A job: extracted against expected, attempts and logs",
        )
        .ok::<JobDetail>(),
        op(
            "GET",
            "/jobs/{id}/live-frame",
            "Results",
            "The latest live frame of a running browser job (fetching it keeps frames coming)",
        )
        .frame(),
        op(
            "PATCH",
            "/rows/{id}/ground-truth",
            "Ground truth",
            "Edit a row's expected values (409 when stale)",
        )
        .body::<ground_truth::GroundTruthEdit>()
        .ok::<RowGroundTruth>(),
        op(
            "GET",
            "/rows/{id}/history",
            "Ground truth",
            "Who changed a row's expected values",
        )
        .ok::<Vec<GroundTruthChange>>(),
        op(
            "GET",
            "/attempts/{id}/screenshot",
            "Executions",
            "The JPEG a browser attempt ended on",
        )
        .file(&["image/jpeg"]),
        op(
            "GET",
            "/attempts/{id}/page",
            "Executions",
            "The page an attempt read, as kept (sandboxed HTML, no scripts)",
        )
        .file(&["text/html"]),
        op(
            "POST",
            "/batches/{id}/ground-truth/bulk-set",
            "Ground truth",
            "Set expected values by row (JSON or CSV)",
        )
        .query::<results::PreviewQuery>()
        .ok::<BulkGroundTruthResult>()
        .json_or_csv::<ground_truth::BulkSet>(),
        op(
            "POST",
            "/batches/{id}/ground-truth/bulk-edit",
            "Ground truth",
            "Set, clear, replace or accept extracted values in bulk",
        )
        .body::<ground_truth::BulkEdit>()
        .ok::<BulkGroundTruthResult>(),
        op(
            "POST",
            "/batches/{id}/imports",
            "Results",
            "Import values extracted elsewhere as a judged run (agent imported): one line per row, keyed by row, row_id or url, one column per field, optional error, cost and duration_ms",
        )
        .query::<results::ImportQuery>()
        .answers::<Execution>(201)
        .import_file(),
        op(
            "GET",
            "/batches/{id}/evaluation-sets",
            "Batches",
            "The batch's evaluation sets (named regression sets of rows), each at its latest version",
        )
        .ok::<Vec<crate::model::EvaluationSet>>(),
        op(
            "POST",
            "/batches/{id}/evaluation-sets",
            "Batches",
            "Save an evaluation set: rows (row numbers), row_ids, execution_id with a job-list filter, or experiment_id (the rows its variants disagree on); an existing name gets its next version",
        )
        .body::<crate::server::service::evaluation_sets::NewSet>()
        .answers::<crate::model::EvaluationSet>(201),
        op(
            "GET",
            "/evaluation-sets/{id}",
            "Batches",
            "One evaluation set version with its rows",
        )
        .ok::<crate::model::EvaluationSet>(),
        op(
            "DELETE",
            "/evaluation-sets/{id}",
            "Batches",
            "Delete one version of an evaluation set",
        ),
        op(
            "GET",
            "/projects/{id}/experiments",
            "Experiments",
            "The project's latest 50 experiments, newest first",
        )
        .ok::<Page<crate::model::ExperimentSummary>>(),
        op(
            "POST",
            "/projects/{id}/experiments",
            "Experiments",
            "Run 2 to 6 variants (a version, optionally with another agent, extractor or model route) over exactly the same rows: a sample (first or seeded random), a run's failing jobs, or an evaluation set; with from_execution every variant reads that run's kept pages. All variants start or none does",
        )
        .body::<crate::server::service::experiments::NewExperiment>()
        .answers::<crate::model::Experiment>(201),
        op(
            "GET",
            "/experiments/{id}",
            "Experiments",
            "One experiment: each variant's execution and figures (accuracy with interval, fields' accuracy and F1, cost, tokens, latency p50/p95, errors) and every pair's fixed and regressed rows with McNemar's exact test",
        )
        .ok::<crate::model::Experiment>(),
        op(
            "GET",
            "/experiments/{id}/rows",
            "Experiments",
            "The per-row grid: every variant's values and verdict against the expected values, rows where variants disagree first",
        )
        .query::<super::experiments::RowsQuery>()
        .ok::<crate::model::ExperimentRows>(),
        op(
            "POST",
            "/experiments/{id}/pause",
            "Experiments",
            "Pause every running variant",
        )
        .ok::<crate::model::Experiment>(),
        op(
            "POST",
            "/experiments/{id}/resume",
            "Experiments",
            "Resume every paused variant",
        )
        .ok::<crate::model::Experiment>(),
        op(
            "POST",
            "/experiments/{id}/stop",
            "Experiments",
            "Stop every variant still running (queued jobs are cancelled)",
        )
        .ok::<crate::model::Experiment>(),
        op(
            "POST",
            "/experiments/{id}/promote",
            "Experiments",
            "Make a variant's version (by position or label) the project's production version; audited. A variant's overrides are not part of its version",
        )
        .body::<super::experiments::PromoteRequest>()
        .ok::<crate::model::Experiment>(),
        op(
            "GET",
            "/batches/{id}/trends",
            "Results",
            "Accuracy across a batch's runs",
        )
        .ok::<Trends>(),
        op(
            "GET",
            "/executions/{id}/failure-patterns",
            "Results",
            "Why fields fail, with examples",
        )
        .ok::<FailurePatterns>(),
        op(
            "GET",
            "/executions/compare",
            "Results",
            "Compare two runs: deltas, fixed and regressed jobs",
        )
        .query::<results::CompareQuery>()
        .ok::<Comparison>(),
        op(
            "POST",
            "/jobs/bulk/delete",
            "Bulk jobs",
            "Delete finished jobs (admins)",
        )
        .body::<bulk_jobs::BulkJobs>()
        .ok::<BulkJobsResult>(),
        op(
            "POST",
            "/jobs/bulk/rerun",
            "Bulk jobs",
            "Run chosen jobs again as a new run",
        )
        .body::<bulk_jobs::BulkJobs>()
        .ok::<BulkJobsResult>(),
        op(
            "POST",
            "/jobs/bulk/update",
            "Bulk jobs",
            "Cancel chosen queued jobs",
        )
        .body::<bulk_jobs::BulkJobs>()
        .ok::<BulkJobsResult>(),
        op(
            "POST",
            "/executions/{id}/export",
            "Exports",
            "Export a run as CSV, JSON or XLSX (streamed)",
        )
        .body::<exports::ExportRequest>()
        .file(FILES),
        op(
            "POST",
            "/batches/{id}/export",
            "Exports",
            "Export a batch's latest run",
        )
        .body::<exports::ExportRequest>()
        .file(FILES),
        op(
            "GET",
            "/batches/{id}/exports",
            "Exports",
            "A batch's export history",
        )
        .query::<projects::PageQuery>()
        .ok::<Page<Export>>(),
        op(
            "GET",
            "/exports/{id}",
            "Exports",
            "One export: state, rows, who and when",
        )
        .ok::<Export>(),
        op(
            "GET",
            "/exports/{id}/download",
            "Exports",
            "Download a kept export again",
        )
        .file(FILES),
        op(
            "GET",
            "/orgs/{org}/audit-log",
            "Audit log",
            "Changes, newest first, filtered (admins)",
        )
        .query::<service::audit::AuditFilter>()
        .ok::<Page<AuditEntry>>(),
        op(
            "GET",
            "/orgs/{org}/audit-log/export",
            "Audit log",
            "The filtered audit log as CSV",
        )
        .query::<service::audit::AuditFilter>()
        .file(&["text/csv"]),
        op(
            "POST",
            "/orgs/{org}/export",
            "Organizations",
            "Everything the organization has (projects, versions, batches and rows, runs, jobs, attempts, expected-value history, webhooks without secrets, audit log, usage) as one streamed zip of CSV and JSON files with a manifest (owners)",
        )
        .file(&["application/zip"]),
        op(
            "GET",
            "/orgs/{org}/usage",
            "Usage",
            "Jobs, attempts, model tokens and cost over a period, grouped by day, month, project, execution, agent or model, with this month against the plan and last month",
        )
        .query::<usage::UsageQuery>()
        .ok::<crate::model::UsageReport>(),
        op(
            "GET",
            "/orgs/{org}/usage/export",
            "Usage",
            "The same report as CSV",
        )
        .query::<usage::UsageQuery>()
        .file(&["text/csv"]),
        op(
            "GET",
            "/orgs/{org}/budget",
            "Usage",
            "The monthly budget and this month's spending",
        )
        .ok::<crate::model::Budget>(),
        op(
            "PUT",
            "/orgs/{org}/budget",
            "Usage",
            "Set or remove the monthly budget and its hard stop (owners); alerts at 50, 80 and 100%",
        )
        .body::<usage::BudgetBody>()
        .ok::<crate::model::Budget>(),
        op(
            "GET",
            "/orgs/{org}/webhooks",
            "Webhooks",
            "Webhooks (admins)",
        )
        .ok::<Page<Webhook>>(),
        op(
            "POST",
            "/orgs/{org}/webhooks",
            "Webhooks",
            "Register a webhook (a generated secret is shown once)",
        )
        .body::<service::webhooks::WebhookInput>()
        .answers::<CreatedWebhook>(201),
        op(
            "GET",
            "/webhooks/{id}",
            "Webhooks",
            "A webhook and its health",
        )
        .ok::<Webhook>(),
        op(
            "PATCH",
            "/webhooks/{id}",
            "Webhooks",
            "Change, enable or disable a webhook",
        )
        .body::<service::webhooks::WebhookInput>()
        .ok::<Webhook>(),
        op(
            "DELETE",
            "/webhooks/{id}",
            "Webhooks",
            "Delete a webhook and its delivery log",
        ),
        op(
            "GET",
            "/webhooks/{id}/deliveries",
            "Webhooks",
            "Deliveries with every attempt, newest first",
        )
        .query::<webhooks::DeliveriesQuery>()
        .ok::<Page<WebhookDelivery>>(),
        op(
            "POST",
            "/webhooks/{id}/test",
            "Webhooks",
            "Send a test event now",
        )
        .answers::<WebhookDelivery>(202),
        op(
            "POST",
            "/webhook-deliveries/{id}/redeliver",
            "Webhooks",
            "Send a finished delivery again",
        )
        .answers::<WebhookDelivery>(202),
        op(
            "GET",
            "/orgs/{org}/model-providers",
            "Model providers",
            "Model providers with their health: breaker state, last error and success, the last hour's error rate and latency (admins)",
        )
        .ok::<Page<ModelProvider>>(),
        op(
            "POST",
            "/orgs/{org}/model-providers",
            "Model providers",
            "Add a model provider (its API key is sealed at rest and shown only as its last four characters)",
        )
        .body::<service::model_providers::ProviderInput>()
        .answers::<ModelProvider>(201),
        op(
            "GET",
            "/orgs/{org}/model-choices",
            "Model providers",
            "Providers' names and models, for choosing a project's model route (anyone who reads projects)",
        )
        .ok::<Page<ProviderChoice>>(),
        op(
            "GET",
            "/model-providers/{id}",
            "Model providers",
            "A model provider and its health",
        )
        .ok::<ModelProvider>(),
        op(
            "PATCH",
            "/model-providers/{id}",
            "Model providers",
            "Change a provider; a new api_key replaces the key (\"\" removes it) and clears a refused-key mark",
        )
        .body::<service::model_providers::ProviderInput>()
        .ok::<ModelProvider>(),
        op(
            "DELETE",
            "/model-providers/{id}",
            "Model providers",
            "Delete a provider; routes that name it skip it",
        ),
        op(
            "POST",
            "/model-providers/{id}/check",
            "Model providers",
            "Check now: a tiny request to the provider's first model, recorded like any call",
        )
        .ok::<ProviderCheck>(),
        op("GET", "/openapi.json", "Meta", "This document")
            .ok::<Value>()
            .public(),
    ]
}

/// What a path parameter is.
fn describe_param(name: &str, path: &str) -> &'static str {
    match name {
        "org" => "The organization's id or slug.",
        "user" => "A member's user id.",
        "token" => "The invitation's token, from its link.",
        "version" => "An instruction version number.",
        "name" => "An output field's name.",
        _ if path.starts_with("/jobs/") => "A job's numeric id.",
        _ if path.starts_with("/rows/") => "A row id (as job and batch documents give it).",
        _ => "The resource's id (a UUID).",
    }
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "description": describe_param(name, path),
                "schema": {"type": "string"},
            })
        })
        .collect()
}

/// A query struct's fields as parameters; `null` is dropped from their
/// types, since a query string can only leave a value out.
fn query_params(schema: &Schema) -> Vec<Value> {
    let v = schema.as_value();
    let required: Vec<&str> = v["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = v["properties"].as_object() else {
        return vec![];
    };
    props
        .iter()
        .map(|(name, prop)| {
            let mut prop = prop.clone();
            let description = prop.as_object_mut().and_then(|o| o.remove("description"));
            if let Some(types) = prop.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    prop["type"] = only;
                }
            }
            let mut p = json!({
                "name": name, "in": "query", "required": required.contains(&name.as_str()),
                "schema": prop,
            });
            if let Some(d) = description {
                p["description"] = d;
            }
            p
        })
        .collect()
}

fn operation(o: &Op, g: &mut SchemaGenerator) -> Value {
    let mut params = path_params(o.path);
    if let Some(q) = o.query {
        params.extend(query_params(&q(g)));
    }
    let error = json!({"$ref": "#/components/responses/Error"});
    let mut responses = Map::new();
    match &o.reply {
        Reply::Json(status, schema) => {
            responses.insert(
                status.to_string(),
                json!({"description": "OK", "content": {"application/json": {"schema": schema(g)}}}),
            );
        }
        Reply::Empty(status) => {
            responses.insert(status.to_string(), json!({"description": "Done; no body."}));
        }
        Reply::File(types) => {
            let content: Map<String, Value> = types
                .iter()
                .map(|t| {
                    (
                        t.to_string(),
                        json!({"schema": {"type": "string", "format": "binary"}}),
                    )
                })
                .collect();
            responses.insert(
                "200".into(),
                json!({"description": "The file, streamed; `X-Mino-Export-Id` names its history entry.", "content": content}),
            );
        }
        Reply::Frame => {
            responses.insert(
                "200".into(),
                json!({"description": "The latest frame; `X-Mino-Frame-At` says when it was taken.",
                       "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}),
            );
            responses.insert(
                "204".into(),
                json!({"description": "No frame: none taken yet, or the job is not running."}),
            );
        }
        Reply::Events => {
            responses.insert(
                "200".into(),
                json!({"description": "A stream of `snapshot` events (complete run state) until the run ends (`end`).",
                       "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
            );
        }
    }
    responses.insert("4XX".into(), error.clone());
    let mut out = json!({
        "operationId": operation_id(o),
        "summary": o.summary,
        "tags": [o.tag],
        "parameters": params,
        "responses": responses,
    });
    let csv = json!({"schema": {"type": "string"}});
    match &o.body {
        Body::None => {}
        Body::Json(schema) => {
            out["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": schema(g)}}});
        }
        Body::JsonOrCsv(schema) => {
            out["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": schema(g)}, "text/csv": csv}});
        }
        Body::ImportFile => {
            out["requestBody"] = json!({"required": true, "content": {
                "text/csv": csv,
                "application/x-ndjson": {"schema": {"type": "string"}},
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"},
                }}},
            }});
        }
        Body::CsvUpload => {
            out["requestBody"] = json!({"required": true, "content": {
                "text/csv": csv,
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "name": {"type": "string", "maxLength": 100},
                }}},
            }});
        }
    }
    if o.public {
        out["security"] = json!([]);
    }
    out
}

/// `POST /orgs/{org}/projects` → `post_orgs_org_projects`.
fn operation_id(o: &Op) -> String {
    let mut id = o.method.to_ascii_lowercase();
    for part in o.path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            id.push('_');
            id.push_str(part);
        }
    }
    id
}

fn build() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let mut paths = Map::new();
    for o in operations() {
        let item = paths
            .entry(format!("/api/v1{}", o.path))
            .or_insert_with(|| json!({}));
        item[o.method.to_ascii_lowercase()] = operation(&o, &mut g);
    }
    let mut schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": {"type": "string", "description": "What went wrong, for people."},
                "code": {"type": "string", "description": "A stable code to branch on; CSV uploads add their own (e.g. the file's problem).", "examples": [
                    "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "VALIDATION_ERROR", "INVALID_JSON",
                    "ALREADY_EXISTS", "INVALID_TOKEN", "CONFLICT", "QUOTA_EXCEEDED", "BUDGET_EXCEEDED", "BROWSER_UNAVAILABLE", "MODEL_UNAVAILABLE",
                    "RATE_LIMIT_EXCEEDED", "INTERNAL_ERROR"]},
                "details": {"description": "For VALIDATION_ERROR: `{fields: [{field, message}]}`; for CSV files, the line and column."},
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Mino API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run web-extraction agents over batches of websites and measure them against ground truth. \
                Authenticate with `Authorization: Bearer mino_pk_…` (an API key) or the session cookie. \
                Lists are `{items, next_cursor}`; pass `cursor` for the next page. \
                Requests are rate-limited per key and per organization (`RateLimit-*` headers, 429 `RATE_LIMIT_EXCEEDED`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"session": []}],
        "tags": tags(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "The request was refused: `{error, code, details}`.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key, `mino_pk_…`."},
                "session": {"type": "apiKey", "in": "cookie", "name": "mino_session", "description": "The browser session (state-changing calls also need the CSRF header)."},
            },
        },
    })
}

fn tags() -> Vec<Value> {
    let mut seen: Vec<&str> = Vec::new();
    for o in operations() {
        if !seen.contains(&o.tag) {
            seen.push(o.tag);
        }
    }
    seen.into_iter().map(|t| json!({"name": t})).collect()
}

/// The document, built once per process.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

pub async fn serve() -> crate::server::http::Json<Value> {
    crate::server::http::Json(document().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let routes: BTreeSet<(String, String)> = super::super::ROUTES
            .iter()
            .map(|(m, p)| (m.to_ascii_lowercase(), p.to_string()))
            .collect();
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.json: {missing:?}"
        );
        assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    }

    #[test]
    fn every_reference_resolves_and_ids_are_unique() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            if let Some(name) = target.strip_prefix("#/components/schemas/") {
                assert!(schemas.contains_key(name), "dangling {target}");
            } else {
                assert_eq!(target, "#/components/responses/Error");
            }
        }
        let ids: Vec<String> = operations().iter().map(operation_id).collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), unique.len());
        assert_eq!(doc["openapi"], "3.1.0");
        // Request and response types are described from the code.
        let start = &doc["paths"]["/api/v1/batches/{id}/executions"]["post"];
        assert_eq!(
            start["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/StartRequest"
        );
        assert!(schemas["Execution"]["properties"]["state"].is_object());
    }
}
