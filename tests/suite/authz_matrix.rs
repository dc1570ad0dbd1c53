//! The authorization matrix: every REST route and every server function,
//! called by every kind of caller, answers the expected status. Each row
//! runs against a fresh organization and a fresh session, so rows can't
//! affect each other. A route or server function without a row fails.

#![cfg(feature = "ssr")]

use crate::common;

use std::collections::BTreeSet;

use common::{client, spawn_app, TestApp, PASSWORD};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Viewer,
    Member,
    Admin,
    Owner,
    /// An admin of another organization.
    Outsider,
    KeyRead,
    KeyWrite,
    KeyExecute,
    KeyAdmin,
}

const EVERYONE: [Who; 10] = [
    Who::Anonymous,
    Who::Viewer,
    Who::Member,
    Who::Admin,
    Who::Owner,
    Who::Outsider,
    Who::KeyRead,
    Who::KeyWrite,
    Who::KeyExecute,
    Who::KeyAdmin,
];

impl Who {
    fn email(self) -> Option<&'static str> {
        Some(match self {
            Who::Viewer => "viewer@example.com",
            Who::Member => "member@example.com",
            Who::Admin => "admin@example.com",
            Who::Owner => "owner@example.com",
            Who::Outsider => "outsider@example.com",
            _ => return None,
        })
    }
    fn scope(self) -> Option<&'static str> {
        Some(match self {
            Who::KeyRead => "read",
            Who::KeyWrite => "write",
            Who::KeyExecute => "execute",
            Who::KeyAdmin => "admin",
            _ => return None,
        })
    }
}

/// A fresh organization with every kind of member and key, and things to
/// act on: a member to change or remove, a pending invitation, a key.
struct Fixture {
    org: String,
    org_name: String,
    keys: Vec<(Who, String)>,
    target_user: String,
    invitation_id: String,
    invitation_token: String,
    key_id: String,
    /// An invitation addressed to the caller (to accept).
    own_token: String,
    project: String,
    batch: String,
    execution: String,
    /// A second execution of the batch (a rerun), to compare with.
    other_execution: String,
    job: String,
    /// Row 1 of the batch.
    row: String,
    /// An attempt of the job, with a screenshot and a kept page.
    attempt: String,
    /// A finished export of the execution.
    export: String,
    webhook: String,
    /// A failed delivery of the webhook (so it can be redelivered).
    delivery: String,
    /// A model provider (at a closed port: a check answers ok = false).
    provider: String,
    /// An evaluation set of the batch (row 1).
    evaluation_set: String,
    /// A running experiment of two variants over row 1.
    experiment: String,
}

const CSV: &str = "url,name,gt_price\nhttps://a.example.com,A,1\nhttps://b.example.com,B,2\n";

async fn login(app: &TestApp, email: &str) -> Client {
    let c = client();
    let r = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "login {email}");
    c
}

async fn fixture(app: &TestApp, n: usize, who: Who) -> Fixture {
    // A fresh owner session: an earlier row may have changed the owner's
    // password, which ends their other sessions.
    let owner = &login(app, "owner@example.com").await;
    let org_name = format!("Org {n}");
    let org = app.org(owner, &org_name).await;
    for (role, email) in [
        ("viewer", "viewer@example.com"),
        ("member", "member@example.com"),
        ("admin", "admin@example.com"),
        ("viewer", "target@example.com"),
    ] {
        sqlx::query("insert into memberships (org_id, user_id, role) select $1::uuid, id, $2 from users where email = $3")
            .bind(&org)
            .bind(role)
            .bind(email)
            .execute(&app.db)
            .await
            .unwrap();
    }
    let mut keys = vec![];
    for w in [Who::KeyRead, Who::KeyWrite, Who::KeyExecute, Who::KeyAdmin] {
        keys.push((w, app.key(owner, &org, &[w.scope().unwrap()]).await));
    }
    let target_user: String =
        sqlx::query_scalar("select id::text from users where email = 'target@example.com'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let r = app
        .post(
            owner,
            &format!("/api/v1/orgs/{org}/invitations"),
            json!({"email": format!("pending{n}@example.com"), "role": "member"}),
        )
        .await;
    let invitation_id = r.body["id"].as_str().unwrap().to_string();
    let invitation_token = r.body["token"].as_str().unwrap().to_string();
    let r = app
        .post(
            owner,
            &format!("/api/v1/orgs/{org}/api-keys"),
            json!({"name": "victim", "scopes": ["read"]}),
        )
        .await;
    let key_id = r.body["key"]["id"].as_str().unwrap().to_string();
    // An invitation for the caller's own address, inserted directly because
    // members can't be invited again.
    let own_email = who.email().unwrap_or("nobody@example.com");
    let own_token = format!("own-{n}-{:?}", who);
    sqlx::query("insert into invitations (org_id, email, role, token_hash, expires_at) values ($1::uuid, $2, 'member', encode(sha256(convert_to($3, 'UTF8')), 'hex'), now() + interval '1 day')")
        .bind(&org)
        .bind(own_email)
        .bind(&own_token)
        .execute(&app.db)
        .await
        .unwrap();
    let project = app.project(owner, &org, "Project").await;
    let b = app.upload(owner, &project, CSV, "name=Batch").await;
    assert_eq!(b.status, 201, "{:?}", b.body);
    let batch = b.body["id"].as_str().unwrap().to_string();
    let e = app
        .post(
            owner,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 2}),
        )
        .await;
    assert_eq!(e.status, 201, "{:?}", e.body);
    let execution = e.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            owner,
            &format!("/api/v1/executions/{execution}/rerun"),
            json!({"jobs": "all"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let other_execution = r.body["id"].as_str().unwrap().to_string();
    let job: i64 = sqlx::query_scalar("select min(id) from jobs where execution_id = $1::uuid")
        .bind(&execution)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let seq: i64 = sqlx::query_scalar("select seq from batches where id = $1::uuid")
        .bind(&batch)
        .fetch_one(&app.db)
        .await
        .unwrap();
    // An attempt with a screenshot and a kept page, as a browser job leaves.
    let attempt: i64 = sqlx::query_scalar(
        "insert into attempts (job_id, n, worker, started_at) values ($1, 99, 'fixture', now())
         returning id",
    )
    .bind(job)
    .fetch_one(&app.db)
    .await
    .unwrap();
    mino::server::db::screenshots::store(&app.db, job, 99, b"\xff\xd8 fixture")
        .await
        .unwrap();
    let page = mino::server::agents::sources::snapshot::gzip(
        "<html><head></head><body>kept</body></html>",
    );
    mino::server::db::pages::store(&app.db, job, 99, "https://shop.example/p/1", &page, 43)
        .await
        .unwrap();
    let x = app
        .post(
            owner,
            &format!("/api/v1/executions/{execution}/export"),
            json!({"format": "csv"}),
        )
        .await;
    assert_eq!(x.status, 200, "{:?}", x.body);
    let export = x.headers["x-mino-export-id"].to_str().unwrap().to_string();
    let h = app
        .post(
            owner,
            &format!("/api/v1/orgs/{org}/webhooks"),
            json!({"url": "https://hooks.example.com/mino", "events": ["job.failed"]}),
        )
        .await;
    assert_eq!(h.status, 201, "{:?}", h.body);
    let webhook = h.body["webhook"]["id"].as_str().unwrap().to_string();
    let delivery: String = sqlx::query_scalar(
        "insert into webhook_deliveries (webhook_id, org_id, event, event_id, state, attempts, finished_at)
         values ($1::uuid, $2::uuid, 'webhook.test', gen_random_uuid(), 'failed', 1, now())
         returning id::text",
    )
    .bind(&webhook)
    .bind(&org)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let m = app
        .post(
            owner,
            &format!("/api/v1/orgs/{org}/model-providers"),
            json!({"name": "Local", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                   "api_key": "sk-fixture-key", "models": [{"name": "tiny"}], "timeout_secs": 2}),
        )
        .await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let provider = m.body["id"].as_str().unwrap().to_string();
    let es = app
        .post(
            owner,
            &format!("/api/v1/batches/{batch}/evaluation-sets"),
            json!({"name": "Regressions", "rows": [1]}),
        )
        .await;
    assert_eq!(es.status, 201, "{:?}", es.body);
    let evaluation_set = es.body["id"].as_str().unwrap().to_string();
    let x = app
        .post(
            owner,
            &format!("/api/v1/projects/{project}/experiments"),
            json!({"batch": batch, "rows": {"size": 1}, "variants": [{"version": 1}, {"version": 1}]}),
        )
        .await;
    assert_eq!(x.status, 201, "{:?}", x.body);
    let experiment = x.body["id"].as_str().unwrap().to_string();
    Fixture {
        evaluation_set,
        experiment,
        provider,
        webhook,
        delivery,
        export,
        row: mino::model::row_id(seq, 1).to_string(),
        job: job.to_string(),
        attempt: attempt.to_string(),
        execution,
        other_execution,
        project,
        batch,
        org,
        org_name,
        keys,
        target_user,
        invitation_id,
        invitation_token,
        key_id,
        own_token,
    }
}

/// The caller's client (fresh session) and bearer key, if any.
async fn caller(app: &TestApp, f: &Fixture, who: Who) -> (Client, Option<String>) {
    match (who.email(), who.scope()) {
        (Some(email), _) => (login(app, email).await, None),
        (None, Some(_)) => (
            client(),
            f.keys
                .iter()
                .find(|(w, _)| *w == who)
                .map(|(_, k)| k.clone()),
        ),
        _ => (client(), None),
    }
}

type Expect = [u16; 10];

/// (anonymous, viewer, member, admin, owner, outsider, key:read, key:write, key:execute, key:admin)
const PUBLIC_200: Expect = [200; 10];
const SIGNED_IN_200: Expect = [401, 200, 200, 200, 200, 200, 200, 200, 200, 200];
const PEOPLE_ONLY: fn(u16) -> Expect = |ok| [401, ok, ok, ok, ok, ok, 403, 403, 403, 403];
const ORG_READ: fn(u16) -> Expect = |ok| [401, ok, ok, ok, ok, 404, ok, ok, ok, ok];
const ORG_ADMIN: fn(u16) -> Expect = |ok| [401, 403, 403, ok, ok, 404, 403, 403, 403, ok];
const ORG_WRITE: fn(u16) -> Expect = |ok| [401, 403, ok, ok, ok, 404, 403, ok, 403, 403];
const ORG_EXECUTE: fn(u16) -> Expect = |ok| [401, 403, ok, ok, ok, 404, 403, 403, ok, 403];
const ORG_OWNER: fn(u16) -> Expect = |ok| [401, 403, 403, 403, ok, 404, 403, 403, 403, 403];

fn rest_rows() -> Vec<(&'static str, &'static str, Expect)> {
    vec![
        ("POST", "/api/v1/auth/signup", [201; 10]),
        ("POST", "/api/v1/auth/login", PUBLIC_200),
        ("POST", "/api/v1/auth/logout", [204; 10]),
        ("GET", "/api/v1/me", SIGNED_IN_200),
        ("POST", "/api/v1/me/password", PEOPLE_ONLY(204)),
        // With a wrong password: the callers' accounts serve every other
        // row (tests/suite/data_rights.rs deletes one for real).
        ("DELETE", "/api/v1/me", PEOPLE_ONLY(400)),
        ("GET", "/api/v1/orgs", SIGNED_IN_200),
        ("POST", "/api/v1/orgs", PEOPLE_ONLY(201)),
        ("GET", "/api/v1/orgs/{org}", ORG_READ(200)),
        ("PATCH", "/api/v1/orgs/{org}", ORG_ADMIN(200)),
        ("DELETE", "/api/v1/orgs/{org}", ORG_OWNER(204)),
        ("PUT", "/api/v1/orgs/{org}/limits", ORG_OWNER(200)),
        ("POST", "/api/v1/orgs/{org}/export", ORG_OWNER(200)),
        ("GET", "/api/v1/orgs/{org}/usage", ORG_READ(200)),
        ("GET", "/api/v1/orgs/{org}/usage/export", ORG_READ(200)),
        ("GET", "/api/v1/orgs/{org}/budget", ORG_READ(200)),
        ("PUT", "/api/v1/orgs/{org}/budget", ORG_OWNER(200)),
        ("GET", "/api/v1/orgs/{org}/members", ORG_READ(200)),
        ("PATCH", "/api/v1/orgs/{org}/members/{user}", ORG_ADMIN(200)),
        (
            "DELETE",
            "/api/v1/orgs/{org}/members/{user}",
            ORG_ADMIN(204),
        ),
        ("GET", "/api/v1/orgs/{org}/invitations", ORG_ADMIN(200)),
        ("POST", "/api/v1/orgs/{org}/invitations", ORG_ADMIN(201)),
        (
            "DELETE",
            "/api/v1/orgs/{org}/invitations/{id}",
            ORG_ADMIN(204),
        ),
        ("GET", "/api/v1/invitations/{token}", PUBLIC_200),
        (
            "POST",
            "/api/v1/invitations/{token}/accept",
            PEOPLE_ONLY(200),
        ),
        ("GET", "/api/v1/orgs/{org}/api-keys", ORG_ADMIN(200)),
        ("POST", "/api/v1/orgs/{org}/api-keys", ORG_ADMIN(201)),
        ("DELETE", "/api/v1/api-keys/{id}", ORG_ADMIN(204)),
        ("GET", "/api/v1/orgs/{org}/projects", ORG_READ(200)),
        ("POST", "/api/v1/orgs/{org}/projects", ORG_WRITE(201)),
        ("POST", "/api/v1/orgs/{org}/demo-project", ORG_WRITE(201)),
        ("GET", "/api/v1/projects/{id}", ORG_READ(200)),
        ("PATCH", "/api/v1/projects/{id}", ORG_WRITE(200)),
        ("DELETE", "/api/v1/projects/{id}", ORG_ADMIN(204)),
        ("GET", "/api/v1/projects/{id}/instructions", ORG_READ(200)),
        ("POST", "/api/v1/projects/{id}/instructions", ORG_WRITE(201)),
        (
            "GET",
            "/api/v1/projects/{id}/instructions/diff",
            ORG_READ(200),
        ),
        (
            "GET",
            "/api/v1/projects/{id}/instructions/{version}",
            ORG_READ(200),
        ),
        ("GET", "/api/v1/projects/{id}/versions", ORG_READ(200)),
        ("GET", "/api/v1/projects/{id}/versions/diff", ORG_READ(200)),
        (
            "PUT",
            "/api/v1/projects/{id}/production-version",
            ORG_WRITE(200),
        ),
        ("PATCH", "/api/v1/projects/{id}/agent", ORG_WRITE(200)),
        ("POST", "/api/v1/projects/{id}/fields", ORG_WRITE(201)),
        (
            "PATCH",
            "/api/v1/projects/{id}/fields/{name}",
            ORG_WRITE(200),
        ),
        (
            "DELETE",
            "/api/v1/projects/{id}/fields/{name}",
            ORG_WRITE(200),
        ),
        ("GET", "/api/v1/projects/{id}/grid-columns", ORG_READ(200)),
        // A person's own preference: keys read the default, can't save.
        (
            "PUT",
            "/api/v1/projects/{id}/grid-columns",
            [401, 200, 200, 200, 200, 404, 403, 403, 403, 403],
        ),
        ("GET", "/api/v1/projects/{id}/batches", ORG_READ(200)),
        ("POST", "/api/v1/projects/{id}/batches", ORG_WRITE(201)),
        (
            "POST",
            "/api/v1/projects/{id}/batches/preview",
            ORG_WRITE(200),
        ),
        ("GET", "/api/v1/batches/{id}", ORG_READ(200)),
        ("PATCH", "/api/v1/batches/{id}", ORG_WRITE(200)),
        ("DELETE", "/api/v1/batches/{id}", ORG_ADMIN(204)),
        ("GET", "/api/v1/batches/{id}/rows", ORG_READ(200)),
        ("GET", "/api/v1/batches/{id}/executions", ORG_READ(200)),
        ("POST", "/api/v1/batches/{id}/executions", ORG_EXECUTE(201)),
        ("GET", "/api/v1/executions/{id}", ORG_READ(200)),
        ("POST", "/api/v1/executions/{id}/pause", ORG_EXECUTE(200)),
        // The fixture's execution is running, so resuming it is a conflict:
        // the row still shows who gets past the permission check.
        ("POST", "/api/v1/executions/{id}/resume", ORG_EXECUTE(409)),
        ("POST", "/api/v1/executions/{id}/stop", ORG_EXECUTE(200)),
        (
            "PUT",
            "/api/v1/executions/{id}/concurrency",
            ORG_EXECUTE(200),
        ),
        ("POST", "/api/v1/executions/{id}/rerun", ORG_EXECUTE(201)),
        // The fixture's project has no model route: allowed callers are
        // told what to set up (the suite's llm tests cover the answer).
        (
            "POST",
            "/api/v1/executions/{id}/suggest-instructions",
            ORG_WRITE(409),
        ),
        ("GET", "/api/v1/executions/{id}/events", ORG_READ(200)),
        ("GET", "/api/v1/executions/{id}/metrics", ORG_READ(200)),
        ("GET", "/api/v1/executions/{id}/jobs", ORG_READ(200)),
        ("GET", "/api/v1/jobs/{id}", ORG_READ(200)),
        ("GET", "/api/v1/jobs/{id}/live-frame", ORG_READ(204)),
        ("PATCH", "/api/v1/rows/{id}/ground-truth", ORG_WRITE(200)),
        ("GET", "/api/v1/rows/{id}/history", ORG_READ(200)),
        ("GET", "/api/v1/attempts/{id}/screenshot", ORG_READ(200)),
        ("GET", "/api/v1/attempts/{id}/page", ORG_READ(200)),
        (
            "POST",
            "/api/v1/batches/{id}/ground-truth/bulk-set",
            ORG_WRITE(200),
        ),
        (
            "POST",
            "/api/v1/batches/{id}/ground-truth/bulk-edit",
            ORG_WRITE(200),
        ),
        ("POST", "/api/v1/batches/{id}/imports", ORG_EXECUTE(201)),
        ("GET", "/api/v1/batches/{id}/trends", ORG_READ(200)),
        (
            "GET",
            "/api/v1/executions/{id}/failure-patterns",
            ORG_READ(200),
        ),
        ("GET", "/api/v1/executions/compare", ORG_READ(200)),
        ("POST", "/api/v1/jobs/bulk/delete", ORG_ADMIN(200)),
        ("POST", "/api/v1/jobs/bulk/rerun", ORG_EXECUTE(200)),
        ("POST", "/api/v1/jobs/bulk/update", ORG_EXECUTE(200)),
        ("POST", "/api/v1/executions/{id}/export", ORG_READ(200)),
        ("POST", "/api/v1/batches/{id}/export", ORG_READ(200)),
        ("GET", "/api/v1/batches/{id}/exports", ORG_READ(200)),
        ("GET", "/api/v1/exports/{id}", ORG_READ(200)),
        ("GET", "/api/v1/exports/{id}/download", ORG_READ(200)),
        ("GET", "/api/v1/orgs/{org}/audit-log", ORG_ADMIN(200)),
        ("GET", "/api/v1/orgs/{org}/audit-log/export", ORG_ADMIN(200)),
        ("GET", "/api/v1/orgs/{org}/webhooks", ORG_ADMIN(200)),
        ("POST", "/api/v1/orgs/{org}/webhooks", ORG_ADMIN(201)),
        ("GET", "/api/v1/webhooks/{id}", ORG_ADMIN(200)),
        ("PATCH", "/api/v1/webhooks/{id}", ORG_ADMIN(200)),
        ("DELETE", "/api/v1/webhooks/{id}", ORG_ADMIN(204)),
        ("GET", "/api/v1/webhooks/{id}/deliveries", ORG_ADMIN(200)),
        ("POST", "/api/v1/webhooks/{id}/test", ORG_ADMIN(202)),
        (
            "POST",
            "/api/v1/webhook-deliveries/{id}/redeliver",
            ORG_ADMIN(202),
        ),
        ("GET", "/api/v1/orgs/{org}/model-providers", ORG_ADMIN(200)),
        ("POST", "/api/v1/orgs/{org}/model-providers", ORG_ADMIN(201)),
        ("GET", "/api/v1/orgs/{org}/model-choices", ORG_READ(200)),
        ("GET", "/api/v1/model-providers/{id}", ORG_ADMIN(200)),
        ("PATCH", "/api/v1/model-providers/{id}", ORG_ADMIN(200)),
        ("DELETE", "/api/v1/model-providers/{id}", ORG_ADMIN(204)),
        ("POST", "/api/v1/model-providers/{id}/check", ORG_ADMIN(200)),
        ("GET", "/api/v1/batches/{id}/evaluation-sets", ORG_READ(200)),
        (
            "POST",
            "/api/v1/batches/{id}/evaluation-sets",
            ORG_EXECUTE(201),
        ),
        ("GET", "/api/v1/evaluation-sets/{id}", ORG_READ(200)),
        ("DELETE", "/api/v1/evaluation-sets/{id}", ORG_EXECUTE(204)),
        ("GET", "/api/v1/projects/{id}/experiments", ORG_READ(200)),
        (
            "POST",
            "/api/v1/projects/{id}/experiments",
            ORG_EXECUTE(201),
        ),
        ("GET", "/api/v1/experiments/{id}", ORG_READ(200)),
        ("GET", "/api/v1/experiments/{id}/rows", ORG_READ(200)),
        ("POST", "/api/v1/experiments/{id}/pause", ORG_EXECUTE(200)),
        // Its variants are running: resuming is a conflict.
        ("POST", "/api/v1/experiments/{id}/resume", ORG_EXECUTE(409)),
        ("POST", "/api/v1/experiments/{id}/stop", ORG_EXECUTE(200)),
        ("POST", "/api/v1/experiments/{id}/promote", ORG_WRITE(200)),
        ("GET", "/api/v1/openapi.json", PUBLIC_200),
    ]
}

fn rest_request(route: &str, f: &Fixture, who: Who, n: usize) -> (String, Option<Value>) {
    let own_email = who.email().unwrap_or("loner@example.com");
    let mut path = route
        .replace("projects/{id}", &format!("projects/{}", f.project))
        .replace("batches/{id}", &format!("batches/{}", f.batch))
        .replace("executions/{id}", &format!("executions/{}", f.execution))
        .replace("jobs/{id}", &format!("jobs/{}", f.job))
        .replace("rows/{id}", &format!("rows/{}", f.row))
        .replace("attempts/{id}", &format!("attempts/{}", f.attempt))
        .replace("exports/{id}", &format!("exports/{}", f.export))
        .replace("webhooks/{id}", &format!("webhooks/{}", f.webhook))
        .replace(
            "evaluation-sets/{id}",
            &format!("evaluation-sets/{}", f.evaluation_set),
        )
        .replace("experiments/{id}", &format!("experiments/{}", f.experiment))
        .replace(
            "model-providers/{id}",
            &format!("model-providers/{}", f.provider),
        )
        .replace(
            "webhook-deliveries/{id}",
            &format!("webhook-deliveries/{}", f.delivery),
        )
        .replace("{version}", "1")
        .replace("fields/{name}", "fields/price")
        .replace("{org}", &f.org)
        .replace("{user}", &f.target_user)
        .replace(
            "invitations/{id}",
            &format!("invitations/{}", f.invitation_id),
        )
        .replace("api-keys/{id}", &format!("api-keys/{}", f.key_id))
        .replace(
            "invitations/{token}/accept",
            &format!("invitations/{}/accept", f.own_token),
        )
        .replace("{token}", &f.invitation_token);
    if route.ends_with("/diff") {
        path.push_str("?a=1&b=1");
    }
    if route.ends_with("/compare") {
        path.push_str(&format!("?a={}&b={}", f.execution, f.other_execution));
    }
    let body = match route {
        "/api/v1/auth/signup" => Some(
            json!({"email": format!("new{n}@example.com"), "password": PASSWORD, "name": "New"}),
        ),
        "/api/v1/auth/login" => Some(json!({"email": own_email, "password": PASSWORD})),
        "/api/v1/me/password" => {
            Some(json!({"current_password": PASSWORD, "new_password": PASSWORD}))
        }
        // DELETE: deleting the account (GET ignores the body).
        "/api/v1/me" => Some(json!({"password": "not the password"})),
        "/api/v1/orgs" | "/api/v1/orgs/{org}" => Some(json!({"name": "Renamed"})),
        "/api/v1/orgs/{org}/limits" => {
            Some(json!({"max_projects": 10, "max_executions_per_month": 10}))
        }
        "/api/v1/orgs/{org}/budget" => Some(json!({"monthly": 1000, "hard_stop": false})),
        "/api/v1/orgs/{org}/members/{user}" => Some(json!({"role": "member"})),
        "/api/v1/orgs/{org}/invitations" => {
            Some(json!({"email": format!("inv{n}@example.com"), "role": "viewer"}))
        }
        "/api/v1/orgs/{org}/api-keys" => Some(json!({"name": "k", "scopes": ["read"]})),
        "/api/v1/orgs/{org}/projects" => Some(json!({"name": format!("New {n}")})),
        "/api/v1/projects/{id}" => Some(json!({"description": "Described"})),
        "/api/v1/projects/{id}/instructions" => {
            Some(json!({"instructions": format!("Version {n}")}))
        }
        "/api/v1/projects/{id}/production-version" => Some(json!({"version": 1})),
        "/api/v1/projects/{id}/agent" => Some(json!({"timeout_secs": 20})),
        "/api/v1/projects/{id}/fields" => Some(json!({"name": "title"})),
        "/api/v1/projects/{id}/fields/{name}" => Some(json!({"comparator": "exact"})),
        "/api/v1/projects/{id}/grid-columns" => Some(json!({"shown": ["result", "site"]})),
        "/api/v1/batches/{id}/evaluation-sets" => Some(json!({"name": "Set", "rows": [1, 2]})),
        "/api/v1/projects/{id}/experiments" => Some(
            json!({"batch": f.batch, "rows": {"size": 1}, "variants": [{"version": 1}, {"version": 1}]}),
        ),
        "/api/v1/experiments/{id}/promote" => Some(json!({"variant": "A"})),
        "/api/v1/batches/{id}" => Some(json!({"name": "Renamed"})),
        "/api/v1/batches/{id}/executions" => Some(json!({"mode": "test", "sample_size": 1})),
        "/api/v1/executions/{id}/concurrency" => Some(json!({"concurrency": 5})),
        "/api/v1/executions/{id}/rerun" => Some(json!({"jobs": "all"})),
        "/api/v1/rows/{id}/ground-truth" => Some(json!({"version": 1, "values": {"price": "3"}})),
        "/api/v1/batches/{id}/ground-truth/bulk-set" => {
            Some(json!({"rows": [{"row": 1, "values": {"price": "9"}}]}))
        }
        "/api/v1/batches/{id}/ground-truth/bulk-edit" => {
            Some(json!({"operation": "set", "field": "price", "value": "7"}))
        }
        "/api/v1/jobs/bulk/delete" | "/api/v1/jobs/bulk/rerun" => {
            Some(json!({"job_ids": [f.job.parse::<i64>().unwrap()]}))
        }
        "/api/v1/jobs/bulk/update" => {
            Some(json!({"job_ids": [f.job.parse::<i64>().unwrap()], "state": "cancelled"}))
        }
        "/api/v1/executions/{id}/export" | "/api/v1/batches/{id}/export" => {
            Some(json!({"format": "csv"}))
        }
        "/api/v1/orgs/{org}/webhooks" => {
            Some(json!({"url": format!("https://hooks.example.com/{n}")}))
        }
        "/api/v1/webhooks/{id}" => Some(json!({"description": "Changed"})),
        "/api/v1/orgs/{org}/model-providers" => Some(json!({
            "name": format!("Provider {n}"), "kind": "anthropic", "models": [{"name": "claude"}]
        })),
        "/api/v1/model-providers/{id}" => Some(json!({"timeout_secs": 3})),
        _ => None,
    };
    (path, body)
}

fn rpc_rows() -> Vec<(&'static str, Expect)> {
    // Server functions serve the browser: a bearer key is not a session, so
    // key callers are anonymous to them.
    let user_only = |ok: u16| -> Expect { [401, ok, ok, ok, ok, ok, 401, 401, 401, 401] };
    let org_read = |ok: u16| -> Expect { [401, ok, ok, ok, ok, 404, 401, 401, 401, 401] };
    let org_admin = |ok: u16| -> Expect { [401, 403, 403, ok, ok, 404, 401, 401, 401, 401] };
    let org_owner = |ok: u16| -> Expect { [401, 403, 403, 403, ok, 404, 401, 401, 401, 401] };
    let org_write = |ok: u16| -> Expect { [401, 403, ok, ok, ok, 404, 401, 401, 401, 401] };
    vec![
        ("sign_up", PUBLIC_200),
        ("sign_in", PUBLIC_200),
        ("sign_out", PUBLIC_200),
        ("change_password", user_only(200)),
        ("get_account_deletion", user_only(200)),
        // A wrong password, as in the REST row.
        ("delete_account", user_only(400)),
        ("get_me", PUBLIC_200),
        ("create_org", user_only(200)),
        ("get_org", org_read(200)),
        ("rename_org", org_admin(200)),
        ("set_retention", org_admin(200)),
        ("update_limits", org_owner(200)),
        ("get_usage", org_read(200)),
        ("get_guide", org_read(200)),
        ("set_guide_dismissed", org_read(200)),
        ("get_budget", org_read(200)),
        ("set_budget", org_owner(200)),
        ("delete_org", org_owner(200)),
        ("list_members", org_read(200)),
        ("change_role", org_admin(200)),
        ("remove_member", org_admin(200)),
        ("invite_member", org_admin(200)),
        ("list_invitations", org_admin(200)),
        ("revoke_invitation", org_admin(200)),
        ("get_invitation", PUBLIC_200),
        ("accept_invitation", user_only(200)),
        ("list_api_keys", org_admin(200)),
        ("create_api_key", org_admin(200)),
        ("revoke_api_key", org_admin(200)),
        ("list_projects", org_read(200)),
        ("create_project", org_write(200)),
        ("load_demo_project", org_write(200)),
        ("get_project", org_read(200)),
        ("update_project", org_write(200)),
        ("delete_project", org_admin(200)),
        ("save_instructions", org_write(200)),
        ("get_instructions", org_read(200)),
        ("list_versions", org_read(200)),
        ("set_production_version", org_write(200)),
        ("diff_instructions", org_read(200)),
        ("diff_versions", org_read(200)),
        ("update_agent", org_write(200)),
        ("save_field", org_write(200)),
        ("delete_field", org_write(200)),
        ("list_batches", org_read(200)),
        ("get_batch", org_read(200)),
        ("list_rows", org_read(200)),
        ("rename_batch", org_write(200)),
        ("delete_batch", org_admin(200)),
        ("start_execution", org_write(200)),
        ("suggest_instructions", org_write(409)),
        ("list_evaluation_sets", org_read(200)),
        ("create_evaluation_set", org_write(200)),
        ("delete_evaluation_set", org_write(200)),
        ("list_experiments", org_read(200)),
        ("create_experiment", org_write(200)),
        ("get_experiment", org_read(200)),
        ("list_experiment_rows", org_read(200)),
        ("control_experiment", org_write(200)),
        ("promote_experiment", org_write(200)),
        ("list_executions", org_read(200)),
        ("list_project_executions", org_read(200)),
        ("get_execution", org_read(200)),
        ("get_execution_live", org_read(200)),
        ("get_execution_metrics", org_read(200)),
        ("list_execution_jobs", org_read(200)),
        ("get_job", org_read(200)),
        ("get_grid_columns", org_read(200)),
        ("save_grid_columns", org_read(200)),
        ("edit_ground_truth", org_write(200)),
        ("save_expected_value", org_write(200)),
        ("control_execution", org_write(200)),
        ("set_execution_concurrency", org_write(200)),
        ("rerun_execution", org_write(200)),
        ("bulk_ground_truth", org_write(200)),
        ("paste_ground_truth", org_write(200)),
        ("get_failure_patterns", org_read(200)),
        ("get_trends", org_read(200)),
        ("compare_executions", org_read(200)),
        // Cancelling queued jobs: members and up.
        ("bulk_jobs", org_write(200)),
        ("export_columns", org_read(200)),
        ("start_export", org_read(200)),
        ("get_export", org_read(200)),
        ("list_exports", org_read(200)),
        ("list_audit_log", org_admin(200)),
        ("list_webhooks", org_admin(200)),
        ("create_webhook", org_admin(200)),
        ("update_webhook", org_admin(200)),
        ("set_webhook_enabled", org_admin(200)),
        ("delete_webhook", org_admin(200)),
        ("list_webhook_deliveries", org_admin(200)),
        ("test_webhook", org_admin(200)),
        ("redeliver_webhook", org_admin(200)),
        ("list_model_providers", org_admin(200)),
        ("list_model_choices", org_read(200)),
        ("create_model_provider", org_admin(200)),
        ("update_model_provider", org_admin(200)),
        ("set_model_provider_enabled", org_admin(200)),
        ("delete_model_provider", org_admin(200)),
        ("check_model_provider", org_admin(200)),
    ]
}

fn rpc_args(endpoint: &str, f: &Fixture, who: Who, n: usize) -> Vec<(&'static str, String)> {
    let own_email = who.email().unwrap_or("loner@example.com").to_string();
    let org = || ("org", f.org.clone());
    let project = || ("id", f.project.clone());
    match endpoint {
        "sign_up" => vec![
            ("name", "New".into()),
            ("email", format!("rpc{n}@example.com")),
            ("password", PASSWORD.into()),
        ],
        "sign_in" => vec![("email", own_email), ("password", PASSWORD.into())],
        "change_password" => vec![
            ("current_password", PASSWORD.into()),
            ("new_password", PASSWORD.into()),
        ],
        "delete_account" => vec![("password", "not the password".into())],
        "create_org" => vec![("name", "Made by rpc".into())],
        "get_org" | "list_members" | "list_invitations" | "list_api_keys" | "get_usage"
        | "get_budget" | "get_guide" => vec![org()],
        "set_guide_dismissed" => vec![org(), ("dismissed", "true".into())],
        "set_budget" => vec![org(), ("monthly", "1,000".into())],
        "rename_org" => vec![org(), ("name", "Renamed".into())],
        "set_retention" => vec![org(), ("retention_days", "14".into())],
        "update_limits" => vec![
            org(),
            ("max_projects", "10".into()),
            ("max_executions_per_month", "1,000".into()),
        ],
        "delete_org" => vec![org(), ("confirm", f.org_name.clone())],
        "change_role" => vec![
            org(),
            ("user_id", f.target_user.clone()),
            ("role", "member".into()),
        ],
        "remove_member" => vec![org(), ("user_id", f.target_user.clone())],
        "invite_member" => vec![
            org(),
            ("email", format!("rpcinv{n}@example.com")),
            ("role", "viewer".into()),
        ],
        "revoke_invitation" => vec![org(), ("id", f.invitation_id.clone())],
        "get_invitation" => vec![("token", f.invitation_token.clone())],
        "accept_invitation" => vec![("token", f.own_token.clone())],
        "create_api_key" => vec![org(), ("name", "k".into()), ("scope_read", "on".into())],
        "revoke_api_key" => vec![("id", f.key_id.clone())],
        "list_projects" | "load_demo_project" => vec![org()],
        "create_project" => vec![
            org(),
            ("name", format!("Rpc {n}")),
            ("description", String::new()),
        ],
        "get_project" | "list_versions" | "get_instructions" => vec![project()],
        "get_grid_columns" => vec![("project", f.project.clone())],
        "save_grid_columns" => vec![
            ("project", f.project.clone()),
            ("shown", "result,site".into()),
        ],
        "update_project" => vec![
            project(),
            ("name", "Project".into()),
            ("description", "d".into()),
        ],
        "delete_project" => vec![project(), ("confirm", "Project".into())],
        "save_instructions" => vec![
            project(),
            ("instructions", format!("v {n}")),
            ("note", String::new()),
        ],
        "set_production_version" => vec![project(), ("version", "1".into())],
        "diff_instructions" | "diff_versions" => {
            vec![project(), ("a", "1".into()), ("b", "1".into())]
        }
        "update_agent" => vec![
            project(),
            ("kind", "http".into()),
            ("remote_url", String::new()),
            ("timeout_secs", "20".into()),
            ("max_retries", "2".into()),
            ("price_per_job", "0.01".into()),
        ],
        "save_field" => {
            let mut args = vec![
                project(),
                ("existing", "price".into()),
                ("name", "price".into()),
                ("field_type", "number".into()),
                ("comparator", "number".into()),
            ];
            for k in [
                "tolerance",
                "threshold",
                "selector",
                "attribute",
                "path",
                "meta_name",
                "pattern",
            ] {
                args.push((k, String::new()));
            }
            args.push(("rule_kind", "auto".into()));
            args
        }
        "delete_field" => vec![project(), ("name", "price".into())],
        "list_batches" => vec![("project", f.project.clone())],
        "get_batch" => vec![("id", f.batch.clone())],
        "list_rows" => vec![("id", f.batch.clone()), ("q", String::new())],
        "rename_batch" => vec![("id", f.batch.clone()), ("name", "Renamed".into())],
        "delete_batch" => vec![("id", f.batch.clone()), ("confirm", "Batch".into())],
        "start_execution" => vec![
            ("batch", f.batch.clone()),
            ("mode", "test".into()),
            ("sample_size", "1".into()),
            ("sample", "first".into()),
            ("concurrency", "2".into()),
        ],
        "list_evaluation_sets" => vec![("batch", f.batch.clone())],
        "suggest_instructions" => vec![("id", f.execution.clone())],
        "create_evaluation_set" => vec![
            ("batch", f.batch.clone()),
            ("name", "From the form".into()),
            ("rows", "1-2".into()),
        ],
        "delete_evaluation_set" => vec![("id", f.evaluation_set.clone())],
        "list_experiments" => vec![("project", f.project.clone())],
        "create_experiment" => vec![
            ("project", f.project.clone()),
            (
                "request",
                json!({"batch": f.batch, "rows": {"size": 1}, "variants": [{"version": 1}, {"version": 1}]})
                    .to_string(),
            ),
        ],
        "get_experiment" => vec![("id", f.experiment.clone())],
        "list_experiment_rows" => vec![("id", f.experiment.clone()), ("offset", "0".into())],
        "control_experiment" => vec![("id", f.experiment.clone()), ("action", "pause".into())],
        "promote_experiment" => vec![("id", f.experiment.clone()), ("variant", "1".into())],
        "list_executions" => vec![("batch", f.batch.clone())],
        "list_project_executions" => vec![("project", f.project.clone())],
        "get_execution" => vec![("id", f.execution.clone())],
        "get_execution_live" => vec![("id", f.execution.clone())],
        "get_execution_metrics" => vec![("id", f.execution.clone())],
        "list_execution_jobs" => vec![("id", f.execution.clone())],
        "get_job" => vec![("id", f.job.clone())],
        "edit_ground_truth" => vec![
            ("row", f.row.clone()),
            ("version", "1".into()),
            ("field", "price".into()),
            ("value", "5".into()),
        ],
        "save_expected_value" => vec![
            ("job", f.job.clone()),
            ("version", "1".into()),
            ("field", "price".into()),
            ("value", "6".into()),
        ],
        "control_execution" => vec![("id", f.execution.clone()), ("action", "pause".into())],
        "set_execution_concurrency" => {
            vec![("id", f.execution.clone()), ("concurrency", "3".into())]
        }
        "rerun_execution" => vec![("id", f.execution.clone()), ("jobs", "all".into())],
        "bulk_ground_truth" => vec![
            ("batch", f.batch.clone()),
            ("execution", f.execution.clone()),
            ("operation", "set".into()),
            ("field", "price".into()),
            ("value", "8".into()),
            ("job_ids", f.job.clone()),
            ("all_matching", "false".into()),
            ("preview", "false".into()),
        ],
        "paste_ground_truth" => vec![
            ("batch", f.batch.clone()),
            ("field", "price".into()),
            ("text", "1\t4".into()),
            ("preview", "false".into()),
        ],
        "get_failure_patterns" => vec![("id", f.execution.clone())],
        "get_trends" => vec![("batch", f.batch.clone())],
        "compare_executions" => vec![("a", f.execution.clone()), ("b", f.other_execution.clone())],
        "bulk_jobs" => vec![
            ("execution", f.execution.clone()),
            ("action", "update".into()),
            ("job_ids", f.job.clone()),
            ("all_matching", "false".into()),
        ],
        "export_columns" => vec![("execution", f.execution.clone())],
        "start_export" => vec![
            ("execution", f.execution.clone()),
            ("format", "json".into()),
            ("columns", "row,url".into()),
        ],
        "get_export" => vec![("id", f.export.clone())],
        "list_exports" => vec![("batch", f.batch.clone())],
        "list_audit_log" => vec![org(), ("action", "project.".into())],
        "list_webhooks" => vec![org()],
        "create_webhook" => vec![
            org(),
            ("url", format!("https://hooks.example.com/{n}")),
            ("event_job_failed", "on".into()),
        ],
        "update_webhook" => vec![
            ("id", f.webhook.clone()),
            ("url", "https://hooks.example.com/changed".into()),
            ("event_execution_completed", "on".into()),
        ],
        "set_webhook_enabled" => vec![("id", f.webhook.clone()), ("enabled", "false".into())],
        "delete_webhook" | "list_webhook_deliveries" | "test_webhook" => {
            vec![("id", f.webhook.clone())]
        }
        "redeliver_webhook" => vec![("delivery", f.delivery.clone())],
        "list_model_providers" | "list_model_choices" => vec![org()],
        "create_model_provider" => vec![
            org(),
            ("name", format!("Provider {n}")),
            ("kind", "gemini".into()),
            ("base_url", String::new()),
            ("models", "gemini-flash 0.1 0.4".into()),
        ],
        "update_model_provider" => vec![
            ("id", f.provider.clone()),
            ("name", "Local".into()),
            ("base_url", "http://127.0.0.1:9/v1".into()),
            ("models", "tiny".into()),
        ],
        "set_model_provider_enabled" => {
            vec![("id", f.provider.clone()), ("enabled", "false".into())]
        }
        "delete_model_provider" | "check_model_provider" => vec![("id", f.provider.clone())],
        _ => vec![],
    }
}

/// How many audit entries a successful call of a mutating route leaves:
/// one per change, none for signing in and out or for a preview, two for
/// the demo (a project and its batch, and the organization's local-model
/// provider where this machine has the local model); none for a person's
/// own grid columns (a view preference, not a change to shared data).
fn demo_audit_entries() -> usize {
    2 + usize::from(mino::server::agents::llm::local::available())
}

fn rest_audit_entries(route: &str) -> usize {
    match route {
        "/api/v1/auth/login"
        | "/api/v1/auth/logout"
        | "/api/v1/projects/{id}/batches/preview"
        | "/api/v1/projects/{id}/grid-columns" => 0,
        "/api/v1/orgs/{org}/demo-project" => demo_audit_entries(),
        _ => 1,
    }
}

fn rpc_audit_entries(endpoint: &str) -> usize {
    let reads = ["get_", "list_", "diff_", "compare_", "export_columns"];
    match endpoint {
        // A person's view preferences, like the grid's columns.
        "sign_in" | "sign_out" | "save_grid_columns" | "set_guide_dismissed" => 0,
        "load_demo_project" => demo_audit_entries(),
        e if reads.iter().any(|r| e.starts_with(r)) => 0,
        _ => 1,
    }
}

/// (user, key, action, address) of an audit entry.
type AuditRow = (
    Option<uuid::Uuid>,
    Option<uuid::Uuid>,
    String,
    Option<String>,
);

/// The newest audit entry's id before a call.
async fn audit_mark(db: &PgPool) -> i64 {
    sqlx::query_scalar("select coalesce(max(id), 0) from audit_log")
        .fetch_one(db)
        .await
        .unwrap()
}

/// The call left exactly `want` entries, each naming the caller (the new
/// account, for a sign-up) and the client's address.
async fn check_audit(
    app: &TestApp,
    f: &Fixture,
    who: Who,
    mark: i64,
    want: usize,
    is_signup: bool,
) -> Result<(), String> {
    let entries: Vec<AuditRow> = sqlx::query_as(
        "select actor_user_id, actor_key_id, action, ip from audit_log where id > $1 order by id",
    )
    .bind(mark)
    .fetch_all(&app.db)
    .await
    .unwrap();
    if entries.len() != want {
        let actions: Vec<&str> = entries.iter().map(|e| e.2.as_str()).collect();
        return Err(format!(
            "{} audit entries {actions:?}, want {want}",
            entries.len()
        ));
    }
    let (user, key): (Option<uuid::Uuid>, Option<uuid::Uuid>) = match (who.email(), who.scope()) {
        (Some(email), _) => (
            sqlx::query_scalar("select id from users where email = $1")
                .bind(email)
                .fetch_optional(&app.db)
                .await
                .unwrap(),
            None,
        ),
        (None, Some(_)) => {
            let secret = f
                .keys
                .iter()
                .find(|(w, _)| *w == who)
                .map(|(_, k)| k.clone());
            let id = sqlx::query_scalar(
                "select id from api_keys where key_hash = encode(sha256(convert_to($1, 'utf8')), 'hex')",
            )
            .bind(secret)
            .fetch_optional(&app.db)
            .await
            .unwrap();
            (None, id)
        }
        _ => (None, None),
    };
    for (u, k, action, ip) in &entries {
        if is_signup {
            if action != "account.sign_up" || u.is_none() {
                return Err(format!("sign-up left {action} by {u:?}"));
            }
        } else if (*u, *k) != (user, key) {
            return Err(format!(
                "{action} recorded actor {u:?}/{k:?}, want {user:?}/{key:?}"
            ));
        }
        if ip.as_deref() != Some("127.0.0.1") {
            return Err(format!("{action} recorded address {ip:?}"));
        }
    }
    Ok(())
}

async fn setup(app: &TestApp) {
    for who in EVERYONE {
        if let Some(email) = who.email() {
            app.user(email, &format!("{who:?}")).await;
        }
    }
    app.user("loner@example.com", "Loner").await;
    app.user("target@example.com", "Target").await;
    let outsider = login(app, "outsider@example.com").await;
    app.org(&outsider, "Elsewhere").await;
}

#[sqlx::test]
async fn every_rest_route_answers_each_caller_as_expected(db: PgPool) {
    let app = spawn_app(db).await;
    setup(&app).await;
    let mut failures = vec![];
    let mut n = 0;
    for (method, route, expected) in rest_rows() {
        for (i, who) in EVERYONE.into_iter().enumerate() {
            n += 1;
            let f = fixture(&app, n, who).await;
            let (c, key) = caller(&app, &f, who).await;
            let (path, body) = rest_request(route, &f, who, n);
            let mark = audit_mark(&app.db).await;
            let is_upload =
                method == "POST" && (route.ends_with("/batches") || route.ends_with("/preview"));
            let r = if route.ends_with("/events") {
                // A live stream doesn't end while the execution runs: only
                // the status and headers matter here.
                let mut req = c.get(app.url(&path));
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                let res = req.send().await.expect("request");
                let status = res.status();
                let headers = res.headers().clone();
                let body = if status.is_success() {
                    Value::Null
                } else {
                    serde_json::from_str(&res.text().await.unwrap_or_default())
                        .unwrap_or(Value::Null)
                };
                common::Res {
                    status,
                    headers,
                    body,
                }
            } else if route.ends_with("/imports") {
                app.send_bytes(
                    &c,
                    &path,
                    b"row,price\n1,9\n".to_vec(),
                    "text/csv",
                    key.as_deref(),
                )
                .await
            } else if is_upload {
                app.send_bytes(
                    &c,
                    &path,
                    CSV.as_bytes().to_vec(),
                    "text/csv",
                    key.as_deref(),
                )
                .await
            } else {
                app.call(
                    &c,
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &path,
                    body,
                    key.as_deref(),
                )
                .await
            };
            if r.status.as_u16() != expected[i] {
                failures.push(format!(
                    "{method} {route} as {who:?}: got {} want {} ({})",
                    r.status, expected[i], r.body
                ));
            }
            let want = if !r.status.is_success() || method == "GET" {
                0
            } else {
                rest_audit_entries(route)
            };
            if let Err(e) =
                check_audit(&app, &f, who, mark, want, route == "/api/v1/auth/signup").await
            {
                failures.push(format!("{method} {route} as {who:?}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[sqlx::test]
async fn every_server_function_answers_each_caller_as_expected(db: PgPool) {
    let app = spawn_app(db).await;
    setup(&app).await;
    let mut failures = vec![];
    let mut n = 0;
    for (endpoint, expected) in rpc_rows() {
        for (i, who) in EVERYONE.into_iter().enumerate() {
            n += 1;
            let f = fixture(&app, n, who).await;
            let (c, key) = caller(&app, &f, who).await;
            let mut req = c
                .post(app.url(&format!("/rpc/{endpoint}")))
                .form(&rpc_args(endpoint, &f, who, n));
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            let mark = audit_mark(&app.db).await;
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            if status != expected[i] {
                let body = r.text().await.unwrap_or_default();
                failures.push(format!(
                    "rpc {endpoint} as {who:?}: got {status} want {} ({body})",
                    expected[i]
                ));
            }
            let want = if (200..300).contains(&status) {
                rpc_audit_entries(endpoint)
            } else {
                0
            };
            if let Err(e) = check_audit(&app, &f, who, mark, want, endpoint == "sign_up").await {
                failures.push(format!("rpc {endpoint} as {who:?}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Fails when a route or server function exists without a matrix row.
#[test]
fn the_matrix_covers_every_route_and_server_function() {
    let rows: BTreeSet<(String, String)> = rest_rows()
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let routes: BTreeSet<(String, String)> = mino::rest::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(rows, routes, "rest::ROUTES and the matrix differ");

    // rest::ROUTES must list every path the router registers.
    let mut registered = BTreeSet::new();
    let mut listed_methods = 0;
    for file in ["src/rest/mod.rs"] {
        let text = std::fs::read_to_string(file).unwrap();
        for chunk in text.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap().to_string();
            listed_methods += ["get(", "post(", "patch(", "put(", "delete("]
                .iter()
                .map(|m| {
                    chunk
                        .split(')')
                        .take(6)
                        .collect::<String>()
                        .matches(m)
                        .count()
                })
                .sum::<usize>();
            registered.insert(format!("/api/v1{path}"));
        }
    }
    let listed: BTreeSet<String> = mino::rest::ROUTES
        .iter()
        .map(|(_, p)| p.to_string())
        .collect();
    assert_eq!(
        registered, listed,
        "the router and rest::ROUTES list different paths"
    );
    assert!(
        listed_methods >= mino::rest::ROUTES.len(),
        "a method of a route is missing from rest::ROUTES"
    );

    let rpc: BTreeSet<&str> = rpc_rows().iter().map(|(e, _)| *e).collect();
    let endpoints: BTreeSet<&str> = mino::api::ENDPOINTS.iter().copied().collect();
    assert_eq!(rpc, endpoints, "api::ENDPOINTS and the matrix differ");
    let mut declared = BTreeSet::new();
    for entry in std::fs::read_dir("src/api").unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for chunk in text.split("endpoint = \"").skip(1) {
            declared.insert(chunk.split('"').next().unwrap().to_string());
        }
    }
    let endpoints: BTreeSet<String> = endpoints.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        declared, endpoints,
        "a #[server] fn is missing from api::ENDPOINTS"
    );
}
