//! Data rights (F21) over the real router and Postgres: an organization's
//! export holds every row of it and nothing of another organization, with
//! secrets left out; deleting an account is refused for a sole owner with
//! members, and otherwise ends everything but the audit trail, which is
//! signed "deleted user".

#![cfg(feature = "ssr")]

use crate::common;

use std::collections::HashMap;
use std::io::Read;

use common::{finished_demo_run, spawn_app};
use serde_json::{json, Value};
use sqlx::PgPool;

/// RFC 4180 records (quoted fields may hold commas, quotes and newlines);
/// panics on an unbalanced quote, so a file that doesn't parse fails.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (vec![], vec![], String::new());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "an unbalanced quote");
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

#[sqlx::test]
async fn an_organizations_export_holds_all_of_it_and_nothing_else(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (c, execution) = finished_demo_run(&app, 12).await;
    let org: String = sqlx::query_scalar("select org_id::text from executions where id = $1::uuid")
        .bind(&execution)
        .fetch_one(&db)
        .await
        .unwrap();
    // An expected value fixed, a webhook with a secret.
    let hook = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/webhooks"),
            json!({"url": "https://hooks.example.com/x", "secret": "whsec_never_exported_0123456789"}),
        )
        .await;
    assert_eq!(hook.status, 201, "{:?}", hook.body);
    // Another organization, with its own demo project.
    let (eve, _) = app.user("eve@example.com", "Eve").await;
    let other = app.org(&eve, "Evil Corp").await;
    let r = app
        .post(
            &eve,
            &format!("/api/v1/orgs/{other}/demo-project"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 201);

    let res = app
        .call_raw(
            &c,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{org}/export"),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("mino-acme-"));
    let bytes = res.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a whole zip");
    let mut files: HashMap<String, String> = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        files.insert(name, text);
    }
    let manifest: Value = serde_json::from_str(&files["manifest.json"]).unwrap();
    let org_json: Value = serde_json::from_str(&files["organization.json"]).unwrap();
    assert_eq!(org_json["id"], org.as_str());

    // Every file the manifest names is there, parses, and has its rows.
    let count = |sql: &str| {
        let db = db.clone();
        let sql = sql.replace("{org}", &org);
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    for f in manifest["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let text = files
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        if name.ends_with(".csv") {
            let records = csv_records(text);
            assert_eq!(
                records.len() as i64 - 1,
                f["rows"].as_i64().unwrap(),
                "{name}: the manifest's count"
            );
            assert!(
                records.iter().all(|r| r.len() == records[0].len()),
                "{name}: ragged"
            );
        }
    }
    let rows = |name: &str| csv_records(&files[name]).len() as i64 - 1;
    assert_eq!(
        rows("jobs.csv"),
        count("select count(*) from jobs where org_id = '{org}'").await
    );
    assert_eq!(rows("jobs.csv"), 12);
    assert_eq!(
        rows("attempts.csv"),
        count("select count(*) from attempts a join jobs j on j.id = a.job_id where j.org_id = '{org}'").await
    );
    assert_eq!(rows("batch_rows.csv"), 200, "every row of the demo batch");
    assert_eq!(rows("executions.csv"), 1);
    assert_eq!(
        rows("audit_log.csv"),
        count("select count(*) from audit_log where org_id = '{org}'").await
    );
    assert!(
        files["audit_log.csv"].contains("organization.export"),
        "the export is audited"
    );
    assert_eq!(rows("webhooks.csv"), 1);
    assert!(!csv_records(&files["webhooks.csv"])[0].contains(&"secret".to_string()));
    // Nothing of the other organization, no secret anywhere.
    for (name, text) in &files {
        assert!(
            !text.contains(&other),
            "{name} holds the other organization's id"
        );
        assert!(
            !text.contains("eve@example.com"),
            "{name} names the other organization's owner"
        );
        assert!(
            !text.contains("whsec_never_exported"),
            "{name} holds a webhook secret"
        );
    }

    // Owners only; another organization's export is 404.
    assert_eq!(
        app.call_raw(
            &eve,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{org}/export")
        )
        .await
        .status(),
        404
    );
}

#[sqlx::test]
async fn deleting_an_account_keeps_the_audit_trail_and_needs_another_owner(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (ann, ann_id) = app.user("ann@example.com", "Ann").await;
    let acme = app.org(&ann, "Acme").await;
    let solo = app.org(&ann, "Solo").await;
    let (bob, bob_id) = app.user("bob@example.com", "Bob").await;
    app.join(&ann, &acme, &bob, "bob@example.com", "member")
        .await;
    let key = app.key(&ann, &acme, &["read"]).await;

    let delete = |c: &reqwest::Client, password: &str| {
        let (app, c, password) = (&app, c.clone(), password.to_string());
        async move {
            app.call(
                &c,
                reqwest::Method::DELETE,
                "/api/v1/me",
                Some(json!({"password": password})),
                None,
            )
            .await
        }
    };
    let r = delete(&ann, "not my password at all").await;
    assert_eq!(r.status, 400);
    assert!(r.field("password").is_some(), "{:?}", r.body);
    let r = delete(&ann, common::PASSWORD).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "CONFLICT"),
        "{:?}",
        r.body
    );
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("only owner of Acme"),
        "{:?}",
        r.body
    );

    // Bob becomes an owner: now Ann may go; Solo (hers alone) goes with her.
    let r = app
        .patch(
            &ann,
            &format!("/api/v1/orgs/{acme}/members/{bob_id}"),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = delete(&ann, common::PASSWORD).await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    assert_eq!(
        app.get(&ann, "/api/v1/me").await.status,
        401,
        "her session ended"
    );
    let keyed = app
        .with_key(
            reqwest::Method::GET,
            &format!("/api/v1/orgs/{acme}"),
            None,
            &key,
        )
        .await;
    assert_eq!(keyed.status, 401, "her API key was revoked");
    assert_eq!(
        app.get(&bob, &format!("/api/v1/orgs/{solo}")).await.status,
        404
    );
    let solo_left: i64 =
        sqlx::query_scalar("select count(*) from organizations where id = $1::uuid")
            .bind(&solo)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        solo_left, 0,
        "the organization only she belonged to is gone"
    );
    let members = app.get(&bob, &format!("/api/v1/orgs/{acme}/members")).await;
    assert_eq!(members.body["items"].as_array().unwrap().len(), 1);

    // Her entries in Acme's log stay, signed "deleted user".
    let log = app
        .get(&bob, &format!("/api/v1/orgs/{acme}/audit-log?limit=100"))
        .await;
    let hers: Vec<&Value> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "organization.create" || e["action"] == "api_key.create")
        .collect();
    assert_eq!(hers.len(), 2, "{:?}", log.body);
    for e in hers {
        assert_eq!(e["actor_name"], "deleted user", "{e}");
    }
    let named: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where actor_name = 'Ann' or actor_user_id = $1::uuid",
    )
    .bind(&ann_id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(named, 0);
    // She can sign up again with the same address.
    let (again, _) = app.user("ann@example.com", "Ann again").await;
    assert_eq!(app.get(&again, "/api/v1/me").await.status, 200);
}
