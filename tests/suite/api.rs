//! The REST API over HTTP against the real router and a fresh Postgres per
//! test: accounts, organizations, team, invitations, API keys, CSRF.

#![cfg(feature = "ssr")]

use crate::common;

use common::{client, spawn_app, spawn_app_at, PASSWORD};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test]
async fn sign_up_then_me_shows_the_user(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = app.user("ann@example.com", "Ann").await;
    let me = app.get(&c, "/api/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["id"], id.as_str());
    assert_eq!(me.body["user"]["email"], "ann@example.com");
    assert_eq!(me.body["orgs"], json!([]));
}

#[sqlx::test]
async fn sign_up_refuses_bad_input_with_the_field_named(db: PgPool) {
    let app = spawn_app(db).await;
    let c = client();
    let cases = [
        (
            json!({"email": "ann@example.com", "password": "short", "name": "Ann"}),
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "Ann"}),
            "email",
        ),
        (
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "x".repeat(101)}),
            "name",
        ),
        (
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "   "}),
            "name",
        ),
        (
            json!({"email": "ann@example.com", "password": PASSWORD}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let r = app.post(&c, "/api/v1/auth/signup", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert_eq!(r.code(), "VALIDATION_ERROR");
        assert!(
            r.field(field).is_some(),
            "{body} should name {field}: {:?}",
            r.body
        );
    }
    // Several problems are reported together.
    let r = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": "x", "password": "y", "name": ""}),
        )
        .await;
    assert_eq!(r.body["details"]["fields"].as_array().unwrap().len(), 3);
    // Nothing was created by any of them.
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test]
async fn malformed_json_and_wrong_content_type_are_400(db: PgPool) {
    let app = spawn_app(db).await;
    let c = client();
    let r = c
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_JSON");
    let r = c
        .post(app.url("/api/v1/auth/signup"))
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[sqlx::test]
async fn duplicate_email_is_a_field_error_whatever_the_case(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("ann@example.com", "Ann").await;
    let r = app
        .post(
            &client(),
            "/api/v1/auth/signup",
            json!({"email": "ANN@example.com", "password": PASSWORD, "name": "Ann 2"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "ALREADY_EXISTS");
    assert!(r.field("email").is_some());
}

#[sqlx::test]
async fn wrong_password_and_unknown_email_answer_the_same(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("ann@example.com", "Ann").await;
    let c = client();
    let wrong = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": "ann@example.com", "password": "wrong password!"}),
        )
        .await;
    let unknown = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": "bob@example.com", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    let ok = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": "Ann@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(app.get(&c, "/api/v1/me").await.status, 200);
}

#[sqlx::test]
async fn repeated_failures_are_throttled_with_retry_after(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("ann@example.com", "Ann").await;
    let c = client();
    for _ in 0..5 {
        let r = app
            .post(
                &c,
                "/api/v1/auth/login",
                json!({"email": "ann@example.com", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // Even the right password is refused while throttled.
    let r = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.code(), "RATE_LIMIT_EXCEEDED");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
}

#[sqlx::test]
async fn sign_in_cycles_the_session_id_and_sign_out_ends_it(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("ann@example.com", "Ann").await;
    let c = client();
    // An anonymous visit gets no session cookie at all.
    let r = c.get(app.url("/login")).send().await.unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("mino_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        cookie.contains("Max-Age") || cookie.contains("Expires"),
        "{cookie}"
    );
    let r = app.post(&c, "/api/v1/auth/logout", json!({})).await;
    assert_eq!(r.status, 204);
    assert_eq!(app.get(&c, "/api/v1/me").await.status, 401);
}

#[sqlx::test]
async fn changing_the_password_ends_other_sessions(db: PgPool) {
    let app = spawn_app(db).await;
    let (laptop, _) = app.user("ann@example.com", "Ann").await;
    let phone = client();
    let r = app
        .post(
            &phone,
            "/api/v1/auth/login",
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .post(
            &laptop,
            "/api/v1/me/password",
            json!({"current_password": "nope nope nope", "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("current_password").is_some());
    let r = app
        .post(
            &laptop,
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert!(r.field("new_password").is_some());
    let r = app
        .post(
            &laptop,
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        app.get(&laptop, "/api/v1/me").await.status,
        200,
        "this session stays"
    );
    assert_eq!(
        app.get(&phone, "/api/v1/me").await.status,
        401,
        "the other one ends"
    );
    let r = app
        .post(
            &client(),
            "/api/v1/auth/login",
            json!({"email": "ann@example.com", "password": "a brand new secret"}),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[sqlx::test]
async fn organizations_create_list_rename_delete(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    let r = app
        .post(&c, "/api/v1/orgs", json!({"name": "Acme Research"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["slug"], "acme-research");
    assert_eq!(r.body["role"], "owner");
    let id = r.body["id"].as_str().unwrap().to_string();
    // Same name again: a new slug, not an error.
    let r2 = app
        .post(&c, "/api/v1/orgs", json!({"name": "Acme Research"}))
        .await;
    assert_eq!(r2.body["slug"], "acme-research-2");

    let list = app.get(&c, "/api/v1/orgs").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    assert!(list.body["next_cursor"].is_null());
    assert_eq!(
        app.get(&c, "/api/v1/orgs/acme-research").await.body["id"],
        id.as_str()
    );

    let r = app
        .patch(
            &c,
            &format!("/api/v1/orgs/{id}"),
            json!({"name": "x".repeat(101)}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("name").is_some());
    let r = app
        .patch(
            &c,
            &format!("/api/v1/orgs/{id}"),
            json!({"name": "Acme Labs"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "Acme Labs");

    let r = app
        .call(
            &c,
            Method::PUT,
            &format!("/api/v1/orgs/{id}/limits"),
            Some(json!({"max_projects": 5, "max_executions_per_month": 50})),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["max_projects"], 5);
    assert_eq!(r.body["max_concurrency"], 50, "the default plan limit");

    // Concurrency is a plan limit too: a run may go up to it, not past it.
    let limits =
        |n: i64| json!({"max_projects": 5, "max_executions_per_month": 50, "max_concurrency": n});
    for bad in [0, 1001] {
        let r = app
            .call(
                &c,
                Method::PUT,
                &format!("/api/v1/orgs/{id}/limits"),
                Some(limits(bad)),
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.field("max_concurrency").is_some(), "{:?}", r.body);
    }
    let r = app
        .call(
            &c,
            Method::PUT,
            &format!("/api/v1/orgs/{id}/limits"),
            Some(limits(120)),
            None,
        )
        .await;
    assert_eq!(r.body["max_concurrency"], 120);
    let demo = app
        .post(&c, &format!("/api/v1/orgs/{id}/demo-project"), json!({}))
        .await;
    let batch = demo.body["batch"]["id"].as_str().unwrap();
    let run = |n: i64| {
        let (app, c) = (&app, &c);
        async move {
            app.post(
                c,
                &format!("/api/v1/batches/{batch}/executions"),
                json!({"mode": "test", "sample_size": 1, "concurrency": n}),
            )
            .await
        }
    };
    assert_eq!(run(120).await.status, 201);
    let r = run(121).await;
    assert!(
        r.field("concurrency").unwrap().contains("from 1 to 120"),
        "{:?}",
        r.body
    );

    assert_eq!(
        app.delete(&c, &format!("/api/v1/orgs/{id}")).await.status,
        204
    );
    assert_eq!(app.get(&c, &format!("/api/v1/orgs/{id}")).await.status, 404);
}

#[sqlx::test]
async fn another_organizations_resources_answer_404(db: PgPool) {
    let app = spawn_app(db).await;
    let (ann, _) = app.user("ann@example.com", "Ann").await;
    let (eve, _) = app.user("eve@example.com", "Eve").await;
    let org = app.org(&ann, "Acme").await;
    let eve_org = app.org(&eve, "Evil").await;
    let ann_key = app.key(&ann, &org, &["read", "admin"]).await;
    for path in [
        format!("/api/v1/orgs/{org}"),
        "/api/v1/orgs/acme".to_string(),
        format!("/api/v1/orgs/{org}/members"),
        format!("/api/v1/orgs/{org}/invitations"),
        format!("/api/v1/orgs/{org}/api-keys"),
    ] {
        let r = app.get(&eve, &path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), "NOT_FOUND");
    }
    // Exactly like an organization that does not exist.
    let missing = app
        .get(&eve, "/api/v1/orgs/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(
        missing.body,
        app.get(&eve, &format!("/api/v1/orgs/{org}")).await.body
    );
    // Ann's key can't reach Eve's organization either.
    let r = app
        .with_key(
            Method::GET,
            &format!("/api/v1/orgs/{eve_org}/members"),
            None,
            &ann_key,
        )
        .await;
    assert_eq!(r.status, 404);
    // Nor can Eve revoke Ann's key.
    let keys = app.get(&ann, &format!("/api/v1/orgs/{org}/api-keys")).await;
    let key_id = keys.body["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&eve, &format!("/api/v1/api-keys/{key_id}"))
            .await
            .status,
        404
    );
}

#[sqlx::test]
async fn invitation_flow_roles_and_single_use(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, _) = app.user("olga@example.com", "Olga").await;
    let org = app.org(&owner, "Acme").await;
    let r = app.invite(&owner, &org, "Vic@Example.com", "viewer").await;
    assert_eq!(r.status, 201);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert!(r.body["link"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/invite/{token}")));

    // Anyone with the link may look; accepting needs an account.
    let preview = app
        .get(&client(), &format!("/api/v1/invitations/{token}"))
        .await;
    assert_eq!(preview.status, 200);
    assert_eq!(preview.body["org_name"], "Acme");
    assert_eq!(preview.body["role"], "viewer");
    assert_eq!(
        app.post(
            &client(),
            &format!("/api/v1/invitations/{token}/accept"),
            json!({})
        )
        .await
        .status,
        401
    );

    // Someone else's account can't use it.
    let (mallory, _) = app.user("mallory@example.com", "Mallory").await;
    let r = app
        .post(
            &mallory,
            &format!("/api/v1/invitations/{token}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 403);

    let (vic, vic_id) = app.user("vic@example.com", "Vic").await;
    let r = app
        .post(
            &vic,
            &format!("/api/v1/invitations/{token}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["role"], "viewer");
    // Single use.
    let r = app
        .post(
            &vic,
            &format!("/api/v1/invitations/{token}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 410);
    assert_eq!(r.code(), "INVALID_TOKEN");

    // The viewer reads but can't invite or change roles.
    assert_eq!(
        app.get(&vic, &format!("/api/v1/orgs/{org}/members"))
            .await
            .status,
        200
    );
    let r = app.invite(&vic, &org, "x@example.com", "member").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "FORBIDDEN");

    // Promoted to admin, they can.
    let r = app
        .patch(
            &owner,
            &format!("/api/v1/orgs/{org}/members/{vic_id}"),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["role"], "admin");
    let r = app.invite(&vic, &org, "x@example.com", "member").await;
    assert_eq!(r.status, 201);
    // But an admin can't invite an owner.
    let r = app.invite(&vic, &org, "y@example.com", "owner").await;
    assert_eq!(r.status, 403);
    // Inviting someone already in the organization is a field error.
    let r = app.invite(&owner, &org, "vic@example.com", "member").await;
    assert_eq!(r.status, 409);
    assert!(r.field("email").is_some());
    let r = app.invite(&owner, &org, "bad", "boss").await;
    assert_eq!(r.status, 400);
    assert!(r.field("role").is_some());
}

#[sqlx::test]
async fn expired_and_withdrawn_invitations_are_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, _) = app.user("olga@example.com", "Olga").await;
    let org = app.org(&owner, "Acme").await;
    let (vic, _) = app.user("vic@example.com", "Vic").await;
    let invite = |email: &'static str| {
        let (app, owner, org) = (&app, &owner, org.clone());
        async move {
            let r = app
                .post(
                    owner,
                    &format!("/api/v1/orgs/{org}/invitations"),
                    json!({"email": email, "role": "member"}),
                )
                .await;
            (
                r.body["id"].as_str().unwrap().to_string(),
                r.body["token"].as_str().unwrap().to_string(),
            )
        }
    };
    let (id, token) = invite("vic@example.com").await;
    sqlx::query(
        "update invitations set expires_at = now() - interval '1 minute' where id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    let r = app
        .post(
            &vic,
            &format!("/api/v1/invitations/{token}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 410);
    assert!(r.body["error"].as_str().unwrap().contains("expired"));

    let (id, token) = invite("vic@example.com").await;
    let listed = app
        .get(&owner, &format!("/api/v1/orgs/{org}/invitations"))
        .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "expired ones are not pending"
    );
    assert!(
        listed.body["items"][0]["token"].is_null(),
        "tokens are never listed"
    );
    assert_eq!(
        app.delete(&owner, &format!("/api/v1/orgs/{org}/invitations/{id}"))
            .await
            .status,
        204
    );
    let r = app
        .post(
            &vic,
            &format!("/api/v1/invitations/{token}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 410);
    assert_eq!(
        app.get(&vic, &format!("/api/v1/orgs/{org}")).await.status,
        404
    );
    assert_eq!(
        app.get(&client(), "/api/v1/invitations/not-a-token")
            .await
            .status,
        404
    );
}

#[sqlx::test]
async fn the_last_owner_stays(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, owner_id) = app.user("olga@example.com", "Olga").await;
    let org = app.org(&owner, "Acme").await;
    let members = format!("/api/v1/orgs/{org}/members/{owner_id}");
    let r = app.patch(&owner, &members, json!({"role": "admin"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "CONFLICT");
    assert_eq!(
        app.delete(&owner, &members).await.status,
        409,
        "can't leave"
    );

    // With a second owner, the first may step down or leave.
    let (ada, ada_id) = app.user("ada@example.com", "Ada").await;
    app.join(&owner, &org, &ada, "ada@example.com", "admin")
        .await;
    // An admin can't touch an owner.
    assert_eq!(
        app.patch(&ada, &members, json!({"role": "viewer"}))
            .await
            .status,
        403
    );
    assert_eq!(app.delete(&ada, &members).await.status, 403);
    let r = app
        .patch(
            &owner,
            &format!("/api/v1/orgs/{org}/members/{ada_id}"),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.delete(&owner, &members).await.status, 204, "leaves");
    assert_eq!(
        app.get(&owner, &format!("/api/v1/orgs/{org}")).await.status,
        404
    );
    let left = app.get(&ada, &format!("/api/v1/orgs/{org}/members")).await;
    assert_eq!(left.body["items"].as_array().unwrap().len(), 1);
    // An unknown member is 404.
    let r = app
        .delete(&ada, &format!("/api/v1/orgs/{org}/members/{owner_id}"))
        .await;
    assert_eq!(r.status, 404);
}

#[sqlx::test]
async fn api_keys_shown_once_scoped_revocable_expiring(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, _) = app.user("olga@example.com", "Olga").await;
    let org = app.org(&owner, "Acme").await;
    let r = app
        .post(
            &owner,
            &format!("/api/v1/orgs/{org}/api-keys"),
            json!({"name": "ci", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let key_id = r.body["key"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mino_pk_") && secret.len() >= 8 + 32);
    assert!(secret.starts_with(r.body["key"]["prefix"].as_str().unwrap()));

    let listed = app
        .get(&owner, &format!("/api/v1/orgs/{org}/api-keys"))
        .await;
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is never listed"
    );
    assert!(listed.body["items"][0]["last_used_at"].is_null());
    let stored: String = sqlx::query_scalar("select key_hash from api_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(stored, secret);

    // A read key reads, and can't write.
    let r = app
        .with_key(
            Method::GET,
            &format!("/api/v1/orgs/{org}/members"),
            None,
            &secret,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .with_key(
            Method::POST,
            &format!("/api/v1/orgs/{org}/invitations"),
            Some(json!({"email": "a@example.com", "role": "viewer"})),
            &secret,
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"].as_str().unwrap().contains("admin"));
    let listed = app
        .get(&owner, &format!("/api/v1/orgs/{org}/api-keys"))
        .await;
    assert!(
        !listed.body["items"][0]["last_used_at"].is_null(),
        "use is recorded"
    );

    // Bad input names the field.
    let r = app
        .post(
            &owner,
            &format!("/api/v1/orgs/{org}/api-keys"),
            json!({"name": "", "scopes": ["root"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("name").is_some() && r.field("scopes").is_some());

    // Revoked: refused at once.
    assert_eq!(
        app.delete(&owner, &format!("/api/v1/api-keys/{key_id}"))
            .await
            .status,
        204
    );
    let r = app.with_key(Method::GET, "/api/v1/me", None, &secret).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"].as_str().unwrap().contains("revoked"));

    // Expired: refused.
    let r = app
        .post(
            &owner,
            &format!("/api/v1/orgs/{org}/api-keys"),
            json!({"name": "old", "scopes": ["read"], "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 400, "can't create an already-expired key");
    let soon = app.key(&owner, &org, &["read"]).await;
    sqlx::query(
        "update api_keys set expires_at = now() - interval '1 second' where revoked_at is null",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let r = app.with_key(Method::GET, "/api/v1/me", None, &soon).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"].as_str().unwrap().contains("expired"));

    // Garbage and unknown keys.
    assert_eq!(
        app.with_key(Method::GET, "/api/v1/me", None, "mino_pk_nope")
            .await
            .status,
        401
    );
    let fake = format!("mino_pk_{}", "0".repeat(64));
    assert_eq!(
        app.with_key(Method::GET, "/api/v1/me", None, &fake)
            .await
            .status,
        401
    );
}

#[sqlx::test]
async fn cross_site_writes_are_refused_but_keys_pass(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, _) = app.user("olga@example.com", "Olga").await;
    let org = app.org(&owner, "Acme").await;
    let key = app.key(&owner, &org, &["admin"]).await;
    let r = owner
        .post(app.url("/api/v1/orgs"))
        .header("origin", "https://evil.example")
        .json(&json!({"name": "Phish"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = owner
        .post(app.url("/rpc/create_org"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("name", "Phish")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(app.url(&format!("/api/v1/orgs/{org}/invitations")))
        .header("origin", "https://evil.example")
        .bearer_auth(&key)
        .json(&json!({"email": "a@example.com", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let orgs: i64 = sqlx::query_scalar("select count(*) from organizations")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(orgs, 1);
}

#[sqlx::test]
async fn health_readiness_request_ids_and_error_pages(db: PgPool) {
    let app = spawn_app(db).await;
    let c = client();
    let r = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        c.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let r = app.get(&c, "/api/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "NOT_FOUND");
    // An unknown page renders the 404 page with a 404 status.
    let r = c.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Page not found"));
    // A signed-out visit to a signed-in page redirects to sign in.
    let r = app.open(&c, "/account").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/login?next=/account");
}

#[sqlx::test]
async fn over_https_the_cookie_is_secure_and_host_prefixed(db: PgPool) {
    let app = spawn_app_at(db, Some("https://mino.example")).await;
    let r = client()
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-mino_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
}

#[sqlx::test]
async fn one_address_failing_across_many_accounts_is_throttled(db: PgPool) {
    let app = spawn_app(db).await;
    let c = client();
    for i in 0..30 {
        let r = app
            .post(
                &c,
                "/api/v1/auth/login",
                json!({"email": format!("guess{i}@example.com"), "password": "wrong password!"}),
            )
            .await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = app
        .post(
            &c,
            "/api/v1/auth/login",
            json!({"email": "fresh@example.com", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
}

#[sqlx::test]
async fn the_dashboard_returns_to_the_last_organization_viewed(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    app.org(&c, "Alpha").await;
    app.org(&c, "Beta").await;
    assert!(app.get(&c, "/api/v1/me").await.body["last_org"].is_null());
    // Opening an organization's pages (they load it through get_org)...
    let r = c
        .post(app.url("/rpc/get_org"))
        .form(&[("org", "beta")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get(&c, "/api/v1/me").await.body["last_org"], "beta");
    // ...makes `/` go there rather than to the first one.
    let r = app.open(&c, "/").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/o/beta");
}

#[sqlx::test]
async fn another_organizations_pages_answer_404(db: PgPool) {
    let app = spawn_app(db).await;
    let (ann, _) = app.user("ann@example.com", "Ann").await;
    let (eve, _) = app.user("eve@example.com", "Eve").await;
    app.org(&ann, "Acme").await;
    for path in ["/o/acme", "/o/acme/members", "/o/acme/settings", "/o/nope"] {
        let r = app.open(&eve, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.text().await.unwrap().contains("Page not found"));
    }
    let r = app.open(&ann, "/o/acme/members").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Invite a teammate") && html.contains("Ann"),
        "server-rendered page"
    );
}

#[sqlx::test]
async fn signing_in_issues_a_new_session_id(db: PgPool) {
    let app = spawn_app(db).await;
    let c = client();
    let cookie_of = |r: &reqwest::Response| {
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let r = c
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}))
        .send()
        .await
        .unwrap();
    let before = cookie_of(&r);
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let after = cookie_of(&r);
    assert_ne!(
        before, after,
        "a session id known before sign-in is not reused"
    );
    // The old id no longer works.
    let r = client()
        .get(app.url("/api/v1/me"))
        .header("cookie", before)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Regression: the shell once rebuilt the page while rendering, so a page's
/// data was loaded and serialized twice (the first copy failing with its
/// context gone) and hydration in the browser picked the wrong copy. Every
/// signed-in page must serialize exactly two resources: the shell's and its
/// own.
#[sqlx::test]
async fn each_page_loads_its_data_once_while_rendering(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    app.org(&c, "Acme").await;
    for _ in 0..5 {
        for path in [
            "/o/acme",
            "/o/acme/members",
            "/o/acme/api-keys",
            "/o/acme/settings",
        ] {
            let html = app.open(&c, path).await.text().await.unwrap();
            let resources = html.matches("__RESOLVED_RESOURCES[").count();
            // The shell's signed-in person, the shell's budget banner and
            // the page's own data: each once, never again while rendering.
            let want = 3;
            let shown: Vec<&str> = html
                .match_indices("__RESOLVED_RESOURCES[")
                .map(|(i, _)| &html[i..(i + 160).min(html.len())])
                .collect();
            assert_eq!(
                resources, want,
                "{path} serialized {resources} resources: {shown:#?}"
            );
            assert!(!html.contains("\\\"Err\\\""), "{path} rendered an error");
        }
    }
}

#[sqlx::test]
async fn signed_in_visitors_skip_the_sign_in_and_sign_up_pages(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    for (path, to) in [
        ("/login", "/"),
        ("/signup?next=/account", "/account"),
        ("/login?next=//evil.example", "/"),
    ] {
        let r = app.open(&c, path).await;
        assert_eq!(r.status(), 302, "{path}");
        assert_eq!(r.headers()["location"], to, "{path}");
    }
    let r = app.open(&client(), "/login").await;
    assert_eq!(r.status(), 200, "signed-out visitors see the form");
}

#[sqlx::test]
async fn malformed_server_function_input_is_400_not_500(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    app.org(&c, "Acme").await;
    let r = c.post(app.url("/rpc/create_org")).send().await.unwrap();
    assert_eq!(r.status(), 400, "missing argument");
    let r = c
        .post(app.url("/rpc/change_role"))
        .form(&[
            ("org", "acme"),
            ("user_id", "not-a-uuid"),
            ("role", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "bad uuid");
    assert!(r.text().await.unwrap().contains("InvalidJson"));
    let r = c
        .post(app.url("/rpc/create_org"))
        .form(&[("name", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "field error from the service");
    assert!(r.text().await.unwrap().contains("Enter a name"));
}

#[sqlx::test]
async fn nul_bytes_in_input_are_refused_cleanly(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    // Postgres can't store NUL in text; these must not become 500s.
    let r = app
        .post(
            &client(),
            "/api/v1/auth/login",
            json!({"email": "ann\u{0}@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(app.get(&c, "/api/v1/orgs/a%00b").await.status, 404);
    let r = app
        .post(&c, "/api/v1/orgs", json!({"name": "Ac\u{0}me"}))
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .post(
            &client(),
            "/api/v1/auth/signup",
            json!({"email": "x\u{0}@example.com", "password": PASSWORD, "name": "X"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("email").is_some());
}

#[sqlx::test]
async fn simultaneous_organizations_with_one_name_all_get_a_slug(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    let mut creates = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (c, url) = (c.clone(), app.url("/api/v1/orgs"));
        creates.spawn(async move {
            let r = c
                .post(url)
                .json(&json!({"name": "Acme"}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        });
    }
    let mut slugs = vec![];
    while let Some(done) = creates.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, 201, "{body}");
        slugs.push(body["slug"].as_str().unwrap().to_string());
    }
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 8, "{slugs:?}");
}

#[sqlx::test]
async fn ordinary_requests_do_not_rewrite_the_session(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _) = app.user("ann@example.com", "Ann").await;
    // Right after sign-in the session is fresh: reading it saves nothing
    // (it is re-saved at most hourly while in use, see auth::session).
    for _ in 0..3 {
        let r = c.get(app.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("set-cookie").is_none());
    }
}
