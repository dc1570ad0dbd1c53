//! The audit log (F16): what changes leave behind, how admins filter and
//! page it, its CSV export, who may read it, and that it can't be edited.
//! (That every mutating route leaves exactly one entry naming its caller is
//! checked route by route in the authorization matrix.)

#![cfg(feature = "ssr")]

use crate::common;

use common::{spawn_app, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

/// An org where the owner made a project and renamed it, and a write key
/// made another project.
async fn history(app: &TestApp) -> (reqwest::Client, String, String, String) {
    let (c, owner) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let project = app.project(&c, &org, "Shop").await;
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}"),
            json!({"name": "Shop 2"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let key = app.key(&c, &org, &["write"]).await;
    let r = app
        .with_key(
            Method::POST,
            &format!("/api/v1/orgs/{org}/projects"),
            Some(json!({"name": "By key"})),
            &key,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (c, org, owner, project)
}

fn actions(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[sqlx::test]
async fn changes_are_listed_newest_first_with_who_what_and_before_after(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org, owner, project) = history(&app).await;
    let r = app.get(&c, &format!("/api/v1/orgs/{org}/audit-log")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        actions(&r.body),
        [
            "project.create",
            "api_key.create",
            "project.update",
            "project.create",
            "organization.create"
        ]
    );
    let by_key = &r.body["items"][0];
    assert!(by_key["actor_key_id"].is_string());
    assert!(by_key["actor_user_id"].is_null());
    assert!(by_key["actor_name"]
        .as_str()
        .unwrap()
        .starts_with("API key “test key”"));
    let rename = &r.body["items"][2];
    assert_eq!(rename["resource_type"], "project");
    assert_eq!(rename["resource_id"], project.as_str());
    assert_eq!(rename["actor_user_id"], owner.as_str());
    assert_eq!(rename["actor_name"], "Owen <own@example.com>");
    assert_eq!(rename["before"]["name"], "Shop");
    assert_eq!(rename["after"]["name"], "Shop 2");
    assert_eq!(rename["ip"], "127.0.0.1");
    // The key's secret never appears; only its public prefix.
    let key_entry = &r.body["items"][1];
    assert!(key_entry["after"]["prefix"]
        .as_str()
        .unwrap()
        .starts_with("mino_pk_"));
    assert!(!key_entry.to_string().contains("secret"));
}

#[sqlx::test]
async fn admins_filter_by_actor_action_resource_and_time_and_page_through(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org, owner, project) = history(&app).await;
    let list = |q: String| {
        let (app, c, org) = (&app, &c, &org);
        async move {
            app.get(c, &format!("/api/v1/orgs/{org}/audit-log?{q}"))
                .await
        }
    };
    let r = list(format!("actor={owner}")).await;
    assert_eq!(actions(&r.body).len(), 4, "{:?}", r.body);
    let r = list("action=project.".into()).await;
    assert_eq!(
        actions(&r.body),
        ["project.create", "project.update", "project.create"]
    );
    let r = list("action=api_key.".into()).await;
    assert_eq!(actions(&r.body), ["api_key.create"]);
    let r = list("action=project.update".into()).await;
    assert_eq!(actions(&r.body), ["project.update"]);
    let r = list(format!("resource_type=project&resource_id={project}")).await;
    assert_eq!(actions(&r.body), ["project.update", "project.create"]);
    let r = list("since=2999-01-01T00:00:00Z".into()).await;
    assert_eq!(actions(&r.body).len(), 0);
    let r = list("until=2999-01-01T00:00:00Z&since=2000-01-01T00:00:00Z".into()).await;
    assert_eq!(actions(&r.body).len(), 5);

    // Pages of two, each after the last, cover the log once.
    let mut seen = vec![];
    let mut cursor = String::new();
    loop {
        let r = list(format!("limit=2{cursor}")).await;
        assert_eq!(r.status, 200);
        seen.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match r.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    // Bad filters name the parameter.
    for (q, field) in [
        ("actor=nobody", "actor"),
        ("cursor=x", "cursor"),
        ("limit=0", "limit"),
        ("action=x%00y", "action"),
        (
            "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "until",
        ),
    ] {
        let r = list(q.into()).await;
        assert_eq!(r.status, 400, "{q}: {:?}", r.body);
        assert!(r.field(field).is_some(), "{q}: {:?}", r.body);
    }
    let r = list("since=yesterday".into()).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[sqlx::test]
async fn the_log_downloads_as_csv_with_the_same_filters(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org, _, _) = history(&app).await;
    let res = app
        .open(
            &c,
            &format!("/api/v1/orgs/{org}/audit-log/export?action=project."),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,at,actor_name,actor_user_id,actor_key_id,action,resource_type,resource_id,before,after,ip,user_agent"
    );
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[2].contains(",project.update,project,"));
    // JSON cells are quoted CSV fields.
    assert!(lines[2].contains(r#"""name"":""Shop""}""#), "{}", lines[2]);
}

#[sqlx::test]
async fn only_admins_read_the_log_and_other_orgs_get_404(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org, _, _) = history(&app).await;
    let (viewer, _) = app.user("view@example.com", "Vera").await;
    app.join(&c, &org, &viewer, "view@example.com", "viewer")
        .await;
    let r = app
        .get(&viewer, &format!("/api/v1/orgs/{org}/audit-log"))
        .await;
    assert_eq!(r.status, 403);
    let (outsider, _) = app.user("out@example.com", "Otto").await;
    app.org(&outsider, "Other").await;
    let r = app
        .get(&outsider, &format!("/api/v1/orgs/{org}/audit-log"))
        .await;
    assert_eq!(r.status, 404);
    // The outsider's own log holds only their own organization's entries.
    let other: Vec<String> = sqlx::query_scalar(
        "select action from audit_log a join organizations o on o.id = a.org_id where o.name = 'Other'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(other, ["organization.create"]);
}

#[sqlx::test]
async fn entries_cannot_be_edited_or_deleted_but_leave_with_their_org(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org, _, _) = history(&app).await;
    for sql in [
        "update audit_log set action = 'nothing.happened'",
        "update audit_log set actor_name = 'someone else'",
        "delete from audit_log",
    ] {
        let e = sqlx::query(sql).execute(&app.db).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let r = app
        .call(
            &c,
            Method::DELETE,
            &format!("/api/v1/orgs/{org}"),
            Some(json!({"confirm": "Acme"})),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // The organization's log went with it; its deletion is kept with the
    // account changes.
    let left: Vec<(Option<uuid::Uuid>, String)> =
        sqlx::query_as("select org_id, action from audit_log where action like 'organization.%'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(left, [(None, "organization.delete".to_string())]);
}
