//! Projects over the REST API: create, quotas, names, instructions and
//! their versions and diffs, output fields, agent settings, roles.

#![cfg(feature = "ssr")]

use crate::common;

use common::spawn_app;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test]
async fn a_member_creates_a_project_with_a_first_version(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&owner, "Acme").await;
    let (member, _) = app.user("mem@example.com", "Mia").await;
    app.join(&owner, &org, &member, "mem@example.com", "member")
        .await;

    let r = app
        .post(
            &member,
            &format!("/api/v1/orgs/{org}/projects"),
            json!({"name": "Prices", "description": "Shop prices", "instructions": "Find the price."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["name"], "Prices");
    assert_eq!(r.body["production_version"], 1);
    assert_eq!(r.body["latest_version"], 1);
    let id = r.body["id"].as_str().unwrap();

    let v = app
        .get(&member, &format!("/api/v1/projects/{id}/instructions/1"))
        .await;
    assert_eq!(v.body["instructions"], "Find the price.");
    assert_eq!(v.body["author_name"], "Mia");
    assert_eq!(v.body["is_production"], true);

    let list = app
        .get(&member, &format!("/api/v1/orgs/{org}/projects"))
        .await;
    assert_eq!(list.body["items"][0]["id"], id);
    assert_eq!(list.body["next_cursor"], json!(null));
}

#[sqlx::test]
async fn names_are_unique_per_organization_and_checked(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let other = app.org(&c, "Other").await;
    app.project(&c, &org, "Prices").await;

    let path = format!("/api/v1/orgs/{org}/projects");
    let dup = app.post(&c, &path, json!({"name": "prices"})).await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.code(), "ALREADY_EXISTS");
    assert!(dup.field("name").is_some());
    // Another organization may use the name.
    app.project(&c, &other, "Prices").await;

    let bad = app
        .post(
            &c,
            &path,
            json!({"name": "", "instructions": "x".repeat(50_001)}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.field("name").is_some() && bad.field("instructions").is_some(),
        "{:?}",
        bad.body
    );
    let unknown = app
        .post(&c, &path, json!({"name": "A", "colour": "red"}))
        .await;
    assert_eq!(unknown.status, 400);

    // Renaming onto a taken name is the same clear error.
    let second = app.project(&c, &org, "Second").await;
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{second}"),
            json!({"name": "PRICES"}),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{second}"),
            json!({"description": "Now described"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["name"].as_str(), r.body["description"].as_str()),
        (Some("Second"), Some("Now described"))
    );
}

#[sqlx::test]
async fn the_project_limit_answers_quota_exceeded(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .call(
            &c,
            Method::PUT,
            &format!("/api/v1/orgs/{org}/limits"),
            Some(json!({"max_projects": 1, "max_executions_per_month": 10})),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    app.project(&c, &org, "One").await;
    let r = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/projects"),
            json!({"name": "Two"}),
        )
        .await;
    assert_eq!(r.status, 402);
    assert_eq!(r.code(), "QUOTA_EXCEEDED");
}

#[sqlx::test]
async fn every_save_is_a_new_version_and_versions_diff(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let p = app.project(&c, &org, "Prices").await;
    let path = format!("/api/v1/projects/{p}/instructions");

    let r = app
        .post(
            &c,
            &path,
            json!({"instructions": "Find the price.\nIgnore shipping.", "note": "shipping"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["is_production"], false);
    let same = app
        .post(
            &c,
            &path,
            json!({"instructions": "Find the price.\nIgnore shipping."}),
        )
        .await;
    assert_eq!(same.status, 400);
    assert!(same.field("instructions").unwrap().contains("version 2"));
    let r = app
        .post(&c, &path, json!({"instructions": "Find the sale price.\nIgnore shipping.\nUse USD.", "production": true}))
        .await;
    assert_eq!(
        (
            r.body["version"].as_i64(),
            r.body["is_production"].as_bool()
        ),
        (Some(3), Some(true))
    );

    let list = app.get(&c, &path).await;
    let versions: Vec<i64> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(list.body["items"][1]["note"], "shipping");
    let page = app.get(&c, &format!("{path}?limit=2")).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let next = page.body["next_cursor"].as_str().unwrap();
    let rest = app.get(&c, &format!("{path}?limit=2&cursor={next}")).await;
    assert_eq!(rest.body["items"][0]["version"], 1);

    // Version 1 is unchanged.
    let v1 = app.get(&c, &format!("{path}/1")).await;
    assert_eq!(v1.body["instructions"], "Find the price.");

    let d = app.get(&c, &format!("{path}/diff?a=1&b=3")).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    let kinds: Vec<&str> = d.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["changed", "added", "added"]);
    assert_eq!(
        (d.body["added"].as_i64(), d.body["removed"].as_i64()),
        (Some(3), Some(1))
    );

    // Back to version 2 in production.
    let r = app
        .call(
            &c,
            Method::PUT,
            &format!("/api/v1/projects/{p}/production-version"),
            Some(json!({"version": 2})),
            None,
        )
        .await;
    assert_eq!(r.body["is_production"], true);
    let project = app.get(&c, &format!("/api/v1/projects/{p}")).await;
    assert_eq!(project.body["production_version"], 2);
    let r = app
        .call(
            &c,
            Method::PUT,
            &format!("/api/v1/projects/{p}/production-version"),
            Some(json!({"version": 9})),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(app.get(&c, &format!("{path}/9")).await.status, 404);
}

#[sqlx::test]
async fn fields_and_agent_settings(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let p = app.project(&c, &org, "Prices").await;
    let fields = format!("/api/v1/projects/{p}/fields");

    let r = app
        .post(&c, &fields, json!({"name": "price", "type": "number", "rule": {"kind": "css", "selector": ".price", "attribute": "content"}}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["fields"][0]["comparator"], "number");
    let dup = app.post(&c, &fields, json!({"name": "Price"})).await;
    assert_eq!(dup.status, 409);
    let bad = app
        .post(
            &c,
            &fields,
            json!({"name": "title", "rule": {"kind": "css", "selector": "..nope["}}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.field("selector").is_some(), "{:?}", bad.body);
    let bad = app
        .post(
            &c,
            &fields,
            json!({"name": "title", "rule": {"kind": "regex", "pattern": "("}}),
        )
        .await;
    assert!(bad.field("pattern").is_some());

    let r = app
        .patch(
            &c,
            &format!("{fields}/price"),
            json!({"comparator": "number", "comparator_options": {"tolerance": 0.01}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["fields"][0]["comparator_options"]["tolerance"], 0.01);
    let r = app
        .patch(
            &c,
            &format!("{fields}/price"),
            json!({"comparator_options": {"threshold": 2.0}}),
        )
        .await;
    assert!(r.field("threshold").is_some());

    // A text field named for a currency judges currencies (€ = EUR); its
    // locale must name a region, which is what says which dollar $ is.
    let r = app.post(&c, &fields, json!({"name": "currency"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let currency = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "currency")
        .unwrap()
        .clone();
    assert_eq!(currency["comparator"], "currency");
    let r = app
        .patch(
            &c,
            &format!("{fields}/currency"),
            json!({"comparator_options": {"locale": "english"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("locale").is_some(), "{:?}", r.body);
    let r = app
        .patch(
            &c,
            &format!("{fields}/currency"),
            json!({"comparator_options": {"locale": "en-CA"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app.delete(&c, &format!("{fields}/currency")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        app.patch(&c, &format!("{fields}/nope"), json!({}))
            .await
            .status,
        404
    );

    let agent = format!("/api/v1/projects/{p}/agent");
    let r = app
        .patch(
            &c,
            &agent,
            json!({"timeout_secs": 45, "max_retries": 2, "price_per_job": 0.0025}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["agent"]["price_per_job_micros"], 2500);
    assert_eq!(r.body["agent"]["timeout_secs"], 45);
    let r = app.patch(&c, &agent, json!({"kind": "remote"})).await;
    assert!(r.field("remote_url").is_some());
    let r = app
        .patch(&c, &agent, json!({"timeout_secs": 0, "max_retries": 11}))
        .await;
    assert!(r.field("timeout_secs").is_some() && r.field("max_retries").is_some());
    let r = app
        .patch(
            &c,
            &agent,
            json!({"kind": "remote", "remote_url": "http://127.0.0.1:9999/run"}),
        )
        .await;
    assert_eq!(r.body["agent"]["kind"], "remote");

    let r = app.delete(&c, &format!("{fields}/price")).await;
    assert_eq!(r.body["fields"], json!([]));
}

#[sqlx::test]
async fn viewers_read_members_write_admins_delete(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&owner, "Acme").await;
    let p = app.project(&owner, &org, "Prices").await;
    let (viewer, _) = app.user("view@example.com", "Vi").await;
    app.join(&owner, &org, &viewer, "view@example.com", "viewer")
        .await;
    let (member, _) = app.user("mem@example.com", "Mia").await;
    app.join(&owner, &org, &member, "mem@example.com", "member")
        .await;

    assert_eq!(
        app.get(&viewer, &format!("/api/v1/projects/{p}"))
            .await
            .status,
        200
    );
    let r = app
        .post(
            &viewer,
            &format!("/api/v1/projects/{p}/instructions"),
            json!({"instructions": "x"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .post(
            &viewer,
            &format!("/api/v1/orgs/{org}/projects"),
            json!({"name": "V"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .post(
            &member,
            &format!("/api/v1/projects/{p}/instructions"),
            json!({"instructions": "x"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        app.delete(&member, &format!("/api/v1/projects/{p}"))
            .await
            .status,
        403
    );
    assert_eq!(
        app.delete(&owner, &format!("/api/v1/projects/{p}"))
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&owner, &format!("/api/v1/projects/{p}"))
            .await
            .status,
        404
    );
}

#[sqlx::test]
async fn another_organizations_project_is_not_found(db: PgPool) {
    let app = spawn_app(db).await;
    let (ann, _) = app.user("ann@example.com", "Ann").await;
    let org = app.org(&ann, "Acme").await;
    let p = app.project(&ann, &org, "Prices").await;
    let (bob, _) = app.user("bob@example.com", "Bob").await;
    let bob_org = app.org(&bob, "Bobs").await;
    let bob_key = app.key(&bob, &bob_org, &["read", "write", "admin"]).await;

    for path in [
        format!("/api/v1/projects/{p}"),
        format!("/api/v1/projects/{p}/instructions"),
        format!("/api/v1/projects/{p}/instructions/1"),
        format!("/api/v1/projects/{p}/batches"),
    ] {
        assert_eq!(app.get(&bob, &path).await.status, 404, "{path}");
        assert_eq!(
            app.with_key(Method::GET, &path, None, &bob_key)
                .await
                .status,
            404,
            "{path}"
        );
    }
    let r = app
        .with_key(
            Method::DELETE,
            &format!("/api/v1/projects/{p}"),
            None,
            &bob_key,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        app.get(&bob, &format!("/api/v1/orgs/{org}/projects"))
            .await
            .status,
        404
    );
    // Not an id at all: also just not found.
    assert_eq!(
        app.get(&bob, "/api/v1/projects/not-a-uuid").await.status,
        404
    );
    // And Ann still has it.
    assert_eq!(
        app.get(&ann, &format!("/api/v1/projects/{p}")).await.status,
        200
    );
}

#[sqlx::test]
async fn nul_characters_are_field_errors_not_500s(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let r = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/projects"),
            json!({"name": "P", "description": "a\u{0}b"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("description").is_some(), "{:?}", r.body);
    let p = app.project(&c, &org, "Prices").await;
    let r = app
        .post(
            &c,
            &format!("/api/v1/projects/{p}/fields"),
            json!({"name": "t", "rule": {"kind": "regex", "pattern": "a\u{0}"}}),
        )
        .await;
    assert!(r.field("pattern").is_some(), "{:?}", r.body);
    assert_eq!(
        app.delete(&c, &format!("/api/v1/projects/{p}/fields/a%00b"))
            .await
            .status,
        404
    );
    let r = app
        .upload(
            &c,
            &p,
            "url\nhttps://a.example.com\n",
            "file_name=a%00b.csv",
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["file_name"], "ab.csv");
}

/// Each person chooses and orders the results grid's columns per project;
/// a field added later still shows; bad names are field errors; another
/// organization's project is not found.
#[sqlx::test]
async fn grid_columns_are_each_persons_choice_per_project(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&owner, "Acme").await;
    let (viewer, _) = app.user("vic@example.com", "Vic").await;
    app.join(&owner, &org, &viewer, "vic@example.com", "viewer")
        .await;
    let project = app.project(&owner, &org, "Prices").await;
    for name in ["title", "price"] {
        let r = app
            .post(
                &owner,
                &format!("/api/v1/projects/{project}/fields"),
                json!({"name": name}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let path = format!("/api/v1/projects/{project}/grid-columns");
    let r = app.get(&viewer, &path).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let every = json!(["site", "result", "accuracy", "field:title", "field:price"]);
    assert_eq!(
        (r.body["shown"].clone(), r.body["saved"].clone()),
        (every.clone(), json!(false))
    );
    assert_eq!(r.body["available"], every);

    // A viewer saves a choice: price first, no site or accuracy.
    let put = |who, body| {
        let path = path.clone();
        let app = &app;
        async move { app.call(who, Method::PUT, &path, Some(body), None).await }
    };
    let r = put(
        &viewer,
        json!({"shown": ["field:price", "result", "field:title"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["shown"],
        json!(["field:price", "result", "field:title"])
    );
    // Only for them.
    assert_eq!(app.get(&owner, &path).await.body["shown"], every);
    // A field added later shows at the end; hidden ones stay hidden.
    app.post(
        &owner,
        &format!("/api/v1/projects/{project}/fields"),
        json!({"name": "currency"}),
    )
    .await;
    let r = app.get(&viewer, &path).await;
    assert_eq!(
        r.body["shown"],
        json!(["field:price", "result", "field:title", "field:currency"])
    );
    assert_eq!(r.body["saved"], true);

    // Bad choices name the field and change nothing.
    for bad in [
        json!({"shown": ["field:colour"]}),
        json!({"shown": ["result", "result"]}),
        json!({"shown": []}),
    ] {
        let r = put(&viewer, bad).await;
        assert_eq!(
            (r.status.as_u16(), r.field("shown").is_some()),
            (400, true),
            "{:?}",
            r.body
        );
    }
    assert_eq!(app.get(&viewer, &path).await.body["saved"], true);

    // Another organization's project: 404 both ways.
    let (other, _) = app.user("out@example.com", "Oscar").await;
    app.org(&other, "Elsewhere").await;
    assert_eq!(app.get(&other, &path).await.status, 404);
    assert_eq!(put(&other, json!({"shown": ["result"]})).await.status, 404);
}
