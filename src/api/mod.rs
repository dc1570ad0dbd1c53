//! Server functions, grouped by area. Each is thin: find the caller, call
//! the service, give errors their status. Their endpoints are fixed names
//! under [`RPC_PREFIX`] so the authorization-matrix test can list them.

pub mod account;
pub mod orgs;
pub mod projects;
pub mod results;

/// Where server functions are served (kept apart from the REST `/api/v1`).
pub const RPC_PREFIX: &str = "/rpc/";

/// Every server function endpoint, for the authorization-matrix test.
pub const ENDPOINTS: &[&str] = &[
    "sign_up",
    "sign_in",
    "sign_out",
    "change_password",
    "get_me",
    "create_org",
    "get_org",
    "rename_org",
    "update_limits",
    "delete_org",
    "list_members",
    "change_role",
    "remove_member",
    "invite_member",
    "list_invitations",
    "revoke_invitation",
    "get_invitation",
    "accept_invitation",
    "list_api_keys",
    "create_api_key",
    "revoke_api_key",
    "list_projects",
    "create_project",
    "load_demo_project",
    "get_project",
    "update_project",
    "delete_project",
    "save_instructions",
    "get_instructions",
    "list_versions",
    "set_production_version",
    "diff_instructions",
    "update_agent",
    "save_field",
    "delete_field",
    "list_batches",
    "get_batch",
    "list_rows",
    "rename_batch",
    "delete_batch",
    "start_execution",
    "list_executions",
    "list_project_executions",
    "get_execution",
    "get_execution_live",
    "get_execution_metrics",
    "list_execution_jobs",
    "get_job",
    "edit_ground_truth",
    "control_execution",
    "set_execution_concurrency",
    "rerun_execution",
    "bulk_ground_truth",
    "paste_ground_truth",
    "get_failure_patterns",
    "get_trends",
    "compare_executions",
    "bulk_jobs",
    "export_columns",
    "start_export",
    "get_export",
    "list_exports",
    "list_audit_log",
];
